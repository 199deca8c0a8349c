//! `api::request::form_decode` and `form_field`, which must agree with each other.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wscgi::api::request::{form_decode, form_field};

fuzz_target!(|data: &[u8]| {
    let pairs = form_decode(data);
    assert!(pairs.len() <= data.split(|&b| b == b'&').filter(|p| !p.is_empty()).count());
    let field = form_field(data, "data");
    if let Some(bytes) = &field {
        // Decoding never grows a component.
        assert!(bytes.len() <= data.len());
    }
    // The first "data" pair, as form_decode sees it, is the field form_field returns.
    let first = pairs
        .iter()
        .find(|(k, _)| k == "data")
        .map(|(_, v)| v.as_str());
    let lossy = field.as_deref().map(String::from_utf8_lossy);
    assert_eq!(
        first,
        lossy.as_deref(),
        "form_decode and form_field disagree"
    );
});

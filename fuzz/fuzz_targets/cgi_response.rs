//! `backend::cgi_response::parse` on a CGI program's raw output.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wscgi::backend::cgi_response::{MAX_HEAD, parse};

fuzz_target!(|data: &[u8]| {
    if let Ok(head) = parse(data) {
        assert!(head.body_start <= data.len());
        assert!(head.body_start <= MAX_HEAD + 2);
        assert!((100..600).contains(&head.status));
        for (name, _) in &head.headers {
            assert!(!name.is_empty() && !name.eq_ignore_ascii_case("status"));
        }
        // The head ends with a blank line: the body starts right after a newline.
        assert_eq!(data.get(head.body_start - 1), Some(&b'\n'));
    }
});

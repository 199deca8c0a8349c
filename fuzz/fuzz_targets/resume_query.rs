//! `ws::resume_query::take` on arbitrary request targets: what the backend sees never carries a
//! resume parameter, and everything else of the query survives in order.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wscgi::ws::resume_query::{KEY_MAX, KEY_MIN, KEY_PARAM, RECEIVED_PARAM, ResumeRequest, take};

fuzz_target!(|data: &[u8]| {
    let Ok(target) = std::str::from_utf8(data) else {
        return;
    };
    let Ok((stripped, request)) = take(target) else {
        return;
    };
    let query = stripped.split_once('?').map_or("", |(_, q)| q);
    for pair in query.split('&') {
        let name = pair.split_once('=').map_or(pair, |(n, _)| n);
        assert!(name != KEY_PARAM && name != RECEIVED_PARAM, "{stripped:?}");
    }
    let kept: Vec<&str> = target
        .split_once('?')
        .map_or("", |(_, q)| q)
        .split('&')
        .filter(|p| {
            let name = p.split_once('=').map_or(*p, |(n, _)| n);
            name != KEY_PARAM && name != RECEIVED_PARAM
        })
        .collect();
    match &request {
        None => assert_eq!(stripped, target),
        Some(_) if kept.is_empty() => assert!(!stripped.contains('?'), "{stripped:?}"),
        Some(_) => assert_eq!(query, kept.join("&")),
    }
    if let Some(ResumeRequest::Start { key } | ResumeRequest::Resume { key, .. }) = request {
        assert!((KEY_MIN..=KEY_MAX).contains(&key.len()), "{key:?}");
        assert!(!key.contains(['&', '?', '%', '+', '/']), "{key:?}");
    }
});

//! `ws::extensions::negotiate` on arbitrary `Sec-WebSocket-Extensions` values (split into
//! several headers at NUL bytes): it never fails, and what it accepts is well-formed.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wscgi::ws::extensions::{Policy, negotiate};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let headers: Vec<&str> = text.split('\0').collect();
    for context_takeover in [false, true] {
        let Some(params) = negotiate(headers.iter().copied(), Policy { context_takeover }) else {
            continue;
        };
        assert!((8..=15).contains(&params.server_window_bits), "{params:?}");
        if !context_takeover {
            assert!(!params.server_takeover && !params.client_takeover, "{params:?}");
        }
        if params.server_window_bits < 15 {
            assert!(!params.server_takeover, "{params:?}");
        }
        let answer = params.answer();
        assert!(answer.starts_with("permessage-deflate"), "{answer}");
        assert!(answer.bytes().all(|b| b.is_ascii_graphic() || b == b' '), "{answer}");
        // The answer, offered back, is accepted with the same parameters.
        let again = negotiate([answer.as_str()], Policy { context_takeover });
        assert_eq!(again.map(|p| p.server_window_bits), Some(params.server_window_bits));
    }
});

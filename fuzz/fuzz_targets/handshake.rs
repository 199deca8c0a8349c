//! `ws::handshake::parse` on arbitrary bytes, plus the responses built from its result.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wscgi::ws::handshake::{MAX_HEAD, accept_key, accept_response, parse, rejection};

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(Some((up, n))) => {
            assert!(n <= data.len() && n <= MAX_HEAD, "head length {n}");
            assert!(up.target.starts_with('/'), "target {:?}", up.target);
            assert_eq!(up.key.len(), 24);
            assert_eq!(accept_key(&up.key).len(), 28);
            for p in &up.protocols {
                assert!(!p.is_empty() && p.trim() == p && !p.contains(','), "{p:?}");
            }
            for (name, _) in &up.headers {
                assert!(!name.bytes().any(|b| b.is_ascii_uppercase()), "{name:?}");
            }
            // Bytes after the head belong to the stream: the head alone parses the same.
            let again = parse(&data[..n])
                .expect("head alone parses")
                .expect("head complete");
            assert_eq!((again.1, &again.0.target), (n, &up.target));
            // Whatever protocol was offered, the 101 is one head: no header splitting.
            let resp = accept_response(&up.key, up.protocols.first().map(String::as_str), None);
            let blank = resp.windows(4).position(|w| w == b"\r\n\r\n");
            assert_eq!(
                blank,
                Some(resp.len() - 4),
                "{:?}",
                String::from_utf8_lossy(&resp)
            );
        }
        // More bytes can only help while the window is not full.
        Ok(None) => assert!(data.len() < MAX_HEAD),
        Err(err) => {
            let resp = rejection(&err);
            let line = format!("HTTP/1.1 {} {}\r\n", err.status(), err.reason());
            assert!(resp.starts_with(line.as_bytes()), "{err:?}");
            assert!((400..500).contains(&err.status()));
        }
    }
});

//! `backend::fastcgi::record::parse` on a FastCGI server's raw output, record after record,
//! and the name-value decoder on each record's content.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wscgi::backend::fastcgi::record::{HEADER_LEN, decode_pairs, end_request, parse};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((record, used))) = parse(rest) {
        assert!(used >= HEADER_LEN && used <= rest.len());
        assert!(record.content.len() + HEADER_LEN <= used);
        let _ = end_request(record.content);
        if let Some(pairs) = decode_pairs(record.content) {
            let total: usize = pairs.iter().map(|(n, v)| n.len() + v.len()).sum();
            assert!(total <= record.content.len());
        }
        rest = &rest[used..];
    }
});

//! `cluster::wire::decode`, what every instance runs on each message it hears on Redis (from
//! other instances and from backends): never panics, and whatever it accepts is written back
//! by `encode` as a message that decodes to the same thing.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wscgi::cluster::wire::{decode, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = decode(data) {
        let text = encode(&message);
        assert_eq!(decode(text.as_bytes()), Ok(message), "round trip through {text:?}");
    }
});

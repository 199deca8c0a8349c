//! The WebSocket connection state machine fed arbitrary bytes after a valid upgrade, through
//! the same calls the reactor makes (see `wscgi::testing`). Invariants are checked there: the
//! upgrade is answered with 101, and the connection ends only with a valid close code.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let outcome = wscgi::testing::drive_conn(data);
    // The echo backend answers every message: nothing is lost or duplicated silently.
    assert!(outcome.messages <= data.len());
});

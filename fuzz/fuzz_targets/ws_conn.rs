//! The WebSocket connection state machine fed arbitrary bytes after a valid upgrade, through
//! the same calls the reactor makes (see `wscgi::testing`). Invariants are checked there: the
//! upgrade is answered with 101, and the connection ends only with a valid close code. The
//! first byte picks where the client pauses, so the socket also runs dry mid-stream (where the
//! frame reader may be renewed).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pause, rest)) = data.split_first() else {
        wscgi::testing::drive_conn(data);
        return;
    };
    let at = if rest.is_empty() { 0 } else { usize::from(pause) * 64 % rest.len() };
    let (a, b) = rest.split_at(at);
    let outcome = wscgi::testing::drive_conn_in_parts(&[a, b]);
    assert!(outcome.messages <= data.len());
});

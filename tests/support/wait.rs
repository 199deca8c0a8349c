//! Deadlines for the test helpers: polling a condition with [`wait_until`],
//! joining a thread within a bound, telling a timed-out read from other I/O
//! errors, and the shared timing constants.

use std::io;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often waits re-check their condition.
pub(super) const POLL: Duration = Duration::from_millis(5);
/// Bound on any single blocking socket operation made on a test's behalf.
pub(super) const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Polls `cond` every 5 ms until it holds; panics naming `what` if `timeout`
/// passes first.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting until {what}");
        }
        thread::sleep(POLL);
    }
}

pub(super) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Joins a thread if it finishes within `timeout` (polled, since std has no
/// timed join); None if it is still running.
pub(super) fn join_within<T>(
    handle: JoinHandle<T>,
    timeout: Duration,
) -> Option<thread::Result<T>> {
    let deadline = Instant::now() + timeout;
    while !handle.is_finished() {
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(POLL);
    }
    Some(handle.join())
}

//! Logging a repeating problem once per burst: the first occurrence at once, then a summary of
//! how many more happened, at most every [`WINDOW`]. A dead backend or an exhausted fd table
//! must not flood the log with one line per event.

use std::time::{Duration, Instant};

use log::warn;

pub const WINDOW: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct BurstLog {
    what: &'static str,
    /// Start of the current window and what was suppressed in it.
    window: Option<(Instant, u64, String)>,
}

impl BurstLog {
    pub const fn new(what: &'static str) -> BurstLog {
        BurstLog { what, window: None }
    }

    /// Records one occurrence; logs it unless a window is open.
    pub fn record(&mut self, now: Instant, detail: impl std::fmt::Display) {
        match &mut self.window {
            Some((_, count, last)) => {
                *count += 1;
                *last = detail.to_string();
            }
            None => {
                warn!("{}: {detail}", self.what);
                self.window = Some((now, 0, String::new()));
            }
        }
    }

    /// Closes the window once it is over: logs the summary, if anything was suppressed.
    pub fn tick(&mut self, now: Instant) {
        let Some((start, count, last)) = &self.window else {
            return;
        };
        if now.duration_since(*start) < WINDOW {
            return;
        }
        if *count > 0 {
            warn!(
                "{}: {count} more in the last {}s (last: {last})",
                self.what,
                WINDOW.as_secs()
            );
        }
        self.window = None;
    }

    /// Occurrences held back in the current window.
    pub fn suppressed(&self) -> u64 {
        self.window.as_ref().map_or(0, |(_, count, _)| *count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_burst() {
        let mut log = BurstLog::new("backend failed");
        let t0 = Instant::now();
        log.record(t0, "refused");
        log.record(t0, "refused");
        log.record(t0, "timeout");
        assert_eq!(log.suppressed(), 2);
        log.tick(t0 + Duration::from_secs(1));
        assert_eq!(log.suppressed(), 2, "window still open");
        log.tick(t0 + WINDOW);
        assert_eq!(log.suppressed(), 0);
    }
}

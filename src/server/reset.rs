//! The startup `reset` event: sent once before any open event of this run, retried with backoff
//! (1 s doubling to 30 s) while the backend does not answer, given up after [`RESET_GIVE_UP`].

use std::time::{Duration, Instant};

use log::{info, warn};

use super::Server;
use crate::events::{Done, Event, EventKind, EventName, Job, Work};

/// The reset event is retried in the background for this long before giving up.
const RESET_GIVE_UP: Duration = Duration::from_secs(600);

/// The startup reset event: at the backend, waiting to be sent again, or done with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ResetTry {
    /// Sent; `backoff` is the pause before the next try if this one fails.
    InFlight {
        backoff: Duration,
    },
    Waiting {
        until: Instant,
        backoff: Duration,
    },
    Over,
}

impl Server {
    pub(super) fn send_reset(&mut self) {
        let event = Event {
            kind: EventKind::Reset,
            conn: None,
            seq: 0,
            meta: Vec::new(),
            boot_id: self.hub.boot_id.clone(),
        };
        self.hub.metrics.event_sent(EventName::Reset);
        self.hub.pool.submit(Job {
            key: None,
            work: Work::Deliver(event),
        });
    }

    pub(super) fn on_reset_done(&mut self, done: Done) {
        self.hub
            .metrics
            .backend_done(done.elapsed, done.retries, done.result.is_err());
        match done.result {
            Ok(reply) => {
                info!(
                    "reset event answered with {} after {:?}",
                    reply.status, done.elapsed
                );
                self.reset = ResetTry::Over;
                self.hub.settle_reset();
            }
            Err(e) if self.started.elapsed() < RESET_GIVE_UP => {
                let backoff = match self.reset {
                    ResetTry::InFlight { backoff } => backoff,
                    _ => Duration::from_secs(1),
                };
                warn!("reset event failed: {e}; retrying in {backoff:?}");
                self.reset = ResetTry::Waiting {
                    until: Instant::now() + backoff,
                    backoff,
                };
            }
            Err(e) => {
                warn!("reset event failed: {e}; giving up");
                self.reset = ResetTry::Over;
            }
        }
    }

    pub(super) fn retry_reset(&mut self, now: Instant) {
        if let ResetTry::Waiting { until, backoff } = self.reset
            && now >= until
        {
            self.reset = ResetTry::InFlight {
                backoff: (backoff * 2).min(Duration::from_secs(30)),
            };
            self.send_reset();
        }
    }
}

//! The startup `reset` event: sent once before any open event of this run, retried with backoff
//! (1 s doubling to 30 s) while the backend does not answer, given up after [`RESET_GIVE_UP`].

use std::time::{Duration, Instant};

use log::{info, warn};

use super::hub::Hub;
use crate::events::{Done, Event, EventKind, EventName, Job, Offload, Work};

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

impl ResetTry {
    /// The first try, sent at startup.
    pub(super) const FIRST: ResetTry = ResetTry::InFlight {
        backoff: Duration::from_secs(1),
    };

    /// The backend's answer to a try; `started` is when the server started.
    pub(super) fn on_done(&mut self, done: Done, hub: &mut Hub, started: Instant) {
        hub.metrics
            .backend_done(done.elapsed, done.retries, done.result.is_err());
        match done.result {
            Ok(reply) => {
                info!(
                    "reset event answered with {} after {:?}",
                    reply.status, done.elapsed
                );
                *self = ResetTry::Over;
                hub.settle_reset();
            }
            Err(e) if started.elapsed() < RESET_GIVE_UP => {
                let backoff = match *self {
                    ResetTry::InFlight { backoff } => backoff,
                    _ => Duration::from_secs(1),
                };
                warn!("reset event failed: {e}; retrying in {backoff:?}");
                *self = ResetTry::Waiting {
                    until: Instant::now() + backoff,
                    backoff,
                };
            }
            Err(e) => {
                warn!("reset event failed: {e}; giving up");
                *self = ResetTry::Over;
            }
        }
    }

    /// Sends the next try once its pause is over.
    pub(super) fn retry(&mut self, now: Instant, hub: &mut Hub) {
        if let ResetTry::Waiting { until, backoff } = *self
            && now >= until
        {
            *self = ResetTry::InFlight {
                backoff: (backoff * 2).min(Duration::from_secs(30)),
            };
            send(hub);
        }
    }
}

/// Sends one try of the reset event.
pub(super) fn send(hub: &mut Hub) {
    let event = Event {
        kind: EventKind::Reset,
        conn: None,
        seq: 0,
        meta: Vec::new(),
        boot_id: hub.boot_id.clone(),
    };
    hub.metrics.event_sent(EventName::Reset);
    hub.pool.submit(Job {
        key: None,
        work: Work::Deliver(event, Offload::default()),
    });
}

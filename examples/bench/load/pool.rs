//! Operations on the whole set of connections that the scenarios share: open many at a bounded
//! rate with a bounded number of handshakes in flight, keep them serviced while idle, close them
//! all.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::Opts;
use crate::client::{Engine, Ev};

/// What [`open_many`] got: the ids of the open connections, the failures by reason, and the
/// time it took.
pub struct Opened {
    pub ids: Vec<usize>,
    pub failures: HashMap<String, usize>,
    pub took: Duration,
}

/// Opens `n` connections at `opts.rate` per second, at most `opts.inflight`
/// handshakes at once, until all answered or `limit` passed. Returns the ids
/// of the open ones, the failures by reason, and the time it took.
pub fn open_many(engine: &mut Engine, n: usize, opts: &Opts, limit: Duration) -> Opened {
    let start = Instant::now();
    let mut started = 0usize;
    let mut answered = 0usize;
    let mut ids = Vec::with_capacity(n);
    let mut failures: HashMap<String, usize> = HashMap::new();
    let mut events = Vec::new();
    let mut backoff_until = start;
    while answered < n && start.elapsed() < limit {
        let now = Instant::now();
        let budget = ((now.duration_since(start).as_secs_f64() * opts.rate) as usize + 1).min(n);
        while started < budget && engine.pending < opts.inflight && now >= backoff_until {
            match engine.connect() {
                Ok(_) => started += 1,
                Err(why) => {
                    // Out of ports or descriptors: count it, wait a little.
                    *failures.entry(why).or_default() += 1;
                    started += 1;
                    answered += 1;
                    backoff_until = now + Duration::from_millis(50);
                    break;
                }
            }
        }
        engine.poll(Duration::from_millis(2), &mut events);
        for ev in events.drain(..) {
            match ev {
                Ev::Open { id, .. } => {
                    answered += 1;
                    ids.push(id);
                }
                Ev::Closed {
                    was_open: false,
                    why,
                    ..
                } => {
                    answered += 1;
                    *failures.entry(why).or_default() += 1;
                }
                Ev::Closed { .. } | Ev::Msg { .. } => {}
            }
        }
    }
    ids.retain(|id| engine.is_open(*id));
    Opened {
        ids,
        failures,
        took: start.elapsed(),
    }
}

/// Keeps servicing the connections (pongs, closes) for `d`.
pub fn idle_for(engine: &mut Engine, d: Duration) -> usize {
    let until = Instant::now() + d;
    let mut events = Vec::new();
    let mut closed = 0;
    while Instant::now() < until {
        engine.poll(
            until
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100)),
            &mut events,
        );
        closed += events
            .drain(..)
            .filter(|e| matches!(e, Ev::Closed { .. }))
            .count();
    }
    closed
}

/// Closes every connection politely, waiting at most `limit` for the server.
pub fn close_all(engine: &mut Engine, limit: Duration) {
    for id in 0..engine.conns.len() {
        engine.close(id);
    }
    let until = Instant::now() + limit;
    let mut events = Vec::new();
    while engine.conns.iter().any(Option::is_some) && Instant::now() < until {
        engine.poll(Duration::from_millis(20), &mut events);
        events.clear();
    }
    engine.drop_all();
}

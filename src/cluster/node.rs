//! This instance's side of the cluster, on the reactor: its tag and Redis names, the link's
//! health (logged once per outage and once on recovery), the open calls, and the counters of
//! `/metrics`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{info, warn};

use super::calls::Calls;
use super::link::{self, In, Link, Names, Out, Settings, Side};
use super::wire::{self, Message};
use crate::bell::Bell;
use crate::config::Redis;

/// Whether cluster calls can be made now.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Health {
    /// Never connected yet.
    Connecting,
    Up,
    Down {
        since: Instant,
        reason: String,
    },
}

/// Cluster messages, as `/metrics` counts them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub sent: u64,
    pub received: u64,
    pub failed: u64,
}

pub struct Node<C> {
    pub tag: String,
    pub prefix: String,
    pub names: Names,
    link: Link,
    pub calls: Calls<C>,
    health: Health,
    /// Commands and subscriber connection, each up or not.
    sides: [bool; 2],
    pub counters: Counters,
    /// How long a call may wait (`--backend-timeout`).
    pub timeout: Duration,
}

impl<C> Node<C> {
    pub fn start(
        redis: &Redis,
        tag: String,
        timeout: Duration,
        bell: Arc<Bell>,
    ) -> Result<Node<C>, String> {
        let names = Names::new(&redis.prefix, &tag);
        let settings = Settings {
            url: redis.url.clone(),
            names: names.clone(),
            tag: tag.clone(),
            node_ttl: redis.node_ttl,
            timeout,
        };
        let link = Link::start(settings, bell)?;
        Ok(Node {
            tag,
            prefix: redis.prefix.clone(),
            names,
            link,
            calls: Calls::default(),
            health: Health::Connecting,
            sides: [false; 2],
            counters: Counters::default(),
            timeout,
        })
    }

    pub fn is_up(&self) -> bool {
        self.health == Health::Up
    }

    /// Why cluster calls cannot be made now (the reason of a 503).
    pub fn unavailable(&self) -> String {
        match &self.health {
            Health::Connecting => "redis unavailable: not connected yet".into(),
            Health::Up => "redis unavailable".into(),
            Health::Down { reason, .. } => reason.clone(),
        }
    }

    pub fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    /// Queues `message` for Redis channel `channel`; with `call`, the receivers are counted.
    pub fn send(
        &mut self,
        channel: String,
        message: &Message,
        call: Option<u64>,
    ) -> Result<(), String> {
        let payload = wire::encode(message);
        let out = Out::Publish {
            channel,
            payload,
            call,
        };
        match self.link.send(out) {
            Ok(()) => {
                self.counters.sent += 1;
                Ok(())
            }
            Err(link::Busy) => {
                self.counters.failed += 1;
                Err("redis link busy: too many messages waiting".into())
            }
        }
    }

    /// The inbox of the instance with this tag.
    pub fn inbox_of(&self, tag: &str) -> String {
        link::inbox(&self.prefix, tag)
    }

    /// Everything the link threads reported since the last call.
    pub fn drain(&mut self) -> Vec<In> {
        self.link.incoming.try_iter().collect()
    }

    /// A health report; true when the cluster just became unavailable (open calls cannot be
    /// answered any more).
    pub fn on_health(&mut self, side: Side, down: Option<String>) -> bool {
        self.sides[side as usize] = down.is_none();
        if side == Side::Subscriber && down.is_some() && self.sides[Side::Commands as usize] {
            // The command connection has been idle, maybe since before Redis went away: it
            // counts as up again only once it answered.
            self.sides[Side::Commands as usize] = false;
            let _ = self.link.send(Out::Check);
        }
        let was_up = self.is_up();
        match down {
            Some(reason) => {
                if let Health::Down { .. } = self.health {
                    return false;
                }
                warn!("{reason}; cluster calls answer 503 until it is back, local traffic goes on");
                self.health = Health::Down {
                    since: Instant::now(),
                    reason,
                };
                was_up
            }
            None if self.sides == [true; 2] => {
                match &self.health {
                    Health::Down { since, .. } => info!(
                        "redis: connected again after {:.1}s; subscriptions and liveness restored",
                        since.elapsed().as_secs_f64()
                    ),
                    _ => info!(
                        "redis: joined the cluster {:?} as node {}",
                        self.prefix, self.tag
                    ),
                }
                self.health = Health::Up;
                false
            }
            None => false,
        }
    }

    /// `/metrics` lines of the cluster.
    pub fn metrics(&self) -> String {
        let mut out = String::new();
        let mut line = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        line(
            "wscgi_redis_up",
            "gauge",
            "1 while the Redis link works",
            u64::from(self.is_up()),
        );
        let c = self.counters;
        line(
            "wscgi_cluster_messages_sent_total",
            "counter",
            "cluster messages handed to Redis",
            c.sent,
        );
        line(
            "wscgi_cluster_messages_received_total",
            "counter",
            "cluster messages received from Redis",
            c.received,
        );
        line(
            "wscgi_cluster_messages_failed_total",
            "counter",
            "cluster messages lost, refused or not answered",
            c.failed,
        );
        out
    }

    /// Removes this instance's liveness key before the process exits.
    pub fn leave(&mut self) {
        self.link.leave();
    }
}

/// `deadline` as the wall clock will show it, in milliseconds since the Unix epoch: what a
/// request carries to another host (instances' clocks are kept in sync, README "Cluster").
pub fn wall_clock_ms(deadline: Instant) -> u64 {
    let left = deadline.saturating_duration_since(Instant::now());
    epoch_ms(SystemTime::now() + left)
}

/// Whether a request's deadline (see [`wall_clock_ms`]) has passed here.
pub fn past(deadline_ms: u64) -> bool {
    epoch_ms(SystemTime::now()) >= deadline_ms
}

fn epoch_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

//! One message to many clients: channel publishes, broadcasts, and the channel headers of a
//! backend reply. One `Frames` per fan-out: the message is framed once for each encoding its
//! recipients use, and every recipient queues (or is directly written) the same bytes. Fan-out
//! works on what the hub lends it for one call ([`Recipients`]) and hands back the targets
//! that failed, so it never needs the hub itself.

use std::collections::{HashMap, HashSet};
use std::io;

use mio::net::TcpStream;
use tungstenite::Bytes;

use log::warn;

use super::clients::{self, Clients};
use crate::channels::Channels;
use crate::conn_id::ConnKey;
use crate::metrics::Metrics;
use crate::reply::Reply;
use crate::ws::conn::{Accepted, Written};
use crate::ws::direct;
use crate::ws::message::{Frames, Message};

/// Fan-outs to at least this many clients are written by several threads (see `ws::direct`);
/// below it, starting threads costs about what it saves. Measured on 2 cores, publish to last
/// delivery, medians of three: 1,000 subscribers 10.0 ms in one thread, 6.5 ms in two; 150 and
/// 400 the same either way (within 0.2 ms).
const PARALLEL_MIN: usize = 256;

/// The channel part of a backend reply, taken out before the connection applies the rest.
#[derive(Debug, Default)]
pub struct Routing {
    subscribe: Vec<String>,
    unsubscribe: Vec<String>,
    publish: Vec<String>,
    exclude: Vec<String>,
    /// The reply body, when it goes to channels instead of the sender (its compressed frame
    /// made by the worker already when it is large, see `ws::offload`).
    message: Option<Frames>,
}

impl Routing {
    pub fn take(reply: &mut Reply) -> Routing {
        let mut routing = Routing {
            subscribe: std::mem::take(&mut reply.subscribe),
            unsubscribe: std::mem::take(&mut reply.unsubscribe),
            publish: std::mem::take(&mut reply.publish),
            exclude: std::mem::take(&mut reply.exclude),
            message: None,
        };
        if !routing.publish.is_empty() && reply.has_message() {
            let body = std::mem::take(&mut reply.body);
            let message = Message::new(reply.is_binary(), body);
            routing.message = Some(Frames::prepared(message, reply.deflated.take()));
            reply.send_empty = false;
        }
        routing
    }
}

#[cfg(feature = "redis")]
impl Routing {
    /// The publish for the other cluster instances, if the reply publishes. `self` in
    /// `WS-Exclude` is the sender, which is here, so it is left out.
    pub fn beyond(&self) -> Option<crate::cluster::wire::Publish> {
        let message = self.message.as_ref()?.message();
        Some(crate::cluster::wire::Publish {
            audience: crate::cluster::wire::Audience::Channels(self.publish.clone()),
            data: message.payload.clone(),
            binary: message.binary,
            exclude: self
                .exclude
                .iter()
                .filter(|id| *id != "self")
                .cloned()
                .collect(),
            from: None,
        })
    }
}

/// How a fan-out went: clients that got the message queued, and targets that could not take it
/// (closed meanwhile, or too slow and now being closed).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fanout {
    pub delivered: usize,
    /// Kept for sessions waiting for their client (see `ws::resuming`).
    pub queued: usize,
    pub skipped: usize,
}

/// A fan-out's outcome, with the targets whose state changed because they could not take the
/// message: the hub looks after each (its close event, its removal).
#[derive(Debug, Default)]
pub struct Sent {
    pub fanout: Fanout,
    pub failed: Vec<ConnKey>,
    /// Targets waiting for their client (see `ws::resuming`) that kept the message: the hub
    /// counts what they keep against `--resume-max-bytes`.
    pub kept: Vec<ConnKey>,
}

/// What one fan-out works on, lent by the hub for the call.
pub struct Recipients<'a> {
    pub clients: &'a mut Clients,
    pub channels: &'a mut Channels,
    /// Public connection id to key, for `WS-Exclude` and the push API's `exclude`.
    pub ids: &'a HashMap<String, ConnKey>,
    pub metrics: &'a mut Metrics,
    /// Threads a large fan-out is written by (see `ws::direct`).
    pub writers: &'a direct::Writers,
}

impl Recipients<'_> {
    /// Applies a reply's channel headers for connection `key`.
    pub fn route(&mut self, key: ConnKey, mut routing: Routing) -> Sent {
        if clients::peek(self.clients, key).is_some_and(|c| c.takes_messages()) {
            for name in &routing.unsubscribe {
                self.channels.unsubscribe(name, key);
            }
            for name in &routing.subscribe {
                if let Err(e) = self.channels.subscribe(name, key) {
                    warn!("WS-Subscribe {name:?}: {e}");
                }
            }
        }
        if let Some(frames) = &mut routing.message {
            let exclude = self.exclusions(&routing.exclude, Some(key));
            return self.publish(&routing.publish, frames, &exclude);
        }
        Sent::default()
    }

    /// Ids (and `self`, meaning `sender`) to keys; unknown ids are simply not excluded.
    pub fn exclusions(&self, ids: &[String], sender: Option<ConnKey>) -> HashSet<ConnKey> {
        ids.iter()
            .filter_map(|id| match id.as_str() {
                "self" => sender,
                id => self.ids.get(id).copied(),
            })
            .collect()
    }

    /// Sends to every member of `channels` (once each, even if in several).
    pub fn publish(
        &mut self,
        channels: &[String],
        frames: &mut Frames,
        exclude: &HashSet<ConnKey>,
    ) -> Sent {
        let mut targets: Vec<ConnKey> = Vec::new();
        for name in channels {
            if let Some(members) = self.channels.members(name) {
                targets.extend(members.iter().filter(|k| !exclude.contains(k)));
            }
        }
        // In slot order (a set's order is random): connections accepted one after another sit
        // side by side, in wscgi's memory and in the kernel's, and are written in that order.
        targets.sort_unstable_by_key(|k| k.index);
        if channels.len() > 1 {
            targets.dedup();
        }
        self.deliver(&targets, frames)
    }

    /// Sends to every connection that takes messages (see `Conn::takes_messages`) whose path
    /// starts with `prefix`.
    pub fn broadcast(
        &mut self,
        prefix: Option<&str>,
        frames: &mut Frames,
        exclude: &HashSet<ConnKey>,
    ) -> Sent {
        let targets: Vec<ConnKey> = self
            .clients
            .iter()
            .filter(|(_, c)| c.takes_messages() && !exclude.contains(&c.key))
            .filter(|(_, c)| {
                prefix.is_none_or(|p| c.info().is_some_and(|i| i.path().starts_with(p)))
            })
            .map(|(_, c)| c.key)
            .collect();
        self.deliver(&targets, frames)
    }

    fn deliver(&mut self, targets: &[ConnKey], frames: &mut Frames) -> Sent {
        let direct = match targets.len() >= PARALLEL_MIN && self.writers.threads() > 1 {
            true => self.write_direct(targets, frames),
            false => (0..targets.len()).map(|_| None).collect(),
        };
        let mut result = Sent::default();
        for (&key, written) in targets.iter().zip(direct) {
            let sent = clients::get(self.clients, key).map(|conn| match written {
                Some(written) => conn.send_message(frames, Written::Directly(written)),
                None => {
                    let sent = conn.send_message(frames, Written::Nothing);
                    conn.flush();
                    sent
                }
            });
            match sent {
                Some(Ok(Accepted::Sent)) => result.fanout.delivered += 1,
                Some(Ok(Accepted::Kept)) => {
                    result.fanout.queued += 1;
                    result.kept.push(key);
                }
                _ => {
                    result.fanout.skipped += 1;
                    result.failed.push(key);
                }
            }
        }
        self.metrics.published += 1;
        self.metrics.deliveries += result.fanout.delivered as u64;
        result
    }

    /// Writes the message straight to every target with nothing queued, on several threads
    /// (see `ws::direct`). Per target: the write's outcome, or `None` to queue as usual.
    fn write_direct(
        &self,
        targets: &[ConnKey],
        frames: &mut Frames,
    ) -> Vec<Option<io::Result<usize>>> {
        // Two threads must never write to one socket (their frames could interleave): a target
        // listed twice goes the queued way the second time. A slot is one socket, so a bit per
        // slot tells (cheaper than hashing thousands of keys).
        let mut seen = vec![0u64; self.clients.capacity().div_ceil(64)];
        let mut first = |index: usize| {
            let (word, bit) = (index / 64, 1u64 << (index % 64));
            let fresh = seen.get(word).is_some_and(|w| w & bit == 0);
            if let Some(w) = seen.get_mut(word) {
                *w |= bit;
            }
            fresh
        };
        let (positions, sockets): (Vec<usize>, Vec<(&TcpStream, Bytes)>) = targets
            .iter()
            .enumerate()
            .filter(|&(_, key)| first(key.index))
            .filter_map(|(i, &key)| {
                Some((i, clients::peek(self.clients, key)?.direct_target(frames)?))
            })
            .unzip();
        let mut outcomes: Vec<Option<io::Result<usize>>> =
            (0..targets.len()).map(|_| None).collect();
        let written = self.writers.write(&sockets);
        for (i, w) in positions.into_iter().zip(written) {
            outcomes[i] = Some(w);
        }
        outcomes
    }
}

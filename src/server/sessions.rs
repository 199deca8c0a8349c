//! The table of resumable sessions: which connection holds which session key, and what the
//! parked ones keep together (`--resume-max-bytes`). The hub's decisions on it are in
//! `claims.rs`; the connection's side is `ws::resuming`.

use std::collections::HashMap;

use mio::Registry;

use crate::conn_id::ConnKey;

pub struct Sessions {
    /// Session key → the connection that holds (or last held) it. An entry whose connection no
    /// longer holds its session is stale: lookups skip it, the connection's removal drops it.
    pub(super) keys: HashMap<String, ConnKey>,
    /// What each parked (or resuming) session keeps, in bytes; and their sum.
    pub(super) parked: HashMap<ConnKey, usize>,
    pub(super) parked_bytes: usize,
    pub(super) max_parked_bytes: usize,
    /// A resumed socket moves to its session's token.
    pub(super) registry: Registry,
}

impl Sessions {
    pub fn new(registry: Registry, max_parked_bytes: usize) -> Sessions {
        Sessions {
            keys: HashMap::new(),
            parked: HashMap::new(),
            parked_bytes: 0,
            max_parked_bytes,
            registry,
        }
    }

    /// Sessions waiting for their client, and what they keep together.
    pub fn parked(&self) -> (usize, usize) {
        (self.parked.len(), self.parked_bytes)
    }

    /// Records what `key` keeps while parked (`None`: it is not parked).
    pub(super) fn account(&mut self, key: ConnKey, kept: Option<usize>) {
        let before = match kept {
            Some(bytes) => self.parked.insert(key, bytes),
            None => self.parked.remove(&key),
        };
        self.parked_bytes = self.parked_bytes - before.unwrap_or(0) + kept.unwrap_or(0);
    }
}

//! The push-API commands waiting for a worker to compress their messages (see `offload.rs`).

use std::collections::HashMap;

use crate::api::routes::Command;

/// Tickets of these answers start here, apart from the cluster's (see `api::conn::Answer`).
const FIRST_TICKET: u64 = 1 << 63;

/// Ticket → the push-API connection (its index) and the command. At most one per push-API
/// connection: it reads nothing more until answered.
#[derive(Debug)]
pub struct Offloads {
    waiting: HashMap<u64, (usize, Command)>,
    next: u64,
}

impl Default for Offloads {
    fn default() -> Offloads {
        Offloads {
            waiting: HashMap::new(),
            next: FIRST_TICKET,
        }
    }
}

impl Offloads {
    /// Keeps the command of push-API connection `index`; its ticket.
    pub fn wait(&mut self, index: usize, command: Command) -> u64 {
        let ticket = self.next;
        self.next += 1;
        self.waiting.insert(ticket, (index, command));
        ticket
    }

    pub fn take(&mut self, ticket: u64) -> Option<(usize, Command)> {
        self.waiting.remove(&ticket)
    }
}

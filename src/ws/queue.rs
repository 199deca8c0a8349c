//! A connection's events waiting for the backend, sent strictly one at a time.
//!
//! Events are numbered when they happen (`WS-Seq`), queued here, and leave one by one: the next
//! is released only when the previous one's result came back. That is what keeps a
//! connection's events, and the replies to them, in order.

use std::collections::VecDeque;

use crate::events::{EventKind, EventName};

#[derive(Debug, Default)]
pub struct EventQueue {
    waiting: VecDeque<(u64, EventKind)>,
    /// The event at the backend now, if any.
    in_flight: Option<EventName>,
    next_seq: u64,
}

impl EventQueue {
    pub fn push(&mut self, kind: EventKind) {
        self.waiting.push_back((self.next_seq, kind));
        self.next_seq += 1;
    }

    /// Frees spare room: a parked session may wait long with nothing queued.
    pub fn shrink(&mut self) {
        self.waiting.shrink_to_fit();
    }

    /// Events not yet sent to the backend.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.in_flight.is_none()
    }

    /// A message event is waiting or at the backend: a reply to send may still come.
    pub fn carries_message(&self) -> bool {
        self.carries(EventName::Message)
    }

    /// An event named `name` is waiting or at the backend.
    pub fn carries(&self, name: EventName) -> bool {
        self.in_flight == Some(name) || self.waiting.iter().any(|(_, kind)| kind.name() == name)
    }

    pub fn next_name(&self) -> Option<EventName> {
        match self.in_flight {
            Some(_) => None,
            None => self.waiting.front().map(|(_, kind)| kind.name()),
        }
    }

    /// The next event to send, unless one is already at the backend.
    pub fn take_next(&mut self) -> Option<(u64, EventKind)> {
        if self.in_flight.is_some() {
            return None;
        }
        let next = self.waiting.pop_front()?;
        self.in_flight = Some(next.1.name());
        Some(next)
    }

    /// The in-flight event finished; returns which one it was.
    pub fn finish(&mut self) -> Option<EventName> {
        self.in_flight.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_at_a_time_in_order() {
        let mut q = EventQueue::default();
        q.push(EventKind::Open);
        q.push(EventKind::Close {
            code: 1000,
            reason: String::new(),
        });
        let (seq, kind) = q.take_next().unwrap();
        assert_eq!((seq, kind.name()), (0, EventName::Open));
        assert!(q.take_next().is_none(), "second event must wait");
        assert_eq!(q.finish(), Some(EventName::Open));
        assert_eq!(q.take_next().map(|(s, _)| s), Some(1));
        q.finish();
        assert!(q.is_idle());
    }
}

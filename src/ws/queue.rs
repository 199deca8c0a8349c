//! A connection's events waiting for the backend, sent strictly one at a time.
//!
//! Events are numbered when they happen (`WS-Seq`), queued here, and leave one by one: the next
//! is released only when the previous one's result came back. That is what keeps a
//! connection's events, and the replies to them, in order.

use std::collections::VecDeque;

use crate::events::{EventKind, EventName};

#[derive(Debug, Default)]
pub struct EventQueue {
    /// Number, event, and whether a message's data is still compressed (see `ws::offload`).
    waiting: VecDeque<(u64, EventKind, bool)>,
    /// The event at the backend now, if any, and its number.
    in_flight: Option<EventName>,
    in_flight_seq: u64,
    next_seq: u64,
}

impl EventQueue {
    pub fn push(&mut self, kind: EventKind) {
        self.enqueue(kind, false);
    }

    /// A message whose data is compressed still: its worker inflates it.
    pub fn push_packed(&mut self, kind: EventKind) {
        self.enqueue(kind, true);
    }

    fn enqueue(&mut self, kind: EventKind, packed: bool) {
        self.waiting.push_back((self.next_seq, kind, packed));
        self.next_seq += 1;
    }

    /// The next event to send is a packed message.
    pub fn next_is_packed(&self) -> bool {
        self.in_flight.is_none() && self.waiting.front().is_some_and(|e| e.2)
    }

    /// The message in flight broke the rules and never reached the backend: it is over, the
    /// message events after it are forgotten, and the events left are numbered on from it, so
    /// `WS-Seq` has no gap.
    pub fn refuse_in_flight(&mut self) {
        if self.in_flight.take().is_none() {
            return;
        }
        let first = self.in_flight_seq;
        self.waiting.retain(|e| e.1.name() != EventName::Message);
        for (seq, e) in (first..).zip(self.waiting.iter_mut()) {
            e.0 = seq;
        }
        self.next_seq = first + self.waiting.len() as u64;
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
        self.in_flight == Some(name) || self.waiting.iter().any(|(_, kind, _)| kind.name() == name)
    }

    pub fn next_name(&self) -> Option<EventName> {
        match self.in_flight {
            Some(_) => None,
            None => self.waiting.front().map(|(_, kind, _)| kind.name()),
        }
    }

    /// The next event to send, unless one is already at the backend.
    pub fn take_next(&mut self) -> Option<(u64, EventKind)> {
        if self.in_flight.is_some() {
            return None;
        }
        let (seq, kind, _) = self.waiting.pop_front()?;
        self.in_flight = Some(kind.name());
        self.in_flight_seq = seq;
        Some((seq, kind))
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

    #[test]
    fn messages_after_a_refused_one_are_dropped_without_a_gap() {
        let mut q = EventQueue::default();
        let message = || EventKind::Message {
            data: Default::default(),
            binary: true,
        };
        q.push(EventKind::Open);
        q.take_next();
        q.finish();
        q.push_packed(message());
        assert!(q.next_is_packed());
        q.take_next();
        assert!(!q.next_is_packed(), "one at a time");
        q.push(message());
        q.push_packed(message());
        q.push(EventKind::Close {
            code: 1000,
            reason: String::new(),
        });
        q.refuse_in_flight();
        let (seq, kind) = q.take_next().unwrap();
        assert_eq!((seq, kind.name()), (1, EventName::Close));
        q.push(message());
        q.finish();
        assert_eq!(q.take_next().map(|(s, _)| s), Some(2));
    }
}

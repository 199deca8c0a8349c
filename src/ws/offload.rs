//! permessage-deflate work taken off the reactor where a message is large enough to matter.
//!
//! Compressing and inflating cost about 3 and 2 µs per KiB (level 1, JSON; `cargo run --release
//! --example bench-deflate-cost`): at 1 MiB that is milliseconds during which every other
//! connection would wait. Without context takeover (the default) neither depends on the
//! connection, so a worker can do it:
//!
//! - **Incoming**: a compressed message in one frame of at least [`INFLATE_MIN`] bytes on the
//!   wire is not inflated as it arrives (a fragmented one is, so a bomb's first fragment is
//!   refused at once): `ws::inflow` collects its compressed payload and hands it on as
//!   the message's data, marked packed; the worker that delivers the message event inflates it
//!   first ([`inflate_event`], bounded by `--max-message` as inline) and the reactor only learns
//!   the outcome: its size, or the close code (1009, 1007) the connection fails with.
//! - **Replies**: the worker that got a backend's reply compresses a body of at least
//!   [`DEFLATE_MIN`] bytes ([`deflate_reply`]) when the sender or a `WS-Publish` may use it; the
//!   message's `Frames` starts with that frame, and the reactor only copies it.
//! - **Pushes**: see `server::offload`.
//!
//! Below the thresholds a message costs the reactor about what any message costs it anyway.
//! With context takeover (`--deflate-context`) the state is the connection's and its messages
//! stay in order on the reactor. Replays after a resume are compressed on the reactor.

use std::sync::Arc;

use tungstenite::Bytes;

use super::conn::{Conn, Limits, Phase};
use super::extensions::Params;
use super::inflate::{InflateError, Inflater};
use crate::events::{Deflating, Event, EventKind, Offload, Work};
use crate::reply::Reply;
use crate::ws::close;
use crate::ws::message::{Deflated, Message};

/// Outgoing messages of at least this many bytes are compressed on a worker: at level 1 that
/// is about 50 µs of CPU, three times what the reactor spends on an echoed message in all.
pub const DEFLATE_MIN: usize = 16 * 1024;

/// Incoming compressed messages of at least this many bytes on the wire are inflated on a
/// worker: about 16 KiB once inflated (JSON shrinks 3.6 times), some 30 µs of CPU.
pub const INFLATE_MIN: usize = 4 * 1024;

/// On the worker: the message event's compressed data inflated (never past `limit`) and, for
/// a text message, checked to be UTF-8; with its inflated size. Or the close code and reason
/// the connection fails with.
pub fn inflate_event(
    mut event: Event,
    limit: usize,
) -> Result<(Event, usize), (u16, &'static str)> {
    let EventKind::Message { data, binary } = &mut event.kind else {
        return Ok((event, 0));
    };
    let mut inflater = Inflater::new(limit, false);
    let inflated = inflater.feed(data).and_then(|()| inflater.finish());
    let plain = match inflated {
        Ok((plain, _)) => plain,
        Err(e) => {
            let code = match e {
                InflateError::TooBig => close::TOO_BIG,
                InflateError::BadData => close::INVALID_DATA,
            };
            let reason = match e {
                InflateError::TooBig => "compressed message too big",
                InflateError::BadData => "invalid compressed data",
            };
            return Err((code, reason));
        }
    };
    if !*binary && std::str::from_utf8(&plain).is_err() {
        return Err((close::INVALID_DATA, "invalid UTF-8 in text message"));
    }
    let len = plain.len();
    *data = Bytes::from(plain);
    Ok((event, len))
}

/// On the worker: the reply body's compressed frame, when the reactor would make it.
pub fn deflate_reply(reply: &mut Reply, deflating: Deflating) {
    let wanted = deflating.for_sender || !reply.publish.is_empty();
    if !wanted || reply.body.len() < deflating.min.max(DEFLATE_MIN) {
        return;
    }
    let message = Message::new(reply.is_binary(), reply.body.clone());
    reply.deflated = Some(Deflated::of(&message, deflating.level));
}

/// On the worker: [`crate::events::Work::Compress`].
pub fn deflate_all(messages: &[Option<Message>], level: u32) -> Vec<Option<Deflated>> {
    messages
        .iter()
        .map(|m| m.as_ref().map(|m| Deflated::of(m, level)))
        .collect()
}

impl Conn {
    /// The next event for the pool, if none is at the backend, with what its worker does
    /// besides delivering it.
    pub fn take_work(&mut self, boot_id: &Arc<str>, limits: &Limits) -> Option<Work> {
        let packed = self.events.next_is_packed();
        let event = self.take_event(boot_id)?;
        let offload = Offload {
            inflate: packed.then_some(limits.max_message),
            deflate: self.deflating(limits),
        };
        Some(Work::Deliver(event, offload))
    }

    fn deflating(&self, limits: &Limits) -> Option<Deflating> {
        let settings = limits.deflate?;
        let offered = match &self.phase {
            Phase::Opening { deflate, .. } | Phase::Resuming { deflate, .. } => *deflate,
            _ => None,
        };
        // Frames compressed without context, in a window that lets large messages go compressed.
        let shares = |p: Params| !p.server_takeover && 1 << p.server_window_bits >= DEFLATE_MIN;
        let shares = self.deflate.params().or(offered).is_some_and(shares);
        Some(Deflating {
            level: settings.level,
            min: settings.min_size,
            for_sender: shares,
        })
    }

    /// A packed message reached the backend: its inflated size, for the counters.
    pub fn inflated(&mut self, len: usize) {
        self.traffic.bytes_in += len as u64;
        self.traffic.deflate.inflated_in += len as u64;
    }

    /// A packed message did not inflate (too big, bad data, not UTF-8): the event in flight
    /// is over, the messages read after it are dropped, and the connection fails as it would
    /// have failed had the message been inflated as it arrived.
    pub fn refuse(&mut self, code: u16, reason: &str, limits: &Limits) {
        self.events.refuse_in_flight();
        log::info!("{}: closing with {code}: {reason}", self.id());
        match self.phase {
            Phase::Open { .. } | Phase::Closing { .. } => self.fail(code, reason),
            _ => self.close(code, reason),
        }
        self.finish_failing();
        self.read_on(limits);
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::compress::Compressor;

    fn message(data: Vec<u8>, binary: bool) -> Event {
        Event {
            kind: EventKind::Message {
                data: Bytes::from(data),
                binary,
            },
            conn: None,
            seq: 1,
            meta: Vec::new(),
            boot_id: Arc::from("boot"),
        }
    }

    fn data(event: &Event) -> &[u8] {
        match &event.kind {
            EventKind::Message { data, .. } => data,
            _ => panic!("not a message"),
        }
    }

    #[test]
    fn inflates_within_the_bound() {
        let plain = b"{\"user\":\"alice\"}".repeat(1000);
        let packed = Compressor::new(1).compress(&plain, false).unwrap();
        let (event, len) = inflate_event(message(packed.clone(), false), 1 << 20).unwrap();
        assert_eq!((data(&event), len), (&plain[..], plain.len()));
        let too_big = inflate_event(message(packed, false), plain.len() - 1).unwrap_err();
        assert_eq!(too_big.0, 1009);
    }

    #[test]
    fn bad_data_and_bad_text_are_refused_with_1007() {
        let bad = inflate_event(message(vec![0xff; 100], true), 1 << 20).unwrap_err();
        assert_eq!(bad.0, 1007);
        let latin1 = Compressor::new(1).compress(&[0xe9; 300], false).unwrap();
        let text = inflate_event(message(latin1.clone(), false), 1 << 20).unwrap_err();
        assert_eq!(text.0, 1007);
        assert!(inflate_event(message(latin1, true), 1 << 20).is_ok());
    }

    #[test]
    fn compresses_large_replies_that_will_use_it() {
        let deflating = Deflating {
            level: 1,
            min: 128,
            for_sender: true,
        };
        let mut small = Reply {
            body: Bytes::from(vec![b'a'; DEFLATE_MIN - 1]),
            ..Reply::default()
        };
        deflate_reply(&mut small, deflating);
        assert!(small.deflated.is_none());
        let mut large = Reply {
            body: Bytes::from(vec![b'a'; DEFLATE_MIN]),
            ..Reply::default()
        };
        let mut unused = large.clone();
        deflate_reply(&mut large, deflating);
        assert!(large.deflated.unwrap().frame.is_some());
        let others = Deflating {
            for_sender: false,
            ..deflating
        };
        deflate_reply(&mut unused, others);
        assert!(unused.deflated.is_none(), "nobody would use it");
        unused.publish = vec!["room".into()];
        deflate_reply(&mut unused, others);
        assert!(unused.deflated.is_some(), "its channels may");
    }
}

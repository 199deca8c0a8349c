//! Compressing one outgoing message (RFC 7692 §7.2.1): raw DEFLATE, flushed with an empty
//! stored block whose `00 00 ff ff` is then removed. Pure.
//!
//! Without context takeover the compressed bytes depend only on the message and the level, so
//! one compressor per thread serves every connection: it is reset after each message and no
//! connection holds compression state (see [`with_shared`]).

use std::cell::RefCell;
use std::fmt;

use flate2::{Compress, Compression, FlushCompress, Status};

use super::inflate::TAIL;

pub struct Compressor {
    state: Compress,
    level: u32,
}

impl fmt::Debug for Compressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Compressor(level {})", self.level)
    }
}

impl Compressor {
    pub fn new(level: u32) -> Compressor {
        Compressor {
            state: Compress::new(Compression::new(level), false),
            level,
        }
    }

    /// The message's compressed payload, if it is shorter than the message; `None` if
    /// compression would not shrink it. `takeover` keeps the LZ77 window for the next message
    /// (the peer's inflater keeps it too); a message sent uncompressed must not be in it, so
    /// then the state starts afresh, which the peer cannot tell.
    pub fn compress(&mut self, payload: &[u8], takeover: bool) -> Option<Vec<u8>> {
        let compressed = self.run(payload);
        if compressed.is_none() || !takeover {
            self.state.reset();
        }
        compressed
    }

    fn run(&mut self, payload: &[u8]) -> Option<Vec<u8>> {
        // Worth sending only if shorter than the message once the tail is removed.
        let mut out = Vec::with_capacity(payload.len() + TAIL.len());
        let mut input = payload;
        loop {
            let before = self.state.total_in();
            let status = self
                .state
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .ok()?;
            input = &input[(self.state.total_in() - before) as usize..];
            // The flush is complete once all input is taken and the output was not filled.
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
            if out.len() == out.capacity() || status == Status::BufError {
                return None;
            }
        }
        if !out.ends_with(&TAIL) || out.len() - TAIL.len() >= payload.len() {
            return None;
        }
        out.truncate(out.len() - TAIL.len());
        Some(out)
    }
}

thread_local! {
    static SHARED: RefCell<Option<Compressor>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's compressor for `level` (made on first use), for messages
/// without context takeover.
pub fn with_shared<R>(level: u32, f: impl FnOnce(&mut Compressor) -> R) -> R {
    SHARED.with(|shared| {
        let mut shared = shared.borrow_mut();
        let compressor = match &mut *shared {
            Some(c) if c.level == level => c,
            other => other.insert(Compressor::new(level)),
        };
        f(compressor)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::inflate::Inflater;

    fn inflate(inflater: &mut Inflater, compressed: &[u8]) -> Vec<u8> {
        inflater.feed(compressed).unwrap();
        inflater.finish().unwrap().0
    }

    fn json(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| format!("{{\"id\":{i},\"user\":\"alice\",\"text\":\"hello there\"}},"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn round_trip_without_the_tail() {
        let message = json(100);
        for level in [1, 6, 9] {
            let packed = with_shared(level, |c| c.compress(&message, false)).expect("shrinks");
            assert!(
                packed.len() * 5 < message.len(),
                "level {level}: {}",
                packed.len()
            );
            assert!(!packed.ends_with(&TAIL));
            let mut inflater = Inflater::new(1 << 20, false);
            assert_eq!(inflate(&mut inflater, &packed), message);
        }
    }

    #[test]
    fn what_does_not_shrink_is_not_compressed() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..2000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        assert_eq!(Compressor::new(1).compress(&noise, false), None);
        assert_eq!(Compressor::new(1).compress(b"", false), None);
        assert_eq!(Compressor::new(1).compress(b"ab", false), None);
    }

    /// Each message without takeover stands alone: the shared compressor's output is the
    /// same whatever came before, so one frame serves every recipient.
    #[test]
    fn without_takeover_output_does_not_depend_on_history() {
        let message = json(20);
        let alone = Compressor::new(1).compress(&message, false);
        let mut used = Compressor::new(1);
        used.compress(&json(50), false);
        assert_eq!(used.compress(&message, false), alone);
    }

    #[test]
    fn takeover_keeps_the_window_in_step_with_the_peer() {
        let mut ours = Compressor::new(1);
        let mut theirs = Inflater::new(1 << 20, true);
        let first = json(30);
        let a = ours.compress(&first, true).unwrap();
        assert_eq!(inflate(&mut theirs, &a), first);
        // The same message again mostly refers back into the previous one.
        let b = ours.compress(&first, true).unwrap();
        assert!(b.len() < a.len() / 2, "{} vs {}", b.len(), a.len());
        assert_eq!(inflate(&mut theirs, &b), first);
        // A message not sent compressed resets our side; the peer keeps decoding.
        assert_eq!(ours.compress(b"xy", true), None);
        let c = ours.compress(&first, true).unwrap();
        assert_eq!(inflate(&mut theirs, &c), first);
    }
}

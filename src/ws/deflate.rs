//! A connection's permessage-deflate (RFC 7692), once negotiated: the parameters answered,
//! the client's compressed messages on their way in (`ws::inflow`), and which frame each
//! outgoing message gets. An idle connection keeps only [`Negotiated`] (see `ws::deflate_slot`).
//!
//! Outgoing, without server context takeover (the default), a message's compressed frame is
//! taken from its `Frames`, so a fan-out compresses once for every such recipient. wscgi's
//! compressor cannot use a window below 32 KiB (miniz_oxide); a client that asked for a
//! smaller one (`server_max_window_bits`) still gets messages compressed when they fit in its
//! window (a message compressed alone never refers back further than its own length), and
//! larger ones uncompressed, which RFC 7692 always allows.

use super::compress::Compressor;
use super::extensions::Params;
use super::inflow::{Inflow, Violation};
use super::message::{Compressed, Frames};
use super::offload::INFLATE_MIN;
use crate::config;

/// The connection compresses with a context of its own: its frames are its alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnContext;

/// What a connection that negotiated the extension keeps, busy or idle: the parameters
/// answered and the server's settings its outgoing frames are chosen by (see
/// `ws::deflate_slot`; they fit in the room the slot takes anyway).
#[derive(Debug, Clone, Copy)]
pub struct Negotiated {
    pub params: Params,
    level: u32,
    min_size: usize,
}

impl Negotiated {
    pub fn new(params: Params, settings: config::Deflate) -> Negotiated {
        Negotiated {
            params,
            level: settings.level,
            min_size: settings.min_size,
        }
    }

    /// The compressed frame of the message shared by every connection without a context of
    /// its own (made once per level by `Frames`), or `None` for the plain one.
    pub fn shared_frame(&self, frames: &mut Frames) -> Option<Compressed> {
        match self.worth_compressing(frames) {
            true => frames.deflated(self.level),
            false => None,
        }
    }

    fn worth_compressing(&self, frames: &Frames) -> bool {
        let len = frames.message().payload.len();
        let bits = self.params.server_window_bits;
        len >= self.min_size.max(1) && (bits == 15 || len <= 1usize << bits)
    }
}

/// A connection's permessage-deflate while it needs more than [`Negotiated`]: the client's
/// bytes are being followed (see [`Deflate::inflow`]), a message left packed for a worker is
/// still to be read, or it compresses with a context of its own (for good).
#[derive(Debug)]
pub struct Deflate {
    negotiated: Negotiated,
    max_message: usize,
    /// With server context takeover (`--deflate-context`): this connection's own compressor.
    own: Option<Box<Compressor>>,
    inflow: Option<Box<Inflow>>,
    /// Data messages gone through inflows let go, and read by tungstenite: how a message
    /// left packed for a worker is told apart (see `ws::offload`). Both count from 0 again
    /// whenever the connection was at rest.
    passed: u64,
    read: u64,
}

impl Deflate {
    pub fn new(negotiated: Negotiated, max_message: usize) -> Deflate {
        Deflate {
            negotiated,
            max_message,
            own: negotiated
                .params
                .server_takeover
                .then(|| Box::new(Compressor::new(negotiated.level))),
            inflow: None,
            passed: 0,
            read: 0,
        }
    }

    pub fn negotiated(&self) -> Negotiated {
        self.negotiated
    }

    /// The inflow for the client's next bytes (made when it is not held).
    pub fn inflow(&mut self) -> &mut Inflow {
        let (max, takeover) = (self.max_message, self.negotiated.params.client_takeover);
        let passed = self.passed;
        self.inflow.get_or_insert_with(|| {
            Box::new(match takeover {
                true => Inflow::new(max, true),
                false => Inflow::offloading(max, INFLATE_MIN, passed),
            })
        })
    }

    /// Tungstenite read a data message: whether it is a packed one (compressed still, for a
    /// worker to inflate), and then if it is binary.
    pub fn take_packed(&mut self) -> Option<bool> {
        let n = self.read;
        self.read += 1;
        self.inflow.as_mut()?.take_packed(n)
    }

    /// What tungstenite reads of the bytes that came with the handshake (the client's first
    /// frames, possibly compressed).
    pub fn inflate_tail(&mut self, tail: &[u8]) -> Vec<u8> {
        let inflow = self.inflow();
        inflow.feed(tail);
        let mut plain = Vec::with_capacity(tail.len());
        let mut chunk = [0u8; 2048];
        loop {
            match inflow.read(&mut chunk) {
                0 => return plain,
                n => plain.extend_from_slice(&chunk[..n]),
            }
        }
    }

    pub fn violation(&self) -> Option<Violation> {
        self.inflow.as_ref().and_then(|i| i.violation())
    }

    /// After a read: the compressed messages' bytes (on the wire, inflated) since the last
    /// call; an inflow that holds nothing is let go.
    pub fn settle(&mut self) -> (u64, u64) {
        let Some(inflow) = &mut self.inflow else {
            return (0, 0);
        };
        let counts = inflow.take_counts();
        if inflow.at_rest() {
            self.passed = inflow.messages();
            self.inflow = None;
        }
        counts
    }

    /// Nothing but [`Negotiated`] is needed any more: no compressor of its own, no inflow,
    /// and every message the inflows passed on was read (so none left packed is still to be
    /// told apart, and both counts may start from 0 again).
    pub fn idle(&self) -> Option<Negotiated> {
        let idle = self.own.is_none() && self.inflow.is_none() && self.passed == self.read;
        idle.then_some(self.negotiated)
    }

    /// The compressed frame this connection gets for the message, or `None` for the plain one.
    pub fn frame(&mut self, frames: &mut Frames) -> Option<Compressed> {
        match &mut self.own {
            Some(own) if self.negotiated.worth_compressing(frames) => {
                let message = frames.message();
                Compressed::of(message, own.compress(&message.payload, true))
            }
            Some(_) => None,
            None => self.negotiated.shared_frame(frames),
        }
    }

    /// What [`Deflate::frame`] will choose, without changing this connection, so that
    /// direct writes from several threads can share frames. Not for a connection that
    /// compresses with its own context.
    pub fn shared_frame(&self, frames: &mut Frames) -> Result<Option<Compressed>, OwnContext> {
        match &self.own {
            Some(_) => Err(OwnContext),
            None => Ok(self.negotiated.shared_frame(frames)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::inflate::Inflater;
    use crate::ws::message::Message;

    fn params(server_takeover: bool, bits: u8) -> Params {
        Params {
            server_takeover,
            client_takeover: false,
            server_window_bits: bits,
            server_window_offered: bits < 15,
        }
    }

    fn settings(min_size: usize) -> config::Deflate {
        config::Deflate {
            min_size,
            ..config::Deflate::default()
        }
    }

    fn deflate(params: Params, settings: config::Deflate, max_message: usize) -> Deflate {
        Deflate::new(Negotiated::new(params, settings), max_message)
    }

    fn text(n: usize) -> Frames {
        Frames::new(Message::new(false, "a".repeat(n)))
    }

    #[test]
    fn short_messages_and_small_windows_go_plain() {
        let mut d = deflate(params(false, 15), settings(128), 1 << 20);
        assert!(d.frame(&mut text(127)).is_none());
        assert!(d.frame(&mut text(128)).is_some());
        let mut small = deflate(params(false, 9), settings(128), 1 << 20);
        assert!(small.frame(&mut text(512)).is_some());
        assert!(small.frame(&mut text(513)).is_none());
    }

    #[test]
    fn an_idle_connection_keeps_no_inflow() {
        let mut d = deflate(params(false, 15), settings(0), 1 << 20);
        let packed = Compressor::new(1).compress(&[b'a'; 300], false).unwrap();
        let frame = crate::testing::client_frame(0xc1, &packed, [1, 2, 3, 4]);
        d.inflow().feed(&frame[..5]);
        assert_eq!(d.settle(), (0, 0));
        assert!(d.inflow.is_some(), "half a frame is held");
        d.inflow().feed(&frame[5..]);
        let mut buf = [0u8; 512];
        assert_eq!(d.inflow().read(&mut buf), 2 + 2 + 4 + 300);
        assert_eq!(d.settle(), (packed.len() as u64, 300));
        assert!(d.inflow.is_none(), "at rest: let go");
        assert!(d.idle().is_none(), "passed on, not read yet");
        assert_eq!(d.take_packed(), None, "read, and not packed");
        assert!(d.idle().is_some());
        let mut context = deflate(
            Params {
                client_takeover: true,
                ..params(false, 15)
            },
            settings(0),
            1 << 20,
        );
        context.inflow().feed(&frame);
        while context.inflow().read(&mut buf) > 0 {}
        context.settle();
        assert!(context.inflow.is_some(), "the client's window is kept");
    }

    #[test]
    fn connections_without_context_share_one_frame() {
        let mut a = deflate(params(false, 15), settings(0), 1 << 20);
        let b = deflate(params(false, 10), settings(0), 1 << 20);
        let mut frames = text(1000);
        let fa = a.frame(&mut frames).unwrap();
        let fb = b.shared_frame(&mut frames).unwrap().unwrap();
        assert_eq!(fa.frame.as_ptr(), fb.frame.as_ptr());
        let own = deflate(params(true, 15), settings(0), 1 << 20);
        assert!(own.shared_frame(&mut frames).is_err());
    }

    #[test]
    fn context_takeover_compresses_on_its_own_state() {
        let mut d = deflate(params(true, 15), settings(0), 1 << 20);
        let mut peer = Inflater::new(1 << 20, true);
        let body = "{\"user\":\"alice\",\"text\":\"hello there\"}".repeat(4);
        let mut sizes = Vec::new();
        for _ in 0..2 {
            let mut frames = Frames::new(Message::new(false, body.clone()));
            let c = d.frame(&mut frames).unwrap();
            let payload = &c.frame[c.frame.len() - c.payload_len..];
            peer.feed(payload).unwrap();
            assert_eq!(peer.finish().unwrap().0, body.as_bytes());
            sizes.push(c.payload_len);
        }
        assert!(sizes[1] < sizes[0] / 2, "{sizes:?}");
    }
}

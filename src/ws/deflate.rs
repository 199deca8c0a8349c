//! A connection's permessage-deflate (RFC 7692), once negotiated: the parameters answered,
//! the client's compressed messages on their way in (`ws::inflow`), and which frame each
//! outgoing message gets.
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

/// Kept for every connection that negotiated the extension, so it is small: the inflow exists
/// only while the client's bytes are being followed (see [`Deflate::inflow`]).
#[derive(Debug)]
pub struct Deflate {
    pub params: Params,
    level: u32,
    min_size: usize,
    max_message: usize,
    /// With server context takeover (`--deflate-context`): this connection's own compressor.
    own: Option<Box<Compressor>>,
    inflow: Option<Box<Inflow>>,
    /// Data messages gone through inflows let go, and read by tungstenite: how a message
    /// left packed for a worker is told apart (see `ws::offload`).
    passed: u64,
    read: u64,
}

impl Deflate {
    pub fn new(params: Params, settings: config::Deflate, max_message: usize) -> Deflate {
        Deflate {
            params,
            level: settings.level,
            min_size: settings.min_size,
            max_message,
            own: params
                .server_takeover
                .then(|| Box::new(Compressor::new(settings.level))),
            inflow: None,
            passed: 0,
            read: 0,
        }
    }

    /// The inflow for the client's next bytes (made when it is not held).
    pub fn inflow(&mut self) -> &mut Inflow {
        let (max, takeover) = (self.max_message, self.params.client_takeover);
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
    /// call; an inflow that holds nothing is let go, so an idle connection keeps only this
    /// record.
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

    /// The compressed frame this connection gets for the message, or `None` for the plain one.
    pub fn frame(&mut self, frames: &mut Frames) -> Option<Compressed> {
        if !self.worth_compressing(frames) {
            return None;
        }
        match &mut self.own {
            Some(own) => {
                let message = frames.message();
                Compressed::of(message, own.compress(&message.payload, true))
            }
            None => frames.deflated(self.level),
        }
    }

    /// What [`Deflate::frame`] will choose, without changing this connection, so that
    /// direct writes from several threads can share frames. Not for a connection that
    /// compresses with its own context.
    pub fn shared_frame(&self, frames: &mut Frames) -> Result<Option<Compressed>, OwnContext> {
        match (&self.own, self.worth_compressing(frames)) {
            (Some(_), _) => Err(OwnContext),
            (None, false) => Ok(None),
            (None, true) => Ok(frames.deflated(self.level)),
        }
    }

    fn worth_compressing(&self, frames: &Frames) -> bool {
        let len = frames.message().payload.len();
        let window = 1usize << self.params.server_window_bits;
        len >= self.min_size.max(1) && (self.params.server_window_bits == 15 || len <= window)
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

    fn text(n: usize) -> Frames {
        Frames::new(Message::new(false, "a".repeat(n)))
    }

    #[test]
    fn short_messages_and_small_windows_go_plain() {
        let mut d = Deflate::new(params(false, 15), settings(128), 1 << 20);
        assert!(d.frame(&mut text(127)).is_none());
        assert!(d.frame(&mut text(128)).is_some());
        let mut small = Deflate::new(params(false, 9), settings(128), 1 << 20);
        assert!(small.frame(&mut text(512)).is_some());
        assert!(small.frame(&mut text(513)).is_none());
    }

    #[test]
    fn an_idle_connection_keeps_no_inflow() {
        let mut d = Deflate::new(params(false, 15), settings(0), 1 << 20);
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
        let mut context = Deflate::new(
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
        let mut a = Deflate::new(params(false, 15), settings(0), 1 << 20);
        let b = Deflate::new(params(false, 10), settings(0), 1 << 20);
        let mut frames = text(1000);
        let fa = a.frame(&mut frames).unwrap();
        let fb = b.shared_frame(&mut frames).unwrap().unwrap();
        assert_eq!(fa.frame.as_ptr(), fb.frame.as_ptr());
        let own = Deflate::new(params(true, 15), settings(0), 1 << 20);
        assert!(own.shared_frame(&mut frames).is_err());
    }

    #[test]
    fn context_takeover_compresses_on_its_own_state() {
        let mut d = Deflate::new(params(true, 15), settings(0), 1 << 20);
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

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
use super::inflow::Inflow;
use super::message::{Compressed, Frames};
use crate::config;

/// The connection compresses with a context of its own: its frames are its alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnContext;

#[derive(Debug)]
pub struct Deflate {
    pub params: Params,
    pub inflow: Inflow,
    settings: config::Deflate,
    /// With server context takeover (`--deflate-context`): this connection's own compressor.
    own: Option<Box<Compressor>>,
    /// Messages sent compressed so far: their bytes before and after compression.
    pub plain_out: u64,
    pub wire_out: u64,
}

impl Deflate {
    pub fn new(params: Params, settings: config::Deflate, max_message: usize) -> Deflate {
        Deflate {
            params,
            inflow: Inflow::new(max_message, params.client_takeover),
            settings,
            own: params
                .server_takeover
                .then(|| Box::new(Compressor::new(settings.level))),
            plain_out: 0,
            wire_out: 0,
        }
    }

    /// The compressed frame this connection gets for the message, or `None` for the plain one.
    pub fn frame(&mut self, frames: &mut Frames) -> Option<Compressed> {
        if !self.worth_compressing(frames) {
            return None;
        }
        let chosen = match &mut self.own {
            Some(own) => {
                let message = frames.message();
                Compressed::of(message, own.compress(&message.payload, true))
            }
            None => frames.deflated(self.settings.level),
        };
        if let Some(c) = &chosen {
            self.plain_out += frames.message().payload.len() as u64;
            self.wire_out += c.payload_len as u64;
        }
        chosen
    }

    /// What [`Deflate::frame`] will choose, without changing this connection, so that
    /// direct writes from several threads can share frames. Not for a connection that
    /// compresses with its own context.
    pub fn shared_frame(&self, frames: &mut Frames) -> Result<Option<Compressed>, OwnContext> {
        match (&self.own, self.worth_compressing(frames)) {
            (Some(_), _) => Err(OwnContext),
            (None, false) => Ok(None),
            (None, true) => Ok(frames.deflated(self.settings.level)),
        }
    }

    fn worth_compressing(&self, frames: &Frames) -> bool {
        let len = frames.message().payload.len();
        let window = 1usize << self.params.server_window_bits;
        len >= self.settings.min_size.max(1)
            && (self.params.server_window_bits == 15 || len <= window)
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
        assert_eq!(small.plain_out, 512);
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

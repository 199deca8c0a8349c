//! Where a connection keeps its permessage-deflate: nothing without it; [`Negotiated`] (the
//! parameters and the sending settings, no heap) while idle; a [`Deflate`] record on the heap
//! only while it is busy. Most connections are idle most of their life, and with deflate
//! negotiated an idle one then costs what it costs without.
//!
//! A connection goes busy when the client's bytes arrive (the inflow follows them), and for
//! good when it compresses with a context of its own (`--deflate-context`); it goes back to
//! rest after a read that left nothing to keep (see [`Deflate::idle`]). Choosing an outgoing
//! frame needs no record unless the connection has its own compressor, so a fan-out to idle
//! connections allocates nothing per recipient.

use super::deflate::{Deflate, Negotiated, OwnContext};
use super::extensions::Params;
use super::inflow::Violation;
use super::limits::Limits;
use super::message::{Compressed, Frames};

#[derive(Debug, Default)]
pub enum DeflateSlot {
    /// Not negotiated (or the socket it was negotiated on is gone).
    #[default]
    Off,
    Rest(Negotiated),
    Busy(Box<Deflate>),
}

impl DeflateSlot {
    /// As the 101 accepts `params` (if any): at rest, or busy for good with a compressor of its
    /// own (server context takeover).
    pub fn accepted(params: Option<Params>, limits: &Limits) -> DeflateSlot {
        let Some((params, settings)) = params.zip(limits.deflate) else {
            return DeflateSlot::Off;
        };
        let negotiated = Negotiated::new(params, settings);
        match params.server_takeover {
            true => DeflateSlot::Busy(Box::new(Deflate::new(negotiated, limits.max_message))),
            false => DeflateSlot::Rest(negotiated),
        }
    }

    pub fn params(&self) -> Option<Params> {
        match self {
            DeflateSlot::Off => None,
            DeflateSlot::Rest(n) => Some(n.params),
            DeflateSlot::Busy(d) => Some(d.negotiated().params),
        }
    }

    /// The record, made if the connection is at rest (for the client's bytes); `None` when
    /// the extension is off.
    pub fn busy(&mut self, limits: &Limits) -> Option<&mut Deflate> {
        if let DeflateSlot::Rest(negotiated) = *self {
            *self = DeflateSlot::Busy(Box::new(Deflate::new(negotiated, limits.max_message)));
        }
        self.record()
    }

    /// The record if the connection is busy; never makes one.
    pub fn record(&mut self) -> Option<&mut Deflate> {
        match self {
            DeflateSlot::Busy(d) => Some(d),
            _ => None,
        }
    }

    /// Holds a record on the heap (for tests: see `testing`).
    pub fn is_busy(&self) -> bool {
        matches!(self, DeflateSlot::Busy(_))
    }

    pub fn violation(&self) -> Option<Violation> {
        match self {
            DeflateSlot::Busy(d) => d.violation(),
            _ => None,
        }
    }

    /// After a read: the compressed messages' bytes (on the wire, inflated) since the last
    /// call ([`Deflate::settle`]); a record left with nothing to keep is let go.
    pub fn settle(&mut self) -> (u64, u64) {
        let DeflateSlot::Busy(d) = self else {
            return (0, 0);
        };
        let counts = d.settle();
        if let Some(negotiated) = d.idle() {
            *self = DeflateSlot::Rest(negotiated);
        }
        counts
    }

    /// The compressed frame this connection gets for the message, or `None` for the plain one.
    pub fn frame(&mut self, frames: &mut Frames) -> Option<Compressed> {
        match self {
            DeflateSlot::Off => None,
            DeflateSlot::Rest(n) => n.shared_frame(frames),
            DeflateSlot::Busy(d) => d.frame(frames),
        }
    }

    /// What [`DeflateSlot::frame`] will choose, without changing this connection (see
    /// [`Deflate::shared_frame`]).
    pub fn shared_frame(&self, frames: &mut Frames) -> Result<Option<Compressed>, OwnContext> {
        match self {
            DeflateSlot::Off => Ok(None),
            DeflateSlot::Rest(n) => Ok(n.shared_frame(frames)),
            DeflateSlot::Busy(d) => d.shared_frame(frames),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, Config};
    use crate::ws::compress::Compressor;
    use crate::ws::message::Message;

    fn limits(context_takeover: bool) -> Limits {
        let mut config = Config::for_backend("http://127.0.0.1:1/");
        config.deflate = Some(config::Deflate {
            context_takeover,
            ..config::Deflate::default()
        });
        Limits::from_config(&config)
    }

    fn params(server_takeover: bool, client_takeover: bool) -> Params {
        Params {
            server_takeover,
            client_takeover,
            server_window_bits: 15,
            server_window_offered: false,
        }
    }

    /// One compressed message from the client, read as the connection reads it (through the
    /// inflow, then by tungstenite), then the read settled.
    fn receive(slot: &mut DeflateSlot, limits: &Limits) {
        let packed = Compressor::new(1).compress(&[b'a'; 300], false).unwrap();
        let frame = crate::testing::client_frame(0xc1, &packed, [1, 2, 3, 4]);
        let d = slot.busy(limits).unwrap();
        d.inflow().feed(&frame);
        while d.inflow().read(&mut [0u8; 512]) > 0 {}
        assert_eq!(d.take_packed(), None);
        assert_eq!(slot.settle(), (packed.len() as u64, 300));
    }

    #[test]
    fn the_slot_is_no_larger_than_two_words() {
        assert!(size_of::<DeflateSlot>() <= 2 * size_of::<usize>());
    }

    #[test]
    fn an_idle_connection_goes_back_to_rest() {
        let limits = limits(false);
        let mut slot = DeflateSlot::accepted(Some(params(false, false)), &limits);
        assert!(matches!(slot, DeflateSlot::Rest(_)));
        receive(&mut slot, &limits);
        assert!(matches!(slot, DeflateSlot::Rest(_)), "{slot:?}");
        let mut frames = Frames::new(Message::new(false, "a".repeat(1000)));
        assert!(slot.frame(&mut frames).is_some(), "compressed from rest");
        assert!(slot.shared_frame(&mut frames).unwrap().is_some());
        assert!(!slot.is_busy());
    }

    #[test]
    fn a_connection_with_a_context_of_its_own_stays_busy() {
        let limits = limits(true);
        for (server, client) in [(true, true), (true, false), (false, true)] {
            let mut slot = DeflateSlot::accepted(Some(params(server, client)), &limits);
            receive(&mut slot, &limits);
            assert!(slot.is_busy(), "server {server}, client {client}");
        }
        let mut off = DeflateSlot::accepted(None, &limits);
        assert!(off.busy(&limits).is_none());
    }
}

//! The send path: every data message for a client (a backend reply, a push, a publish, a
//! broadcast, a direct parallel write's remainder) enters the connection through
//! [`Conn::send_message`], which picks the connection's frame of the message (plain or
//! compressed, see `ws::deflate`) from the message's `Frames`, queues it and counts it.

use std::io;

use log::{debug, warn};

use super::conn::{Conn, Phase};
use crate::metrics::Traffic;
use crate::ws::close;
use crate::ws::message::Frames;
use crate::ws::outbuf::Full;

impl Conn {
    /// Every data message for the client enters here: it is queued (the frame for this
    /// connection taken from `frames`), less what a direct write already put on the socket,
    /// and counted. A client too slow to take it is closed.
    pub fn send_message(&mut self, frames: &mut Frames, written: Written) -> Result<(), SendError> {
        let sent = match written {
            Written::Nothing => 0,
            Written::Directly(Ok(sent)) => sent,
            Written::Directly(Err(e)) => {
                debug!("{}: write failed: {e}", self.remote);
                self.drop_socket(close::ABNORMAL, "write failed");
                return Err(SendError::NotOpen);
            }
        };
        // A failing connection still takes the replies to messages it sent before.
        let (Phase::Open { wire, .. } | Phase::Failing { wire, .. }) = &mut self.phase else {
            return Err(SendError::NotOpen);
        };
        let frame = match self.deflate.as_deref_mut().and_then(|d| d.frame(frames)) {
            Some(compressed) => {
                self.traffic.deflate.plain_out += frames.message().payload.len() as u64;
                self.traffic.deflate.wire_out += compressed.payload_len as u64;
                compressed.frame
            }
            None => frames.plain(),
        };
        if sent < frame.len() && wire.out.push(frame.slice(sent..)) == Err(Full) {
            warn!("{}: slow consumer, closing", self.id());
            self.close(close::POLICY, "slow consumer");
            return Err(SendError::SlowConsumer);
        }
        self.traffic.messages_out += 1;
        self.traffic.bytes_out += frames.message().payload.len() as u64;
        Ok(())
    }

    /// Messages and bytes in and out so far.
    pub fn traffic(&self) -> Traffic {
        self.traffic
    }
}

/// How much of a message's frame reached the socket before the message entered the connection.
#[derive(Debug)]
pub enum Written {
    /// Nothing: the whole frame is queued.
    Nothing,
    /// A direct write (see `ws::direct`) took this many bytes, or failed.
    Directly(io::Result<usize>),
}

/// Why a message could not be queued for a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The connection is not (or no longer) open.
    NotOpen,
    /// Its outgoing buffer is full; it is being closed with 1008.
    SlowConsumer,
}

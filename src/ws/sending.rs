//! The one way in for every data message to a client (backend replies, pushes, publishes,
//! broadcasts, and replays after a resume): the connection takes it, counts it, and queues the
//! frame of it that suits this connection.

use std::io;

use log::{debug, warn};

use super::conn::{Conn, Phase, Wire};
use super::replay::Kept;
use crate::ws::close;
use crate::ws::message::Frames;
use crate::ws::outbuf::Full;

impl Conn {
    /// Every data message for the client enters here: it is queued (the frame for this
    /// connection taken from `frames`), less what a direct write already put on the socket,
    /// and counted. A resumable session also keeps it for a replay (see `ws::resuming`): while
    /// it waits for its client that is all, and a socket that stalls or fails parks it. Any
    /// other client too slow to take the message is closed.
    pub fn send_message(
        &mut self,
        frames: &mut Frames,
        written: Written,
    ) -> Result<Accepted, SendError> {
        let kept = self.keep(frames.message())?;
        self.traffic.messages_out += 1;
        self.traffic.bytes_out += frames.message().payload.len() as u64;
        match kept {
            Kept::Waiting => return Ok(Accepted::Kept),
            Kept::Behind => {
                self.pump();
                return Ok(Accepted::Sent);
            }
            Kept::No | Kept::Live => {}
        }
        let sent = match written {
            Written::Nothing => 0,
            Written::Directly(Ok(sent)) => sent,
            Written::Directly(Err(e)) => {
                debug!("{}: write failed: {e}", self.remote);
                self.drop_socket(close::ABNORMAL, "write failed");
                return match kept {
                    Kept::Live => Ok(Accepted::Kept),
                    _ => Err(SendError::NotOpen),
                };
            }
        };
        // A failing connection still takes the replies to messages it sent before.
        let (Phase::Open { wire, .. } | Phase::Failing { wire, .. }) = &mut self.phase else {
            return Err(SendError::NotOpen);
        };
        if queue_frame(wire, frames, sent) == Err(Full) {
            if kept == Kept::Live {
                warn!("{}: write stall", self.id());
                self.drop_socket(close::ABNORMAL, "write stall");
                return Ok(Accepted::Kept);
            }
            warn!("{}: slow consumer, closing", self.id());
            self.close(close::POLICY, "slow consumer");
            return Err(SendError::SlowConsumer);
        }
        Ok(Accepted::Sent)
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

/// Queues this connection's frame of the message, less its first `sent` bytes (written to the
/// socket directly already). Replays after a resume come through here too.
pub(super) fn queue_frame(wire: &mut Wire, frames: &mut Frames, sent: usize) -> Result<(), Full> {
    let frame = frames.plain();
    match sent < frame.len() {
        true => wire.out.push(frame.slice(sent..)),
        false => Ok(()),
    }
}

/// What became of a message a connection took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Queued for (or written to) the socket.
    Sent,
    /// Kept by a session waiting for its client; it gets the message when it resumes.
    Kept,
}

/// Why a message could not be queued for a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The connection is not (or no longer) open.
    NotOpen,
    /// Its outgoing buffer is full (or, waiting to resume, its `--resume-buffer`); it is
    /// being closed with 1008.
    SlowConsumer,
}

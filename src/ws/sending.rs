//! The one way in for every data message to a client (backend replies, pushes, publishes,
//! broadcasts, a direct parallel write's remainder, and replays after a resume): the
//! connection takes it, counts it, and queues the frame of it that suits this connection
//! (plain or compressed, as its handshake negotiated; see `ws::deflate`), taken from the
//! message's `Frames`.

use log::{debug, warn};

use super::conn::{Conn, Phase};
use super::replay::Kept;
use super::sent::{Accepted, SendError, Written};
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
        if wire.queue_frame(frames, sent, &mut self.deflate, &mut self.traffic) == Err(Full) {
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

//! A connection's socket (plain or TLS, see `ws::transport`) and the bytes waiting to go out
//! on it.

use crate::ws::message::Frames;
use crate::ws::outbuf::{Full, OutBuf};
use crate::ws::transport::Transport;

#[derive(Debug)]
pub(super) struct Wire {
    pub sock: Transport,
    pub out: OutBuf,
}

impl Wire {
    /// Writes what the socket takes. `Ok(true)`: everything is out, TLS records included.
    pub fn flush(&mut self) -> std::io::Result<bool> {
        Ok(self.out.write_to(&mut self.sock)? && self.sock.flush_held()?)
    }

    /// Queues this connection's frame of the message, less its first `sent` bytes (written to the
    /// socket directly already). Replays after a resume come through here too.
    pub fn queue_frame(&mut self, frames: &mut Frames, sent: usize) -> Result<(), Full> {
        let frame = frames.plain();
        match sent < frame.len() {
            true => self.out.push(frame.slice(sent..)),
            false => Ok(()),
        }
    }
}

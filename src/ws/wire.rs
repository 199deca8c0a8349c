//! A connection's socket and the bytes waiting to go out on it.

use mio::net::TcpStream;

use crate::ws::message::Frames;
use crate::ws::outbuf::{Full, OutBuf};

#[derive(Debug)]
pub(super) struct Wire {
    pub sock: TcpStream,
    pub out: OutBuf,
}

impl Wire {
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

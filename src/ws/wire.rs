//! A connection's socket (plain or TLS, see `ws::transport`) and the bytes waiting to go out
//! on it.

use crate::metrics::Traffic;
use crate::ws::deflate_slot::DeflateSlot;
use crate::ws::frame;
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

    /// Queues this connection's frame of the message (compressed if its handshake negotiated
    /// permessage-deflate and compression is worth it, counted in `traffic`), less its first
    /// `sent` bytes (written to the socket directly already). Replays after a resume come
    /// through here too. A message the queue cannot take is not compressed at all: a
    /// compressor with context takeover must see only what the client receives.
    pub fn queue_frame(
        &mut self,
        frames: &mut Frames,
        sent: usize,
        deflate: &mut DeflateSlot,
        traffic: &mut Traffic,
    ) -> Result<(), Full> {
        // A compressed frame is never longer than the plain one.
        let plain_len = frame::encoded_len(frames.message().payload.len());
        if sent == 0 && !self.out.takes(plain_len) {
            return Err(Full);
        }
        let frame = match deflate.frame(frames) {
            Some(compressed) => {
                traffic.deflate.plain_out += frames.message().payload.len() as u64;
                traffic.deflate.wire_out += compressed.payload_len as u64;
                compressed.frame
            }
            None => frames.plain(),
        };
        match sent < frame.len() {
            true => self.out.push(frame.slice(sent..)),
            false => Ok(()),
        }
    }
}

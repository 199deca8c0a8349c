//! A connection's bounded outgoing queue of encoded bytes.
//!
//! Every byte for a client passes through here in order: the 101 response, frames wscgi encodes
//! (shared `Bytes`, so one published frame can sit in many queues without copies), and the
//! control frames tungstenite writes (pongs, close replies). The queue is bounded by
//! `--max-outbuf` (or one message, if that is larger); a client that cannot keep up is found by
//! `push` failing, not by memory growth.

use std::collections::VecDeque;
use std::io::{self, Write};

use tungstenite::Bytes;

/// Small writes (control frames are at most 127 bytes) are accepted past the limit, so a
/// close frame can still be queued for a client whose buffer is full.
const CONTROL_SLACK: usize = 256;

#[derive(Debug)]
pub struct OutBuf {
    chunks: VecDeque<Bytes>,
    len: usize,
    limit: usize,
}

/// The queue would pass `--max-outbuf`: the client is too slow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

impl OutBuf {
    pub fn new(limit: usize) -> OutBuf {
        OutBuf {
            chunks: VecDeque::new(),
            len: 0,
            limit,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether [`OutBuf::push`] would take `len` more bytes (and so any fewer).
    pub fn takes(&self, len: usize) -> bool {
        let small = len <= CONTROL_SLACK && self.len < self.limit + CONTROL_SLACK;
        // One message always fits an empty queue, so --max-outbuf never has to exceed
        // --max-message for a client that keeps up.
        self.is_empty() || self.len + len <= self.limit || small
    }

    pub fn push(&mut self, bytes: Bytes) -> Result<(), Full> {
        if bytes.is_empty() {
            return Ok(());
        }
        if !self.takes(bytes.len()) {
            return Err(Full);
        }
        self.len += bytes.len();
        self.chunks.push_back(bytes);
        Ok(())
    }

    /// Writes as much as the socket takes. `Ok(true)`: all written; `Ok(false)`: the socket is
    /// full, wait for WRITABLE.
    pub fn write_to(&mut self, sink: &mut impl Write) -> io::Result<bool> {
        while let Some(front) = self.chunks.front_mut() {
            match sink.write(front) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) if n == front.len() => {
                    self.len -= n;
                    self.chunks.pop_front();
                }
                Ok(n) => {
                    self.len -= n;
                    *front = front.slice(n..);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes at most `cap` bytes per write, then blocks.
    struct Trickle {
        got: Vec<u8>,
        budget: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(3).min(self.budget);
            self.budget -= n;
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_keep_order() {
        let mut out = OutBuf::new(1024);
        out.push(Bytes::from_static(b"hello ")).unwrap();
        out.push(Bytes::from_static(b"world")).unwrap();
        let mut sink = Trickle {
            got: Vec::new(),
            budget: 7,
        };
        assert!(!out.write_to(&mut sink).unwrap());
        assert_eq!(out.len(), 4);
        sink.budget = 100;
        assert!(out.write_to(&mut sink).unwrap());
        assert_eq!(sink.got, b"hello world");
        assert!(out.is_empty());
    }

    #[test]
    fn bounded_but_control_frames_fit() {
        let mut out = OutBuf::new(4096);
        out.push(Bytes::from(vec![0; 4000])).unwrap();
        assert_eq!(out.push(Bytes::from(vec![0; 1000])), Err(Full));
        assert!(out.takes(100) && !out.takes(1000));
        assert!(out.push(Bytes::from(vec![0; 100])).is_ok());
    }

    #[test]
    fn one_large_message_fits_an_empty_queue() {
        let mut out = OutBuf::new(4096);
        out.push(Bytes::from(vec![0; 10_000])).unwrap();
        assert_eq!(out.push(Bytes::from(vec![0; 1000])), Err(Full));
    }
}

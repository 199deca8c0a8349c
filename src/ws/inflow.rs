//! The client's compressed messages, turned into plain frames before tungstenite reads them.
//!
//! tungstenite knows no extensions: it fails any frame with RSV1 set. On a connection that
//! negotiated permessage-deflate the bytes from the socket therefore pass through here first.
//! Frames of uncompressed messages and control frames go on unchanged; the frames of a
//! compressed message (RSV1 on its first frame) are taken out, their payload unmasked and
//! inflated as it arrives (bounded by `--max-message`, see `ws::inflate`), and when its final
//! frame is in, the whole message goes on as one plain frame (masked with a zero key, as a
//! client frame must be). A control frame between the fragments goes on before it, as it
//! came before the message's end. RSV1 on a control frame or a continuation, or a new
//! message inside a compressed one, is a violation (RFC 7692 §6.1). Pure. The same works the
//! other way round for a client reading a server's (unmasked) frames: `examples/bench/load`.
//!
//! A server's inflow may leave large messages to a worker (see `ws::offload`): a compressed
//! message in one frame of at least `offload_min` bytes is collected, unmasked but still
//! compressed, and goes on as one binary frame; its number among the data messages that
//! went on is noted, so the reader can tell it from a binary message the client sent.

use std::collections::VecDeque;
use std::fmt;

use super::frame_head::{Head, HeadReader, Unmask};
use super::inflate::{InflateError, Inflater};
use crate::ws::close;
use crate::ws::frame::OP_BINARY;

/// Why the connection fails; reading stops at the first one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    Inflate(InflateError),
    /// A framing rule of RFC 7692 §6.1 (or a client frame without a mask).
    Protocol(&'static str),
}

impl Violation {
    pub fn close_code(&self) -> u16 {
        match self {
            Violation::Inflate(InflateError::TooBig) => close::TOO_BIG,
            Violation::Inflate(InflateError::BadData) => close::INVALID_DATA,
            Violation::Protocol(_) => close::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Inflate(e) => e.fmt(f),
            Violation::Protocol(why) => f.write_str(why),
        }
    }
}

#[derive(Debug)]
enum State {
    Head(HeadReader),
    /// Passing a frame's payload on as it comes.
    Pass {
        left: u64,
    },
    /// Inflating a payload of the compressed message; `fin` on its last frame.
    Inflate {
        left: u64,
        unmask: Unmask,
        fin: bool,
    },
}

#[derive(Debug)]
pub struct Inflow {
    inflater: Inflater,
    state: State,
    /// The opcode of the compressed message whose frames are arriving.
    compressed: Option<u8>,
    /// Bytes for tungstenite, in order; the first `front_read` bytes of the front are read.
    out: VecDeque<Vec<u8>>,
    front_read: usize,
    /// The back of `out` is passed-through bytes that more may join.
    back_open: bool,
    violation: Option<Violation>,
    /// The frames come from a client, so they must be masked (and so are the ones emitted).
    from_client: bool,
    /// Compressed messages so far: bytes on the wire, and inflated.
    pub wire_bytes: u64,
    pub inflated_bytes: u64,
    limit: usize,
    /// Compressed messages whose first frame is at least this large are left to a worker.
    offload_min: Option<usize>,
    /// The compressed payload of such a message, while it arrives.
    packed: Option<Vec<u8>>,
    /// Data messages gone on so far, and the numbers of those that went on packed, with
    /// whether they are binary.
    messages: u64,
    offloaded: VecDeque<(u64, bool)>,
}

impl Inflow {
    /// For a server: `takeover`, the client keeps its compression state between messages.
    pub fn new(max_message: usize, takeover: bool) -> Inflow {
        Inflow::with_role(max_message, takeover, true)
    }

    /// For a server that leaves compressed messages of at least `min` bytes to a worker
    /// (without context takeover), counting data messages on from `counted`.
    pub fn offloading(max_message: usize, min: usize, counted: u64) -> Inflow {
        Inflow {
            offload_min: Some(min),
            messages: counted,
            ..Inflow::new(max_message, false)
        }
    }

    /// For a client reading a server's frames (`takeover`: the server's context).
    pub fn reading_server(max_message: usize, takeover: bool) -> Inflow {
        Inflow::with_role(max_message, takeover, false)
    }

    fn with_role(max_message: usize, takeover: bool, from_client: bool) -> Inflow {
        Inflow {
            inflater: Inflater::new(max_message, takeover),
            state: State::Head(HeadReader::default()),
            compressed: None,
            out: VecDeque::new(),
            front_read: 0,
            back_open: false,
            violation: None,
            from_client,
            wire_bytes: 0,
            inflated_bytes: 0,
            limit: max_message,
            offload_min: None,
            packed: None,
            messages: 0,
            offloaded: VecDeque::new(),
        }
    }

    /// Data messages gone on so far (see [`Inflow::offloading`]).
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Whether the data message numbered `n` went on packed, and then if it is binary.
    pub fn take_packed(&mut self, n: u64) -> Option<bool> {
        let &(first, binary) = self.offloaded.front()?;
        (first == n).then(|| {
            self.offloaded.pop_front();
            binary
        })
    }

    pub fn violation(&self) -> Option<Violation> {
        self.violation
    }

    /// Nothing held: no partial frame, no compressed message, no output, no inflater state.
    /// An idle connection then need not keep this at all (see `ws::deflate`).
    pub fn at_rest(&self) -> bool {
        matches!(&self.state, State::Head(r) if r.is_empty())
            && self.compressed.is_none()
            && self.out.is_empty()
            && self.violation.is_none()
            && self.inflater.is_idle()
            && self.packed.is_none()
            && self.offloaded.is_empty()
    }

    /// The compressed messages' bytes (on the wire, inflated) since the last call.
    pub fn take_counts(&mut self) -> (u64, u64) {
        let counts = (self.wire_bytes, self.inflated_bytes);
        (self.wire_bytes, self.inflated_bytes) = (0, 0);
        counts
    }

    /// Follows `data`, the next bytes from the socket. After a violation, input is ignored.
    pub fn feed(&mut self, mut data: &[u8]) {
        while self.violation.is_none() {
            match &mut self.state {
                State::Pass { left: 0 } | State::Inflate { left: 0, .. } => self.frame_done(),
                _ if data.is_empty() => return,
                State::Head(reader) => {
                    if let Some(head) = reader.feed(&mut data) {
                        self.start(head);
                    }
                }
                State::Pass { left } => {
                    let take = (*left).min(data.len() as u64) as usize;
                    *left -= take as u64;
                    let (now, rest) = data.split_at(take);
                    data = rest;
                    self.pass(now);
                }
                State::Inflate { left, unmask, .. } => {
                    let take = (*left).min(data.len() as u64) as usize;
                    *left -= take as u64;
                    let (now, rest) = data.split_at(take);
                    data = rest;
                    let mut failed = None;
                    match &mut self.packed {
                        // Room was made for the frame at its head.
                        Some(packed) => unmask.feed(now, |plain| packed.extend_from_slice(plain)),
                        None => {
                            let inflater = &mut self.inflater;
                            unmask.feed(now, |plain| {
                                if failed.is_none() {
                                    failed = inflater.feed(plain).err();
                                }
                            });
                        }
                    }
                    self.violation = failed.map(Violation::Inflate);
                }
            }
        }
    }

    /// Copies bytes for tungstenite into `buf`; 0 when there are none (yet).
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while n < buf.len() {
            let Some(front) = self.out.front() else { break };
            let chunk = &front[self.front_read..];
            let take = chunk.len().min(buf.len() - n);
            buf[n..n + take].copy_from_slice(&chunk[..take]);
            n += take;
            self.front_read += take;
            if self.front_read == front.len() {
                self.out.pop_front();
                self.front_read = 0;
                self.back_open &= !self.out.is_empty();
            }
        }
        n
    }

    fn start(&mut self, head: Head) {
        let opcode = head.opcode();
        let violation = match () {
            _ if head.is_control() && head.rsv1() => Some("RSV1 set on a control frame"),
            _ if head.is_control() => None,
            _ if opcode == 0 && head.rsv1() => Some("RSV1 set on a continuation frame"),
            _ if opcode != 0 && self.compressed.is_some() => {
                Some("a new message before the compressed one ended")
            }
            _ => None,
        };
        if let Some(why) = violation {
            self.violation = Some(Violation::Protocol(why));
            return;
        }
        // RSV2/RSV3, unknown opcodes: tungstenite fails those frames itself.
        let starts_compressed = head.rsv1() && matches!(opcode, 1 | 2) && head.bytes[0] & 0x30 == 0;
        let continues_compressed = opcode == 0 && self.compressed.is_some();
        if !(starts_compressed || continues_compressed) {
            if !head.is_control() && head.fin() {
                self.messages += 1;
            }
            self.pass(head.as_bytes());
            self.state = State::Pass {
                left: head.payload_len,
            };
            return;
        }
        let key = match (head.mask(), self.from_client) {
            (Some(key), true) => key,
            (None, false) => [0; 4],
            (None, true) => {
                return self.violation = Some(Violation::Protocol("unmasked client frame"));
            }
            (Some(_), false) => {
                return self.violation = Some(Violation::Protocol("masked server frame"));
            }
        };
        if starts_compressed {
            self.compressed = Some(opcode);
            // Fragmented, it is inflated as it comes: a bomb's first fragment is refused
            // without waiting for its last.
            if head.fin()
                && self
                    .offload_min
                    .is_some_and(|min| head.payload_len >= min as u64)
            {
                self.packed = Some(Vec::new());
            }
        }
        if let Some(packed) = &mut self.packed {
            // Bounded as inflating is: never more than `--max-message` on the wire.
            if packed.len() as u64 + head.payload_len > self.limit as u64 {
                return self.violation = Some(Violation::Inflate(InflateError::TooBig));
            }
            packed.reserve_exact(head.payload_len as usize);
        }
        self.state = State::Inflate {
            left: head.payload_len,
            unmask: Unmask::new(key),
            fin: head.fin(),
        };
    }

    fn frame_done(&mut self) {
        let state = std::mem::replace(&mut self.state, State::Head(HeadReader::default()));
        let State::Inflate { fin: true, .. } = state else {
            return;
        };
        let opcode = self.compressed.take().unwrap_or(1);
        if let Some(packed) = self.packed.take() {
            self.wire_bytes += packed.len() as u64;
            self.offloaded
                .push_back((self.messages, opcode == OP_BINARY));
            self.messages += 1;
            let head = plain_head(OP_BINARY, packed.len(), self.from_client);
            self.out.push_back(head);
            self.out.push_back(packed);
            self.back_open = false;
            return;
        }
        self.messages += 1;
        match self.inflater.finish() {
            Ok((message, wire)) => {
                self.wire_bytes += wire as u64;
                self.inflated_bytes += message.len() as u64;
                self.out
                    .push_back(plain_head(opcode, message.len(), self.from_client));
                if !message.is_empty() {
                    self.out.push_back(message);
                }
                self.back_open = false;
            }
            Err(e) => self.violation = Some(Violation::Inflate(e)),
        }
    }

    fn pass(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        match self.out.back_mut() {
            Some(back) if self.back_open => back.extend_from_slice(bytes),
            _ => {
                self.out.push_back(bytes.to_vec());
                self.back_open = true;
            }
        }
    }
}

/// The header of a final, unfragmented frame of `len` bytes; a client's is masked with a zero
/// key (so the payload is the plain message).
fn plain_head(opcode: u8, len: usize, masked: bool) -> Vec<u8> {
    let mask_bit = if masked { 0x80 } else { 0 };
    let mut head = Vec::with_capacity(14);
    head.push(0x80 | opcode);
    if len < 126 {
        head.push(mask_bit | len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        head.push(mask_bit | 126);
        head.extend_from_slice(&short.to_be_bytes());
    } else {
        head.push(mask_bit | 127);
        head.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if masked {
        head.extend_from_slice(&[0; 4]);
    }
    head
}

#[cfg(test)]
#[path = "inflow/tests.rs"]
mod tests;

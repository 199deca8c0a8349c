//! Frame boundaries in a client's byte stream, followed alongside tungstenite.
//!
//! tungstenite sizes its read buffer for the largest frame it has seen and never gives the
//! memory back: one 1 MiB message would pin 1 MiB for the rest of a connection's life, and a
//! client could do that on every connection. wscgi therefore replaces a connection's frame
//! reader after a large message, but only when that is invisible: every byte read from the
//! socket belongs to a complete frame, and no fragmented message is in progress. This tracker
//! sees the same bytes tungstenite reads and says when that is the case.
//!
//! It also watches the payload of text messages for invalid UTF-8. tungstenite checks UTF-8
//! only once a frame is complete, but RFC 6455 §8.1 (and Autobahn 6.4.x) want the connection
//! failed as soon as the bad bytes arrive, even inside a frame that is still coming in.
//!
//! And it keeps the payload of the client's first close frame: tungstenite answers close
//! codes it does not know (1014, registered after it was written) with 1002, and wscgi
//! echoes what the client sent instead (see `ws::reading`).
//! Pure.

use super::utf8_stream::{Status, Utf8Stream};

const OP_CLOSE: u8 = 0x8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Collecting a header: `have` bytes so far, `need` bytes in all (known once the length
    /// byte arrived).
    Header {
        have: usize,
        need: usize,
        bytes: [u8; 14],
    },
    /// Skipping a payload, watching it when it is text or a close frame's.
    Payload { left: u64, watch: Watch },
}

/// What a payload is read for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watch {
    Nothing,
    /// Text to validate.
    Utf8(Unmask),
    /// The first close frame's code and reason.
    Close(Unmask),
}

/// A control frame's payload is at most 125 bytes (RFC 6455 §5.5).
const MAX_CONTROL: usize = 125;

/// The payload of the first close frame, as far as it arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ClosePayload {
    bytes: [u8; MAX_CONTROL],
    len: usize,
    /// The whole frame was seen; later close frames are not kept.
    complete: bool,
}

/// Unmasks a payload as it arrives in pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Unmask {
    key: [u8; 4],
    /// Payload bytes seen so far, modulo 4: where in the key the next byte starts.
    at: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boundaries {
    state: State,
    /// A data frame without FIN was seen and its final fragment not yet.
    in_message: bool,
    /// The FIN bit and data-ness of the frame whose payload is being skipped.
    pending: Option<(bool, bool)>,
    /// The data message whose frames are arriving is text (its frames are validated).
    text: bool,
    /// The UTF-8 of the current text message so far, across its fragments.
    utf8: Utf8Stream,
    /// Sticky: a text message was seen to be invalid UTF-8.
    invalid_utf8: bool,
    close: ClosePayload,
}

impl Default for Boundaries {
    fn default() -> Boundaries {
        Boundaries {
            state: State::Header {
                have: 0,
                need: 2,
                bytes: [0; 14],
            },
            in_message: false,
            pending: None,
            text: false,
            utf8: Utf8Stream::default(),
            invalid_utf8: false,
            close: ClosePayload {
                bytes: [0; MAX_CONTROL],
                len: 0,
                complete: false,
            },
        }
    }
}

impl Unmask {
    /// Unmasks `masked`, the next payload bytes, handing them to `sink` in pieces.
    fn feed(&mut self, masked: &[u8], mut sink: impl FnMut(&[u8])) {
        // Rotated so that byte i of each chunk takes key[i % 4] (chunks are a multiple of 4).
        let mut key = self.key;
        key.rotate_left(self.at);
        let mut buf = [0u8; 256];
        for chunk in masked.chunks(buf.len()) {
            for (i, (out, b)) in buf.iter_mut().zip(chunk).enumerate() {
                *out = b ^ key[i % 4];
            }
            sink(&buf[..chunk.len()]);
        }
        self.at = (self.at + masked.len()) % 4;
    }
}

impl ClosePayload {
    fn extend(&mut self, bytes: &[u8]) {
        let take = bytes.len().min(MAX_CONTROL - self.len);
        self.bytes[self.len..self.len + take].copy_from_slice(&bytes[..take]);
        self.len += take;
    }
}

impl Boundaries {
    /// Follows `data`, the next bytes read from the socket.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() || self.payload_done() {
            match &mut self.state {
                State::Payload { left: 0, .. } => self.frame_done(),
                State::Payload { left, watch } => {
                    let take = (*left).min(data.len() as u64) as usize;
                    *left -= take as u64;
                    match watch {
                        Watch::Utf8(unmask) if !self.invalid_utf8 => {
                            unmask.feed(&data[..take], |b| self.utf8.feed(b));
                            self.invalid_utf8 = self.utf8.status() == Status::Invalid;
                        }
                        Watch::Close(unmask) => {
                            unmask.feed(&data[..take], |b| self.close.extend(b))
                        }
                        _ => {}
                    }
                    data = &data[take..];
                }
                State::Header { have, need, bytes } => {
                    let take = (*need - *have).min(data.len());
                    bytes[*have..*have + take].copy_from_slice(&data[..take]);
                    *have += take;
                    data = &data[take..];
                    if *have == *need {
                        self.header_progress();
                    }
                }
            }
        }
    }

    /// Every byte fed so far belongs to a complete frame, and no message is half received.
    pub fn at_rest(&self) -> bool {
        matches!(self.state, State::Header { have: 0, .. }) && !self.in_message
    }

    /// A text message so far holds bytes that no continuation can make valid UTF-8. Sticky.
    pub fn invalid_utf8(&self) -> bool {
        self.invalid_utf8
    }

    /// The payload of the client's first close frame, once all of it arrived (unmasked).
    pub fn close_payload(&self) -> Option<&[u8]> {
        self.close
            .complete
            .then(|| &self.close.bytes[..self.close.len])
    }

    fn payload_done(&self) -> bool {
        matches!(self.state, State::Payload { left: 0, .. })
    }

    /// The header grew to its expected size: either learn its full size, or start the payload.
    fn header_progress(&mut self) {
        let State::Header { have, bytes, .. } = self.state else {
            return;
        };
        let masked = bytes[1] & 0x80 != 0;
        let extra = match bytes[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let full = 2 + extra + if masked { 4 } else { 0 };
        if have < full {
            self.state = State::Header {
                have,
                need: full,
                bytes,
            };
            return;
        }
        let len = match extra {
            2 => u64::from(u16::from_be_bytes([bytes[2], bytes[3]])),
            8 => u64::from_be_bytes([
                bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7], bytes[8], bytes[9],
            ]),
            _ => u64::from(bytes[1] & 0x7f),
        };
        let fin = bytes[0] & 0x80 != 0;
        let data = bytes[0] & 0x08 == 0;
        self.pending = Some((fin, data));
        let text = self.follow_message(bytes[0]);
        let first_close = bytes[0] & 0x0f == OP_CLOSE && !self.close.complete;
        // An unmasked client frame is a protocol error tungstenite reports; nothing to check.
        let unmask = || Unmask {
            key: [full - 4, full - 3, full - 2, full - 1].map(|i| bytes[i]),
            at: 0,
        };
        let watch = match masked {
            true if text => Watch::Utf8(unmask()),
            true if first_close => Watch::Close(unmask()),
            _ => Watch::Nothing,
        };
        self.state = State::Payload { left: len, watch };
    }

    /// Follows the message a frame with first header byte `b0` belongs to; says whether its
    /// payload is text to validate. Control frames interleave without touching the message.
    /// Frames with reserved bits or opcodes are protocol errors tungstenite reports itself
    /// (with RSV1 the payload may not even be plain text), so they are not validated.
    fn follow_message(&mut self, b0: u8) -> bool {
        let opcode = b0 & 0x0f;
        match opcode {
            1 => {
                self.text = true;
                self.utf8 = Utf8Stream::default();
            }
            2 => self.text = false,
            _ => {}
        }
        let reserved_bits = b0 & 0x70 != 0;
        self.text && matches!(opcode, 0 | 1) && !reserved_bits
    }

    fn frame_done(&mut self) {
        if let State::Payload {
            watch: Watch::Close(_),
            ..
        } = self.state
        {
            self.close.complete = true;
        }
        if let Some((fin, true)) = self.pending.take() {
            self.in_message = !fin;
            // The message is over: a stray continuation frame is not text of anything.
            self.text &= !fin;
        }
        self.state = State::Header {
            have: 0,
            need: 2,
            bytes: [0; 14],
        };
    }
}

#[cfg(test)]
mod tests;

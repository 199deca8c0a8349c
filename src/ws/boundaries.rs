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

use super::frame_head::{Head, HeadReader, Unmask};
use super::utf8_stream::{Status, Utf8Stream};

const OP_CLOSE: u8 = 0x8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header(HeadReader),
    /// Skipping a payload, watching it when it is text or a close frame's.
    Payload {
        left: u64,
        watch: Watch,
    },
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
            state: State::Header(HeadReader::default()),
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
                State::Header(reader) => {
                    if let Some(head) = reader.feed(&mut data) {
                        self.frame_started(&head);
                    }
                }
            }
        }
    }

    /// Every byte fed so far belongs to a complete frame, and no message is half received.
    pub fn at_rest(&self) -> bool {
        matches!(self.state, State::Header(reader) if reader.is_empty()) && !self.in_message
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

    fn frame_started(&mut self, head: &Head) {
        self.pending = Some((head.fin(), !head.is_control()));
        let text = self.follow_message(head);
        let first_close = head.opcode() == OP_CLOSE && !self.close.complete;
        // An unmasked client frame is a protocol error tungstenite reports; nothing to check.
        let watch = match head.mask().map(Unmask::new) {
            Some(unmask) if text => Watch::Utf8(unmask),
            Some(unmask) if first_close => Watch::Close(unmask),
            _ => Watch::Nothing,
        };
        self.state = State::Payload {
            left: head.payload_len,
            watch,
        };
    }

    /// Follows the message a frame belongs to; says whether its payload is text to validate. Control frames interleave without touching the message.
    /// Frames with reserved bits or opcodes are protocol errors tungstenite reports itself
    /// (with RSV1 the payload may not even be plain text), so they are not validated.
    fn follow_message(&mut self, head: &Head) -> bool {
        let opcode = head.opcode();
        match opcode {
            1 => {
                self.text = true;
                self.utf8 = Utf8Stream::default();
            }
            2 => self.text = false,
            _ => {}
        }
        self.text && matches!(opcode, 0 | 1) && !head.reserved_bits()
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
        self.state = State::Header(HeadReader::default());
    }
}

#[cfg(test)]
mod tests;

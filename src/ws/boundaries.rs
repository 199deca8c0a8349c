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
//! Pure.

use super::utf8_stream::{Status, Utf8Stream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Collecting a header: `have` bytes so far, `need` bytes in all (known once the length
    /// byte arrived).
    Header {
        have: usize,
        need: usize,
        bytes: [u8; 14],
    },
    /// Skipping a payload; `check` when it is text to validate.
    Payload { left: u64, check: Option<Unmask> },
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
        }
    }
}

impl Unmask {
    fn feed(&mut self, masked: &[u8], utf8: &mut Utf8Stream) {
        // Rotated so that byte i of each chunk takes key[i % 4] (chunks are a multiple of 4).
        let mut key = self.key;
        key.rotate_left(self.at);
        let mut buf = [0u8; 256];
        for chunk in masked.chunks(buf.len()) {
            for (i, (out, b)) in buf.iter_mut().zip(chunk).enumerate() {
                *out = b ^ key[i % 4];
            }
            utf8.feed(&buf[..chunk.len()]);
        }
        self.at = (self.at + masked.len()) % 4;
    }
}

impl Boundaries {
    /// Follows `data`, the next bytes read from the socket.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() || self.payload_done() {
            match &mut self.state {
                State::Payload { left: 0, .. } => self.frame_done(),
                State::Payload { left, check } => {
                    let take = (*left).min(data.len() as u64) as usize;
                    *left -= take as u64;
                    if let Some(unmask) = check
                        && !self.invalid_utf8
                    {
                        unmask.feed(&data[..take], &mut self.utf8);
                        self.invalid_utf8 = self.utf8.status() == Status::Invalid;
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
        // An unmasked client frame is a protocol error tungstenite reports; nothing to check.
        let check = self.follow_message(bytes[0]) && masked;
        let check = check.then(|| Unmask {
            key: [full - 4, full - 3, full - 2, full - 1].map(|i| bytes[i]),
            at: 0,
        });
        self.state = State::Payload { left: len, check };
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
mod tests {
    use super::*;

    fn frame(fin: bool, opcode: u8, payload_len: usize) -> Vec<u8> {
        let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload_len {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n < 65536 => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&[1, 2, 3, 4]);
        f.extend(std::iter::repeat_n(7, payload_len));
        f
    }

    #[test]
    fn whole_frames_in_any_split() {
        let mut stream = frame(true, 1, 5);
        stream.extend(frame(true, 2, 300));
        stream.extend(frame(true, 2, 70_000));
        stream.extend(frame(true, 9, 0));
        for chunk in [1, 2, 3, 7, 100, 4096] {
            let mut b = Boundaries::default();
            for (i, piece) in stream.chunks(chunk).enumerate() {
                b.feed(piece);
                let consumed = (i + 1) * chunk;
                if consumed < stream.len() {
                    continue;
                }
            }
            assert!(b.at_rest(), "chunk {chunk}");
        }
    }

    #[test]
    fn partial_frames_and_fragmented_messages_are_not_at_rest() {
        let mut b = Boundaries::default();
        let f = frame(true, 1, 10);
        b.feed(&f[..5]);
        assert!(!b.at_rest(), "inside a frame");
        b.feed(&f[5..]);
        assert!(b.at_rest());
        b.feed(&frame(false, 1, 3));
        assert!(!b.at_rest(), "first fragment of a message");
        b.feed(&frame(true, 9, 2));
        assert!(!b.at_rest(), "a ping between fragments changes nothing");
        b.feed(&frame(true, 0, 3));
        assert!(b.at_rest(), "final fragment");
    }

    #[test]
    fn zero_length_frames_complete_at_once() {
        let mut b = Boundaries::default();
        b.feed(&frame(true, 2, 0));
        assert!(b.at_rest());
    }

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// A client frame carrying `payload`, masked with `KEY`.
    fn masked(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![
            if fin { 0x80 } else { 0 } | opcode,
            0x80 | payload.len() as u8,
        ];
        f.extend_from_slice(&KEY);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
        f
    }

    /// Cases 6.4.3/6.4.4: the bad bytes are seen before the rest of the frame arrives.
    #[test]
    fn invalid_utf8_is_seen_in_a_partial_text_frame() {
        let payload = ["κόσμε".as_bytes(), b"\xf4\x90\x80\x80-edited"].concat();
        let f = masked(true, 1, &payload);
        // Header and payload up to F4, then the 90 after it (no character above U+10FFFF).
        let f4 = 6 + "κόσμε".len() + 1;
        let mut b = Boundaries::default();
        b.feed(&f[..f4]);
        assert!(!b.invalid_utf8(), "F4 alone may still be valid");
        b.feed(&f[f4..f4 + 1]);
        assert!(b.invalid_utf8(), "right after F4 90");
        assert!(!b.at_rest());
        b.feed(&f[f4 + 1..]);
        assert!(b.invalid_utf8(), "sticky");
        assert!(b.at_rest(), "boundaries are still followed");
    }

    #[test]
    fn valid_text_split_anywhere_is_never_invalid() {
        let text = "κόσμε 😀 € \u{10ffff} ascii";
        let mut stream = masked(false, 1, &text.as_bytes()[..9]);
        stream.extend(masked(true, 9, b"\xff\xfe ping"));
        stream.extend(masked(true, 0, &text.as_bytes()[9..]));
        stream.extend(masked(true, 1, text.as_bytes()));
        for cut in 0..=stream.len() {
            let mut b = Boundaries::default();
            b.feed(&stream[..cut]);
            assert!(!b.invalid_utf8(), "cut at {cut}");
            b.feed(&stream[cut..]);
            assert!(!b.invalid_utf8(), "cut at {cut}");
            assert!(b.at_rest());
        }
        let mut b = Boundaries::default();
        for byte in stream.chunks(1) {
            b.feed(byte);
            assert!(!b.invalid_utf8());
        }
    }

    #[test]
    fn binary_and_control_payloads_are_not_validated() {
        let mut b = Boundaries::default();
        b.feed(&masked(true, 2, b"\xff\xc0\x80"));
        b.feed(&masked(false, 2, b"\xff"));
        b.feed(&masked(true, 0, b"\xed\xa0\x80"));
        assert!(!b.invalid_utf8(), "binary");
        b.feed(&masked(false, 1, b"text "));
        b.feed(&masked(true, 9, b"\xff"));
        b.feed(&masked(true, 10, b"\xc0\x80"));
        b.feed(&masked(true, 8, &[0x03, 0xe8, 0xff]));
        assert!(!b.invalid_utf8(), "control frames inside a text message");
        b.feed(&masked(true, 0, b"goes on"));
        assert!(!b.invalid_utf8());
    }

    /// A character cut between fragments is completed by the next one, and bad bytes in a
    /// later fragment count as much as in the first.
    #[test]
    fn fragments_are_validated_as_one_message() {
        let mut b = Boundaries::default();
        b.feed(&masked(false, 1, b"a\xe2\x82"));
        b.feed(&masked(false, 0, b"\xacb"));
        assert!(!b.invalid_utf8(), "€ across fragments");
        let second = masked(true, 0, b"ok\xc0\x80 and more");
        b.feed(&second[..6 + 3]);
        assert!(b.invalid_utf8(), "overlong in the second fragment");
    }

    #[test]
    fn each_message_starts_afresh() {
        let mut b = Boundaries::default();
        // A text message cut mid-character is tungstenite's to reject (the frame is whole);
        // what follows must not be judged as its continuation.
        b.feed(&masked(true, 1, b"\xe2\x82"));
        b.feed(&masked(true, 1, b"a"));
        assert!(!b.invalid_utf8(), "a new text message");
        b.feed(&masked(false, 1, b"\xe2\x82"));
        b.feed(&masked(true, 0, b""));
        b.feed(&masked(true, 1, b"a"));
        assert!(!b.invalid_utf8(), "after a fragmented one");
        b.feed(&masked(true, 1, b"a"));
        b.feed(&masked(true, 0, b"\xff"));
        assert!(!b.invalid_utf8(), "a stray continuation frame is not text");
    }

    #[test]
    fn unmasked_or_reserved_frames_are_left_to_tungstenite() {
        let mut unmasked = masked(true, 1, b"\xff");
        unmasked[1] &= 0x7f;
        unmasked.drain(2..6);
        unmasked[2] = 0xff;
        let mut rsv1 = masked(true, 1, b"\xff");
        rsv1[0] |= 0x40;
        for f in [unmasked, rsv1] {
            let mut b = Boundaries::default();
            b.feed(&f);
            assert!(!b.invalid_utf8(), "{f:x?}");
            assert!(b.at_rest());
        }
    }
}

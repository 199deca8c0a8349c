//! Frame boundaries in a client's byte stream, followed alongside tungstenite.
//!
//! tungstenite sizes its read buffer for the largest frame it has seen and never gives the
//! memory back: one 1 MiB message would pin 1 MiB for the rest of a connection's life, and a
//! client could do that on every connection. wscgi therefore replaces a connection's frame
//! reader after a large message, but only when that is invisible: every byte read from the
//! socket belongs to a complete frame, and no fragmented message is in progress. This tracker
//! sees the same bytes tungstenite reads and says when that is the case. Pure.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Collecting a header: `have` bytes so far, `need` bytes in all (known once the length
    /// byte arrived).
    Header {
        have: usize,
        need: usize,
        bytes: [u8; 14],
    },
    /// Skipping a payload.
    Payload { left: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boundaries {
    state: State,
    /// A data frame without FIN was seen and its final fragment not yet.
    in_message: bool,
    /// The FIN bit and data-ness of the frame whose payload is being skipped.
    pending: Option<(bool, bool)>,
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
        }
    }
}

impl Boundaries {
    /// Follows `data`, the next bytes read from the socket.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() || self.payload_done() {
            match &mut self.state {
                State::Payload { left } if *left == 0 => self.frame_done(),
                State::Payload { left } => {
                    let take = (*left).min(data.len() as u64);
                    *left -= take;
                    data = &data[take as usize..];
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

    fn payload_done(&self) -> bool {
        matches!(self.state, State::Payload { left: 0 })
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
        self.state = State::Payload { left: len };
    }

    fn frame_done(&mut self) {
        if let Some((fin, true)) = self.pending.take() {
            self.in_message = !fin;
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
}

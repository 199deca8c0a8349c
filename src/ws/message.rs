//! Outgoing data messages and the frames made from them.
//!
//! Every data message for a client (a backend reply, a push, a publish, a broadcast) is a
//! plain [`Message`]; it enters a connection through `Conn::send_message` together with the
//! message's [`Frames`], a cache that builds each distinct frame of the message at most once.
//! A fan-out makes one `Frames` per publish, so all its recipients (and the threads that write
//! to sockets directly, see `ws::direct`) share the same frame bytes.

use tungstenite::Bytes;

use super::compress;
use super::frame;

/// One data message, as the backend or the push API gave it. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub binary: bool,
    pub payload: Bytes,
}

impl Message {
    /// A binary message, or a text message (the caller has checked UTF-8).
    pub fn new(binary: bool, payload: impl Into<Bytes>) -> Message {
        Message {
            binary,
            payload: payload.into(),
        }
    }

    pub fn opcode(&self) -> u8 {
        if self.binary {
            frame::OP_BINARY
        } else {
            frame::OP_TEXT
        }
    }
}

/// The frames of one message, built lazily and at most once each: the plain frame, and per
/// compression level the compressed frame (without context takeover a message compresses to
/// the same bytes for every connection at that level).
#[derive(Debug)]
pub struct Frames {
    message: Message,
    plain: Option<Bytes>,
    deflated: Vec<(u32, Option<Compressed>)>,
}

/// A frame with RSV1 set, and the size of its compressed payload.
#[derive(Debug, Clone)]
pub struct Compressed {
    pub frame: Bytes,
    pub payload_len: usize,
}

impl Compressed {
    /// The compressed frame of a message, if compression shrinks it.
    pub fn of(message: &Message, compressed: Option<Vec<u8>>) -> Option<Compressed> {
        compressed.map(|payload| Compressed {
            frame: frame::encode_with(message.opcode(), frame::RSV1, &payload),
            payload_len: payload.len(),
        })
    }
}

/// A message's frame compressed at `level` ahead of time, on a worker (see `ws::offload`);
/// `None` if compression would not shrink the message.
#[derive(Debug, Clone)]
pub struct Deflated {
    pub level: u32,
    pub frame: Option<Compressed>,
}

impl Deflated {
    /// Compresses the message without context takeover, as [`Frames::deflated`] would.
    pub fn of(message: &Message, level: u32) -> Deflated {
        let packed = compress::with_shared(level, |c| c.compress(&message.payload, false));
        Deflated {
            level,
            frame: Compressed::of(message, packed),
        }
    }
}

impl Frames {
    pub fn new(message: Message) -> Frames {
        Frames {
            message,
            plain: None,
            deflated: Vec::new(),
        }
    }

    /// The frames of a message whose compressed frame was made already (for this message:
    /// same payload, same opcode), so the reactor only copies it.
    pub fn prepared(message: Message, deflated: Option<Deflated>) -> Frames {
        let mut frames = Frames::new(message);
        frames.deflated.extend(deflated.map(|d| (d.level, d.frame)));
        frames
    }

    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The uncompressed frame.
    pub fn plain(&mut self) -> Bytes {
        let message = &self.message;
        self.plain
            .get_or_insert_with(|| frame::encode(message.opcode(), &message.payload))
            .clone()
    }

    /// The frame compressed at `level` without context takeover, unless compression would not
    /// shrink the message. Compressed once, on this thread's shared compressor.
    pub fn deflated(&mut self, level: u32) -> Option<Compressed> {
        if let Some((_, done)) = self.deflated.iter().find(|(l, _)| *l == level) {
            return done.clone();
        }
        let done = Deflated::of(&self.message, level).frame;
        self.deflated.push((level, done.clone()));
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_frame_is_built_once_and_shared() {
        let mut frames = Frames::new(Message::new(false, "hi"));
        let first = frames.plain();
        assert_eq!(&first[..], b"\x81\x02hi");
        let again = frames.plain();
        assert_eq!(first.as_ptr(), again.as_ptr(), "the same bytes, not a copy");
        let mut binary = Frames::new(Message::new(true, vec![1, 2, 3]));
        assert_eq!(&binary.plain()[..], b"\x82\x03\x01\x02\x03");
        assert_eq!(binary.message().payload.len(), 3);
    }

    #[test]
    fn the_compressed_frame_is_built_once_per_level() {
        let mut frames = Frames::new(Message::new(false, "abc".repeat(100)));
        let first = frames.deflated(1).expect("shrinks");
        assert_eq!(first.frame[0], 0xc1, "FIN, RSV1, text");
        assert!(first.payload_len < 30, "{}", first.payload_len);
        let again = frames.deflated(1).unwrap();
        assert_eq!(first.frame.as_ptr(), again.frame.as_ptr());
        assert!(frames.deflated(9).is_some());
        assert!(Frames::new(Message::new(true, "ab")).deflated(1).is_none());
    }

    #[test]
    fn a_prepared_frame_is_used_as_it_is() {
        let message = Message::new(false, "abc".repeat(100));
        let made = Deflated::of(&message, 1);
        let mut frames = Frames::prepared(message, Some(made.clone()));
        let frame = made.frame.expect("shrinks").frame;
        assert_eq!(frames.deflated(1).unwrap().frame.as_ptr(), frame.as_ptr());
    }
}

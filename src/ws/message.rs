//! Outgoing data messages and the frames made from them.
//!
//! Every data message for a client (a backend reply, a push, a publish, a broadcast) is a
//! plain [`Message`]; it enters a connection through `Conn::send_message` together with the
//! message's [`Frames`], a cache that builds each distinct frame of the message at most once.
//! A fan-out makes one `Frames` per publish, so all its recipients (and the threads that write
//! to sockets directly, see `ws::direct`) share the same frame bytes.

use tungstenite::Bytes;

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
}

/// The frames of one message, built lazily and at most once each.
#[derive(Debug)]
pub struct Frames {
    message: Message,
    plain: Option<Bytes>,
}

impl Frames {
    pub fn new(message: Message) -> Frames {
        Frames {
            message,
            plain: None,
        }
    }

    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The uncompressed frame.
    pub fn plain(&mut self) -> Bytes {
        let message = &self.message;
        self.plain
            .get_or_insert_with(|| {
                let opcode = if message.binary {
                    frame::OP_BINARY
                } else {
                    frame::OP_TEXT
                };
                frame::encode(opcode, &message.payload)
            })
            .clone()
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
}

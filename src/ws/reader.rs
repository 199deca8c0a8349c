//! tungstenite's frame reader for an open connection, held only while frames are arriving.
//!
//! The reader owns a read buffer (1 KiB, more after a large message) and a few hundred bytes of
//! state. An idle connection needs neither: once every byte read belongs to a complete frame and
//! no message is half received (`ws::boundaries` knows), the reader holds nothing a fresh one
//! would not, and tungstenite has flushed any pong it owed (it writes pongs before it reads on).
//! So it is let go when the socket runs dry at such a point, and made again when bytes arrive:
//! a malloc and a free per burst of frames, against 1.3 KiB held by every idle connection.

use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};

/// `None` between frames (nothing read and not yet understood: nothing held); the context
/// while frames are arriving, or arrived since the socket last ran dry at a frame boundary.
#[derive(Debug)]
pub(super) struct Reader(Option<Box<WebSocketContext>>);

/// The longest message read after our close frame, while waiting for the client's. Messages
/// then are dropped anyway (RFC 6455 §5.5.1); a longer one ends the wait, as a timeout would.
const CLOSING_MAX_MESSAGE: usize = 64 * 1024;

impl Reader {
    /// The reader of a connection just opened; `tail` is what came after the handshake.
    pub fn open(tail: Vec<u8>, config: WebSocketConfig) -> Reader {
        Reader((!tail.is_empty()).then(|| context(tail, config)))
    }

    /// The reader, made now if the connection was at rest.
    pub fn get(&mut self, config: WebSocketConfig) -> &mut WebSocketContext {
        self.0.get_or_insert_with(|| context(Vec::new(), config))
    }

    /// Every byte read belongs to a complete frame and no message is half received.
    pub fn rest(&mut self) {
        self.0 = None;
    }

    pub fn is_reading(&self) -> bool {
        self.0.is_some()
    }

    /// The reader that sends our close frame and reads the client's: the one in use, or for a
    /// connection at rest a fresh one, bounded by [`CLOSING_MAX_MESSAGE`].
    pub fn into_closing(self) -> Box<WebSocketContext> {
        match self.0 {
            Some(ws) => ws,
            None => {
                let mut config = WebSocketConfig::default();
                config.read_buffer_size = 1024;
                config.write_buffer_size = 0;
                config.max_write_buffer_size = 64 * 1024;
                config.max_message_size = Some(CLOSING_MAX_MESSAGE);
                config.max_frame_size = Some(CLOSING_MAX_MESSAGE);
                context(Vec::new(), config)
            }
        }
    }
}

fn context(tail: Vec<u8>, config: WebSocketConfig) -> Box<WebSocketContext> {
    Box::new(WebSocketContext::from_partially_read(
        tail,
        Role::Server,
        Some(config),
    ))
}

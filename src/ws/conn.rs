//! One WebSocket client: its socket, its phase, and its events waiting for the backend.
//!
//! The connection never talks to the pool or to other connections. The reactor tells it what
//! happened (readable, writable, a backend reply, a tick); it changes phase, queues bytes for
//! the client and events for the backend, and the reactor routes those onwards.
//!
//! The `impl Conn` is split by phase of life: `opening.rs` (upgrade request to 101),
//! `reading.rs` (frames in), `answer.rs` (backend replies), `ending.rs` (closing, failing,
//! shutdown), `timers.rs` (timeouts and pings), `sending.rs` (the one way in for data
//! messages; what became of one is `sent.rs`), `resuming.rs` and `replay.rs` (resume: claims,
//! parking, replay), and this file (state, writing). The socket and its output are `wire.rs`;
//! the settings they obey are `limits.rs`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use log::debug;
use mio::net::TcpStream;
use tungstenite::protocol::WebSocketContext;

use crate::conn_id::ConnKey;
use crate::events::{ConnInfo, Event, EventName};
use crate::metrics::Traffic;
use crate::static_files::StaticRequest;
use crate::ws::boundaries::Boundaries;
use crate::ws::claim::Claim;
use crate::ws::close;
use crate::ws::deflate_slot::DeflateSlot;
use crate::ws::extensions::Params;
use crate::ws::outbuf::OutBuf;
use crate::ws::queue::EventQueue;
use crate::ws::reader::Reader;
use crate::ws::session::Session;
use crate::ws::transport::Transport;
use crate::ws::wire::Wire;

pub use super::limits::Limits;
pub use super::sent::{Accepted, SendError, Written};

#[derive(Debug)]
pub(super) enum Phase {
    /// Reading the HTTP upgrade request.
    Handshake { wire: Wire, head: Vec<u8> },
    /// A plain HTTP request for `--static`; a worker reads the file (`request` until taken).
    Serving {
        wire: Wire,
        request: Option<StaticRequest>,
    },
    /// The upgrade asks for a resumable session (`wscgi-resume`); the hub decides (see
    /// `ws::resuming`) before anything goes to the backend.
    Claiming(Box<Claim>),
    /// The open event is at the backend; the client waits for its 101 (or its rejection).
    Opening {
        wire: Wire,
        key: String,
        offered: Vec<String>,
        tail: Vec<u8>,
        /// The permessage-deflate offer the 101 will accept, if any.
        deflate: Option<Params>,
    },
    Open {
        wire: Wire,
        /// tungstenite's frame reader, while frames are arriving (see `ws::reader`).
        reader: Reader,
        ping: Ping,
        /// Where the client's frames begin and end (see `ws::boundaries`).
        frames: Boundaries,
    },
    /// The client broke the protocol: nothing more is read, and the close frame (`code`) waits
    /// until the replies to messages accepted before the violation were sent (see
    /// `ws::ending`).
    Failing {
        wire: Wire,
        ws: Box<WebSocketContext>,
        code: u16,
        reason: String,
        since: Instant,
    },
    /// A resumed session's resume event is at the backend; the new socket waits for its 101,
    /// then gets every message after the `received`-th.
    Resuming {
        wire: Wire,
        key: String,
        offered: Vec<String>,
        tail: Vec<u8>,
        received: u64,
        /// The permessage-deflate offer of the new handshake the 101 will accept, if any.
        deflate: Option<Params>,
    },
    /// The socket of a resumable session dropped; it waits for its client to come back
    /// (`--resume-window`), keeping what is sent to it.
    Parked { since: Instant },
    /// We sent a close frame and wait for the client's.
    Closing {
        wire: Wire,
        ws: Box<WebSocketContext>,
        since: Instant,
    },
    /// Writing the last bytes (a close reply or an HTTP rejection), then closing TCP.
    Finishing { wire: Wire, since: Instant },
    /// Our side is shut down; reading (and discarding) until the client closes too, so
    /// unread input cannot turn our close into a reset that destroys the last response.
    Lingering { sock: TcpStream, since: Instant },
    /// The socket is gone; events may still be on their way to the backend.
    Closed,
}

/// What the poll said about a readable socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readable {
    /// New bytes, nothing else: a read that returns less than asked emptied the socket.
    Data,
    /// The peer closed, an error is pending, or nobody knows (a read resumed after a pause):
    /// read until the socket itself says WouldBlock or end of stream.
    Unsure,
}

/// What the socket may still hold for us, as far as reading can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Backlog {
    /// Reading stopped at a limit (or has not started): bytes may be waiting, and the
    /// edge-triggered poll will not report them again.
    Unread,
    /// Read until the socket had no more; the poll reports whatever comes next.
    Drained,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Ping {
    Idle,
    Sent(Instant),
}

#[derive(Debug)]
pub struct Conn {
    pub key: ConnKey,
    pub(super) remote: SocketAddr,
    pub(super) phase: Phase,
    pub(super) events: EventQueue,
    pub(super) info: Option<Arc<ConnInfo>>,
    pub(super) meta: Vec<(String, String)>,
    pub(super) last_heard: Instant,
    /// When the client last sent a message or the backend last answered one of its events
    /// (pings and pongs do not count), for `--idle-timeout`.
    pub(super) last_message: Instant,
    pub(super) traffic: Traffic,
    pub(super) backlog: Backlog,
    pub(super) close_code: Option<u16>,
    pub(super) rejected: Option<u16>,
    /// permessage-deflate, when the handshake negotiated it: on the heap only while busy
    /// (see `ws::deflate_slot`).
    pub(super) deflate: DeflateSlot,
    /// Opened with `wscgi-resume=KEY` (and resume on): what a resume needs.
    pub(super) session: Option<Box<Session>>,
}

impl Conn {
    pub fn new(key: ConnKey, sock: TcpStream, remote: SocketAddr, limits: &Limits) -> Conn {
        Conn::with_transport(key, Transport::Plain(sock), remote, limits)
    }

    /// A client whose socket is wrapped already (TLS; see `ws::transport`).
    pub fn with_transport(
        key: ConnKey,
        sock: Transport,
        remote: SocketAddr,
        limits: &Limits,
    ) -> Conn {
        let wire = Wire {
            sock,
            out: OutBuf::new(limits.max_outbuf),
        };
        Conn {
            key,
            remote,
            phase: Phase::Handshake {
                wire,
                head: Vec::new(),
            },
            events: EventQueue::default(),
            info: None,
            meta: Vec::new(),
            last_heard: Instant::now(),
            last_message: Instant::now(),
            traffic: Traffic::default(),
            backlog: Backlog::Unread,
            close_code: None,
            rejected: None,
            deflate: DeflateSlot::Off,
            session: None,
        }
    }

    pub fn info(&self) -> Option<&Arc<ConnInfo>> {
        self.info.as_ref()
    }

    pub fn meta(&self) -> &[(String, String)] {
        &self.meta
    }

    /// An open connection holds a frame reader (and its buffer): frames are arriving, or the
    /// socket has not run dry at a frame boundary since they did. For tests; see `ws::reader`.
    pub fn holds_reader(&self) -> bool {
        matches!(&self.phase, Phase::Open { reader, .. } if reader.is_reading())
    }

    /// Holds a permessage-deflate record on the heap (see `ws::deflate_slot`). For tests.
    pub fn holds_deflate(&self) -> bool {
        self.deflate.is_busy()
    }

    /// Open for messages: the push API finds only such connections.
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open { .. })
    }

    /// Messages for it are taken: it is open, or a session waiting for its client (parked or
    /// resuming). The push API and channels reach such connections.
    pub fn takes_messages(&self) -> bool {
        matches!(
            self.phase,
            Phase::Open { .. } | Phase::Parked { .. } | Phase::Resuming { .. }
        )
    }

    /// Nothing left to do: the socket is closed and every event reached the backend.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Closed) && self.events.is_idle()
    }

    /// Nothing more will reach the backend: the WebSocket is closing or closed, and every
    /// event (the close event included) was delivered. Shutdown waits for this, not for the
    /// last TCP close.
    pub fn is_settled(&self) -> bool {
        let ending = matches!(
            self.phase,
            Phase::Failing { .. }
                | Phase::Closing { .. }
                | Phase::Finishing { .. }
                | Phase::Lingering { .. }
                | Phase::Closed
        );
        ending && self.events.is_idle()
    }

    pub fn waiting_events(&self) -> usize {
        self.events.waiting()
    }

    pub fn next_event_name(&self) -> Option<EventName> {
        self.events.next_name()
    }

    /// The next event for the backend, if none is in flight.
    pub fn take_event(&mut self, boot_id: &Arc<str>) -> Option<Event> {
        let (seq, kind) = self.events.take_next()?;
        Some(Event {
            kind,
            conn: self.info.clone(),
            seq,
            meta: self.meta.clone(),
            boot_id: boot_id.clone(),
        })
    }

    /// The socket has something for us (or was closed).
    pub fn on_readable(&mut self, limits: &Limits, how: Readable) {
        match self.phase {
            Phase::Handshake { .. } => self.read_handshake(limits),
            Phase::Open { .. } | Phase::Closing { .. } => self.read_frames(limits, how),
            Phase::Lingering { .. } => self.discard_input(),
            // Opening: the client must wait for the 101; its bytes stay in the socket.
            _ => {}
        }
        self.flush();
    }

    /// Writes queued bytes; finishes the close once the last byte is out.
    pub fn flush(&mut self) {
        loop {
            let Some(wire) = self.wire() else { return };
            match wire.flush() {
                Ok(true) if matches!(self.phase, Phase::Finishing { .. }) => return self.linger(),
                // A replay after a resume goes out as the socket takes it.
                Ok(all_written) if self.pump() && all_written => {}
                Ok(_) => return,
                Err(e) => {
                    debug!("{}: write failed: {e}", self.remote);
                    return self.drop_socket(close::ABNORMAL, "write failed");
                }
            }
        }
    }

    pub(super) fn wire(&mut self) -> Option<&mut Wire> {
        match &mut self.phase {
            Phase::Handshake { wire, .. }
            | Phase::Serving { wire, .. }
            | Phase::Opening { wire, .. }
            | Phase::Resuming { wire, .. }
            | Phase::Open { wire, .. }
            | Phase::Failing { wire, .. }
            | Phase::Closing { wire, .. }
            | Phase::Finishing { wire, .. } => Some(wire),
            Phase::Claiming(claim) => Some(claim.wire()),
            Phase::Lingering { .. } | Phase::Parked { .. } | Phase::Closed => None,
        }
    }

    pub(super) fn take_wire(&mut self) -> Option<Wire> {
        match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Handshake { wire, .. }
            | Phase::Serving { wire, .. }
            | Phase::Opening { wire, .. }
            | Phase::Resuming { wire, .. }
            | Phase::Open { wire, .. }
            | Phase::Failing { wire, .. }
            | Phase::Closing { wire, .. }
            | Phase::Finishing { wire, .. } => Some(wire),
            Phase::Claiming(claim) => Some(claim.into_wire()),
            Phase::Lingering { .. } | Phase::Parked { .. } | Phase::Closed => None,
        }
    }

    /// Messages and bytes in and out so far.
    pub fn traffic(&self) -> Traffic {
        self.traffic
    }

    /// The HTTP status this connection's handshake was refused with, if it was.
    pub fn rejected(&self) -> Option<u16> {
        self.rejected
    }

    pub(super) fn id(&self) -> &str {
        self.info.as_ref().map_or("-", |i| i.id.as_str())
    }
}

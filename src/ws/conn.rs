//! One WebSocket client: its socket, its phase, and its events waiting for the backend.
//!
//! The connection never talks to the pool or to other connections. The reactor tells it what
//! happened (readable, writable, a backend reply, a tick); it changes phase, queues bytes for
//! the client and events for the backend, and the reactor routes those onwards.
//!
//! The `impl Conn` is split by phase of life: `opening.rs` (upgrade request to 101),
//! `reading.rs` (frames in), `answer.rs` (backend replies), `ending.rs` (closing, failing,
//! shutdown), `timers.rs` (timeouts and pings), and this file (state, writing).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, warn};
use mio::net::TcpStream;
use tungstenite::protocol::{WebSocketConfig, WebSocketContext};

use crate::backend::spec::Route;
use crate::config::Config;
use crate::conn_id::ConnKey;
use crate::events::{ConnInfo, Event, EventName};
use crate::metrics::Traffic;
use crate::static_files::StaticRequest;
use crate::ws::boundaries::Boundaries;
use crate::ws::close;
use crate::ws::message::Frames;
use crate::ws::outbuf::{Full, OutBuf};
use crate::ws::queue::EventQueue;

/// Per-server settings every connection obeys.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_pending: usize,
    pub max_outbuf: usize,
    pub handshake_timeout: Duration,
    pub ping_interval: Option<Duration>,
    pub pass_headers: Vec<String>,
    pub ws_config: WebSocketConfig,
    /// `--route` prefixes and backends; the handshake picks one per connection.
    pub routes: Vec<Route>,
    /// `--static` is set: plain GET/HEAD requests are served, not refused with 426.
    pub static_files: bool,
    pub idle_timeout: Option<Duration>,
    /// Set by the hub while the worker queue is full: connections that already have events
    /// waiting are not read (their clients wait in TCP), and new clients get 503.
    pub saturated: std::cell::Cell<bool>,
    /// `--origin` patterns (lowercase); empty allows all.
    pub origins: Vec<String>,
    /// The longest one event may take at the backend, retries and backoff included: how long
    /// a failing connection holds its close frame for replies still on their way.
    pub reply_grace: Duration,
    /// Starts every connection id: this instance's node tag in a cluster, else empty.
    pub id_prefix: String,
}

impl Limits {
    /// Connection limits from the options. tungstenite's defaults suit big servers (128 KiB
    /// read buffer per connection, unbounded writes); ours are sized for thousands of mostly
    /// idle clients.
    pub fn from_config(config: &Config) -> Limits {
        let mut ws = WebSocketConfig::default();
        // Allocated up front for every connection: 1 KiB keeps an idle client near 3 KiB in
        // all; larger messages only take more (cheap) reads.
        ws.read_buffer_size = 1024;
        // Frames go straight into our own bounded queue (see ws::outbuf), never pile up here.
        ws.write_buffer_size = 0;
        ws.max_write_buffer_size = 64 * 1024;
        ws.max_message_size = Some(config.max_message);
        ws.max_frame_size = Some(config.max_message);
        Limits {
            max_pending: config.max_pending,
            max_outbuf: config.max_outbuf,
            handshake_timeout: config.handshake_timeout,
            ping_interval: config.ping_interval,
            pass_headers: config.pass_headers.clone(),
            ws_config: ws,
            routes: config.routes.clone(),
            saturated: std::cell::Cell::new(false),
            static_files: config.static_dir.is_some(),
            idle_timeout: config.idle_timeout,
            origins: config.origins.clone(),
            // Backoff doubles from 100 ms and is capped at 2 s (backend::Delivery::deliver).
            reply_grace: config.backend_timeout * (config.retries + 1)
                + Duration::from_secs(2) * config.retries,
            id_prefix: String::new(),
        }
    }
}

/// The socket and the bytes waiting to go out on it.
#[derive(Debug)]
pub(super) struct Wire {
    pub sock: TcpStream,
    pub out: OutBuf,
}

#[derive(Debug)]
pub(super) enum Phase {
    /// Reading the HTTP upgrade request.
    Handshake { wire: Wire, head: Vec<u8> },
    /// A plain HTTP request for `--static`; a worker reads the file (`request` until taken).
    Serving {
        wire: Wire,
        request: Option<StaticRequest>,
    },
    /// The open event is at the backend; the client waits for its 101 (or its rejection).
    Opening {
        wire: Wire,
        key: String,
        offered: Vec<String>,
        tail: Vec<u8>,
    },
    Open {
        wire: Wire,
        ws: Box<WebSocketContext>,
        ping: Ping,
        /// Where the client's frames begin and end (see `ws::boundaries`).
        frames: Boundaries,
        /// A large message went through `ws`, whose read buffer kept that size; it is replaced
        /// at the next point where that is invisible.
        reader_grown: bool,
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
}

impl Conn {
    pub fn new(key: ConnKey, sock: TcpStream, remote: SocketAddr, limits: &Limits) -> Conn {
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
        }
    }

    pub fn info(&self) -> Option<&Arc<ConnInfo>> {
        self.info.as_ref()
    }

    pub fn meta(&self) -> &[(String, String)] {
        &self.meta
    }

    /// A large message went through the frame reader and it has not been renewed yet (it may
    /// hold a message-sized buffer). For tests; see `ws::boundaries`.
    pub fn holds_grown_reader(&self) -> bool {
        matches!(
            self.phase,
            Phase::Open {
                reader_grown: true,
                ..
            }
        )
    }

    /// Open for messages: the push API finds only such connections.
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open { .. })
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
        let Some(wire) = self.wire() else { return };
        match wire.out.write_to(&mut wire.sock) {
            Ok(true) if matches!(self.phase, Phase::Finishing { .. }) => self.linger(),
            Ok(_) => {}
            Err(e) => {
                debug!("{}: write failed: {e}", self.remote);
                self.drop_socket(close::ABNORMAL, "write failed");
            }
        }
    }

    pub(super) fn wire(&mut self) -> Option<&mut Wire> {
        match &mut self.phase {
            Phase::Handshake { wire, .. }
            | Phase::Serving { wire, .. }
            | Phase::Opening { wire, .. }
            | Phase::Open { wire, .. }
            | Phase::Failing { wire, .. }
            | Phase::Closing { wire, .. }
            | Phase::Finishing { wire, .. } => Some(wire),
            Phase::Lingering { .. } | Phase::Closed => None,
        }
    }

    pub(super) fn take_wire(&mut self) -> Option<Wire> {
        match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Handshake { wire, .. }
            | Phase::Serving { wire, .. }
            | Phase::Opening { wire, .. }
            | Phase::Open { wire, .. }
            | Phase::Failing { wire, .. }
            | Phase::Closing { wire, .. }
            | Phase::Finishing { wire, .. } => Some(wire),
            Phase::Lingering { .. } | Phase::Closed => None,
        }
    }

    /// Every data message for the client enters here: it is queued (the frame for this
    /// connection taken from `frames`), less what a direct write already put on the socket,
    /// and counted. A client too slow to take it is closed.
    pub fn send_message(&mut self, frames: &mut Frames, written: Written) -> Result<(), SendError> {
        let sent = match written {
            Written::Nothing => 0,
            Written::Directly(Ok(sent)) => sent,
            Written::Directly(Err(e)) => {
                debug!("{}: write failed: {e}", self.remote);
                self.drop_socket(close::ABNORMAL, "write failed");
                return Err(SendError::NotOpen);
            }
        };
        // A failing connection still takes the replies to messages it sent before.
        let (Phase::Open { wire, .. } | Phase::Failing { wire, .. }) = &mut self.phase else {
            return Err(SendError::NotOpen);
        };
        let frame = frames.plain();
        if sent < frame.len() && wire.out.push(frame.slice(sent..)) == Err(Full) {
            warn!("{}: slow consumer, closing", self.id());
            self.close(close::POLICY, "slow consumer");
            return Err(SendError::SlowConsumer);
        }
        self.traffic.messages_out += 1;
        self.traffic.bytes_out += frames.message().payload.len() as u64;
        Ok(())
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

/// How much of a message's frame reached the socket before the message entered the connection.
#[derive(Debug)]
pub enum Written {
    /// Nothing: the whole frame is queued.
    Nothing,
    /// A direct write (see `ws::direct`) took this many bytes, or failed.
    Directly(io::Result<usize>),
}

/// Why a message could not be queued for a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The connection is not (or no longer) open.
    NotOpen,
    /// Its outgoing buffer is full; it is being closed with 1008.
    SlowConsumer,
}

//! What crosses threads: the events the reactor hands to workers, and what comes back.
//!
//! Everything here is plain data. An [`Event`] is complete in itself (connection facts, metadata
//! snapshot, payload), so a worker never looks at reactor state.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tungstenite::Bytes;

use crate::conn_id::ConnKey;
use crate::reply::Reply;
use crate::static_files::StaticRequest;
use crate::ws::message::{Deflated, Message};

/// Facts about a connection fixed at its handshake, shared by all of its events.
#[derive(Debug)]
pub struct ConnInfo {
    /// Public connection id (`WS-Connection-Id`).
    pub id: String,
    /// Path and query the client opened, as sent.
    pub target: String,
    pub remote: SocketAddr,
    /// `remote` as `WS-Remote-Addr` shows it, formatted once rather than at every event.
    pub remote_text: String,
    /// Index of the `--route` that serves this connection.
    pub route: usize,
    /// The client's handshake headers chosen by `--pass-header` (lowercase names).
    pub headers: Vec<(String, String)>,
    pub connected_at: SystemTime,
}

impl ConnInfo {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }
}

/// The event names of the wire protocol (`WS-Event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventName {
    Reset,
    Open,
    Message,
    Close,
    /// A dropped connection came back with its resume key (see `ws::session`).
    Resume,
}

impl EventName {
    pub fn as_str(self) -> &'static str {
        match self {
            EventName::Reset => "reset",
            EventName::Open => "open",
            EventName::Message => "message",
            EventName::Close => "close",
            EventName::Resume => "resume",
        }
    }
}

/// One event with its payload.
#[derive(Debug, Clone)]
pub enum EventKind {
    /// Sent once at startup: every id from an earlier run is gone.
    Reset,
    Open,
    Message {
        data: Bytes,
        binary: bool,
    },
    Close {
        code: u16,
        reason: String,
    },
    /// The session continues on a new socket: same id, new remote address and headers.
    Resume,
}

impl EventKind {
    pub fn name(&self) -> EventName {
        match self {
            EventKind::Reset => EventName::Reset,
            EventKind::Open => EventName::Open,
            EventKind::Message { .. } => EventName::Message,
            EventKind::Close { .. } => EventName::Close,
            EventKind::Resume => EventName::Resume,
        }
    }
}

/// Everything a backend needs to build one request.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventKind,
    /// `None` only for `reset`, which concerns no connection.
    pub conn: Option<Arc<ConnInfo>>,
    pub seq: u64,
    /// Metadata stored on the connection when the event was dispatched.
    pub meta: Vec<(String, String)>,
    pub boot_id: Arc<str>,
}

/// Work for the pool: deliver an event (`key` is `None` for `reset`), answer a plain
/// request from `--static`, or compress pushed messages.
#[derive(Debug)]
pub struct Job {
    pub key: Option<ConnKey>,
    pub work: Work,
}

#[derive(Debug)]
pub enum Work {
    Deliver(Event, Offload),
    Static {
        key: ConnKey,
        request: StaticRequest,
    },
    /// The push API's large messages, compressed before the push is carried out (see
    /// `server::offload`); one entry per message of the command, `None` where there is nothing
    /// to do.
    Compress {
        ticket: u64,
        messages: Vec<Option<Message>>,
        level: u32,
    },
}

/// What a delivery does besides, so that the reactor need not (see `ws::offload`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offload {
    /// The message event's data is compressed: inflate it first, refusing it past this bound
    /// (`--max-message`).
    pub inflate: Option<usize>,
    /// Compress the reply's body ahead, if it is large enough.
    pub deflate: Option<Deflating>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deflating {
    pub level: u32,
    /// Bodies shorter than this are left to the reactor.
    pub min: usize,
    /// The sender negotiated compression that shares frames; otherwise only a body that goes
    /// to channels (`WS-Publish`) is compressed.
    pub for_sender: bool,
}

/// What became of a compressed message the worker inflated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inflated {
    /// Delivered, this many bytes once inflated.
    Bytes(usize),
    /// Not delivered: the connection fails with this close code (1009, 1007).
    Refused { code: u16, reason: &'static str },
}

/// What the pool sends back to the reactor.
#[derive(Debug)]
pub enum Completion {
    Done(Box<Done>),
    /// The complete HTTP response to a `--static` request.
    Static {
        key: ConnKey,
        response: Vec<u8>,
    },
    /// The messages of [`Work::Compress`], compressed, in the same places.
    Compressed {
        ticket: u64,
        deflated: Vec<Option<Deflated>>,
    },
    /// Asks the reactor to stop; travels the same channel so it is seen in order.
    Shutdown,
}

/// The outcome of one job, after retries.
#[derive(Debug)]
pub struct Done {
    pub key: Option<ConnKey>,
    pub event: EventName,
    pub result: Result<Reply, BackendError>,
    /// Attempts made beyond the first.
    pub retries: u32,
    pub elapsed: Duration,
    /// The event's message came compressed and the worker inflated it (see [`Offload`]).
    pub inflated: Option<Inflated>,
}

/// Why an event could not be delivered. Each variant is retried; after the last retry the
/// edge maps it: open → 502/503 to the client, message → close 1011, close → logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendError {
    /// Connection refused, host not found, network unreachable.
    Unreachable(String),
    /// No complete answer within `--backend-timeout`; names the phase.
    Timeout(String),
    /// The backend answered with a 5xx status.
    Status(u16),
    /// The answer was not a valid HTTP response.
    Invalid(String),
    /// The answer's body was larger than `--max-message`.
    TooLarge,
    /// The worker panicked while handling the event.
    Panicked,
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendError::Unreachable(e) => write!(f, "backend unreachable: {e}"),
            BackendError::Timeout(phase) => write!(f, "backend timed out ({phase})"),
            BackendError::Status(s) => write!(f, "backend answered {s}"),
            BackendError::Invalid(e) => write!(f, "invalid backend response: {e}"),
            BackendError::TooLarge => write!(f, "backend response too large"),
            BackendError::Panicked => write!(f, "worker panicked"),
        }
    }
}

impl std::error::Error for BackendError {}

impl BackendError {
    /// The status a client gets when its open event failed.
    pub fn open_status(&self) -> u16 {
        match self {
            BackendError::Unreachable(_) | BackendError::Timeout(_) => 503,
            _ => 502,
        }
    }
}

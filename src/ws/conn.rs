//! One WebSocket client: its socket, its phase, and its events waiting for the backend.
//!
//! The connection never talks to the pool or to other connections. The reactor tells it what
//! happened (readable, writable, a backend reply, a tick); it changes phase, queues bytes for
//! the client and events for the backend, and the reactor routes those onwards.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use log::{debug, info, warn};
use mio::net::TcpStream;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Bytes, Message};

use crate::backend::{BackendError, Reply};
use crate::conn_id::ConnKey;
use crate::events::{ConnInfo, Event, EventKind, EventName};
use crate::random;
use crate::ws::close;
use crate::ws::frame;
use crate::ws::handshake::{self, Upgrade};
use crate::ws::outbuf::{Full, OutBuf};
use crate::ws::queue::EventQueue;

/// How long a close handshake (or the last bytes before a close) may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Per-server settings every connection obeys.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_pending: usize,
    pub max_outbuf: usize,
    pub handshake_timeout: Duration,
    pub ping_interval: Option<Duration>,
    pub pass_headers: Vec<String>,
    pub ws_config: WebSocketConfig,
}

/// The socket and the bytes waiting to go out on it.
#[derive(Debug)]
struct Wire {
    sock: TcpStream,
    out: OutBuf,
}

#[derive(Debug)]
enum Phase {
    /// Reading the HTTP upgrade request.
    Handshake { wire: Wire, head: Vec<u8> },
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

#[derive(Debug, Clone, Copy)]
enum Ping {
    Idle,
    Sent(Instant),
}

#[derive(Debug)]
pub struct Conn {
    pub key: ConnKey,
    remote: SocketAddr,
    phase: Phase,
    events: EventQueue,
    info: Option<Arc<ConnInfo>>,
    meta: Vec<(String, String)>,
    last_heard: Instant,
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
        }
    }


    pub fn info(&self) -> Option<&Arc<ConnInfo>> {
        self.info.as_ref()
    }

    pub fn meta(&self) -> &[(String, String)] {
        &self.meta
    }

    /// Open for messages: the push API finds only such connections.
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open { .. })
    }

    /// Nothing left to do: the socket is closed and every event reached the backend.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Closed) && self.events.is_idle()
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
    pub fn on_readable(&mut self, limits: &Limits) {
        match self.phase {
            Phase::Handshake { .. } => self.read_handshake(limits),
            Phase::Open { .. } | Phase::Closing { .. } => self.read_frames(limits),
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

    fn linger(&mut self) {
        let Phase::Finishing { wire, .. } = std::mem::replace(&mut self.phase, Phase::Closed) else {
            return;
        };
        if wire.sock.shutdown(std::net::Shutdown::Write).is_ok() {
            self.phase = Phase::Lingering { sock: wire.sock, since: Instant::now() };
            self.discard_input();
        }
    }

    fn discard_input(&mut self) {
        let Phase::Lingering { sock, .. } = &mut self.phase else { return };
        let mut sink = [0u8; 1024];
        loop {
            match sock.read(&mut sink) {
                Ok(n) if n > 0 => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                _ => return self.phase = Phase::Closed,
            }
        }
    }

    fn wire(&mut self) -> Option<&mut Wire> {
        match &mut self.phase {
            Phase::Handshake { wire, .. }
            | Phase::Opening { wire, .. }
            | Phase::Open { wire, .. }
            | Phase::Closing { wire, .. }
            | Phase::Finishing { wire, .. } => Some(wire),
            Phase::Lingering { .. } | Phase::Closed => None,
        }
    }

    fn read_handshake(&mut self, limits: &Limits) {
        let Phase::Handshake { wire, head } = &mut self.phase else {
            return;
        };
        let mut chunk = [0u8; 2048];
        loop {
            match wire.sock.read(&mut chunk) {
                Ok(0) => return self.phase = Phase::Closed,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.phase = Phase::Closed,
            }
            match handshake::parse(head) {
                Ok(None) => continue,
                Ok(Some((upgrade, n))) => {
                    let tail = head.split_off(n);
                    return self.upgrade_requested(upgrade, tail, limits);
                }
                Err(e) => {
                    info!("{}: handshake rejected: {e}", self.remote);
                    return self.reject(handshake::rejection(&e));
                }
            }
        }
    }

    fn upgrade_requested(&mut self, upgrade: Upgrade, tail: Vec<u8>, limits: &Limits) {
        let id = match random::new_id() {
            Ok(id) => id,
            Err(e) => {
                warn!("no connection id: {e}");
                return self.reject(handshake::error_response(
                    500,
                    "text/plain",
                    &[],
                    b"no connection id\n",
                ));
            }
        };
        let headers = upgrade
            .headers
            .iter()
            .filter(|(name, _)| limits.pass_headers.iter().any(|p| p == name))
            .cloned()
            .collect();
        self.info = Some(Arc::new(ConnInfo {
            id,
            target: upgrade.target,
            remote: self.remote,
            headers,
            connected_at: SystemTime::now(),
        }));
        let Phase::Handshake { wire, .. } = std::mem::replace(&mut self.phase, Phase::Closed)
        else {
            return;
        };
        self.phase = Phase::Opening {
            wire,
            key: upgrade.key,
            offered: upgrade.protocols,
            tail,
        };
        self.events.push(EventKind::Open);
    }

    /// Sends a complete HTTP response, then closes.
    fn reject(&mut self, response: Vec<u8>) {
        let Some(wire) = self.take_wire() else { return };
        let mut wire = wire;
        // A 64 KiB rejection body fits any sane --max-outbuf; a bigger one is cut by the limit.
        if wire.out.push(Bytes::from(response)).is_err() {
            return;
        }
        self.phase = Phase::Finishing {
            wire,
            since: Instant::now(),
        };
    }

    fn take_wire(&mut self) -> Option<Wire> {
        match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Handshake { wire, .. }
            | Phase::Opening { wire, .. }
            | Phase::Open { wire, .. }
            | Phase::Closing { wire, .. }
            | Phase::Finishing { wire, .. } => Some(wire),
            Phase::Lingering { .. } | Phase::Closed => None,
        }
    }

    fn read_frames(&mut self, limits: &Limits) {
        while self.events.waiting() < limits.max_pending {
            let (wire, ws) = match &mut self.phase {
                Phase::Open { wire, ws, .. } | Phase::Closing { wire, ws, .. } => (wire, ws),
                _ => return,
            };
            let result = ws.read(&mut Io {
                sock: &mut wire.sock,
                out: &mut wire.out,
            });
            match result {
                Ok(msg) => self.on_message(msg),
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => return self.on_read_error(&e),
            }
        }
    }

    fn on_message(&mut self, msg: Message) {
        self.last_heard = Instant::now();
        if let Phase::Open { ping, .. } = &mut self.phase {
            *ping = Ping::Idle;
        }
        let closing = matches!(self.phase, Phase::Closing { .. });
        match msg {
            Message::Text(text) if !closing => self.events.push(EventKind::Message {
                data: Bytes::from(text),
                binary: false,
            }),
            Message::Binary(data) if !closing => {
                self.events.push(EventKind::Message { data, binary: true })
            }
            Message::Close(frame) => {
                let (code, reason) = match frame {
                    Some(f) => (u16::from(f.code), f.reason.to_string()),
                    None => (close::NO_STATUS, String::new()),
                };
                self.peer_closed(code, reason);
            }
            // Pings are answered by tungstenite; data after our close frame is dropped.
            _ => {}
        }
    }

    /// The client sent a close frame: tungstenite queued the reply; send it and finish.
    fn peer_closed(&mut self, code: u16, reason: String) {
        match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Open {
                mut wire, mut ws, ..
            } => {
                let _ = ws.flush(&mut Io {
                    sock: &mut wire.sock,
                    out: &mut wire.out,
                });
                self.phase = Phase::Finishing {
                    wire,
                    since: Instant::now(),
                };
                self.events.push(EventKind::Close { code, reason });
            }
            Phase::Closing { wire, .. } => {
                self.phase = Phase::Finishing {
                    wire,
                    since: Instant::now(),
                };
            }
            other => self.phase = other,
        }
    }

    fn on_read_error(&mut self, err: &tungstenite::Error) {
        use tungstenite::error::ProtocolError::ResetWithoutClosingHandshake;
        let violation = match err {
            tungstenite::Error::Protocol(ResetWithoutClosingHandshake) => None,
            other => close::for_read_error(other),
        };
        match violation {
            Some((code, reason)) => {
                info!("{}: closing with {code}: {reason}", self.id());
                self.close(code, &reason);
            }
            None => {
                debug!("{}: connection dropped: {err}", self.id());
                self.drop_socket(close::ABNORMAL, "");
            }
        }
    }

    /// Starts the closing handshake with `code`; the close event carries the same code.
    pub fn close(&mut self, code: u16, reason: &str) {
        match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Open {
                mut wire, mut ws, ..
            } => {
                let frame = CloseFrame {
                    code: code.into(),
                    reason: close::truncate_reason(reason).into(),
                };
                let _ = ws.close(
                    &mut Io {
                        sock: &mut wire.sock,
                        out: &mut wire.out,
                    },
                    Some(frame),
                );
                self.phase = Phase::Closing {
                    wire,
                    ws,
                    since: Instant::now(),
                };
                self.events.push(EventKind::Close {
                    code,
                    reason: reason.to_string(),
                });
            }
            other => self.phase = other,
        }
    }

    /// Closes TCP at once. Fires the close event if the WebSocket was open.
    fn drop_socket(&mut self, code: u16, reason: &str) {
        if let Phase::Open { .. } = std::mem::replace(&mut self.phase, Phase::Closed) {
            self.events.push(EventKind::Close {
                code,
                reason: reason.to_string(),
            });
        }
    }

    /// Queues one encoded data frame (shared bytes). A client too slow to take it is closed.
    pub fn send_frame(&mut self, frame: Bytes) -> Result<(), SendError> {
        let Phase::Open { wire, .. } = &mut self.phase else {
            return Err(SendError::NotOpen);
        };
        if wire.out.push(frame) == Err(Full) {
            warn!("{}: slow consumer, closing", self.id());
            self.close(close::POLICY, "slow consumer");
            return Err(SendError::SlowConsumer);
        }
        Ok(())
    }

    /// Applies the backend's answer to the event in flight.
    pub fn on_reply(&mut self, result: Result<Reply, BackendError>, limits: &Limits) {
        let Some(event) = self.events.finish() else {
            return;
        };
        match (event, result) {
            (EventName::Open, Ok(reply)) if reply.is_success() => self.accept(reply, limits),
            (EventName::Open, Ok(reply)) => {
                let ctype = reply.content_type.as_deref().unwrap_or("text/plain");
                self.reject(handshake::error_response(
                    reply.status,
                    ctype,
                    &[],
                    &reply.body,
                ));
            }
            (EventName::Open, Err(e)) => {
                warn!("{}: open failed: {e}", self.id());
                let body = format!("backend failed: {e}\n");
                self.reject(handshake::error_response(
                    e.open_status(),
                    "text/plain",
                    &[],
                    body.as_bytes(),
                ));
            }
            (EventName::Message, Err(e)) => {
                warn!("{}: message not handled: {e}", self.id());
                self.close(close::INTERNAL_ERROR, "backend error");
            }
            (EventName::Close | EventName::Reset, Err(e)) => {
                warn!("{}: close event failed: {e}", self.id());
            }
            (_, Ok(reply)) => self.apply(reply),
        }
        if self.is_open() {
            self.read_frames(limits);
        }
        self.flush();
    }

    /// The open event succeeded: answer 101 and start the WebSocket.
    fn accept(&mut self, reply: Reply, limits: &Limits) {
        let Phase::Opening {
            wire,
            key,
            offered,
            tail,
        } = std::mem::replace(&mut self.phase, Phase::Closed)
        else {
            return;
        };
        let mut wire = wire;
        if let Some(p) = &reply.protocol
            && !offered.iter().any(|o| o == p)
        {
            warn!(
                "{}: backend chose subprotocol {p:?}, which the client did not offer",
                self.id()
            );
            self.phase = Phase::Opening {
                wire,
                key,
                offered,
                tail,
            };
            let body = b"backend chose a subprotocol the client did not offer\n";
            return self.reject(handshake::error_response(502, "text/plain", &[], body));
        }
        let response = handshake::accept_response(&key, reply.protocol.as_deref());
        let _ = wire.out.push(Bytes::from(response));
        let ws = WebSocketContext::from_partially_read(tail, Role::Server, Some(limits.ws_config));
        self.phase = Phase::Open {
            wire,
            ws: Box::new(ws),
            ping: Ping::Idle,
        };
        self.last_heard = Instant::now();
        self.apply(reply);
    }

    /// Body, metadata and close request of a reply, in that order.
    fn apply(&mut self, reply: Reply) {
        for w in &reply.warnings {
            warn!("{}: {w}", self.id());
        }
        if let Some(w) = crate::backend::reply::apply_meta(&mut self.meta, &reply.set_meta) {
            warn!("{}: {w}", self.id());
        }
        if !reply.body.is_empty() {
            let binary = reply.binary || std::str::from_utf8(&reply.body).is_err();
            let _ = self.send_frame(frame::message(binary, &reply.body));
        }
        if let Some(req) = reply.close {
            self.close(req.code, &req.reason);
        }
    }

    /// Timers: handshake timeout, pings, dead peers, stuck closes.
    pub fn tick(&mut self, now: Instant, limits: &Limits) {
        let started = self.last_heard;
        match &mut self.phase {
            Phase::Handshake { .. } if now.duration_since(started) > limits.handshake_timeout => {
                debug!("{}: handshake timeout", self.remote);
                self.phase = Phase::Closed;
            }
            Phase::Open { wire, ping, .. } => {
                let Some(interval) = limits.ping_interval else {
                    return;
                };
                match *ping {
                    Ping::Idle if now.duration_since(started) >= interval => {
                        let _ = wire.out.push(frame::encode(frame::OP_PING, b""));
                        *ping = Ping::Sent(now);
                        self.flush();
                    }
                    Ping::Sent(at) if now.duration_since(at) >= interval => {
                        info!("{}: no answer to ping, dropping", self.id());
                        self.drop_socket(close::ABNORMAL, "ping timeout");
                    }
                    _ => {}
                }
            }
            Phase::Closing { since, .. } | Phase::Finishing { since, .. } | Phase::Lingering { since, .. }
                if now.duration_since(*since) > CLOSE_TIMEOUT =>
            {
                self.phase = Phase::Closed;
            }
            _ => {}
        }
    }

    fn id(&self) -> &str {
        self.info.as_ref().map_or("-", |i| i.id.as_str())
    }
}

/// Why a message could not be queued for a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The connection is not (or no longer) open.
    NotOpen,
    /// Its outgoing buffer is full; it is being closed with 1008.
    SlowConsumer,
}

/// What tungstenite reads from and writes to: reads come from the socket, writes go into the
/// connection's queue (so they are ordered with our own frames and never block).
struct Io<'a> {
    sock: &'a mut TcpStream,
    out: &'a mut OutBuf,
}

impl Read for Io<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.read(buf)
    }
}

impl Write for Io<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.out.push(Bytes::copy_from_slice(buf)) {
            Ok(()) => Ok(buf.len()),
            Err(Full) => Err(io::Error::other("outgoing buffer full")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

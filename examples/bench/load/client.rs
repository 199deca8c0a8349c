//! The client engine: every connection to the server under test is a small state machine
//! (TCP connect → upgrade request → `101` → tungstenite `WebSocket` in client role → closing
//! handshake), all of them on one mio poll in one thread, so the generator costs as little CPU
//! as possible on a machine it shares with the server. Scenarios see connection ids and
//! [`Ev`]ents only. This file owns the connection table and its bookkeeping (open, send, close,
//! timeouts); how one connection advances when its socket is ready is in `drive.rs`.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{Data as OpData, OpCode};
use tungstenite::{Bytes, Message, WebSocket};
use wscgi::ws::compress;

use crate::Opts;
use crate::timestamps::TsStream;

/// Where a connection is in its life.
pub enum Phase {
    Connecting(TcpStream),
    Handshake {
        stream: TsStream,
        written: usize,
        buf: Vec<u8>,
    },
    Open(Box<WebSocket<TsStream>>),
    /// We sent a close frame; waiting for the server's and its TCP close.
    Closing(Box<WebSocket<TsStream>>),
    Gone,
}

/// One client connection: its phase and the times its timeouts count from.
pub struct Conn {
    pub phase: Phase,
    pub started: Instant,
    pub closing_since: Option<Instant>,
}

/// What happened to the connections, as [`Engine::poll`] reports it.
pub enum Ev {
    /// Handshake done (`101`); how long it took from the TCP connect.
    Open { id: usize, took: Duration },
    /// A text or binary message; `rx_ns` is the receive time (CLOCK_REALTIME).
    Msg { id: usize, data: Bytes, rx_ns: u64 },
    /// The connection is gone; `was_open` tells whether it got its `101`.
    Closed {
        id: usize,
        was_open: bool,
        why: String,
    },
}

/// All client connections on one mio poll. An id is an index into `conns` (and the mio token);
/// ids are reused once their connection is gone and its `Closed` event was queued.
pub struct Engine {
    pub poll: Poll,
    pub events: Events,
    pub conns: Vec<Option<Conn>>,
    pub free: Vec<usize>,
    /// Connections go to each in turn.
    pub addrs: Vec<SocketAddr>,
    pub started: usize,
    pub request: Vec<u8>,
    pub accept: String,
    pub config: WebSocketConfig,
    pub timestamps: bool,
    pub handshake_timeout: Duration,
    pub close_timeout: Duration,
    pub deferred: Vec<Ev>,
    pub last_sweep: Instant,
    /// Connections past their `101` and not gone.
    pub open: usize,
    /// Connections before their `101`.
    pub pending: usize,
    /// `wss://`: every connection starts a TLS session from this.
    pub tls: Option<crate::tls::Client>,
    /// The host part of the URL (the TLS server name).
    pub host: String,
}

/// RFC 6455's example key and its accept value: the key only has to look like a nonce to the
/// server, and a fixed one needs no random source and no SHA-1 per connection to check the `101`.
const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

impl Engine {
    pub fn new(opts: &Opts) -> io::Result<Engine> {
        // What browsers offer.
        let offer = match opts.deflate {
            true => "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
            false => "",
        };
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n{offer}\
             User-Agent: bench-load\r\n\r\n",
            opts.path, opts.host
        )
        .into_bytes();
        Ok(Engine {
            poll: Poll::new()?,
            events: Events::with_capacity(4096),
            conns: Vec::new(),
            free: Vec::new(),
            addrs: opts.addrs.clone(),
            started: 0,
            request,
            accept: WS_ACCEPT.to_string(),
            // Small buffers: the generator holds up to 10,000 of these.
            config: WebSocketConfig::default()
                .read_buffer_size(4096)
                .write_buffer_size(0),
            timestamps: opts.timestamps,
            handshake_timeout: opts.handshake_timeout,
            close_timeout: Duration::from_secs(3),
            deferred: Vec::new(),
            last_sweep: Instant::now(),
            open: 0,
            pending: 0,
            tls: match opts.tls {
                true => Some(crate::tls::Client::new().map_err(io::Error::other)?),
                false => None,
            },
            host: opts.host.clone(),
        })
    }

    /// Starts one connection; its id comes back in the events.
    pub fn connect(&mut self) -> Result<usize, String> {
        let addr = self.addrs[self.started % self.addrs.len()];
        self.started += 1;
        let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            Token(id),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.free.push(id);
            return Err(format!("register: {e}"));
        }
        self.conns[id] = Some(Conn {
            phase: Phase::Connecting(stream),
            started: Instant::now(),
            closing_since: None,
        });
        self.pending += 1;
        Ok(id)
    }

    pub fn is_open(&self, id: usize) -> bool {
        matches!(
            self.conns.get(id),
            Some(Some(Conn {
                phase: Phase::Open(_),
                ..
            }))
        )
    }

    /// Sends one message; a failure closes the connection (reported by the
    /// next `poll`). False when the connection is not open.
    pub fn send(&mut self, id: usize, msg: Message) -> bool {
        let Some(Some(conn)) = self.conns.get_mut(id) else {
            return false;
        };
        let Phase::Open(ws) = &mut conn.phase else {
            return false;
        };
        let deflating = ws.get_ref().inflow.is_some();
        let msg = match msg {
            Message::Text(t) if deflating => compressed(OpData::Text, t.as_bytes()),
            Message::Binary(b) if deflating => compressed(OpData::Binary, &b),
            other => other,
        };
        match ws.send(msg) {
            Ok(()) => true,
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => true,
            Err(e) => {
                let why = format!("send: {e}");
                self.finish(id, why);
                false
            }
        }
    }

    /// Starts the closing handshake (close frame 1000); the connection is
    /// reported `Closed` once the server closed it (or after 3 s).
    pub fn close(&mut self, id: usize) {
        let Some(Some(conn)) = self.conns.get_mut(id) else {
            return;
        };
        let Phase::Open(mut ws) = std::mem::replace(&mut conn.phase, Phase::Gone) else {
            return;
        };
        let _ = ws.close(None);
        let _ = ws.flush();
        conn.phase = Phase::Closing(ws);
        conn.closing_since = Some(Instant::now());
        self.open -= 1;
    }

    /// Drops every connection without a closing handshake.
    pub fn drop_all(&mut self) {
        for id in 0..self.conns.len() {
            if self.conns[id].is_some() {
                self.finish(id, "dropped".into());
            }
        }
        self.deferred.clear();
    }

    /// Removes a connection and queues its `Closed` event.
    pub fn finish(&mut self, id: usize, why: String) {
        let Some(mut conn) = self.conns[id].take() else {
            return;
        };
        let was_open = match &mut conn.phase {
            Phase::Connecting(s) => {
                self.pending -= 1;
                let _ = self.poll.registry().deregister(s);
                false
            }
            Phase::Handshake { stream, .. } => {
                self.pending -= 1;
                let _ = self.poll.registry().deregister(&mut stream.inner);
                false
            }
            Phase::Open(ws) => {
                self.open -= 1;
                let _ = self.poll.registry().deregister(&mut ws.get_mut().inner);
                true
            }
            Phase::Closing(ws) => {
                let _ = self.poll.registry().deregister(&mut ws.get_mut().inner);
                true
            }
            Phase::Gone => false,
        };
        self.free.push(id);
        self.deferred.push(Ev::Closed { id, was_open, why });
    }

    /// Waits up to `timeout` for socket events and appends what happened.
    pub fn poll(&mut self, timeout: Duration, out: &mut Vec<Ev>) {
        out.append(&mut self.deferred);
        let wait = if out.is_empty() {
            timeout
        } else {
            Duration::ZERO
        };
        if let Err(e) = self.poll.poll(&mut self.events, Some(wait))
            && e.kind() != io::ErrorKind::Interrupted
        {
            eprintln!("bench-load: poll: {e}");
        }
        let ready: Vec<(usize, (bool, bool), bool)> = self
            .events
            .iter()
            .map(|e| {
                let closed = e.is_read_closed() || e.is_error();
                (
                    e.token().0,
                    (e.is_readable() || closed, !closed),
                    e.is_writable() || e.is_error(),
                )
            })
            .collect();
        for (id, readable, writable) in ready {
            self.drive(id, readable, writable, out);
        }
        let now = Instant::now();
        if now.duration_since(self.last_sweep) >= Duration::from_millis(100) {
            self.last_sweep = now;
            self.sweep(now);
        }
        out.append(&mut self.deferred);
    }

    fn sweep(&mut self, now: Instant) {
        for id in 0..self.conns.len() {
            let Some(conn) = &self.conns[id] else {
                continue;
            };
            let expired = match conn.phase {
                Phase::Connecting(_) | Phase::Handshake { .. } => {
                    now.duration_since(conn.started) > self.handshake_timeout
                }
                Phase::Closing(_) => conn
                    .closing_since
                    .is_some_and(|t| now.duration_since(t) > self.close_timeout),
                _ => false,
            };
            if expired {
                let why = match conn.phase {
                    Phase::Closing(_) => "close timeout",
                    _ => "handshake timeout",
                };
                self.finish(id, why.into());
            }
        }
    }
}

/// A message as a browser sends it on a permessage-deflate connection: compressed (RSV1) unless
/// compression does not shrink it. Level 1, like wscgi's default; no context takeover.
fn compressed(opcode: OpData, payload: &[u8]) -> Message {
    let Some(packed) = compress::with_shared(1, |c| c.compress(payload, false)) else {
        return Message::Frame(Frame::message(payload.to_vec(), OpCode::Data(opcode), true));
    };
    let mut frame = Frame::message(packed, OpCode::Data(opcode), true);
    frame.header_mut().rsv1 = true;
    Message::Frame(frame)
}

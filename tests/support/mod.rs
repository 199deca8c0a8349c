//! Shared helpers for wscgi's integration tests (`mod support;` from tests/*.rs).
//!
//! Owns:
//! - [`TestBackend`]: a real HTTP/1.1 keep-alive backend that records every
//!   request wscgi sends it and answers with a scripted [`BackendReply`];
//! - [`Wscgi`]: the server under test, parsed from command-line arguments and
//!   run in-process on its own thread;
//! - blocking WebSocket client helpers built on tungstenite ([`connect`],
//!   [`recv_text`], [`recv_close`], ...);
//! - [`http`]: a raw one-shot HTTP client for the push API;
//! - [`wait_until`]: polling a condition with a deadline.
//!
//! Nothing here sleeps to synchronise: waits poll a condition until a deadline
//! and panic with a description of what was awaited (and what was seen).
#![allow(dead_code)] // every test binary compiles this module; few use all of it

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::http::{HeaderName, HeaderValue, Uri};
use tungstenite::protocol::CloseFrame;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// How often waits re-check their condition.
const POLL: Duration = Duration::from_millis(5);
/// Bound on any single blocking socket operation made on a test's behalf.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a backend connection blocks in read() before re-checking the stop
/// flag, so its thread ends soon after the [`TestBackend`] is dropped.
const BACKEND_READ_SLICE: Duration = Duration::from_millis(50);
/// Generous limits: tests may send big messages, but a runaway peer must not
/// make the backend allocate without bound.
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 64 * 1024 * 1024;
const MAX_HEADERS: usize = 128;
/// How long [`Wscgi::start`] waits for the server to bind, and its drop for
/// `run()` to return after `shutdown()`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bound on frames skipped while looking for a particular one; each
/// read is itself bounded by the client's read timeout.
const MAX_SKIPPED_FRAMES: usize = 10_000;

// ---------------------------------------------------------------------------
// Test backend
// ---------------------------------------------------------------------------

/// One request as the backend received it.
#[derive(Clone, Debug)]
pub struct BackendRequest {
    pub method: String,
    /// Path plus query, exactly as on the request line.
    pub target: String,
    /// In arrival order, names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When the request was complete (before the handler ran).
    pub at: Instant,
    /// The TCP peer (wscgi's side of the connection): equal peers mean the
    /// requests travelled over the same keep-alive connection.
    pub peer: SocketAddr,
}

impl BackendRequest {
    /// First header with that name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The `WS-Event` header, or "" when absent.
    pub fn event(&self) -> &str {
        self.header("ws-event").unwrap_or("")
    }

    /// The `WS-Connection-Id` header, or "" when absent.
    pub fn conn_id(&self) -> &str {
        self.header("ws-connection-id").unwrap_or("")
    }

    /// The `WS-Seq` header. Panics when it is missing or not a number, since
    /// every event wscgi sends must carry one.
    pub fn seq(&self) -> u64 {
        let raw = self
            .header("ws-seq")
            .unwrap_or_else(|| panic!("request has no WS-Seq header: {}", self.summary()));
        raw.parse()
            .unwrap_or_else(|_| panic!("WS-Seq {raw:?} is not a number: {}", self.summary()))
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// One line for failure dumps: what, which connection, which sequence.
    fn summary(&self) -> String {
        format!(
            "{} {} event={} conn={} seq={} body_len={}",
            self.method,
            self.target,
            or_dash(self.event()),
            or_dash(self.conn_id()),
            or_dash(self.header("ws-seq").unwrap_or("")),
            self.body.len()
        )
    }
}

/// How the backend ends an exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyAction {
    /// Send the HTTP response.
    Respond,
    /// Close the TCP connection without answering.
    HangUp,
    /// Write `not http\r\n\r\n` and close.
    Garbage,
}

/// What the backend answers to one request; built with the chained methods.
#[derive(Clone, Debug)]
pub struct BackendReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Simulated backend latency before acting.
    pub delay: Option<Duration>,
    pub action: ReplyAction,
}

impl BackendReply {
    /// 200 with an empty body.
    pub fn ok() -> Self {
        BackendReply {
            status: 200,
            headers: Vec::new(),
            body: Vec::new(),
            delay: None,
            action: ReplyAction::Respond,
        }
    }

    pub fn status(mut self, s: u16) -> Self {
        self.status = s;
        self
    }

    /// Adds a response header. Content-Length is always computed from the
    /// body, so a Content-Length given here is ignored.
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }

    pub fn body(mut self, b: impl Into<Vec<u8>>) -> Self {
        self.body = b.into();
        self
    }

    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = Some(d);
        self
    }

    pub fn hang_up() -> Self {
        BackendReply {
            action: ReplyAction::HangUp,
            ..Self::ok()
        }
    }

    pub fn garbage() -> Self {
        BackendReply {
            action: ReplyAction::Garbage,
            ..Self::ok()
        }
    }
}

type Handler = dyn Fn(&BackendRequest) -> BackendReply + Send + Sync;

/// State shared by the accept thread and every connection thread.
struct Shared {
    handler: Box<Handler>,
    requests: Mutex<Vec<BackendRequest>>,
    /// Handler panics are caught (the request gets a 500) and reported when
    /// the backend is dropped, so an assertion inside a handler fails the test.
    handler_panics: Mutex<Vec<String>>,
    stop: AtomicBool,
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn record(&self, req: &BackendRequest) {
        lock(&self.requests).push(req.clone());
    }

    fn reply_to(&self, req: &BackendRequest) -> BackendReply {
        match panic::catch_unwind(AssertUnwindSafe(|| (self.handler)(req))) {
            Ok(reply) => reply,
            Err(payload) => {
                let msg = format!("{}: {}", req.summary(), panic_message(&*payload));
                lock(&self.handler_panics).push(msg);
                BackendReply::ok()
                    .status(500)
                    .body("test backend handler panicked")
            }
        }
    }

    /// Waits out a simulated latency in small slices so a dropped backend is
    /// not held up. Returns false if the backend stopped meanwhile.
    fn pause(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        while Instant::now() < deadline {
            if self.stopped() {
                return false;
            }
            thread::sleep(POLL.min(deadline.saturating_duration_since(Instant::now())));
        }
        !self.stopped()
    }
}

/// An HTTP/1.1 backend on 127.0.0.1 (ephemeral port), one thread per
/// connection, keep-alive, recording every request. Dropping it stops it.
pub struct TestBackend {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl TestBackend {
    /// Starts a backend whose every answer comes from `handler` (called on
    /// connection threads, possibly concurrently).
    pub fn start(
        handler: impl Fn(&BackendRequest) -> BackendReply + Send + Sync + 'static,
    ) -> TestBackend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind test backend");
        let addr = listener.local_addr().expect("test backend address");
        let shared = Arc::new(Shared {
            handler: Box::new(handler),
            requests: Mutex::new(Vec::new()),
            handler_panics: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let for_thread = Arc::clone(&shared);
        let acceptor = thread::Builder::new()
            .name("test-backend-accept".into())
            .spawn(move || accept_loop(listener, for_thread))
            .expect("spawn test backend accept thread");
        TestBackend {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// open/close/reset (and anything else) → 200 empty; message → 200 with
    /// the same body and Content-Type.
    pub fn echo() -> TestBackend {
        TestBackend::start(|req| {
            if req.event() != "message" {
                return BackendReply::ok();
            }
            let reply = BackendReply::ok().body(req.body.clone());
            match req.header("content-type") {
                Some(ct) => reply.header("Content-Type", ct),
                None => reply,
            }
        })
    }

    /// The URL to give wscgi as `--backend`.
    pub fn url(&self) -> String {
        format!("http://{}/ws", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request recorded so far, in arrival order.
    pub fn requests(&self) -> Vec<BackendRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The recorded requests whose `WS-Connection-Id` is `conn_id`.
    pub fn events(&self, conn_id: &str) -> Vec<BackendRequest> {
        let all = lock(&self.shared.requests);
        all.iter()
            .filter(|r| r.conn_id() == conn_id)
            .cloned()
            .collect()
    }

    /// Polls the recorded requests until `cond` holds and returns them; panics
    /// with a dump of what was recorded if `timeout` passes first.
    pub fn wait_for(
        &self,
        timeout: Duration,
        cond: impl Fn(&[BackendRequest]) -> bool,
    ) -> Vec<BackendRequest> {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.requests();
            if cond(&seen) {
                return seen;
            }
            if Instant::now() >= deadline {
                panic!(
                    "backend condition not met within {timeout:?}; {} request(s) recorded:\n{}",
                    seen.len(),
                    dump_requests(&seen)
                );
            }
            thread::sleep(POLL);
        }
    }
}

impl Drop for TestBackend {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // accept() blocks until a connection arrives; a throwaway one wakes
        // it so it sees the stop flag.
        let _ = TcpStream::connect_timeout(&self.addr, IO_TIMEOUT);
        if let Some(acceptor) = self.acceptor.take()
            && join_within(acceptor, IO_TIMEOUT).is_none()
        {
            eprintln!("warning: test backend accept thread did not stop within {IO_TIMEOUT:?}");
        }
        let panics = lock(&self.shared.handler_panics).clone();
        if !panics.is_empty() && !thread::panicking() {
            panic!("test backend handler panicked:\n  {}", panics.join("\n  "));
        }
    }
}

fn dump_requests(reqs: &[BackendRequest]) -> String {
    let lines: Vec<String> = reqs
        .iter()
        .enumerate()
        .map(|(i, r)| format!("  #{i} {}", r.summary()))
        .collect();
    lines.join("\n")
}

/// Runs until the backend is dropped. Accept errors (e.g. out of file
/// descriptors) are retried a bounded number of times in a row.
fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut failures_in_a_row = 0;
    for conn in listener.incoming() {
        if shared.stopped() {
            return;
        }
        match conn {
            Ok(stream) => {
                failures_in_a_row = 0;
                spawn_connection(stream, Arc::clone(&shared));
            }
            Err(e) => {
                failures_in_a_row += 1;
                eprintln!("test backend: accept failed: {e}");
                if failures_in_a_row >= 100 {
                    return;
                }
            }
        }
    }
}

fn spawn_connection(stream: TcpStream, shared: Arc<Shared>) {
    let spawned = thread::Builder::new()
        .name("test-backend-conn".into())
        .spawn(move || {
            if let Some(conn) = BackendConn::new(stream, shared) {
                conn.serve();
            }
        });
    if let Err(e) = spawned {
        eprintln!("test backend: cannot spawn connection thread: {e}");
    }
}

/// The request being parsed: its head, and how its body is framed.
struct Head {
    method: String,
    target: String,
    /// Minor HTTP version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    minor_version: u8,
    headers: Vec<(String, String)>,
    len: usize,
}

/// How a message body is delimited.
#[derive(Clone, Copy)]
enum Framing {
    Length(usize),
    Chunked,
}

/// One accepted connection on the backend side.
struct BackendConn {
    stream: TcpStream,
    peer: SocketAddr,
    /// Bytes read but not yet consumed (pipelined requests stay here).
    buf: Vec<u8>,
    chunk: Vec<u8>,
    shared: Arc<Shared>,
}

impl BackendConn {
    fn new(stream: TcpStream, shared: Arc<Shared>) -> Option<BackendConn> {
        let peer = stream.peer_addr().ok()?;
        // A short read timeout lets the thread notice the stop flag; writes
        // get the general bound.
        stream.set_read_timeout(Some(BACKEND_READ_SLICE)).ok()?;
        stream.set_write_timeout(Some(IO_TIMEOUT)).ok()?;
        stream.set_nodelay(true).ok()?;
        Some(BackendConn {
            stream,
            peer,
            buf: Vec::new(),
            chunk: vec![0; 64 * 1024],
            shared,
        })
    }

    /// One pass per request; ends on EOF, I/O error, a malformed request,
    /// `Connection: close`, a hang-up/garbage reply, or the backend stopping.
    fn serve(mut self) {
        loop {
            let (req, client_wants_close) = match self.next_request() {
                Ok(Some(r)) => r,
                Ok(None) => return,
                Err(why) => {
                    eprintln!("test backend: malformed request from {}: {why}", self.peer);
                    let reply = BackendReply::ok().status(400).body(why);
                    let _ = self.stream.write_all(&response_bytes(&reply, true));
                    return;
                }
            };
            // Recorded before the handler (and its delay) runs, so tests can
            // observe a request the backend is still "working on".
            self.shared.record(&req);
            let reply = self.shared.reply_to(&req);
            if !self.act(&reply, client_wants_close) {
                let _ = self.stream.shutdown(Shutdown::Both);
                return;
            }
        }
    }

    /// Carries out a reply; false when the connection must close afterwards.
    fn act(&mut self, reply: &BackendReply, client_wants_close: bool) -> bool {
        if let Some(d) = reply.delay
            && !self.shared.pause(d)
        {
            return false;
        }
        match reply.action {
            ReplyAction::HangUp => false,
            ReplyAction::Garbage => {
                let _ = self.stream.write_all(b"not http\r\n\r\n");
                false
            }
            ReplyAction::Respond => {
                let close =
                    client_wants_close || header_has_token(&reply.headers, "connection", "close");
                self.stream.write_all(&response_bytes(reply, close)).is_ok() && !close
            }
        }
    }

    /// Reads one complete request. Ok(None) when the peer went away (or the
    /// backend stopped) before one arrived; Err describes a malformed request.
    fn next_request(&mut self) -> Result<Option<(BackendRequest, bool)>, String> {
        let head = loop {
            if let Some(head) = parse_request_head(&self.buf)? {
                break head;
            }
            if !self.read_more() {
                return Ok(None);
            }
        };
        let framing = body_framing(&head.headers)?;
        if find_header(&head.headers, "expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        {
            let _ = self.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        let (body, body_len) = loop {
            if let Some(done) = decode_body(&self.buf[head.len..], framing)? {
                break done;
            }
            if !self.read_more() {
                return Ok(None);
            }
        };
        self.buf.drain(..head.len + body_len);
        let close = wants_close(&head);
        let req = BackendRequest {
            method: head.method,
            target: head.target,
            headers: head.headers,
            body,
            at: Instant::now(),
            peer: self.peer,
        };
        Ok(Some((req, close)))
    }

    /// Appends whatever arrives next to `buf`. False on EOF, I/O error or
    /// backend stop. Each pass blocks at most [`BACKEND_READ_SLICE`]; an idle
    /// keep-alive connection lives until the backend is dropped.
    fn read_more(&mut self) -> bool {
        loop {
            if self.shared.stopped() {
                return false;
            }
            match self.stream.read(&mut self.chunk) {
                Ok(0) => return false,
                Ok(n) => {
                    self.buf.extend_from_slice(&self.chunk[..n]);
                    return true;
                }
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
    }
}

/// Ok(None) while the head is incomplete.
fn parse_request_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            Err(format!("request head larger than {MAX_HEAD} bytes"))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(len)) => Ok(Some(Head {
            method: req.method.unwrap_or_default().to_string(),
            target: req.path.unwrap_or_default().to_string(),
            minor_version: req.version.unwrap_or(1),
            headers: owned_headers(req.headers),
            len,
        })),
        Err(e) => Err(format!("bad request head: {e}")),
    }
}

fn owned_headers(raw: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    raw.iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value).into_owned();
            (h.name.to_ascii_lowercase(), value)
        })
        .collect()
}

/// Chunked wins over Content-Length (RFC 9112 §6.3); no length means no body.
fn body_framing(headers: &[(String, String)]) -> Result<Framing, String> {
    if header_has_token(headers, "transfer-encoding", "chunked") {
        return Ok(Framing::Chunked);
    }
    let Some(raw) = find_header(headers, "content-length") else {
        return Ok(Framing::Length(0));
    };
    let len: usize = raw
        .trim()
        .parse()
        .map_err(|_| format!("bad Content-Length {raw:?}"))?;
    if len > MAX_BODY {
        return Err(format!("body of {len} bytes exceeds {MAX_BODY}"));
    }
    Ok(Framing::Length(len))
}

/// The body and the number of bytes it took on the wire, or None while
/// incomplete.
fn decode_body(data: &[u8], framing: Framing) -> Result<Option<(Vec<u8>, usize)>, String> {
    match framing {
        Framing::Length(n) if data.len() >= n => Ok(Some((data[..n].to_vec(), n))),
        Framing::Length(_) => Ok(None),
        Framing::Chunked => decode_chunked(data),
    }
}

/// Decodes a complete chunked body (trailers skipped). The loop is bounded by
/// `data`: every pass consumes at least one chunk-size line.
fn decode_chunked(data: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let (line_len, size) = match httparse::parse_chunk_size(&data[pos..]) {
            Ok(httparse::Status::Complete(parsed)) => parsed,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err("bad chunk size line".to_string()),
        };
        pos += line_len;
        if size == 0 {
            return Ok(trailers_len(&data[pos..]).map(|n| (body, pos + n)));
        }
        let size = usize::try_from(size)
            .ok()
            .filter(|s| body.len() + s <= MAX_BODY)
            .ok_or_else(|| format!("chunked body exceeds {MAX_BODY} bytes"))?;
        if data.len() < pos + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&data[pos..pos + size]);
        if &data[pos + size..pos + size + 2] != b"\r\n" {
            return Err("chunk not followed by CRLF".to_string());
        }
        pos += size + 2;
    }
}

/// Length of the trailer section (ending in an empty line), None if incomplete.
fn trailers_len(data: &[u8]) -> Option<usize> {
    if data.starts_with(b"\r\n") {
        return Some(2);
    }
    data.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

/// HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 closes
/// unless told to keep it.
fn wants_close(head: &Head) -> bool {
    if head.minor_version == 0 {
        return !header_has_token(&head.headers, "connection", "keep-alive");
    }
    header_has_token(&head.headers, "connection", "close")
}

fn response_bytes(reply: &BackendReply, close: bool) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        reply.status,
        reason_phrase(reply.status)
    );
    for (k, v) in &reply.headers {
        if !k.eq_ignore_ascii_case("content-length") {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    if close && find_header(&reply.headers, "connection").is_none() {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(&reply.body);
    out
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

// ---------------------------------------------------------------------------
// The server under test, in-process
// ---------------------------------------------------------------------------

/// What the run thread reports once the server is bound.
struct Bound {
    ws_addr: SocketAddr,
    push_addr: SocketAddr,
    shutdown: wscgi::ShutdownHandle,
}

/// wscgi running on its own thread; dropping it shuts it down.
pub struct Wscgi {
    pub ws_addr: SocketAddr,
    pub push_addr: SocketAddr,
    shutdown: wscgi::ShutdownHandle,
    runner: Option<JoinHandle<Result<(), String>>>,
}

impl Wscgi {
    /// Starts wscgi with `--backend URL`, both listeners on 127.0.0.1:0 and
    /// 4 workers (unless `extra` sets `--workers`), followed by `extra`
    /// arguments. No environment variables are visible to it. Panics if the
    /// arguments are rejected or binding fails.
    pub fn start(backend_url: &str, extra: &[&str]) -> Wscgi {
        let mut base = vec![
            "--backend",
            backend_url,
            "--listen",
            "127.0.0.1:0",
            "--push-listen",
            "127.0.0.1:0",
        ];
        if !extra.contains(&"--workers") {
            base.extend(["--workers", "4"]);
        }
        // Dropping a Wscgi shuts it down gracefully; keep that quick unless a test asks.
        if !extra.contains(&"--shutdown-timeout") {
            base.extend(["--shutdown-timeout", "2s"]);
        }
        let args: Vec<String> = base.iter().chain(extra).map(|s| s.to_string()).collect();
        let (tx, rx) = mpsc::channel();
        // Parsing, binding and running all happen on the run thread, so the
        // server's types need not be Send; only the addresses and the
        // shutdown handle come back.
        let runner = thread::Builder::new()
            .name("wscgi-under-test".into())
            .spawn(move || run_server(args, tx))
            .expect("spawn wscgi thread");
        let bound = match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(Ok(bound)) => bound,
            Ok(Err(why)) => panic!("wscgi failed to start: {why}"),
            Err(_) => panic!("wscgi did not report its addresses within {STARTUP_TIMEOUT:?}"),
        };
        Wscgi {
            ws_addr: bound.ws_addr,
            push_addr: bound.push_addr,
            shutdown: bound.shutdown,
            runner: Some(runner),
        }
    }

    /// "ws://127.0.0.1:PORT" followed by `path_and_query` (which starts with '/').
    pub fn ws_url(&self, path_and_query: &str) -> String {
        format!("ws://{}{}", self.ws_addr, path_and_query)
    }
}

/// Body of the run thread. Start-up failures go back over `tx`; the return
/// value is run()'s outcome, checked when the [`Wscgi`] is dropped.
fn run_server(args: Vec<String>, tx: mpsc::Sender<Result<Bound, String>>) -> Result<(), String> {
    let no_env = |_: &str| -> Option<String> { None };
    let config = match wscgi::config::parse(&args, &no_env) {
        Ok(wscgi::config::Command::Run(config)) => config,
        Ok(_) => {
            let _ = tx.send(Err(format!("{args:?} asked for help/version, not a run")));
            return Ok(());
        }
        Err(e) => {
            let _ = tx.send(Err(format!("arguments {args:?} rejected: {e:?}")));
            return Ok(());
        }
    };
    let server = match wscgi::Server::bind(config) {
        Ok(server) => server,
        Err(e) => {
            let _ = tx.send(Err(format!("bind failed: {e}")));
            return Ok(());
        }
    };
    let bound = Bound {
        ws_addr: server.ws_addr(),
        push_addr: server.push_addr(),
        shutdown: server.shutdown_handle(),
    };
    if tx.send(Ok(bound)).is_err() {
        return Ok(()); // the test gave up waiting; nobody will stop us
    }
    server.run().map_err(|e| e.to_string())
}

impl Wscgi {
    /// Asks for a graceful shutdown and waits until `run()` returned; panics after `limit`.
    pub fn stop_within(mut self, limit: Duration) {
        self.shutdown.shutdown();
        let runner = self.runner.take().expect("running");
        match join_within(runner, limit) {
            Some(Ok(Ok(()))) => {}
            None => panic!("wscgi run() did not return within {limit:?} of shutdown()"),
            Some(Ok(Err(e))) => panic!("wscgi run() returned an error: {e}"),
            Some(Err(payload)) => panic!("wscgi run() panicked: {}", panic_message(&*payload)),
        }
    }
}

impl Drop for Wscgi {
    fn drop(&mut self) {
        self.shutdown.shutdown();
        let Some(runner) = self.runner.take() else {
            return;
        };
        let failure = match join_within(runner, SHUTDOWN_TIMEOUT) {
            None => {
                // Leave the thread behind rather than hang the test binary.
                eprintln!(
                    "warning: wscgi run() did not return within {SHUTDOWN_TIMEOUT:?} of shutdown()"
                );
                return;
            }
            Some(Ok(Ok(()))) => return,
            Some(Ok(Err(e))) => format!("wscgi run() returned an error: {e}"),
            Some(Err(payload)) => format!("wscgi run() panicked: {}", panic_message(&*payload)),
        };
        // A server that died is a test failure, unless the test already failed.
        if thread::panicking() {
            eprintln!("{failure}");
        } else {
            panic!("{failure}");
        }
    }
}

// ---------------------------------------------------------------------------
// WebSocket client
// ---------------------------------------------------------------------------

pub type Client = WebSocket<MaybeTlsStream<TcpStream>>;

/// Connects or panics with the reason. Reads time out after 5 s.
pub fn connect(url: &str) -> Client {
    connect_with(url, &[])
}

/// Like [`connect`], with extra handshake request headers.
pub fn connect_with(url: &str, headers: &[(&str, &str)]) -> Client {
    try_connect_with(url, headers).unwrap_or_else(|e| {
        panic!(
            "WebSocket connect to {url} failed: {}",
            describe_ws_error(&e)
        )
    })
}

/// Connects, adding `headers` to the handshake request: the first occurrence
/// of a name replaces tungstenite's own value, later ones are appended. A
/// rejected handshake is `Err(Error::Http(response))` with the full body.
/// Connect, handshake and every later read/write time out after 5 s.
pub fn try_connect_with(url: &str, headers: &[(&str, &str)]) -> Result<Client, tungstenite::Error> {
    let mut request = url.into_client_request()?;
    let mut given: Vec<HeaderName> = Vec::new();
    for (name, value) in headers {
        let name =
            HeaderName::from_bytes(name.as_bytes()).map_err(tungstenite::http::Error::from)?;
        let value = HeaderValue::from_str(value).map_err(tungstenite::http::Error::from)?;
        if given.contains(&name) {
            request.headers_mut().append(name, value);
        } else {
            request.headers_mut().insert(name.clone(), value);
            given.push(name);
        }
    }
    let stream = tcp_connect(request.uri())?;
    // A second handle on the socket: the handshake consumes the stream, and
    // tungstenite keeps only the body bytes that arrived with the head.
    let spare = stream.try_clone()?;
    match tungstenite::client::client(request, MaybeTlsStream::Plain(stream)) {
        Ok((ws, _response)) => Ok(ws),
        Err(HandshakeError::Failure(tungstenite::Error::Http(mut response))) => {
            complete_rejection_body(&mut response, spare);
            Err(tungstenite::Error::Http(response))
        }
        Err(HandshakeError::Failure(e)) => Err(e),
        Err(HandshakeError::Interrupted(_)) => Err(tungstenite::Error::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no handshake response within {IO_TIMEOUT:?}"),
        ))),
    }
}

fn tcp_connect(uri: &Uri) -> io::Result<TcpStream> {
    let host = uri.host().unwrap_or("127.0.0.1");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    let addr = (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no address for {host}")))?;
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Reads the rest of a rejection's body (per its Content-Length) that
/// arrived after the head. Bounded by that length and the read timeout.
fn complete_rejection_body(
    response: &mut tungstenite::http::Response<Option<Vec<u8>>>,
    mut spare: TcpStream,
) {
    let want = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_BODY);
    let body = response.body_mut().get_or_insert_with(Vec::new);
    let mut chunk = [0u8; 8192];
    while body.len() < want {
        match spare.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&chunk[..n.min(want - body.len())]),
        }
    }
}

fn describe_ws_error(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Http(response) => {
            let body = response.body().as_deref().unwrap_or_default();
            format!(
                "handshake rejected with {}: {:?}",
                response.status(),
                String::from_utf8_lossy(body)
            )
        }
        tungstenite::Error::Io(io) if is_timeout(io) => {
            format!("timed out after {IO_TIMEOUT:?} ({io})")
        }
        other => other.to_string(),
    }
}

/// The next data message (text or binary), skipping ping/pong. Panics on a
/// close frame, an error or the read timeout.
fn recv_data(c: &mut Client) -> Message {
    for _ in 0..MAX_SKIPPED_FRAMES {
        match c.read() {
            // tungstenite queues the pong reply to a ping by itself.
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
            // A child process exiting can interrupt a read with a timeout (EINTR).
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
            Ok(msg) => return msg,
            Err(e) => panic!("waiting for a WebSocket message: {}", describe_ws_error(&e)),
        }
    }
    panic!("no data message among {MAX_SKIPPED_FRAMES} control frames");
}

/// The next data message, which must be text.
pub fn recv_text(c: &mut Client) -> String {
    match recv_data(c) {
        Message::Text(text) => text.to_string(),
        other => panic!("expected a text message, got {}", describe_message(&other)),
    }
}

/// The next data message, which must be binary.
pub fn recv_binary(c: &mut Client) -> Vec<u8> {
    match recv_data(c) {
        Message::Binary(bytes) => bytes.to_vec(),
        other => panic!(
            "expected a binary message, got {}",
            describe_message(&other)
        ),
    }
}

/// Reads until the peer's close frame, skipping any messages before it, and
/// returns its payload (None for a close frame without a code). Our close
/// reply is flushed so the server sees a complete closing handshake. Panics
/// if the connection ends without a close frame or a read times out.
pub fn recv_close(c: &mut Client) -> Option<CloseFrame> {
    for _ in 0..MAX_SKIPPED_FRAMES {
        match c.read() {
            Ok(Message::Close(frame)) => {
                let _ = c.flush();
                return frame;
            }
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("waiting for a close frame: {}", describe_ws_error(&e)),
        }
    }
    panic!("no close frame among {MAX_SKIPPED_FRAMES} messages");
}

fn describe_message(m: &Message) -> String {
    match m {
        Message::Text(t) => format!("text {:?}", truncate(t.as_str(), 200)),
        Message::Binary(b) => format!("binary ({} bytes)", b.len()),
        Message::Close(Some(f)) => {
            format!("close frame {} {:?}", u16::from(f.code), f.reason.as_str())
        }
        Message::Close(None) => "close frame without code".to_string(),
        other => format!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Raw HTTP client for the push API
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// In arrival order, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// First header with that name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request on a fresh connection with `Connection: close`; reads the
/// response until EOF, or until its Content-Length (or chunked) body is
/// complete, within 5 s, and parses it. `Host`, `Content-Length` and
/// `Connection` are added unless `headers` has them; Content-Length is sent
/// when the body is non-empty or the method is POST/PUT. Panics on failure.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let request = request_bytes(addr, method, path, headers, body);
    let raw = exchange(addr, &request)
        .unwrap_or_else(|e| panic!("{method} {path} to {addr} failed: {e}"));
    parse_response(&raw).unwrap_or_else(|e| {
        panic!(
            "{method} {path} to {addr}: {e}; raw response: {:?}",
            truncate(&String::from_utf8_lossy(&raw), 500)
        )
    })
}

fn request_bytes(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !has("host") {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let needs_length = !body.is_empty() || method == "POST" || method == "PUT";
    if needs_length && !has("content-length") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    if !has("connection") {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Sends `request` and reads until EOF or a complete framed response, within
/// [`IO_TIMEOUT`] overall.
fn exchange(addr: SocketAddr, request: &[u8]) -> io::Result<Vec<u8>> {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.write_all(request)?;
    let mut out = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || out.len() > MAX_BODY {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no EOF within {IO_TIMEOUT:?} ({} bytes read)", out.len()),
            ));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => {
                out.extend_from_slice(&chunk[..n]);
                // Some servers ignore `Connection: close`; a response whose
                // length is known is complete without waiting for EOF.
                if framed_response_complete(&out) {
                    return Ok(out);
                }
            }
            // A server closing with unread input resets the connection; what
            // it sent before that is still the answer.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset && !out.is_empty() => {
                return Ok(out);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => continue, // the deadline check reports it
            Err(e) => return Err(e),
        }
    }
}

fn parse_response(raw: &[u8]) -> Result<HttpResponse, String> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut slots);
    let head_len = match resp.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("incomplete response head".to_string()),
        Err(e) => return Err(format!("bad response head: {e}")),
    };
    let status = resp.code.unwrap_or_default();
    let headers: Vec<(String, String)> = resp
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let rest = &raw[head_len..];
    let body = match response_framing(&headers)? {
        None => rest.to_vec(),
        Some(framing) => match decode_body(rest, framing)? {
            Some((body, _)) => body,
            None => {
                return Err(format!(
                    "body shorter than announced ({} bytes)",
                    rest.len()
                ));
            }
        },
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Whether `raw` holds a whole response delimited by Content-Length or
/// chunked encoding (one that runs to EOF is never complete early).
fn framed_response_complete(raw: &[u8]) -> bool {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut slots);
    let Ok(httparse::Status::Complete(head_len)) = resp.parse(raw) else {
        return false;
    };
    let headers = owned_headers(resp.headers);
    match response_framing(&headers) {
        Ok(Some(framing)) => matches!(decode_body(&raw[head_len..], framing), Ok(Some(_))),
        _ => false,
    }
}

/// None: the body runs to EOF.
fn response_framing(headers: &[(String, String)]) -> Result<Option<Framing>, String> {
    let framed = header_has_token(headers, "transfer-encoding", "chunked")
        || find_header(headers, "content-length").is_some();
    if framed {
        body_framing(headers).map(Some)
    } else {
        Ok(None)
    }
}

// ---------------------------------------------------------------------------
// Small shared pieces
// ---------------------------------------------------------------------------

/// Polls `cond` every 5 ms until it holds; panics naming `what` if `timeout`
/// passes first.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting until {what}");
        }
        thread::sleep(POLL);
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Whether any `name` header lists `token` among its comma-separated values.
fn header_has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Joins a thread if it finishes within `timeout` (polled, since std has no
/// timed join); None if it is still running.
fn join_within<T>(handle: JoinHandle<T>, timeout: Duration) -> Option<thread::Result<T>> {
    let deadline = Instant::now() + timeout;
    while !handle.is_finished() {
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(POLL);
    }
    Some(handle.join())
}

/// Locks even if another thread panicked while holding the lock: the data
/// (recorded requests) stays meaningful.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

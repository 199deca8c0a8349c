//! Echo backend for wscgi's demo and benchmarks; std only.
//!
//! Owns a small HTTP/1.1 keep-alive server, one thread per connection:
//! - `POST` with `WS-Event: message` → 200 echoing the body and Content-Type,
//!   so each WebSocket message comes straight back to its sender (an empty
//!   one too: `WS-Send-Empty: 1` makes wscgi send an empty body);
//! - `POST` with any other `WS-Event` (open, close, reset) → 200, empty body,
//!   which accepts the connection and sends nothing;
//! - `GET /` → the demo page, which talks to wscgi on port 8080 of the same
//!   host (or to the full ws:// URL given as `?ws=`);
//! - anything else → 404.
//!
//! Run it with `cargo run --release --example echo_backend -- [ADDR]`
//! (default 127.0.0.1:9000), then wscgi with `--backend http://ADDR/`.
//! A malformed request gets a 4xx/5xx answer and closes its own connection;
//! nothing a client sends makes the process panic.

use std::env;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

const DEFAULT_ADDR: &str = "127.0.0.1:9000";
/// Beyond this many open connections new ones get a 503, so a flood cannot
/// exhaust threads or memory.
const MAX_CONNECTIONS: usize = 512;
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 16 * 1024 * 1024;
/// An idle keep-alive connection is closed after this long (nginx's default
/// keepalive_timeout); also bounds how long a stalled request can hold a thread
/// per read.
const IDLE_TIMEOUT: Duration = Duration::from_secs(75);
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Keeps every connection loop finite; high enough never to matter in a
/// benchmark (the client reconnects after `Connection: close`).
const MAX_REQUESTS_PER_CONNECTION: u64 = 10_000_000;
/// Pause after a failed accept (e.g. out of file descriptors) so the loop does
/// not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let addr = match args.as_slice() {
        [] => DEFAULT_ADDR,
        [flag] if flag == "-h" || flag == "--help" => {
            println!("usage: echo_backend [ADDR]   (default {DEFAULT_ADDR})");
            return ExitCode::SUCCESS;
        }
        [addr] => addr.as_str(),
        _ => {
            eprintln!("usage: echo_backend [ADDR]   (default {DEFAULT_ADDR})");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(addr) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("echo backend: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(local) => println!("echo backend on http://{local} (demo page at /)"),
        Err(_) => println!("echo backend on http://{addr} (demo page at /)"),
    }
    accept_forever(&listener);
    ExitCode::FAILURE
}

/// Serves until the process is killed; each connection gets its own thread.
pub fn accept_forever(listener: &TcpListener) {
    let open = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => dispatch(stream, &open),
            Err(e) => {
                eprintln!("echo backend: accept failed: {e}");
                thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
}

/// Counts one open connection; the count drops when this does, even if the
/// connection's thread unwinds.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(open: &Arc<AtomicUsize>) -> Option<Slot> {
        let previous = open.fetch_add(1, Ordering::SeqCst);
        let slot = Slot(Arc::clone(open));
        (previous < MAX_CONNECTIONS).then_some(slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn dispatch(mut stream: TcpStream, open: &Arc<AtomicUsize>) {
    let Some(slot) = Slot::take(open) else {
        let busy = Response::text(503, "too many connections\n");
        let _ = stream.write_all(&busy.to_bytes(false));
        return;
    };
    let spawned = thread::Builder::new()
        .name("echo-conn".into())
        .spawn(move || {
            let _slot = slot;
            serve_connection(stream);
        });
    if let Err(e) = spawned {
        eprintln!("echo backend: cannot spawn a connection thread: {e}");
    }
}

/// Answers requests on one connection until the client closes, asks to
/// close, errs, idles out, or sends something malformed.
fn serve_connection(stream: TcpStream) {
    let configured = stream.set_read_timeout(Some(IDLE_TIMEOUT)).is_ok()
        && stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_ok()
        && stream.set_nodelay(true).is_ok();
    if !configured {
        return;
    }
    let mut conn = Conn {
        stream,
        buf: Vec::with_capacity(8 * 1024),
    };
    for served in 1..=MAX_REQUESTS_PER_CONNECTION {
        let request = match conn.read_request() {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(rejection) => {
                let _ = conn.stream.write_all(&rejection.to_bytes(false));
                return;
            }
        };
        let keep_alive = request.keep_alive && served < MAX_REQUESTS_PER_CONNECTION;
        let response = route(&request);
        if conn
            .stream
            .write_all(&response.to_bytes(keep_alive))
            .is_err()
            || !keep_alive
        {
            return;
        }
    }
}

struct Request {
    method: String,
    target: String,
    /// Names lowercased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    keep_alive: bool,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

struct Response {
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
    /// `WS-Send-Empty: 1`: wscgi sends an empty body as an empty message.
    send_empty: bool,
}

impl Response {
    fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: Some("text/plain; charset=utf-8".to_string()),
            body: body.as_bytes().to_vec(),
            send_empty: false,
        }
    }

    fn empty() -> Response {
        Response {
            status: 200,
            content_type: None,
            body: Vec::new(),
            send_empty: false,
        }
    }

    /// Head and body in one buffer so they leave in as few packets as possible.
    fn to_bytes(&self, keep_alive: bool) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        if let Some(ct) = &self.content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        if self.send_empty {
            head.push_str("WS-Send-Empty: 1\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        if !keep_alive {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        let mut out = Vec::with_capacity(head.len() + self.body.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(&self.body);
        out
    }
}

fn route(request: &Request) -> Response {
    if request.method == "POST"
        && let Some(event) = request.header("ws-event")
    {
        return answer_event(event, request);
    }
    if request.method == "GET" && path_of(&request.target) == "/" {
        return Response {
            status: 200,
            content_type: Some("text/html; charset=utf-8".to_string()),
            body: DEMO_PAGE.as_bytes().to_vec(),
            send_empty: false,
        };
    }
    Response::text(404, "not found\n")
}

/// Messages come back as they went out, empty ones included (wscgi sends an
/// empty body only with `WS-Send-Empty: 1`); every other event (open, close,
/// reset) is acknowledged with an empty 200, which sends the client nothing.
fn answer_event(event: &str, request: &Request) -> Response {
    if !event.eq_ignore_ascii_case("message") {
        return Response::empty();
    }
    Response {
        status: 200,
        content_type: request.header("content-type").map(str::to_string),
        body: request.body.clone(),
        send_empty: request.body.is_empty(),
    }
}

fn path_of(target: &str) -> &str {
    target.split(['?', '#']).next().unwrap_or(target)
}

/// A connection plus the bytes read from it but not yet consumed (a
/// pipelined next request may already be in there).
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Ok(None) when the client closed (or idled out) between requests; Err
    /// is the response that explains why the request is unacceptable.
    fn read_request(&mut self) -> Result<Option<Request>, Response> {
        let Some(head_len) = self.read_head()? else {
            return Ok(None);
        };
        let head = parse_head(&self.buf[..head_len])?;
        let body_len = content_length(&head.headers)?;
        self.buf.drain(..head_len);
        if self.buf.len() < body_len && expects_continue(&head.headers) {
            let _ = self.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        if !self.read_until_len(body_len) {
            return Ok(None);
        }
        let body: Vec<u8> = self.buf.drain(..body_len).collect();
        Ok(Some(Request {
            keep_alive: keep_alive(&head),
            method: head.method,
            target: head.target,
            headers: head.headers,
            body,
        }))
    }

    /// Reads until the buffer holds a whole head; returns its length
    /// (including the blank line). Bounded by [`MAX_HEAD`].
    fn read_head(&mut self) -> Result<Option<usize>, Response> {
        loop {
            // Tolerate stray CRLFs between requests (RFC 9112 §2.2).
            let blank = self
                .buf
                .iter()
                .take_while(|b| **b == b'\r' || **b == b'\n')
                .count();
            self.buf.drain(..blank);
            let head_end = find(&self.buf, b"\r\n\r\n").map(|end| end + 4);
            if head_end.unwrap_or(self.buf.len()) > MAX_HEAD {
                return Err(Response::text(431, "request head too large\n"));
            }
            if let Some(len) = head_end {
                return Ok(Some(len));
            }
            match self.fill() {
                Ok(true) => {}
                Ok(false) if self.buf.is_empty() => return Ok(None),
                Ok(false) => return Err(Response::text(400, "incomplete request\n")),
                Err(_) => return Ok(None),
            }
        }
    }

    /// Reads until the buffer holds `len` bytes; false if the client went
    /// away first. Bounded: `len` is at most [`MAX_BODY`].
    fn read_until_len(&mut self, len: usize) -> bool {
        while self.buf.len() < len {
            if !matches!(self.fill(), Ok(true)) {
                return false;
            }
        }
        true
    }

    /// One read into the buffer; Ok(false) on EOF.
    fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                // Only a signal can interrupt a read, and never endlessly.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

struct Head {
    method: String,
    target: String,
    http10: bool,
    headers: Vec<(String, String)>,
}

fn parse_head(raw: &[u8]) -> Result<Head, Response> {
    let bad = |why: &str| Response::text(400, &format!("{why}\n"));
    let text = std::str::from_utf8(raw).map_err(|_| bad("request head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) || target.is_empty() {
        return Err(bad("malformed request line"));
    }
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(Response::text(505, "only HTTP/1.0 and HTTP/1.1\n")),
    };
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        headers.push(parse_header_line(line).ok_or_else(|| bad("malformed header line"))?);
    }
    Ok(Head {
        method: method.to_string(),
        target: target.to_string(),
        http10,
        headers,
    })
}

/// `Name: value`; the name must be a bare token (this also rejects obsolete
/// line folding, which starts with whitespace).
fn parse_header_line(line: &str) -> Option<(String, String)> {
    let (name, value) = line.split_once(':')?;
    let is_token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(is_token) {
        return None;
    }
    Some((name.to_ascii_lowercase(), value.trim().to_string()))
}

/// Only Content-Length bodies: wscgi always sends them, and refusing chunked
/// input keeps this parser small and unambiguous.
fn content_length(headers: &[(String, String)]) -> Result<usize, Response> {
    if header(headers, "transfer-encoding").is_some() {
        return Err(Response::text(501, "Transfer-Encoding is not supported\n"));
    }
    let mut lengths = headers.iter().filter(|(k, _)| k == "content-length");
    let Some((_, first)) = lengths.next() else {
        return Ok(0);
    };
    if lengths.any(|(_, other)| other != first) {
        return Err(Response::text(400, "conflicting Content-Length\n"));
    }
    let len: usize = first
        .parse()
        .map_err(|_| Response::text(400, "bad Content-Length\n"))?;
    if len > MAX_BODY {
        return Err(Response::text(413, "body too large\n"));
    }
    Ok(len)
}

fn expects_continue(headers: &[(String, String)]) -> bool {
    header(headers, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
}

/// HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 closes
/// unless told to keep it.
fn keep_alive(head: &Head) -> bool {
    let connection = header(&head.headers, "connection").unwrap_or("");
    let has = |token: &str| {
        connection
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if head.http10 {
        has("keep-alive")
    } else {
        !has("close")
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

/// The demo page: one text box, a log of sent and received messages, and
/// the connection state. Element ids (`status`, `log`, `msg`) and classes
/// (`sent`, `received`, `info`) are stable for automated browser checks.
const DEMO_PAGE: &str = include_str!("echo_page.html");

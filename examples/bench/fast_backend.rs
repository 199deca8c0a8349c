//! Fast echo backend for benchmarks (`bench-fast-backend`); std + httparse (+ one libc call).
//!
//! Multi-threaded HTTP/1.1 keep-alive server, one thread per backend
//! connection (wscgi keeps `--workers` of them open, wrk `-c` of them), so a
//! request costs one read and one write and never waits for another
//! connection. It speaks both protocols the benchmark needs:
//!
//! - **wscgi** (`WS-Event` header): `message` → 200 with the same body and
//!   Content-Type (plus `WS-Send-Empty: 1` when empty, so an empty message
//!   comes back too); `open` → 200, empty body, `WS-Subscribe: bench` (so the
//!   fanout scenario finds every client in channel `bench`; harmless for the
//!   others); anything else → 200, empty.
//! - **Pushpin WebSocket-over-HTTP** (`Content-Type: application/websocket-events`):
//!   `OPEN` → `OPEN` plus the GRIP control message that subscribes the
//!   connection to channel `bench` (with `Sec-WebSocket-Extensions: grip;
//!   message-prefix=""` so messages pass unprefixed); `TEXT`/`BINARY` → the
//!   same event back (echo); `CLOSE` → `CLOSE` (acknowledge); others ignored.
//!   The same answers as `examples/bench/pushpin_backend.py`, at Rust speed,
//!   so Pushpin and wscgi are measured in front of the same backend.
//!
//! Any other request (no `WS-Event`, e.g. wrk's ceiling run sends one) is
//! answered like a `message`: the body comes back.
//!
//! Run: `cargo run --release --example bench-fast-backend -- [ADDR]`
//! (default 127.0.0.1:9100). Prints `listening on ADDR` once bound.

use std::env;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

const DEFAULT_ADDR: &str = "127.0.0.1:9100";
/// Beyond this many open connections new ones get a 503 and are closed.
const MAX_CONNECTIONS: usize = 4096;
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 16 * 1024 * 1024;
const MAX_HEADERS: usize = 64;
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
const THREAD_STACK: usize = 128 * 1024;
const CHANNEL: &str = "bench";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let addr = match args.as_slice() {
        [] => DEFAULT_ADDR.to_string(),
        [flag] if flag == "-h" || flag == "--help" => {
            println!("usage: bench-fast-backend [ADDR]   (default {DEFAULT_ADDR})");
            return ExitCode::SUCCESS;
        }
        [addr] => addr.clone(),
        _ => {
            eprintln!("usage: bench-fast-backend [ADDR]   (default {DEFAULT_ADDR})");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bench-fast-backend: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // std listens with a backlog of 128; a proxy that opens backend connections in bursts
    // (Pushpin's zurl does) would see refused or dropped connects, which is not what this
    // benchmark measures. listen() again on a listening socket just resizes its backlog.
    // SAFETY: the descriptor is the listener's own and stays open during the call.
    unsafe {
        libc::listen(listener.as_raw_fd(), 4096);
    }
    let local = listener.local_addr().map(|a| a.to_string()).unwrap_or(addr);
    println!("listening on {local}");
    let open = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => spawn_connection(stream, &open),
            Err(e) => {
                eprintln!("bench-fast-backend: accept: {e}");
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
    ExitCode::FAILURE
}

fn spawn_connection(mut stream: TcpStream, open: &Arc<AtomicUsize>) {
    if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
        open.fetch_sub(1, Ordering::SeqCst);
        let _ = stream.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    }
    let counter = Arc::clone(open);
    let spawned = thread::Builder::new()
        .name("fast-conn".into())
        .stack_size(THREAD_STACK)
        .spawn(move || {
            serve(stream);
            counter.fetch_sub(1, Ordering::SeqCst);
        });
    if let Err(e) = spawned {
        open.fetch_sub(1, Ordering::SeqCst);
        eprintln!("bench-fast-backend: spawn: {e}");
    }
}

/// Serves requests on one connection until EOF, error, or `Connection: close`.
fn serve(mut stream: TcpStream) {
    if stream.set_nodelay(true).is_err() || stream.set_read_timeout(Some(IDLE_TIMEOUT)).is_err() {
        return;
    }
    let mut buf: Vec<u8> = Vec::with_capacity(8 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(8 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        // Parse a whole head out of `buf`, reading more as needed.
        let parsed = loop {
            match parse_request(&buf) {
                Ok(Some(p)) => break p,
                Ok(None) => {}
                Err(status) => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    return;
                }
            }
            if buf.len() > MAX_HEAD {
                let _ = stream.write_all(
                    b"HTTP/1.1 431 Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                return;
            }
            match read_some(&mut stream, &mut chunk) {
                Some(n) => buf.extend_from_slice(&chunk[..n]),
                None => return,
            }
        };
        let total = parsed.head_len + parsed.body_len;
        while buf.len() < total {
            match read_some(&mut stream, &mut chunk) {
                Some(n) => buf.extend_from_slice(&chunk[..n]),
                None => return,
            }
        }
        out.clear();
        answer(&parsed, &buf[parsed.head_len..total], &mut out);
        buf.drain(..total);
        if stream.write_all(&out).is_err() || !parsed.keep_alive {
            return;
        }
    }
}

fn read_some(stream: &mut TcpStream, chunk: &mut [u8]) -> Option<usize> {
    loop {
        match stream.read(chunk) {
            Ok(0) => return None,
            Ok(n) => return Some(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
}

#[derive(PartialEq)]
enum Kind {
    /// wscgi event with this `WS-Event` value (lowercased).
    Wscgi(String),
    /// Pushpin WebSocket-over-HTTP (`application/websocket-events`).
    Pushpin,
    /// Anything else (wrk): echo.
    Plain,
}

struct Parsed {
    head_len: usize,
    body_len: usize,
    keep_alive: bool,
    kind: Kind,
    content_type: Option<String>,
}

/// Ok(None) when the head is incomplete; Err(status) when it is malformed.
fn parse_request(buf: &[u8]) -> Result<Option<Parsed>, u16> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(400),
    };
    let mut body_len = 0usize;
    let mut connection_close = req.version == Some(0);
    let mut event = None;
    let mut content_type = None;
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value).map_err(|_| 400u16)?.trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            body_len = value.parse().map_err(|_| 400u16)?;
            if body_len > MAX_BODY {
                return Err(413);
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(501);
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in value.split(',') {
                let t = token.trim();
                if t.eq_ignore_ascii_case("close") {
                    connection_close = true;
                } else if t.eq_ignore_ascii_case("keep-alive") {
                    connection_close = false;
                }
            }
        } else if h.name.eq_ignore_ascii_case("ws-event") {
            event = Some(value.to_ascii_lowercase());
        } else if h.name.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.to_string());
        }
    }
    let kind = if content_type.as_deref() == Some("application/websocket-events") {
        Kind::Pushpin
    } else if let Some(e) = event {
        Kind::Wscgi(e)
    } else {
        Kind::Plain
    };
    Ok(Some(Parsed {
        head_len,
        body_len,
        keep_alive: !connection_close,
        kind,
        content_type,
    }))
}

fn answer(req: &Parsed, body: &[u8], out: &mut Vec<u8>) {
    let close = if req.keep_alive {
        ""
    } else {
        "Connection: close\r\n"
    };
    match &req.kind {
        Kind::Wscgi(event) if event == "open" => {
            let _ = write!(
                out,
                "HTTP/1.1 200 OK\r\nWS-Subscribe: {CHANNEL}\r\nContent-Length: 0\r\n{close}\r\n"
            );
        }
        Kind::Wscgi(event) if event != "message" => {
            let _ = write!(out, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n{close}\r\n");
        }
        Kind::Pushpin => {
            let (events, open) = pushpin_answer(body);
            let ext = if open {
                "Sec-WebSocket-Extensions: grip; message-prefix=\"\"\r\n"
            } else {
                ""
            };
            let _ = write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: application/websocket-events\r\n{ext}Content-Length: {}\r\n{close}\r\n",
                events.len()
            );
            out.extend_from_slice(&events);
        }
        _ => {
            let _ = write!(out, "HTTP/1.1 200 OK\r\n");
            if let Some(ct) = &req.content_type {
                let _ = write!(out, "Content-Type: {ct}\r\n");
            }
            // wscgi sends an empty body as an empty message only when asked.
            if body.is_empty() && matches!(req.kind, Kind::Wscgi(_)) {
                let _ = write!(out, "WS-Send-Empty: 1\r\n");
            }
            let _ = write!(out, "Content-Length: {}\r\n{close}\r\n", body.len());
            out.extend_from_slice(body);
        }
    }
}

/// Answers a batch of WebSocket-over-HTTP events; true when it held OPEN.
/// Format: `TYPE\r\n` or `TYPE <hex length>\r\n<content>\r\n`, repeated.
fn pushpin_answer(body: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(body.len() + 64);
    let mut open = false;
    let mut at = 0;
    while at < body.len() {
        let Some(eol) = find(&body[at..], b"\r\n") else {
            break;
        };
        let line = &body[at..at + eol];
        at += eol + 2;
        let (kind, content) = match line.iter().position(|b| *b == b' ') {
            Some(sp) => {
                let len = std::str::from_utf8(&line[sp + 1..])
                    .ok()
                    .and_then(|s| usize::from_str_radix(s, 16).ok())
                    .unwrap_or(0);
                let end = (at + len).min(body.len());
                let content = &body[at..end];
                at = end + 2;
                (&line[..sp], Some(content))
            }
            None => (line, None),
        };
        match kind {
            b"OPEN" => {
                open = true;
                out.extend_from_slice(b"OPEN\r\n");
                let control = format!("c:{{\"type\":\"subscribe\",\"channel\":\"{CHANNEL}\"}}");
                push_event(&mut out, b"TEXT", control.as_bytes());
            }
            b"TEXT" | b"BINARY" => push_event(&mut out, kind, content.unwrap_or(b"")),
            b"CLOSE" => out.extend_from_slice(b"CLOSE\r\n"),
            _ => {}
        }
    }
    (out, open)
}

fn push_event(out: &mut Vec<u8>, kind: &[u8], content: &[u8]) {
    out.extend_from_slice(kind);
    let _ = write!(out, " {:x}\r\n", content.len());
    out.extend_from_slice(content);
    out.extend_from_slice(b"\r\n");
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

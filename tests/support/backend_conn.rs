//! The serving side of [`TestBackend`](super::TestBackend): the accept loop,
//! one thread per connection, parsing requests (keep-alive and pipelining
//! included) and writing the scripted replies.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::backend::{BackendReply, BackendRequest, ReplyAction, Shared};
use super::wait::{IO_TIMEOUT, is_timeout};
use super::wire::{
    MAX_HEADERS, body_framing, decode_body, find_header, header_has_token, owned_headers,
    reason_phrase,
};

/// How long a backend connection blocks in read() before re-checking the stop
/// flag, so its thread ends soon after the [`TestBackend`](super::TestBackend)
/// is dropped.
const BACKEND_READ_SLICE: Duration = Duration::from_millis(50);
/// Generous limit: tests may send big heads, but a runaway peer must not
/// make the backend allocate without bound.
const MAX_HEAD: usize = 64 * 1024;

/// Runs until the backend is dropped. Accept errors (e.g. out of file
/// descriptors) are retried a bounded number of times in a row.
pub(super) fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
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

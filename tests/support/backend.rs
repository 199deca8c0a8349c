//! [`TestBackend`]: a real HTTP/1.1 keep-alive backend that records every
//! request wscgi sends it ([`BackendRequest`]) and answers with a scripted
//! [`BackendReply`]. The connections themselves are served in
//! `backend_conn`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::backend_conn::accept_loop;
use super::describe::{or_dash, panic_message};
use super::wait::{IO_TIMEOUT, POLL, join_within};
use super::wire::find_header;

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

    /// What [`TestBackend::echo`] answers: a message comes back with its body and
    /// Content-Type; anything else gets 200 empty.
    pub fn echo_of(req: &BackendRequest) -> Self {
        if req.event() != "message" {
            return BackendReply::ok();
        }
        let reply = BackendReply::ok().body(req.body.clone());
        match req.header("content-type") {
            Some(ct) => reply.header("Content-Type", ct),
            None => reply,
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
pub(super) struct Shared {
    handler: Box<Handler>,
    requests: Mutex<Vec<BackendRequest>>,
    /// Handler panics are caught (the request gets a 500) and reported when
    /// the backend is dropped, so an assertion inside a handler fails the test.
    handler_panics: Mutex<Vec<String>>,
    stop: AtomicBool,
}

impl Shared {
    pub(super) fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub(super) fn record(&self, req: &BackendRequest) {
        lock(&self.requests).push(req.clone());
    }

    pub(super) fn reply_to(&self, req: &BackendRequest) -> BackendReply {
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
    pub(super) fn pause(&self, d: Duration) -> bool {
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
        TestBackend::start(BackendReply::echo_of)
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

    /// The `WS-Event` of every request recorded so far, in arrival order.
    pub fn event_names(&self) -> Vec<String> {
        let all = lock(&self.shared.requests);
        all.iter().map(|r| r.event().to_string()).collect()
    }

    /// Waits up to `timeout` for the close event of the connection opened on `path` (unique
    /// within a test) and returns its `WS-Close-Code`.
    pub fn close_code_on(&self, path: &str, timeout: Duration) -> String {
        let is_it = |q: &BackendRequest| q.event() == "close" && q.header("ws-path") == Some(path);
        let reqs = self.wait_for(timeout, |r| r.iter().any(is_it));
        let close = reqs.into_iter().find(is_it).expect("the close event");
        close.header("ws-close-code").unwrap_or("-").to_string()
    }

    /// Waits up to `timeout` for the open event of the connection opened on `path` (unique
    /// within a test) and returns its `WS-Connection-Id`.
    pub fn conn_id_on(&self, path: &str, timeout: Duration) -> String {
        let is_it = |q: &BackendRequest| q.event() == "open" && q.header("ws-path") == Some(path);
        let reqs = self.wait_for(timeout, |r| r.iter().any(is_it));
        let open = reqs.into_iter().find(is_it).expect("the open event");
        open.conn_id().to_string()
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

/// Locks even if another thread panicked while holding the lock: the data
/// (recorded requests) stays meaningful.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

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
//! nothing a client sends makes the process panic. HTTP framing: `echo_backend/http.rs`; the
//! page: `echo_backend/page.html`.

// Spelled out because a crate root (and a file loaded with #[path], as demo.rs and
// tests/conformance.rs do) looks for plain `mod http;` beside itself, in examples/.
#[path = "echo_backend/http.rs"]
mod http;

use http::{Conn, Request, Response};

use std::env;
use std::io::Write;
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

/// The demo page: one text box, a log of sent and received messages, and
/// the connection state. Element ids (`status`, `log`, `msg`) and classes
/// (`sent`, `received`, `info`) are stable for automated browser checks.
const DEMO_PAGE: &str = include_str!("echo_backend/page.html");

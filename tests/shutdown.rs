//! Graceful shutdown: stop accepting, close every client with 1001, deliver every queued event
//! and every close event before exiting; SIGTERM and SIGINT start it, SIGHUP is harmless.

mod support;

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;
use tungstenite::Message;

const T: Duration = Duration::from_secs(20);

fn closes(reqs: &[BackendRequest]) -> Vec<&BackendRequest> {
    reqs.iter().filter(|r| r.event() == "close").collect()
}

#[test]
fn no_close_event_is_lost_with_500_open_connections() {
    let backend = TestBackend::start(|req| match req.event() {
        // Slow enough that events are still queued when the shutdown starts.
        "message" => BackendReply::ok().delay(Duration::from_millis(5)),
        _ => BackendReply::ok(),
    });
    let server = Wscgi::start(
        &backend.url(),
        &["--workers", "8", "--shutdown-timeout", "15s"],
    );
    let mut clients: Vec<Client> = (0..500).map(|_| connect(&server.ws_url("/"))).collect();
    backend.wait_for(T, |r| {
        r.iter().filter(|q| q.event() == "open").count() == 500
    });
    for client in clients.iter_mut().take(50) {
        client.send(Message::text("last words")).unwrap();
    }
    server.stop_within(T);

    let reqs = backend.requests();
    let closes = closes(&reqs);
    assert_eq!(closes.len(), 500, "one close event per connection");
    assert!(
        closes
            .iter()
            .all(|c| c.header("ws-close-code") == Some("1001"))
    );
    let messages = reqs.iter().filter(|q| q.event() == "message").count();
    assert_eq!(
        messages, 50,
        "queued messages were delivered before exiting"
    );
    let mut ids: Vec<&str> = closes.iter().map(|c| c.conn_id()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 500);
    let frame = recv_close(&mut clients[0]).expect("a close frame");
    assert_eq!(u16::from(frame.code), 1001);
}

/// Kills the child if a test fails half-way.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn sigterm_and_sigint_shut_down_gracefully_sighup_is_harmless() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let backend = TestBackend::echo();
        let (port, push) = (free_port(), free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_wscgi"))
            .args([
                "--backend",
                &backend.url(),
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .args([
                "--push-listen",
                &format!("127.0.0.1:{push}"),
                "--log-level",
                "warn",
            ])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut guard = Guard(child);
        let url = format!("ws://127.0.0.1:{port}/");
        wait_until(T, "wscgi listening", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let mut client = connect(&url);
        client.send(Message::text("ping")).unwrap();
        assert_eq!(recv_text(&mut client), "ping");

        signal(&guard.0, libc::SIGHUP);
        client.send(Message::text("still here")).unwrap();
        assert_eq!(
            recv_text(&mut client),
            "still here",
            "SIGHUP changed nothing"
        );

        signal(&guard.0, sig);
        let frame = recv_close(&mut client).expect("a close frame");
        assert_eq!(u16::from(frame.code), 1001);
        assert_eq!(
            wait_exit(&mut guard.0, T),
            Some(0),
            "exit code after signal {sig}"
        );
        let reqs = backend.requests();
        let closes = closes(&reqs);
        assert_eq!(closes.len(), 1);
        assert_eq!(closes[0].header("ws-close-code"), Some("1001"));
    }
}

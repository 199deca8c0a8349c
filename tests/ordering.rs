//! Guarantees 1 and 2: a connection's events reach the backend in order and one at a time,
//! replies come back in the same order, open comes first, and close fires exactly once however
//! the connection ends.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use support::*;
use tungstenite::Message;

const T: Duration = Duration::from_secs(10);

fn close_events(backend: &TestBackend, id: &str) -> usize {
    backend
        .events(id)
        .iter()
        .filter(|r| r.event() == "close")
        .count()
}

/// Waits for the connection's close event, then checks no second one follows.
fn assert_one_close(backend: &TestBackend, id: &str) -> BackendRequest {
    backend.wait_for(T, |r| {
        r.iter().any(|q| q.conn_id() == id && q.event() == "close")
    });
    // Nothing more may come for this connection; give a late duplicate a chance to show up.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(close_events(backend, id), 1, "exactly one close event");
    let events = backend.events(id);
    assert_eq!(
        events.last().unwrap().event(),
        "close",
        "close is the last event"
    );
    events.last().unwrap().clone()
}

fn open_id(backend: &TestBackend, before: usize) -> String {
    let reqs = backend.wait_for(T, |r| {
        r.iter().filter(|q| q.event() == "open").count() > before
    });
    reqs.iter()
        .filter(|q| q.event() == "open")
        .nth(before)
        .unwrap()
        .conn_id()
        .to_string()
}

#[test]
fn events_of_one_connection_are_sequential_and_replies_keep_order() {
    // Replies take longer for earlier messages: any concurrency would reorder them.
    let backend = TestBackend::start(|req| match req.event() {
        "message" => {
            let n: u64 = req.body_str().parse().unwrap();
            BackendReply::ok()
                .body(req.body.clone())
                .delay(Duration::from_millis(60 - n * 5))
        }
        _ => BackendReply::ok(),
    });
    let server = Wscgi::start(&backend.url(), &["--workers", "8"]);
    let mut client = connect(&server.ws_url("/"));
    for n in 0..10 {
        client.send(Message::text(n.to_string())).unwrap();
    }
    for n in 0..10 {
        assert_eq!(recv_text(&mut client), n.to_string(), "replies in order");
    }
    let id = open_id(&backend, 0);
    let events = backend.events(&id);
    assert_eq!(events[0].event(), "open");
    for (i, pair) in events.windows(2).enumerate() {
        assert_eq!(
            pair[1].seq(),
            pair[0].seq() + 1,
            "seq increases by one at {i}"
        );
        // One in flight: the next request only starts after the previous reply (its delay).
        if pair[0].event() == "message" {
            let n: u64 = pair[0].body_str().parse().unwrap();
            let gap = pair[1].at.duration_since(pair[0].at);
            assert!(
                gap >= Duration::from_millis(60 - n * 5),
                "event {i} overlapped the next: {gap:?}"
            );
        }
    }
}

#[test]
fn a_slow_connection_does_not_delay_others() {
    let backend = TestBackend::start(|req| match (req.event(), req.body_str().as_str()) {
        ("message", "slow") => BackendReply::ok()
            .body("slow done")
            .delay(Duration::from_secs(2)),
        ("message", _) => BackendReply::ok().body(req.body.clone()),
        _ => BackendReply::ok(),
    });
    let server = Wscgi::start(&backend.url(), &["--workers", "4"]);
    let mut slow = connect(&server.ws_url("/"));
    let mut fast = connect(&server.ws_url("/"));
    slow.send(Message::text("slow")).unwrap();
    backend.wait_for(T, |r| r.iter().any(|q| q.body_str() == "slow"));
    let started = std::time::Instant::now();
    for n in 0..5 {
        fast.send(Message::text(format!("fast {n}"))).unwrap();
        assert_eq!(recv_text(&mut fast), format!("fast {n}"));
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "fast client waited for the slow one"
    );
    assert_eq!(recv_text(&mut slow), "slow done");
}

#[test]
fn no_message_is_sent_before_open_finished() {
    let backend = TestBackend::start(|req| match req.event() {
        "open" => BackendReply::ok().delay(Duration::from_millis(300)),
        "message" => BackendReply::ok().body(req.body.clone()),
        _ => BackendReply::ok(),
    });
    let server = Wscgi::start(&backend.url(), &[]);
    let mut client = connect(&server.ws_url("/"));
    client.send(Message::text("first")).unwrap();
    assert_eq!(recv_text(&mut client), "first");
    let id = open_id(&backend, 0);
    let events = backend.events(&id);
    assert!(events[1].at.duration_since(events[0].at) >= Duration::from_millis(300));
}

#[test]
fn close_fires_once_when_the_client_closes() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let mut client = connect(&server.ws_url("/"));
    let id = open_id(&backend, 0);
    client.close(None).unwrap();
    let _ = recv_close(&mut client);
    let close = assert_one_close(&backend, &id);
    assert_eq!(
        close.header("ws-close-code"),
        Some("1005"),
        "no status code in the frame"
    );
}

#[test]
fn close_fires_once_when_tcp_drops() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let client = connect(&server.ws_url("/"));
    let id = open_id(&backend, 0);
    drop(client);
    let close = assert_one_close(&backend, &id);
    assert_eq!(close.header("ws-close-code"), Some("1006"));
}

#[test]
fn close_fires_once_when_the_backend_closes() {
    let backend = TestBackend::start(|req| match req.event() {
        "message" => BackendReply::ok().header("WS-Close", "1000"),
        _ => BackendReply::ok(),
    });
    let server = Wscgi::start(&backend.url(), &[]);
    let mut client = connect(&server.ws_url("/"));
    let id = open_id(&backend, 0);
    client.send(Message::text("close me")).unwrap();
    let frame = recv_close(&mut client).expect("close frame");
    assert_eq!(u16::from(frame.code), 1000);
    assert_one_close(&backend, &id);
}

#[test]
fn close_fires_once_when_the_push_api_closes() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let mut client = connect(&server.ws_url("/"));
    let id = open_id(&backend, 0);
    let resp = http(
        server.push_addr,
        "DELETE",
        &format!("/connections/{id}?code=4002&reason=admin"),
        &[],
        b"",
    );
    assert_eq!(resp.status, 200, "{}", resp.body_str());
    let frame = recv_close(&mut client).expect("close frame");
    assert_eq!(u16::from(frame.code), 4002);
    let close = assert_one_close(&backend, &id);
    assert_eq!(close.header("ws-close-reason"), Some("admin"));
}

#[test]
fn events_queued_before_a_drop_are_all_delivered_then_close() {
    let backend = TestBackend::start(|req| match req.event() {
        "message" => BackendReply::ok().delay(Duration::from_millis(30)),
        _ => BackendReply::ok(),
    });
    let server = Wscgi::start(&backend.url(), &[]);
    let mut client = connect(&server.ws_url("/"));
    let id = open_id(&backend, 0);
    for n in 0..10 {
        client.send(Message::text(n.to_string())).unwrap();
    }
    client.flush().unwrap();
    drop(client);
    let close = assert_one_close(&backend, &id);
    assert_eq!(close.seq(), 11, "ten messages, then close");
    let bodies: Vec<String> = backend
        .events(&id)
        .iter()
        .filter(|q| q.event() == "message")
        .map(|q| q.body_str())
        .collect();
    assert_eq!(bodies, (0..10).map(|n| n.to_string()).collect::<Vec<_>>());
}

#[test]
fn a_half_open_handshake_fires_no_events() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let mut raw = TcpStream::connect(server.ws_addr).unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    drop(raw);
    std::thread::sleep(Duration::from_millis(200));
    let events = backend.event_names();
    assert_eq!(events, ["reset"]);
}

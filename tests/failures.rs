//! Broken backends: retries, what clients and the backend see after a failure, and the reset event.

mod support;

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use support::*;
use tungstenite::Message;

const T: Duration = Duration::from_secs(5);
/// Keeps failing cases fast: one retry, short timeout.
const FAST: [&str; 4] = ["--retries", "1", "--backend-timeout", "500ms"];
/// Longer than FAST's --backend-timeout.
const SLOW: Duration = Duration::from_secs(2);

/// A backend URL where nothing listens.
fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/ws")
}

fn args<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    [base, extra].concat()
}

/// The status of a handshake the server must reject.
fn open_status(server: &Wscgi) -> u16 {
    match try_connect_with(&server.ws_url("/"), &[]) {
        Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("expected an HTTP rejection, got {e}"),
        Ok(_) => panic!("expected an HTTP rejection, got a WebSocket"),
    }
}

fn close_code(client: &mut Client) -> u16 {
    u16::from(recv_close(client).expect("a close frame with a code").code)
}

fn count(reqs: &[BackendRequest], event: &str) -> usize {
    reqs.iter().filter(|q| q.event() == event).count()
}

/// WS-Seq of each recorded request whose event is `event`.
fn seqs(reqs: &[BackendRequest], event: &str) -> Vec<u64> {
    reqs.iter()
        .filter(|q| q.event() == event)
        .map(|q| q.seq())
        .collect()
}

/// The service survived: a new connection gets its message echoed.
fn assert_healthy(server: &Wscgi) {
    let mut client = connect(&server.ws_url("/"));
    client.send(Message::text("still there?")).unwrap();
    assert_eq!(recv_text(&mut client), "still there?");
}

#[test]
fn a_5xx_to_a_message_is_tried_retries_plus_one_times_then_closes_1011() {
    for (retries, tries) in [(None, 3), (Some("0"), 1), (Some("1"), 2)] {
        let backend = TestBackend::start(|req| match req.body_str().as_str() {
            "boom" => BackendReply::ok().status(500),
            _ => BackendReply::echo_of(req),
        });
        let extra: Vec<&str> = retries.map_or(vec![], |r| vec!["--retries", r]);
        let server = Wscgi::start(&backend.url(), &extra);
        let mut client = connect(&server.ws_url("/"));
        client.send(Message::text("boom")).unwrap();
        assert_eq!(close_code(&mut client), 1011, "--retries {retries:?}");

        let reqs = backend.wait_for(T, |r| count(r, "close") == 1);
        // After the reset (which has no WS-Seq): the open, the attempts, the close event.
        let events: Vec<(&str, u64)> = reqs[1..].iter().map(|q| (q.event(), q.seq())).collect();
        let want = [
            vec![("open", 0)],
            vec![("message", 1); tries],
            vec![("close", 2)],
        ];
        assert_eq!(events, want.concat(), "--retries {retries:?}");
        assert_eq!(reqs.last().unwrap().header("ws-close-code"), Some("1011"));
        assert_healthy(&server);
    }
}

#[test]
fn every_kind_of_message_failure_closes_1011_after_retries() {
    let cases: [(&str, BackendReply, &[&str]); 5] = [
        ("503", BackendReply::ok().status(503), &[]),
        ("hang-up", BackendReply::hang_up(), &[]),
        ("garbage", BackendReply::garbage(), &[]),
        ("timeout", BackendReply::ok().delay(SLOW), &[]),
        (
            "too large",
            BackendReply::ok().body([b'x'; 2048]),
            &["--max-message", "1K"],
        ),
    ];
    for (name, reply, extra) in cases {
        let backend = TestBackend::start(move |req| match req.body_str().as_str() {
            "boom" => reply.clone(),
            _ => BackendReply::echo_of(req),
        });
        let server = Wscgi::start(&backend.url(), &args(&FAST, extra));
        let mut client = connect(&server.ws_url("/"));
        client.send(Message::text("fine")).unwrap();
        assert_eq!(recv_text(&mut client), "fine", "{name}");
        client.send(Message::text("boom")).unwrap();
        assert_eq!(close_code(&mut client), 1011, "{name}");

        let reqs = backend.wait_for(T, |r| count(r, "close") == 1);
        assert_eq!(
            seqs(&reqs, "message"),
            [1, 2, 2],
            "{name}: a try and a retry"
        );
        let close = reqs.last().unwrap();
        assert_eq!(
            (close.event(), close.header("ws-close-code")),
            ("close", Some("1011"))
        );
        assert_healthy(&server);
    }
}

#[test]
fn failed_opens_get_502_or_503_and_no_close_event() {
    // Connection refused: no backend at all (the reset fails too; opens go after the timeout).
    let server = Wscgi::start(&dead_url(), &FAST);
    assert_eq!(open_status(&server), 503, "refused");
    drop(server);

    let cases: [(&str, BackendReply, &[u16]); 5] = [
        ("timeout", BackendReply::ok().delay(SLOW), &[503]),
        ("500", BackendReply::ok().status(500), &[502]),
        ("503", BackendReply::ok().status(503), &[502]),
        ("garbage", BackendReply::garbage(), &[502]),
        ("hang-up", BackendReply::hang_up(), &[502, 503]),
    ];
    for (name, reply, statuses) in cases {
        let backend = TestBackend::start(move |req| match req.event() {
            "open" => reply.clone(),
            _ => BackendReply::ok(),
        });
        let server = Wscgi::start(&backend.url(), &FAST);
        let status = open_status(&server);
        assert!(statuses.contains(&status), "{name}: got {status}");
        let reqs = backend.wait_for(T, |r| count(r, "open") == 2);
        assert_eq!(
            reqs[1].conn_id(),
            reqs[2].conn_id(),
            "{name}: one open, retried"
        );
        // Proving an absence: give a wrongly queued close event time to arrive.
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(backend.event_names(), ["reset", "open", "open"], "{name}");
    }
}

#[test]
fn a_4xx_to_a_message_is_an_answer_delivered_to_the_client() {
    let backend = TestBackend::start(|req| match req.body_str().as_str() {
        "missing" => BackendReply::ok().status(404).body("no such thing"),
        _ => BackendReply::echo_of(req),
    });
    let server = Wscgi::start(&backend.url(), &[]);
    let mut client = connect(&server.ws_url("/"));
    client.send(Message::text("missing")).unwrap();
    assert_eq!(recv_text(&mut client), "no such thing");
    client.send(Message::text("next")).unwrap();
    assert_eq!(recv_text(&mut client), "next", "the connection stays open");
    assert_eq!(
        seqs(&backend.requests(), "message"),
        [1, 2],
        "a 4xx is not retried"
    );
}

#[test]
fn a_retry_that_succeeds_hides_the_failure() {
    let (opens, messages) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let backend = TestBackend::start(move |req| match req.event() {
        "open" if opens.fetch_add(1, SeqCst) == 0 => BackendReply::garbage(),
        "message" if messages.fetch_add(1, SeqCst) < 2 => BackendReply::ok().status(500),
        _ => BackendReply::echo_of(req),
    });
    let server = Wscgi::start(&backend.url(), &[]);
    let mut client = connect(&server.ws_url("/"));
    client.send(Message::text("flaky")).unwrap();
    assert_eq!(
        recv_text(&mut client),
        "flaky",
        "the third attempt succeeded"
    );
    client.send(Message::text("again")).unwrap();
    assert_eq!(recv_text(&mut client), "again");
    let reqs = backend.requests();
    assert_eq!(seqs(&reqs, "open"), [0, 0]);
    assert_eq!(seqs(&reqs, "message"), [1, 1, 1, 2]);
    assert_eq!(count(&reqs, "close"), 0);
}

#[test]
fn a_failed_close_event_is_only_logged() {
    let backend = TestBackend::start(|req| match req.event() {
        "close" => BackendReply::ok().status(500),
        _ => BackendReply::echo_of(req),
    });
    let server = Wscgi::start(&backend.url(), &FAST);
    let mut client = connect(&server.ws_url("/"));
    client.send(Message::text("hi")).unwrap();
    assert_eq!(recv_text(&mut client), "hi");
    client.close(None).unwrap();
    let _ = recv_close(&mut client);
    let reqs = backend.wait_for(T, |r| count(r, "close") == 2);
    assert_eq!(seqs(&reqs, "close"), [2, 2], "a try and a retry");
    assert_healthy(&server);
}

#[test]
fn a_slow_connection_does_not_hold_up_others() {
    let backend = TestBackend::start(|req| {
        let reply = BackendReply::echo_of(req);
        match req.event() == "message" && req.target.contains("slow") {
            true => reply.delay(Duration::from_secs(1)),
            false => reply,
        }
    });
    let server = Wscgi::start(&backend.url(), &[]); // 4 workers
    let mut slow = connect(&server.ws_url("/?slow=1"));
    slow.send(Message::text("a")).unwrap();
    slow.send(Message::text("b")).unwrap();
    backend.wait_for(T, |r| count(r, "message") == 1);

    let mut quick = connect(&server.ws_url("/"));
    let sent = Instant::now();
    quick.send(Message::text("quick")).unwrap();
    assert_eq!(recv_text(&mut quick), "quick");
    let took = sent.elapsed();
    assert!(took < Duration::from_millis(500), "echo took {took:?}");
    assert_eq!(recv_text(&mut slow), "a");
    assert_eq!(recv_text(&mut slow), "b");
    assert!(
        sent.elapsed() >= Duration::from_secs(1),
        "the slow one really was slow"
    );
}

#[test]
fn reset_is_sent_once_before_any_open() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let clients: Vec<Client> = (0..3).map(|_| connect(&server.ws_url("/"))).collect();
    let reqs = backend.wait_for(T, |r| count(r, "open") == 3);
    assert_eq!(reqs[0].event(), "reset");
    assert_eq!(count(&reqs, "reset"), 1);
    let boot = reqs[0]
        .header("ws-boot-id")
        .expect("reset carries WS-Boot-Id");
    assert!(!boot.is_empty());
    for open in reqs.iter().filter(|q| q.event() == "open") {
        assert_eq!(open.header("ws-boot-id"), Some(boot));
    }
    drop(clients);
}

/// A backend whose first two reset requests (one try and one retry with `--retries 1`) get 503.
fn late_reset_backend() -> TestBackend {
    let resets = AtomicUsize::new(0);
    TestBackend::start(move |req| match req.event() {
        "reset" if resets.fetch_add(1, SeqCst) < 2 => BackendReply::ok().status(503),
        _ => BackendReply::echo_of(req),
    })
}

#[test]
fn opens_wait_for_a_reset_that_succeeds_late() {
    let backend = late_reset_backend();
    let started = Instant::now();
    let server = Wscgi::start(
        &backend.url(),
        &["--retries", "1", "--backend-timeout", "3s"],
    );
    let connecting = Instant::now();
    let mut client = connect(&server.ws_url("/"));
    client.send(Message::text("hi")).unwrap();
    assert_eq!(recv_text(&mut client), "hi");

    let reqs = backend.requests();
    let events: Vec<&str> = reqs.iter().map(|q| q.event()).collect();
    assert_eq!(events, ["reset", "reset", "reset", "open", "message"]);
    let (reset, open) = (&reqs[2], &reqs[3]);
    assert!(
        connecting < reset.at,
        "the client waited before the reset succeeded"
    );
    assert!(reset.at <= open.at);
    let released = open.at.duration_since(started);
    assert!(
        released < Duration::from_secs(3),
        "released by the timeout ({released:?})"
    );
    assert_eq!(open.header("ws-boot-id"), reset.header("ws-boot-id"));
}

#[test]
fn opens_go_ahead_when_the_reset_is_not_answered_in_time() {
    let backend = late_reset_backend();
    let started = Instant::now();
    let server = Wscgi::start(&backend.url(), &FAST);
    let mut client = connect(&server.ws_url("/"));
    client.send(Message::text("hi")).unwrap();
    assert_eq!(recv_text(&mut client), "hi");

    let reqs = backend.wait_for(T, |r| count(r, "reset") == 3);
    let events: Vec<&str> = reqs.iter().map(|q| q.event()).collect();
    assert_eq!(
        events,
        ["reset", "reset", "open", "message", "reset"],
        "retried later"
    );
    let released = reqs[2].at.duration_since(started);
    assert!(
        released >= Duration::from_millis(500),
        "released early ({released:?})"
    );
    assert!(
        released < Duration::from_secs(2),
        "released late ({released:?})"
    );
}

//! Resume under load: 240 clients in one channel, each dropped (a TCP reset) and resumed twice
//! while a steady stream of messages is published to the channel. Every client must get every
//! message exactly once and in order, and the backend must see each connection as one: open,
//! two resumes, one clean close. Bounded: 400 messages, every read within 5 s.

mod support;

use std::thread;
use std::time::Duration;

use support::*;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

const CLIENTS: usize = 240;
const MESSAGES: u64 = 400;
const T: Duration = Duration::from_secs(30);

/// One client: counts and checks every message, drops twice (at points that differ between
/// clients) and resumes with its count, until it has all of them; then closes cleanly.
fn client(url: String, index: usize) -> Result<(), String> {
    let key = session_key();
    let first_drop = 40 + (index as u64 * 7) % 150;
    let drops = [first_drop, first_drop + 60 + (index as u64 * 13) % 120];
    let mut ws = connect(&resume_target(&url, &key, None));
    let mut received = 0u64;
    for drop_at in drops.into_iter().chain([MESSAGES]) {
        while received < drop_at {
            let got = recv_text(&mut ws);
            received += 1;
            if got != received.to_string() {
                return Err(format!("client {index}: message {received} was {got:?}"));
            }
        }
        if drop_at == MESSAGES {
            break;
        }
        reset(ws);
        // Away for a moment (or not at all): parked, or a takeover of a half-open socket.
        thread::sleep(Duration::from_millis((index % 4 * 10) as u64));
        ws = connect(&resume_target(&url, &key, Some(received)));
    }
    let bye = CloseFrame {
        code: CloseCode::Normal,
        reason: "done".into(),
    };
    ws.close(Some(bye))
        .map_err(|e| format!("client {index}: close: {e}"))?;
    let _ = recv_close(&mut ws);
    Ok(())
}

#[test]
fn clients_dropped_and_resumed_twice_during_a_publish_stream_lose_and_double_nothing() {
    let backend = TestBackend::start(|req| match req.event() {
        "open" => BackendReply::ok().header("WS-Subscribe", "feed"),
        _ => BackendReply::ok(),
    });
    let server = Wscgi::start(&backend.url(), &[]);
    let url = server.ws_url("/feed");
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let url = url.clone();
            thread::Builder::new()
                .name(format!("client-{i}"))
                .spawn(move || client(url, i))
                .expect("spawn a client thread")
        })
        .collect();
    wait_until(T, "every client is in the channel", || {
        let shown = http(server.push_addr, "GET", "/channels/feed", &[], b"").body_str();
        shown.contains(&format!("\"count\":{CLIENTS}"))
    });
    // A steady stream: one message every 2 ms; each reaches every client, live or parked.
    for n in 1..=MESSAGES {
        let answer = http(
            server.push_addr,
            "POST",
            "/channels/feed",
            &[],
            n.to_string().as_bytes(),
        );
        assert_eq!(answer.status, 200, "publish {n}: {}", answer.body_str());
        assert!(
            !answer.body_str().contains("\"skipped\":1"),
            "{}",
            answer.body_str()
        );
        thread::sleep(Duration::from_millis(2));
    }
    for (i, handle) in clients.into_iter().enumerate() {
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(why)) => panic!("{why}"),
            Err(_) => panic!("client {i} panicked"),
        }
    }
    let reqs = backend.wait_for(T, |r| {
        r.iter().filter(|q| q.event() == "close").count() >= CLIENTS
    });
    let opens: Vec<&BackendRequest> = reqs.iter().filter(|r| r.event() == "open").collect();
    assert_eq!(opens.len(), CLIENTS);
    for open in opens {
        let events = backend.events(open.conn_id());
        let names: Vec<&str> = events.iter().map(|r| r.event()).collect();
        assert_eq!(
            names,
            ["open", "resume", "resume", "close"],
            "{}",
            open.conn_id()
        );
        assert_eq!(events[3].header("ws-close-code"), Some("1000"));
        let seqs: Vec<u64> = events.iter().map(|r| r.seq()).collect();
        assert_eq!(seqs, [0, 1, 2, 3]);
    }
    assert!(
        reqs.iter().all(|r| !r.target.contains("wscgi-")),
        "resume parameters leaked"
    );
}

//! Resume: a client that drops (a TCP reset, no close frame) comes back with
//! `wscgi-resume=KEY&wscgi-received=N`, keeps its connection id, and gets every message it
//! missed, once and in order, then live ones; the backend sees one connection (`open`,
//! `resume`, one `close` at the very end) and never the key. Library (tungstenite) and raw
//! clients, a real recording backend. Limits and endings: tests/resume_limits.rs.

mod support;

use std::time::Duration;

use support::*;
use tungstenite::Message;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::stream::MaybeTlsStream;

const T: Duration = Duration::from_secs(10);

/// The `WS-Event` names the backend got for `id`, in order, with their `WS-Seq`.
fn events_of(backend: &TestBackend, id: &str) -> Vec<(String, u64)> {
    let events = backend.events(id);
    events
        .iter()
        .map(|r| (r.event().to_string(), r.seq()))
        .collect()
}

/// A clean close with 1000, echoed by wscgi.
fn close_normally(client: &mut Client) {
    let bye = CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    };
    client.close(Some(bye)).unwrap();
    let echoed = recv_close(client).expect("our close echoed");
    assert_eq!(u16::from(echoed.code), 1000);
}

fn local_addr(client: &Client) -> String {
    let MaybeTlsStream::Plain(sock) = client.get_ref() else {
        panic!("a plain socket")
    };
    sock.local_addr().unwrap().to_string()
}

/// A session on `path` that got "m1" to "m`count`" live, then dropped (a reset) and is parked:
/// its key and connection id.
fn parked_after(server: &Wscgi, backend: &TestBackend, path: &str, count: u64) -> (String, String) {
    let key = session_key();
    let mut client = connect(&server.ws_url(&resume_target(path, &key, None)));
    let id = backend.conn_id_on(path, T);
    for n in 1..=count {
        let answer = push_to(server, &id, format!("m{n}").as_bytes());
        assert_eq!(answer.status, 200, "{}", answer.body_str());
        assert_eq!(recv_text(&mut client), format!("m{n}"));
    }
    reset(client);
    wait_parked(server, &id);
    (key, id)
}

#[test]
fn a_dropped_client_resumes_with_every_message_it_missed_then_live_ones() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let path = "/feed?user=ann";
    let (key, id) = parked_after(&server, &backend, path, 3);
    let shown = connection_info(&server, &id).body_str();
    assert!(shown.contains("\"state\":\"parked\""), "{shown}");
    for n in 4..=8 {
        let answer = push_to(&server, &id, format!("m{n}").as_bytes());
        let body = answer.body_str();
        assert_eq!(answer.status, 202, "push {n} while away: {body}");
        assert!(body.contains("\"queued\":true"), "{body}");
    }

    let mut again = connect(&server.ws_url(&resume_target(path, &key, Some(3))));
    for n in 4..=8 {
        assert_eq!(recv_text(&mut again), format!("m{n}"), "replayed in order");
    }
    let live = push_to(&server, &id, b"m9");
    assert_eq!(live.status, 200, "{}", live.body_str());
    assert_eq!(recv_text(&mut again), "m9");
    again.send(Message::text("hello")).unwrap();
    assert_eq!(recv_text(&mut again), "hello", "the echo reply");
    let shown = connection_info(&server, &id).body_str();
    assert!(shown.contains("\"state\":\"open\""), "{shown}");
    let metrics = http(server.push_addr, "GET", "/metrics", &[], b"").body_str();
    for line in [
        "wscgi_resumes_total 1",
        "wscgi_parked_sessions 0",
        "{event=\"resume\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in /metrics:\n{metrics}");
    }

    // The backend saw one connection: open, resume (new address, same id), no close yet.
    let reqs = backend.wait_for(T, |r| r.iter().any(|q| q.event() == "message"));
    let resume = reqs
        .iter()
        .find(|q| q.event() == "resume")
        .expect("a resume event");
    assert_eq!(resume.conn_id(), id);
    assert_eq!(resume.header("ws-remote-addr"), Some(&*local_addr(&again)));
    assert_eq!(resume.header("ws-path"), Some(path));
    let so_far: Vec<_> = events_of(&backend, &id);
    let want = [("open", 0), ("resume", 1), ("message", 2)];
    assert_eq!(so_far, want.map(|(e, s)| (e.to_string(), s)));

    close_normally(&mut again);
    assert_eq!(backend.close_code_on(path, T), "1000");
    let all = events_of(&backend, &id);
    assert_eq!(all.last(), Some(&("close".to_string(), 3)), "{all:?}");
    assert_eq!(all.iter().filter(|(e, _)| e == "close").count(), 1);

    // The key is a secret: it appears nowhere in what the backend received.
    for req in backend.requests() {
        let mut seen = format!("{} {}\n", req.target, req.body_str());
        for (name, value) in &req.headers {
            seen += &format!("{name}: {value}\n");
        }
        assert!(!seen.contains(&key), "the key reached the backend:\n{seen}");
        assert!(
            !seen.contains("wscgi-re"),
            "resume parameters reached the backend:\n{seen}"
        );
    }
}

#[test]
fn a_resume_onto_a_half_open_connection_takes_it_over() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let key = session_key();
    let path = "/takeover";
    let mut old = connect(&server.ws_url(&resume_target(path, &key, None)));
    let id = backend.conn_id_on(path, T);
    assert_eq!(push_to(&server, &id, b"one").status, 200);
    assert_eq!(recv_text(&mut old), "one");

    // The network changed: the old socket is still open as far as wscgi knows.
    let mut new = connect(&server.ws_url(&resume_target(path, &key, Some(1))));
    assert_eq!(push_to(&server, &id, b"two").status, 200);
    assert_eq!(recv_text(&mut new), "two");
    // The old socket is dropped without a close frame.
    match old.read() {
        Ok(Message::Close(frame)) => panic!("the old socket got a close frame: {frame:?}"),
        Ok(other) => panic!("the old socket got {other:?}"),
        Err(_) => {}
    }
    assert_eq!(
        events_of(&backend, &id),
        [("open".to_string(), 0), ("resume".to_string(), 1)]
    );
    close_normally(&mut new);
    assert_eq!(backend.close_code_on(path, T), "1000");
    let names: Vec<String> = events_of(&backend, &id).into_iter().map(|e| e.0).collect();
    assert_eq!(names, ["open", "resume", "close"]);
}

#[test]
fn a_count_ahead_of_the_stream_gets_4409_and_nothing_else() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let path = "/ahead";
    let (key, id) = parked_after(&server, &backend, path, 2);
    assert_eq!(push_to(&server, &id, b"m3").status, 202);

    // Raw: the very first frame after the 101 is the close frame; nothing is replayed.
    let mut raw = raw_ws(&server, &resume_target(path, &key, Some(5)));
    assert_eq!(raw_close_code(&mut raw), 4409);
    // Library client: the reason too.
    let mut lib = connect(&server.ws_url(&resume_target(path, &key, Some(4))));
    let frame = recv_close(&mut lib).expect("a close frame");
    assert_eq!(
        (u16::from(frame.code), frame.reason.as_str()),
        (4409, "cannot resume")
    );

    // The session itself is untouched: the right count still resumes it.
    let mut again = connect(&server.ws_url(&resume_target(path, &key, Some(2))));
    assert_eq!(recv_text(&mut again), "m3");
    let names: Vec<String> = events_of(&backend, &id).into_iter().map(|e| e.0).collect();
    assert_eq!(
        names,
        ["open", "resume"],
        "refused resumes never reach the backend"
    );
}

#[test]
fn a_count_behind_what_is_kept_gets_4409() {
    let backend = TestBackend::echo();
    // Room for about three short messages: a live session keeps only its newest ones.
    let server = Wscgi::start(&backend.url(), &["--resume-buffer", "200"]);
    let path = "/behind";
    let (key, id) = parked_after(&server, &backend, path, 10);
    let mut behind = raw_ws(&server, &resume_target(path, &key, Some(2)));
    assert_eq!(raw_close_code(&mut behind), 4409);
    let mut again = connect(&server.ws_url(&resume_target(path, &key, Some(10))));
    assert_eq!(push_to(&server, &id, b"m11").status, 200);
    assert_eq!(recv_text(&mut again), "m11");
}

#[test]
fn a_resumed_session_keeps_its_channels_and_resumes_again() {
    let backend = TestBackend::start(|req| match req.event() {
        "open" => BackendReply::ok().header("WS-Subscribe", "news"),
        _ => BackendReply::echo_of(req),
    });
    let server = Wscgi::start(&backend.url(), &[]);
    let key = session_key();
    let path = "/news";
    let mut client = connect(&server.ws_url(&resume_target(path, &key, None)));
    let id = backend.conn_id_on(path, T);
    let publish = |text: &str| {
        let answer = http(
            server.push_addr,
            "POST",
            "/channels/news",
            &[],
            text.as_bytes(),
        );
        (answer.status, answer.body_str())
    };
    let mut received = 0;
    for round in 0..3 {
        let (status, body) = publish(&format!("live {round}"));
        assert_eq!(status, 200, "{body}");
        assert_eq!(recv_text(&mut client), format!("live {round}"));
        received += 1;
        reset(client);
        wait_parked(&server, &id);
        let members = http(server.push_addr, "GET", "/channels/news", &[], b"").body_str();
        assert!(
            members.contains(&id),
            "a parked session stays a member: {members}"
        );
        let (status, body) = publish(&format!("away {round}"));
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"queued\":1"), "{body}");
        let target = resume_target(path, &key, Some(received));
        client = connect(&server.ws_url(&target));
        assert_eq!(recv_text(&mut client), format!("away {round}"));
        received += 1;
    }
    let names: Vec<String> = events_of(&backend, &id).into_iter().map(|e| e.0).collect();
    assert_eq!(names, ["open", "resume", "resume", "resume"]);
}

#[test]
fn resume_parameters_of_another_shape_are_400_and_a_key_in_use_is_409() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let key = session_key();
    let too_long = "a".repeat(65);
    let refused = [
        "/x?wscgi-resume=short".to_string(),
        format!("/x?wscgi-resume={too_long}"),
        "/x?wscgi-resume=AAAAAAAAAAAAAAAAAAAA+/AA".to_string(),
        format!("/x?wscgi-resume={key}&wscgi-received=-1"),
        format!("/x?wscgi-resume={key}&wscgi-received=1&wscgi-received=2"),
        "/x?wscgi-received=3".to_string(),
    ];
    for target in &refused {
        match try_connect_with(&server.ws_url(target), &[]) {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 400, "{target}")
            }
            other => panic!("{target}: {other:?}"),
        }
    }
    let _first = connect(&server.ws_url(&resume_target("/y", &key, None)));
    backend.conn_id_on("/y", T);
    match try_connect_with(&server.ws_url(&resume_target("/z", &key, None)), &[]) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 409),
        other => panic!("a second session with the same key: {other:?}"),
    }
    let opens = backend
        .requests()
        .into_iter()
        .filter(|r| r.event() == "open");
    assert_eq!(
        opens.count(),
        1,
        "refused handshakes never reach the backend"
    );
}

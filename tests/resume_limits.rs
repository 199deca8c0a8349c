//! Resume, its limits and endings: the window expires (close 1006 once, a late resume gets
//! 4409), a parked session's buffer or all parked sessions' budget runs out (1008, oldest
//! first), the backend rejects a resume (the handshake is refused and the session ends), the
//! push API closes a parked session, shutdown ends parked sessions, resume turned off, the
//! backend's answer to a resume, and a client that stalls is parked and then caught up at the
//! pace its socket takes. Real sockets and a recording backend, as in tests/resume.rs.

mod support;

use std::io::ErrorKind;
use std::time::Duration;

use support::*;

const T: Duration = Duration::from_secs(10);

/// Connects with a new session on `path` and drops it (a reset) once it is open; returns the
/// key and the connection id, after the session is parked.
fn parked_session(server: &Wscgi, backend: &TestBackend, path: &str) -> (String, String) {
    let key = session_key();
    let client = connect(&server.ws_url(&resume_target(path, &key, None)));
    let id = backend.conn_id_on(path, T);
    reset(client);
    wait_parked(server, &id);
    (key, id)
}

/// The close events the backend got for `id`: (code, reason).
fn closes(backend: &TestBackend, id: &str) -> Vec<(String, String)> {
    let header = |r: &BackendRequest, name| r.header(name).unwrap_or("-").to_string();
    backend
        .events(id)
        .iter()
        .filter(|r| r.event() == "close")
        .map(|r| (header(r, "ws-close-code"), header(r, "ws-close-reason")))
        .collect()
}

fn wait_closed(backend: &TestBackend, id: &str) -> (String, String) {
    backend.wait_for(T, |r| {
        r.iter().any(|q| q.event() == "close" && q.conn_id() == id)
    });
    let all = closes(backend, id);
    assert_eq!(all.len(), 1, "close fires once: {all:?}");
    all[0].clone()
}

/// A resume with `key` gets 101 and then, as the very first frame, 4409.
fn assert_cannot_resume(server: &Wscgi, path: &str, key: &str, received: u64) {
    let mut raw = raw_ws(server, &resume_target(path, key, Some(received)));
    assert_eq!(raw_close_code(&mut raw), 4409);
}

#[test]
fn an_expired_window_closes_once_with_1006_and_a_late_resume_gets_4409() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &["--resume-window", "300ms"]);
    let (key, id) = parked_session(&server, &backend, "/expiry");
    let (code, reason) = wait_closed(&backend, &id);
    assert_eq!(
        (code.as_str(), reason.as_str()),
        ("1006", "resume window expired")
    );
    assert_eq!(connection_info(&server, &id).status, 404);
    assert_cannot_resume(&server, "/expiry", &key, 0);
    let names: Vec<String> = backend
        .events(&id)
        .iter()
        .map(|r| r.event().into())
        .collect();
    assert_eq!(names, ["open", "close"]);
}

#[test]
fn a_parked_session_that_cannot_keep_more_ends_with_1008() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &["--resume-buffer", "2K"]);
    let (key, id) = parked_session(&server, &backend, "/full");
    let chunk = [b'x'; 100];
    let mut kept = 0;
    let status = loop {
        let answer = push_to(&server, &id, &chunk);
        if answer.status != 202 || kept > 100 {
            break answer.status;
        }
        kept += 1;
    };
    assert_eq!(status, 503, "the push that does not fit, after {kept}");
    assert!(
        kept >= 10,
        "2K holds more than {kept} messages of 100 bytes"
    );
    let (code, reason) = wait_closed(&backend, &id);
    assert_eq!(
        (code.as_str(), reason.as_str()),
        ("1008", "resume buffer full")
    );
    assert_eq!(push_to(&server, &id, b"late").status, 404);
    assert_cannot_resume(&server, "/full", &key, 0);
}

#[test]
fn over_resume_max_bytes_the_oldest_parked_session_ends_first() {
    let backend = TestBackend::echo();
    let args = ["--resume-max-bytes", "4K", "--resume-buffer", "4K"];
    let server = Wscgi::start(&backend.url(), &args);
    let (_, older) = parked_session(&server, &backend, "/older");
    let kilo = [b'k'; 1000];
    for _ in 0..2 {
        assert_eq!(push_to(&server, &older, &kilo).status, 202);
    }
    let (newer_key, newer) = parked_session(&server, &backend, "/newer");
    for n in 0..3 {
        assert_eq!(push_to(&server, &newer, &kilo).status, 202, "push {n}");
    }
    let (code, reason) = wait_closed(&backend, &older);
    assert_eq!(
        (code.as_str(), reason.as_str()),
        ("1008", "resume buffer full")
    );
    assert!(
        closes(&backend, &newer).is_empty(),
        "the newer one waits on"
    );
    let mut client = connect(&server.ws_url(&resume_target("/newer", &newer_key, Some(0))));
    for _ in 0..3 {
        assert_eq!(recv_text(&mut client), "k".repeat(1000));
    }
}

#[test]
fn a_rejected_resume_refuses_the_handshake_and_ends_the_session() {
    let backend = TestBackend::start(|req| match req.event() {
        "resume" => BackendReply::ok().status(403).body("go away"),
        _ => BackendReply::ok(),
    });
    let server = Wscgi::start(&backend.url(), &[]);
    let (key, id) = parked_session(&server, &backend, "/rejected");
    match try_connect_with(
        &server.ws_url(&resume_target("/rejected", &key, Some(0))),
        &[],
    ) {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403);
            assert_eq!(response.body().as_deref(), Some(&b"go away"[..]));
        }
        other => panic!("the resume was not refused: {other:?}"),
    }
    let (code, reason) = wait_closed(&backend, &id);
    assert_eq!(
        (code.as_str(), reason.as_str()),
        ("1006", "resume rejected")
    );
    let names: Vec<String> = backend
        .events(&id)
        .iter()
        .map(|r| r.event().into())
        .collect();
    assert_eq!(names, ["open", "resume", "close"]);
    assert_cannot_resume(&server, "/rejected", &key, 0);
}

#[test]
fn the_backend_answers_a_resume_like_an_open() {
    let backend = TestBackend::start(|req| match req.event() {
        "resume" => BackendReply::ok().body("welcome back"),
        _ => BackendReply::ok(),
    });
    let server = Wscgi::start(&backend.url(), &[]);
    let (key, id) = parked_session(&server, &backend, "/welcome");
    assert_eq!(push_to(&server, &id, b"missed").status, 202);
    let mut client = connect(&server.ws_url(&resume_target("/welcome", &key, Some(0))));
    assert_eq!(recv_text(&mut client), "missed", "missed messages first");
    assert_eq!(
        recv_text(&mut client),
        "welcome back",
        "then the reply, a live message"
    );
}

#[test]
fn the_push_api_and_shutdown_end_parked_sessions_once() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let (key, kicked) = parked_session(&server, &backend, "/kicked");
    let path = format!("/connections/{kicked}?code=4001&reason=kicked");
    assert_eq!(
        http(server.push_addr, "DELETE", &path, &[], b"").status,
        200
    );
    let (code, reason) = wait_closed(&backend, &kicked);
    assert_eq!((code.as_str(), reason.as_str()), ("4001", "kicked"));
    assert_cannot_resume(&server, "/kicked", &key, 0);

    let (_, waiting) = parked_session(&server, &backend, "/waiting");
    server.stop_within(T);
    let (code, _) = wait_closed(&backend, &waiting);
    assert_eq!(code, "1001");
}

#[test]
fn with_resume_off_a_drop_closes_at_once_and_resumes_get_4409() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &["--resume-window", "0"]);
    let key = session_key();
    let client = connect(&server.ws_url(&resume_target("/off?a=1", &key, None)));
    let id = backend.conn_id_on("/off?a=1", T);
    reset(client);
    let (code, _) = wait_closed(&backend, &id);
    assert_eq!(code, "1006");
    assert_cannot_resume(&server, "/off?a=1", &key, 0);
}

#[test]
fn a_stalled_client_is_parked_and_caught_up_at_the_pace_of_its_socket() {
    let backend = TestBackend::echo();
    // A small --max-outbuf makes the stall come soon and paces the replay.
    let args = ["--max-outbuf", "64K", "--resume-buffer", "48MiB"];
    let server = Wscgi::start(&backend.url(), &args);
    let key = session_key();
    let mut client = connect(&server.ws_url(&resume_target("/stall", &key, None)));
    let id = backend.conn_id_on("/stall", T);
    let message = |n: usize| format!("{n:06}:{}", "s".repeat(64 * 1024));
    // The client reads nothing: kernel buffers fill, then wscgi's, then the session parks.
    let mut pushed = 0;
    while pushed < 700 {
        pushed += 1;
        let answer = push_to(&server, &id, message(pushed).as_bytes());
        assert!([200, 202].contains(&answer.status), "{}", answer.body_str());
        if answer.status == 202 {
            break;
        }
    }
    assert!(pushed < 700, "no stall within {pushed} messages of 64 KiB");
    for _ in 0..5 {
        pushed += 1;
        assert_eq!(
            push_to(&server, &id, message(pushed).as_bytes()).status,
            202
        );
    }
    // What reached the client's socket is read in order, then the connection is gone.
    let mut received = 0;
    loop {
        match client.read() {
            Ok(tungstenite::Message::Text(text)) => {
                received += 1;
                assert_eq!(text.as_str(), message(received), "in order");
            }
            Ok(other) => panic!("{other:?}"),
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                panic!("the stalled connection was not dropped")
            }
            Err(_) => break,
        }
    }
    assert!(received < pushed, "{received} of {pushed}");
    let target = resume_target("/stall", &key, Some(received as u64));
    let mut again = connect(&server.ws_url(&target));
    for n in received + 1..=pushed {
        assert_eq!(recv_text(&mut again), message(n), "replayed in order");
    }
    pushed += 1;
    assert_eq!(
        push_to(&server, &id, message(pushed).as_bytes()).status,
        200
    );
    assert_eq!(recv_text(&mut again), message(pushed), "then live");
}

/// A browser given subprotocols fails a 101 that names none (and reports 1006, not 4409): the
/// 4409 handshake names the first one offered, and none when none was offered.
#[test]
fn the_4409_handshake_names_an_offered_subprotocol() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    for (offer, named) in [
        (Some("chat.v2, chat.v1"), Some("chat.v2")),
        (Some("chat.v1"), Some("chat.v1")),
        (None, None),
    ] {
        let target = resume_target("/protocols", &session_key(), Some(0));
        let mut request = upgrade_request(&target);
        if let Some(offer) = offer {
            let end = request.len() - 2;
            request.insert_str(end, &format!("Sec-WebSocket-Protocol: {offer}\r\n"));
        }
        let mut raw = raw_connect(&server, request.as_bytes());
        let head = read_head(&mut raw);
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        let protocol = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(name, _)| name.eq_ignore_ascii_case("sec-websocket-protocol"))
            .map(|(_, value)| value.trim());
        assert_eq!(protocol, named, "offered {offer:?}: {head}");
        assert_eq!(raw_close_code(&mut raw), 4409, "offered {offer:?}");
    }
}

/// The response head, read byte by byte so that nothing after it is consumed.
fn read_head(s: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("a response head");
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

//! Protocol limits and liveness: message sizes, fragmentation, backpressure, pings, protocol
//! violations, malformed handshakes and the handshake timeout.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use support::*;
use tungstenite::Message;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{Data, OpCode};

const T: Duration = Duration::from_secs(5);
const MIB: usize = 1 << 20;
/// Backend latency per message in the backpressure test.
const PACE: Duration = Duration::from_millis(20);
const PLAIN_GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
/// The start of a TLS ClientHello: what a client speaking TLS to a plain port sends.
const TLS_HELLO: &[u8] = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n";

fn messages(reqs: &[BackendRequest]) -> Vec<&BackendRequest> {
    reqs.iter().filter(|q| q.event() == "message").collect()
}

fn close_code(client: &mut Client) -> u16 {
    u16::from(recv_close(client).expect("a close frame with a code").code)
}

/// Sends `parts` as one fragmented message (first frame `op`, then continuation frames).
fn send_fragmented(client: &mut Client, op: Data, parts: &[&[u8]]) {
    for (i, part) in parts.iter().enumerate() {
        let op = if i == 0 { op } else { Data::Continue };
        let last = i + 1 == parts.len();
        let frame = Frame::message(part.to_vec(), OpCode::Data(op), last);
        client.write(Message::Frame(frame)).unwrap();
    }
    client.flush().unwrap();
}

/// Echoes one text and one binary message of `len` bytes through a default server.
fn echo_round_trip(len: usize) {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let mut client = connect(&server.ws_url("/"));
    let mut text = "0123456789abcdef".repeat(len / 16 + 1);
    text.truncate(len);
    client.send(Message::text(text.clone())).unwrap();
    assert!(recv_text(&mut client) == text, "text changed");
    let binary: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    client.send(Message::binary(binary.clone())).unwrap();
    assert!(recv_binary(&mut client) == binary, "binary changed");
}

#[test]
fn a_message_of_exactly_max_message_passes_both_ways() {
    echo_round_trip(MIB);
}

#[test]
fn a_message_just_under_max_message_passes_both_ways() {
    echo_round_trip(MIB - 1);
}

#[test]
fn fragmented_messages_are_reassembled() {
    let backend = TestBackend::start(|req| match req.event() {
        "message" => {
            let ct = req.header("content-type").unwrap_or("text/plain");
            let reply = BackendReply::ok().body(req.body.clone());
            reply.header("Content-Type", ct)
        }
        _ => BackendReply::ok(),
    });
    let server = Wscgi::start(&backend.url(), &["--max-message", "1K"]);
    let mut client = connect(&server.ws_url("/"));
    // Two-byte characters, cut inside a character.
    let text = "é".repeat(511);
    let (a, rest) = text.as_bytes().split_at(301);
    let (b, c) = rest.split_at(400);
    send_fragmented(&mut client, Data::Text, &[a, b, c]);
    assert_eq!(recv_text(&mut client), text);
    let binary: Vec<u8> = (0..1023).map(|i| (i % 256) as u8).collect();
    let (d, rest) = binary.split_at(1);
    send_fragmented(&mut client, Data::Binary, &[d, &rest[..999], &rest[999..]]);
    assert_eq!(recv_binary(&mut client), binary);
    let full: Vec<u8> = (0..1024).map(|i| (i % 253) as u8).collect();
    send_fragmented(&mut client, Data::Binary, &[&full[..512], &full[512..]]);
    assert_eq!(recv_binary(&mut client), full);

    let reqs = backend.wait_for(T, |r| messages(r).len() == 3);
    let msgs = messages(&reqs);
    let kind = |i: usize| msgs[i].header("ws-message-type");
    assert_eq!((msgs[0].body_str(), kind(0)), (text, Some("text")));
    assert_eq!((&msgs[1].body, kind(1)), (&binary, Some("binary")));
    assert_eq!((&msgs[2].body, kind(2)), (&full, Some("binary")));
}

#[test]
fn messages_over_max_message_close_with_1009() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &["--max-message", "1K"]);
    let mut whole = connect(&server.ws_url("/whole"));
    whole.send(Message::binary(vec![1u8; 1025])).unwrap();
    assert_eq!(close_code(&mut whole), 1009);
    assert_eq!(backend.close_code_on("/whole", T), "1009");

    let mut pieces = connect(&server.ws_url("/pieces"));
    send_fragmented(&mut pieces, Data::Text, &[&[b'x'; 600], &[b'y'; 600]]);
    assert_eq!(close_code(&mut pieces), 1009);
    assert_eq!(backend.close_code_on("/pieces", T), "1009");
    let reqs = backend.requests();
    assert!(
        messages(&reqs).is_empty(),
        "nothing too big reached the backend"
    );
}

#[test]
fn max_pending_pauses_reading_without_losing_anything() {
    let backend = TestBackend::start(|req| match req.event() {
        "message" => BackendReply::ok().body(req.body.clone()).delay(PACE),
        _ => BackendReply::ok(),
    });
    let server = Wscgi::start(&backend.url(), &["--max-pending", "4"]);
    let mut client = connect(&server.ws_url("/"));
    let reqs = backend.wait_for(T, |r| r.len() == 2);
    let id = reqs[1].conn_id().to_string();
    let sent: Vec<String> = (1..=60).map(|i| format!("m{i}")).collect();
    for m in &sent {
        client.write(Message::text(m.clone())).unwrap();
    }
    client.flush().unwrap();
    let read_all = move || (0..60).map(|_| recv_text(&mut client)).collect();
    let reader = thread::spawn(read_all);

    let mut most = 0;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !reader.is_finished() {
        assert!(Instant::now() < deadline, "60 replies took too long");
        let n = pending_events(&server, &id);
        assert!(n <= 4, "{n} events pending with --max-pending 4");
        most = most.max(n);
        thread::sleep(Duration::from_millis(5));
    }
    let replies: Vec<String> = reader.join().unwrap();
    assert_eq!(replies, sent, "every reply, in order");
    assert!(most > 0, "the backlog was never observed");
    let reqs = backend.requests();
    let msgs = messages(&reqs);
    let got: Vec<(u64, String)> = msgs.iter().map(|q| (q.seq(), q.body_str())).collect();
    let want: Vec<(u64, String)> = (1..=60).map(|i| (i, format!("m{i}"))).collect();
    assert_eq!(got, want, "each message reached the backend once, in order");
}

#[test]
fn a_client_ping_is_answered_by_wscgi_itself() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let mut client = connect(&server.ws_url("/"));
    client.send(Message::Ping("are you there".into())).unwrap();
    match client.read().unwrap() {
        Message::Pong(data) => assert_eq!(&data[..], b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }
    // Events of one connection are sent in order: a ping event would come before this one.
    client.send(Message::text("after")).unwrap();
    assert_eq!(recv_text(&mut client), "after");
    assert_eq!(backend.event_names(), ["reset", "open", "message"]);
}

#[test]
fn idle_clients_are_pinged_and_answering_keeps_them() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &["--ping-interval", "500ms"]);
    let mut client = connect(&server.ws_url("/"));
    let started = Instant::now();
    for n in 1..=2 {
        match client.read().unwrap() {
            Message::Ping(_) => client.flush().unwrap(), // sends tungstenite's queued pong
            other => panic!("expected ping {n}, got {other:?}"),
        }
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "two pings took {took:?}");
    client.send(Message::text("alive")).unwrap();
    assert_eq!(recv_text(&mut client), "alive", "pongs keep it open");
}

#[test]
fn a_client_that_never_answers_pings_is_dropped_with_1006() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &["--ping-interval", "1s"]);
    let silent = raw_ws(&server, "/silent");
    let started = Instant::now();
    assert_eq!(backend.close_code_on("/silent", T), "1006");
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(1), "dropped early ({took:?})");
    assert!(took < Duration::from_secs(4), "dropped only after {took:?}");
    drop(silent);
}

#[test]
fn protocol_violations_close_with_1002_or_1007() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let key = Some([0x37, 0xfa, 0x21, 0x3d]);
    let cases: [(&str, Vec<u8>, u16); 3] = [
        ("/reserved-bits", raw_frame(0xc1, b"hi", key), 1002), // FIN, RSV1, text
        ("/unmasked", raw_frame(0x81, b"hi", None), 1002),
        ("/bad-utf8", raw_frame(0x81, b"ok \xff\xfe", key), 1007),
    ];
    for (path, frame, code) in cases {
        let mut s = raw_ws(&server, path);
        s.write_all(&frame).unwrap();
        assert_eq!(raw_close_code(&mut s), code, "{path}");
        assert_eq!(backend.close_code_on(path, T), code.to_string(), "{path}");
    }
    assert!(messages(&backend.requests()).is_empty());
}

#[test]
fn malformed_handshakes_are_answered_without_the_backend() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    backend.wait_for(T, |r| !r.is_empty());
    let good = upgrade_request("/");
    let key_line = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let big = good.replace("Host:", &format!("X-Pad: {}\r\nHost:", "a".repeat(9000)));
    let cases: [(&str, Vec<u8>, u16); 6] = [
        ("POST", good.replacen("GET", "POST", 1).into_bytes(), 405),
        ("no key", good.replace(key_line, "").into_bytes(), 400),
        ("version 8", good.replace(": 13", ": 8").into_bytes(), 426),
        ("plain GET", PLAIN_GET.to_vec(), 426),
        ("head > 8 KiB", big.into_bytes(), 431),
        ("garbage", TLS_HELLO.to_vec(), 400),
    ];
    for (name, request, status) in cases {
        let mut s = raw_connect(&server, &request);
        let mut response = Vec::new();
        let read = s.read_to_end(&mut response);
        read.unwrap_or_else(|e| panic!("{name}: {e}"));
        let response = String::from_utf8_lossy(&response).to_ascii_lowercase();
        let want = format!("http/1.1 {status} ");
        assert!(response.starts_with(&want), "{name}: {response}");
        let version = "\r\nsec-websocket-version: 13\r\n";
        let named = name != "version 8" || response.contains(version);
        assert!(named, "426 names the version: {response}");
    }
    // Proving an absence: give a wrongly dispatched open event time to arrive.
    thread::sleep(Duration::from_millis(200));
    assert_eq!(backend.event_names(), ["reset"]);
}

#[test]
fn a_stalled_handshake_is_cut_off_after_handshake_timeout() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &["--handshake-timeout", "500ms"]);
    for sent in [&b""[..], b"GET / HTTP/1.1\r\nHost: wscgi.test\r\n"] {
        let started = Instant::now();
        let mut s = raw_connect(&server, sent);
        let mut rest = Vec::new();
        let outcome = s.read_to_end(&mut rest);
        let took = started.elapsed();
        if let Err(e) = &outcome {
            let timed_out = matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
            assert!(!timed_out, "still connected after {took:?}");
        }
        assert!(took >= Duration::from_millis(450), "cut off after {took:?}");
        assert!(took < Duration::from_secs(2), "cut off only after {took:?}");
    }
}

#[test]
fn a_connection_paused_at_max_pending_reads_on_as_soon_as_its_event_leaves() {
    // "a" stays at the backend for HELD. The burst fills --max-pending 1 as soon as "a" is read;
    // once "a" has left the queue for the backend there is room again, so the rest of the
    // burst (a ping, then "b") is read at once: not only when "a" is answered.
    const HELD: Duration = Duration::from_secs(3);
    let backend = TestBackend::start(|req| match req.event() {
        "message" if req.body == b"a" => BackendReply::ok().delay(HELD),
        _ => BackendReply::ok(),
    });
    let server = Wscgi::start(&backend.url(), &["--max-pending", "1"]);
    let mut s = raw_ws(&server, "/burst");
    let reqs = backend.wait_for(T, |r| r.iter().any(|q| q.event() == "open"));
    let id = reqs
        .iter()
        .find(|q| q.event() == "open")
        .unwrap()
        .conn_id()
        .to_string();
    let key = Some([9, 8, 7, 6]);
    let mut burst = raw_frame(0x81, b"a", key);
    burst.extend(raw_frame(0x89, b"still there?", key));
    burst.extend(raw_frame(0x81, b"b", key));
    let sent = Instant::now();
    s.write_all(&burst).unwrap();
    assert_eq!(
        read_frame(&mut s),
        (0x8a, b"still there?".to_vec()),
        "the pong"
    );
    let took = sent.elapsed();
    assert!(
        took < HELD / 2,
        "the ping behind \"a\" was answered after {took:?}"
    );
    assert_eq!(pending_events(&server, &id), 1, "\"b\" waits, read already");
    backend.wait_for(T, |r| messages(r).len() == 2);
    let bodies: Vec<String> = messages(&backend.requests())
        .iter()
        .map(|q| q.body_str())
        .collect();
    assert_eq!(bodies, ["a", "b"]);
}

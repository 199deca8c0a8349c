//! How connections end when the protocol is broken or the backend closes them: what is still
//! delivered first, and that the close handshake completes cleanly even while reading is paused.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::*;

const T: Duration = Duration::from_secs(5);
const KEY: Option<[u8; 4]> = Some([0x11, 0x22, 0x33, 0x44]);

/// Answers wscgi's close frame like a client does, then expects a clean end of stream (FIN)
/// soon: not a reset after the close timeout.
fn finish_close_handshake(s: &mut TcpStream, close_payload: &[u8]) {
    s.write_all(&raw_frame(0x88, &close_payload[..2], KEY))
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let end = s.read_to_end(&mut rest);
    let took = started.elapsed();
    assert!(
        end.is_ok() && took < Duration::from_secs(2),
        "a clean close expected, got {end:?} after {took:?}"
    );
}

#[test]
fn a_violation_still_delivers_replies_to_earlier_messages_before_closing() {
    // The echo is slow, so the violation arrives while the first message is at the backend.
    let backend = TestBackend::start(|req| match req.event() {
        "message" => BackendReply::ok()
            .delay(Duration::from_millis(300))
            .body(req.body.clone()),
        _ => BackendReply::ok(),
    });
    let server = Wscgi::start(&backend.url(), &[]);
    let mut s = raw_ws(&server, "/late");
    let mut burst = raw_frame(0x81, b"first", KEY);
    burst.extend(raw_frame(0x81, b"second", KEY));
    burst.extend(raw_frame(0xc1, b"bad", KEY)); // RSV1 set: protocol error
    s.write_all(&burst).unwrap();
    for expected in [&b"first"[..], b"second"] {
        let mut head = [0u8; 2];
        s.read_exact(&mut head)
            .expect("an echo before the close frame");
        assert_eq!(head, [0x81, expected.len() as u8], "an unmasked text frame");
        let mut payload = vec![0u8; expected.len()];
        s.read_exact(&mut payload).unwrap();
        assert_eq!(payload, expected);
    }
    assert_eq!(raw_close_code(&mut s), 1002);
    assert_eq!(backend.close_code_on("/late", T), "1002");
    let mut names = backend.event_names();
    names.retain(|n| n != "reset");
    assert_eq!(names, ["open", "message", "message", "close"]);
}

#[test]
fn a_failing_connection_waits_for_a_reply_slower_than_the_close_timeout() {
    // 5.5 s: longer than the 5 s a close handshake may take, shorter than --backend-timeout.
    let backend = TestBackend::start(|req| match req.event() {
        "message" => BackendReply::ok()
            .delay(Duration::from_millis(5500))
            .body(req.body.clone()),
        _ => BackendReply::ok(),
    });
    let server = Wscgi::start(&backend.url(), &[]);
    let mut s = raw_ws(&server, "/slow");
    let mut burst = raw_frame(0x81, b"first", KEY);
    burst.extend(raw_frame(0xc1, b"bad", KEY)); // RSV1 set: protocol error
    s.write_all(&burst).unwrap();
    assert_eq!(
        read_frame(&mut s),
        (0x81, b"first".to_vec()),
        "the echo, then the close"
    );
    assert_eq!(raw_close_code(&mut s), 1002);
}

#[test]
fn a_close_reply_is_read_while_the_connection_is_paused_at_max_pending() {
    // "a" is answered slowly with a close request; meanwhile "b", "c" and "d" fill
    // --max-pending, so reading is paused when the client answers the close frame.
    let backend = TestBackend::start(|req| match req.event() {
        "message" if req.body == b"a" => BackendReply::ok()
            .delay(Duration::from_millis(400))
            .header("WS-Close", "4000 kicked"),
        "message" => BackendReply::ok().delay(Duration::from_millis(300)),
        _ => BackendReply::ok(),
    });
    let server = Wscgi::start(&backend.url(), &["--max-pending", "2"]);
    let mut s = raw_ws(&server, "/kick");
    let mut burst = raw_frame(0x81, b"a", KEY);
    burst.extend(raw_frame(0x81, b"b", KEY));
    s.write_all(&burst).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut more = raw_frame(0x81, b"c", KEY);
    more.extend(raw_frame(0x81, b"d", KEY));
    s.write_all(&more).unwrap();
    let (first, payload) = read_frame(&mut s);
    assert_eq!(first, 0x88, "a close frame: {payload:?}");
    assert_eq!(payload[..2], 4000u16.to_be_bytes());
    finish_close_handshake(&mut s, &payload);
    assert_eq!(backend.close_code_on("/kick", T), "4000");
}

#[test]
fn registered_codes_for_restart_try_again_and_bad_gateway_are_echoed() {
    let backend = TestBackend::start(|_| BackendReply::ok());
    let server = Wscgi::start(&backend.url(), &[]);
    for code in [1012u16, 1013, 1014] {
        let path = format!("/code{code}");
        let mut s = raw_ws(&server, &path);
        let payload = [&code.to_be_bytes()[..], b"upstream down"].concat();
        s.write_all(&raw_frame(0x88, &payload, KEY)).unwrap();
        assert_eq!(
            read_frame(&mut s),
            (0x88, payload),
            "the close echoed for {code}"
        );
        assert_eq!(backend.close_code_on(&path, T), code.to_string());
    }
}

/// While a connection is failing (a violation arrived behind a message at the backend), the
/// answer to that message may close it: the client then gets the caller's code and reason,
/// not the violation's. The close event already said 1002 when the violation arrived.
#[test]
fn closing_a_failing_connection_sends_the_callers_code() {
    let backend = TestBackend::start(|req| match (req.event(), &req.body[..]) {
        ("message", b"kick") => BackendReply::ok()
            .delay(Duration::from_millis(300))
            .header("WS-Close", "4000 kicked"),
        ("message", _) => BackendReply::ok()
            .status(500)
            .delay(Duration::from_millis(300)),
        _ => BackendReply::ok(),
    });
    let server = Wscgi::start(&backend.url(), &["--retries", "0"]);
    for (path, body, code, reason) in [
        ("/kick", &b"kick"[..], 4000u16, &b"kicked"[..]),
        ("/fail", b"fail", 1011, b"backend error"),
    ] {
        let mut s = raw_ws(&server, path);
        let mut burst = raw_frame(0x81, body, KEY);
        burst.extend(raw_frame(0xc1, b"bad", KEY)); // RSV1 set: protocol error
        s.write_all(&burst).unwrap();
        let want = [&code.to_be_bytes()[..], reason].concat();
        assert_eq!(read_frame(&mut s), (0x88, want), "{path}");
        assert_eq!(backend.close_code_on(path, T), "1002", "{path}");
    }
}

/// The third way a failing connection's pending reply can close it: the replies do not fit
/// `--max-outbuf` (the client reads nothing meanwhile). The client gets what was queued before,
/// then 1008 "slow consumer", not the violation's 1002.
#[test]
fn a_failing_connection_closed_as_a_slow_consumer_gets_1008() {
    // Ten replies of almost 1 MiB: more than the socket buffers (a few MiB on loopback) and the
    // 1 MiB --max-outbuf (default) hold together, while one still fits an empty queue.
    const BIG: usize = (1 << 20) - 1024;
    const SENT: usize = 10;
    let backend = TestBackend::start(|req| match (req.event(), &req.body[..]) {
        ("message", b"0") => BackendReply::ok()
            .delay(Duration::from_millis(300))
            .body(vec![b'x'; BIG]),
        ("message", _) => BackendReply::ok().body(vec![b'x'; BIG]),
        _ => BackendReply::ok(),
    });
    let server = Wscgi::start(&backend.url(), &[]);
    let mut s = raw_ws(&server, "/slow");
    let mut burst: Vec<u8> = (0..SENT)
        .flat_map(|i| raw_frame(0x81, i.to_string().as_bytes(), KEY))
        .collect();
    burst.extend(raw_frame(0xc1, b"bad", KEY)); // RSV1 set: protocol error
    s.write_all(&burst).unwrap();
    // Events leave one at a time, so the close event (sent when the violation was read) comes
    // after the last reply: every reply has met the full queue by then.
    assert_eq!(backend.close_code_on("/slow", T), "1002");
    let mut delivered = 0;
    let (first, payload) = loop {
        let (first, payload, _) = support::raw_deflate::read_big_frame(&mut s);
        if first != 0x81 {
            break (first, payload);
        }
        assert_eq!(payload.len(), BIG);
        delivered += 1;
    };
    assert!(
        (1..SENT).contains(&delivered),
        "{delivered} replies delivered"
    );
    let want = [&1008u16.to_be_bytes()[..], b"slow consumer"].concat();
    assert_eq!((first, payload), (0x88, want));
}

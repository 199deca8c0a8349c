//! permessage-deflate work done off the reactor (`ws::offload`), on raw sockets against a real
//! wscgi and a real HTTP backend: large compressed messages are inflated by the worker that
//! delivers them (and refused with the codes inline inflation gives: 1009, 1007), large
//! replies and pushes are compressed on a worker, and order holds throughout. The client
//! compresses with flate2 itself, not with wscgi's code.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use support::raw_deflate::{
    client_frame, deflate, inflate, json, open_offering, open_offering_at, read_big_frame, send,
};
use support::*;

const T: Duration = Duration::from_secs(10);
const CHROME: &str = "permessage-deflate; client_max_window_bits";

/// Text that compresses to about 60%: `n` letters.
fn letters(n: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'a' + (x % 26) as u8
        })
        .collect()
}

#[test]
fn a_1mb_message_goes_both_ways_compressed_and_the_counters_stay_right() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let (mut s, _) = open_offering(&server, Some(CHROME));
    let message = json(1_000_000);
    let sent = deflate(&message);
    assert!(sent.len() > 16 * 1024, "{}", sent.len());
    send(&mut s, &client_frame(0xc1, &sent));
    let (first, payload, wire) = read_big_frame(&mut s);
    assert_eq!(first, 0xc1, "FIN, RSV1, text");
    assert!(inflate(&payload) == message, "the echo inflates to it");
    let reqs = backend.wait_for(T, |r| r.iter().any(|q| q.event() == "message"));
    let got = reqs.iter().find(|q| q.event() == "message").unwrap();
    assert!(got.body == message, "the backend got the plain message");
    assert_eq!(got.header("ws-message-type"), Some("text"));
    let metrics = http(server.push_addr, "GET", "/metrics", &[], b"").body_str();
    let value = |name: &str| sample(&metrics, name);
    let n = message.len() as u64;
    let received = value("wscgi_deflate_received_compressed_bytes_total");
    assert_eq!(received, sent.len() as u64);
    assert_eq!(value("wscgi_deflate_received_uncompressed_bytes_total"), n);
    assert_eq!(value("wscgi_deflate_sent_uncompressed_bytes_total"), n);
    let compressed = value("wscgi_deflate_sent_compressed_bytes_total");
    assert_eq!(compressed, payload.len() as u64);
    assert!(wire < message.len() / 3, "{wire} bytes on the wire");
}

/// A large binary message and a large one that does not compress come back as they went.
#[test]
fn large_binary_and_incompressible_messages_round_trip() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let (mut s, _) = open_offering(&server, Some(CHROME));
    let binary: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    send(&mut s, &client_frame(0xc2, &deflate(&binary)));
    let (first, payload, _) = read_big_frame(&mut s);
    assert_eq!(first, 0xc2);
    assert!(inflate(&payload) == binary);
    let plain = letters(50_000);
    send(&mut s, &client_frame(0xc1, &deflate(&plain)));
    let (first, payload, _) = read_big_frame(&mut s);
    assert_eq!(first, 0xc1);
    assert!(inflate(&payload) == plain);
}

/// A bomb in one frame goes to a worker, which stops at `--max-message`: 1009. The message
/// before it is answered first; the one after it is never delivered, and the close event's
/// `WS-Seq` follows the last delivered event's.
#[test]
fn a_bomb_left_to_a_worker_is_closed_with_1009_and_what_follows_is_dropped() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &["--max-message", "64K"]);
    let (mut s, _) = open_offering_at(&server, "/bomb", Some(CHROME));
    let id = backend.conn_id_on("/bomb", T);
    let bomb = deflate(&vec![0u8; 10 << 20]);
    assert!((4096..64 * 1024).contains(&bomb.len()), "{}", bomb.len());
    let mut bytes = client_frame(0x81, b"before");
    bytes.extend(client_frame(0xc2, &bomb));
    bytes.extend(client_frame(0x81, b"after"));
    send(&mut s, &bytes);
    assert_eq!(read_frame(&mut s), (0x81, b"before".to_vec()));
    assert_eq!(raw_close_code(&mut s), 1009);
    let reqs = backend.wait_for(T, |_| {
        backend.events(&id).iter().any(|q| q.event() == "close")
    });
    let events: Vec<_> = reqs.iter().filter(|q| q.conn_id() == id).collect();
    let names: Vec<_> = events.iter().map(|q| q.event()).collect();
    assert_eq!(names, ["open", "message", "close"]);
    assert_eq!(events[1].body, b"before");
    assert_eq!(events[2].seq(), events[1].seq() + 1, "no gap in WS-Seq");
    assert_eq!(events[2].header("ws-close-code"), Some("1009"));
}

/// Bad DEFLATE data, and a text message that inflates to invalid UTF-8, both left to a
/// worker: 1007, as inline.
#[test]
fn bad_data_and_invalid_utf8_left_to_a_worker_are_closed_with_1007() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let mut bad = vec![0x07];
    bad.resize(8000, 0);
    let mut latin1 = letters(20_000);
    latin1.push(0xe9);
    let not_utf8 = deflate(&latin1);
    assert!(not_utf8.len() > 4096, "{}", not_utf8.len());
    for (path, payload) in [("/bad", bad), ("/latin1", not_utf8)] {
        let (mut s, _) = open_offering_at(&server, path, Some(CHROME));
        send(&mut s, &client_frame(0xc1, &payload));
        assert_eq!(raw_close_code(&mut s), 1007, "{path}");
        assert_eq!(backend.close_code_on(path, T), "1007");
    }
    assert!(!backend.event_names().iter().any(|e| e == "message"));
}

/// A large push goes out compressed, and a small one pipelined behind it on the same
/// push-API connection still arrives after it; so do a batch's.
#[test]
fn large_pushes_are_compressed_and_keep_their_order() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let (mut s, _) = open_offering_at(&server, "/push", Some(CHROME));
    let id = backend.conn_id_on("/push", T);
    let big = json(200_000);
    let request = |body: &[u8]| {
        let head = format!(
            "POST /connections/{id} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        [head.as_bytes(), body].concat()
    };
    let mut api = TcpStream::connect(server.push_addr).unwrap();
    api.write_all(&[request(&big), request(b"small")].concat())
        .unwrap();
    let (first, payload, _) = read_big_frame(&mut s);
    assert_eq!(first, 0xc1, "compressed");
    assert!(inflate(&payload) == big);
    assert_eq!(read_frame(&mut s), (0x81, b"small".to_vec()));
    let ops = format!(
        r#"[{{"op":"send","id":"{id}","data":"{}"}},{{"op":"send","id":"{id}","data":"tiny"}}]"#,
        "x".repeat(50_000)
    );
    let resp = http(server.push_addr, "POST", "/batch", &[], ops.as_bytes());
    assert_eq!(resp.status, 200, "{}", resp.body_str());
    let (first, payload, _) = read_big_frame(&mut s);
    assert_eq!(first, 0xc1);
    assert!(inflate(&payload) == "x".repeat(50_000).as_bytes());
    assert_eq!(read_frame(&mut s), (0x81, b"tiny".to_vec()));
}

/// A large reply published to a channel: every member with the extension gets the one
/// compressed frame the worker made, the member without it the plain one.
#[test]
fn a_large_published_reply_is_compressed_once_for_all() {
    let backend = TestBackend::start(|req| match req.event() {
        "open" => BackendReply::ok().header("WS-Subscribe", "room"),
        "message" => BackendReply::echo_of(req).header("WS-Publish", "room"),
        _ => BackendReply::ok(),
    });
    let server = Wscgi::start(&backend.url(), &[]);
    let mut deflating: Vec<_> = (0..2)
        .map(|_| open_offering(&server, Some(CHROME)).0)
        .collect();
    let mut plain = open_offering(&server, None).0;
    backend.wait_for(T, |r| r.iter().filter(|q| q.event() == "open").count() == 3);
    let message = json(100_000);
    send(&mut plain, &client_frame(0x81, &message));
    let frames: Vec<_> = deflating.iter_mut().map(read_big_frame).collect();
    for (first, payload, _) in &frames {
        assert_eq!(*first, 0xc1);
        assert!(payload == &frames[0].1, "one compressed frame for all");
    }
    assert!(inflate(&frames[0].1) == message);
    let (first, payload, _) = read_big_frame(&mut plain);
    assert!((first, payload) == (0x81, message), "plain for the other");
}

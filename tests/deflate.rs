//! permessage-deflate (RFC 7692) on raw sockets, against a real wscgi and a real HTTP backend:
//! negotiation (RFC 7692's parameter examples, declined offers, no offer), compressed echoes
//! whole and fragmented, the compression bomb, framing violations, messages that stay
//! uncompressed, fan-out, and the `/metrics` counters. The client compresses with flate2
//! itself, not with wscgi's code.

mod support;

use std::time::Duration;

use support::raw_deflate::{
    client_frame, deflate, inflate, json, open_offering, read_big_frame, send,
};
use support::*;

const T: Duration = Duration::from_secs(10);
const CHROME: &str = "permessage-deflate; client_max_window_bits";
const NO_CONTEXT: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

#[test]
fn a_compressed_100kb_message_is_echoed_compressed_and_smaller() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let (mut s, answer) = open_offering(&server, Some(CHROME));
    assert_eq!(answer.as_deref(), Some(NO_CONTEXT));
    let message = json(100_000);
    let sent = deflate(&message);
    send(&mut s, &client_frame(0xc1, &sent));
    let (first, payload, wire) = read_big_frame(&mut s);
    assert_eq!(first, 0xc1, "FIN, RSV1, text");
    assert!(
        wire < message.len() / 4,
        "{wire} bytes on the wire for 100,000"
    );
    assert!(
        inflate(&payload) == message,
        "the echo inflates to the message"
    );
    // The backend saw the plain message.
    let reqs = backend.wait_for(T, |r| r.iter().any(|q| q.event() == "message"));
    let got = reqs.iter().find(|q| q.event() == "message").unwrap();
    assert!(got.body == message, "the backend got the plain message");
}

/// `--deflate-level` reaches the wire: the same echo of about 16 KB of JSON-like text is
/// smaller at level 9 than at level 1. The text mixes words from a small vocabulary at random,
/// so the levels' longer match searches and lazy matching find what level 1 misses.
#[test]
fn deflate_level_changes_what_goes_on_the_wire() {
    let backend = TestBackend::echo();
    let message = varied_json(16_000);
    let wire_len = |level: &str| {
        let server = Wscgi::start(&backend.url(), &["--deflate-level", level]);
        let (mut s, answer) = open_offering(&server, Some(CHROME));
        assert_eq!(answer.as_deref(), Some(NO_CONTEXT));
        send(&mut s, &client_frame(0x81, &message));
        let (first, payload, _) = read_big_frame(&mut s);
        assert_eq!(first, 0xc1, "level {level}: FIN, RSV1, text");
        assert!(
            inflate(&payload) == message,
            "level {level}: the echo inflates to the message"
        );
        payload.len()
    };
    let (fast, small) = (wire_len("1"), wire_len("9"));
    assert!(
        small < fast,
        "level 9: {small} bytes, level 1: {fast} bytes"
    );
}

/// About `n` bytes of JSON records with text of random words (a fixed seed: the same bytes on
/// every run).
fn varied_json(n: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    let mut out = b"[".to_vec();
    let mut id = 0;
    while out.len() < n {
        let text: Vec<&str> = (0..3 + next() % 6).map(|_| WORDS[next() % 16]).collect();
        let item = format!(
            "{{\"id\":{id},\"user\":\"{}{}\",\"text\":\"{}\"}},",
            WORDS[next() % 16],
            next() % 100,
            text.join(" ")
        );
        out.extend_from_slice(item.as_bytes());
        id += 1;
    }
    out.push(b']');
    out
}

/// A compressed message in three fragments with a ping between them: the pong comes first,
/// then the echo.
#[test]
fn fragmented_compressed_messages_work() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let (mut s, _) = open_offering(&server, Some("permessage-deflate"));
    let message = json(20_000);
    let wire = deflate(&message);
    let third = wire.len() / 3;
    send(&mut s, &client_frame(0x42, &wire[..third]));
    send(&mut s, &client_frame(0x00, &wire[third..2 * third]));
    send(&mut s, &client_frame(0x89, b"between"));
    send(&mut s, &client_frame(0x80, &wire[2 * third..]));
    assert_eq!(read_big_frame(&mut s).0, 0x8a, "a pong first");
    let (first, payload, _) = read_big_frame(&mut s);
    assert_eq!(first, 0xc2, "FIN, RSV1, binary");
    assert!(
        inflate(&payload) == message,
        "the echo inflates to the message"
    );
}

/// Ten megabytes of zeros are ten kilobytes compressed. Sent as the first fragment of a
/// message with `--max-message 64K`, they are refused with 1009 at once: wscgi stops at the
/// limit instead of inflating (or waiting for) the rest.
#[test]
fn a_bomb_is_closed_with_1009_before_it_is_inflated_past_the_limit() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &["--max-message", "64K"]);
    let (mut s, _) = open_offering(&server, Some(CHROME));
    let bomb = deflate(&vec![0u8; 10 << 20]);
    assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
    send(&mut s, &client_frame(0x42, &bomb));
    assert_eq!(raw_close_code(&mut s), 1009);
    backend.wait_for(T, |r| r.iter().any(|q| q.event() == "close"));
    assert!(!backend.event_names().iter().any(|e| e == "message"));
}

#[test]
fn no_offer_means_no_extension() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let (mut s, answer) = open_offering(&server, None);
    assert_eq!(answer, None);
    // RSV1 means nothing without the extension: a protocol error.
    send(&mut s, &client_frame(0xc1, &deflate(b"hello hello hello")));
    assert_eq!(raw_close_code(&mut s), 1002);
    let declined = Wscgi::start(&backend.url(), &["--no-deflate"]);
    assert_eq!(open_offering(&declined, Some(CHROME)).1, None);
    let (_, other) = open_offering(&server, Some("x-webkit-deflate-frame"));
    assert_eq!(other, None);
}

/// RFC 7692's offers (§5.2, §7.1) through real handshakes, by default and with
/// `--deflate-context`; offers wscgi cannot honour are declined, never refused.
#[test]
fn rfc_7692_parameter_examples() {
    let backend = TestBackend::echo();
    let default = Wscgi::start(&backend.url(), &[]);
    let context = Wscgi::start(&backend.url(), &["--deflate-context"]);
    let bits10 = "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                  server_max_window_bits=10";
    #[rustfmt::skip]
    let cases: &[(&str, Option<&str>, Option<&str>)] = &[
        ("permessage-deflate", Some(NO_CONTEXT), Some("permessage-deflate")),
        (CHROME, Some(NO_CONTEXT), Some("permessage-deflate")),
        ("permessage-deflate; client_max_window_bits=10", Some(NO_CONTEXT), Some("permessage-deflate")),
        ("permessage-deflate; server_no_context_takeover", Some(NO_CONTEXT),
         Some("permessage-deflate; server_no_context_takeover")),
        ("permessage-deflate; client_no_context_takeover", Some(NO_CONTEXT),
         Some("permessage-deflate; client_no_context_takeover")),
        ("permessage-deflate; server_max_window_bits=10", Some(bits10),
         Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=10")),
        ("permessage-deflate; client_max_window_bits; server_max_window_bits=10, \
          permessage-deflate; client_max_window_bits", Some(bits10),
         Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=10")),
        ("permessage-deflate; server_max_window_bits=16, permessage-deflate", Some(NO_CONTEXT),
         Some("permessage-deflate")),
        ("permessage-deflate; server_max_window_bits", None, None),
        ("permessage-deflate; mystery=1", None, None),
        ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", None, None),
    ];
    for (offer, by_default, with_context) in cases {
        assert_eq!(
            open_offering(&default, Some(offer)).1.as_deref(),
            *by_default,
            "{offer}"
        );
        assert_eq!(
            open_offering(&context, Some(offer)).1.as_deref(),
            *with_context,
            "{offer}"
        );
    }
}

/// With context takeover both ways, a message repeated refers back to the one before: the
/// second echo is much smaller, and both inflate with one inflater that keeps its window.
#[test]
fn context_takeover_with_deflate_context() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &["--deflate-context"]);
    let (mut s, answer) = open_offering(&server, Some("permessage-deflate"));
    assert_eq!(answer.as_deref(), Some("permessage-deflate"));
    let message = json(3000);
    let mut inflater = flate2::Decompress::new(false);
    let mut sizes = Vec::new();
    for _ in 0..2 {
        send(&mut s, &client_frame(0xc1, &deflate(&message)));
        let (first, payload, wire) = read_big_frame(&mut s);
        assert_eq!(first, 0xc1);
        let mut out = Vec::with_capacity(message.len() + 16);
        let input = [payload.as_slice(), &support::raw_deflate::TAIL].concat();
        inflater
            .decompress_vec(&input, &mut out, flate2::FlushDecompress::Sync)
            .unwrap();
        assert!(out == message, "the echo inflates to the message");
        sizes.push(wire);
    }
    assert!(sizes[1] * 2 < sizes[0], "{sizes:?}");
}

#[test]
fn framing_violations_fail_the_connection() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let packed = deflate(&json(1000));
    let cases: [(Vec<u8>, u16); 6] = [
        (client_frame(0xc9, b"ping"), 1002),
        (
            [client_frame(0x01, b"a"), client_frame(0xc0, b"b")].concat(),
            1002,
        ),
        // RSV1 belongs on the first frame of a compressed message only (RFC 7692 §6.1).
        (
            [
                client_frame(0x41, &packed[..10]),
                client_frame(0xc0, &packed[10..]),
            ]
            .concat(),
            1002,
        ),
        // A new message before the compressed one ended.
        (
            [
                client_frame(0x41, &packed[..10]),
                client_frame(0xc1, &packed),
            ]
            .concat(),
            1002,
        ),
        (client_frame(0xc1, &[0x07, 0x00, 0x11]), 1007),
        (
            client_frame(0xe1, &deflate(b"rsv2 too, which nothing defines")),
            1002,
        ),
    ];
    for (bytes, code) in cases {
        let (mut s, _) = open_offering(&server, Some(CHROME));
        send(&mut s, &bytes);
        assert_eq!(raw_close_code(&mut s), code, "{:x?}", &bytes[..2]);
    }
}

#[test]
fn short_and_incompressible_messages_go_uncompressed() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &["--deflate-min", "1K"]);
    let (mut s, _) = open_offering(&server, Some(CHROME));
    let short = json(1000);
    send(&mut s, &client_frame(0xc1, &deflate(&short)));
    let (first, payload, _) = read_big_frame(&mut s);
    assert!(
        (first, payload) == (0x81, short),
        "under --deflate-min: plain ({first:#x})"
    );
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..5000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    send(&mut s, &client_frame(0x82, &noise));
    let (first, payload, _) = read_big_frame(&mut s);
    assert!(
        (first, payload) == (0x82, noise),
        "not shrinking: plain ({first:#x})"
    );
    let long = json(1024);
    send(&mut s, &client_frame(0x81, &long));
    let (first, payload, _) = read_big_frame(&mut s);
    let got = (first, inflate(&payload));
    assert!(
        got == (0xc1, long),
        "at --deflate-min: compressed ({first:#x})"
    );
}

/// One publish to clients with and without the extension: those with it get the same
/// compressed frame, the other the plain one.
#[test]
fn fan_out_sends_the_compressed_frame_to_those_that_negotiated_it() {
    let backend = TestBackend::start(|req| match req.event() {
        "open" => BackendReply::ok().header("WS-Subscribe", "room"),
        _ => BackendReply::ok(),
    });
    let server = Wscgi::start(&backend.url(), &[]);
    let mut deflating: Vec<_> = (0..3)
        .map(|_| open_offering(&server, Some(CHROME)).0)
        .collect();
    let mut plain = open_offering(&server, None).0;
    let message = json(4000);
    backend.wait_for(T, |r| r.iter().filter(|q| q.event() == "open").count() == 4);
    let resp = http(server.push_addr, "POST", "/channels/room", &[], &message);
    assert_eq!(resp.status, 200, "{}", resp.body_str());
    let frames: Vec<_> = deflating.iter_mut().map(read_big_frame).collect();
    for (first, payload, _) in &frames {
        assert_eq!(*first, 0xc1);
        assert!(payload == &frames[0].1, "one compressed frame for all");
    }
    assert!(
        inflate(&frames[0].1) == message,
        "it inflates to the message"
    );
    let (first, payload, _) = read_big_frame(&mut plain);
    assert!(
        (first, payload) == (0x81, message),
        "plain for the other ({first:#x})"
    );
}

#[test]
fn metrics_count_bytes_before_and_after_compression_each_way() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let (mut s, _) = open_offering(&server, Some(CHROME));
    let message = json(10_000);
    let sent = deflate(&message);
    send(&mut s, &client_frame(0xc1, &sent));
    let (_, echoed, _) = read_big_frame(&mut s);
    let metrics = http(server.push_addr, "GET", "/metrics", &[], b"").body_str();
    let value = |name: &str| sample(&metrics, name);
    let n = message.len() as u64;
    assert_eq!(
        value("wscgi_deflate_received_compressed_bytes_total"),
        sent.len() as u64
    );
    assert_eq!(value("wscgi_deflate_received_uncompressed_bytes_total"), n);
    assert_eq!(value("wscgi_deflate_sent_uncompressed_bytes_total"), n);
    assert_eq!(
        value("wscgi_deflate_sent_compressed_bytes_total"),
        echoed.len() as u64
    );
}

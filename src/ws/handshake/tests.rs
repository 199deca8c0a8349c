//! Tests for the opening handshake: parsing, every error and its status, the accept key.

use super::*;
use HandshakeError as E;

const BROWSER: &[u8] = b"GET /chat?room=1&x=y HTTP/1.1\r\nHost: example.com:8080\r\n\
    User-Agent: Mozilla/5.0\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: https://example.com\r\n\
    Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, , superchat\r\n\
    Sec-WebSocket-Protocol: v2\r\n\r\n";

/// A minimal valid request, minus headers starting with `drop`, plus `extra`.
fn req(line: &str, drop: &str, extra: &str) -> Vec<u8> {
    let base = [
        "Host: h",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    ];
    let kept = base
        .iter()
        .filter(|h| drop.is_empty() || !h.starts_with(drop));
    let headers: String = kept.map(|h| format!("{h}\r\n")).collect();
    format!("{line}\r\n{headers}{extra}\r\n").into_bytes()
}

fn get(drop: &str, extra: &str) -> Vec<u8> {
    req("GET / HTTP/1.1", drop, extra)
}

/// One test per rejection: the error, its status, and the response bytes.
macro_rules! rejects {
    ($($name:ident: $buf:expr => $err:expr, $status:literal;)*) => {$(
        #[test]
        fn $name() {
            let buf = $buf;
            let err = parse(buf.as_ref()).err().expect("rejected");
            assert_eq!((&err, err.status()), (&$err, $status));
            let resp = rejection(&err);
            let line = format!("HTTP/1.1 {} {}\r\n", $status, err.reason());
            assert!(resp.starts_with(line.as_bytes()));
            assert!(resp.ends_with(format!("\r\n\r\n{err}\n").as_bytes()));
        }
    )*};
}

const CONN_CLOSE: &str = "Connection: close\r\n";
const VERSION_8: &str = "Sec-WebSocket-Version: 8\r\n";
const KEY17: &str = "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=\r\n";
const KEY_DUP: &str = "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n";
const KEY_BAD: &str = "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==\r\n";

rejects! {
    old_http: req("GET / HTTP/1.0", "", "") => E::OldHttpVersion, 400;
    post: req("POST / HTTP/1.1", "", "") => E::MethodNotAllowed, 405;
    plain_post: b"POST / HTTP/1.1\r\nHost: h\r\n\r\n" => E::MethodNotAllowed, 405;
    absolute_target: req("GET http://h/ HTTP/1.1", "", "") => E::BadTarget, 400;
    plain_get: b"GET / HTTP/1.1\r\nHost: h\r\n\r\n" => E::NotUpgrade, 426;
    upgrade_h2c: get("Upgrade", "Upgrade: h2c\r\n") => E::NotUpgrade, 426;
    no_conn_upgrade: get("Connection", CONN_CLOSE) => E::MissingConnectionUpgrade, 400;
    no_host: get("Host", "") => E::MissingHost, 400;
    two_hosts: get("", "Host: x\r\n") => E::Malformed("duplicate host header"), 400;
    no_version: get("Sec-WebSocket-Version", "") => E::UnsupportedVersion, 426;
    version_8: get("Sec-WebSocket-Version", VERSION_8) => E::UnsupportedVersion, 426;
    no_key: get("Sec-WebSocket-Key", "") => E::MissingKey, 400;
    short_key: get("Sec-WebSocket-Key", "Sec-WebSocket-Key: AAAA\r\n") => E::BadKey, 400;
    key_17_bytes: get("Sec-WebSocket-Key", KEY17) => E::BadKey, 400;
    key_not_base64: get("Sec-WebSocket-Key", KEY_BAD) => E::BadKey, 400;
    duplicate_key: get("", KEY_DUP) => E::BadKey, 400;
    bad_header_name: get("", "Bad Name: x\r\n") => E::Malformed("invalid header name"), 400;
    too_many_headers: get("", &"X: y\r\n".repeat(MAX_HEADERS)) => E::TooManyHeaders, 431;
    head_too_large: [b'a'; MAX_HEAD] => E::HeadTooLarge, 431;
}

#[test]
fn rfc_accept_vector() {
    let accept = accept_key("dGhlIHNhbXBsZSBub25jZQ==");
    assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn browser_handshake() {
    let (up, n) = parse(BROWSER).unwrap().unwrap();
    assert_eq!((n, up.headers.len()), (BROWSER.len(), 9));
    assert_eq!(up.target, "/chat?room=1&x=y");
    assert_eq!((up.path(), up.query()), ("/chat", "room=1&x=y"));
    assert_eq!(up.key, "dGhlIHNhbXBsZSBub25jZQ==");
    assert_eq!(up.protocols, ["chat", "superchat", "v2"]);
    assert_eq!(up.header("origin"), Some("https://example.com"));
    assert_eq!(
        up.header("sec-websocket-protocol"),
        Some("chat, , superchat")
    );
    let resp = accept_response(&up.key, Some("chat"), None);
    let want = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
        Sec-WebSocket-Protocol: chat\r\n\r\n";
    assert_eq!(String::from_utf8(resp).unwrap(), want);
}

#[test]
fn every_split_is_partial() {
    for i in 0..BROWSER.len() {
        assert!(parse(&BROWSER[..i]).unwrap().is_none(), "split {i}");
    }
}

#[test]
fn leftover_bytes_belong_to_stream() {
    let mut buf = get("", "");
    let head = buf.len();
    buf.extend_from_slice(&[0x81, 0x85, 1, 2, 3, 4]);
    let (up, n) = parse(&buf).unwrap().unwrap();
    assert_eq!((n, up.path(), up.query()), (head, "/", ""));
    // A complete head is accepted however much stream data follows it.
    buf.resize(MAX_HEAD * 2, 0);
    assert_eq!(parse(&buf).unwrap().map(|(_, n)| n), Some(head));
}

#[test]
fn head_limit() {
    let mut buf = get("", "X-Pad: ");
    buf.truncate(buf.len() - 2);
    buf.resize(MAX_HEAD - 1, b'a');
    assert!(parse(&buf).unwrap().is_none());
    buf.extend_from_slice(b"aaaa\r\n\r\n");
    assert_eq!(parse(&buf).err(), Some(E::HeadTooLarge));
}

#[test]
fn mixed_case_tokens_and_non_utf8_value() {
    let mut buf = req(
        "GET /a? HTTP/1.1",
        "Upgrade",
        "Upgrade: WebSocket\r\nX-Raw: ",
    );
    buf.truncate(buf.len() - 2);
    buf.extend_from_slice(b"caf\xe9\xff\r\n\r\n");
    let (up, _) = parse(&buf).unwrap().unwrap();
    assert_eq!(up.header("x-raw"), Some("caf\u{fffd}\u{fffd}"));
    assert_eq!((up.path(), up.query()), ("/a", ""));
}

#[test]
fn rejection_headers_and_error_response() {
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    let r = text(rejection(&E::UnsupportedVersion));
    assert!(r.contains("\r\nSec-WebSocket-Version: 13\r\n"), "{r}");
    let r = text(rejection(&E::NotUpgrade));
    assert!(r.contains("\r\nUpgrade: websocket\r\n"), "{r}");
    let r = text(rejection(&E::MethodNotAllowed));
    assert!(r.contains("\r\nAllow: GET\r\n"), "{r}");
    let r = text(accept_response("k", Some("a\r\nX: y"), None));
    assert!(!r.contains("X: y"), "{r}");
    let r = text(error_response(502, "a\nb", &[], b""));
    assert!(
        r.contains("\r\nContent-Type: application/octet-stream\r\n"),
        "{r}"
    );
    let extra = [("Retry-After", "1"), ("X-Split", "a\r\nb")];
    let r = text(error_response(503, "application/json", &extra, b"{}"));
    let want = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
        Content-Length: 2\r\nConnection: close\r\nRetry-After: 1\r\n\r\n{}";
    assert_eq!(r, want);
    assert_eq!(status_reason(299), "Unknown");
}

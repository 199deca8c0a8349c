//! Tests for the push-API request parser: partial input, keep-alive, limits, decoding.

use super::*;
use RequestError as E;

/// Test requests are written with bare "\n"; the wire wants CRLF.
fn wire(s: &str) -> Vec<u8> {
    s.replace('\n', "\r\n").into_bytes()
}

fn ok(buf: &[u8]) -> (Request, usize) {
    parse(buf, 1024).unwrap().unwrap()
}

macro_rules! accepts {
    ($($name:ident: $req:expr => $method:ident, keep_alive: $ka:literal, $body:expr;)*)
        => {$(
        #[test]
        fn $name() {
            let buf = wire($req);
            let (r, n) = ok(&buf);
            assert_eq!((r.method, r.keep_alive, n), (Method::$method, $ka, buf.len()));
            assert_eq!(r.body, $body);
        }
    )*};
}

accepts! {
    post: "POST /p HTTP/1.1\nContent-Length: 3\n\nabc" => Post, keep_alive: true, b"abc";
    put_same_lengths: "PUT /p HTTP/1.1\nContent-Length: 2, 2\nContent-Length: 2\n\nhi"
        => Put, keep_alive: true, b"hi";
    delete_close: "DELETE /c/1 HTTP/1.1\nConnection: Close\n\n"
        => Delete, keep_alive: false, b"";
    head_http10: "HEAD / HTTP/1.0\n\n" => Head, keep_alive: false, b"";
    get_http10_keep_alive: "GET / HTTP/1.0\nConnection: Keep-Alive\n\n"
        => Get, keep_alive: true, b"";
    other_close_in_list: "PATCH / HTTP/1.1\nConnection: foo, close\n\n"
        => Other, keep_alive: false, b"";
}

macro_rules! rejects {
    ($($name:ident: $req:expr => $err:expr, $status:literal;)*) => {$(
        #[test]
        fn $name() {
            let err = parse(&wire(&$req), 1024).unwrap_err();
            assert_eq!((&err, err.status()), (&$err, $status));
        }
    )*};
}

rejects! {
    post_no_length: "POST / HTTP/1.1\n\n" => E::LengthRequired, 411;
    chunked: "PUT / HTTP/1.1\nTransfer-Encoding: chunked\n\n" => E::LengthRequired, 411;
    chunked_with_length: "GET / HTTP/1.1\nTransfer-Encoding: chunked\nContent-Length: 1\n\n"
        => E::LengthRequired, 411;
    too_large_before_body: "POST / HTTP/1.1\nContent-Length: 1025\n\n" => E::BodyTooLarge, 413;
    length_overflow: "POST / HTTP/1.1\nContent-Length: 99999999999999999999999\n\n"
        => E::BodyTooLarge, 413;
    signed_length: "POST / HTTP/1.1\nContent-Length: +5\n\n" => E::BadContentLength, 400;
    empty_length: "POST / HTTP/1.1\nContent-Length:\n\n" => E::BadContentLength, 400;
    conflicting_lengths: "POST / HTTP/1.1\nContent-Length: 1\nContent-Length: 2\n\n"
        => E::BadContentLength, 400;
    long_target: format!("GET /{} HTTP/1.1\n\n", "a".repeat(MAX_TARGET)) => E::UriTooLong, 414;
    long_target_head_open: format!("GET /{} HTTP/1.1\nHost: h\n", "a".repeat(MAX_TARGET))
        => E::UriTooLong, 414;
    huge_request_line: format!("GET /{}", "a".repeat(MAX_HEAD)) => E::UriTooLong, 414;
    huge_headers: format!("GET / HTTP/1.1\n{}", "X: y\n".repeat(MAX_HEAD / 6))
        => E::HeadTooLarge, 431;
    too_many_headers: format!("GET / HTTP/1.1\n{}\n", "X: y\n".repeat(MAX_HEADERS + 1))
        => E::HeadTooLarge, 431;
    asterisk: "OPTIONS * HTTP/1.1\n\n" => E::BadTarget, 400;
    absolute_form: "GET http://h/ HTTP/1.1\n\n" => E::BadTarget, 400;
    short_escape: "GET /%4 HTTP/1.1\n\n" => E::BadTarget, 400;
    non_utf8_path: "GET /%FF HTTP/1.1\n\n" => E::BadTarget, 400;
    bad_header: "GET / HTTP/1.1\nBad Name: x\n\n" => E::Malformed("invalid header name"), 400;
    http2: "GET / HTTP/2.0\n\n" => E::Malformed("invalid http version"), 400;
}

#[test]
fn get_with_query_and_segments() {
    let buf = wire("GET /send/a%20b//c?to=x+y&m=%E2%9C%93&f&=v&bad=%zz HTTP/1.1\nHost: h\n\n");
    let (r, n) = ok(&buf);
    assert_eq!((r.method, n, r.body.len()), (Method::Get, buf.len(), 0));
    assert_eq!(
        (r.path.as_str(), r.header("host")),
        ("/send/a b//c", Some("h"))
    );
    assert_eq!(r.path_segments(), ["send", "a b", "c"]);
    let q = |k| r.query_param(k);
    assert_eq!(
        [q("to"), q("m"), q("f"), q(""), q("bad")],
        [
            Some("x y"),
            Some("\u{2713}"),
            Some(""),
            Some("v"),
            Some("%zz")
        ]
    );
}

#[test]
fn pipelined_and_split_body() {
    let one = wire("POST /a HTTP/1.1\nContent-Length: 5\n\nhello");
    let mut buf = one.clone();
    buf.extend(wire("GET /b HTTP/1.1\n\n"));
    let (r, n) = ok(&buf);
    assert_eq!(
        (r.path.as_str(), &r.body[..], n),
        ("/a", &b"hello"[..], one.len())
    );
    let (r, n) = ok(&buf[n..]);
    assert_eq!((r.path.as_str(), n), ("/b", 19));
    for i in 0..one.len() {
        assert!(parse(&one[..i], 1024).unwrap().is_none(), "split {i}");
    }
}

#[test]
fn form_decode_rules() {
    let pairs = form_decode(b"a=1+2&&b=%41%2b&c=%&d=%e9&e=x=y");
    let got: Vec<_> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let want = [
        ("a", "1 2"),
        ("b", "A+"),
        ("c", "%"),
        ("d", "\u{fffd}"),
        ("e", "x=y"),
    ];
    assert_eq!(got, want);
    assert_eq!(percent_decode(b"a+b%2F"), Some(b"a+b/".to_vec()));
    assert_eq!(percent_decode(b"%"), None);
}

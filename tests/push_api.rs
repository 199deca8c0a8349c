//! The push API (`--push-listen`): sending to, closing and describing clients, the bearer token,
//! JSON errors with their statuses, and HTTP/1.1 keep-alive and pipelining.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, SystemTime};

use support::*;
use tungstenite::Message;
use tungstenite::stream::MaybeTlsStream;

const T: Duration = Duration::from_secs(5);
const TEXT: &str = "text/plain; charset=utf-8";
const BINARY: &str = "application/octet-stream";
const FORM: &str = "application/x-www-form-urlencoded";
const JSON: Option<&str> = Some("application/json");

/// Connects a client to `path`; returns it with the id wscgi gave it (from its open event).
fn open(server: &Wscgi, backend: &TestBackend, path: &str) -> (Client, String) {
    let opens = |r: &[BackendRequest]| r.iter().filter(|q| q.event() == "open").count();
    let before = opens(&backend.requests());
    let client = connect(&server.ws_url(path));
    let reqs = backend.wait_for(T, |r| opens(r) > before);
    let open = reqs.iter().rev().find(|q| q.event() == "open").unwrap();
    (client, open.conn_id().to_string())
}

/// The code and reason of the close frame the client receives next.
fn close_frame(client: &mut Client) -> (u16, String) {
    let frame = recv_close(client).expect("a close frame with a code");
    (frame.code.into(), frame.reason.to_string())
}

/// `POST /connections/{id}`, with that Content-Type unless it is "".
fn post(addr: SocketAddr, id: &str, content_type: &str, body: &[u8]) -> HttpResponse {
    let ct = [("Content-Type", content_type)];
    let (path, given) = (format!("/connections/{id}"), !content_type.is_empty());
    http(addr, "POST", &path, &ct[..usize::from(given)], body)
}

fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    http(addr, "GET", path, &[], b"")
}

fn delete(addr: SocketAddr, path: &str) -> HttpResponse {
    http(addr, "DELETE", path, &[], b"")
}

/// Asserts a 200 JSON answer to a send of `bytes` bytes to `id`.
fn assert_sent(resp: &HttpResponse, id: &str, bytes: usize) {
    let body = resp.body_str();
    assert_eq!(resp.status, 200, "{body}");
    assert_eq!(resp.header("content-type"), JSON);
    let got = ["ok", "id", "bytes"].map(|k| member(&body, k));
    let want = ["true".to_string(), format!("\"{id}\""), bytes.to_string()];
    assert_eq!(got, want, "{body}");
}

/// Asserts that status and a JSON `{"error": "<message>"}` body.
fn assert_error(resp: &HttpResponse, status: u16) {
    let body = resp.body_str();
    assert_eq!(resp.status, status, "{body}");
    assert_eq!(resp.header("content-type"), JSON);
    assert!(member(&body, "error").len() > 2, "an error message: {body}");
}

#[test]
fn post_sends_text_binary_or_form_data_to_that_client_only() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let (mut a, id_a) = open(&server, &backend, "/a");
    let (mut b, id_b) = open(&server, &backend, "/b");
    let p = server.push_addr;
    assert_sent(&post(p, &id_b, "", "héllo".as_bytes()), &id_b, 6);
    assert_eq!(recv_text(&mut b), "héllo");
    assert_sent(&post(p, &id_b, TEXT, b"plain"), &id_b, 5);
    assert_eq!(recv_text(&mut b), "plain");
    assert_sent(&post(p, &id_b, BINARY, b"\0\xff\xfe"), &id_b, 3);
    assert_eq!(recv_binary(&mut b), b"\0\xff\xfe");
    let resp = post(p, &id_b, FORM, b"x=1&data=a+b%26c%E2%9C%93&y=2");
    assert_sent(&resp, &id_b, "a b&c✓".len());
    assert_eq!(recv_text(&mut b), "a b&c✓");
    // Text must be UTF-8; what is refused is not sent.
    assert_error(&post(p, &id_b, "", b"ok \xff\xfe"), 400);
    assert_error(&post(p, &id_b, TEXT, b"\xc3"), 400);
    assert_sent(&post(p, &id_b, "", b"next"), &id_b, 4);
    assert_eq!(recv_text(&mut b), "next");
    // Nothing meant for b reached a: a's first message is its own.
    assert_sent(&post(p, &id_a, "", b"for a"), &id_a, 5);
    assert_eq!(recv_text(&mut a), "for a");
}

#[test]
fn delete_closes_with_code_and_reason_and_fires_one_close_event() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let (mut client, id) = open(&server, &backend, "/");
    let path = format!("/connections/{id}?code=4000&reason=bye");
    let resp = delete(server.push_addr, &path);
    assert_eq!(resp.status, 200, "{}", resp.body_str());
    assert_eq!(close_frame(&mut client), (4000, "bye".into()));
    drop(client);
    // wscgi forgets a connection only once all its events reached the backend.
    let held = || member(&get(server.push_addr, "/healthz").body_str(), "connections");
    wait_until(T, "wscgi holds no connection", || held() == "0");
    let events = backend.events(&id);
    let closes: Vec<_> = events.iter().filter(|q| q.event() == "close").collect();
    assert_eq!(closes.len(), 1, "{events:?}");
    assert_eq!(closes[0].header("ws-close-code"), Some("4000"));
    assert_eq!(closes[0].header("ws-close-reason"), Some("bye"));
    let p = server.push_addr;
    assert_error(&post(p, &id, "", b"hi"), 404);
    assert_error(&get(p, &format!("/connections/{id}")), 404);
    assert_error(&delete(p, &path), 404);
}

#[test]
fn delete_refuses_invalid_codes_and_defaults_to_1000() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let (mut client, id) = open(&server, &backend, "/");
    for code in ["1006", "1005", "99", "0", "5000", "-1", "abc", "4000x"] {
        let path = format!("/connections/{id}?code={code}");
        assert_error(&delete(server.push_addr, &path), 400);
    }
    assert_sent(&post(server.push_addr, &id, "", b"still open"), &id, 10);
    assert_eq!(recv_text(&mut client), "still open");
    let path = format!("/connections/{id}?reason=see%20you");
    assert_eq!(delete(server.push_addr, &path).status, 200);
    // Closing is not open: nothing more can be sent.
    assert_error(&post(server.push_addr, &id, "", b"late"), 404);
    assert_eq!(close_frame(&mut client), (1000, "see you".into()));
    let reqs = backend.wait_for(T, |r| r.iter().any(|q| q.event() == "close"));
    let close = reqs.iter().find(|q| q.event() == "close").unwrap();
    assert_eq!(close.header("ws-close-code"), Some("1000"));
}

#[test]
fn get_describes_the_connection_and_its_metadata() {
    let backend = TestBackend::start(|req| match req.event() {
        "open" => BackendReply::ok()
            .header("WS-Set-Meta-User", "alice")
            .header("WS-Set-Meta-Room-Name", "Lobby \"1\""),
        "message" => BackendReply::ok()
            .header("WS-Set-Meta-USER", "")
            .body("done"),
        _ => BackendReply::ok(),
    });
    let server = Wscgi::start(&backend.url(), &[]);
    let unix_now = || SystemTime::UNIX_EPOCH.elapsed().unwrap().as_secs();
    let before = unix_now();
    let (mut client, id) = open(&server, &backend, "/chat?room=5");
    let after = unix_now();
    let MaybeTlsStream::Plain(sock) = client.get_ref() else {
        panic!("a plain socket")
    };
    let local = sock.local_addr().unwrap();
    let path = format!("/connections/{id}");
    let info = get(server.push_addr, &path);
    let body = info.body_str();
    assert_eq!((info.status, info.header("content-type")), (200, JSON));
    assert_eq!(member(&body, "id"), format!("\"{id}\""));
    assert_eq!(member(&body, "path"), r#""/chat?room=5""#);
    assert_eq!(member(&body, "remote_addr"), format!("\"{local}\""));
    let since: u64 = member(&body, "connected_at").parse().unwrap();
    assert!((before..=after).contains(&since), "{since}: {body}");
    let meta = member(&body, "meta");
    assert_eq!(member(&meta, "user"), "\"alice\"");
    assert_eq!(member(&meta, "room-name"), r#""Lobby \"1\"""#);
    // A later reply changes the metadata; an empty value deletes.
    client.send(Message::text("forget me")).unwrap();
    assert_eq!(recv_text(&mut client), "done");
    let meta = member(&get(server.push_addr, &path).body_str(), "meta");
    assert_eq!(member(&meta, "room-name"), r#""Lobby \"1\"""#);
    assert!(!meta.contains("user"), "{meta}");
}

#[test]
fn push_token_is_required_on_every_call() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &["--push-token", "s3cret"]);
    let (mut client, id) = open(&server, &backend, "/");
    let (p, conn) = (server.push_addr, &format!("/connections/{id}"));
    let wrong = ["", "Bearer s3cre", "Bearer s3cret2", "Basic s3cret"];
    for (method, path, auth) in cross(["GET", "POST", "DELETE"], ["/healthz", conn], wrong) {
        let header = [("Authorization", auth)];
        let given = usize::from(!auth.is_empty());
        let resp = http(p, method, path, &header[..given], b"no");
        assert_error(&resp, 401);
        let challenge = resp.header("www-authenticate");
        assert_eq!(challenge, Some("Bearer"), "{method} {path} {auth}");
    }
    let auth = [("Authorization", "Bearer s3cret")];
    assert_eq!(http(p, "GET", "/healthz", &auth, b"").status, 200);
    assert_sent(&http(p, "POST", conn, &auth, b"yes"), &id, 3);
    // No unauthorized message went out before it.
    assert_eq!(recv_text(&mut client), "yes");
    assert_eq!(http(p, "DELETE", conn, &auth, b"").status, 200);
    assert_eq!(close_frame(&mut client), (1000, String::new()));
}

#[test]

fn bearer_scheme_name_is_case_insensitive() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &["--push-token", "s3cret"]);
    for auth in ["bearer s3cret", "BEARER s3cret"] {
        let header = [("Authorization", auth)];
        let resp = http(server.push_addr, "GET", "/healthz", &header, b"");
        assert_eq!(resp.status, 200, "{auth}: {}", resp.body_str());
    }
}

#[test]
fn request_errors_are_json_with_their_status() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let p = server.push_addr;
    let unknown = ["/connections/AAAAAAAAAAAAAAAAAAAAAA", "/connections/x"];
    for path in ["/", "/nope", "/connections/a/b", "/healthz/x"] {
        assert_error(&get(p, path), 404);
    }
    for path in unknown {
        assert_error(&http(p, "POST", path, &[], b"hi"), 404);
        assert_error(&get(p, path), 404);
        assert_error(&delete(p, path), 404);
    }
    for (method, path) in [("PUT", "/connections/x"), ("POST", "/healthz")] {
        let resp = http(p, method, path, &[], b"");
        assert_error(&resp, 405);
        let allow = resp.header("allow").unwrap_or_default();
        let allowed: Vec<&str> = allow.split(',').map(str::trim).collect();
        let right = allowed.contains(&"GET") && !allowed.contains(&method);
        assert!(right, "{method} {path}: Allow: {allow:?}");
    }
    let post = "POST /connections/x HTTP/1.1\r\nHost: a\r\n";
    let chunked = "Transfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n";
    for rest in ["\r\n", chunked] {
        assert_error(&Raw::connect(p).request(&format!("{post}{rest}")), 411);
    }
    // The request target may be 4096 bytes long, not one more.
    let target = |len: usize| format!("/connections/{}", "a".repeat(len - 13));
    assert_error(&get(p, &target(4096)), 404);
    assert_error(&get(p, &target(4097)), 414);
}

#[test]
fn body_over_max_message_is_413_as_soon_as_the_head_arrives() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &["--max-message", "1K"]);
    let (mut client, id) = open(&server, &backend, "/");
    let full = "x".repeat(1024);
    assert_sent(&post(server.push_addr, &id, "", full.as_bytes()), &id, 1024);
    assert_eq!(recv_text(&mut client), full);
    let head = format!("POST /connections/{id} HTTP/1.1\r\nHost: a\r\n");
    let head = format!("{head}Content-Length: 1025\r\n\r\n");
    // The body is never sent: the answer must not wait for it.
    assert_error(&Raw::connect(server.push_addr).request(&head), 413);
    assert_sent(&post(server.push_addr, &id, "", b"after"), &id, 5);
    assert_eq!(recv_text(&mut client), "after");
}

#[test]
fn keep_alive_pipelining_and_connection_close() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let (mut client, id) = open(&server, &backend, "/");
    let mut raw = Raw::connect(server.push_addr);
    for _ in 0..2 {
        let health = raw.request("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(health.status, 200);
        assert_eq!(member(&health.body_str(), "status"), "\"ok\"");
    }
    let send = |text: &str| {
        let head = format!("POST /connections/{id} HTTP/1.1\r\nHost: a\r\nContent-Length: ");
        format!("{head}{}\r\n\r\n{text}", text.len())
    };
    let missing = "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n".to_string();
    raw.send(&[send("one"), missing, send("three")].concat());
    assert_sent(&raw.response(), &id, 3);
    assert_error(&raw.response(), 404);
    assert_sent(&raw.response(), &id, 5);
    assert_eq!(recv_text(&mut client), "one");
    assert_eq!(recv_text(&mut client), "three");
    let last = raw.request("GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert_eq!(last.status, 200);
    assert_eq!(last.header("connection"), Some("close"));
    assert!(!raw.read(), "EOF after the answer, not {:?}", raw.1);
}

/// A push-API connection driven by hand, for what [`http`] cannot send or see. Reads time out.
struct Raw(TcpStream, Vec<u8>);

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect_timeout(&addr, T).expect("connect to the push API");
        stream.set_read_timeout(Some(T)).unwrap();
        Raw(stream, Vec::new())
    }

    fn request(&mut self, request: &str) -> HttpResponse {
        self.send(request);
        self.response()
    }

    fn send(&mut self, request: &str) {
        let sent = self.0.write_all(request.as_bytes());
        sent.expect("write to the push API");
    }

    /// Reads once into the buffer; false on EOF.
    fn read(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        let n = self.0.read(&mut chunk);
        let n = n.unwrap_or_else(|e| panic!("{e} after {:?}", String::from_utf8_lossy(&self.1)));
        self.1.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// The next response (push-API answers all have a Content-Length).
    fn response(&mut self) -> HttpResponse {
        loop {
            let mut slots = [httparse::EMPTY_HEADER; 32];
            let mut r = httparse::Response::new(&mut slots);
            if let Ok(httparse::Status::Complete(head)) = r.parse(&self.1) {
                let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
                let headers = r
                    .headers
                    .iter()
                    .map(|h| (h.name.into(), text(h.value)))
                    .collect();
                let resp = HttpResponse {
                    status: r.code.unwrap(),
                    headers,
                    body: Vec::new(),
                };
                let len: usize = resp.header("content-length").unwrap().parse().unwrap();
                if self.1.len() >= head + len {
                    let body = self.1.drain(..head + len).skip(head).collect();
                    return HttpResponse { body, ..resp };
                }
            }
            let more = self.read();
            assert!(more, "EOF inside {:?}", String::from_utf8_lossy(&self.1));
        }
    }
}

/// The JSON text of member `name` of the object `json`. Enough for wscgi's small answers,
/// where no name appears twice, not even in nested objects or in strings.
fn member(json: &str, name: &str) -> String {
    let key = format!("\"{name}\"");
    let at = json
        .find(&key)
        .unwrap_or_else(|| panic!("no {key} in {json}"));
    let value = json[at + key.len()..].trim_start().strip_prefix(':');
    let value = value.unwrap_or_else(|| panic!("no ':' after {key} in {json}"));
    value[..value_len(value)].trim().to_string()
}

/// Length of the JSON value at the start of `s`: up to a ',', '}' or ']' outside it.
fn value_len(s: &str) -> usize {
    let (mut depth, mut in_string, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            _ if in_string => {}
            '{' | '[' => depth += 1,
            '}' | ']' | ',' if depth == 0 => return i,
            '}' | ']' => depth -= 1,
            _ => {}
        }
    }
    s.len()
}

/// Every combination of one item from each list.
fn cross<A: Copy, B: Copy, C: Copy>(a: [A; 3], b: [B; 2], c: [C; 4]) -> Vec<(A, B, C)> {
    let ab = a.into_iter().flat_map(|a| b.map(|b| (a, b)));
    ab.flat_map(|(a, b)| c.map(|c| (a, b, c))).collect()
}

//! Channels and fan-out: reply-driven subscribe/publish/exclude, the push API's channel,
//! broadcast and presence endpoints, slow consumers, and the fan-out metrics.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::*;
use tungstenite::Message;

const T: Duration = Duration::from_secs(10);

/// Every client joins "room" at open; messages are echoed.
fn room_backend() -> TestBackend {
    TestBackend::start(|req| match req.event() {
        "open" => BackendReply::ok().header("WS-Subscribe", "room"),
        "message" => BackendReply::ok().body(req.body.clone()),
        _ => BackendReply::ok(),
    })
}

/// Connects on `path` (unique within a test) and returns the client and its connection id.
fn join(server: &Wscgi, backend: &TestBackend, path: &str) -> (Client, String) {
    let client = connect(&server.ws_url(path));
    (client, open_id(backend, path))
}

/// The id of the connection opened on `path`.
fn open_id(backend: &TestBackend, path: &str) -> String {
    let is_it = |q: &BackendRequest| q.event() == "open" && q.header("ws-path") == Some(path);
    let reqs = backend.wait_for(T, |r| r.iter().any(is_it));
    reqs.into_iter().find(is_it).unwrap().conn_id().to_string()
}

/// One push-API call; returns status and body.
fn call(server: &Wscgi, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let resp = http(server.push_addr, method, path, &[], body);
    (resp.status, resp.body_str())
}

fn get(server: &Wscgi, path: &str) -> (u16, String) {
    call(server, "GET", path, b"")
}

/// `PUT` (join) or `DELETE` (leave) `channel` for connection `id`; returns the status.
fn member(server: &Wscgi, method: &str, channel: &str, id: &str) -> u16 {
    let path = format!("/channels/{channel}/connections/{id}");
    call(server, method, &path, b"").0
}

/// POSTs raw text to `path`, expects `status` and returns the answer's `delivered`.
fn post(server: &Wscgi, path: &str, text: &str, status: u16) -> u64 {
    let (got, body) = call(server, "POST", path, text.as_bytes());
    assert_eq!(got, status, "POST {path}: {body}");
    if status == 404 {
        assert!(body.contains("\"error\""), "404 names an error: {body}");
    }
    json_num(&body, "delivered")
}

/// The number after `"key":` in a JSON answer.
fn json_num(body: &str, key: &str) -> u64 {
    let rest = body.split(&format!("\"{key}\":")).nth(1);
    let rest = rest.unwrap_or_else(|| panic!("no {key} in {body}"));
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| panic!("{key} in {body}"))
}

/// The strings of the array `"key":[...]`, sorted (ids and names need no unescaping).
fn json_strs(body: &str, key: &str) -> Vec<String> {
    let rest = body.split(&format!("\"{key}\":[")).nth(1);
    let rest = rest.unwrap_or_else(|| panic!("no array {key} in {body}"));
    let inner = &rest[..rest.find(']').expect("a closed array")];
    let mut items: Vec<String> = inner
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.trim().trim_matches('"').to_string())
        .collect();
    items.sort();
    items
}

fn sorted(ids: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// `GET /metrics`, checking its content type.
fn metrics(server: &Wscgi) -> String {
    let resp = http(server.push_addr, "GET", "/metrics", &[], b"");
    assert_eq!(resp.status, 200);
    let ctype = resp.header("content-type").unwrap_or("");
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    resp.body_str()
}

/// The value of the sample named exactly `name` (labels included).
fn sample(text: &str, name: &str) -> u64 {
    let mut lines = text.lines();
    let value = lines.find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok());
    value.unwrap_or_else(|| panic!("no integer sample {name} in:\n{text}"))
}

/// A WebSocket opened by hand that never reads after the 101 head (read byte by byte).
fn stalled_ws(server: &Wscgi, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(server.ws_addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: wscgi.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
        s.read_exact(&mut byte).expect("a 101 response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    s
}

/// Over 1024 subscribers: on a machine with more than one core, a publish is written by several
/// threads straight to the sockets (`ws::direct`).
const MANY: usize = 1100;

#[test]
fn a_publish_to_many_subscribers_arrives_exactly_once_at_each() {
    let backend = room_backend();
    let server = Wscgi::start(&backend.url(), &["--workers", "8"]);
    let mut clients: Vec<Client> = (0..MANY).map(|_| connect(&server.ws_url("/"))).collect();
    for m in ["m1", "m2"] {
        assert_eq!(post(&server, "/channels/room", m, 200), MANY as u64);
    }
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(recv_text(c), "m1", "client {i}");
        assert_eq!(recv_text(c), "m2", "client {i}: a second m1?");
    }
    // A duplicate of m2 would arrive before this marker.
    assert_eq!(post(&server, "/channels/room", "end", 200), MANY as u64);
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(recv_text(c), "end", "client {i}: a second m2?");
    }
}

/// Everyone joins "room"; every message goes to the room with `WS-Exclude: self`, or, for
/// `ids|text`, the text with `WS-Exclude: ids`.
fn chat_backend() -> TestBackend {
    TestBackend::start(|req| match req.event() {
        "open" => BackendReply::ok().header("WS-Subscribe", "room"),
        "message" => {
            let body = req.body_str();
            let (exclude, text) = body.split_once('|').unwrap_or(("self", &body));
            let reply = BackendReply::ok().header("WS-Publish", "room");
            reply.header("WS-Exclude", exclude).body(text)
        }
        _ => BackendReply::ok(),
    })
}

#[test]
fn exclusion_via_the_push_api_and_via_ws_exclude() {
    let backend = chat_backend();
    let server = Wscgi::start(&backend.url(), &[]);
    let (mut a, id_a) = join(&server, &backend, "/a");
    let (mut b, id_b) = join(&server, &backend, "/b");
    let (mut c, id_c) = join(&server, &backend, "/c");
    let path = format!("/channels/room?exclude={id_a},{id_b}");
    let (status, body) = call(&server, "POST", &path, b"for c");
    assert_eq!((status, json_num(&body, "delivered")), (200, 1), "{body}");
    assert_eq!(json_num(&body, "skipped"), 0, "{body}");
    assert_eq!(recv_text(&mut c), "for c");
    // The next message each client reads shows what it did not get before.
    assert_eq!(post(&server, "/channels/room", "for all", 200), 3);
    for cl in [&mut a, &mut b, &mut c] {
        assert_eq!(recv_text(cl), "for all", "the excluded got nothing");
    }

    a.send(Message::text("hi from a")).unwrap();
    assert_eq!(recv_text(&mut b), "hi from a");
    assert_eq!(recv_text(&mut c), "hi from a");
    b.send(Message::text("hi from b")).unwrap();
    assert_eq!(recv_text(&mut a), "hi from b", "a did not hear itself");
    assert_eq!(recv_text(&mut c), "hi from b");

    // `self` mixed with an id.
    let to_b = format!("self, {id_c}|just b");
    a.send(Message::text(to_b)).unwrap();
    assert_eq!(recv_text(&mut b), "just b");
    b.send(Message::text("bye")).unwrap();
    assert_eq!(recv_text(&mut a), "bye", "the sender was excluded");
    assert_eq!(recv_text(&mut c), "bye", "the listed id was excluded");
}

/// Announces joins and leaves in "room"; the user name is the WebSocket path ("/alice").
fn presence_backend() -> TestBackend {
    TestBackend::start(|req| {
        let user = req.header("ws-path").unwrap_or("/?")[1..].to_string();
        let publish = BackendReply::ok().header("WS-Publish", "room");
        match req.event() {
            "open" => publish
                .header("WS-Subscribe", "room")
                .body(format!("{user} joined")),
            "close" => publish.body(format!("{user} left")),
            _ => BackendReply::ok(),
        }
    })
}

#[test]
fn join_and_leave_announcements_come_from_open_and_close_replies() {
    let backend = presence_backend();
    let server = Wscgi::start(&backend.url(), &[]);
    let (mut alice, id_a) = join(&server, &backend, "/alice");
    let own = recv_text(&mut alice);
    assert_eq!(own, "alice joined", "a member hears its own join");
    let (mut bob, id_b) = join(&server, &backend, "/bob");
    assert_eq!(recv_text(&mut bob), "bob joined");
    assert_eq!(recv_text(&mut alice), "bob joined");
    let (_, room) = get(&server, "/channels/room");
    assert_eq!(json_num(&room, "count"), 2, "{room}");
    assert_eq!(json_strs(&room, "members"), sorted(&[&id_a, &id_b]));

    alice.close(None).unwrap();
    let _ = recv_close(&mut alice);
    assert_eq!(recv_text(&mut bob), "alice left");
    let (_, room) = get(&server, "/channels/room");
    assert_eq!(json_strs(&room, "members"), sorted(&[&id_b]), "{room}");
    assert_eq!(json_num(&room, "count"), 1, "{room}");

    drop(bob);
    wait_until(T, "the empty room disappears", || {
        let (_, list) = get(&server, "/channels");
        json_num(&list, "count") == 0 && json_strs(&list, "channels").is_empty()
    });
    assert_eq!(get(&server, "/channels/room").0, 404);
}

#[test]
fn a_slow_consumer_is_closed_with_1008_while_the_others_keep_receiving() {
    // Fill bodies stay under --max-outbuf, so only a backlog can make a send fail.
    const FILL: usize = 48 * 1024;
    const MAX_FILL_SENDS: usize = 32 * 1024 * 1024 / FILL;
    let backend = room_backend();
    let args = ["--max-outbuf", "64K", "--max-message", "1M"];
    let server = Wscgi::start(&backend.url(), &args);
    let mut normal: Vec<Client> = (0..100).map(|_| connect(&server.ws_url("/"))).collect();
    let stalled = stalled_ws(&server, "/stalled");
    let id = open_id(&backend, "/stalled");
    let chunk = vec![b'x'; FILL];
    let send_path = format!("/connections/{id}");
    let mut sends = 0;
    let status = loop {
        assert!(sends < MAX_FILL_SENDS, "{sends} sends never failed");
        let (status, body) = call(&server, "POST", &send_path, &chunk);
        sends += 1;
        if status != 200 {
            assert!(body.contains("\"error\""), "{body}");
            break status;
        }
        let started = Instant::now();
        let tick = format!("tick {sends}");
        assert!(post(&server, "/channels/room", &tick, 200) >= 100);
        for (i, c) in normal.iter_mut().enumerate() {
            assert_eq!(recv_text(c), tick, "client {i}");
        }
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "{tick} took {took:?}");
    };
    assert_eq!(status, 503, "after {sends} sends");
    assert!(sends > 1, "an empty buffer takes a {FILL}-byte message");

    let is_close = |q: &BackendRequest| q.conn_id() == id && q.event() == "close";
    let reqs = backend.wait_for(T, |r| r.iter().any(is_close));
    let close = reqs.into_iter().find(is_close).unwrap();
    assert_eq!(close.header("ws-close-code"), Some("1008"));
    assert_eq!(close.header("ws-close-reason"), Some("slow consumer"));
    let delivered = post(&server, "/channels/room", "after", 200);
    assert_eq!(delivered, 100, "it left the room");
    for c in normal.iter_mut() {
        assert_eq!(recv_text(c), "after");
    }
    let m = metrics(&server);
    assert_eq!(sample(&m, "wscgi_slow_consumer_closes_total"), 1);
    drop(stalled);
}

#[test]
fn a_message_larger_than_max_outbuf_reaches_a_client_that_keeps_up() {
    let backend = room_backend();
    let server = Wscgi::start(&backend.url(), &["--max-outbuf", "64K"]);
    let (mut client, id) = join(&server, &backend, "/big");
    let big = "y".repeat(256 * 1024);
    let path = format!("/connections/{id}");
    let (status, body) = call(&server, "POST", &path, big.as_bytes());
    assert_eq!(status, 200, "{body}");
    assert_eq!(recv_text(&mut client), big);
}

#[test]
fn push_api_membership_publish_broadcast_and_presence() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let (mut a, id_a) = join(&server, &backend, "/chat/a?x=1");
    let (mut b, id_b) = join(&server, &backend, "/chat/b");
    let (mut c, id_c) = join(&server, &backend, "/other");
    assert_eq!(json_num(&get(&server, "/channels").1, "count"), 0);
    assert_eq!(member(&server, "PUT", "room", &id_a), 200);
    assert_eq!(member(&server, "PUT", "room", &id_b), 200);
    let (_, list) = get(&server, "/channels");
    assert_eq!(json_num(&list, "count"), 1, "{list}");
    assert!(list.contains(r#"{"name":"room","members":2}"#), "{list}");
    let (_, room) = get(&server, "/channels/room");
    assert!(room.contains(r#""name":"room""#), "{room}");
    assert_eq!(json_num(&room, "count"), 2, "{room}");
    assert_eq!(json_strs(&room, "members"), sorted(&[&id_a, &id_b]));
    let (_, members) = get(&server, "/connections?channel=room");
    assert_eq!(json_num(&members, "count"), 2, "{members}");
    assert_eq!(json_strs(&members, "connections"), sorted(&[&id_a, &id_b]));
    assert_eq!(json_num(&get(&server, "/connections").1, "count"), 3);
    let channels_of =
        |id: &str| json_strs(&get(&server, &format!("/connections/{id}")).1, "channels");
    assert_eq!(channels_of(&id_a), ["room"]);
    assert!(channels_of(&id_c).is_empty());

    // Raw text, a form's data field, binary, and JSON passed through as text.
    let json = r#"{"text":"h\u00e9llo","n":[1,2]}"#;
    let bodies: [(&str, &[u8]); 4] = [
        ("text/plain", b"hello room"),
        ("application/x-www-form-urlencoded", b"x=1&data=hi+there%21"),
        ("application/octet-stream", &[0, 1, 2, 255]),
        ("application/json", json.as_bytes()),
    ];
    for (ctype, body) in bodies {
        let headers = [("Content-Type", ctype)];
        let resp = http(server.push_addr, "POST", "/channels/room", &headers, body);
        let answer = resp.body_str();
        assert_eq!(resp.status, 200, "{ctype}: {answer}");
        assert_eq!(json_num(&answer, "delivered"), 2, "{answer}");
        assert!(answer.contains(r#""channel":"room""#) && answer.contains(r#""ok":true"#));
    }
    for cl in [&mut a, &mut b] {
        assert_eq!(recv_text(cl), "hello room");
        assert_eq!(recv_text(cl), "hi there!");
        assert_eq!(recv_binary(cl), [0, 1, 2, 255]);
        assert_eq!(recv_text(cl), json);
    }

    assert_eq!(member(&server, "DELETE", "room", &id_b), 200);
    assert_eq!(
        member(&server, "DELETE", "room", &id_b),
        404,
        "not a member"
    );
    assert_eq!(post(&server, "/channels/room", "only a", 200), 1);
    assert_eq!(recv_text(&mut a), "only a");
    post(&server, "/channels/nobody", "lost", 404);
    assert_eq!(get(&server, "/channels/nobody").0, 404);

    // Broadcast: by path prefix (the query is not part of the path), to all, with exclusions.
    assert_eq!(post(&server, "/broadcast?path=/chat", "to chat", 200), 2);
    post(&server, "/broadcast?path=/chat/a%3Fx", "query", 404);
    post(&server, "/broadcast?path=/none", "none", 404);
    assert_eq!(post(&server, "/broadcast", "to all", 200), 3);
    let path = format!("/broadcast?exclude={id_a}&exclude={id_b}");
    assert_eq!(post(&server, &path, "just c", 200), 1);
    assert_eq!(post(&server, "/broadcast", "last", 200), 3);
    for cl in [&mut a, &mut b] {
        for want in ["to chat", "to all", "last"] {
            assert_eq!(recv_text(cl), want);
        }
    }
    for want in ["to all", "just c", "last"] {
        assert_eq!(recv_text(&mut c), want, "c: no channel, not under /chat");
    }

    // Channel names and the per-connection bound.
    for bad in ["bad%20name", "a,b", &"x".repeat(129)] {
        assert_eq!(member(&server, "PUT", bad, &id_c), 400, "{bad}");
    }
    for i in 0..64 {
        assert_eq!(member(&server, "PUT", &format!("c{i}"), &id_c), 200, "{i}");
    }
    let status = member(&server, "PUT", "c64", &id_c);
    assert!((400..500).contains(&status), "a 65th channel: {status}");
    assert_eq!(channels_of(&id_c).len(), 64);
}

#[test]
fn metrics_count_connections_events_and_fanout() {
    let backend = room_backend();
    let server = Wscgi::start(&backend.url(), &[]);
    let (mut a, id_a) = join(&server, &backend, "/a");
    let (mut b, _) = join(&server, &backend, "/b");
    for n in 0..3 {
        a.send(Message::text(n.to_string())).unwrap();
        assert_eq!(recv_text(&mut a), n.to_string());
    }
    assert_eq!(post(&server, "/channels/room", "news", 200), 2);
    assert_eq!(post(&server, "/broadcast", "all", 200), 2);
    for cl in [&mut a, &mut b] {
        assert_eq!(recv_text(cl), "news");
        assert_eq!(recv_text(cl), "all");
    }
    let m = metrics(&server);
    let expected = [
        ("wscgi_connections_open", 2),
        ("wscgi_connections_accepted_total", 2),
        ("wscgi_backend_events_total{event=\"open\"}", 2),
        ("wscgi_backend_events_total{event=\"message\"}", 3),
        ("wscgi_backend_events_total{event=\"close\"}", 0),
        ("wscgi_published_total", 2),
        ("wscgi_publish_deliveries_total", 4),
        ("wscgi_messages_received_total", 3),
        ("wscgi_messages_sent_total", 3 + 4),
        ("wscgi_slow_consumer_closes_total", 0),
        ("wscgi_channels", 1),
    ];
    for (name, value) in expected {
        assert_eq!(sample(&m, name), value, "{name}");
    }
    let hist = "wscgi_backend_request_duration_seconds";
    let count = sample(&m, &format!("{hist}_count"));
    assert!(count >= 5, "two opens and three messages timed: {count}");
    assert_eq!(sample(&m, &format!("{hist}_bucket{{le=\"+Inf\"}}")), count);
    let ten = sample(&m, &format!("{hist}_bucket{{le=\"10\"}}"));
    assert!(sample(&m, &format!("{hist}_bucket{{le=\"0.001\"}}")) <= ten && ten <= count);

    // A closed connection's traffic still counts.
    a.close(None).unwrap();
    let _ = recv_close(&mut a);
    drop(a);
    let closed = |q: &BackendRequest| q.conn_id() == id_a && q.event() == "close";
    backend.wait_for(T, |r| r.iter().any(closed));
    wait_until(T, "a's close is counted and a is gone", || {
        let m = metrics(&server);
        sample(&m, "wscgi_connections_open") == 1
            && sample(&m, "wscgi_backend_events_total{event=\"close\"}") == 1
            && sample(&m, "wscgi_connections") == 1
    });
    let m = metrics(&server);
    assert_eq!(sample(&m, "wscgi_messages_received_total"), 3);
    assert_eq!(sample(&m, "wscgi_messages_sent_total"), 7);
    assert_eq!(sample(&m, "wscgi_connections_accepted_total"), 2);
}

#[test]
fn the_reset_event_is_counted_like_every_other_event() {
    let backend = room_backend();
    let server = Wscgi::start(&backend.url(), &[]);
    let _client = join(&server, &backend, "/a");
    let m = metrics(&server);
    assert_eq!(sample(&m, "wscgi_backend_events_total{event=\"reset\"}"), 1);
    let timed = sample(&m, "wscgi_backend_request_duration_seconds_count");
    assert_eq!(timed, 2, "reset and open were both delivered");
}

//! Channels and fan-out: reply-driven subscribe/publish/exclude, the push API's channel,
//! broadcast and presence endpoints, and slow consumers. (The fan-out metrics: metrics.rs.)

mod support;

use std::time::{Duration, Instant};

use support::rooms::*;
use support::*;
use tungstenite::Message;

const T: Duration = Duration::from_secs(10);

/// Over 256 subscribers: on a machine with more than one core, a publish is written by several
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
    let stalled = raw_ws(&server, "/stalled");
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

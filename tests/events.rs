//! The wire protocol towards the backend: what each event carries, and how replies steer wscgi.

mod support;

use std::time::Duration;

use support::*;
use tungstenite::Message;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

const T: Duration = Duration::from_secs(5);

#[test]
fn open_message_close_carry_the_protocol_headers() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let url = server.ws_url("/chat?room=5");
    let mut client = connect_with(
        &url,
        &[("Cookie", "PHPSESSID=abc"), ("X-Secret", "not passed")],
    );
    client.send(Message::text("hello")).unwrap();
    assert_eq!(recv_text(&mut client), "hello");
    let bye = CloseFrame {
        code: CloseCode::Normal,
        reason: "done".into(),
    };
    client.close(Some(bye)).unwrap();
    let _ = recv_close(&mut client);

    let reqs = backend.wait_for(T, |r| r.iter().any(|q| q.event() == "close"));
    let reset = &reqs[0];
    assert_eq!(reset.event(), "reset", "reset comes before anything else");
    let boot = reset.header("ws-boot-id").unwrap().to_string();
    assert_eq!(boot.len(), 22);

    let events: Vec<_> = reqs.iter().filter(|r| r.event() != "reset").collect();
    let names: Vec<&str> = events.iter().map(|r| r.event()).collect();
    assert_eq!(names, ["open", "message", "close"]);
    let id = events[0].conn_id().to_string();
    assert_eq!(id.len(), 22, "128 random bits as URL-safe base64");
    for (seq, req) in events.iter().enumerate() {
        assert_eq!(req.method, "POST");
        assert_eq!(req.target, "/ws?room=5", "the query string is appended");
        assert_eq!(req.conn_id(), id);
        assert_eq!(req.seq(), seq as u64);
        assert_eq!(req.header("ws-boot-id"), Some(boot.as_str()));
        assert_eq!(req.header("ws-path"), Some("/chat?room=5"));
        assert!(
            req.header("ws-remote-addr")
                .unwrap()
                .starts_with("127.0.0.1:")
        );
        assert_eq!(
            req.header("cookie"),
            Some("PHPSESSID=abc"),
            "cookies reach every event"
        );
        assert_eq!(
            req.header("x-secret"),
            None,
            "only --pass-header headers are passed"
        );
    }
    let msg = events[1];
    assert_eq!(msg.header("ws-message-type"), Some("text"));
    assert_eq!(
        msg.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(msg.body_str(), "hello");
    let close = events[2];
    assert_eq!(close.header("ws-close-code"), Some("1000"));
    assert_eq!(close.header("ws-close-reason"), Some("done"));
}

#[test]
fn binary_messages_and_binary_replies() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let mut client = connect(&server.ws_url("/"));
    let data: Vec<u8> = (0..=255).collect();
    client.send(Message::binary(data.clone())).unwrap();
    assert_eq!(recv_binary(&mut client), data);
    let reqs = backend.wait_for(T, |r| r.iter().any(|q| q.event() == "message"));
    let msg = reqs.iter().find(|q| q.event() == "message").unwrap();
    assert_eq!(msg.header("ws-message-type"), Some("binary"));
    assert_eq!(msg.header("content-type"), Some("application/octet-stream"));
    assert_eq!(msg.body, data);
}

#[test]
fn open_reply_can_reject_with_status_and_body() {
    let backend = TestBackend::start(|req| match req.event() {
        "open" => BackendReply::ok()
            .status(403)
            .header("Content-Type", "text/plain")
            .body("go away"),
        _ => BackendReply::ok(),
    });
    let server = Wscgi::start(&backend.url(), &[]);
    match try_connect_with(&server.ws_url("/"), &[]) {
        Err(tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 403);
            assert_eq!(resp.body().as_deref(), Some(&b"go away"[..]));
        }
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    std::thread::sleep(Duration::from_millis(200));
    let events = backend.event_names();
    assert_eq!(
        events,
        ["reset", "open"],
        "a rejected open fires no close event"
    );
}

#[test]
fn open_reply_body_is_a_first_message_and_selects_a_subprotocol() {
    let backend = TestBackend::start(|req| match req.event() {
        "open" => BackendReply::ok()
            .header("WS-Protocol", "chat.v2")
            .body("welcome"),
        _ => BackendReply::ok(),
    });
    let server = Wscgi::start(&backend.url(), &[]);
    let mut client = connect_with(
        &server.ws_url("/"),
        &[("Sec-WebSocket-Protocol", "chat.v1, chat.v2")],
    );
    assert_eq!(recv_text(&mut client), "welcome");
}

#[test]
fn metadata_set_by_a_reply_reaches_later_events() {
    let backend = TestBackend::start(|req| match req.event() {
        "open" => BackendReply::ok().header("WS-Set-Meta-User", "alice"),
        "message" if req.body_str() == "forget" => {
            BackendReply::ok().header("WS-Set-Meta-User", "")
        }
        _ => BackendReply::ok(),
    });
    let server = Wscgi::start(&backend.url(), &[]);
    let mut client = connect(&server.ws_url("/"));
    client.send(Message::text("one")).unwrap();
    client.send(Message::text("forget")).unwrap();
    client.send(Message::text("two")).unwrap();
    let reqs = backend.wait_for(T, |r| {
        r.iter().filter(|q| q.event() == "message").count() == 3
    });
    let msgs: Vec<_> = reqs.iter().filter(|q| q.event() == "message").collect();
    assert_eq!(msgs[0].header("ws-meta-user"), Some("alice"));
    assert_eq!(msgs[1].header("ws-meta-user"), Some("alice"));
    assert_eq!(
        msgs[2].header("ws-meta-user"),
        None,
        "an empty value deletes"
    );
}

#[test]
fn an_empty_body_is_a_message_only_with_ws_send_empty() {
    // Messages starting with "quiet" get an empty 200 (nothing to send); others an empty
    // body marked `WS-Send-Empty: 1` (an empty message), binary when asked.
    let backend = TestBackend::start(|req| match req.event() {
        "message" if req.body.starts_with(b"quiet") => BackendReply::ok(),
        "message" if req.body == b"bin" => BackendReply::ok()
            .header("WS-Send-Empty", "1")
            .header("Content-Type", "application/octet-stream"),
        "message" => BackendReply::ok().header("WS-Send-Empty", "1"),
        _ => BackendReply::ok(),
    });
    let server = Wscgi::start(&backend.url(), &[]);
    let mut client = connect(&server.ws_url("/"));
    client.send(Message::text("quiet")).unwrap();
    client.send(Message::text("")).unwrap();
    assert_eq!(
        recv_text(&mut client),
        "",
        "the quiet message got nothing, then ''"
    );
    client.send(Message::text("bin")).unwrap();
    assert_eq!(recv_binary(&mut client), b"");
    client.send(Message::text("quiet again")).unwrap();
    client.send(Message::text("x")).unwrap();
    assert_eq!(
        recv_text(&mut client),
        "",
        "only the marked reply is a message"
    );
}

#[test]
fn ws_close_reply_closes_after_sending_the_body() {
    let backend = TestBackend::start(|req| match req.event() {
        "message" => BackendReply::ok()
            .header("WS-Close", "4001 kicked out")
            .body("bye"),
        _ => BackendReply::ok(),
    });
    let server = Wscgi::start(&backend.url(), &[]);
    let mut client = connect(&server.ws_url("/"));
    client.send(Message::text("hi")).unwrap();
    assert_eq!(recv_text(&mut client), "bye");
    let frame = recv_close(&mut client).expect("a close frame");
    assert_eq!(u16::from(frame.code), 4001);
    assert_eq!(frame.reason.as_str(), "kicked out");
    let reqs = backend.wait_for(T, |r| r.iter().any(|q| q.event() == "close"));
    let close = reqs.iter().find(|q| q.event() == "close").unwrap();
    assert_eq!(close.header("ws-close-code"), Some("4001"));
    assert_eq!(close.header("ws-close-reason"), Some("kicked out"));
}

#[test]
fn event_format_form_puts_the_fields_in_the_body() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &["--event-format", "form"]);
    let mut client = connect(&server.ws_url("/f?x=1"));
    client.send(Message::text("a b&c")).unwrap();
    let reqs = backend.wait_for(T, |r| r.iter().any(|q| q.event() == "message"));
    let msg = reqs.iter().find(|q| q.event() == "message").unwrap();
    assert_eq!(
        msg.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let body = msg.body_str();
    assert!(body.starts_with("event=message&"), "{body}");
    assert!(body.contains("&data=a+b%26c"), "{body}");
    assert!(body.contains("&type=text"), "{body}");
    assert!(body.contains(&format!("&id={}", msg.conn_id())), "{body}");
    assert!(body.contains("&path=%2Ff%3Fx%3D1"), "{body}");
}

#[test]
fn ids_are_unique_per_connection() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let clients: Vec<_> = (0..5).map(|_| connect(&server.ws_url("/"))).collect();
    let reqs = backend.wait_for(T, |r| r.iter().filter(|q| q.event() == "open").count() == 5);
    let mut ids: Vec<&str> = reqs
        .iter()
        .filter(|q| q.event() == "open")
        .map(|q| q.conn_id())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5);
    drop(clients);
}

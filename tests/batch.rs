//! `POST /batch`: several push-API operations in one request, applied in order, one result each.

mod support;

use std::time::Duration;

use support::*;
use tungstenite::Message;

const T: Duration = Duration::from_secs(5);

fn open_ids(backend: &TestBackend, n: usize) -> Vec<String> {
    let reqs = backend.wait_for(T, |r| r.iter().filter(|q| q.event() == "open").count() == n);
    reqs.iter()
        .filter(|q| q.event() == "open")
        .map(|q| q.conn_id().to_string())
        .collect()
}

#[test]
fn operations_apply_in_order_with_one_result_each() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let mut a = connect(&server.ws_url("/"));
    let ida = open_ids(&backend, 1).remove(0);
    let mut b = connect(&server.ws_url("/"));
    let idb = open_ids(&backend, 2).remove(1);
    let body = format!(
        r#"[
        {{"op":"subscribe","id":"{ida}","channel":"room"}},
        {{"op":"subscribe","id":"{idb}","channel":"room"}},
        {{"op":"send","id":"{ida}","data":"just a"}},
        {{"op":"send","id":"{idb}","base64":"AAEC"}},
        {{"op":"publish","channel":"room","data":"to all but b","exclude":["{idb}"]}},
        {{"op":"unsubscribe","id":"{ida}","channel":"room"}},
        {{"op":"publish","channel":"room","data":"to b only"}},
        {{"op":"send","id":"nobody","data":"x"}},
        {{"op":"frobnicate"}},
        {{"op":"close","id":"{ida}","code":4001,"reason":"done"}}
    ]"#
    );
    let resp = http(
        server.push_addr,
        "POST",
        "/batch",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(resp.status, 200, "{}", resp.body_str());
    let text = resp.body_str();
    let statuses: Vec<&str> = text
        .match_indices("{\"status\":")
        .map(|(i, _)| &text[i + 10..i + 13])
        .collect();
    assert_eq!(
        statuses,
        [
            "200", "200", "200", "200", "200", "200", "200", "404", "400", "200"
        ],
        "{text}"
    );
    assert!(text.contains("unknown op"), "{text}");

    assert_eq!(recv_text(&mut a), "just a");
    assert_eq!(recv_text(&mut a), "to all but b");
    let frame = recv_close(&mut a).expect("close frame");
    assert_eq!(u16::from(frame.code), 4001);
    assert_eq!(recv_binary(&mut b), [0, 1, 2]);
    assert_eq!(recv_text(&mut b), "to b only");
    b.send(Message::text("still open")).unwrap();
    assert_eq!(recv_text(&mut b), "still open");
}

#[test]
fn a_body_that_is_not_a_json_array_is_400() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    for body in [&b"{}"[..], b"[1,", b"not json", b""] {
        let resp = http(server.push_addr, "POST", "/batch", &[], body);
        assert_eq!(
            resp.status,
            400,
            "{:?}: {}",
            String::from_utf8_lossy(body),
            resp.body_str()
        );
        assert!(resp.body_str().contains("\"error\""));
    }
    let get = http(server.push_addr, "GET", "/batch", &[], b"");
    assert_eq!(get.status, 405);
}

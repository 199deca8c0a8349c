//! Helpers for tests of channels and fan-out (tests/channels.rs, tests/metrics.rs), used as
//! `support::rooms::*`: a backend that puts every client in "room", joining, and push-API
//! calls with their JSON answers picked apart.

use std::time::Duration;

use super::backend::{BackendReply, BackendRequest, TestBackend};
use super::client::{Client, connect};
use super::http_client::http;
use super::server::Wscgi;

const T: Duration = Duration::from_secs(10);

/// Every client joins "room" at open; messages are echoed.
pub fn room_backend() -> TestBackend {
    TestBackend::start(|req| match req.event() {
        "open" => BackendReply::ok().header("WS-Subscribe", "room"),
        "message" => BackendReply::ok().body(req.body.clone()),
        _ => BackendReply::ok(),
    })
}

/// Connects on `path` (unique within a test) and returns the client and its connection id.
pub fn join(server: &Wscgi, backend: &TestBackend, path: &str) -> (Client, String) {
    let client = connect(&server.ws_url(path));
    (client, open_id(backend, path))
}

/// The id of the connection opened on `path`.
pub fn open_id(backend: &TestBackend, path: &str) -> String {
    let is_it = |q: &BackendRequest| q.event() == "open" && q.header("ws-path") == Some(path);
    let reqs = backend.wait_for(T, |r| r.iter().any(is_it));
    reqs.into_iter().find(is_it).unwrap().conn_id().to_string()
}

/// One push-API call; returns status and body.
pub fn call(server: &Wscgi, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let resp = http(server.push_addr, method, path, &[], body);
    (resp.status, resp.body_str())
}

pub fn get(server: &Wscgi, path: &str) -> (u16, String) {
    call(server, "GET", path, b"")
}

/// `PUT` (join) or `DELETE` (leave) `channel` for connection `id`; returns the status.
pub fn member(server: &Wscgi, method: &str, channel: &str, id: &str) -> u16 {
    let path = format!("/channels/{channel}/connections/{id}");
    call(server, method, &path, b"").0
}

/// POSTs raw text to `path`, expects `status` and returns the answer's `delivered`.
pub fn post(server: &Wscgi, path: &str, text: &str, status: u16) -> u64 {
    let (got, body) = call(server, "POST", path, text.as_bytes());
    assert_eq!(got, status, "POST {path}: {body}");
    if status == 404 {
        assert!(body.contains("\"error\""), "404 names an error: {body}");
    }
    json_num(&body, "delivered")
}

/// The number after `"key":` in a JSON answer.
pub fn json_num(body: &str, key: &str) -> u64 {
    let rest = body.split(&format!("\"{key}\":")).nth(1);
    let rest = rest.unwrap_or_else(|| panic!("no {key} in {body}"));
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| panic!("{key} in {body}"))
}

/// The strings of the array `"key":[...]`, sorted (ids and names need no unescaping).
pub fn json_strs(body: &str, key: &str) -> Vec<String> {
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

pub fn sorted(ids: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

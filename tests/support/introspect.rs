//! What the push API tells a test about the server under test: `/metrics` samples, the worker
//! queue from `/healthz`, and a connection's events waiting (`GET /connections/{id}`).

use super::http_client::http;
use super::server::Wscgi;

/// `GET /metrics`, checking its content type.
pub fn metrics(server: &Wscgi) -> String {
    let resp = http(server.push_addr, "GET", "/metrics", &[], b"");
    assert_eq!(resp.status, 200);
    let ctype = resp.header("content-type").unwrap_or("");
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    resp.body_str()
}

/// The value of the sample named exactly `name` (labels included) in `/metrics` text.
pub fn sample(text: &str, name: &str) -> u64 {
    let mut lines = text.lines();
    let value = lines.find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok());
    value.unwrap_or_else(|| panic!("no integer sample {name} in:\n{text}"))
}

/// One sample, read now.
pub fn metric(server: &Wscgi, name: &str) -> u64 {
    sample(&metrics(server), name)
}

/// Jobs waiting for a worker (`queued_events` in `/healthz`).
pub fn queued_jobs(server: &Wscgi) -> usize {
    let body = http(server.push_addr, "GET", "/healthz", &[], b"").body_str();
    number_after(&body, "queued_events")
}

/// Events connection `id` has read but not sent to the backend yet.
pub fn pending_events(server: &Wscgi, id: &str) -> usize {
    let info = http(
        server.push_addr,
        "GET",
        &format!("/connections/{id}"),
        &[],
        b"",
    );
    let body = info.body_str();
    assert_eq!(info.status, 200, "{body}");
    number_after(&body, "pending_events")
}

fn number_after(body: &str, key: &str) -> usize {
    let field = body.split(&format!("\"{key}\":")).nth(1).unwrap_or("");
    let end = field.find(|c: char| !c.is_ascii_digit()).unwrap_or(0);
    let n = field[..end].parse();
    n.unwrap_or_else(|_| panic!("no {key} in {body}"))
}

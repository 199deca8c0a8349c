//! The request every backend kind sends for one event: query, headers, body.
//!
//! Pure, and shared: the HTTP backend sends these as they are; CGI and FastCGI turn the same
//! headers into `HTTP_*` variables. The header set is the wire protocol documented in README.

use std::borrow::Cow;

use tungstenite::Bytes;

use crate::config::EventFormat;
use crate::events::{Event, EventKind};

/// One event, ready to send. It borrows what it can from the event: most events allocate
/// only their sequence number's text.
#[derive(Debug, Clone)]
pub struct BackendRequest<'a> {
    /// The WebSocket URL's query string, to append to the backend URL (may be empty).
    pub query: &'a str,
    /// The WebSocket path (no query); empty for `reset`. CGI derives `PATH_INFO` from it.
    pub path: &'a str,
    /// The client's address; `None` for `reset`.
    pub remote: Option<std::net::SocketAddr>,
    /// Header names as documented (`WS-Event`, ...); passed client headers keep lowercase names.
    pub headers: Vec<(Cow<'a, str>, Cow<'a, [u8]>)>,
    pub content_type: Option<&'static str>,
    pub body: Bytes,
}

pub const TEXT: &str = "text/plain; charset=utf-8";
pub const BINARY: &str = "application/octet-stream";
pub const FORM: &str = "application/x-www-form-urlencoded";

pub fn build(event: &Event, format: EventFormat) -> BackendRequest<'_> {
    let fields = fields(event);
    let (content_type, body) = match (format, &event.kind) {
        (EventFormat::Form, _) => (Some(FORM), Bytes::from(form_body(event, &fields))),
        (EventFormat::Headers, EventKind::Message { data, binary }) => {
            (Some(if *binary { BINARY } else { TEXT }), data.clone())
        }
        (EventFormat::Headers, _) => (None, Bytes::new()),
    };
    let passed = event.conn.as_ref().map_or(0, |c| c.headers.len());
    let mut headers = Vec::with_capacity(fields.len() + passed + event.meta.len() + 2);
    for (name, value) in fields {
        headers.push((Cow::Borrowed(name), header_safe(value)));
    }
    if let Some(conn) = &event.conn {
        for (name, value) in &conn.headers {
            headers.push((
                Cow::Borrowed(name.as_str()),
                Cow::Borrowed(value.as_bytes()),
            ));
        }
    }
    for (name, value) in &event.meta {
        let name = Cow::Owned(format!("WS-Meta-{name}"));
        headers.push((name, header_safe(Cow::Borrowed(value.as_bytes()))));
    }
    BackendRequest {
        query: event.conn.as_ref().map_or("", |c| c.query()),
        path: event.conn.as_ref().map_or("", |c| c.path()),
        remote: event.conn.as_ref().map(|c| c.remote),
        headers,
        content_type,
        body,
    }
}

/// The protocol fields as (header name, value).
fn fields(event: &Event) -> Vec<(&'static str, Cow<'_, [u8]>)> {
    let mut f: Vec<(&'static str, Cow<'_, [u8]>)> = Vec::with_capacity(8);
    let text = |s: &'static str| Cow::Borrowed(s.as_bytes());
    f.push(("WS-Event", text(event.kind.name().as_str())));
    f.push(("WS-Boot-Id", Cow::Borrowed(event.boot_id.as_bytes())));
    if let Some(conn) = &event.conn {
        f.push(("WS-Connection-Id", Cow::Borrowed(conn.id.as_bytes())));
        f.push(("WS-Seq", Cow::Owned(event.seq.to_string().into_bytes())));
        f.push(("WS-Path", Cow::Borrowed(conn.target.as_bytes())));
        f.push(("WS-Remote-Addr", Cow::Borrowed(conn.remote_text.as_bytes())));
    }
    match &event.kind {
        EventKind::Message { binary, .. } => {
            f.push((
                "WS-Message-Type",
                text(if *binary { "binary" } else { "text" }),
            ));
        }
        EventKind::Close { code, reason } => {
            f.push(("WS-Close-Code", Cow::Owned(code.to_string().into_bytes())));
            f.push(("WS-Close-Reason", Cow::Borrowed(reason.as_bytes())));
        }
        EventKind::Open | EventKind::Resume | EventKind::Reset => {}
    }
    f
}

/// The form body of `--event-format form`: the same fields under short names.
fn form_body(event: &Event, fields: &[(&'static str, Cow<'_, [u8]>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        let key = match *name {
            "WS-Event" => "event",
            "WS-Boot-Id" => "boot",
            "WS-Connection-Id" => "id",
            "WS-Seq" => "seq",
            "WS-Path" => "path",
            "WS-Remote-Addr" => "remote",
            "WS-Message-Type" => "type",
            "WS-Close-Code" => "code",
            "WS-Close-Reason" => "reason",
            _ => continue,
        };
        push_pair(&mut out, key.as_bytes(), value);
    }
    if let EventKind::Message { data, .. } = &event.kind {
        push_pair(&mut out, b"data", data);
    }
    for (name, value) in &event.meta {
        push_pair(
            &mut out,
            format!("meta[{name}]").as_bytes(),
            value.as_bytes(),
        );
    }
    out
}

fn push_pair(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    if !out.is_empty() {
        out.push(b'&');
    }
    form_encode_into(out, key);
    out.push(b'=');
    form_encode_into(out, value);
}

/// `application/x-www-form-urlencoded`: unreserved bytes as they are, space as `+`, others `%XX`.
pub fn form_encode_into(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(b),
            b' ' => out.push(b'+'),
            _ => out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]),
        }
    }
}

/// Header values may not hold control characters; a close reason or a meta value may. A clean
/// value is not copied.
fn header_safe(value: Cow<'_, [u8]>) -> Cow<'_, [u8]> {
    let unsafe_byte = |b: &u8| *b < 0x20 || *b == 0x7f;
    if !value.iter().any(unsafe_byte) {
        return value;
    }
    let mut value = value.into_owned();
    for b in &mut value {
        if unsafe_byte(b) {
            *b = b' ';
        }
    }
    Cow::Owned(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::ConnInfo;
    use std::sync::Arc;

    fn event(kind: EventKind) -> Event {
        let conn = ConnInfo {
            id: "abc".into(),
            target: "/chat?room=5".into(),
            remote_text: "127.0.0.1:5000".into(),
            remote: "127.0.0.1:5000".parse().unwrap(),
            route: 0,
            headers: vec![("cookie".into(), "PHPSESSID=1".into())],
            connected_at: std::time::SystemTime::now(),
        };
        Event {
            kind,
            conn: Some(Arc::new(conn)),
            seq: 3,
            meta: vec![("user".into(), "al ice".into())],
            boot_id: Arc::from("boot"),
        }
    }

    fn header<'a>(req: &'a BackendRequest, name: &str) -> &'a [u8] {
        req.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| &v[..])
            .unwrap()
    }

    #[test]
    fn message_as_headers() {
        let message = event(EventKind::Message {
            data: Bytes::from_static(b"hi"),
            binary: false,
        });
        let req = build(&message, EventFormat::Headers);
        assert_eq!(req.query, "room=5");
        assert_eq!(header(&req, "WS-Event"), b"message");
        assert_eq!(header(&req, "WS-Seq"), b"3");
        assert_eq!(header(&req, "WS-Path"), b"/chat?room=5");
        assert_eq!(header(&req, "WS-Message-Type"), b"text");
        assert_eq!(header(&req, "WS-Remote-Addr"), b"127.0.0.1:5000");
        assert_eq!(header(&req, "cookie"), b"PHPSESSID=1");
        assert_eq!(header(&req, "WS-Meta-user"), b"al ice");
        assert_eq!(req.content_type, Some(TEXT));
        assert_eq!(&req.body[..], b"hi");
    }

    #[test]
    fn close_as_form() {
        let kind = EventKind::Close {
            code: 1001,
            reason: "bye\nnow".into(),
        };
        let close = event(kind);
        let req = build(&close, EventFormat::Form);
        assert_eq!(header(&req, "WS-Close-Reason"), b"bye now");
        let body = String::from_utf8(req.body.to_vec()).unwrap();
        assert_eq!(
            body,
            "event=close&boot=boot&id=abc&seq=3&path=%2Fchat%3Froom%3D5&remote=127.0.0.1%3A5000\
             &code=1001&reason=bye%0Anow&meta%5Buser%5D=al+ice"
        );
    }
}

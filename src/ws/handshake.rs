//! The WebSocket opening handshake (RFC 6455 §4.2): parsing the client's
//! upgrade request, computing `Sec-WebSocket-Accept`, and encoding the 101
//! response or the error response that ends the connection. No I/O here.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};
use std::fmt;

use crate::headers::{self, has_token, httparse_reason, values};

/// Largest accepted head: request line + headers + blank line.
pub const MAX_HEAD: usize = 8192;
pub const MAX_HEADERS: usize = 64;

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

#[derive(Debug, Clone)]
pub struct Upgrade {
    /// Request target as sent (origin-form: starts with '/').
    pub target: String,
    /// Sec-WebSocket-Key, validated to decode to 16 bytes.
    pub key: String,
    /// Sec-WebSocket-Protocol offers from all such headers, in order.
    pub protocols: Vec<String>,
    /// Every header: name lowercased, value as lossy UTF-8.
    pub headers: Vec<(String, String)>,
}

impl Upgrade {
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        headers::first(&self.headers, name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    HeadTooLarge,
    TooManyHeaders,
    Malformed(&'static str),
    MethodNotAllowed,
    BadTarget,
    MissingHost,
    MissingKey,
    BadKey,
    /// A plain HTTP request: no `Upgrade: websocket`.
    NotUpgrade,
    MissingConnectionUpgrade,
    UnsupportedVersion,
    OldHttpVersion,
}

impl HandshakeError {
    pub fn status(&self) -> u16 {
        match self {
            Self::HeadTooLarge | Self::TooManyHeaders => 431,
            Self::MethodNotAllowed => 405,
            Self::NotUpgrade | Self::UnsupportedVersion => 426,
            Self::Malformed(_)
            | Self::BadTarget
            | Self::MissingHost
            | Self::MissingKey
            | Self::BadKey
            | Self::MissingConnectionUpgrade
            | Self::OldHttpVersion => 400,
        }
    }

    pub fn reason(&self) -> &'static str {
        status_reason(self.status())
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::HeadTooLarge => "request head too large",
            Self::TooManyHeaders => "too many headers",
            Self::Malformed(what) => what,
            Self::MethodNotAllowed => "method must be GET",
            Self::BadTarget => "bad request target",
            Self::MissingHost => "missing host header",
            Self::MissingKey => "missing sec-websocket-key",
            Self::BadKey => "bad sec-websocket-key",
            Self::NotUpgrade => "websocket upgrade required",
            Self::MissingConnectionUpgrade => "connection header lacks upgrade",
            Self::UnsupportedVersion => "unsupported websocket version",
            Self::OldHttpVersion => "http/1.1 required",
        })
    }
}

impl std::error::Error for HandshakeError {}

/// Parses an upgrade request from the start of `buf`.
///
/// `Ok(None)` means more bytes are needed. On success the `usize` is the head
/// length; bytes after it already belong to the WebSocket stream.
pub fn parse(buf: &[u8]) -> Result<Option<(Upgrade, usize)>, HandshakeError> {
    // Only the first MAX_HEAD bytes may hold the head, whatever was read.
    let window = buf.get(..MAX_HEAD).unwrap_or(buf);
    let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut raw);
    let n = match req.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        // A full window without a complete head can never complete in bounds.
        Ok(httparse::Status::Partial) if window.len() >= MAX_HEAD => {
            return Err(HandshakeError::HeadTooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HandshakeError::TooManyHeaders),
        Err(e) => return Err(HandshakeError::Malformed(httparse_reason(e))),
    };
    let upgrade = validate(&req, headers::from_httparse(req.headers))?;
    Ok(Some((upgrade, n)))
}

/// Applies the RFC 6455 checks in a fixed order so each request maps to one
/// predictable error.
fn validate(
    req: &httparse::Request<'_, '_>,
    headers: Vec<(String, String)>,
) -> Result<Upgrade, HandshakeError> {
    use HandshakeError as E;
    if req.version != Some(1) {
        return Err(E::OldHttpVersion);
    }
    if req.method != Some("GET") {
        return Err(E::MethodNotAllowed);
    }
    let target = req
        .path
        .filter(|p| p.starts_with('/'))
        .ok_or(E::BadTarget)?;
    if !values(&headers, "upgrade").any(|v| has_token(v, "websocket")) {
        return Err(E::NotUpgrade);
    }
    if !values(&headers, "connection").any(|v| has_token(v, "upgrade")) {
        return Err(E::MissingConnectionUpgrade);
    }
    match values(&headers, "host").count() {
        0 => return Err(E::MissingHost),
        1 => {}
        _ => return Err(E::Malformed("duplicate host header")),
    }
    if single(&headers, "sec-websocket-version") != Ok(Some("13")) {
        return Err(E::UnsupportedVersion);
    }
    let key = match single(&headers, "sec-websocket-key") {
        Ok(Some(k)) if valid_key(k) => k.to_owned(),
        Ok(None) => return Err(E::MissingKey),
        _ => return Err(E::BadKey),
    };
    let protocols = values(&headers, "sec-websocket-protocol")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(Upgrade {
        target: target.to_owned(),
        key,
        protocols,
        headers,
    })
}

/// The value of a header that must not repeat; `Err` if it does.
fn single<'a>(headers: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, ()> {
    let mut all = values(headers, name);
    match (all.next(), all.next()) {
        (v, None) => Ok(v),
        _ => Err(()),
    }
}

/// A key is base64 of 16 bytes, which is always exactly 24 characters; the
/// length check also bounds what the decoder allocates.
fn valid_key(key: &str) -> bool {
    key.len() == 24 && STANDARD.decode(key).is_ok_and(|k| k.len() == 16)
}

pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(GUID.as_bytes());
    STANDARD.encode(sha.finalize())
}

/// The 101 response, with the subprotocol and the extensions (`Sec-WebSocket-Extensions`)
/// accepted, if any.
pub fn accept_response(key: &str, protocol: Option<&str>, extensions: Option<&str>) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        accept_key(key)
    );
    if let Some(p) = protocol.filter(|p| header_safe(p)) {
        out.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    if let Some(e) = extensions.filter(|e| header_safe(e)) {
        out.push_str(&format!("Sec-WebSocket-Extensions: {e}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// A complete response that ends the connection. Fields holding CR or LF are
/// not written (see `header_safe`): such extra headers are dropped and such a
/// content type becomes application/octet-stream.
pub fn error_response(
    status: u16,
    content_type: &str,
    extra_headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let content_type = Some(content_type)
        .filter(|t| header_safe(t))
        .unwrap_or("application/octet-stream");
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        status_reason(status),
        body.len()
    );
    let safe = extra_headers
        .iter()
        .filter(|(n, v)| header_safe(n) && header_safe(v));
    for (name, value) in safe {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

/// CR or LF in a header field would let its writer split the response.
fn header_safe(s: &str) -> bool {
    !s.contains(['\r', '\n'])
}

pub fn rejection(err: &HandshakeError) -> Vec<u8> {
    let extra: &[(&str, &str)] = match err {
        HandshakeError::UnsupportedVersion => &[("Sec-WebSocket-Version", "13")],
        HandshakeError::NotUpgrade => &[("Upgrade", "websocket")],
        // RFC 9110 §15.5.6: a 405 must say what is allowed.
        HandshakeError::MethodNotAllowed => &[("Allow", "GET")],
        _ => &[],
    };
    let body = format!("{err}\n");
    error_response(err.status(), "text/plain", extra, body.as_bytes())
}

/// Canonical (RFC 9110) reason phrases; "Unknown" for anything uncommon.
pub fn status_reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests;

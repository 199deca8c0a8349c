//! The push-API request parser: one HTTP/1.1 request (head and
//! Content-Length body) from the front of a keep-alive connection's buffer,
//! plus the x-www-form-urlencoded decoder shared by queries and form bodies.
//! No I/O here; chunked bodies are refused rather than decoded.

use std::fmt;

use crate::headers::{self, httparse_reason};

pub const MAX_HEAD: usize = 8192;
pub const MAX_TARGET: usize = 4096;
pub const MAX_HEADERS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Other,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// Percent-decoded path.
    pub path: String,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// Names lowercased, values as lossy UTF-8.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub keep_alive: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        headers::first(&self.headers, name)
    }

    pub fn query_param(&self, name: &str) -> Option<&str> {
        first(&self.query, name)
    }

    /// Path split on '/', empty segments dropped.
    pub fn path_segments(&self) -> Vec<&str> {
        self.path.split('/').filter(|s| !s.is_empty()).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    HeadTooLarge,
    UriTooLong,
    Malformed(&'static str),
    BadTarget,
    /// POST/PUT without Content-Length, or any Transfer-Encoding.
    LengthRequired,
    BadContentLength,
    BodyTooLarge,
}

impl RequestError {
    pub fn status(&self) -> u16 {
        match self {
            Self::HeadTooLarge => 431,
            Self::UriTooLong => 414,
            Self::Malformed(_) | Self::BadTarget | Self::BadContentLength => 400,
            Self::LengthRequired => 411,
            Self::BodyTooLarge => 413,
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::HeadTooLarge => "request head too large",
            Self::UriTooLong => "request target too long",
            Self::Malformed(what) => what,
            Self::BadTarget => "bad request target",
            Self::LengthRequired => "content-length required",
            Self::BadContentLength => "bad content-length",
            Self::BodyTooLarge => "request body too large",
        })
    }
}

impl std::error::Error for RequestError {}

/// Parses one request from the front of `buf`. `Ok(None)` means more bytes
/// are needed; `Ok(Some((req, n)))` means the request occupies `buf[..n]`.
pub fn parse(buf: &[u8], max_body: usize) -> Result<Option<(Request, usize)>, RequestError> {
    let window = buf.get(..MAX_HEAD).unwrap_or(buf);
    let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut raw);
    let head_len = match req.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return partial(window, req.path),
        // 431 fits: the header section as a whole is too large for us.
        Err(httparse::Error::TooManyHeaders) => return Err(RequestError::HeadTooLarge),
        Err(e) => return Err(RequestError::Malformed(httparse_reason(e))),
    };
    let target = req.path.ok_or(RequestError::Malformed("missing target"))?;
    if target.len() > MAX_TARGET {
        return Err(RequestError::UriTooLong);
    }
    let (path, query) = split_target(target)?;
    let method = method(req.method.unwrap_or(""));
    let headers = headers::from_httparse(req.headers);
    let body_len = body_len(method, &headers, max_body)?;
    // `body_len <= max_body`, but a max_body near usize::MAX could overflow.
    let total = head_len
        .checked_add(body_len)
        .ok_or(RequestError::BodyTooLarge)?;
    let Some(body) = buf.get(head_len..total) else {
        return Ok(None);
    };
    let keep_alive = keep_alive(req.version, &headers);
    let request = Request {
        method,
        path,
        query,
        headers,
        body: body.to_vec(),
        keep_alive,
    };
    Ok(Some((request, total)))
}

/// An incomplete head: wait, unless the window is already full (or the
/// target alone is already over its limit).
fn partial(window: &[u8], path: Option<&str>) -> Result<Option<(Request, usize)>, RequestError> {
    if path.is_some_and(|p| p.len() > MAX_TARGET) {
        Err(RequestError::UriTooLong)
    } else if window.len() < MAX_HEAD {
        Ok(None)
    } else if window.windows(2).any(|w| w == b"\r\n") {
        Err(RequestError::HeadTooLarge)
    } else {
        // Still inside the request line after MAX_HEAD bytes.
        Err(RequestError::UriTooLong)
    }
}

fn method(m: &str) -> Method {
    match m {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        _ => Method::Other,
    }
}

/// Splits an origin-form target into a decoded path and decoded query pairs.
fn split_target(target: &str) -> Result<(String, Vec<(String, String)>), RequestError> {
    if !target.starts_with('/') {
        return Err(RequestError::BadTarget);
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let path = percent_decode(path.as_bytes())
        .and_then(|p| String::from_utf8(p).ok())
        .ok_or(RequestError::BadTarget)?;
    Ok((path, form_decode(query.as_bytes())))
}

/// The body length the head announces, checked against `max_body` before any
/// body byte arrives.
fn body_len(
    method: Method,
    headers: &[(String, String)],
    max_body: usize,
) -> Result<usize, RequestError> {
    if headers::first(headers, "transfer-encoding").is_some() {
        return Err(RequestError::LengthRequired);
    }
    let mut len: Option<usize> = None;
    // Identical duplicates (also as a list, "5, 5") are allowed; others conflict.
    let items = headers::values(headers, "content-length").flat_map(|v| v.split(','));
    for item in items {
        let n = parse_length(item.trim())?;
        if len.is_some_and(|l| l != n) {
            return Err(RequestError::BadContentLength);
        }
        len = Some(n);
    }
    match (len, method) {
        (Some(n), _) if n > max_body => Err(RequestError::BodyTooLarge),
        (Some(n), _) => Ok(n),
        (None, Method::Post | Method::Put) => Err(RequestError::LengthRequired),
        (None, _) => Ok(0),
    }
}

/// Digits only (no sign, no spaces); a numeric value too big for usize is
/// simply too large.
fn parse_length(s: &str) -> Result<usize, RequestError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RequestError::BadContentLength);
    }
    s.parse().map_err(|_| RequestError::BodyTooLarge)
}

fn keep_alive(version: Option<u8>, headers: &[(String, String)]) -> bool {
    let conn =
        |token: &str| headers::values(headers, "connection").any(|v| headers::has_token(v, token));
    match version {
        Some(1) => !conn("close"),
        _ => conn("keep-alive"),
    }
}

fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// x-www-form-urlencoded pairs: split on '&', then at the first '='; '+' is
/// a space; a broken escape is kept literally, as browsers do.
pub fn form_decode(s: &[u8]) -> Vec<(String, String)> {
    s.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut kv = pair.splitn(2, |&b| b == b'=');
            let k = kv.next().unwrap_or_default();
            let v = kv.next().unwrap_or_default();
            (form_component(k), form_component(v))
        })
        .collect()
}

fn form_component(s: &[u8]) -> String {
    String::from_utf8_lossy(&form_component_bytes(s)).into_owned()
}

/// One decoded form field value as bytes, for callers that must not alter them.
pub fn form_field(body: &[u8], name: &str) -> Option<Vec<u8>> {
    body.split(|&b| b == b'&').find_map(|pair| {
        let mut kv = pair.splitn(2, |&b| b == b'=');
        let k = kv.next().unwrap_or_default();
        (form_component(k) == name).then(|| form_component_bytes(kv.next().unwrap_or_default()))
    })
}

fn form_component_bytes(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        let (byte, step) = match (b, escape_at(s, i)) {
            (_, Some(decoded)) => (decoded, 3),
            (b'+', None) => (b' ', 1),
            _ => (b, 1),
        };
        out.push(byte);
        i += step;
    }
    out
}

/// Strict percent-decoding for paths ('+' stays '+'): `None` on any '%' not
/// followed by two hex digits.
fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        let (byte, step) = match b {
            b'%' => (escape_at(s, i)?, 3),
            _ => (b, 1),
        };
        out.push(byte);
        i += step;
    }
    Some(out)
}

/// The byte encoded by "%XX" at `s[i..]`, if that is a valid escape.
fn escape_at(s: &[u8], i: usize) -> Option<u8> {
    let hex = |j: usize| s.get(j).and_then(|&c| (c as char).to_digit(16));
    let hi = hex(i.checked_add(1)?)?;
    let lo = hex(i.checked_add(2)?)?;
    (s.get(i) == Some(&b'%')).then_some((hi * 16 + lo) as u8)
}

#[cfg(test)]
mod tests;

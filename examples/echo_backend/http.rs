//! HTTP/1.1 for the echo backend: reading one request at a time from a keep-alive
//! connection (bounded head and body, pipelining, `Expect: 100-continue`) and writing a
//! response. A malformed request becomes the error response that explains it.

use std::io::{self, Read, Write};
use std::net::TcpStream;

pub const MAX_HEAD: usize = 16 * 1024;
pub const MAX_BODY: usize = 16 * 1024 * 1024;

pub struct Request {
    pub method: String,
    pub target: String,
    /// Names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub keep_alive: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

pub struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// `WS-Send-Empty: 1`: wscgi sends an empty body as an empty message.
    pub send_empty: bool,
}

impl Response {
    pub fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: Some("text/plain; charset=utf-8".to_string()),
            body: body.as_bytes().to_vec(),
            send_empty: false,
        }
    }

    pub fn empty() -> Response {
        Response {
            status: 200,
            content_type: None,
            body: Vec::new(),
            send_empty: false,
        }
    }

    /// Head and body in one buffer so they leave in as few packets as possible.
    pub fn to_bytes(&self, keep_alive: bool) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        if let Some(ct) = &self.content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        if self.send_empty {
            head.push_str("WS-Send-Empty: 1\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        if !keep_alive {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        let mut out = Vec::with_capacity(head.len() + self.body.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(&self.body);
        out
    }
}

/// A connection plus the bytes read from it but not yet consumed (a
/// pipelined next request may already be in there).
pub struct Conn {
    pub stream: TcpStream,
    pub buf: Vec<u8>,
}

impl Conn {
    /// Ok(None) when the client closed (or idled out) between requests; Err
    /// is the response that explains why the request is unacceptable.
    pub fn read_request(&mut self) -> Result<Option<Request>, Response> {
        let Some(head_len) = self.read_head()? else {
            return Ok(None);
        };
        let head = parse_head(&self.buf[..head_len])?;
        let body_len = content_length(&head.headers)?;
        self.buf.drain(..head_len);
        if self.buf.len() < body_len && expects_continue(&head.headers) {
            let _ = self.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        if !self.read_until_len(body_len) {
            return Ok(None);
        }
        let body: Vec<u8> = self.buf.drain(..body_len).collect();
        Ok(Some(Request {
            keep_alive: keep_alive(&head),
            method: head.method,
            target: head.target,
            headers: head.headers,
            body,
        }))
    }

    /// Reads until the buffer holds a whole head; returns its length
    /// (including the blank line). Bounded by [`MAX_HEAD`].
    pub fn read_head(&mut self) -> Result<Option<usize>, Response> {
        loop {
            // Tolerate stray CRLFs between requests (RFC 9112 §2.2).
            let blank = self
                .buf
                .iter()
                .take_while(|b| **b == b'\r' || **b == b'\n')
                .count();
            self.buf.drain(..blank);
            let head_end = find(&self.buf, b"\r\n\r\n").map(|end| end + 4);
            if head_end.unwrap_or(self.buf.len()) > MAX_HEAD {
                return Err(Response::text(431, "request head too large\n"));
            }
            if let Some(len) = head_end {
                return Ok(Some(len));
            }
            match self.fill() {
                Ok(true) => {}
                Ok(false) if self.buf.is_empty() => return Ok(None),
                Ok(false) => return Err(Response::text(400, "incomplete request\n")),
                Err(_) => return Ok(None),
            }
        }
    }

    /// Reads until the buffer holds `len` bytes; false if the client went
    /// away first. Bounded: `len` is at most [`MAX_BODY`].
    pub fn read_until_len(&mut self, len: usize) -> bool {
        while self.buf.len() < len {
            if !matches!(self.fill(), Ok(true)) {
                return false;
            }
        }
        true
    }

    /// One read into the buffer; Ok(false) on EOF.
    pub fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                // Only a signal can interrupt a read, and never endlessly.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

pub struct Head {
    method: String,
    target: String,
    http10: bool,
    headers: Vec<(String, String)>,
}

pub fn parse_head(raw: &[u8]) -> Result<Head, Response> {
    let bad = |why: &str| Response::text(400, &format!("{why}\n"));
    let text = std::str::from_utf8(raw).map_err(|_| bad("request head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) || target.is_empty() {
        return Err(bad("malformed request line"));
    }
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(Response::text(505, "only HTTP/1.0 and HTTP/1.1\n")),
    };
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        headers.push(parse_header_line(line).ok_or_else(|| bad("malformed header line"))?);
    }
    Ok(Head {
        method: method.to_string(),
        target: target.to_string(),
        http10,
        headers,
    })
}

/// `Name: value`; the name must be a bare token (this also rejects obsolete
/// line folding, which starts with whitespace).
pub fn parse_header_line(line: &str) -> Option<(String, String)> {
    let (name, value) = line.split_once(':')?;
    let is_token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(is_token) {
        return None;
    }
    Some((name.to_ascii_lowercase(), value.trim().to_string()))
}

/// Only Content-Length bodies: wscgi always sends them, and refusing chunked
/// input keeps this parser small and unambiguous.
pub fn content_length(headers: &[(String, String)]) -> Result<usize, Response> {
    if header(headers, "transfer-encoding").is_some() {
        return Err(Response::text(501, "Transfer-Encoding is not supported\n"));
    }
    let mut lengths = headers.iter().filter(|(k, _)| k == "content-length");
    let Some((_, first)) = lengths.next() else {
        return Ok(0);
    };
    if lengths.any(|(_, other)| other != first) {
        return Err(Response::text(400, "conflicting Content-Length\n"));
    }
    let len: usize = first
        .parse()
        .map_err(|_| Response::text(400, "bad Content-Length\n"))?;
    if len > MAX_BODY {
        return Err(Response::text(413, "body too large\n"));
    }
    Ok(len)
}

pub fn expects_continue(headers: &[(String, String)]) -> bool {
    header(headers, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
}

/// HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 closes
/// unless told to keep it.
pub fn keep_alive(head: &Head) -> bool {
    let connection = header(&head.headers, "connection").unwrap_or("");
    let has = |token: &str| {
        connection
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if head.http10 {
        has("keep-alive")
    } else {
        !has("close")
    }
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

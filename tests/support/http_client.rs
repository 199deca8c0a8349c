//! [`http`]: a raw one-shot HTTP/1.1 client for the push API, returning an
//! [`HttpResponse`].

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use super::describe::truncate;
use super::wait::{IO_TIMEOUT, is_timeout};
use super::wire::{
    Framing, MAX_BODY, MAX_HEADERS, body_framing, decode_body, find_header, header_has_token,
    owned_headers,
};

#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// In arrival order, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// First header with that name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request on a fresh connection with `Connection: close`; reads the
/// response until EOF, or until its Content-Length (or chunked) body is
/// complete, within 5 s, and parses it. `Host`, `Content-Length` and
/// `Connection` are added unless `headers` has them; Content-Length is sent
/// when the body is non-empty or the method is POST/PUT. Panics on failure.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let request = request_bytes(addr, method, path, headers, body);
    let raw = exchange(addr, &request)
        .unwrap_or_else(|e| panic!("{method} {path} to {addr} failed: {e}"));
    parse_response(&raw).unwrap_or_else(|e| {
        panic!(
            "{method} {path} to {addr}: {e}; raw response: {:?}",
            truncate(&String::from_utf8_lossy(&raw), 500)
        )
    })
}

fn request_bytes(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !has("host") {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let needs_length = !body.is_empty() || method == "POST" || method == "PUT";
    if needs_length && !has("content-length") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    if !has("connection") {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Sends `request` and reads until EOF or a complete framed response, within
/// [`IO_TIMEOUT`] overall.
fn exchange(addr: SocketAddr, request: &[u8]) -> io::Result<Vec<u8>> {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.write_all(request)?;
    let mut out = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || out.len() > MAX_BODY {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no EOF within {IO_TIMEOUT:?} ({} bytes read)", out.len()),
            ));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => {
                out.extend_from_slice(&chunk[..n]);
                // Some servers ignore `Connection: close`; a response whose
                // length is known is complete without waiting for EOF.
                if framed_response_complete(&out) {
                    return Ok(out);
                }
            }
            // A server closing with unread input resets the connection; what
            // it sent before that is still the answer.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset && !out.is_empty() => {
                return Ok(out);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => continue, // the deadline check reports it
            Err(e) => return Err(e),
        }
    }
}

fn parse_response(raw: &[u8]) -> Result<HttpResponse, String> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut slots);
    let head_len = match resp.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("incomplete response head".to_string()),
        Err(e) => return Err(format!("bad response head: {e}")),
    };
    let status = resp.code.unwrap_or_default();
    let headers: Vec<(String, String)> = resp
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let rest = &raw[head_len..];
    let body = match response_framing(&headers)? {
        None => rest.to_vec(),
        Some(framing) => match decode_body(rest, framing)? {
            Some((body, _)) => body,
            None => {
                return Err(format!(
                    "body shorter than announced ({} bytes)",
                    rest.len()
                ));
            }
        },
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Whether `raw` holds a whole response delimited by Content-Length or
/// chunked encoding (one that runs to EOF is never complete early).
fn framed_response_complete(raw: &[u8]) -> bool {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut slots);
    let Ok(httparse::Status::Complete(head_len)) = resp.parse(raw) else {
        return false;
    };
    let headers = owned_headers(resp.headers);
    match response_framing(&headers) {
        Ok(Some(framing)) => matches!(decode_body(&raw[head_len..], framing), Ok(Some(_))),
        _ => false,
    }
}

/// None: the body runs to EOF.
fn response_framing(headers: &[(String, String)]) -> Result<Option<Framing>, String> {
    let framed = header_has_token(headers, "transfer-encoding", "chunked")
        || find_header(headers, "content-length").is_some();
    if framed {
        body_framing(headers).map(Some)
    } else {
        Ok(None)
    }
}

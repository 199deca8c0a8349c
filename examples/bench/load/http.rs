//! The push API's client for the `fanout` scenario: minimal blocking HTTP/1.1 with keep-alive,
//! one request at a time, so a publish costs the server one request and no new connection.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Minimal blocking HTTP/1.1 client with keep-alive, for the push API.
pub struct Http {
    addr: SocketAddr,
    host: String,
    path: String,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Http {
    pub fn new(url: &str) -> Result<Http, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("--push must start with http:// ({url})"))?;
        let (host, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        let addr = host
            .to_socket_addrs()
            .map_err(|e| format!("--push {url}: {e}"))?
            .next()
            .ok_or_else(|| format!("--push {url}: no address"))?;
        Ok(Http {
            addr,
            host: host.into(),
            path: path.into(),
            stream: None,
            buf: Vec::new(),
        })
    }

    /// Sends one POST (reconnecting once if the kept-alive socket died).
    pub fn send(&mut self, content_type: &str, body: &[u8]) -> io::Result<()> {
        let mut req = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            self.path,
            self.host,
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        for attempt in 0..2 {
            if self.stream.is_none() {
                let s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))?;
                s.set_nodelay(true)?;
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                self.stream = Some(s);
                self.buf.clear();
            }
            let s = self.stream.as_mut().expect("just set");
            match s.write_all(&req) {
                Ok(()) => return Ok(()),
                Err(e) if attempt == 1 => return Err(e),
                Err(_) => self.stream = None,
            }
        }
        Ok(())
    }

    /// Reads the response to the last request: (status, body).
    pub fn receive(&mut self) -> io::Result<(u16, Vec<u8>)> {
        let s = self
            .stream
            .as_mut()
            .ok_or_else(|| io::Error::other("not connected"))?;
        let mut chunk = [0u8; 8192];
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head) = resp
                .parse(&self.buf)
                .map_err(|e| io::Error::other(e.to_string()))?
            {
                let code = resp.code.unwrap_or(0);
                let mut len = 0usize;
                let mut close = false;
                for h in resp.headers.iter() {
                    if h.name.eq_ignore_ascii_case("content-length") {
                        len = std::str::from_utf8(h.value)
                            .ok()
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                    } else if h.name.eq_ignore_ascii_case("connection")
                        && h.value.eq_ignore_ascii_case(b"close")
                    {
                        close = true;
                    }
                }
                if self.buf.len() >= head + len {
                    let body = self.buf[head..head + len].to_vec();
                    self.buf.drain(..head + len);
                    if close {
                        self.stream = None;
                    }
                    return Ok((code, body));
                }
            }
            let n = s.read(&mut chunk)?;
            if n == 0 {
                self.stream = None;
                return Err(io::Error::other("push API closed the connection"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

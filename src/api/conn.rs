//! One push-API client connection: HTTP/1.1 with keep-alive and pipelining, bounded buffers.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use tungstenite::Bytes;

use super::request::{self, Method, Request};
use super::response::Response;
use crate::ws::outbuf::OutBuf;

/// An idle keep-alive connection is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading requests (and answering them).
    Serving,
    /// The last response is queued; close once it is written.
    Closing,
    Closed,
}

#[derive(Debug)]
pub struct ApiConn {
    sock: TcpStream,
    inbuf: Vec<u8>,
    out: OutBuf,
    phase: Phase,
    last_active: Instant,
}

impl ApiConn {
    pub fn new(sock: TcpStream, max_out: usize) -> ApiConn {
        ApiConn {
            sock,
            inbuf: Vec::new(),
            out: OutBuf::new(max_out),
            phase: Phase::Serving,
            last_active: Instant::now(),
        }
    }

    pub fn socket(&mut self) -> &mut TcpStream {
        &mut self.sock
    }

    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Reads and answers every complete request; `handle` turns one request into a response.
    pub fn on_readable(&mut self, max_body: usize, handle: &mut dyn FnMut(&Request) -> Response) {
        self.last_active = Instant::now();
        let mut chunk = [0u8; 4096];
        while self.phase == Phase::Serving {
            match self.sock.read(&mut chunk) {
                Ok(0) => self.phase = Phase::Closed,
                Ok(n) => {
                    self.inbuf.extend_from_slice(&chunk[..n]);
                    // Complete requests leave the buffer at once and the parser refuses any
                    // head or body over the limits, so the buffer stays within MAX_HEAD + max_body.
                    self.answer_complete(max_body, handle);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.phase = Phase::Closed,
            }
        }
        self.flush();
    }

    fn answer_complete(&mut self, max_body: usize, handle: &mut dyn FnMut(&Request) -> Response) {
        while self.phase == Phase::Serving {
            match request::parse(&self.inbuf, max_body) {
                Ok(None) => return,
                Ok(Some((req, n))) => {
                    self.inbuf.drain(..n);
                    let response = handle(&req);
                    self.queue(&response, req.keep_alive, req.method == Method::Head);
                }
                Err(e) => {
                    let response = Response::bad_request(e.status(), &e.to_string());
                    self.queue(&response, false, false);
                }
            }
        }
    }

    fn queue(&mut self, response: &Response, keep_alive: bool, head_only: bool) {
        if self
            .out
            .push(Bytes::from(response.encode(keep_alive, head_only)))
            .is_err()
        {
            // The client pipelines requests without reading answers: stop serving it.
            self.phase = Phase::Closed;
            return;
        }
        if !keep_alive {
            self.phase = Phase::Closing;
        }
    }

    pub fn flush(&mut self) {
        match self.out.write_to(&mut self.sock) {
            Ok(true) if self.phase == Phase::Closing => self.phase = Phase::Closed,
            Ok(_) => {}
            Err(_) => self.phase = Phase::Closed,
        }
    }

    pub fn tick(&mut self, now: Instant) {
        if now.duration_since(self.last_active) > IDLE_TIMEOUT {
            self.phase = Phase::Closed;
        }
    }
}

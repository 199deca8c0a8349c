//! One push-API client connection: HTTP/1.1 with keep-alive and pipelining, bounded buffers.
//! An answer may come later (a call another cluster instance carries out): the connection then
//! waits for it, reading nothing more, and answers later requests after it, in order.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use tungstenite::Bytes;

use super::request::{self, Method, Request};
use super::response::Response;
use crate::ws::outbuf::OutBuf;

/// An idle keep-alive connection is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// What the server makes of one request.
#[derive(Debug)]
pub enum Answer {
    Now(Response),
    /// The answer comes later, through [`ApiConn::resume`] with this ticket.
    Later(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading requests (and answering them).
    Serving,
    /// A request's answer comes later; how it is to be written is kept until then.
    Waiting {
        ticket: u64,
        keep_alive: bool,
        head_only: bool,
    },
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

    /// The ticket of the answer this connection waits for.
    pub fn waiting_for(&self) -> Option<u64> {
        match self.phase {
            Phase::Waiting { ticket, .. } => Some(ticket),
            _ => None,
        }
    }

    /// The answer it waited for; the caller then reads on (`on_readable`), as requests may be
    /// buffered or waiting in the socket.
    pub fn resume(&mut self, response: &Response) {
        if let Phase::Waiting {
            keep_alive,
            head_only,
            ..
        } = self.phase
        {
            self.phase = Phase::Serving;
            self.last_active = Instant::now();
            self.queue(response, keep_alive, head_only);
        }
    }

    /// Reads and answers every complete request; `handle` turns one request into an answer.
    pub fn on_readable(&mut self, max_body: usize, handle: &mut dyn FnMut(&Request) -> Answer) {
        self.last_active = Instant::now();
        self.answer_complete(max_body, handle);
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

    fn answer_complete(&mut self, max_body: usize, handle: &mut dyn FnMut(&Request) -> Answer) {
        while self.phase == Phase::Serving {
            match request::parse(&self.inbuf, max_body) {
                Ok(None) => return,
                Ok(Some((req, n))) => {
                    self.inbuf.drain(..n);
                    let (keep_alive, head_only) = (req.keep_alive, req.method == Method::Head);
                    match handle(&req) {
                        Answer::Now(response) => self.queue(&response, keep_alive, head_only),
                        Answer::Later(ticket) => {
                            self.phase = Phase::Waiting {
                                ticket,
                                keep_alive,
                                head_only,
                            }
                        }
                    }
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
        let waiting = matches!(self.phase, Phase::Waiting { .. });
        if !waiting && now.duration_since(self.last_active) > IDLE_TIMEOUT {
            self.phase = Phase::Closed;
        }
    }
}

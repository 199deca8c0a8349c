//! The FastCGI backend: one `RESPONDER` request per event to a FastCGI server (php-fpm),
//! written from the FastCGI 1.0 specification.
//!
//! The event's CGI variables go out as `FCGI_PARAMS`, its body as `FCGI_STDIN`; `FCGI_STDOUT`
//! is a CGI response, `FCGI_STDERR` lines are logged. One request at a time per connection
//! (request id 1, no multiplexing); connections are kept open (`FCGI_KEEP_CONN`) and pooled.
//!
//! php-fpm serves a kept connection with one worker until the connection closes: every idle
//! connection in the pool pins a php-fpm child. `max_idle` must therefore stay below the
//! pool's `pm.max_children`, or new connections wait in php-fpm's backlog while all children
//! sit on our idle ones. As a safety net, a timeout empties the idle pool.

mod conn;
pub mod record;
#[cfg(test)]
mod tests;

use std::io;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tungstenite::Bytes;

use self::conn::Stream;
use super::cgi_response;
use super::spec::FcgiAddr;
use crate::events::BackendError;
use crate::reply::Reply;

const REQUEST_ID: u16 = 1;
/// Requests up to this size are written before reading: the socket buffers hold them. Larger
/// ones are written by a second thread, so a server that answers before reading all of its
/// input cannot deadlock with us.
const INLINE_WRITE: usize = 64 * 1024;
const READ_CHUNK: usize = 32 * 1024;
/// How long a complete response waits for the thread writing the request body to return. The
/// server has read the whole body by then (or never will), so this only covers the writer
/// being descheduled between its last write and its return; one still blocked after it waits
/// on a server that stopped reading, and is freed by shutting the socket.
const WRITER_GRACE: Duration = Duration::from_millis(200);
/// Bounds on what one request's stderr may put in the log.
const MAX_STDERR_LINES: usize = 50;
const MAX_STDERR_LINE: usize = 2048;

#[derive(Debug)]
pub struct FastCgiBackend {
    addr: FcgiAddr,
    timeout: Duration,
    max_body: usize,
    max_idle: usize,
    idle: Mutex<Vec<Stream>>,
    #[cfg(test)]
    connects: std::sync::atomic::AtomicUsize,
    #[cfg(test)]
    stderr_lines: std::sync::atomic::AtomicUsize,
}

/// A failed exchange. `early`: the connection closed before any response byte arrived, which
/// on a reused connection means the server dropped it while idle.
struct Failure {
    error: BackendError,
    early: bool,
}

impl From<BackendError> for Failure {
    fn from(error: BackendError) -> Failure {
        Failure {
            error,
            early: false,
        }
    }
}

impl FastCgiBackend {
    /// `max_idle`: connections kept open for reuse (one per worker is plenty; 0 closes each
    /// connection after its request).
    pub fn new(addr: FcgiAddr, timeout: Duration, max_body: usize, max_idle: usize) -> Self {
        FastCgiBackend {
            addr,
            timeout,
            max_body,
            max_idle,
            idle: Mutex::new(Vec::new()),
            #[cfg(test)]
            connects: Default::default(),
            #[cfg(test)]
            stderr_lines: Default::default(),
        }
    }

    /// One FastCGI RESPONDER request: params, body as FCGI_STDIN, response from FCGI_STDOUT
    /// parsed as CGI. FCGI_STDERR lines are logged with `log::warn!("{log_id}: {line}")`.
    pub fn send(
        &self,
        params: &[(String, Vec<u8>)],
        body: &[u8],
        log_id: &str,
    ) -> Result<Reply, BackendError> {
        let deadline = Instant::now() + self.timeout;
        let mut request = Vec::with_capacity(body.len() + 4096);
        record::begin_request(&mut request, REQUEST_ID, self.max_idle > 0);
        record::params(&mut request, REQUEST_ID, params);
        record::stdin(&mut request, REQUEST_ID, body);

        let reused = self.lock_idle().pop();
        let result = match reused {
            Some(conn) => match self.exchange(conn, &request, deadline, log_id) {
                Err(f) if f.early => {
                    log::debug!("{log_id}: fastcgi: idle connection was closed, reconnecting");
                    self.exchange_fresh(&request, deadline, log_id)
                }
                other => other,
            },
            None => self.exchange_fresh(&request, deadline, log_id),
        };
        let stdout = result.map_err(|f| {
            if matches!(f.error, BackendError::Timeout(_)) {
                // Perhaps every php-fpm child sits on one of our idle connections.
                self.lock_idle().clear();
            }
            f.error
        })?;

        let head = cgi_response::parse(&stdout)
            .map_err(|e| BackendError::Invalid(format!("fastcgi: {e}")))?;
        let body = stdout.get(head.body_start..).unwrap_or_default();
        if body.len() > self.max_body {
            return Err(BackendError::TooLarge);
        }
        Ok(Reply::from_parts(
            head.status,
            head.headers,
            Bytes::copy_from_slice(body),
        ))
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Stream>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn exchange_fresh(
        &self,
        request: &[u8],
        deadline: Instant,
        log_id: &str,
    ) -> Result<Vec<u8>, Failure> {
        let conn = Stream::connect(&self.addr, deadline)?;
        #[cfg(test)]
        self.connects
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.exchange(conn, request, deadline, log_id)
    }

    /// Sends one request and reads its response; the connection goes back to the pool only
    /// when the exchange ended cleanly.
    fn exchange(
        &self,
        mut conn: Stream,
        request: &[u8],
        deadline: Instant,
        log_id: &str,
    ) -> Result<Vec<u8>, Failure> {
        let (stdout, clean) = if request.len() <= INLINE_WRITE {
            conn.write_all_by(request, deadline)
                .map_err(|e| io_failure(e, true))?;
            self.read_response(&mut conn, deadline, log_id)?
        } else {
            self.write_while_reading(&mut conn, request, deadline, log_id)?
        };
        if clean && self.max_idle > 0 {
            let mut idle = self.lock_idle();
            if idle.len() < self.max_idle {
                idle.push(conn);
            }
        }
        Ok(stdout)
    }

    fn write_while_reading(
        &self,
        conn: &mut Stream,
        request: &[u8],
        deadline: Instant,
        log_id: &str,
    ) -> Result<(Vec<u8>, bool), Failure> {
        let mut writer = conn.try_clone().map_err(|e| io_failure(e, false))?;
        let (wrote_tx, wrote_rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            let write = std::thread::Builder::new()
                .name("fastcgi-stdin".into())
                .spawn_scoped(s, move || {
                    let _ = wrote_tx.send(writer.write_all_by(request, deadline).is_ok());
                })
                .map_err(|e| io_failure(e, false))?;
            let read = self.read_response(conn, deadline, log_id);
            // A snapshot of the writer here would race with its return from the last write:
            // a connection that is fine would be thrown away (seen under load).
            let wrote = match read {
                Ok(_) => wrote_rx.recv_timeout(WRITER_GRACE).unwrap_or(false),
                Err(_) => false,
            };
            if !wrote {
                conn.shutdown();
            }
            let _ = write.join();
            let (stdout, clean) = read?;
            Ok((stdout, clean && wrote))
        })
    }

    /// Reads records until our `END_REQUEST`: the `STDOUT` bytes, and whether nothing followed.
    fn read_response(
        &self,
        conn: &mut Stream,
        deadline: Instant,
        log_id: &str,
    ) -> Result<(Vec<u8>, bool), Failure> {
        let limit = cgi_response::MAX_HEAD.saturating_add(self.max_body);
        let invalid = |what: String| BackendError::Invalid(format!("fastcgi: {what}"));
        let mut stdout = Vec::new();
        let mut stderr = StderrLog::new(log_id);
        let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
        let mut nothing_read = true;
        loop {
            let mut pos = 0;
            while let Some((rec, n)) = record::parse(buf.get(pos..).unwrap_or_default())
                .map_err(|e| invalid(e.to_string()))?
            {
                pos += n;
                if rec.request_id != REQUEST_ID {
                    continue; // management records (id 0); we send none, so ignore any
                }
                match rec.kind {
                    record::STDOUT if stdout.len() + rec.content.len() > limit => {
                        return Err(BackendError::TooLarge.into());
                    }
                    record::STDOUT => stdout.extend_from_slice(rec.content),
                    record::STDERR => stderr.push(rec.content),
                    record::END_REQUEST => {
                        let (_, status) = record::end_request(rec.content)
                            .ok_or_else(|| invalid("short END_REQUEST".into()))?;
                        protocol_status(status)?;
                        stderr.flush();
                        #[cfg(test)]
                        self.stderr_lines
                            .fetch_add(stderr.lines, std::sync::atomic::Ordering::Relaxed);
                        return Ok((stdout, pos == buf.len()));
                    }
                    kind => return Err(invalid(format!("unexpected record type {kind}")).into()),
                }
            }
            buf.drain(..pos);
            let len = buf.len();
            buf.resize(len + READ_CHUNK, 0);
            let n = conn
                .read_by(buf.get_mut(len..).unwrap_or_default(), deadline)
                .map_err(|e| io_failure(e, nothing_read))?;
            buf.truncate(len + n);
            if n == 0 {
                let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed early");
                return Err(io_failure(eof, nothing_read));
            }
            nothing_read = false;
        }
    }
}

fn protocol_status(status: u8) -> Result<(), BackendError> {
    let why = match status {
        record::REQUEST_COMPLETE => return Ok(()),
        record::CANT_MPX_CONN => "cannot multiplex connection".to_string(),
        record::OVERLOADED => "overloaded".to_string(),
        record::UNKNOWN_ROLE => "unknown role".to_string(),
        other => format!("protocol status {other}"),
    };
    Err(BackendError::Unreachable(format!("fastcgi: {why}")))
}

/// `nothing_read`: no response byte has arrived on this connection yet.
fn io_failure(e: io::Error, nothing_read: bool) -> Failure {
    use io::ErrorKind as K;
    let closed = matches!(
        e.kind(),
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof
    );
    let error = match e.kind() {
        K::TimedOut | K::WouldBlock => BackendError::Timeout("fastcgi".into()),
        _ => BackendError::Invalid(format!("fastcgi: {e}")),
    };
    Failure {
        error,
        early: closed && nothing_read,
    }
}

/// Splits `FCGI_STDERR` into lines for the log, bounded in count and length.
struct StderrLog<'a> {
    log_id: &'a str,
    line: Vec<u8>,
    lines: usize,
}

impl<'a> StderrLog<'a> {
    fn new(log_id: &'a str) -> Self {
        StderrLog {
            log_id,
            line: Vec::new(),
            lines: 0,
        }
    }

    fn push(&mut self, data: &[u8]) {
        for piece in data.split_inclusive(|&b| b == b'\n') {
            let room = MAX_STDERR_LINE.saturating_sub(self.line.len());
            self.line
                .extend_from_slice(piece.get(..room).unwrap_or(piece));
            if piece.ends_with(b"\n") {
                self.flush();
            }
        }
    }

    fn flush(&mut self) {
        let text = String::from_utf8_lossy(&self.line);
        let text = text.trim_end();
        if !text.is_empty() {
            match self.lines {
                n if n < MAX_STDERR_LINES => log::warn!("{}: {text}", self.log_id),
                MAX_STDERR_LINES => log::warn!("{}: (more stderr output dropped)", self.log_id),
                _ => {}
            }
            self.lines += 1;
        }
        self.line.clear();
    }
}

impl Drop for StderrLog<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

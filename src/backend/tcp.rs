//! The TCP transport under ureq for the HTTP backend: ureq's own, less the syscalls a
//! keep-alive connection to a local backend does not need.
//!
//! ureq's transport checks a pooled connection before reuse by switching the socket to
//! non-blocking, reading, and switching back (three syscalls), and sets the socket timeouts
//! before every read and write, because its remaining time budget shrinks by microseconds
//! from call to call (two more). With one event per request that was most of the syscalls a
//! request made besides its write and read. Here the check is one `recv(MSG_PEEK |
//! MSG_DONTWAIT)`, made once per request rather than twice (see [`LeanTcp::is_open`]), and a
//! timeout is set only when it must change by more than [`SLACK`].
//!
//! Its buffers are small and grow only for a large reply, and a request's head leaves in one
//! send with its body (`backend::buffers`).
//!
//! Proxies are not supported (the agent is built with none): the backend is a local service,
//! never reached through one, whatever `HTTP_PROXY` says.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use ureq::Error;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, NextTimeout, ShutdownHandle, Transport,
};

use super::buffers::GrowingBuffers;

/// How much later than its budget a read or write may time out, to keep the socket's timeout
/// unchanged from one request to the next (a fresh request's budget is always slightly less
/// than the last one's).
const SLACK: Duration = Duration::from_millis(250);

#[derive(Debug, Default)]
pub struct LeanTcpConnector;

impl<In: Transport> Connector<In> for LeanTcpConnector {
    type Out = LeanTcp;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<LeanTcp>, Error> {
        if chained.is_some() {
            return Err(Error::Io(io::Error::other(
                "unexpected connector before TCP",
            )));
        }
        // One budget for all addresses, shared out evenly among those not yet tried.
        let deadline = details.timeout.not_zero().map(|t| Instant::now() + *t);
        let mut last = None;
        let count = details.addrs.len();
        for (n, addr) in details.addrs.iter().enumerate() {
            let attempt = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let share = left / (count - n) as u32;
                    if share.is_zero() {
                        return Err(Error::Timeout(ureq::Timeout::Connect));
                    }
                    TcpStream::connect_timeout(addr, share)
                }
                None => TcpStream::connect(*addr),
            };
            match attempt {
                Ok(stream) => {
                    if details.config.no_delay() {
                        stream.set_nodelay(true)?;
                    }
                    let transport = LeanTcp {
                        stream: Arc::new(Stream(stream)),
                        buffers: GrowingBuffers::default(),
                        read_timeout: None,
                        write_timeout: None,
                        held_for: None,
                        replied: false,
                    };
                    let handle = Arc::downgrade(&transport.stream) as Weak<dyn ShutdownHandle>;
                    (details.register_shutdown)(handle)?;
                    return Ok(Some(transport));
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    last = Some(Error::Timeout(ureq::Timeout::Connect));
                }
                Err(e) => last = Some(Error::Io(e)),
            }
        }
        Err(last.unwrap_or(Error::HostNotFound))
    }
}

#[derive(Debug)]
struct Stream(TcpStream);

impl ShutdownHandle for Stream {
    fn shutdown(&self) {
        let _ = self.0.shutdown(Shutdown::Both);
    }
}

#[derive(Debug)]
pub struct LeanTcp {
    stream: Arc<Stream>,
    buffers: GrowingBuffers,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    /// A request head is held back in the buffers (see [`GrowingBuffers::queue`]); what its
    /// write would time out as.
    held_for: Option<ureq::Timeout>,
    /// Input was read since the last `is_open`: a reply came, and the pool's check on putting
    /// the connection back is the first of two.
    replied: bool,
}

impl Transport for LeanTcp {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        let timeout = timeout.for_write();
        let budget = budget(&timeout)?;
        let sock = &self.stream.0;
        if let Some(set) = needs_change(self.write_timeout, budget) {
            sock.set_write_timeout(set)?;
            self.write_timeout = set;
        }
        self.held_for = Some(timeout.reason);
        match self.buffers.queue(amount) {
            None => Ok(()),
            Some(output) => {
                self.held_for = None;
                (&*sock)
                    .write_all(output)
                    .map_err(|e| io_error(e, &timeout))
            }
        }
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        let timeout = timeout.for_read();
        let budget = budget(&timeout)?;
        let sock = &self.stream.0;
        // A head held back for a body that did not come (an event without one) goes now,
        // within the budget its write was given.
        if let Some(reason) = self.held_for.take() {
            let held = self.buffers.take_held();
            let timeout = NextTimeout { reason, ..timeout };
            (&*sock)
                .write_all(held)
                .map_err(|e| io_error(e, &timeout))?;
        }
        if let Some(set) = needs_change(self.read_timeout, budget) {
            sock.set_read_timeout(set)?;
            self.read_timeout = set;
        }
        let started = Instant::now();
        let input = self.buffers.input_append_buf();
        let amount = loop {
            match (&*sock).read(input) {
                // A signal: Linux does not restart reads that have a timeout. Go on with what is
                // left of the budget, so signals cannot stretch it.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    let Some(budget) = budget else { continue };
                    let left = budget.saturating_sub(started.elapsed());
                    if left.is_zero() {
                        return Err(Error::Timeout(timeout.reason));
                    }
                    sock.set_read_timeout(Some(left))?;
                    self.read_timeout = Some(left);
                }
                other => break other.map_err(|e| io_error(e, &timeout))?,
            }
        };
        self.buffers.input_appended(amount);
        self.replied = true;
        Ok(amount > 0)
    }

    /// A kept connection is reusable when reading would block: no bytes nobody asked for, no
    /// end of stream, no error.
    ///
    /// ureq asks twice per request: when the connection goes back to the pool after a reply,
    /// and when the next request takes it out. The first question is answered without looking:
    /// the second makes the same check before anything is sent, and a connection that failed
    /// it in between is dropped then, as it would have been.
    fn is_open(&mut self) -> bool {
        if std::mem::take(&mut self.replied) {
            return true;
        }
        let mut byte = 0u8;
        // SAFETY: a valid socket and a one-byte buffer we own; MSG_PEEK leaves the data queued.
        let n = unsafe {
            libc::recv(
                self.stream.0.as_raw_fd(),
                (&raw mut byte).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
    }
}

/// The time left for this read or write; `None` means no limit.
fn budget(timeout: &NextTimeout) -> Result<Option<Duration>, Error> {
    if timeout.after.is_not_happening() {
        return Ok(None);
    }
    match *timeout.after {
        Duration::ZERO => Err(Error::Timeout(timeout.reason)),
        left => Ok(Some(left)),
    }
}

/// The socket timeout to set, if the current one is unset, shorter than the budget, or longer
/// by more than [`SLACK`].
fn needs_change(current: Option<Duration>, budget: Option<Duration>) -> Option<Option<Duration>> {
    let keep = match (current, budget) {
        (None, None) => true,
        (Some(cur), Some(left)) => cur >= left && cur - left <= SLACK,
        _ => false,
    };
    (!keep).then_some(budget)
}

fn io_error(e: io::Error, timeout: &NextTimeout) -> Error {
    match e.kind() {
        // SO_RCVTIMEO / SO_SNDTIMEO expired.
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout(timeout.reason),
        _ => Error::Io(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn timeouts_change_only_when_they_must() {
        assert_eq!(needs_change(None, None), None);
        assert_eq!(needs_change(None, Some(S(10_000))), Some(Some(S(10_000))));
        assert_eq!(
            needs_change(Some(S(10_000)), Some(S(9_999))),
            None,
            "within slack"
        );
        assert_eq!(
            needs_change(Some(S(10_000)), Some(S(9_000))),
            Some(Some(S(9_000))),
            "budget running out"
        );
        assert_eq!(
            needs_change(Some(S(500)), Some(S(10_000))),
            Some(Some(S(10_000))),
            "a fresh request after a slow one"
        );
        assert_eq!(needs_change(Some(S(500)), None), Some(None));
    }
}

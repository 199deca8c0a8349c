//! A blocking connection to a FastCGI server, TCP or unix socket, with every read, write and
//! connect bounded by one deadline.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use crate::backend::spec::FcgiAddr;
use crate::events::BackendError;

#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    /// Connects before `deadline`: refused, missing socket or unresolvable host are
    /// `Unreachable`, running out of time is `Timeout`.
    pub fn connect(addr: &FcgiAddr, deadline: Instant) -> Result<Stream, BackendError> {
        let unreachable = |e: io::Error| match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                BackendError::Timeout("fastcgi".into())
            }
            _ => BackendError::Unreachable(format!("fastcgi: connect {}: {e}", show(addr))),
        };
        match addr {
            // Connecting to a unix socket does not wait for the server; no timeout needed.
            FcgiAddr::Unix(path) => UnixStream::connect(path)
                .map(Stream::Unix)
                .map_err(unreachable),
            FcgiAddr::Tcp(host) => {
                let mut last = io::Error::new(io::ErrorKind::NotFound, "no addresses");
                for sock in host.to_socket_addrs().map_err(unreachable)? {
                    let timeout = remaining(deadline).map_err(unreachable)?;
                    match TcpStream::connect_timeout(&sock, timeout) {
                        Ok(s) => {
                            // Requests go out in one write; don't let Nagle hold a tail back.
                            let _ = s.set_nodelay(true);
                            return Ok(Stream::Tcp(s));
                        }
                        Err(e) => last = e,
                    }
                }
                Err(unreachable(last))
            }
        }
    }

    pub fn try_clone(&self) -> io::Result<Stream> {
        match self {
            Stream::Tcp(s) => s.try_clone().map(Stream::Tcp),
            Stream::Unix(s) => s.try_clone().map(Stream::Unix),
        }
    }

    /// Unblocks a thread reading or writing a clone of this stream.
    pub fn shutdown(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }

    /// Writes all of `buf` before `deadline` (`TimedOut` otherwise).
    pub fn write_all_by(&mut self, mut buf: &[u8], deadline: Instant) -> io::Result<()> {
        while !buf.is_empty() {
            let timeout = Some(remaining(deadline)?);
            let n = match self {
                Stream::Tcp(s) => s.set_write_timeout(timeout).and_then(|()| s.write(buf)),
                Stream::Unix(s) => s.set_write_timeout(timeout).and_then(|()| s.write(buf)),
            };
            match n {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = buf.get(n..).unwrap_or_default(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(timed_out(e)),
            }
        }
        Ok(())
    }

    /// One read before `deadline` (`TimedOut` otherwise); 0 is the end of the stream.
    pub fn read_by(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        loop {
            let timeout = Some(remaining(deadline)?);
            let n = match self {
                Stream::Tcp(s) => s.set_read_timeout(timeout).and_then(|()| s.read(buf)),
                Stream::Unix(s) => s.set_read_timeout(timeout).and_then(|()| s.read(buf)),
            };
            match n {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other.map_err(timed_out),
            }
        }
    }
}

fn show(addr: &FcgiAddr) -> String {
    match addr {
        FcgiAddr::Tcp(host) => host.clone(),
        FcgiAddr::Unix(path) => path.display().to_string(),
    }
}

/// Time left before `deadline`, never zero (a zero socket timeout is an error).
fn remaining(deadline: Instant) -> io::Result<std::time::Duration> {
    match deadline.checked_duration_since(Instant::now()) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(io::ErrorKind::TimedOut.into()),
    }
}

/// A socket timeout surfaces as `WouldBlock` on unix; call it what it is.
fn timed_out(e: io::Error) -> io::Error {
    match e.kind() {
        io::ErrorKind::WouldBlock => io::ErrorKind::TimedOut.into(),
        _ => e,
    }
}

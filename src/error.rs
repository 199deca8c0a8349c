//! The error `Server` returns: it failed to start, or its event loop failed.

use std::fmt;
use std::io;
use std::net::SocketAddr;

#[derive(Debug)]
pub enum Error {
    /// A listening address could not be bound.
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: io::Error,
    },
    /// Setting up the reactor or the workers failed.
    Setup(io::Error),
    /// `poll` itself failed; the server cannot continue.
    Poll(io::Error),
    /// The TLS certificate or key could not be loaded (or TLS is not built in).
    Tls(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Bind { what, addr, source } => {
                write!(f, "cannot listen for {what} on {addr}: {source}")
            }
            Error::Setup(e) => write!(f, "setup failed: {e}"),
            Error::Poll(e) => write!(f, "event loop failed: {e}"),
            Error::Tls(why) => write!(f, "TLS: {why}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Bind { source, .. } => Some(source),
            Error::Setup(e) | Error::Poll(e) => Some(e),
            Error::Tls(_) => None,
        }
    }
}

//! What a connection's bytes travel over: the plain TCP socket, or TLS over it (feature `tls`).
//!
//! The connection's state machine reads and writes plaintext through [`Transport`] and does
//! not know which it has. [`Security`] is the listener's side: it wraps each accepted socket.

use std::io::{self, Read, Write};
use std::net::Shutdown;
#[cfg(feature = "tls")]
use std::sync::Arc;

use log::info;
#[cfg(feature = "tls")]
use log::warn;
use mio::net::TcpStream;

#[cfg(feature = "tls")]
use crate::tls::{Certs, TlsStream};

/// How the WebSocket listener talks to its clients.
#[derive(Clone, Default)]
pub enum Security {
    #[default]
    Plain,
    /// `--tls-cert`/`--tls-key`: every client speaks TLS first.
    #[cfg(feature = "tls")]
    Tls(Arc<Certs>),
}

impl Security {
    pub fn is_tls(&self) -> bool {
        !matches!(self, Security::Plain)
    }

    /// SIGHUP: loads the certificate and key again (TLS only); new connections get the new
    /// ones, open connections keep theirs, and a failure keeps the current ones. Runs on the
    /// signal thread, off the reactor.
    pub fn reload(&self) {
        match self {
            Security::Plain => info!("SIGHUP ignored (no TLS certificate to reload)"),
            #[cfg(feature = "tls")]
            Security::Tls(certs) => match certs.reload() {
                Ok(fingerprint) => info!(
                    "SIGHUP: TLS certificate reloaded from {} (SHA-1 {fingerprint}); new connections get it",
                    certs.cert_path().display()
                ),
                Err(e) => warn!(
                    "SIGHUP: TLS certificate not reloaded, keeping the current one (SHA-1 {}): {e}",
                    certs.fingerprint()
                ),
            },
        }
    }

    /// The transport for a newly accepted client.
    pub fn wrap(&self, sock: TcpStream) -> Result<Transport, String> {
        match self {
            Security::Plain => Ok(Transport::Plain(sock)),
            #[cfg(feature = "tls")]
            Security::Tls(certs) => match TlsStream::new(certs.config()) {
                Ok(tls) => Ok(Transport::Tls {
                    sock,
                    tls: Box::new(tls),
                }),
                Err(e) => Err(format!("TLS: {e}")),
            },
        }
    }
}

/// A connection's socket, plain or with TLS on it; reads and writes are plaintext.
#[derive(Debug)]
pub enum Transport {
    Plain(TcpStream),
    /// Boxed: the TLS state is large, and plain connections should not pay for its space.
    #[cfg(feature = "tls")]
    Tls {
        sock: TcpStream,
        tls: Box<TlsStream>,
    },
}

impl Transport {
    /// The socket, when bytes written to it directly reach the client as they are (see
    /// `ws::direct`): plain connections only.
    pub fn plain_socket(&self) -> Option<&TcpStream> {
        match self {
            Transport::Plain(sock) => Some(sock),
            #[cfg(feature = "tls")]
            Transport::Tls { .. } => None,
        }
    }

    /// Whether a read that returned less than asked proves the socket empty. Not with TLS: one
    /// record may give fewer bytes than asked while more records wait in the socket.
    pub fn short_read_is_dry(&self) -> bool {
        matches!(self, Transport::Plain(_))
    }

    /// Writes bytes the transport still holds (TLS records); `Ok(true)` when none are left.
    pub fn flush_held(&mut self) -> io::Result<bool> {
        match self {
            Transport::Plain(_) => Ok(true),
            #[cfg(feature = "tls")]
            Transport::Tls { sock, tls } => tls.flush(sock),
        }
    }

    /// Ends our sending side: TLS close_notify (best effort), then the TCP half-close.
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        #[cfg(feature = "tls")]
        if let Transport::Tls { sock, tls } = self {
            let _ = tls.close_notify(sock);
        }
        self.socket().shutdown(Shutdown::Write)
    }

    /// The socket itself, the TLS state dropped (for discarding the client's last bytes).
    pub fn into_socket(self) -> TcpStream {
        match self {
            Transport::Plain(sock) => sock,
            #[cfg(feature = "tls")]
            Transport::Tls { sock, .. } => sock,
        }
    }

    /// The TCP socket under it (to register it with the reactor under another token).
    pub fn socket_mut(&mut self) -> &mut TcpStream {
        match self {
            Transport::Plain(sock) => sock,
            #[cfg(feature = "tls")]
            Transport::Tls { sock, .. } => sock,
        }
    }

    fn socket(&self) -> &TcpStream {
        match self {
            Transport::Plain(sock) => sock,
            #[cfg(feature = "tls")]
            Transport::Tls { sock, .. } => sock,
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(sock) => sock.read(buf),
            #[cfg(feature = "tls")]
            Transport::Tls { sock, tls } => tls.read(sock, buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(sock) => sock.write(buf),
            #[cfg(feature = "tls")]
            Transport::Tls { sock, tls } => tls.write(sock, buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

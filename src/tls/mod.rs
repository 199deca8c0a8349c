//! TLS on the WebSocket listener (feature `tls`): `wss://`, and `https://` for `--static`.
//!
//! TLS is a transport under the connection (see `ws::transport`): the connection's state
//! machine reads and writes plaintext as before, and the reactor drives the TLS state machine
//! non-blocking, inside those reads and writes.
//! - [`certs`]: the certificate and key, loaded at startup and again on SIGHUP.
//! - [`stream`]: one TLS connection over a non-blocking socket (rustls' unbuffered API, so an
//!   idle connection holds no buffers).

pub mod certs;
pub mod stream;

pub use certs::{CertError, Certs};
pub use stream::TlsStream;

//! A new connection's claim on a resumable session, held while the hub decides on it
//! (`server::claims`): its socket, its upgrade request and what it asked for.

use std::net::SocketAddr;

use mio::net::TcpStream;

use crate::ws::handshake::Upgrade;
use crate::ws::resume_query::ResumeRequest;
use crate::ws::wire::Wire;

/// A new connection's upgrade that names a session key, waiting for the hub's decision.
#[derive(Debug)]
pub struct Claim {
    pub(super) wire: Wire,
    pub(super) upgrade: Upgrade,
    pub(super) tail: Vec<u8>,
    pub(super) route: usize,
    pub(super) remote: SocketAddr,
    pub(super) request: ResumeRequest,
}

impl Claim {
    pub fn request(&self) -> &ResumeRequest {
        &self.request
    }

    pub fn key(&self) -> &str {
        match &self.request {
            ResumeRequest::Start { key } | ResumeRequest::Resume { key, .. } => key,
        }
    }

    /// The new socket (its TLS state, if any, moves with it), to register under the session's
    /// token.
    pub fn socket_mut(&mut self) -> &mut TcpStream {
        self.wire.sock.socket_mut()
    }

    pub(super) fn wire(&mut self) -> &mut Wire {
        &mut self.wire
    }

    pub(super) fn into_wire(self) -> Wire {
        self.wire
    }
}

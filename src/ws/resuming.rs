//! Resume, the connection's side: a new connection's claim on a session (start one, or take
//! one over) and the resume onto the new socket. What a session does with its messages
//! (keeping, parking, replaying) is `ws::replay`; what it keeps is `ws::session`; the table of
//! keys is the hub's (`server::sessions`).

use std::fmt;

use log::info;
use tungstenite::Bytes;
use tungstenite::protocol::{Role, WebSocketContext};

use super::conn::{Backlog, Conn, Limits, Phase};
use super::ending::closing;
use super::opening::{conn_info, deflate_offer};
use crate::events::{EventKind, EventName};
use crate::ws::claim::Claim;
use crate::ws::deflate_slot::DeflateSlot;
use crate::ws::handshake::{self, Upgrade};
use crate::ws::resume_query::ResumeRequest;
use crate::ws::session::{CannotResume, Hold, Session};

/// Close code for a resume that cannot be honoured (unknown or expired key, a count outside
/// what was kept): the client starts a new session.
pub const CANNOT_RESUME: u16 = 4409;

/// Why a resume was refused (the client gets 4409).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeRefused {
    /// No session has this key (never started, expired, or ended).
    Unknown,
    /// The session is not open yet, or already ending.
    NotNow,
    /// The new URL's path belongs to another `--route` than the session's.
    OtherRoute,
    Count(CannotResume),
}

impl fmt::Display for ResumeRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown => f.write_str("unknown or expired key"),
            Self::NotNow => f.write_str("session not open yet, or ending"),
            Self::OtherRoute => f.write_str("path of another route than the session's"),
            Self::Count(e) => e.fmt(f),
        }
    }
}

impl Conn {
    pub(super) fn claim_session(
        &mut self,
        upgrade: Upgrade,
        tail: Vec<u8>,
        route: usize,
        request: ResumeRequest,
    ) {
        let Some(wire) = self.take_wire() else { return };
        self.phase = Phase::Claiming(Box::new(Claim {
            wire,
            upgrade,
            tail,
            route,
            remote: self.remote,
            request,
        }));
    }

    /// The claim waiting for the hub, if this connection has one.
    pub fn claim(&self) -> Option<&Claim> {
        match &self.phase {
            Phase::Claiming(claim) => Some(claim),
            _ => None,
        }
    }

    /// Hands the claim (and its socket) over to the session it resumes; this connection is
    /// left with nothing to do.
    pub fn take_claim(&mut self) -> Option<Box<Claim>> {
        match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Claiming(claim) => Some(claim),
            other => {
                self.phase = other;
                None
            }
        }
    }

    /// A new session under the claim's key: an ordinary open, and the connection keeps what
    /// it is sent for a resume.
    pub fn start_session(&mut self, limits: &Limits) {
        let Some(claim) = self.take_claim() else {
            return;
        };
        let Claim {
            wire,
            upgrade,
            tail,
            route,
            request,
            ..
        } = *claim;
        let key = match request {
            ResumeRequest::Start { key } | ResumeRequest::Resume { key, .. } => key,
        };
        self.session = Some(Box::new(Session::new(key, limits.resume_buffer)));
        self.phase = Phase::Handshake {
            wire,
            head: Vec::new(),
        };
        self.begin_open(upgrade, tail, route, limits);
    }

    /// Refuses a claim at the handshake (another connection holds the key).
    pub fn refuse_claim(&mut self, status: u16, why: &str) {
        info!("{}: handshake rejected: {why}", self.remote);
        let body = format!("{why}\n");
        let response = handshake::error_response(status, "text/plain", &[], body.as_bytes());
        self.reject(status, response);
        self.flush();
    }

    /// The session cannot be resumed: the WebSocket opens and at once closes with 4409, and
    /// nothing reaches the backend (this connection never had an id).
    pub fn cannot_resume(&mut self, limits: &Limits, why: ResumeRefused) {
        let Some(claim) = self.take_claim() else {
            return;
        };
        info!("{}: cannot resume: {why}", self.remote);
        let Claim {
            mut wire,
            upgrade,
            tail,
            ..
        } = *claim;
        // A client that offered subprotocols (a browser given some) fails a 101 that names
        // none, and would see 1006 instead of 4409. No backend is asked here, so the client's
        // first choice is named, one an open's answer could have named too.
        let protocol = upgrade.protocols.first().map(String::as_str);
        let response = handshake::accept_response(&upgrade.key, protocol, None);
        let _ = wire.out.push(Bytes::from(response));
        let ws = WebSocketContext::from_partially_read(tail, Role::Server, Some(limits.ws_config));
        self.phase = closing(wire, Box::new(ws), CANNOT_RESUME, "cannot resume");
        self.flush();
    }

    /// The key of the session this connection holds or held.
    pub fn session_key(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.key.as_str())
    }

    /// It holds its session's key: started (its open may still be at the backend) and not
    /// ended. Another connection cannot start a session with the same key meanwhile.
    pub fn holds_session(&self) -> bool {
        self.session.is_some() && self.close_code.is_none() && self.rejected.is_none()
    }

    /// Whether `claim` may continue this session.
    pub fn check_resume(&self, claim: &Claim) -> Result<(), ResumeRefused> {
        let (Some(session), Some(info)) = (&self.session, &self.info) else {
            return Err(ResumeRefused::Unknown);
        };
        let ResumeRequest::Resume { received, .. } = claim.request else {
            return Err(ResumeRefused::Unknown);
        };
        if !self.holds_session() || !self.takes_messages() {
            return Err(ResumeRefused::NotNow);
        }
        if info.route != claim.route {
            return Err(ResumeRefused::OtherRoute);
        }
        session.ring.check(received).map_err(ResumeRefused::Count)
    }

    /// Continues the session on the claim's socket (checked with [`Conn::check_resume`]): a
    /// socket it still had (a half-open one) is dropped without a word, and a resume event
    /// goes to the backend. Until it is answered, messages are kept.
    pub fn resume(&mut self, claim: Box<Claim>, limits: &Limits) {
        let Claim {
            wire,
            upgrade,
            tail,
            remote,
            request,
            ..
        } = *claim;
        let (ResumeRequest::Resume { received, .. }, Some(info), Some(session)) =
            (request, &self.info, &mut self.session)
        else {
            return;
        };
        info!(
            "{}: resumed from {remote} after message {received}",
            info.id
        );
        session.ring.set_hold(Hold::After(received));
        // A replay the old socket had under way starts over from the new count.
        session.behind = None;
        let id = info.id.clone();
        self.info = Some(conn_info(
            id,
            &upgrade,
            remote,
            info.route,
            limits,
            info.connected_at,
        ));
        self.remote = remote;
        // A second resume while the first is at the backend only swaps the socket: the answer
        // to the first decides for both (also when the first one's socket failed meanwhile).
        let waiting = self.events.carries(EventName::Resume);
        // The new socket's own negotiation decides its frames (see `ws::replay`).
        self.deflate = DeflateSlot::Off;
        self.phase = Phase::Resuming {
            wire,
            deflate: deflate_offer(&upgrade, limits),
            key: upgrade.key,
            offered: upgrade.protocols,
            tail,
            received,
        };
        self.backlog = Backlog::Unread;
        if !waiting {
            self.events.push(EventKind::Resume);
        }
    }

    /// Its phase of life as the push API shows it.
    pub fn state_name(&self) -> &'static str {
        match self.phase {
            Phase::Handshake { .. } | Phase::Serving { .. } | Phase::Claiming(_) => "handshake",
            Phase::Opening { .. } => "opening",
            Phase::Open { .. } => "open",
            Phase::Parked { .. } => "parked",
            Phase::Resuming { .. } => "resuming",
            Phase::Failing { .. }
            | Phase::Closing { .. }
            | Phase::Finishing { .. }
            | Phase::Lingering { .. }
            | Phase::Closed => "closing",
        }
    }
}

#[cfg(test)]
mod tests;

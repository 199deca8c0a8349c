//! The hub's side of resume: the decision on a new connection's claim (start a session, resume
//! one, take over a half-open one, or refuse), moving a resumed socket to its session, and the
//! budget all parked sessions share (`--resume-max-bytes`, oldest first out). The table itself
//! is `sessions.rs`; the connection's side is `ws::resuming`.

use log::{info, warn};
use mio::Interest;

use super::clients::{get, peek};
use super::hub::Hub;
use crate::conn_id::ConnKey;
use crate::server::token;
use crate::ws::close;
use crate::ws::conn::Conn;
use crate::ws::resume_query::ResumeRequest;
use crate::ws::resuming::ResumeRefused;

/// What becomes of a claim.
enum Verdict {
    /// A new session with this key.
    Start(String),
    /// Another connection holds the key: 409 at the handshake.
    Taken,
    /// The session held by this connection continues on the claim's socket.
    Resume(ConnKey),
    /// 4409 right after the handshake.
    Refuse(ResumeRefused),
}

impl Hub {
    /// The connection holding the session `key`, if one does.
    fn holder(&self, key: &str) -> Option<ConnKey> {
        let holder = *self.sessions.keys.get(key)?;
        peek(&self.clients, holder)
            .is_some_and(Conn::holds_session)
            .then_some(holder)
    }

    /// Decides the claim of connection `key`, if it has one (see `ws::resuming`). Called after
    /// anything happened to `key`, so it also counts a resume refused at its replay: that
    /// 4409 comes with the backend's answer, not at a claim.
    pub(super) fn settle_claim(&mut self, key: ConnKey) {
        if get(&mut self.clients, key).is_some_and(Conn::take_replay_refused) {
            self.metrics.resumes_refused += 1;
        }
        let Some(claim) = peek(&self.clients, key).and_then(Conn::claim) else {
            return;
        };
        let verdict = match (claim.request(), self.holder(claim.key())) {
            (ResumeRequest::Start { .. }, Some(_)) => Verdict::Taken,
            (ResumeRequest::Start { key }, None) => Verdict::Start(key.clone()),
            (ResumeRequest::Resume { .. }, None) => Verdict::Refuse(ResumeRefused::Unknown),
            (ResumeRequest::Resume { .. }, Some(holder)) => {
                match peek(&self.clients, holder).map(|h| h.check_resume(claim)) {
                    Some(Ok(())) => Verdict::Resume(holder),
                    Some(Err(why)) => Verdict::Refuse(why),
                    None => Verdict::Refuse(ResumeRefused::Unknown),
                }
            }
        };
        let Some(conn) = get(&mut self.clients, key) else {
            return;
        };
        match verdict {
            Verdict::Taken => conn.refuse_claim(409, "wscgi-resume key in use"),
            Verdict::Start(session) => {
                conn.start_session(&self.limits);
                self.sessions.keys.insert(session, key);
            }
            Verdict::Refuse(why) => {
                conn.cannot_resume(&self.limits, why);
                self.metrics.resumes_refused += 1;
            }
            Verdict::Resume(holder) => self.hand_over(key, holder),
        }
    }

    /// Moves the claim of `from` (its socket) to the session `to`, which sends its resume event.
    fn hand_over(&mut self, from: ConnKey, to: ConnKey) {
        let Some(mut claim) = get(&mut self.clients, from).and_then(Conn::take_claim) else {
            return;
        };
        let interest = Interest::READABLE | Interest::WRITABLE;
        let sock = claim.socket_mut();
        if let Err(e) = self
            .sessions
            .registry
            .reregister(sock, token::client(to.index), interest)
        {
            // The claim (and the new socket) is dropped; the session waits on.
            warn!("cannot move a resumed socket: {e}");
            return;
        }
        if let Some(conn) = get(&mut self.clients, to) {
            conn.resume(claim, &self.limits);
            self.metrics.resumes += 1;
        }
        self.after(to);
    }

    /// Called when a connection is gone: its key goes, unless a newer session took it.
    pub(super) fn forget_session(&mut self, conn: ConnKey, session: Option<&str>) {
        if let Some(session) = session
            && self.sessions.keys.get(session) == Some(&conn)
        {
            self.sessions.keys.remove(session);
        }
    }

    /// Keeps the parked budget after something happened to `key`: over `--resume-max-bytes`,
    /// the sessions parked longest end first (1008).
    pub(super) fn account_parked(&mut self, key: ConnKey) {
        let kept = peek(&self.clients, key)
            .and_then(Conn::parked)
            .map(|(b, _)| b);
        if kept.is_none() && self.sessions.parked.is_empty() {
            return;
        }
        self.sessions.account(key, kept);
        let mut ended = Vec::new();
        while self.sessions.parked_bytes > self.sessions.max_parked_bytes {
            let oldest = self
                .sessions
                .parked
                .keys()
                .filter_map(|&k| Some((peek(&self.clients, k)?.parked()?.1?, k)))
                .min_by_key(|&(since, _)| since);
            let Some((_, oldest)) = oldest else { break };
            if let Some(conn) = get(&mut self.clients, oldest) {
                info!("parked sessions over --resume-max-bytes; ending the oldest");
                conn.end_parked(close::POLICY, "resume buffer full");
            }
            self.sessions.account(oldest, None);
            ended.push(oldest);
        }
        for key in ended {
            self.after(key);
        }
    }
}

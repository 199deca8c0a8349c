//! What a resumable session does with the messages it is sent: it counts and keeps each (the
//! ring of `ws::session`), parks when its socket drops, keeps them while it waits, and after a
//! resume replays everything the client missed, paced by what the socket takes, with live
//! messages queued behind the replay.

use std::time::Instant;

use log::info;

use super::conn::{Conn, Phase, SendError};
use crate::ws::close;
use crate::ws::deflate_slot::DeflateSlot;
use crate::ws::message::{Frames, Message};
use crate::ws::session::{Hold, Overflow};

/// What a session did with a message given to it (see `Conn::send_message`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kept {
    /// No session takes it: the connection sends it as any other.
    No,
    /// Counted and kept; the connection sends it now.
    Live,
    /// Kept behind a replay still under way; it goes out in its turn.
    Behind,
    /// Kept for a client that is away (parked or resuming).
    Waiting,
}

impl Conn {
    /// Counts and keeps a message for a resumable session. A session that waits for its
    /// client and cannot keep it any more ends (1008 "resume buffer full").
    pub(super) fn keep(&mut self, message: &Message) -> Result<Kept, SendError> {
        let Some(session) = self.session.as_mut() else {
            return Ok(Kept::No);
        };
        let kept = match self.phase {
            _ if self.close_code.is_some() => return Ok(Kept::No),
            Phase::Open { .. } if session.behind.is_some() => Kept::Behind,
            Phase::Open { .. } => Kept::Live,
            Phase::Parked { .. } | Phase::Resuming { .. } => Kept::Waiting,
            _ => return Ok(Kept::No),
        };
        match session.ring.push(message.clone(), message.payload.len()) {
            Ok(()) => Ok(kept),
            // A live ring drops its oldest messages instead; only a held one overflows.
            Err(Overflow) => {
                info!(
                    "{}: more than --resume-buffer to keep, session ends",
                    self.id()
                );
                self.close(close::POLICY, "resume buffer full");
                Err(SendError::SlowConsumer)
            }
        }
    }

    /// The socket of a resumable session dropped: the session waits for its client, keeping
    /// everything from now on. Returns false (nothing done) for other connections.
    pub(super) fn park(&mut self) -> bool {
        let Some(session) = &mut self.session else {
            return false;
        };
        // What the client is owed: everything sent, or (dropped during a replay) everything
        // after the count it resumed with.
        let owed_after = match session.ring.hold() {
            Hold::After(n) => n,
            Hold::Recent => session.ring.sent(),
        };
        session.ring.set_hold(Hold::After(owed_after));
        session.behind = None;
        let kept = session.ring.len();
        // Compression state belongs to the socket; a resume negotiates afresh.
        self.deflate = DeflateSlot::Off;
        self.events.shrink();
        info!("{}: dropped, parked with {kept} messages kept", self.id());
        self.phase = Phase::Parked {
            since: Instant::now(),
        };
        true
    }

    /// Right after the 101 of a resume: every message after the `received`-th goes out, in
    /// order, as fast as the socket takes them (see [`Conn::pump`]).
    pub(super) fn begin_replay(&mut self, received: u64) {
        let Some(session) = &mut self.session else {
            return;
        };
        match session.ring.resume_from(received) {
            Ok(()) => {
                session.behind = Some(received);
                self.pump();
            }
            // A resuming session keeps everything after the client's count, and nothing was
            // sent before this check: this only guards that promise.
            Err(e) => {
                session.replay_refused = true;
                info!("{}: cannot replay: {e}", self.id());
                self.close(super::resuming::CANNOT_RESUME, "cannot resume");
            }
        }
    }

    /// Queues the next messages of a replay while the outgoing buffer takes them; true when
    /// it queued any. The replay is over when the last kept message is queued.
    pub(super) fn pump(&mut self) -> bool {
        let (Some(session), Phase::Open { wire, .. }) = (&mut self.session, &mut self.phase) else {
            return false;
        };
        let Some(start) = session.behind else {
            return false;
        };
        // Frames for the encoding this socket negotiated, whatever the old one had.
        let mut queued = start;
        while let Some(message) = session.ring.get(queued + 1) {
            if wire
                .queue_frame(
                    &mut Frames::new(message.clone()),
                    0,
                    &mut self.deflate,
                    &mut self.traffic,
                )
                .is_err()
            {
                break;
            }
            queued += 1;
        }
        if queued == session.ring.sent() {
            session.behind = None;
            session.ring.set_hold(Hold::Recent);
        } else {
            session.behind = Some(queued);
        }
        queued > start
    }

    /// Ends a session that waits for its client (window over, parked budget spent): the close
    /// event goes to the backend with `code`.
    pub fn end_parked(&mut self, code: u16, reason: &str) {
        if let Phase::Parked { .. } = self.phase {
            info!("{}: session ends: {reason}", self.id());
            self.phase = Phase::Closed;
            self.ended(code, reason.to_string());
        }
    }

    /// For a session waiting for its client: what it keeps, in bytes, and since when it is
    /// parked (`None` while its resume is at the backend).
    pub fn parked(&self) -> Option<(usize, Option<Instant>)> {
        let kept = self.session.as_ref().map_or(0, |s| s.ring.bytes());
        match self.phase {
            Phase::Parked { since } => Some((kept, Some(since))),
            Phase::Resuming { .. } => Some((kept, None)),
            _ => None,
        }
    }

    /// Whether a replay was refused with 4409 since the last call (see `Session`), so that
    /// the hub counts it once among the refused resumes.
    pub fn take_replay_refused(&mut self) -> bool {
        let session = self.session.as_deref_mut();
        session.is_some_and(|s| std::mem::take(&mut s.replay_refused))
    }

    /// A replay is under way: nothing may be written to the socket around it.
    pub(super) fn replaying(&self) -> bool {
        self.session.as_ref().is_some_and(|s| s.behind.is_some())
    }
}

//! Applying the backend's answer to the event in flight: accept or reject an open, send the
//! reply body, store metadata, close on request, or close with 1011 when the backend failed.

use log::{debug, warn};

use super::conn::{Conn, Limits, Written};
use super::message::{Frames, Message};
use crate::events::BackendError;
use crate::events::EventName;
use crate::reply::Reply;
use crate::ws::{close, handshake};

impl Conn {
    /// Applies the backend's answer to the event in flight.
    pub fn on_reply(&mut self, result: Result<Reply, BackendError>, limits: &Limits) {
        self.last_message = std::time::Instant::now();
        let Some(event) = self.events.finish() else {
            return;
        };
        match (event, result) {
            // A resume is answered like an open: accepted, or the handshake is refused.
            (EventName::Open | EventName::Resume, Ok(reply)) if reply.is_success() => {
                self.accept(reply, limits)
            }
            (EventName::Open | EventName::Resume, Ok(reply)) => {
                // 1xx and 2xx cannot end a handshake; such an answer is a broken backend.
                let status = if (300..600).contains(&reply.status) {
                    reply.status
                } else {
                    502
                };
                let ctype = reply.content_type.as_deref().unwrap_or("text/plain");
                self.reject(
                    status,
                    handshake::error_response(status, ctype, &[], &reply.body),
                );
            }
            (EventName::Open | EventName::Resume, Err(e)) => {
                debug!("{}: open failed: {e}", self.id());
                let body = format!("backend failed: {e}\n");
                let status = e.open_status();
                self.reject(
                    status,
                    handshake::error_response(status, "text/plain", &[], body.as_bytes()),
                );
            }
            (EventName::Message, Err(e)) => {
                debug!("{}: message not handled: {e}", self.id());
                self.close(close::INTERNAL_ERROR, "backend error");
            }
            (EventName::Close | EventName::Reset, Err(e)) => {
                debug!("{}: close event failed: {e}", self.id());
            }
            (_, Ok(reply)) => self.apply(reply),
        }
        self.finish_failing();
        // A connection paused at --max-pending (or by saturation) resumes here.
        self.read_on(limits);
        self.flush();
    }

    /// Body, metadata and close request of a reply, in that order.
    pub(super) fn apply(&mut self, mut reply: Reply) {
        for w in &reply.warnings {
            warn!("{}: {w}", self.id());
        }
        if let Some(w) = crate::reply::apply_meta(&mut self.meta, &reply.set_meta) {
            warn!("{}: {w}", self.id());
        }
        if reply.has_message() {
            let message = Message::new(reply.is_binary(), std::mem::take(&mut reply.body));
            let mut frames = Frames::prepared(message, reply.deflated.take());
            let _ = self.send_message(&mut frames, Written::Nothing);
        }
        if let Some(req) = reply.close {
            self.close(req.code, &req.reason);
        }
    }
}

//! How a connection ends: the closing handshake, failing on a protocol violation, server
//! shutdown, dropping the socket, lingering until the client has closed too, and the access
//! log line once it is gone.
//!
//! Every way out of `Open` queues the close event exactly once (see [`Conn::ended`]).

use std::io::{self, Read};
use std::time::Instant;

use log::info;
use tungstenite::protocol::WebSocketContext;
use tungstenite::protocol::frame::CloseFrame;

use super::conn::{Conn, Limits, Phase, Readable};
use super::wire::Wire;
use crate::events::EventKind;
use crate::ws::close;
use crate::ws::reading::Io;

impl Conn {
    /// Starts the closing handshake with `code`; the close event carries the same code.
    /// A connection that is failing sends its close frame now, with this code and reason:
    /// its close event went out with the violation's code already.
    pub fn close(&mut self, code: u16, reason: &str) {
        match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Open { wire, reader, .. } => {
                self.phase = closing(wire, reader.into_closing(), code, reason);
                self.ended(code, reason.to_string());
            }
            Phase::Failing {
                wire, ws, since, ..
            } => {
                self.phase = Phase::Failing {
                    wire,
                    ws,
                    code,
                    reason: close::truncate_reason(reason),
                    since,
                };
                self.send_failure();
            }
            // A session waiting for its client ends here; a socket waiting for the 101 of
            // its resume is dropped (its client will find the key gone).
            Phase::Parked { .. } | Phase::Resuming { .. } => self.ended(code, reason.to_string()),
            other => self.phase = other,
        }
    }

    /// Fails the WebSocket connection (RFC 6455 §7.1.7): a close frame with `code`, then TCP
    /// close. The frame reader is in an undefined state after an error, so it is never asked
    /// for another frame; whatever the client still sends is discarded.
    ///
    /// Messages accepted before the violation are not lost: while their events are waiting or
    /// at the backend, the close frame is held back (phase `Failing`) so the replies still
    /// reach the client first.
    pub(super) fn fail(&mut self, code: u16, reason: &str) {
        match std::mem::replace(&mut self.phase, Phase::Closed) {
            Phase::Open { wire, reader, .. } => {
                self.ended(code, reason.to_string());
                self.phase = Phase::Failing {
                    wire,
                    ws: reader.into_closing(),
                    code,
                    reason: close::truncate_reason(reason),
                    since: Instant::now(),
                };
                self.finish_failing();
            }
            // Our close frame is out already: stop reading, finish writing.
            Phase::Closing { wire, .. } => {
                self.phase = Phase::Finishing {
                    wire,
                    since: Instant::now(),
                }
            }
            other => self.phase = other,
        }
    }

    /// Sends the held close frame once no reply to an earlier message can come any more.
    pub(super) fn finish_failing(&mut self) {
        if matches!(self.phase, Phase::Failing { .. }) && !self.events.carries_message() {
            self.send_failure();
        }
    }

    /// The close frame of a failing connection, now; then the TCP close.
    pub(super) fn send_failure(&mut self) {
        let Phase::Failing {
            wire,
            ws,
            code,
            reason,
            ..
        } = std::mem::replace(&mut self.phase, Phase::Closed)
        else {
            return;
        };
        if let Phase::Closing { wire, .. } = closing(wire, ws, code, &reason) {
            self.phase = Phase::Finishing {
                wire,
                since: Instant::now(),
            };
        }
    }

    /// The WebSocket is over: queue the close event (exactly once: only the transitions out
    /// of `Open`, or out of a session waiting for its client, call this) and remember the code
    /// for the access log. A resumable session's kept messages go with it.
    pub(super) fn ended(&mut self, code: u16, reason: String) {
        if let Some(session) = &mut self.session {
            session.ring.clear();
        }
        self.close_code = Some(code);
        self.events.push(EventKind::Close { code, reason });
    }

    /// The close code the WebSocket ended with, once it ended.
    pub fn close_code(&self) -> Option<u16> {
        self.close_code
    }

    /// The access log: one line per connection that was open, once it is gone: who, how long, how much, how it ended.
    pub fn log_end(&self) {
        let (Some(info), Some(code)) = (self.info(), self.close_code()) else {
            return;
        };
        let secs = info.connected_at.elapsed().map_or(0.0, |d| d.as_secs_f64());
        let t = self.traffic();
        info!(
            "closed id={} path={} remote={} duration={secs:.3}s messages_in={} messages_out={} bytes_in={} bytes_out={} code={code}",
            info.id,
            info.target,
            info.remote,
            t.messages_in,
            t.messages_out,
            t.bytes_in,
            t.bytes_out
        );
    }

    /// Server shutdown: an open connection is read one last time and closed with 1001, a
    /// handshake in progress is dropped; an open event already at the backend finishes first
    /// (the hub then calls again).
    pub fn shut_down(&mut self, limits: &Limits) {
        match self.phase {
            Phase::Open { .. } => {
                // Messages the client sent before the shutdown are accepted, not lost.
                self.read_frames(limits, Readable::Unsure);
                // Unless that last read found a violation: then the connection is failing,
                // and its close frame waits for the replies already on their way.
                if self.is_open() {
                    self.close(close::GOING_AWAY, "server shutting down");
                }
            }
            Phase::Handshake { .. } | Phase::Claiming(_) => self.phase = Phase::Closed,
            Phase::Parked { .. } => self.close(close::GOING_AWAY, "server shutting down"),
            _ => {}
        }
        self.flush();
    }

    /// Closes TCP at once. Fires the close event if the WebSocket was open.
    pub(super) fn drop_socket(&mut self, code: u16, reason: &str) {
        // A client that only half-closed may still read: give it what is queued, best effort.
        if let Some(wire) = self.wire() {
            let _ = wire.flush();
        }
        // A resumable session waits for its client instead (see `ws::replay`), also when the
        // socket it was resuming on fails before the 101: its client will try again.
        if let Phase::Open { .. } | Phase::Resuming { .. } =
            std::mem::replace(&mut self.phase, Phase::Closed)
            && !self.park()
        {
            self.ended(code, reason.to_string());
        }
    }

    /// The last bytes are out: shut down our side and wait for the client's FIN.
    pub(super) fn linger(&mut self) {
        let Phase::Finishing { mut wire, .. } = std::mem::replace(&mut self.phase, Phase::Closed)
        else {
            return;
        };
        if wire.sock.shutdown_write().is_ok() {
            self.phase = Phase::Lingering {
                sock: wire.sock.into_socket(),
                since: Instant::now(),
            };
            self.discard_input();
        }
    }

    pub(super) fn discard_input(&mut self) {
        let Phase::Lingering { sock, .. } = &mut self.phase else {
            return;
        };
        let mut sink = [0u8; 1024];
        loop {
            match sock.read(&mut sink) {
                Ok(n) if n > 0 => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                _ => return self.phase = Phase::Closed,
            }
        }
    }
}

/// Queues our close frame (through tungstenite, which then expects the client's) and waits.
pub(super) fn closing(
    mut wire: Wire,
    mut ws: Box<WebSocketContext>,
    code: u16,
    reason: &str,
) -> Phase {
    let frame = CloseFrame {
        code: code.into(),
        reason: close::truncate_reason(reason).into(),
    };
    let _ = ws.close(
        &mut Io {
            sock: &mut wire.sock,
            out: &mut wire.out,
            frames: None,
            inflow: None,
            drained: None,
        },
        Some(frame),
    );
    Phase::Closing {
        wire,
        ws,
        since: Instant::now(),
    }
}

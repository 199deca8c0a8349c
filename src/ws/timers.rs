//! A connection's timers, checked on every reactor tick: the handshake timeout, the idle
//! timeout, pings and dead peers, closes that take too long, and sessions whose client did
//! not come back within `--resume-window`.

use std::time::{Duration, Instant};

use log::{debug, info};

use super::conn::{Conn, Limits, Phase, Ping};
use crate::ws::{close, frame};

/// How long a close handshake (or the last bytes before a close) may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

impl Conn {
    /// Timers: handshake timeout, pings, dead peers, stuck closes.
    pub fn tick(&mut self, now: Instant, limits: &Limits) {
        let started = self.last_heard;
        match &mut self.phase {
            Phase::Handshake { .. } if now.duration_since(started) > limits.handshake_timeout => {
                debug!("{}: handshake timeout", self.remote);
                self.phase = Phase::Closed;
            }
            // Busy is not idle: a connection waiting for the backend (or paused by backpressure)
            // may not be read, so its silence says nothing.
            Phase::Open { .. }
                if self.events.is_idle()
                    && limits
                        .idle_timeout
                        .is_some_and(|idle| now.duration_since(self.last_message) >= idle) =>
            {
                info!("{}: idle timeout", self.id());
                self.close(close::NORMAL, "idle timeout");
            }
            Phase::Open { wire, ping, .. } => {
                let Some(interval) = limits.ping_interval else {
                    return;
                };
                match *ping {
                    Ping::Idle if now.duration_since(started) >= interval => {
                        let _ = wire.out.push(frame::encode(frame::OP_PING, b""));
                        *ping = Ping::Sent(now);
                        self.flush();
                    }
                    Ping::Sent(at) if now.duration_since(at) >= interval => {
                        info!("{}: no answer to ping, dropping", self.id());
                        self.drop_socket(close::ABNORMAL, "ping timeout");
                    }
                    _ => {}
                }
            }
            Phase::Parked { since }
                if limits
                    .resume_window
                    .is_none_or(|window| now.duration_since(*since) >= window) =>
            {
                self.end_parked(close::ABNORMAL, "resume window expired");
            }
            Phase::Failing { since, .. } if now.duration_since(*since) > limits.reply_grace => {
                self.send_failure();
                self.flush();
            }
            Phase::Closing { since, .. }
            | Phase::Finishing { since, .. }
            | Phase::Lingering { since, .. }
                if now.duration_since(*since) > CLOSE_TIMEOUT =>
            {
                self.phase = Phase::Closed;
            }
            _ => {}
        }
    }
}

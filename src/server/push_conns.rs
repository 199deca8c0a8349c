//! The push API's connections on the reactor: accepting them (at most
//! [`MAX_API_CONNECTIONS`]) and handing their requests to the hub.

use std::io;

use log::{log, warn};
use mio::Interest;

use super::{Server, token};
use crate::api::conn::{Answer, ApiConn};
use crate::api::request::Request;
use crate::api::response::Response;
use crate::api::routes::{self, ApiError};

/// Most simultaneous push-API connections; more are refused at accept.
const MAX_API_CONNECTIONS: usize = 1024;

impl Server {
    pub(super) fn accept_api(&mut self) {
        loop {
            match self.push_listener.accept() {
                Ok((mut sock, remote)) => {
                    if self.api.len() >= MAX_API_CONNECTIONS {
                        warn!("{remote}: push API connection refused: {MAX_API_CONNECTIONS} open");
                        continue;
                    }
                    let entry = self.api.vacant_entry();
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    match self.poll.registry().register(
                        &mut sock,
                        token::api(entry.key()),
                        interest,
                    ) {
                        Ok(()) => {
                            entry.insert(ApiConn::new(sock, self.max_message + 64 * 1024));
                        }
                        Err(e) => warn!("{remote}: cannot register: {e}"),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    warn!("push API accept failed: {e}");
                    return;
                }
            }
        }
    }

    pub(super) fn on_api_ready(&mut self, index: usize, readable: bool, writable: bool) {
        let Some(conn) = self.api.get_mut(index) else {
            return;
        };
        if readable {
            let (hub, token) = (&mut self.hub, self.push_token.as_deref());
            #[cfg(feature = "redis")]
            let remote = &mut self.remote;
            let mut handle = |req: &Request| -> Answer {
                let answer = routes::route(req, token).and_then(|command| {
                    #[cfg(feature = "redis")]
                    if let Some(remote) = remote.as_mut() {
                        return remote.execute(hub, command, index);
                    }
                    hub.execute_or_offload(command, index)
                });
                answer.unwrap_or_else(|e| {
                    // A Redis outage is logged once, when it starts; not once more per call.
                    let level = match e {
                        ApiError::Unavailable(_) => log::Level::Debug,
                        _ => log::Level::Info,
                    };
                    log!(
                        level,
                        "push API {:?} {}: {} {e}",
                        req.method,
                        req.path,
                        e.status()
                    );
                    Answer::Now(Response::error(&e))
                })
            };
            conn.on_readable(self.max_message, &mut handle);
        }
        if writable {
            conn.flush();
        }
        if conn.is_closed() {
            self.api.remove(index);
        }
    }
}

#[cfg(feature = "redis")]
impl Server {
    /// What the Redis link reported: carried out here, and answers for waiting connections.
    pub(super) fn on_cluster(&mut self) {
        if let Some(remote) = &mut self.remote {
            let ready = remote.on_link(&mut self.hub);
            self.answer_later(ready);
        }
    }

    pub(super) fn cluster_tick(&mut self, now: std::time::Instant) {
        if let Some(remote) = &mut self.remote {
            remote.flush_outbox(&mut self.hub);
            let ready = remote.tick(&mut self.hub, now);
            self.answer_later(ready);
        }
    }

    /// Answers that waited for other instances; a connection that went away meanwhile (its
    /// slot may hold a newer one, with another ticket) gets nothing.
    fn answer_later(&mut self, ready: Vec<super::remote::Ready>) {
        for r in ready {
            match self.api.get_mut(r.index) {
                Some(conn) if conn.waiting_for() == Some(r.ticket) => conn.resume(&r.response),
                _ => continue,
            }
            self.on_api_ready(r.index, true, true);
        }
    }
}

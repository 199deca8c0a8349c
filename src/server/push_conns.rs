//! The push API's connections on the reactor: accepting them (at most
//! [`MAX_API_CONNECTIONS`]) and handing their requests to the hub.

use std::io;

use log::{info, warn};
use mio::Interest;

use super::{Server, token};
use crate::api::conn::ApiConn;
use crate::api::request::Request;
use crate::api::response::Response;
use crate::api::routes;

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
            let mut handle = |req: &Request| -> Response {
                match routes::route(req, token).and_then(|command| hub.execute(command)) {
                    Ok(response) => response,
                    Err(e) => {
                        info!("push API {:?} {}: {} {e}", req.method, req.path, e.status());
                        Response::error(&e)
                    }
                }
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

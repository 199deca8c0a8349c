//! The start of a connection: reading the upgrade request, turning it into an open event,
//! and answering it with 101 (or an HTTP rejection) once the backend has spoken.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use log::{debug, info, warn};
use tungstenite::Bytes;

use super::boundaries::Boundaries;
use super::conn::{Conn, Limits, Phase, Ping};
use super::reader::Reader;
use crate::backend::spec;
use crate::events::{ConnInfo, EventKind};
use crate::headers;
use crate::random;
use crate::reply::Reply;
use crate::static_files::{self, StaticRequest};
use crate::ws::close;
use crate::ws::deflate_slot::DeflateSlot;
use crate::ws::extensions::{self, Params, Policy};
use crate::ws::handshake::{self, HandshakeError, Upgrade};
use crate::ws::resume_query::{self, ResumeRequest};

impl Conn {
    pub(super) fn read_handshake(&mut self, limits: &Limits) {
        let Phase::Handshake { wire, head } = &mut self.phase else {
            return;
        };
        let mut chunk = [0u8; 2048];
        loop {
            match wire.sock.read(&mut chunk) {
                Ok(0) => return self.phase = Phase::Closed,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // With TLS: a client that does not speak it (plain HTTP, garbage) ends here.
                Err(e) => {
                    debug!("{}: closed during the handshake: {e}", self.remote);
                    return self.phase = Phase::Closed;
                }
            }
            match handshake::parse(head) {
                Ok(None) => continue,
                Ok(Some((upgrade, n))) => {
                    let tail = head.split_off(n);
                    return self.upgrade_requested(upgrade, tail, limits);
                }
                Err(HandshakeError::NotUpgrade) if limits.static_files => {
                    return self.plain_request();
                }
                Err(e) => {
                    info!("{}: handshake rejected: {e}", self.remote);
                    return self.reject(e.status(), handshake::rejection(&e));
                }
            }
        }
    }

    /// A plain GET or HEAD with `--static`: a worker reads the file (see `static_files`).
    fn plain_request(&mut self) {
        let Phase::Handshake { wire, head } = std::mem::replace(&mut self.phase, Phase::Closed)
        else {
            return;
        };
        match static_files::request(&head) {
            Ok(request) => {
                self.phase = Phase::Serving {
                    wire,
                    request: Some(request),
                }
            }
            Err(response) => {
                self.phase = Phase::Serving {
                    wire,
                    request: None,
                };
                self.answer_plain(response);
            }
        }
    }

    /// The static request for a worker, taken once.
    pub fn take_static_request(&mut self) -> Option<StaticRequest> {
        match &mut self.phase {
            Phase::Serving { request, .. } => request.take(),
            _ => None,
        }
    }

    /// Sends the response to a plain request, then closes.
    pub fn answer_plain(&mut self, response: Vec<u8>) {
        let Phase::Serving { mut wire, .. } = std::mem::replace(&mut self.phase, Phase::Closed)
        else {
            return;
        };
        if wire.out.push(Bytes::from(response)).is_ok() {
            self.phase = Phase::Finishing {
                wire,
                since: Instant::now(),
            };
            self.flush();
        }
    }

    fn upgrade_requested(&mut self, mut upgrade: Upgrade, tail: Vec<u8>, limits: &Limits) {
        if let Some(origin) = upgrade.header("origin")
            && !origin_allowed(&limits.origins, origin)
        {
            info!("{}: origin {origin:?} not allowed (--origin)", self.remote);
            let body = b"origin not allowed\n";
            return self.reject(403, handshake::error_response(403, "text/plain", &[], body));
        }
        // The key is a secret: from here on, the target is the one the backend sees.
        let request = match resume_query::take(&upgrade.target) {
            Ok((target, request)) => {
                upgrade.target = target;
                request
            }
            Err(e) => {
                info!("{}: handshake rejected: {e}", self.remote);
                let body = format!("{e}\n");
                let response = handshake::error_response(400, "text/plain", &[], body.as_bytes());
                return self.reject(400, response);
            }
        };
        let Some(route) = spec::select(&limits.routes, upgrade.path()) else {
            info!("{}: no route for {}", self.remote, upgrade.path());
            let body = b"no WebSocket endpoint at this path\n";
            return self.reject(404, handshake::error_response(404, "text/plain", &[], body));
        };
        match request {
            // With resume off, a key asks for nothing; a resume finds no session (4409).
            Some(ResumeRequest::Start { .. }) if limits.resume_window.is_none() => {
                self.begin_open(upgrade, tail, route, limits)
            }
            Some(request) => self.claim_session(upgrade, tail, route, request),
            None => self.begin_open(upgrade, tail, route, limits),
        }
    }

    /// A new connection: it gets its id, and its open event is queued.
    pub(super) fn begin_open(
        &mut self,
        upgrade: Upgrade,
        tail: Vec<u8>,
        route: usize,
        limits: &Limits,
    ) {
        let id = match random::new_id() {
            Ok(id) => format!("{}{id}", limits.id_prefix),
            Err(e) => {
                warn!("no connection id: {e}");
                return self.reject(
                    500,
                    handshake::error_response(500, "text/plain", &[], b"no connection id\n"),
                );
            }
        };
        self.info = Some(conn_info(
            id,
            &upgrade,
            self.remote,
            route,
            limits,
            SystemTime::now(),
        ));
        let Some(wire) = self.take_wire() else {
            return;
        };
        self.phase = Phase::Opening {
            wire,
            deflate: deflate_offer(&upgrade, limits),
            key: upgrade.key,
            offered: upgrade.protocols,
            tail,
        };
        self.events.push(EventKind::Open);
    }

    /// Sends a complete HTTP response, then closes.
    /// A rejected resume ends its session: the backend hears `close` (its `open` was long
    /// ago accepted).
    pub(super) fn reject(&mut self, status: u16, response: Vec<u8>) {
        // Parked here: the resume's socket failed while the backend decided; the session ends
        // all the same.
        if let Phase::Resuming { .. } | Phase::Parked { .. } = self.phase {
            self.ended(close::ABNORMAL, "resume rejected".into());
        }
        self.rejected = Some(status);
        let Some(wire) = self.take_wire() else { return };
        let mut wire = wire;
        // A 64 KiB rejection body fits any sane --max-outbuf; a bigger one is cut by the limit.
        if wire.out.push(Bytes::from(response)).is_err() {
            return;
        }
        self.phase = Phase::Finishing {
            wire,
            since: Instant::now(),
        };
    }

    /// The open event succeeded: answer 101 and start the WebSocket.
    pub(super) fn accept(&mut self, reply: Reply, limits: &Limits) {
        let (mut wire, key, offered, tail, deflate, resumed) =
            match std::mem::replace(&mut self.phase, Phase::Closed) {
                Phase::Opening {
                    wire,
                    key,
                    offered,
                    tail,
                    deflate,
                } => (wire, key, offered, tail, deflate, None),
                Phase::Resuming {
                    wire,
                    key,
                    offered,
                    tail,
                    received,
                    deflate,
                } => (wire, key, offered, tail, deflate, Some(received)),
                // A resume whose socket failed while the backend decided: the session goes on
                // waiting for its client, with what the answer says.
                parked @ Phase::Parked { .. } => {
                    self.phase = parked;
                    return self.apply(reply);
                }
                other => return self.phase = other,
            };
        if let Some(p) = &reply.protocol
            && !offered.iter().any(|o| o == p)
        {
            warn!(
                "{}: backend chose subprotocol {p:?}, which the client did not offer",
                self.id()
            );
            self.phase = match resumed {
                None => Phase::Opening {
                    wire,
                    key,
                    offered,
                    tail,
                    deflate,
                },
                Some(received) => Phase::Resuming {
                    wire,
                    key,
                    offered,
                    tail,
                    received,
                    deflate,
                },
            };
            let body = b"backend chose a subprotocol the client did not offer\n";
            return self.reject(502, handshake::error_response(502, "text/plain", &[], body));
        }
        let answer = deflate.map(|p| p.answer());
        let response =
            handshake::accept_response(&key, reply.protocol.as_deref(), answer.as_deref());
        let _ = wire.out.push(Bytes::from(response));
        self.deflate = DeflateSlot::accepted(deflate, limits);
        // Bytes that came with the handshake are frames too: the trackers must see them.
        let deflate = match tail.is_empty() {
            true => None,
            false => self.deflate.busy(limits),
        };
        let tail = match deflate {
            Some(d) => d.inflate_tail(&tail),
            None => tail,
        };
        self.settle_inflow();
        let mut frames = Boundaries::default();
        frames.feed(&tail);
        self.phase = Phase::Open {
            wire,
            reader: Reader::open(tail, limits.ws_config),
            ping: Ping::Idle,
            frames,
        };
        self.last_heard = Instant::now();
        // Missed messages first, then live ones (the reply's body is one of those).
        if let Some(received) = resumed {
            self.begin_replay(received);
        }
        self.apply(reply);
    }
}

/// The facts of a connection's handshake that its events carry; `--pass-header` picks the
/// headers.
pub(super) fn conn_info(
    id: String,
    upgrade: &Upgrade,
    remote: SocketAddr,
    route: usize,
    limits: &Limits,
    connected_at: SystemTime,
) -> Arc<ConnInfo> {
    let headers = upgrade
        .headers
        .iter()
        .filter(|(name, _)| {
            limits
                .pass_headers
                .iter()
                .any(|p| headers::name_is(name, p))
        })
        .cloned()
        .collect();
    Arc::new(ConnInfo {
        id,
        target: upgrade.target.clone(),
        remote,
        remote_text: remote.to_string(),
        route,
        headers,
        connected_at,
    })
}

/// The permessage-deflate offer of an upgrade request that the 101 will accept, if any (a
/// resume negotiates afresh: its new socket may offer other parameters, or none).
pub(super) fn deflate_offer(upgrade: &Upgrade, limits: &Limits) -> Option<Params> {
    let offers = headers::values(&upgrade.headers, "sec-websocket-extensions");
    limits.deflate.and_then(|d| {
        let policy = Policy {
            context_takeover: d.context_takeover,
        };
        extensions::negotiate(offers, policy)
    })
}

/// Browsers always send `Origin`; other clients need not, and are not cross-site anyway.
/// Patterns are exact origins or `*.example.com`, which matches subdomains on any scheme/port.
pub fn origin_allowed(patterns: &[String], origin: &str) -> bool {
    if patterns.is_empty() {
        return true;
    }
    let origin = origin.trim().to_ascii_lowercase();
    let host = origin
        .split_once("://")
        .map_or(origin.as_str(), |(_, rest)| rest);
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    patterns.iter().any(|p| match p.strip_prefix("*.") {
        Some(domain) => {
            host.len() > domain.len() + 1
                && host.ends_with(domain)
                && host[..host.len() - domain.len()].ends_with('.')
        }
        None => *p == origin,
    })
}

#[cfg(test)]
mod tests {
    use super::origin_allowed;

    #[test]
    fn origins() {
        let p: Vec<String> = ["https://example.com", "*.example.org"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(origin_allowed(&[], "https://evil.test"));
        assert!(origin_allowed(&p, "https://example.com"));
        assert!(origin_allowed(&p, "HTTPS://EXAMPLE.COM"));
        assert!(!origin_allowed(&p, "http://example.com"));
        assert!(!origin_allowed(&p, "https://example.com.evil.test"));
        assert!(origin_allowed(&p, "https://chat.example.org"));
        assert!(origin_allowed(&p, "http://a.b.example.org:8080"));
        assert!(!origin_allowed(&p, "https://example.org"));
        assert!(!origin_allowed(&p, "https://badexample.org"));
        assert!(!origin_allowed(&p, "null"));
    }
}

//! The WebSocket connections and everything that acts on them: accepting, readiness, backend
//! results, timers. The one place that dispatches events to the pool and the one place that
//! removes a connection. Push-API commands are in `commands.rs`, fan-out in `fanout.rs`.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use log::warn;
use mio::net::TcpStream;
use mio::{Interest, Registry};

use super::clients::{Clients, get};
use super::fanout::{Fanout, Recipients, Routing, Sent};
use super::sessions::Sessions;
use crate::burst_log::BurstLog;
use crate::channels::Channels;
use crate::conn_id::{ConnKey, Generations};
use crate::events::{Done, EventKind, EventName, Job, Work};
use crate::metrics::Metrics;
use crate::pool::Pool;
use crate::server::token;
use crate::ws::close;
use crate::ws::conn::{Conn, Limits, Readable};
use crate::ws::direct;
use crate::ws::handshake;
use crate::ws::transport::Security;

/// Whether the startup `reset` event has been settled; open events wait until it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    /// Sent (or being retried); opens are held until it succeeds or the deadline passes.
    Pending { deadline: Instant },
    /// Succeeded, or the deadline passed (it may still be retried in the background).
    Settled,
}

pub struct Hub {
    pub(super) clients: Clients,
    /// Public connection id → key, for the push API.
    pub(super) ids: HashMap<String, ConnKey>,
    pub(super) channels: Channels,
    pub metrics: Metrics,
    generations: Generations,
    pub limits: Limits,
    pub max_connections: usize,
    pub pool: Pool,
    pub boot_id: Arc<str>,
    pub reset: Reset,
    /// Connections whose open event waits for the reset.
    held: HashSet<ConnKey>,
    /// Connections that stopped reading while the server was saturated: read again when it
    /// ends, without looking at every other connection.
    pub(super) paused: HashSet<ConnKey>,
    /// Set once shutdown began: every connection that opens is closed with 1001.
    shutting_down: bool,
    /// Backend failures (after retries), logged once per burst.
    failures: BurstLog,
    refusals: BurstLog,
    /// Jobs waiting for a worker beyond which the server counts as saturated: new clients get
    /// 503 and connections with events waiting are read no further.
    queue_cap: usize,
    /// Threads a large fan-out is written by (see `ws::direct`): one per core, at most 4.
    pub(super) writers: direct::Writers,
    /// Plain or TLS, for every client accepted (see `ws::transport`).
    pub security: Security,
    /// Resumable sessions by key, and the parked ones' budget (see `sessions.rs`).
    pub(super) sessions: Sessions,
    /// Push-API commands waiting for their messages to be compressed (see `offload.rs`).
    pub(super) offloads: super::offloads::Offloads,
    /// In a cluster: publishes of backend replies (`WS-Publish`) still to go to the other
    /// instances; the server hands them to the Redis link after each wake-up.
    #[cfg(feature = "redis")]
    pub(super) outbox: Option<Vec<crate::cluster::wire::Publish>>,
}

impl Hub {
    pub fn new(
        limits: Limits,
        max_connections: usize,
        queue_cap: usize,
        pool: Pool,
        boot_id: Arc<str>,
        reset: Reset,
        sessions: Sessions,
    ) -> Hub {
        Hub {
            clients: Clients::new(),
            ids: HashMap::new(),
            channels: Channels::default(),
            metrics: Metrics::default(),
            generations: Generations::default(),
            limits,
            max_connections,
            pool,
            boot_id,
            reset,
            held: HashSet::new(),
            paused: HashSet::new(),
            shutting_down: false,
            failures: BurstLog::new("backend failed"),
            refusals: BurstLog::new("refusing new clients"),
            queue_cap,
            writers: direct::Writers::per_core(),
            security: Security::Plain,
            sessions,
            offloads: Default::default(),
            #[cfg(feature = "redis")]
            outbox: None,
        }
    }

    /// Takes a new client, or turns it away with 503 when the server is full.
    pub fn add(&mut self, registry: &Registry, mut sock: TcpStream, remote: SocketAddr) {
        let full = self.clients.len() >= self.max_connections;
        if full || self.limits.saturated.get() {
            let why = match full {
                true => "connection limit reached (--max-connections)",
                false => "backend queue full",
            };
            self.refusals
                .record(Instant::now(), format_args!("{remote}: {why}"));
            // Best effort: a fresh socket's send buffer takes this small response at once. A TLS
            // client would read it as garbage (and a handshake costs what the server is short
            // of): it is just closed.
            if !self.security.is_tls() {
                let body = format!("server busy ({why}), try again later\n");
                let retry = [("Retry-After", "5")];
                let response =
                    handshake::error_response(503, "text/plain", &retry, body.as_bytes());
                let _ = sock.write(&response);
            }
            self.metrics.rejected += 1;
            return;
        }
        let _ = sock.set_nodelay(true);
        let entry = self.clients.vacant_entry();
        let key = ConnKey {
            index: entry.key(),
            generation: self.generations.next_generation(),
        };
        // Both interests, edge-triggered: WRITABLE only fires when a full socket drains.
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = registry.register(&mut sock, token::client(key.index), interest) {
            warn!("{remote}: cannot register: {e}");
            return;
        }
        match self.security.wrap(sock) {
            Ok(transport) => {
                entry.insert(Conn::with_transport(key, transport, remote, &self.limits));
            }
            Err(e) => warn!("{remote}: {e}"),
        }
    }

    pub fn on_ready(&mut self, index: usize, readable: Option<Readable>, writable: bool) {
        self.update_saturation();
        let Some(conn) = self.clients.get_mut(index) else {
            return;
        };
        let key = conn.key;
        if let Some(how) = readable {
            conn.on_readable(&self.limits, how);
        }
        if writable {
            conn.flush();
        }
        self.after(key);
    }

    /// A backend result; dropped if its connection is gone (the generation differs).
    /// Channel actions of the reply run after the connection applied the rest of it, so an open
    /// reply can subscribe the new connection and announce it in one go.
    pub fn on_done(&mut self, done: Done) {
        if self.refused(&done) {
            return;
        }
        let failed = done.result.is_err();
        self.metrics
            .backend_done(done.elapsed, done.retries, failed);
        if let Err(e) = &done.result {
            let id = done
                .key
                .and_then(|k| self.get(k))
                .and_then(|c| c.info().map(|i| i.id.clone()));
            let detail = format!(
                "{} event of {}: {e}",
                done.event.as_str(),
                id.as_deref().unwrap_or("-")
            );
            self.failures.record(Instant::now(), detail);
        }
        self.update_saturation();
        let Some(key) = done.key else { return };
        let Some(conn) = get(&mut self.clients, key) else {
            return;
        };
        let mut result = done.result;
        let routing = result.as_mut().ok().map(Routing::take);
        conn.on_reply(result, &self.limits);
        if done.event == EventName::Open && conn.is_open() {
            self.metrics.accepted += 1;
        }
        if self.shutting_down {
            conn.shut_down(&self.limits);
        }
        if let Some(routing) = routing {
            #[cfg(feature = "redis")]
            if let Some(outbox) = &mut self.outbox {
                outbox.extend(routing.beyond());
            }
            self.fan_out(|r| r.route(key, routing));
        }
        self.after(key);
    }

    /// Closes every connection with 1001; their close events still go to the backend. Held
    /// opens are released so that nothing accepted is left undelivered.
    pub fn shut_down(&mut self) {
        self.shutting_down = true;
        self.settle_reset();
        let keys: Vec<ConnKey> = self.clients.iter().map(|(_, c)| c.key).collect();
        for key in keys {
            if let Some(conn) = get(&mut self.clients, key) {
                conn.shut_down(&self.limits);
                self.after(key);
            }
        }
    }

    /// Saturation follows the pool's queue. When it ends, connections that stopped reading
    /// because of it are read again (their data may be waiting in the socket already, and an
    /// edge-triggered poll would not report it again): O(1) per call, amortized, since each of
    /// them was noted once when it stopped.
    pub(super) fn update_saturation(&mut self) {
        let was = self.limits.saturated.get();
        let now = self.pool.queued() >= self.queue_cap;
        self.limits.saturated.set(now);
        if was && !now {
            for key in std::mem::take(&mut self.paused) {
                self.after(key);
            }
        }
    }

    /// Every connection is settled (see `Conn::is_settled`).
    pub fn settled(&self) -> bool {
        self.clients.iter().all(|(_, c)| c.is_settled())
    }

    /// A worker's answer to a `--static` request.
    pub fn on_static(&mut self, key: ConnKey, response: Vec<u8>) {
        if let Some(conn) = self.get(key) {
            conn.answer_plain(response);
            self.after(key);
        }
    }

    pub fn tick(&mut self, now: Instant) {
        // Workers take jobs without telling the event loop: a queue that went under its cap
        // after the last event is noticed here, at the latest.
        self.update_saturation();
        self.failures.tick(now);
        self.refusals.tick(now);
        if let Reset::Pending { deadline } = self.reset
            && now >= deadline
        {
            warn!("reset event not answered in time; releasing held connections");
            self.settle_reset();
        }
        let keys: Vec<ConnKey> = self.clients.iter().map(|(_, c)| c.key).collect();
        for key in keys {
            if let Some(conn) = get(&mut self.clients, key) {
                conn.tick(now, &self.limits);
                self.after(key);
            }
        }
    }

    pub fn settle_reset(&mut self) {
        self.reset = Reset::Settled;
        for key in std::mem::take(&mut self.held) {
            self.after(key);
        }
    }

    pub(super) fn get(&mut self, key: ConnKey) -> Option<&mut Conn> {
        get(&mut self.clients, key)
    }

    /// Runs one fan-out on the hub's connections and channels, then looks after the targets
    /// that could not take the message.
    pub(super) fn fan_out(&mut self, f: impl FnOnce(&mut Recipients) -> Sent) -> Fanout {
        let sent = f(&mut Recipients {
            clients: &mut self.clients,
            channels: &mut self.channels,
            ids: &self.ids,
            metrics: &mut self.metrics,
            writers: &self.writers,
        });
        for key in sent.failed {
            self.after(key);
        }
        for key in sent.kept {
            self.account_parked(key);
        }
        sent.fanout
    }

    /// After anything happened to a connection: send its next event, or remove it when done.
    pub(super) fn after(&mut self, key: ConnKey) {
        self.settle_claim(key);
        self.dispatch(key);
        let Some(conn) = get(&mut self.clients, key) else {
            return;
        };
        // The event that just left may have made room under --max-pending; what that read
        // goes out at once if nothing is at the backend.
        if conn.read_on(&self.limits) {
            self.dispatch(key);
        }
        let Some(conn) = get(&mut self.clients, key) else {
            return;
        };
        match self.limits.saturated.get() && conn.stopped_reading() {
            true => self.paused.insert(key),
            false => self.paused.remove(&key),
        };
        if let Some(request) = conn.take_static_request() {
            self.pool.submit(Job {
                key: Some(key),
                work: Work::Static { key, request },
            });
        }
        // A parked session keeps its channels: what they publish waits for its client.
        if !conn.takes_messages() && !self.channels.of(key).is_empty() {
            self.channels.leave_all(key);
        }
        if conn.is_finished() {
            if let Some(info) = conn.info() {
                self.ids.remove(&info.id);
            }
            conn.log_end();
            self.metrics.closed_traffic.add(conn.traffic());
            if conn.rejected().is_some() {
                self.metrics.rejected += 1;
            }
            let conn = self.clients.remove(key.index);
            self.forget_session(key, conn.session_key());
        }
        self.account_parked(key);
    }

    /// Sends the connection's next event to the pool, unless one is at the backend (or it is
    /// an open held back until the reset event is settled).
    fn dispatch(&mut self, key: ConnKey) {
        let held_back = matches!(self.reset, Reset::Pending { .. });
        let Some(conn) = get(&mut self.clients, key) else {
            return;
        };
        match conn.next_event_name() {
            Some(EventName::Open) if held_back => {
                self.held.insert(key);
            }
            Some(name) => {
                if let Some(work) = conn.take_work(&self.boot_id, &self.limits) {
                    if name == EventName::Open
                        && let Some(info) = conn.info()
                    {
                        self.ids.insert(info.id.clone(), key);
                    }
                    if let Work::Deliver(event, _) = &work {
                        self.count_event(&event.kind);
                    }
                    self.pool.submit(Job {
                        key: Some(key),
                        work,
                    });
                }
            }
            None => {}
        }
    }

    fn count_event(&mut self, kind: &EventKind) {
        self.metrics.event_sent(kind.name());
        if let EventKind::Close {
            code: close::POLICY,
            reason,
        } = kind
            && reason == "slow consumer"
        {
            self.metrics.slow_consumer_closes += 1;
        }
    }
}

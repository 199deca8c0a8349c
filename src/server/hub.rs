//! The WebSocket connections and everything that acts on them: accepting, readiness, backend
//! results, push-API commands, timers. The one place that dispatches events to the pool and the
//! one place that removes a connection.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, UNIX_EPOCH};

use log::warn;
use mio::net::TcpStream;
use mio::{Interest, Registry};
use slab::Slab;

use crate::api::json;
use crate::api::response::Response;
use crate::api::routes::{ApiError, Command};
use crate::conn_id::{ConnKey, Generations};
use crate::events::{Done, EventName, Job};
use crate::pool::Pool;
use crate::server::token;
use crate::ws::conn::{Conn, Limits, SendError};
use crate::ws::frame;
use crate::ws::handshake;

/// Whether the startup `reset` event has been settled; open events wait until it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    /// Sent (or being retried); opens are held until it succeeds or the deadline passes.
    Pending { deadline: Instant },
    /// Succeeded, or the deadline passed (it may still be retried in the background).
    Settled,
}

pub struct Hub {
    pub clients: Slab<Conn>,
    ids: HashMap<String, ConnKey>,
    generations: Generations,
    pub limits: Limits,
    pub max_connections: usize,
    pub pool: Pool,
    pub boot_id: Arc<str>,
    pub reset: Reset,
    /// Connections whose open event waits for the reset.
    held: HashSet<ConnKey>,
}

impl Hub {
    pub fn new(
        limits: Limits,
        max_connections: usize,
        pool: Pool,
        boot_id: Arc<str>,
        reset: Reset,
    ) -> Hub {
        Hub {
            clients: Slab::new(),
            ids: HashMap::new(),
            generations: Generations::default(),
            limits,
            max_connections,
            pool,
            boot_id,
            reset,
            held: HashSet::new(),
        }
    }

    /// Takes a new client, or turns it away with 503 when the server is full.
    pub fn add(&mut self, registry: &Registry, mut sock: TcpStream, remote: SocketAddr) {
        if self.clients.len() >= self.max_connections {
            warn!(
                "{remote}: refused, {} connections open (--max-connections)",
                self.clients.len()
            );
            let body = b"server full, try again later\n";
            // Best effort: a fresh socket's send buffer takes this small response at once.
            let _ = sock.write(&handshake::error_response(
                503,
                "text/plain",
                &[("Retry-After", "5")],
                body,
            ));
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
        entry.insert(Conn::new(key, sock, remote, &self.limits));
    }

    pub fn on_ready(&mut self, index: usize, readable: bool, writable: bool) {
        let Some(conn) = self.clients.get_mut(index) else {
            return;
        };
        let key = conn.key;
        if readable {
            conn.on_readable(&self.limits);
        }
        if writable {
            conn.flush();
        }
        self.after(key);
    }

    /// A backend result; dropped if its connection is gone (the generation differs).
    pub fn on_done(&mut self, done: Done) {
        let Some(key) = done.key else { return };
        let Some(conn) = get(&mut self.clients, key) else {
            return;
        };
        conn.on_reply(done.result, &self.limits);
        self.after(key);
    }

    pub fn tick(&mut self, now: Instant) {
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

    fn get(&mut self, key: ConnKey) -> Option<&mut Conn> {
        get(&mut self.clients, key)
    }

    /// After anything happened to a connection: send its next event, or remove it when done.
    fn after(&mut self, key: ConnKey) {
        let held_back = matches!(self.reset, Reset::Pending { .. });
        let Some(conn) = get(&mut self.clients, key) else {
            return;
        };
        match conn.next_event_name() {
            Some(EventName::Open) if held_back => {
                self.held.insert(key);
            }
            Some(name) => {
                if let Some(event) = conn.take_event(&self.boot_id) {
                    if name == EventName::Open
                        && let Some(info) = conn.info()
                    {
                        self.ids.insert(info.id.clone(), key);
                    }
                    self.pool.submit(Job {
                        key: Some(key),
                        event,
                    });
                }
            }
            None => {}
        }
        let Some(conn) = get(&mut self.clients, key) else {
            return;
        };
        if conn.is_finished() {
            if let Some(info) = conn.info() {
                self.ids.remove(&info.id);
            }
            self.clients.remove(key.index);
        }
    }

    /// The open connection with this public id.
    fn open_conn(&mut self, id: &str) -> Result<&mut Conn, ApiError> {
        let key = *self
            .ids
            .get(id)
            .ok_or_else(|| ApiError::NotFound(format!("connection {id}")))?;
        match self.get(key) {
            Some(conn) if conn.is_open() => Ok(conn),
            _ => Err(ApiError::NotFound(format!("connection {id} (closed)"))),
        }
    }

    /// Carries out one push-API command.
    pub fn execute(&mut self, command: Command) -> Result<Response, ApiError> {
        match command {
            Command::Health => {
                let body = json::Object::new()
                    .str("status", "ok")
                    .num("connections", self.clients.len() as u64)
                    .num("queued_events", self.pool.queued() as u64)
                    .finish();
                Ok(Response::json(200, body))
            }
            Command::Send { id, data, binary } => {
                let conn = self.open_conn(&id)?;
                let key = conn.key;
                let sent = conn.send_frame(frame::message(binary, &data));
                conn.flush();
                self.after(key);
                match sent {
                    Ok(()) => {
                        let body = json::Object::new()
                            .bool("ok", true)
                            .str("id", &id)
                            .num("bytes", data.len() as u64);
                        Ok(Response::json(200, body.finish()))
                    }
                    Err(SendError::SlowConsumer) => Err(ApiError::SlowConsumer),
                    Err(SendError::NotOpen) => {
                        Err(ApiError::NotFound(format!("connection {id} (closed)")))
                    }
                }
            }
            Command::Close { id, code, reason } => {
                let conn = self.open_conn(&id)?;
                let key = conn.key;
                conn.close(code, &reason);
                conn.flush();
                self.after(key);
                let body = json::Object::new()
                    .bool("ok", true)
                    .str("id", &id)
                    .num("code", code);
                Ok(Response::json(200, body.finish()))
            }
            Command::Info { id } => Ok(Response::json(200, describe(self.open_conn(&id)?))),
        }
    }
}

/// The connection with this key, unless its slot went to a newer connection.
fn get(clients: &mut Slab<Conn>, key: ConnKey) -> Option<&mut Conn> {
    clients.get_mut(key.index).filter(|c| c.key == key)
}

fn describe(conn: &Conn) -> String {
    let mut meta = json::Object::new();
    for (name, value) in conn.meta() {
        meta = meta.str(name, value);
    }
    let mut obj = json::Object::new();
    if let Some(info) = conn.info() {
        let since = info
            .connected_at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        obj = obj
            .str("id", &info.id)
            .str("path", &info.target)
            .str("remote_addr", &info.remote.to_string())
            .num("connected_at", since);
    }
    obj.num("pending_events", conn.waiting_events() as u64)
        .raw("meta", &meta.finish())
        .finish()
}

//! The reactor: one thread, one `mio::Poll`. It accepts WebSocket and push-API clients, hands
//! readiness to connections, drains backend results on each wake-up, and runs the timers.

mod claims;
mod clients;
mod commands;
mod fanout;
mod hub;
mod listeners;
mod offload;
mod offloads;
mod presence;
mod push_conns;
#[cfg(feature = "redis")]
mod remote;
mod reset;
mod sessions;
pub mod token;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use log::{info, warn};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Waker};
use slab::Slab;

use crate::api::conn::ApiConn;
use crate::backend::Delivery;
use crate::bell::Bell;
use crate::burst_log::BurstLog;
use crate::config::Config;
use crate::error::Error;
use crate::events::Completion;
use crate::pool::Pool;
use crate::random;
use crate::ws::conn::{Limits, Readable};
use crate::ws::transport::Security;
use hub::{Hub, Reset};
use reset::ResetTry;
use sessions::Sessions;
use token::Target;

pub use listeners::Listeners;

/// How often timers (pings, handshake and close timeouts) are checked.
const TICK: Duration = Duration::from_millis(250);

pub struct Server {
    poll: Poll,
    listener: TcpListener,
    push_listener: TcpListener,
    api: Slab<ApiConn>,
    hub: Hub,
    done_rx: Receiver<Completion>,
    done_tx: Sender<Completion>,
    bell: Arc<Bell>,
    push_token: Option<String>,
    max_message: usize,
    started: Instant,
    /// Where the startup reset event stands.
    reset: ResetTry,
    state: State,
    shutdown_timeout: Duration,
    /// accept() failed (e.g. out of file descriptors); try again at the next tick.
    accept_paused: bool,
    accept_errors: BurstLog,
    /// This instance's part in a cluster (`--redis`).
    #[cfg(feature = "redis")]
    remote: Option<remote::Remote>,
}

/// Serving, or finishing the work in hand before exiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Serving,
    Draining { deadline: Instant },
}

/// Asks a running server to stop; cheap to clone and send to other threads.
#[derive(Clone)]
pub struct ShutdownHandle {
    tx: Sender<Completion>,
    bell: Arc<Bell>,
}

impl ShutdownHandle {
    pub fn shutdown(&self) {
        if self.tx.send(Completion::Shutdown).is_ok() {
            let _ = self.bell.ring();
        }
    }
}

impl Server {
    /// Binds both listeners and starts the workers; nothing is accepted until [`Server::run`].
    pub fn bind(config: Config) -> Result<Server, Error> {
        Server::with_listeners(config, Listeners::default())
    }

    /// Like [`Server::bind`], with listeners already bound (systemd socket activation, tests);
    /// whichever is `None` is bound from the configuration.
    pub fn with_listeners(config: Config, given: Listeners) -> Result<Server, Error> {
        let security = security(&config)?;
        let poll = Poll::new().map_err(Error::Setup)?;
        let mut listener = match given.ws {
            Some(l) => listeners::adopt(l)?,
            None => listeners::bind(config.listen, "WebSocket clients")?,
        };
        let mut push_listener = match given.push {
            Some(l) => listeners::adopt(l)?,
            None => listeners::bind(config.push_listen, "the push API")?,
        };
        let registry = poll.registry();
        registry
            .register(&mut listener, token::LISTENER, Interest::READABLE)
            .map_err(Error::Setup)?;
        registry
            .register(&mut push_listener, token::PUSH_LISTENER, Interest::READABLE)
            .map_err(Error::Setup)?;
        listeners::warn_if_exposed(&config);
        let waker = Waker::new(registry, token::WAKER).map_err(Error::Setup)?;
        let bell = Arc::new(Bell::new(waker));
        let (done_tx, done_rx) = mpsc::channel();
        // CGI's SERVER_PORT is the port clients reach: the bound one (`--listen :0`, systemd).
        let mut config = config;
        if let Ok(addr) = listener.local_addr() {
            config.listen = addr;
        }
        let delivery = Arc::new(Delivery::from_config(&config));
        let pool = Pool::start(config.workers, delivery, done_tx.clone(), bell.clone())
            .map_err(Error::Setup)?;
        let boot_id: Arc<str> = random::new_id().map_err(Error::Setup)?.into();
        let reset = Reset::Pending {
            deadline: Instant::now() + config.backend_timeout,
        };
        // The queue holds at most one job per connection; beyond 64 per worker, new clients would
        // only wait behind everyone else, so they are turned away instead.
        let queue_cap = 64 * config.workers;
        #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
        let mut limits = Limits::from_config(&config);
        #[cfg(feature = "redis")]
        let remote = remote::join(&config, &bell, &mut limits)?;
        let mut hub = Hub::new(
            limits,
            config.max_connections,
            queue_cap,
            pool,
            boot_id,
            reset,
            Sessions::new(
                registry.try_clone().map_err(Error::Setup)?,
                config.resume_max_bytes,
            ),
        );
        #[cfg(feature = "redis")]
        if remote.is_some() {
            hub.outbox = Some(Vec::new());
        }
        hub.security = security;
        Ok(Server {
            #[cfg(feature = "redis")]
            remote,
            poll,
            listener,
            push_listener,
            api: Slab::new(),
            hub,
            done_rx,
            done_tx,
            bell,
            push_token: config.push_token.clone(),
            max_message: config.max_message,
            started: Instant::now(),
            reset: ResetTry::FIRST,
            state: State::Serving,
            shutdown_timeout: config.shutdown_timeout,
            accept_paused: false,
            accept_errors: BurstLog::new("accept failed"),
        })
    }

    pub fn ws_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn push_addr(&self) -> SocketAddr {
        self.push_listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn boot_id(&self) -> &str {
        &self.hub.boot_id
    }

    /// Plain or TLS; for SIGHUP, which reloads the certificate (see [`Security::reload`]).
    pub fn security(&self) -> Security {
        self.hub.security.clone()
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            tx: self.done_tx.clone(),
            bell: self.bell.clone(),
        }
    }

    /// Serves until [`ShutdownHandle::shutdown`] is called, then shuts down gracefully: stops
    /// accepting, closes every client with 1001, and delivers every queued event and every close
    /// event to the backend before returning (or until `--shutdown-timeout` passes).
    pub fn run(mut self) -> Result<(), Error> {
        let result = self.serve();
        #[cfg(feature = "redis")]
        if let Some(remote) = &mut self.remote {
            remote.leave();
        }
        result
    }

    fn serve(&mut self) -> Result<(), Error> {
        let scheme = match self.hub.security.is_tls() {
            true => "wss",
            false => "ws",
        };
        info!(
            "listening for WebSocket clients on {scheme}://{}, push API on {} (boot id {})",
            self.ws_addr(),
            self.push_addr(),
            self.hub.boot_id
        );
        reset::send(&mut self.hub);
        let mut events = Events::with_capacity(1024);
        let mut next_tick = Instant::now() + TICK;
        loop {
            let timeout = next_tick.saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(Error::Poll(e));
            }
            for event in events.iter() {
                let readable = event.is_readable() || event.is_read_closed() || event.is_error();
                match token::target(event.token()) {
                    Target::Listener => self.accept_clients(),
                    Target::PushListener => self.accept_api(),
                    Target::Waker => self.drain_completions(),
                    Target::Client(i) => {
                        self.hub
                            .on_ready(i, client_readable(event), event.is_writable())
                    }
                    Target::Api(i) => self.on_api_ready(i, readable, event.is_writable()),
                }
            }
            let now = Instant::now();
            if now >= next_tick {
                self.tick(now);
                next_tick = now + TICK;
            }
            if let State::Draining { deadline } = self.state {
                if self.hub.settled() {
                    info!("shutdown complete: every event delivered");
                    return Ok(());
                }
                if now >= deadline {
                    warn!(
                        "shutdown timeout: {} connections still had events pending",
                        self.hub.clients.len()
                    );
                    return Ok(());
                }
            }
        }
    }

    fn begin_shutdown(&mut self) {
        if let State::Draining { .. } = self.state {
            return;
        }
        info!(
            "shutting down: closing {} connections",
            self.hub.clients.len()
        );
        self.state = State::Draining {
            deadline: Instant::now() + self.shutdown_timeout,
        };
        // Stop accepting. New clients wait in the kernel's backlog until wscgi exits: then they
        // are refused, or, with socket activation, served by the next wscgi.
        let _ = self.poll.registry().deregister(&mut self.listener);
        self.hub.shut_down();
    }

    fn accept_clients(&mut self) {
        if let State::Draining { .. } = self.state {
            return;
        }
        self.accept_paused = false;
        loop {
            match self.listener.accept() {
                Ok((sock, remote)) => self.hub.add(self.poll.registry(), sock, remote),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of file descriptors (EMFILE/ENFILE) or similar: the pending client
                    // stays in the backlog, so retry on the next tick instead of spinning.
                    self.accept_errors.record(Instant::now(), &e);
                    self.accept_paused = true;
                    return;
                }
            }
        }
    }

    /// Applies every result the workers sent; several wakes may have merged into one event.
    fn drain_completions(&mut self) {
        self.bell.answer();
        while let Ok(completion) = self.done_rx.try_recv() {
            match completion {
                Completion::Shutdown => self.begin_shutdown(),
                Completion::Done(done) if done.key.is_none() => {
                    self.reset.on_done(*done, &mut self.hub, self.started)
                }
                Completion::Done(done) => self.hub.on_done(*done),
                Completion::Static { key, response } => self.hub.on_static(key, response),
                Completion::Compressed { ticket, deflated } => self.on_compressed(ticket, deflated),
            }
        }
        #[cfg(feature = "redis")]
        self.on_cluster();
    }

    fn tick(&mut self, now: Instant) {
        self.hub.tick(now);
        #[cfg(feature = "redis")]
        self.cluster_tick(now);
        self.accept_errors.tick(now);
        if self.accept_paused {
            self.accept_clients();
        }
        for (_, conn) in self.api.iter_mut() {
            conn.tick(now);
        }
        self.api.retain(|_, conn| !conn.is_closed());
        self.reset.retry(now, &mut self.hub);
    }
}

/// TLS when `--tls-cert`/`--tls-key` are set: the files are loaded now, so a bad one stops
/// the start.
fn security(config: &Config) -> Result<Security, Error> {
    let Some(files) = &config.tls else {
        return Ok(Security::Plain);
    };
    #[cfg(feature = "tls")]
    {
        let certs = crate::tls::Certs::load(&files.cert, &files.key)
            .map_err(|e| Error::Tls(e.to_string()))?;
        info!(
            "TLS certificate {} (SHA-1 {})",
            files.cert.display(),
            certs.fingerprint()
        );
        Ok(Security::Tls(Arc::new(certs)))
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = files;
        Err(Error::Tls(
            "this wscgi was built without the tls feature".into(),
        ))
    }
}

/// A client socket's read readiness: plain new data, or more (see [`Readable`]).
fn client_readable(event: &mio::event::Event) -> Option<Readable> {
    if event.is_read_closed() || event.is_error() {
        Some(Readable::Unsure)
    } else if event.is_readable() {
        Some(Readable::Data)
    } else {
        None
    }
}

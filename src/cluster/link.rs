//! The Redis connections, each on its own thread, so the reactor never waits on Redis.
//!
//! - The command thread owns one connection: it sends `PUBLISH`es in the order the reactor
//!   queued them (so a publisher's messages stay in order), refreshes this instance's liveness
//!   key every third of `--redis-node-ttl`, and deletes it when told to leave.
//! - The subscriber thread listens on the publish channel, the all-instances channel and this
//!   instance's inbox, and hands every message to the reactor.
//!
//! Both report what they hear, and their health, through a bounded channel and the bell. A
//! lost connection is reported, then retried with backoff (100 ms doubling to 5 s); the
//! subscriber subscribes again and the command thread refreshes liveness at once.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use redis::{Client, Connection, RedisError};

use crate::bell::Bell;

/// Messages waiting in either direction; beyond it the reactor fails calls at once and the
/// subscriber stops reading (Redis then buffers, and drops a subscriber that falls too far
/// behind, which costs one reconnect).
const QUEUE: usize = 4096;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The Redis names one instance uses, all under `--redis-prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// Publishes to channels and broadcasts, from instances and backends.
    pub publish: String,
    /// Questions to every instance (presence).
    pub all: String,
    /// This instance's inbox: requests for connections it holds, and replies to its calls.
    pub inbox: String,
    /// This instance's liveness key.
    pub alive: String,
}

impl Names {
    pub fn new(prefix: &str, tag: &str) -> Names {
        Names {
            publish: format!("{prefix}publish"),
            all: format!("{prefix}all"),
            inbox: inbox(prefix, tag),
            alive: format!("{prefix}node:{tag}"),
        }
    }
}

/// The inbox channel of the instance with this tag.
pub fn inbox(prefix: &str, tag: &str) -> String {
    format!("{prefix}inbox:{tag}")
}

/// What the reactor asks of the command thread.
#[derive(Debug)]
pub enum Out {
    /// `PUBLISH channel payload`; with `call`, the number of receivers is reported back.
    Publish {
        channel: String,
        payload: String,
        call: Option<u64>,
    },
    /// Make sure the connection works (the subscriber lost its own, so this one may be dead
    /// too): ping it, or reconnect, and report the outcome.
    Check,
    /// Delete the liveness key and stop.
    Leave,
}

/// Which connection a health report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Commands,
    Subscriber,
}

/// What comes back to the reactor.
#[derive(Debug)]
pub enum In {
    Message {
        channel: String,
        payload: Vec<u8>,
    },
    /// A `PUBLISH` with a call: how many subscribers got it, or why it failed.
    Published {
        call: u64,
        result: Result<u64, String>,
    },
    /// A `PUBLISH` without a call failed: one message lost.
    Lost,
    Up(Side),
    Down(Side, String),
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub url: String,
    pub names: Names,
    pub tag: String,
    pub node_ttl: Duration,
    /// Connect, read and write timeout of the command connection (`--backend-timeout`).
    pub timeout: Duration,
}

pub struct Link {
    out: SyncSender<Out>,
    pub incoming: Receiver<In>,
    commands: Option<JoinHandle<()>>,
}

/// The reactor's queue to Redis is full or the thread is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

impl Link {
    /// Starts both threads; fails only when the URL cannot be a Redis URL or a thread cannot
    /// start. Connecting happens on the threads.
    pub fn start(settings: Settings, bell: Arc<Bell>) -> Result<Link, String> {
        let client = Client::open(settings.url.as_str()).map_err(|e| e.to_string())?;
        let (out, out_rx) = mpsc::sync_channel(QUEUE);
        let (in_tx, incoming) = mpsc::sync_channel(QUEUE);
        let report = Report { tx: in_tx, bell };
        let (c, s, r) = (client.clone(), settings.clone(), report.clone());
        let commands = thread::Builder::new()
            .name("wscgi-redis-commands".into())
            .spawn(move || Commands::new(c, s, r).run(out_rx))
            .map_err(|e| e.to_string())?;
        thread::Builder::new()
            .name("wscgi-redis-subscriber".into())
            .spawn(move || subscriber(client, settings, report))
            .map_err(|e| e.to_string())?;
        Ok(Link {
            out,
            incoming,
            commands: Some(commands),
        })
    }

    pub fn send(&self, out: Out) -> Result<(), Busy> {
        self.out.try_send(out).map_err(|_: TrySendError<Out>| Busy)
    }

    /// Deletes the liveness key (waiting at most for what is queued before it), then lets the
    /// subscriber go with the process.
    pub fn leave(&mut self) {
        if self.out.try_send(Out::Leave).is_ok()
            && let Some(handle) = self.commands.take()
        {
            let _ = handle.join();
        }
    }
}

#[derive(Clone)]
struct Report {
    tx: SyncSender<In>,
    bell: Arc<Bell>,
}

impl Report {
    /// Blocks while the reactor's queue is full: the subscriber then reads no further.
    fn send(&self, what: In) -> bool {
        let sent = self.tx.send(what).is_ok();
        let _ = self.bell.ring();
        sent
    }
}

/// The command thread's state: its connection while it has one.
struct Commands {
    client: Client,
    settings: Settings,
    report: Report,
    conn: Option<Connection>,
    next_try: Instant,
    backoff: Duration,
    next_beat: Instant,
}

impl Commands {
    fn new(client: Client, settings: Settings, report: Report) -> Commands {
        let now = Instant::now();
        Commands {
            client,
            settings,
            report,
            conn: None,
            next_try: now,
            backoff: FIRST_BACKOFF,
            next_beat: now,
        }
    }

    fn run(mut self, rx: Receiver<Out>) {
        loop {
            // Without a connection, it is retried on its own (with backoff), not only when
            // there is something to send: recovery is then reported without waiting for work.
            let until = match self.conn {
                Some(_) => self.next_beat,
                None => self.next_beat.min(self.next_try),
            };
            match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(Out::Publish {
                    channel,
                    payload,
                    call,
                }) => {
                    let result = self.publish(&channel, &payload);
                    match call {
                        Some(call) => self.report.send(In::Published { call, result }),
                        None if result.is_err() => self.report.send(In::Lost),
                        None => true,
                    };
                }
                Ok(Out::Check) => self.check_alive(),
                Ok(Out::Leave) | Err(RecvTimeoutError::Disconnected) => return self.leave(),
                Err(RecvTimeoutError::Timeout) => {}
            }
            if self.conn.is_none() && Instant::now() >= self.next_try {
                let _ = self.connection();
            }
            if Instant::now() >= self.next_beat {
                self.beat();
            }
        }
    }

    fn publish(&mut self, channel: &str, payload: &str) -> Result<u64, String> {
        let conn = self.connection()?;
        let result = redis::cmd("PUBLISH").arg(channel).arg(payload).query(conn);
        self.check(result)
    }

    /// Refreshes this instance's liveness key: `SET {prefix}node:{tag} tag PX ttl`.
    fn beat(&mut self) {
        self.next_beat = Instant::now() + self.settings.node_ttl / 3;
        let ttl = u64::try_from(self.settings.node_ttl.as_millis()).unwrap_or(u64::MAX);
        let mut set = redis::cmd("SET");
        set.arg(&self.settings.names.alive)
            .arg(&self.settings.tag)
            .arg("PX")
            .arg(ttl);
        let Ok(conn) = self.connection() else { return };
        let result: Result<(), RedisError> = set.query(conn);
        let _ = self.check(result);
    }

    fn check_alive(&mut self) {
        if self.conn.is_none() {
            let _ = self.connection();
            return;
        }
        let Ok(conn) = self.connection() else { return };
        let pong: Result<String, RedisError> = redis::cmd("PING").query(conn);
        if self.check(pong).is_ok() {
            self.report.send(In::Up(Side::Commands));
        }
    }

    fn leave(mut self) {
        let mut del = redis::cmd("DEL");
        del.arg(&self.settings.names.alive);
        if let Ok(conn) = self.connection() {
            let _: Result<(), RedisError> = del.query(conn);
        }
    }

    /// The connection, connecting first when it is time to try again.
    fn connection(&mut self) -> Result<&mut Connection, String> {
        if self.conn.is_none() {
            if Instant::now() < self.next_try {
                return Err("redis unavailable (reconnecting)".into());
            }
            match self.connect() {
                Ok(conn) => {
                    self.conn = Some(conn);
                    self.backoff = FIRST_BACKOFF;
                    // Liveness is restored before anything else is sent.
                    self.next_beat = Instant::now();
                    self.report.send(In::Up(Side::Commands));
                }
                Err(e) => {
                    self.next_try = Instant::now() + self.backoff;
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                    let why = format!("redis unavailable: {e}");
                    self.report.send(In::Down(Side::Commands, why.clone()));
                    return Err(why);
                }
            }
        }
        self.conn.as_mut().ok_or_else(|| "redis unavailable".into())
    }

    fn connect(&self) -> Result<Connection, RedisError> {
        let timeout = self.settings.timeout;
        let conn = self.client.get_connection_with_timeout(timeout)?;
        conn.set_read_timeout(Some(timeout))?;
        conn.set_write_timeout(Some(timeout))?;
        Ok(conn)
    }

    /// An error drops the connection (its state is unknown) and is reported once.
    fn check<T>(&mut self, result: Result<T, RedisError>) -> Result<T, String> {
        result.map_err(|e| {
            let why = format!("redis unavailable: {e}");
            if self.conn.take().is_some() {
                self.next_try = Instant::now();
                self.report.send(In::Down(Side::Commands, why.clone()));
            }
            why
        })
    }
}

/// The subscriber thread: subscribe, hand over messages, and on failure start again.
fn subscriber(client: Client, settings: Settings, report: Report) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let why = match listen(&client, &settings, &report, &mut backoff) {
            Ok(()) => return,
            Err(e) => format!("redis unavailable: {e}"),
        };
        if !report.send(In::Down(Side::Subscriber, why)) {
            return;
        }
        thread::sleep(backoff);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One subscribed session; `Ok` only when the reactor is gone.
fn listen(
    client: &Client,
    settings: &Settings,
    report: &Report,
    backoff: &mut Duration,
) -> Result<(), RedisError> {
    let mut conn = client.get_connection_with_timeout(settings.timeout)?;
    let names = &settings.names;
    let mut pubsub = conn.as_pubsub();
    pubsub.subscribe(&[&names.publish, &names.all, &names.inbox])?;
    // A silent connection is pinged once per TTL, so a dead Redis is noticed without traffic.
    pubsub.set_read_timeout(Some(settings.node_ttl))?;
    *backoff = FIRST_BACKOFF;
    if !report.send(In::Up(Side::Subscriber)) {
        return Ok(());
    }
    loop {
        match pubsub.get_message() {
            Ok(msg) => {
                let channel = msg.get_channel_name().to_string();
                let payload = msg.get_payload_bytes().to_vec();
                if !report.send(In::Message { channel, payload }) {
                    return Ok(());
                }
            }
            Err(e) if e.is_timeout() => pubsub.ping::<redis::Value>().map(|_| ())?,
            // A signal woke the wait (SIGCONT after SIGSTOP): nothing was read, wait again
            // rather than take a working connection for an outage.
            Err(e) if interrupted(&e) => {}
            Err(e) => return Err(e),
        }
    }
}

/// A signal interrupted a blocking read or write; nothing was transferred.
fn interrupted(e: &RedisError) -> bool {
    use std::error::Error;
    // redis keeps an I/O error as an `Arc<dyn Error>` and gives that as the source.
    let Some(source) = e.source() else {
        return false;
    };
    let io = match source.downcast_ref::<std::sync::Arc<dyn Error + Send + Sync>>() {
        Some(shared) => shared.downcast_ref::<std::io::Error>(),
        None => source.downcast_ref::<std::io::Error>(),
    };
    io.is_some_and(|io| io.kind() == std::io::ErrorKind::Interrupted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_read_is_told_apart() {
        let eintr = std::io::Error::from(std::io::ErrorKind::Interrupted);
        assert!(interrupted(&RedisError::from(eintr)));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(!interrupted(&RedisError::from(reset)));
    }
}

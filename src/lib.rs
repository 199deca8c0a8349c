//! wscgi: WebSockets for any program that can answer an HTTP request, the CGI way.
//!
//! wscgi holds every WebSocket connection. Each WebSocket event (open, message, close) becomes
//! one plain HTTP POST to the backend, handled in isolation; the backend's answer goes back to
//! the client, and the backend can push to any client at any time through the push API.
//!
//! # Data flow
//! ```text
//! socket ─▶ ws::conn (state machine) ─▶ events::Event ─▶ pool (workers) ─▶ backend (HTTP)
//!    ▲                                                                          │
//!    └──────── ws::conn::on_reply ◀── server (drains results on Waker) ◀── events::Done
//! push API socket ─▶ api::conn ─▶ api::routes (Command) ─▶ server::hub ─▶ ws::conn
//! ```
//!
//! # Layout
//! - [`config`]: options, defaults, `--help`.
//! - [`server`]: the mio reactor; `server::hub` owns the connections and dispatches events.
//! - [`ws`]: handshake parsing, the per-connection state machine, framing, close codes.
//! - [`events`]: what crosses threads. [`pool`]: worker threads.
//! - [`backend`]: building requests for an event, sending them, reading replies.
//! - [`api`]: the push API's parser, routes and responses.
//! - [`channels`]: channel membership. [`metrics`]: counters and `/metrics`.

pub mod api;
pub mod backend;
pub mod burst_log;
pub mod channels;
pub mod config;
pub mod conn_id;
pub mod date;
pub mod error;
pub mod events;
pub mod logger;
pub mod metrics;
pub mod pool;
pub mod random;
pub mod server;
pub mod signals;
pub mod static_files;
pub mod systemd;
#[doc(hidden)]
pub mod testing;
pub mod ws;

pub use error::Error;
pub use server::{Listeners, Server, ShutdownHandle};

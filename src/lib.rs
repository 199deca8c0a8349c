//! wscgi: WebSockets for any program that can answer an HTTP request, the CGI way.
//!
//! wscgi holds every WebSocket connection. Each WebSocket event (open, message, close) becomes
//! one request to the backend (an HTTP POST, a CGI program run, or a FastCGI request), handled
//! in isolation; the backend's answer goes back to
//! the client, and the backend can push to any client at any time through the push API.
//!
//! # Data flow
//! ```text
//! socket ─▶ ws::conn (state machine) ─▶ events::Event ─▶ pool (workers) ─▶ backend (HTTP/CGI/FastCGI)
//!    ▲                                                                          │
//!    └──────── ws::conn::on_reply ◀── server (drains results on bell::Bell) ◀── events::Done
//! push API socket ─▶ api::conn ─▶ api::routes (Command) ─▶ server::hub ─▶ ws::conn
//! ```
//!
//! # Layout
//! - [`config`]: options, defaults, `--help`.
//! - [`server`]: the mio reactor; `server::hub` owns the connections and dispatches events.
//! - [`ws`]: handshake parsing, the per-connection state machine, framing, close codes,
//!   permessage-deflate (extension negotiation, compressing, bounded inflating;
//!   `ws::deflate_slot`: what a connection keeps of it, on the heap only while busy; `ws::offload`:
//!   large messages compressed and inflated by the workers, `server::offload` the reactor's
//!   side), and resume
//!   (`ws::session`: what a resumable session keeps; `ws::claim`, `ws::resuming`,
//!   `ws::replay`: claims, parking and replay; `server::sessions`: the hub's table of keys;
//!   `server::claims`: the hub's decisions on it).
//! - [`events`]: what crosses threads (events, jobs, completions, [`events::BackendError`]);
//!   [`reply`]: the backend's answer to one event. Both sit below every module that uses them.
//!   [`pool`]: worker threads. [`bell`]: waking the reactor.
//! - [`backend`]: routes, building the request for an event, HTTP/CGI/FastCGI, retries.
//! - [`api`]: the push API's parser, routes and responses; batch and its JSON parser.
//! - [`channels`]: channel membership. [`metrics`]: counters and `/metrics`.
//! - [`cluster`]: several instances as one through Redis (`--redis`, feature `redis`): the wire
//!   format (always built), the Redis link on its own threads, waiting calls; the reactor's side
//!   is `server::remote`.
//! - [`static_files`]: `--static`, served by the workers. [`headers`]: header names,
//!   lowercased and compared in one place for every parser.
//! - `tls` (feature `tls`): the certificate and key, and TLS under a connection
//!   (`ws::transport` picks plain or TLS).
//! - Process plumbing: [`signals`], [`systemd`] (socket activation), [`logger`], [`burst_log`],
//!   [`random`] (ids), [`date`], [`conn_id`] (slab keys with generations).
//! - [`testing`]: drives one connection like the reactor does, for tests and the fuzzer.

pub mod api;
pub mod backend;
pub mod bell;
pub mod burst_log;
pub mod channels;
pub mod cluster;
pub mod config;
pub mod conn_id;
pub mod date;
pub mod error;
pub mod events;
pub mod headers;
pub mod logger;
pub mod metrics;
pub mod pool;
pub mod random;
pub mod reply;
pub mod server;
pub mod signals;
pub mod static_files;
pub mod systemd;
#[doc(hidden)]
pub mod testing;
#[cfg(feature = "tls")]
pub mod tls;
pub mod ws;

pub use error::Error;
pub use server::{Listeners, Server, ShutdownHandle};

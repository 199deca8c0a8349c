//! Shared helpers for wscgi's integration tests (`mod support;` from tests/*.rs).
//!
//! Owns (each in its own file, all re-exported here so `use support::*;` sees
//! them):
//! - [`TestBackend`]: a real HTTP/1.1 keep-alive backend that records every
//!   request wscgi sends it and answers with a scripted [`BackendReply`]
//!   (`backend.rs`; its connections are served in `backend_conn.rs`);
//! - [`Wscgi`]: the server under test, parsed from command-line arguments and
//!   run in-process on its own thread (`server.rs`);
//! - blocking WebSocket client helpers built on tungstenite ([`connect`],
//!   [`recv_text`], [`recv_close`], ...) (`client.rs`);
//! - [`http`]: a raw one-shot HTTP client for the push API (`http_client.rs`);
//! - WebSocket clients by hand ([`raw_ws`], [`raw_frame`], [`read_frame`], ...) for frames no
//!   client library sends (`raw_ws.rs`);
//! - [`wait_until`]: polling a condition with a deadline (`wait.rs`);
//! - what the push API says about the server: [`metric`], [`queued_jobs`],
//!   [`pending_events`] (`introspect.rs`);
//! - resume: session keys, dropping a connection with a reset, resume URLs (`resume.rs`).
//!
//! Not re-exported: [`tls_client`], certificates made by openssl and a rustls client for the
//! `wss://` and `https://` tests (feature `tls`).
//!
//! Not re-exported: [`procs`], real programs (finding them, temp dirs, free ports, process
//! groups killed on drop), for tests/support/php.rs and tests/browser/harness.rs; [`rooms`],
//! channel and push-API helpers for tests/channels.rs and tests/metrics.rs.
//!
//! Private pieces they share: HTTP/1.x framing (`wire.rs`) and failure-message
//! text (`describe.rs`).
//!
//! Nothing here sleeps to synchronise: waits poll a condition until a deadline
//! and panic with a description of what was awaited (and what was seen).
#![allow(dead_code)] // every test binary compiles this module; few use all of it

mod backend;
mod backend_conn;
mod client;
mod describe;
mod http_client;
mod introspect;
pub mod procs;
mod raw_ws;
mod resume;
pub mod rooms;
mod server;
pub mod tls_client;
mod wait;
mod wire;

// Each test binary uses only some of these; the rest would warn.
#[allow(unused_imports)]
pub use self::{
    backend::{BackendReply, BackendRequest, ReplyAction, TestBackend},
    client::{Client, connect, connect_with, recv_binary, recv_close, recv_text, try_connect_with},
    http_client::{HttpResponse, http},
    introspect::{metric, metrics, pending_events, queued_jobs, sample},
    raw_ws::{raw_close_code, raw_connect, raw_frame, raw_ws, read_frame, upgrade_request},
    resume::{
        connection_info, push_to, reset, reset_stream, resume_target, session_key, wait_parked,
    },
    server::Wscgi,
    wait::wait_until,
};

//! The per-server settings every connection obeys, derived once from the options.

use std::time::Duration;

use tungstenite::protocol::WebSocketConfig;

use crate::backend::spec::Route;
use crate::config::{self, Config};

/// Per-server settings every connection obeys.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_pending: usize,
    pub max_outbuf: usize,
    pub handshake_timeout: Duration,
    pub ping_interval: Option<Duration>,
    pub pass_headers: Vec<String>,
    pub ws_config: WebSocketConfig,
    /// `--route` prefixes and backends; the handshake picks one per connection.
    pub routes: Vec<Route>,
    /// `--static` is set: plain GET/HEAD requests are served, not refused with 426.
    pub static_files: bool,
    pub idle_timeout: Option<Duration>,
    /// Set by the hub while the worker queue is full: connections that already have events
    /// waiting are not read (their clients wait in TCP), and new clients get 503.
    pub saturated: std::cell::Cell<bool>,
    /// `--origin` patterns (lowercase); empty allows all.
    pub origins: Vec<String>,
    /// The longest one event may take at the backend, retries and backoff included: how long
    /// a failing connection holds its close frame for replies still on their way.
    pub reply_grace: Duration,
    /// `--resume-window`: how long a dropped session waits for its client (`None`: resume off).
    pub resume_window: Option<Duration>,
    /// `--resume-buffer`: what one session keeps for a resume, in bytes.
    pub resume_buffer: usize,
    /// permessage-deflate for clients that offer it (`None`: `--no-deflate`).
    pub deflate: Option<config::Deflate>,
    pub max_message: usize,
    /// Starts every connection id: this instance's node tag in a cluster, else empty.
    pub id_prefix: String,
}

impl Limits {
    /// Connection limits from the options. tungstenite's defaults suit big servers (128 KiB
    /// read buffer per connection, unbounded writes); ours are sized for thousands of mostly
    /// idle clients.
    pub fn from_config(config: &Config) -> Limits {
        let mut ws = WebSocketConfig::default();
        // Held only while frames arrive (see ws::reader); larger messages only take more
        // (cheap) reads.
        ws.read_buffer_size = 1024;
        // Frames go straight into our own bounded queue (see ws::outbuf), never pile up here.
        ws.write_buffer_size = 0;
        ws.max_write_buffer_size = 64 * 1024;
        ws.max_message_size = Some(config.max_message);
        ws.max_frame_size = Some(config.max_message);
        Limits {
            max_pending: config.max_pending,
            max_outbuf: config.max_outbuf,
            handshake_timeout: config.handshake_timeout,
            ping_interval: config.ping_interval,
            pass_headers: config.pass_headers.clone(),
            ws_config: ws,
            routes: config.routes.clone(),
            saturated: std::cell::Cell::new(false),
            static_files: config.static_dir.is_some(),
            idle_timeout: config.idle_timeout,
            origins: config.origins.clone(),
            // Backoff doubles from 100 ms and is capped at 2 s (backend::Delivery::deliver).
            reply_grace: config.backend_timeout * (config.retries + 1)
                + Duration::from_secs(2) * config.retries,
            resume_window: config.resume_window,
            resume_buffer: config.resume_buffer,
            deflate: config.deflate,
            max_message: config.max_message,
            id_prefix: String::new(),
        }
    }
}

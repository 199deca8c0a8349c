//! Delivering one event to the backend, with retries. Runs on worker threads only: everything
//! here may block.

pub mod cgi_env;
pub mod cgi_response;
pub mod http;
pub mod reply;
pub mod request;
pub mod spec;

use std::fmt;
use std::time::Duration;

use crate::config::{Config, EventFormat};
use crate::events::Event;
pub use reply::Reply;

/// Why an event could not be delivered. Each variant is retried; after the last retry the
/// edge maps it: open → 502/503 to the client, message → close 1011, close → logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendError {
    /// Connection refused, host not found, network unreachable.
    Unreachable(String),
    /// No complete answer within `--backend-timeout`; names the phase.
    Timeout(String),
    /// The backend answered with a 5xx status.
    Status(u16),
    /// The answer was not a valid HTTP response.
    Invalid(String),
    /// The answer's body was larger than `--max-message`.
    TooLarge,
    /// The worker panicked while handling the event.
    Panicked,
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendError::Unreachable(e) => write!(f, "backend unreachable: {e}"),
            BackendError::Timeout(phase) => write!(f, "backend timed out ({phase})"),
            BackendError::Status(s) => write!(f, "backend answered {s}"),
            BackendError::Invalid(e) => write!(f, "invalid backend response: {e}"),
            BackendError::TooLarge => write!(f, "backend response too large"),
            BackendError::Panicked => write!(f, "worker panicked"),
        }
    }
}

impl std::error::Error for BackendError {}

impl BackendError {
    /// The status a client gets when its open event failed.
    pub fn open_status(&self) -> u16 {
        match self {
            BackendError::Unreachable(_) | BackendError::Timeout(_) => 503,
            _ => 502,
        }
    }
}

/// Where events go.
#[derive(Debug)]
pub enum Backend {
    Http(http::HttpBackend),
}

/// How events are sent and retried.
#[derive(Debug)]
pub struct Delivery {
    pub backend: Backend,
    pub format: EventFormat,
    pub retries: u32,
    pub first_backoff: Duration,
}

impl Delivery {
    pub fn from_config(config: &Config) -> Delivery {
        let backend = Backend::Http(http::HttpBackend::new(
            &config.backend,
            config.backend_timeout,
            config.max_message,
            config.workers,
        ));
        Delivery {
            backend,
            format: config.event_format,
            retries: config.retries,
            first_backoff: Duration::from_millis(100),
        }
    }

    /// One attempt: a 5xx counts as a failure, any other status is an answer.
    pub fn attempt(&self, event: &Event) -> Result<Reply, BackendError> {
        let req = request::build(event, self.format);
        let reply = match &self.backend {
            Backend::Http(h) => h.send(&req)?,
        };
        match reply.status {
            500..=599 => Err(BackendError::Status(reply.status)),
            _ => Ok(reply),
        }
    }

    /// Attempts with exponential backoff; returns the last outcome and the retries made.
    pub fn deliver(&self, event: &Event) -> (Result<Reply, BackendError>, u32) {
        let mut backoff = self.first_backoff;
        let mut retries = 0;
        loop {
            let result = self.attempt(event);
            if result.is_ok() || retries >= self.retries {
                return (result, retries);
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(2));
            retries += 1;
        }
    }
}

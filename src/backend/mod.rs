//! Delivering one event to the backend, with retries. Runs on worker threads only: everything
//! here may block.

mod buffers;
pub mod cgi;
pub mod cgi_env;
pub mod cgi_response;
pub mod fastcgi;
pub mod http;
pub mod request;
pub mod sign;
pub mod spec;
mod tcp;
mod wire_names;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Config, EventFormat};
use crate::events::{BackendError, Event};
use crate::reply::Reply;
use crate::static_files::{self, Site, StaticRequest};
use spec::{BackendSpec, Route};

/// Where one route's events go.
#[derive(Debug)]
pub enum Backend {
    Http(http::HttpBackend),
    /// The program, which is also `SCRIPT_FILENAME`.
    Cgi(cgi::CgiBackend, String),
    /// The server, and the script it should run (`SCRIPT_FILENAME`).
    FastCgi(fastcgi::FastCgiBackend, String),
    /// Panics on every message whose body is `panic`, for the pool's tests.
    #[cfg(test)]
    Panicking,
}

/// A backend with the route it serves.
#[derive(Debug)]
struct Target {
    prefix: String,
    backend: Backend,
    /// For CGI and FastCGI: `SERVER_NAME` and `SERVER_PORT`.
    gateway: cgi_env::Gateway,
}

/// How events are sent and retried.
#[derive(Debug)]
pub struct Delivery {
    targets: Vec<Target>,
    secret: Option<String>,
    site: Option<Site>,
    pub format: EventFormat,
    pub retries: u32,
    pub first_backoff: Duration,
}

impl Delivery {
    pub fn from_config(config: &Config) -> Delivery {
        let targets = config
            .routes
            .iter()
            .map(|route| Target {
                prefix: route.prefix.clone(),
                backend: backend(&route.backend, config),
                gateway: cgi_env::Gateway {
                    server_name: config.listen.ip().to_string(),
                    server_port: config.listen.port(),
                },
            })
            .collect();
        Delivery {
            targets,
            secret: config.secret.clone(),
            site: config
                .static_dir
                .clone()
                .map(|root| Site::new(root, backend_code(&config.routes))),
            format: config.event_format,
            retries: config.retries,
            first_backoff: Duration::from_millis(100),
        }
    }

    /// One attempt: a 5xx counts as a failure, any other status is an answer. `reset` goes to
    /// every backend; it fails if any of them fails.
    pub fn attempt(&self, event: &Event) -> Result<Reply, BackendError> {
        let mut req = request::build(event, self.format);
        if let Some(secret) = &self.secret {
            sign_request(&mut req, event, secret);
        }
        match &event.conn {
            Some(conn) => {
                let target = self
                    .targets
                    .get(conn.route)
                    .ok_or(BackendError::Invalid("no route".into()))?;
                check_status(target.send(&req, &conn.id)?)
            }
            None => {
                let mut last = Err(BackendError::Invalid("no backend".into()));
                for target in &self.targets {
                    last = Ok(check_status(target.send(&req, "-")?)?);
                }
                last
            }
        }
    }

    /// A delivery to [`Backend::Panicking`], without retries.
    #[cfg(test)]
    pub fn panicking() -> Delivery {
        let gateway = cgi_env::Gateway {
            server_name: "127.0.0.1".into(),
            server_port: 1,
        };
        Delivery {
            targets: vec![Target {
                prefix: "/".into(),
                backend: Backend::Panicking,
                gateway,
            }],
            secret: None,
            site: None,
            format: EventFormat::Headers,
            retries: 0,
            first_backoff: Duration::ZERO,
        }
    }

    /// The response to a plain GET/HEAD under `--static`.
    pub fn serve_static(&self, request: &StaticRequest) -> Vec<u8> {
        match &self.site {
            Some(site) => site.respond(request),
            None => static_files::internal_error(),
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

impl Target {
    fn send(&self, req: &request::BackendRequest, log_id: &str) -> Result<Reply, BackendError> {
        let params = |filename: &str| {
            let script = cgi_env::Script {
                filename,
                prefix: &self.prefix,
            };
            cgi_env::params(req, &script, &self.gateway)
        };
        match &self.backend {
            Backend::Http(h) => h.send(req),
            #[cfg(test)]
            Backend::Panicking => match &req.body[..] {
                b"panic" => panic!("test backend panics on request"),
                _ => Ok(Reply {
                    status: 200,
                    ..Reply::default()
                }),
            },
            Backend::Cgi(c, program) => c.send(&params(program), &req.body, log_id),
            Backend::FastCgi(f, script) => f.send(&params(script), &req.body, log_id),
        }
    }
}

/// `SCRIPT_FILENAME` should be absolute; a relative program path is taken from the working
/// directory wscgi started in.
fn absolute(path: &Path) -> PathBuf {
    match path.is_absolute() {
        true => path.to_path_buf(),
        false => std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf()),
    }
}

/// The files the routes run (CGI programs) or name (FastCGI scripts): never served by
/// `--static`.
fn backend_code(routes: &[Route]) -> Vec<PathBuf> {
    routes
        .iter()
        .filter_map(|route| match &route.backend {
            BackendSpec::Cgi(program) => Some(absolute(program)),
            BackendSpec::FastCgi { script, .. } => Some(absolute(Path::new(script))),
            BackendSpec::Http(_) => None,
        })
        .collect()
}

/// Adds `WS-Timestamp` and `WS-Signature` (see `sign`); signed at each attempt, so a retry
/// carries a fresh timestamp.
fn sign_request(req: &mut request::BackendRequest<'_>, event: &Event, secret: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let id = event.conn.as_ref().map_or("", |c| c.id.as_str());
    let seq = match event.conn {
        Some(_) => event.seq.to_string(),
        None => String::new(),
    };
    let signature = sign::signature(secret, now, id, event.kind.name().as_str(), &seq, &req.body);
    req.headers
        .push(("WS-Timestamp".into(), now.to_string().into_bytes().into()));
    req.headers
        .push(("WS-Signature".into(), signature.into_bytes().into()));
}

fn check_status(reply: Reply) -> Result<Reply, BackendError> {
    match reply.status {
        500..=599 => Err(BackendError::Status(reply.status)),
        _ => Ok(reply),
    }
}

fn backend(spec: &BackendSpec, config: &Config) -> Backend {
    match spec {
        BackendSpec::Http(url) => Backend::Http(http::HttpBackend::new(
            url,
            config.backend_timeout,
            config.max_message,
            config.workers,
        )),
        BackendSpec::Cgi(program) => {
            // Passed through by name; a variable that is not set is simply absent.
            let pass_env = config
                .cgi_env
                .iter()
                .filter_map(|name| std::env::var(name).ok().map(|v| (name.clone(), v)))
                .collect();
            let cgi = cgi::CgiBackend::new(
                program.clone(),
                pass_env,
                config.backend_timeout,
                config.max_message,
            );
            Backend::Cgi(cgi, absolute(program).to_string_lossy().into_owned())
        }
        BackendSpec::FastCgi { addr, script } => {
            let fcgi = fastcgi::FastCgiBackend::new(
                addr.clone(),
                config.backend_timeout,
                config.max_message,
                config.workers,
            );
            Backend::FastCgi(fcgi, script.clone())
        }
    }
}

//! Configuration: the command-line options, their `WSCGI_*` environment
//! fallbacks, defaults and limits, and the `--help` text. Every value is
//! checked here, so the rest of wscgi can trust a `Config` as given.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::backend::spec::{self, Route};

use getopts::{Fail, Options};

mod deflate;
mod error;
mod sources;
#[cfg(test)]
mod tests;
mod usage;
mod values;

pub use deflate::Deflate;
use deflate::deflate;
pub use error::CliError;
use sources::Sources;
#[cfg(test)]
use sources::env_name;
pub use usage::usage;
pub use values::ValueError;
use values::*;

const VERSION: &str = concat!("wscgi ", env!("CARGO_PKG_VERSION"));

/// Long names of the options taking one value; `--pass-header`, `--route` and
/// `--cgi-env` are repeatable and handled on their own.
const SINGLE: &str = "listen push-listen backend workers backend-timeout retries \
    max-pending max-message max-outbuf max-connections handshake-timeout \
    ping-interval event-format push-token log-level static shutdown-timeout idle-timeout origin secret log-format \
    tls-cert tls-key deflate-min deflate-level resume-window resume-buffer resume-max-bytes \
    redis redis-prefix redis-node-ttl";

/// Long names of the options without a value (`WSCGI_*`: 1/true/yes/on or 0/false/no/off).
const FLAGS: &str = "no-deflate deflate-context";

const DEFAULT_PASS_HEADERS: &str = "cookie,authorization,origin,user-agent,\
    accept-language,x-forwarded-for,x-real-ip,x-forwarded-proto";

const FORMATS: [(&str, EventFormat); 2] = [
    ("headers", EventFormat::Headers),
    ("form", EventFormat::Form),
];

const LOG_LEVELS: [(&str, LogLevel); 4] = [
    ("error", LogLevel::Error),
    ("warn", LogLevel::Warn),
    ("info", LogLevel::Info),
    ("debug", LogLevel::Debug),
];

/// What `main` should do; parsing never exits or prints by itself.
// Built once at startup and unpacked at once, so boxing Config buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Command {
    Run(Config),
    Help(String),
    Version(String),
}

/// How an event's fields are laid out in the POST to the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFormat {
    Headers,
    Form,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

impl LogLevel {
    pub fn to_level_filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub push_listen: SocketAddr,
    /// Where events go, by WebSocket path prefix (`--route`; `--backend X` is `--route /=X`).
    pub routes: Vec<Route>,
    /// Variables of wscgi's own environment passed to CGI programs (`--cgi-env`).
    pub cgi_env: Vec<String>,
    /// Serve plain GET/HEAD requests on the WebSocket port from this directory (`--static`).
    pub static_dir: Option<PathBuf>,
    /// `--tls-cert` and `--tls-key`: the WebSocket listener speaks TLS.
    pub tls: Option<TlsFiles>,
    pub workers: usize,
    pub backend_timeout: Duration,
    pub retries: u32,
    pub max_pending: usize,
    pub max_message: usize,
    pub max_outbuf: usize,
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    /// How long a graceful shutdown may take to deliver the last events.
    pub shutdown_timeout: Duration,
    /// Close connections that sent nothing for this long (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// Allowed `Origin` values (`--origin`); empty allows every origin.
    pub origins: Vec<String>,
    /// Key for `WS-Signature` on backend requests (`--secret`).
    pub secret: Option<String>,
    /// `None` disables keepalive pings.
    pub ping_interval: Option<Duration>,
    /// Lowercase client handshake header names forwarded to the backend.
    pub pass_headers: Vec<String>,
    pub event_format: EventFormat,
    pub push_token: Option<String>,
    pub log_level: LogLevel,
    /// `--log-format json`: one JSON object per log line.
    pub log_json: bool,
    /// permessage-deflate, unless `--no-deflate`.
    pub deflate: Option<Deflate>,
    /// `--redis URL`, `--redis-prefix`, `--redis-node-ttl`: join a cluster (`None`: alone).
    pub redis: Option<Redis>,
    /// How long a dropped resumable session is kept (`--resume-window`; `None`: resume off).
    pub resume_window: Option<Duration>,
    /// Messages kept per resumable session, in bytes (`--resume-buffer`).
    pub resume_buffer: usize,
    /// All parked sessions' messages together, in bytes (`--resume-max-bytes`).
    pub resume_max_bytes: usize,
}

/// Where the cluster's Redis is and how this instance takes part (see `cluster`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redis {
    /// `redis://[user:password@]host:port[/db]` or `redis+unix:///path`.
    pub url: String,
    /// Starts every key and Redis channel wscgi uses.
    pub prefix: String,
    /// Expiry of this instance's liveness key (refreshed every third of it), and the silence after
    /// which the subscriber pings Redis. Nothing reads the key: calls go to whoever subscribes.
    pub node_ttl: Duration,
}

impl Config {
    /// The defaults with one backend for every path, so tests and examples need not go
    /// through `parse`. Panics on an invalid backend, which only a programming error gives.
    pub fn for_backend(backend: &str) -> Config {
        let backend = spec::parse(backend).expect("a valid backend");
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            push_listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            routes: vec![Route {
                prefix: "/".into(),
                backend,
            }],
            cgi_env: Vec::new(),
            static_dir: None,
            tls: None,
            workers: 8,
            backend_timeout: Duration::from_secs(10),
            retries: 2,
            max_pending: 64,
            max_message: MIB as usize,
            max_outbuf: MIB as usize,
            max_connections: 10_000,
            handshake_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(10),
            idle_timeout: None,
            origins: Vec::new(),
            secret: None,
            ping_interval: Some(Duration::from_secs(30)),
            pass_headers: DEFAULT_PASS_HEADERS.split(',').map(String::from).collect(),
            event_format: EventFormat::Headers,
            push_token: None,
            log_level: LogLevel::Info,
            log_json: false,
            deflate: Some(Deflate::default()),
            resume_window: Some(Duration::from_secs(30)),
            resume_buffer: 256 * KIB as usize,
            resume_max_bytes: 64 * MIB as usize,
            redis: None,
        }
    }
}

/// The certificate (chain) and key files, PEM; read when the server starts and on SIGHUP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn parse(args: &[String], env: &dyn Fn(&str) -> Option<String>) -> Result<Command, CliError> {
    let m = options().parse(args).map_err(from_fail)?;
    if m.opt_present("help") {
        return Ok(Command::Help(usage()));
    }
    if m.opt_present("version") {
        return Ok(Command::Version(VERSION.to_string()));
    }
    if let Some(arg) = m.free.first() {
        return Err(CliError::UnexpectedArgument(arg.clone()));
    }
    build(&Sources { m: &m, env }).map(Command::Run)
}

fn options() -> Options {
    let mut opts = Options::new();
    for name in SINGLE.split_whitespace() {
        // Descriptions stay empty: usage() is written by hand.
        opts.optopt("", name, "", "");
    }
    opts.optmulti("", "pass-header", "", "");
    opts.optmulti("", "route", "", "");
    opts.optmulti("", "cgi-env", "", "");
    for name in FLAGS.split_whitespace() {
        opts.optflag("", name, "");
    }
    opts.optflag("h", "help", "");
    opts.optflag("V", "version", "");
    opts
}

fn from_fail(fail: Fail) -> CliError {
    match fail {
        Fail::OptionDuplicated(name) => CliError::Duplicate(name),
        other => CliError::Options(other.to_string()),
    }
}

fn build(s: &Sources) -> Result<Config, CliError> {
    let routes = routes(s)?;
    let d = Config::for_backend("http://127.0.0.1/");
    Ok(Config {
        routes,
        cgi_env: s.get("cgi-env", Vec::new(), env_names)?,
        static_dir: s.get("static", None, |v| directory(v).map(Some))?,
        tls: tls_files(s)?,
        listen: s.get("listen", d.listen, address)?,
        push_listen: s.get("push-listen", d.push_listen, address)?,
        workers: s.get("workers", d.workers, |v| count(v, 1, 1024))?,
        backend_timeout: s.get("backend-timeout", d.backend_timeout, duration)?,
        retries: s.get("retries", d.retries, |v| count(v, 0, 10))?,
        max_pending: s.get("max-pending", d.max_pending, many)?,
        max_message: s.get("max-message", d.max_message, |v| size(v, 1))?,
        max_outbuf: s.get("max-outbuf", d.max_outbuf, |v| size(v, 4 * KIB))?,
        max_connections: s.get("max-connections", d.max_connections, many)?,
        handshake_timeout: s.get("handshake-timeout", d.handshake_timeout, duration)?,
        shutdown_timeout: s.get("shutdown-timeout", d.shutdown_timeout, duration)?,
        idle_timeout: s.get("idle-timeout", None, ping_interval)?,
        origins: s.get("origin", Vec::new(), origin_list)?,
        secret: s.get("secret", None, token)?,
        ping_interval: s.get("ping-interval", d.ping_interval, ping_interval)?,
        pass_headers: s.get("pass-header", d.pass_headers, header_list)?,
        event_format: s.get("event-format", d.event_format, |v| choice(v, &FORMATS))?,
        push_token: s.get("push-token", None, token)?,
        log_level: s.get("log-level", d.log_level, |v| choice(v, &LOG_LEVELS))?,
        log_json: s.get("log-format", false, |v| {
            choice(v, &[("text", false), ("json", true)])
        })?,
        resume_window: s.get("resume-window", d.resume_window, ping_interval)?,
        resume_buffer: s.get("resume-buffer", d.resume_buffer, |v| size(v, 1))?,
        resume_max_bytes: s.get("resume-max-bytes", d.resume_max_bytes, |v| size(v, 1))?,
        deflate: deflate(s)?,
        redis: redis(s)?,
    })
}

/// `--redis` and the two options that only mean something with it.
fn redis(s: &Sources) -> Result<Option<Redis>, CliError> {
    let prefix = s.get("redis-prefix", "wscgi:".to_string(), redis_prefix)?;
    let node_ttl = s.get("redis-node-ttl", Duration::from_secs(15), node_ttl)?;
    let Some(url) = s.get("redis", None, |v| redis_url(v).map(Some))? else {
        return Ok(None);
    };
    if cfg!(not(feature = "redis")) {
        let error = ValueError::Choice {
            value: values::redact_userinfo(&url),
            expected: "a wscgi built with --features redis".into(),
        };
        let origin = s
            .raw("redis")
            .map_or("--redis".into(), |(origin, _)| origin);
        return Err(CliError::Value { origin, error });
    }
    Ok(Some(Redis {
        url,
        prefix,
        node_ttl,
    }))
}

/// `--tls-cert` and `--tls-key`, both or neither; refused by a build that cannot serve TLS.
/// The build is checked first: "give the other one too" would be wrong advice to a build
/// that cannot use either.
fn tls_files(s: &Sources) -> Result<Option<TlsFiles>, CliError> {
    let (cert, key) = (s.raw("tls-cert"), s.raw("tls-key"));
    if !cfg!(feature = "tls") {
        return match cert.or(key) {
            Some(given) => Err(CliError::TlsNotBuilt(given.0)),
            None => Ok(None),
        };
    }
    let (cert, key) = match (cert, key) {
        (None, None) => return Ok(None),
        (Some(given), None) | (None, Some(given)) => return Err(CliError::TlsHalf(given.0)),
        (Some(cert), Some(key)) => (cert, key),
    };
    Ok(Some(TlsFiles {
        cert: PathBuf::from(cert.1),
        key: PathBuf::from(key.1),
    }))
}

/// `--backend X` is the route for `/`; `--route PREFIX=X` adds more (or replaces `/`).
/// `WSCGI_ROUTE` holds routes separated by spaces.
fn routes(s: &Sources) -> Result<Vec<Route>, CliError> {
    let mut routes: Vec<Route> = Vec::new();
    let given = s.m.opt_strs("route");
    let (origin, texts): (String, Vec<String>) = match given.is_empty() {
        false => ("--route".into(), given),
        true => match (s.env)("WSCGI_ROUTE") {
            Some(v) => (
                "WSCGI_ROUTE".into(),
                v.split_whitespace().map(String::from).collect(),
            ),
            None => ("--route".into(), Vec::new()),
        },
    };
    for text in texts {
        let route = spec::parse_route(&text).map_err(|e| value_error(&origin, e))?;
        if routes.iter().any(|r| r.prefix == route.prefix) {
            return Err(value_error(
                &origin,
                format!("prefix {} given twice", route.prefix),
            ));
        }
        routes.push(route);
    }
    if let Some((origin, v)) = s.raw("backend") {
        let backend = spec::parse(&v).map_err(|e| value_error(&origin, e))?;
        if routes.iter().any(|r| r.prefix == "/") {
            return Err(value_error(
                &origin,
                "--backend and --route /=... both given".into(),
            ));
        }
        routes.insert(
            0,
            Route {
                prefix: "/".into(),
                backend,
            },
        );
    }
    if routes.is_empty() {
        return Err(CliError::MissingBackend);
    }
    Ok(routes)
}

fn value_error(origin: &str, message: String) -> CliError {
    CliError::Value {
        origin: origin.into(),
        error: ValueError::Backend(message),
    }
}

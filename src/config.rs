//! Configuration: the command-line options, their `WSCGI_*` environment
//! fallbacks, defaults and limits, and the `--help` text. Every value is
//! checked here, so the rest of wscgi can trust a `Config` as given.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::backend::spec::{self, Route};

use getopts::{Fail, Matches, Options};

const VERSION: &str = concat!("wscgi ", env!("CARGO_PKG_VERSION"));
const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
const HOUR_MS: u64 = 60 * 60 * 1000;
const DAY_MS: u64 = 24 * HOUR_MS;

/// Long names of the options taking one value; `--pass-header`, `--route` and
/// `--cgi-env` are repeatable and handled on their own.
const SINGLE: &str = "listen push-listen backend workers backend-timeout retries \
    max-pending max-message max-outbuf max-connections handshake-timeout \
    ping-interval event-format push-token log-level static shutdown-timeout idle-timeout origin secret log-format";

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
        }
    }
}

#[derive(Debug)]
pub enum CliError {
    /// getopts' own message: unknown option, missing value.
    Options(String),
    /// Long name of an option given more than once.
    Duplicate(String),
    UnexpectedArgument(String),
    MissingBackend,
    /// `origin` is `--name` or `WSCGI_NAME`, whichever supplied the value.
    Value {
        origin: String,
        error: ValueError,
    },
}

/// Why one option value was refused; each variant carries the value as given.
#[derive(Debug)]
pub enum ValueError {
    Number(String),
    Size(String),
    Duration(String),
    Address(String),
    HeaderName(String),
    /// A backend or route that `backend::spec` refused, with its reason.
    Backend(String),
    Choice {
        value: String,
        expected: String,
    },
    OutOfRange {
        value: String,
        range: String,
    },
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Options(msg) => f.write_str(msg),
            CliError::Duplicate(name) => write!(f, "--{name} given more than once"),
            CliError::UnexpectedArgument(arg) => write!(f, "unexpected argument {arg:?}"),
            CliError::MissingBackend => {
                f.write_str("missing --backend BACKEND or --route PREFIX=BACKEND")
            }
            CliError::Value { origin, error } => write!(f, "{origin}: {error}"),
        }
    }
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::Number(v) => write!(f, "invalid number {v:?}"),
            ValueError::Size(v) => write!(f, "invalid size {v:?} (e.g. 65536, 64K, 1MiB)"),
            ValueError::Duration(v) => write!(f, "invalid duration {v:?} (e.g. 10, 500ms, 2m)"),
            ValueError::Address(v) => write!(f, "invalid address {v:?} (expected IP:PORT)"),
            ValueError::HeaderName(v) => write!(f, "invalid header name {v:?}"),
            ValueError::Backend(why) => write!(f, "{why}"),
            ValueError::Choice { value, expected } => {
                write!(f, "invalid value {value:?} (expected {expected})")
            }
            ValueError::OutOfRange { value, range } => {
                write!(f, "{value:?} out of range ({range})")
            }
        }
    }
}

impl std::error::Error for ValueError {}

// No `source()`: Display already includes the ValueError, and reporters that
// walk the chain would print it twice.
impl std::error::Error for CliError {}

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

fn env_name(option: &str) -> String {
    format!("WSCGI_{}", option.to_ascii_uppercase().replace('-', "_"))
}

/// Where option values come from: the command line first, then the environment.
struct Sources<'a> {
    m: &'a Matches,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Sources<'_> {
    /// Repeats of `--pass-header` are joined into one comma list; getopts has
    /// already refused repeats of every other option.
    fn raw(&self, name: &str) -> Option<(String, String)> {
        let given = self.m.opt_strs(name);
        if !given.is_empty() {
            return Some((format!("--{name}"), given.join(",")));
        }
        let var = env_name(name);
        (self.env)(&var).map(|v| (var, v))
    }

    fn get<T>(
        &self,
        name: &str,
        default: T,
        parse: impl Fn(&str) -> Result<T, ValueError>,
    ) -> Result<T, CliError> {
        match self.raw(name) {
            None => Ok(default),
            Some((origin, v)) => parse(&v).map_err(|error| CliError::Value { origin, error }),
        }
    }
}

fn build(s: &Sources) -> Result<Config, CliError> {
    let routes = routes(s)?;
    let d = Config::for_backend("http://127.0.0.1/");
    Ok(Config {
        routes,
        cgi_env: s.get("cgi-env", Vec::new(), env_names)?,
        static_dir: s.get("static", None, |v| directory(v).map(Some))?,
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
    })
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

fn env_names(v: &str) -> Result<Vec<String>, ValueError> {
    let names: Vec<String> = v.split(',').map(|n| n.trim().to_string()).collect();
    match names.iter().find(|n| n.is_empty() || n.contains('=')) {
        Some(bad) => Err(ValueError::Choice {
            value: bad.clone(),
            expected: "an environment variable name".into(),
        }),
        None => Ok(names),
    }
}

fn directory(v: &str) -> Result<PathBuf, ValueError> {
    let path = PathBuf::from(v);
    match path.is_dir() {
        true => Ok(path),
        false => Err(ValueError::Choice {
            value: v.into(),
            expected: "an existing directory".into(),
        }),
    }
}

fn token(v: &str) -> Result<Option<String>, ValueError> {
    Ok(Some(v.to_string()).filter(|t| !t.is_empty()))
}

fn address(v: &str) -> Result<SocketAddr, ValueError> {
    v.parse().map_err(|_| ValueError::Address(v.into()))
}

/// Leading decimal digits and the unit after them. `str::parse` alone would
/// let a `+` sign through. The number is `None` when it overflows u64.
fn split_number(v: &str) -> Option<(Option<u64>, &str)> {
    let end = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    (end > 0).then(|| (v[..end].parse().ok(), &v[end..]))
}

fn in_range(
    v: &str,
    n: Option<u64>,
    min: u64,
    max: u64,
    show: fn(u64) -> String,
) -> Result<u64, ValueError> {
    match n {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ValueError::OutOfRange {
            value: v.into(),
            range: format!("{} to {}", show(min), show(max)),
        }),
    }
}

/// Generic over the target so the bounds, not a cast, guarantee the fit.
fn count<T: TryFrom<u64>>(v: &str, min: u64, max: u64) -> Result<T, ValueError> {
    match split_number(v) {
        Some((n, "")) => in_range(v, n, min, max, |n| n.to_string())
            .and_then(|n| T::try_from(n).map_err(|_| ValueError::Number(v.into()))),
        _ => Err(ValueError::Number(v.into())),
    }
}

/// Counts with no natural bound still get one, so typos fail loudly.
fn many(v: &str) -> Result<usize, ValueError> {
    count(v, 1, 1 << 20)
}

fn size(v: &str, min: u64) -> Result<usize, ValueError> {
    let (n, unit) = split_number(v).ok_or_else(|| ValueError::Size(v.into()))?;
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" => 1,
        "k" | "kib" => KIB,
        "m" | "mib" => MIB,
        "g" | "gib" => GIB,
        _ => return Err(ValueError::Size(v.into())),
    };
    let bytes = in_range(v, n.and_then(|n| n.checked_mul(scale)), min, GIB, show_size)?;
    usize::try_from(bytes).map_err(|_| ValueError::Size(v.into()))
}

fn show_size(n: u64) -> String {
    let units = [(GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")];
    match units.iter().find(|(unit, _)| n.is_multiple_of(*unit)) {
        Some((unit, name)) => format!("{}{name}", n / unit),
        None => n.to_string(),
    }
}

/// Milliseconds, `None` on overflow; zero is left for the caller to judge.
fn millis(v: &str) -> Result<Option<u64>, ValueError> {
    let (n, unit) = split_number(v).ok_or_else(|| ValueError::Duration(v.into()))?;
    let scale = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => HOUR_MS,
        _ => return Err(ValueError::Duration(v.into())),
    };
    Ok(n.and_then(|n| n.checked_mul(scale)))
}

fn duration(v: &str) -> Result<Duration, ValueError> {
    let show = |ms: u64| match ms % HOUR_MS {
        0 => format!("{}h", ms / HOUR_MS),
        _ => format!("{ms}ms"),
    };
    in_range(v, millis(v)?, 1, DAY_MS, show).map(Duration::from_millis)
}

fn ping_interval(v: &str) -> Result<Option<Duration>, ValueError> {
    if v.eq_ignore_ascii_case("off") || millis(v)? == Some(0) {
        return Ok(None);
    }
    duration(v).map(Some)
}

/// `https://example.com, *.example.com`: exact origins, or `*.` wildcards for subdomains.
fn origin_list(v: &str) -> Result<Vec<String>, ValueError> {
    let items: Vec<String> = v
        .split(',')
        .map(|o| o.trim().to_ascii_lowercase())
        .collect();
    match items
        .iter()
        .find(|o| o.is_empty() || o.contains(char::is_whitespace))
    {
        Some(bad) => Err(ValueError::Choice {
            value: bad.clone(),
            expected: "an origin like https://example.com or *.example.com".into(),
        }),
        None => Ok(items),
    }
}

/// `none` stands for the empty list, so it may appear alone or among names.
fn header_list(v: &str) -> Result<Vec<String>, ValueError> {
    let mut names: Vec<String> = Vec::new();
    for name in v.split(',').map(str::trim) {
        if !is_token(name) {
            return Err(ValueError::HeaderName(name.into()));
        }
        let name = name.to_ascii_lowercase();
        if name != "none" && !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// RFC 9110 token: what may legally appear as a header field name.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn choice<T: Copy>(v: &str, table: &[(&str, T)]) -> Result<T, ValueError> {
    let names: Vec<&str> = table.iter().map(|(name, _)| *name).collect();
    let found = table.iter().find(|(name, _)| name.eq_ignore_ascii_case(v));
    found.map(|&(_, t)| t).ok_or_else(|| ValueError::Choice {
        value: v.into(),
        expected: names.join("|"),
    })
}

pub fn usage() -> String {
    "\
wscgi - WebSockets for any HTTP backend, the CGI way
Usage: wscgi --backend BACKEND [OPTIONS]

Holds WebSocket connections and turns each WebSocket event into one request
to the backend: an HTTP POST, a CGI program run, or a FastCGI request.

Listening:
  --listen ADDR            WebSocket address, IP:PORT (default 127.0.0.1:8080)
  --handshake-timeout DUR  time allowed for the upgrade request (default 10s)
  --ping-interval DUR      ping clients this often; 0 or off disables
                           (default 30s)
  --idle-timeout DUR       close clients silent this long (default off)
  --origin LIST            allowed Origin values, comma separated: exact
                           (https://example.com) or *.example.com; others get
                           403 (default: any origin)
  --static DIR             serve plain GET/HEAD requests from DIR (default
                           none: 426 Upgrade Required)

Backend:
  --backend BACKEND        where events go, for every path (this or --route
                           is required): http://HOST:PORT/PATH (https:// when
                           built with --features tls), cgi:PROGRAM,
                           fastcgi://HOST:PORT/SCRIPT or
                           fastcgi://unix:SOCKET:SCRIPT
  --route PREFIX=BACKEND   BACKEND for WebSocket paths under PREFIX; longest
                           prefix wins, no match is 404; repeatable
  --cgi-env NAME           pass this variable of wscgi's environment to CGI
                           programs (default: a clean environment); repeatable
  --event-format FORMAT    headers: fields in WS-* headers, message as body;
                           form: all in one urlencoded body (default headers)
  --workers N              concurrent backend requests, 1-1024 (default 8)
  --backend-timeout DUR    time allowed per backend request (default 10s)
  --retries N              retries of a failed request, 0-10 (default 2)
  --pass-header LIST       client handshake headers to forward, comma
                           separated; repeatable; replaces the default list,
                           \"none\" forwards none (default cookie,
                           authorization, origin, user-agent, accept-language,
                           x-forwarded-for, x-real-ip, x-forwarded-proto)

Limits:
  --max-connections N      open WebSocket connections (default 10000)
  --max-pending N          events one connection may have waiting for the
                           backend; reading pauses at the limit (default 64)
  --max-message SIZE       largest message accepted from a client
                           (default 1MiB)
  --max-outbuf SIZE        unsent output held per connection, at least 4K
                           (default 1MiB)

Push API:
  --push-listen ADDR       address of the push API, which lets the backend
                           send to clients (default 127.0.0.1:8081)
  --push-token TOKEN       require \"Authorization: Bearer TOKEN\" on push
                           requests (default none: no check)
  --secret KEY             sign backend requests: WS-Timestamp and
                           WS-Signature (HMAC-SHA1) (default none)

Shutdown:
  --shutdown-timeout DUR   on SIGTERM/SIGINT, time to close clients (1001) and
                           deliver their last events (default 10s)

Logging:
  --log-level LEVEL        error, warn, info or debug (default info)
  --log-format FORMAT      text or json, one line per event to stderr
                           (default text)

Other:
  -h, --help               show this help
  -V, --version            show the version

DUR is a number with unit ms, s, m or h; a plain number is seconds: 10, 500ms,
2m (at most 24h). SIZE is bytes with optional K/KiB, M/MiB or G/GiB: 65536,
64K, 1MiB (at most 1GiB). Every option can also be set in the environment as
WSCGI_<NAME>, e.g. WSCGI_PUSH_LISTEN for --push-listen; the command line wins.
"
    .to_string()
}
#[cfg(test)]
mod tests {
    use super::*;

    /// The URL of the route for `/`.
    fn root(c: &Config) -> String {
        match &c.routes[0].backend {
            crate::backend::spec::BackendSpec::Http(url) => url.clone(),
            other => format!("{other:?}"),
        }
    }
    use std::collections::HashMap;

    const B: &str = "http://127.0.0.1:9000/ws";
    type Change = fn(&mut Config);

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Command, CliError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env: HashMap<&str, &str> = env.iter().copied().collect();
        parse(&args, &|k| env.get(k).map(|v| v.to_string()))
    }

    /// Supplies the required backend unless the case sets its own.
    fn with_backend(args: &[&str], env: &[(&str, &str)]) -> Result<Command, CliError> {
        let own = |s: &str| s == "--backend" || s.starts_with("--backend=") || s == "WSCGI_BACKEND";
        let own = args.iter().any(|a| own(a)) || env.iter().any(|(k, _)| own(k));
        let extra: &[&str] = if own { &[] } else { &["--backend", B] };
        run(&[args, extra].concat(), env)
    }

    fn config(args: &[&str], env: &[(&str, &str)]) -> Config {
        match with_backend(args, env) {
            Ok(Command::Run(c)) => c,
            other => panic!("{args:?} {env:?}: {other:?}"),
        }
    }

    fn error(args: &[&str], env: &[(&str, &str)]) -> String {
        match with_backend(args, env) {
            Err(e) => e.to_string(),
            Ok(c) => panic!("{args:?} {env:?} accepted: {c:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = config(&[], &[]);
        let secs = Duration::from_secs;
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.push_listen, "127.0.0.1:8081".parse().unwrap());
        assert_eq!((root(&c).as_str(), c.workers, c.retries), (B, 8, 2));
        assert_eq!((c.max_pending, c.max_connections), (64, 10_000));
        assert_eq!((c.max_message, c.max_outbuf), (1 << 20, 1 << 20));
        assert_eq!(c.backend_timeout, secs(10));
        assert_eq!(c.handshake_timeout, secs(10));
        assert_eq!((c.ping_interval, &c.push_token), (Some(secs(30)), &None));
        assert_eq!(c.event_format, EventFormat::Headers);
        assert_eq!(c.log_level, LogLevel::Info);
        let headers = "cookie authorization origin user-agent accept-language \
            x-forwarded-for x-real-ip x-forwarded-proto";
        assert_eq!(c.pass_headers, headers.split(' ').collect::<Vec<_>>());
        let limits = [c.workers, c.max_pending, c.max_message, c.max_outbuf];
        assert!(limits.iter().all(|&n| n > 0 && n <= 1 << 30) && c.max_connections > 0);
        assert!(!c.backend_timeout.is_zero() && !c.handshake_timeout.is_zero());
        assert_eq!(format!("{c:?}"), format!("{:?}", Config::for_backend(B)));
    }

    #[test]
    fn each_option_from_command_line_and_environment() {
        #[rustfmt::skip]
        let cases: [(&str, &str, Change); 17] = [
            ("listen", "0.0.0.0:9", |c| c.listen = ([0, 0, 0, 0], 9).into()),
            ("push-listen", "[::1]:7", |c| c.push_listen = "[::1]:7".parse().unwrap()),
            ("backend", "http://x:1/p?q", |c| *c = Config { routes: Config::for_backend("http://x:1/p?q").routes, ..c.clone() }),
            ("workers", "1024", |c| c.workers = 1024),
            ("backend-timeout", "500ms", |c| c.backend_timeout = Duration::from_millis(500)),
            ("retries", "0", |c| c.retries = 0),
            ("max-pending", "1", |c| c.max_pending = 1),
            ("max-message", "64K", |c| c.max_message = 65536),
            ("max-outbuf", "4096", |c| c.max_outbuf = 4096),
            ("max-connections", "5", |c| c.max_connections = 5),
            ("handshake-timeout", "2m", |c| c.handshake_timeout = Duration::from_secs(120)),
            ("ping-interval", "off", |c| c.ping_interval = None),
            ("pass-header", "X-A, b", |c| c.pass_headers = vec!["x-a".into(), "b".into()]),
            ("event-format", "Form", |c| c.event_format = EventFormat::Form),
            ("push-token", "s3cret", |c| c.push_token = Some("s3cret".into())),
            ("push-token", "", |c| c.push_token = None),
            ("log-level", "debug", |c| c.log_level = LogLevel::Debug),
        ];
        for (name, value, change) in cases {
            let mut want = Config::for_backend(B);
            change(&mut want);
            let want = format!("{want:?}");
            let got = |args: &[&str], env: &[(&str, &str)]| format!("{:?}", config(args, env));
            let (flag, var) = (format!("--{name}"), env_name(name));
            assert_eq!(got(&[&flag, value], &[]), want, "{flag}");
            assert_eq!(got(&[&format!("{flag}={value}")], &[]), want, "{flag}=");
            assert_eq!(got(&[], &[(&var, value)]), want, "{var}");
        }
    }

    #[test]
    fn command_line_beats_environment() {
        let env = [("WSCGI_WORKERS", "x"), ("WSCGI_RETRIES", "5")];
        let c = config(&["--workers", "3"], &env);
        assert_eq!((c.workers, c.retries), (3, 5));
        let c = config(&["--backend", B], &[("WSCGI_BACKEND", "x")]);
        assert_eq!(root(&c), B);
        let c = config(&["--pass-header", "a"], &[("WSCGI_PASS_HEADER", "b")]);
        assert_eq!(c.pass_headers, ["a"]);
    }

    #[test]
    fn errors_name_their_origin() {
        #[rustfmt::skip]
        let cases = [
            ("WSCGI_WORKERS", "x", r#"invalid number "x""#),
            ("--workers", "x", r#"invalid number "x""#),
            ("--workers", "0", r#""0" out of range (1 to 1024)"#),
            ("WSCGI_MAX_OUTBUF", "1K", r#""1K" out of range (4KiB to 1GiB)"#),
            ("WSCGI_PASS_HEADER", "a b", r#"invalid header name "a b""#),
            ("--ping-interval", "1d", r#"invalid duration "1d" (e.g. 10, 500ms, 2m)"#),
            ("--log-level", "x", r#"invalid value "x" (expected error|warn|info|debug)"#),
            ("--listen", "x", r#"invalid address "x" (expected IP:PORT)"#),
        ];
        for (key, value, want) in cases {
            let got = match key.starts_with("--") {
                true => error(&[key, value], &[]),
                false => error(&[], &[(key, value)]),
            };
            assert_eq!(got, format!("{key}: {want}"));
        }
    }

    #[test]
    fn bad_values_rejected() {
        let big = "99999999999999999999999";
        #[rustfmt::skip]
        let cases: &[(&str, &[&str])] = &[
            ("workers", &["0", "1025", "-1", "+1", "", " 1", "1.0", "x", big]),
            ("retries", &["11", "-0", "two"]),
            ("max-pending", &["0", "", big]),
            ("max-connections", &["0", "1e3", "1048577"]),
            ("max-message", &["0", "2G", "1.5M", "1MB", "-1K", "K", "18446744073709551615K"]),
            ("max-outbuf", &["4095", "1K", ""]),
            ("backend-timeout", &["0", "0s", "10x", "25h", "", "s", "-1s", "1.5s", "1 s"]),
            ("handshake-timeout", &["0ms", "86400001ms", "18446744073709551615h", big]),
            ("ping-interval", &["x", "25h", "-1", "on", ""]),
            ("listen", &["localhost:80", "127.0.0.1", ":80", "127.0.0.1:70000"]),
            ("push-listen", &["", "1.2.3.4:x"]),
            ("event-format", &["json", ""]),
            ("log-level", &["trace", "3"]),
            ("pass-header", &["bad header", "a,,b", "", "a:b", "é", "a,"]),
            ("backend", &["ftp://x", "http://", "http:///p", "x", "", "http://a b"]),
        ];
        for (name, values) in cases {
            for value in *values {
                let msg = error(&[&format!("--{name}"), value], &[]);
                assert!(msg.starts_with(&format!("--{name}: ")), "{value:?}: {msg}");
            }
        }
    }

    #[test]
    fn size_and_duration_suffixes() {
        #[rustfmt::skip]
        let sizes = [("1", 1), ("1048576", 1 << 20), ("64K", 65536), ("64kib", 65536),
            ("2M", 2 << 20), ("1MiB", 1 << 20), ("1g", 1 << 30)];
        for (text, bytes) in sizes {
            assert_eq!(size(text, 1).unwrap(), bytes, "{text}");
        }
        #[rustfmt::skip]
        let durations = [("10", 10_000), ("10s", 10_000), ("500ms", 500), ("2m", 120_000),
            ("1h", HOUR_MS), ("24h", DAY_MS)];
        for (text, ms) in durations {
            assert_eq!(duration(text).unwrap(), Duration::from_millis(ms), "{text}");
        }
    }

    #[test]
    fn ping_interval_off() {
        for v in ["0", "off", "OFF", "0ms", "0h"] {
            assert_eq!(ping_interval(v).unwrap(), None, "{v}");
        }
        let c = config(&["--ping-interval=45"], &[]);
        assert_eq!(c.ping_interval, Some(Duration::from_secs(45)));
    }

    #[test]
    fn pass_header_replace_none_repeat() {
        #[rustfmt::skip]
        let cases: [(&[&str], &[&str]); 6] = [
            (&["--pass-header", " Cookie ,X-Token"], &["cookie", "x-token"]),
            (&["--pass-header", "none"], &[]),
            (&["--pass-header", "NONE", "--pass-header", "a"], &["a"]),
            (&["--pass-header=a,none"], &["a"]),
            (&["--pass-header", "a,b", "--pass-header", "B,c"], &["a", "b", "c"]),
            (&["--pass-header", "x!#$%&'*+-.^_`|~9"], &["x!#$%&'*+-.^_`|~9"]),
        ];
        for (args, want) in cases {
            assert_eq!(config(args, &[]).pass_headers, want, "{args:?}");
        }
        let c = config(&[], &[("WSCGI_PASS_HEADER", "none")]);
        assert!(c.pass_headers.is_empty());
    }

    #[test]
    fn https_needs_tls_feature() {
        let got = run(&["--backend", "https://x/"], &[]);
        if cfg!(feature = "tls") {
            assert!(matches!(got, Ok(Command::Run(c)) if root(&c) == "https://x/"));
        } else {
            let want = r#"--backend: "https://x/" needs wscgi built with --features tls"#;
            assert_eq!(got.unwrap_err().to_string(), want);
        }
        let upper = run(&["--backend", "HTTP://X/"], &[]);
        assert!(matches!(upper, Ok(Command::Run(c)) if root(&c) == "HTTP://X/"));
    }

    #[test]
    fn command_line_shape_errors() {
        let missing = "missing --backend BACKEND or --route PREFIX=BACKEND";
        assert_eq!(run(&[], &[]).unwrap_err().to_string(), missing);
        let no_backend = run(&["--workers", "2"], &[]);
        assert!(matches!(no_backend, Err(CliError::MissingBackend)));
        let twice = with_backend(&["--workers", "1", "--workers=2"], &[]);
        assert!(matches!(twice, Err(CliError::Duplicate(n)) if n == "workers"));
        let twice = error(&["--backend", B, "--backend", B], &[]);
        assert_eq!(twice, "--backend given more than once");
        assert_eq!(error(&["stray"], &[]), r#"unexpected argument "stray""#);
        let after_dashes = with_backend(&["--", "--x"], &[]);
        assert!(matches!(after_dashes, Err(CliError::UnexpectedArgument(a)) if a == "--x"));
        let unknown = with_backend(&["--nope"], &[]);
        assert!(matches!(unknown, Err(CliError::Options(m)) if m.contains("nope")));
        let no_value = run(&["--backend", B, "--workers"], &[]);
        assert!(matches!(no_value, Err(CliError::Options(m)) if m.contains("workers")));
    }

    #[test]
    fn help_lists_every_option() {
        for flag in ["--help", "-h"] {
            let Ok(Command::Help(text)) = run(&[flag], &[("WSCGI_WORKERS", "x")]) else {
                panic!("{flag}")
            };
            let head = "wscgi - WebSockets for any HTTP backend, the CGI way\n\
                Usage: wscgi --backend BACKEND [OPTIONS]\n";
            assert!(text.starts_with(head));
            let mut names: Vec<&str> = SINGLE.split_whitespace().collect();
            names.extend(["pass-header", "help", "version"]);
            for name in names {
                assert!(text.contains(&format!("--{name} ")), "--{name} missing");
            }
            assert!(text.lines().all(|l| l.chars().count() <= 80));
        }
    }

    #[test]
    fn version_and_log_levels() {
        let want = format!("wscgi {}", env!("CARGO_PKG_VERSION"));
        for flag in ["--version", "-V"] {
            assert!(matches!(run(&[flag], &[]), Ok(Command::Version(v)) if v == want));
        }
        assert_eq!(LogLevel::Warn.to_level_filter(), log::LevelFilter::Warn);
        assert_eq!(LogLevel::Debug.to_level_filter(), log::LevelFilter::Debug);
        assert!(LogLevel::Error < LogLevel::Warn && LogLevel::Info < LogLevel::Debug);
    }
}

//! Parsers for option values: numbers, sizes, durations, addresses, lists. Each returns a
//! [`ValueError`] that names the value as given; the caller adds where it came from.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::headers;

pub(super) const KIB: u64 = 1024;
pub(super) const MIB: u64 = 1024 * KIB;
pub(super) const GIB: u64 = 1024 * MIB;
pub(super) const HOUR_MS: u64 = 60 * 60 * 1000;
pub(super) const DAY_MS: u64 = 24 * HOUR_MS;

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

pub(super) fn env_names(v: &str) -> Result<Vec<String>, ValueError> {
    let names: Vec<String> = v.split(',').map(|n| n.trim().to_string()).collect();
    match names.iter().find(|n| n.is_empty() || n.contains('=')) {
        Some(bad) => Err(ValueError::Choice {
            value: bad.clone(),
            expected: "an environment variable name".into(),
        }),
        None => Ok(names),
    }
}

pub(super) fn directory(v: &str) -> Result<PathBuf, ValueError> {
    let path = PathBuf::from(v);
    match path.is_dir() {
        true => Ok(path),
        false => Err(ValueError::Choice {
            value: v.into(),
            expected: "an existing directory".into(),
        }),
    }
}

pub(super) fn token(v: &str) -> Result<Option<String>, ValueError> {
    Ok(Some(v.to_string()).filter(|t| !t.is_empty()))
}

pub(super) fn address(v: &str) -> Result<SocketAddr, ValueError> {
    v.parse().map_err(|_| ValueError::Address(v.into()))
}

/// Leading decimal digits and the unit after them. `str::parse` alone would
/// let a `+` sign through. The number is `None` when it overflows u64.
pub(super) fn split_number(v: &str) -> Option<(Option<u64>, &str)> {
    let end = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    (end > 0).then(|| (v[..end].parse().ok(), &v[end..]))
}

pub(super) fn in_range(
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
pub(super) fn count<T: TryFrom<u64>>(v: &str, min: u64, max: u64) -> Result<T, ValueError> {
    match split_number(v) {
        Some((n, "")) => in_range(v, n, min, max, |n| n.to_string())
            .and_then(|n| T::try_from(n).map_err(|_| ValueError::Number(v.into()))),
        _ => Err(ValueError::Number(v.into())),
    }
}

/// Counts with no natural bound still get one, so typos fail loudly.
pub(super) fn many(v: &str) -> Result<usize, ValueError> {
    count(v, 1, 1 << 20)
}

pub(super) fn size(v: &str, min: u64) -> Result<usize, ValueError> {
    let (n, unit) = split_number(v).ok_or_else(|| ValueError::Size(v.into()))?;
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => KIB,
        "m" | "mib" => MIB,
        "g" | "gib" => GIB,
        _ => return Err(ValueError::Size(v.into())),
    };
    let bytes = in_range(v, n.and_then(|n| n.checked_mul(scale)), min, GIB, show_size)?;
    usize::try_from(bytes).map_err(|_| ValueError::Size(v.into()))
}

pub(super) fn show_size(n: u64) -> String {
    let units = [(GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")];
    match units.iter().find(|(unit, _)| n.is_multiple_of(*unit)) {
        Some((unit, name)) => format!("{}{name}", n / unit),
        None => n.to_string(),
    }
}

/// Milliseconds, `None` on overflow; zero is left for the caller to judge.
pub(super) fn millis(v: &str) -> Result<Option<u64>, ValueError> {
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

pub(super) fn duration(v: &str) -> Result<Duration, ValueError> {
    let show = |ms: u64| match ms % HOUR_MS {
        0 => format!("{}h", ms / HOUR_MS),
        _ => format!("{ms}ms"),
    };
    in_range(v, millis(v)?, 1, DAY_MS, show).map(Duration::from_millis)
}

/// `redis://[user:password@]host:port[/db]` or `redis+unix:///path/to/redis.sock`; the
/// Redis client checks the rest when it connects.
pub(super) fn redis_url(v: &str) -> Result<String, ValueError> {
    let known = ["redis://", "redis+unix://"];
    match known
        .iter()
        .any(|scheme| v.starts_with(scheme) && v.len() > scheme.len())
    {
        true => Ok(v.to_string()),
        false => Err(ValueError::Choice {
            value: redact_userinfo(v),
            expected: "redis://[user:password@]host:port[/db] or redis+unix:///path".into(),
        }),
    }
}

/// `v` with the `user:password@` of its authority (if any) shown as `***@`: error messages go
/// to stderr and the journal, where a password must not.
pub(super) fn redact_userinfo(v: &str) -> String {
    let start = v.find("://").map_or(0, |i| i + 3);
    let authority_end = v[start..].find('/').map_or(v.len(), |i| start + i);
    match v[start..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &v[..start], &v[start + at..]),
        None => v.to_string(),
    }
}

/// Printable ASCII without spaces, at most 64 bytes: it starts every Redis key and channel.
pub(super) fn redis_prefix(v: &str) -> Result<String, ValueError> {
    match v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()) {
        true => Ok(v.to_string()),
        false => Err(ValueError::Choice {
            value: v.into(),
            expected: "at most 64 printable ASCII characters without spaces".into(),
        }),
    }
}

/// Liveness is refreshed three times per TTL, and Redis expires keys in milliseconds.
pub(super) fn node_ttl(v: &str) -> Result<Duration, ValueError> {
    let ttl = duration(v)?;
    match ttl >= Duration::from_millis(300) {
        true => Ok(ttl),
        false => Err(ValueError::OutOfRange {
            value: v.into(),
            range: "300ms-24h".into(),
        }),
    }
}

pub(super) fn ping_interval(v: &str) -> Result<Option<Duration>, ValueError> {
    if v.eq_ignore_ascii_case("off") || millis(v)? == Some(0) {
        return Ok(None);
    }
    duration(v).map(Some)
}

/// `https://example.com, *.example.com`: exact origins, or `*.` wildcards for subdomains.
pub(super) fn origin_list(v: &str) -> Result<Vec<String>, ValueError> {
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
pub(super) fn header_list(v: &str) -> Result<Vec<String>, ValueError> {
    let mut names: Vec<String> = Vec::new();
    for name in v.split(',').map(str::trim) {
        if !is_token(name) {
            return Err(ValueError::HeaderName(name.into()));
        }
        let name = headers::lowercase(name).into_owned();
        if name != "none" && !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// RFC 9110 token: what may legally appear as a header field name.
pub(super) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

pub(super) fn boolean(v: &str) -> Result<bool, ValueError> {
    let table = [("1", true), ("true", true), ("yes", true), ("on", true)];
    let no = [
        ("0", false),
        ("false", false),
        ("no", false),
        ("off", false),
    ];
    let lower = v.to_ascii_lowercase();
    match table.iter().chain(&no).find(|(name, _)| *name == lower) {
        Some((_, b)) => Ok(*b),
        None => Err(ValueError::Choice {
            value: v.into(),
            expected: "1, true, yes, on, 0, false, no or off".into(),
        }),
    }
}

pub(super) fn choice<T: Copy>(v: &str, table: &[(&str, T)]) -> Result<T, ValueError> {
    let names: Vec<&str> = table.iter().map(|(name, _)| *name).collect();
    let found = table.iter().find(|(name, _)| name.eq_ignore_ascii_case(v));
    found.map(|&(_, t)| t).ok_or_else(|| ValueError::Choice {
        value: v.into(),
        expected: names.join("|"),
    })
}

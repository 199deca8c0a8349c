//! Backend specifications from the command line: `--backend BACKEND` and `--route PREFIX=BACKEND`.
//!
//! ```text
//! http://host:port/path                       one POST per event (https:// with --features tls)
//! cgi:/path/to/program                        run the program once per event (RFC 3875)
//! fastcgi://host:port/path/to/script.php      FastCGI over TCP (php-fpm)
//! fastcgi://unix:/run/php/fpm.sock:/path/to/script.php   FastCGI over a unix socket
//! ```

use std::path::PathBuf;

/// Where one route's events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendSpec {
    Http(String),
    Cgi(PathBuf),
    FastCgi { addr: FcgiAddr, script: String },
}

/// A FastCGI server's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FcgiAddr {
    /// `host:port`
    Tcp(String),
    Unix(PathBuf),
}

/// WebSocket paths under `prefix` go to `backend`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub prefix: String,
    pub backend: BackendSpec,
}

pub fn parse(spec: &str) -> Result<BackendSpec, String> {
    let lower = spec.get(..10).unwrap_or(spec).to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return http(spec);
    }
    if let Some(program) = spec.strip_prefix("cgi:") {
        if program.is_empty() {
            return Err("cgi: needs a program path, e.g. cgi:/srv/chat.sh".into());
        }
        return Ok(BackendSpec::Cgi(PathBuf::from(program)));
    }
    if let Some(rest) = spec.strip_prefix("fastcgi://") {
        return fastcgi(rest);
    }
    Err(format!(
        "{spec:?}: expected http://, cgi:PATH or fastcgi://"
    ))
}

fn http(url: &str) -> Result<BackendSpec, String> {
    let https = url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
    if https && !cfg!(feature = "tls") {
        return Err(format!("{url:?} needs wscgi built with --features tls"));
    }
    let rest = url.split_once("://").map_or("", |(_, r)| r);
    let host = rest.split(['/', '?']).next().unwrap_or("");
    if host.is_empty() || url.chars().any(char::is_whitespace) {
        return Err(format!("{url:?}: invalid URL"));
    }
    Ok(BackendSpec::Http(url.to_string()))
}

fn fastcgi(rest: &str) -> Result<BackendSpec, String> {
    if let Some(unix) = rest.strip_prefix("unix:") {
        let (socket, script) = unix
            .split_once(':')
            .ok_or("fastcgi://unix:SOCKET:SCRIPT needs a script path after the socket")?;
        if socket.is_empty() || !script.starts_with('/') {
            return Err(
                "fastcgi://unix:SOCKET:SCRIPT needs a socket and an absolute script path".into(),
            );
        }
        return Ok(BackendSpec::FastCgi {
            addr: FcgiAddr::Unix(socket.into()),
            script: script.into(),
        });
    }
    let (host, script) = rest.split_at(
        rest.find('/')
            .ok_or("fastcgi://HOST:PORT/SCRIPT needs a script path")?,
    );
    let port_ok = host
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
    if !port_ok {
        return Err(format!("fastcgi://{host}: expected HOST:PORT"));
    }
    Ok(BackendSpec::FastCgi {
        addr: FcgiAddr::Tcp(host.into()),
        script: script.into(),
    })
}

/// `PREFIX=BACKEND`; the prefix is a path starting with `/`.
pub fn parse_route(text: &str) -> Result<Route, String> {
    let (prefix, backend) = text.split_once('=').ok_or("expected PREFIX=BACKEND")?;
    if !prefix.starts_with('/') || prefix.contains(['?', ' ']) {
        return Err(format!(
            "route prefix {prefix:?} must be a path starting with /"
        ));
    }
    Ok(Route {
        prefix: prefix.to_string(),
        backend: parse(backend)?,
    })
}

/// The route whose prefix is the longest match for `path`. A prefix matches whole segments:
/// `/chat` matches `/chat` and `/chat/room`, not `/chatter`.
pub fn select(routes: &[Route], path: &str) -> Option<usize> {
    routes
        .iter()
        .enumerate()
        .filter(|(_, r)| matches(&r.prefix, path))
        .max_by_key(|(_, r)| r.prefix.len())
        .map(|(i, _)| i)
}

fn matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_forms() {
        assert_eq!(
            parse("http://h:1/ws"),
            Ok(BackendSpec::Http("http://h:1/ws".into()))
        );
        assert_eq!(
            parse("cgi:/srv/chat.sh"),
            Ok(BackendSpec::Cgi("/srv/chat.sh".into()))
        );
        let tcp = BackendSpec::FastCgi {
            addr: FcgiAddr::Tcp("127.0.0.1:9000".into()),
            script: "/srv/chat.php".into(),
        };
        assert_eq!(parse("fastcgi://127.0.0.1:9000/srv/chat.php"), Ok(tcp));
        let unix = BackendSpec::FastCgi {
            addr: FcgiAddr::Unix("/run/fpm.sock".into()),
            script: "/srv/c.php".into(),
        };
        assert_eq!(parse("fastcgi://unix:/run/fpm.sock:/srv/c.php"), Ok(unix));
        for bad in [
            "",
            "ftp://x",
            "cgi:",
            "http://",
            "fastcgi://h/x",
            "fastcgi://h:1",
            "fastcgi://unix:/s",
            "fastcgi://unix:/s:rel",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn longest_segment_prefix_wins() {
        let routes: Vec<Route> = ["/=cgi:/a", "/chat=cgi:/b", "/chat/admin=cgi:/c"]
            .iter()
            .map(|r| parse_route(r).unwrap())
            .collect();
        assert_eq!(select(&routes, "/"), Some(0));
        assert_eq!(select(&routes, "/chatter"), Some(0));
        assert_eq!(select(&routes, "/chat"), Some(1));
        assert_eq!(select(&routes, "/chat/room"), Some(1));
        assert_eq!(select(&routes, "/chat/admin/x"), Some(2));
        assert_eq!(select(&routes[1..], "/other"), None);
        assert!(parse_route("chat=cgi:/x").is_err());
    }
}

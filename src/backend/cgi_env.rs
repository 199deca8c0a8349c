//! The CGI meta-variables for one event (RFC 3875 §4.1), shared by the CGI backend (as the
//! child's environment) and the FastCGI backend (as `FCGI_PARAMS`). Pure.
//!
//! The event's request becomes a `POST` to the script: the WebSocket query string is
//! `QUERY_STRING`, the part of the WebSocket path below the route prefix is `PATH_INFO`, and
//! every header the HTTP backend would receive is an `HTTP_*` variable (`HTTP_WS_EVENT`,
//! `HTTP_WS_CONNECTION_ID`, `HTTP_COOKIE`, ...).

use super::request::BackendRequest;

/// What the script is and where it was mounted.
#[derive(Debug, Clone, Copy)]
pub struct Script<'a> {
    /// `SCRIPT_FILENAME`: the file to run.
    pub filename: &'a str,
    /// The route prefix; `SCRIPT_NAME` is this without a trailing `/`.
    pub prefix: &'a str,
}

/// The listening side, for `SERVER_NAME` and `SERVER_PORT`.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub server_name: String,
    pub server_port: u16,
}

pub fn params(
    req: &BackendRequest,
    script: &Script<'_>,
    gateway: &Gateway,
) -> Vec<(String, Vec<u8>)> {
    let script_name = script.prefix.trim_end_matches('/');
    let path_info = req.path.strip_prefix(script_name).unwrap_or("");
    let request_uri = match req.query.is_empty() {
        true => req.path.to_string(),
        false => format!("{}?{}", req.path, req.query),
    };
    let mut vars: Vec<(String, Vec<u8>)> = Vec::with_capacity(24 + req.headers.len());
    let mut set = |name: &str, value: &[u8]| vars.push((name.to_string(), value.to_vec()));
    set("GATEWAY_INTERFACE", b"CGI/1.1");
    set(
        "SERVER_SOFTWARE",
        concat!("wscgi/", env!("CARGO_PKG_VERSION")).as_bytes(),
    );
    set("SERVER_PROTOCOL", b"HTTP/1.1");
    set("SERVER_NAME", gateway.server_name.as_bytes());
    set("SERVER_PORT", gateway.server_port.to_string().as_bytes());
    set("REQUEST_METHOD", b"POST");
    set("REQUEST_URI", request_uri.as_bytes());
    set("SCRIPT_NAME", script_name.as_bytes());
    set("SCRIPT_FILENAME", script.filename.as_bytes());
    set("PATH_INFO", path_info.as_bytes());
    set("QUERY_STRING", req.query.as_bytes());
    set("CONTENT_LENGTH", req.body.len().to_string().as_bytes());
    if let Some(ct) = req.content_type {
        set("CONTENT_TYPE", ct.as_bytes());
    }
    if let Some(remote) = req.remote {
        set("REMOTE_ADDR", remote.ip().to_string().as_bytes());
        set("REMOTE_PORT", remote.port().to_string().as_bytes());
    }
    // php-cgi refuses to run without it (its guard against being called directly).
    set("REDIRECT_STATUS", b"200");
    for (name, value) in &req.headers {
        set(&http_var(name), value);
    }
    vars
}

/// `WS-Connection-Id` → `HTTP_WS_CONNECTION_ID`.
pub fn http_var(header: &str) -> String {
    let mut var = String::with_capacity(5 + header.len());
    var.push_str("HTTP_");
    var.extend(header.chars().map(|c| {
        if c == '-' {
            '_'
        } else {
            c.to_ascii_uppercase()
        }
    }));
    var
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::Bytes;

    fn request() -> BackendRequest<'static> {
        BackendRequest {
            query: "room=5",
            path: "/chat/lobby",
            remote: Some("10.0.0.7:4242".parse().unwrap()),
            headers: vec![
                ("WS-Event".into(), b"message"[..].into()),
                ("cookie".into(), b"a=1"[..].into()),
            ],
            content_type: Some("text/plain; charset=utf-8"),
            body: Bytes::from_static(b"hello"),
        }
    }

    fn get<'a>(vars: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a str> {
        vars.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| std::str::from_utf8(v).unwrap())
    }

    #[test]
    fn meta_variables() {
        let gateway = Gateway {
            server_name: "127.0.0.1".into(),
            server_port: 8080,
        };
        let vars = params(
            &request(),
            &Script {
                filename: "/srv/chat.php",
                prefix: "/chat",
            },
            &gateway,
        );
        let expect = [
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("REQUEST_METHOD", "POST"),
            ("SCRIPT_FILENAME", "/srv/chat.php"),
            ("SCRIPT_NAME", "/chat"),
            ("PATH_INFO", "/lobby"),
            ("QUERY_STRING", "room=5"),
            ("REQUEST_URI", "/chat/lobby?room=5"),
            ("CONTENT_LENGTH", "5"),
            ("CONTENT_TYPE", "text/plain; charset=utf-8"),
            ("REMOTE_ADDR", "10.0.0.7"),
            ("REMOTE_PORT", "4242"),
            ("SERVER_NAME", "127.0.0.1"),
            ("SERVER_PORT", "8080"),
            ("REDIRECT_STATUS", "200"),
            ("HTTP_WS_EVENT", "message"),
            ("HTTP_COOKIE", "a=1"),
        ];
        for (name, value) in expect {
            assert_eq!(get(&vars, name), Some(value), "{name}");
        }
    }

    #[test]
    fn root_prefix_gives_the_whole_path_as_path_info() {
        let gateway = Gateway {
            server_name: "h".into(),
            server_port: 1,
        };
        let vars = params(
            &request(),
            &Script {
                filename: "/x",
                prefix: "/",
            },
            &gateway,
        );
        assert_eq!(get(&vars, "SCRIPT_NAME"), Some(""));
        assert_eq!(get(&vars, "PATH_INFO"), Some("/chat/lobby"));
    }
}

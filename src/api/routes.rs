//! Push-API requests to commands: authorization, method and path matching, argument checks.
//!
//! Pure: a parsed [`Request`] in, a [`Command`] (or an [`ApiError`] with its status) out. The
//! server carries commands out against its connections.

use std::fmt;

use tungstenite::Bytes;

use super::batch::{self, Op};
use super::request::{Method, Request, form_field};
use crate::ws::close;

/// What a push-API call asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `POST /connections/{id}`: one message to that client.
    Send {
        id: String,
        data: Bytes,
        binary: bool,
    },
    /// `DELETE /connections/{id}?code=&reason=`
    Close {
        id: String,
        code: u16,
        reason: String,
    },
    /// `GET /connections/{id}`
    Info { id: String },
    /// `GET /healthz`
    Health,
    /// `GET /metrics` (Prometheus text)
    Metrics,
    /// `GET /connections[?channel=name]`
    ListConnections { channel: Option<String> },
    /// `GET /channels`
    ListChannels,
    /// `GET /channels/{name}`: members (presence)
    ChannelInfo { name: String },
    /// `POST /channels/{name}[?exclude=id,id]`
    Publish {
        channel: String,
        data: Bytes,
        binary: bool,
        exclude: Vec<String>,
    },
    /// `POST /broadcast[?path=/prefix][&exclude=id,id]`
    Broadcast {
        prefix: Option<String>,
        data: Bytes,
        binary: bool,
        exclude: Vec<String>,
    },
    /// `PUT /channels/{name}/connections/{id}`
    Subscribe { channel: String, id: String },
    /// `DELETE /channels/{name}/connections/{id}`
    Unsubscribe { channel: String, id: String },
    /// `POST /batch`: operations applied in order; a bad entry is reported in its place.
    Batch(Vec<Result<Op, String>>),
}

/// A refused call; each variant has one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// Missing or wrong `Authorization: Bearer` token (401).
    Unauthorized,
    /// No such endpoint, or no open connection with that id (404).
    NotFound(String),
    /// The endpoint exists but not for this method (405); carries the `Allow` value.
    MethodNotAllowed(&'static str),
    /// Arguments or body are not acceptable (400).
    BadRequest(String),
    /// The client is too slow to take more; it is being closed (503).
    SlowConsumer,
    /// The cluster cannot be reached or did not answer in time (503); says why.
    Unavailable(String),
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Unauthorized => 401,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::BadRequest(_) => 400,
            ApiError::SlowConsumer | ApiError::Unavailable(_) => 503,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Unauthorized => write!(f, "missing or wrong bearer token"),
            ApiError::NotFound(what) => write!(f, "not found: {what}"),
            ApiError::MethodNotAllowed(allow) => write!(f, "method not allowed (allowed: {allow})"),
            ApiError::BadRequest(why) => write!(f, "{why}"),
            ApiError::SlowConsumer => write!(f, "client too slow, connection is being closed"),
            ApiError::Unavailable(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for ApiError {}

/// Checks the token, then maps method and path to a command.
pub fn route(req: &Request, token: Option<&str>) -> Result<Command, ApiError> {
    if let Some(token) = token {
        authorize(req, token)?;
    }
    let read = matches!(req.method, Method::Get | Method::Head);
    match (req.path_segments().as_slice(), req.method) {
        (["healthz"], _) if read => Ok(Command::Health),
        (["metrics"], _) if read => Ok(Command::Metrics),
        (["healthz" | "metrics" | "connections" | "channels"], _) if !read => {
            Err(ApiError::MethodNotAllowed("GET, HEAD"))
        }
        (["connections"], _) => Ok(Command::ListConnections {
            channel: req.query_param("channel").map(str::to_string),
        }),
        (["connections", id], method) => connection(req, id, method),
        (["channels"], _) => Ok(Command::ListChannels),
        (["channels", name], _) if read => Ok(Command::ChannelInfo {
            name: name.to_string(),
        }),
        (["channels", name], Method::Post) => {
            let (data, binary) = message_body(req)?;
            Ok(Command::Publish {
                channel: name.to_string(),
                data,
                binary,
                exclude: exclude(req),
            })
        }
        (["channels", _], _) => Err(ApiError::MethodNotAllowed("GET, POST")),
        (["channels", name, "connections", id], method) => {
            let (channel, id) = (name.to_string(), id.to_string());
            match method {
                Method::Put => Ok(Command::Subscribe { channel, id }),
                Method::Delete => Ok(Command::Unsubscribe { channel, id }),
                _ => Err(ApiError::MethodNotAllowed("PUT, DELETE")),
            }
        }
        (["broadcast"], Method::Post) => {
            let (data, binary) = message_body(req)?;
            let prefix = req.query_param("path").map(str::to_string);
            Ok(Command::Broadcast {
                prefix,
                data,
                binary,
                exclude: exclude(req),
            })
        }
        (["broadcast" | "batch"], _) if req.method != Method::Post => {
            Err(ApiError::MethodNotAllowed("POST"))
        }
        (["batch"], _) => batch::parse(&req.body)
            .map(Command::Batch)
            .map_err(|e| ApiError::BadRequest(e.to_string())),
        _ => Err(ApiError::NotFound(format!("no endpoint {}", req.path))),
    }
}

/// `?exclude=id,id` (the parameter may also repeat).
fn exclude(req: &Request) -> Vec<String> {
    req.query
        .iter()
        .filter(|(k, _)| k == "exclude")
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn connection(req: &Request, id: &str, method: Method) -> Result<Command, ApiError> {
    let id = id.to_string();
    match method {
        Method::Post => {
            let (data, binary) = message_body(req)?;
            Ok(Command::Send { id, data, binary })
        }
        Method::Delete => {
            let (code, reason) = close_args(req)?;
            Ok(Command::Close { id, code, reason })
        }
        Method::Get | Method::Head => Ok(Command::Info { id }),
        _ => Err(ApiError::MethodNotAllowed("GET, POST, DELETE")),
    }
}

/// The message in a request body: binary for `application/octet-stream`, the `data` field of a
/// form (a form without one is taken as is), otherwise text (which must be UTF-8, as a WebSocket
/// text frame must).
pub fn message_body(req: &Request) -> Result<(Bytes, bool), ApiError> {
    let mime = req
        .header("content-type")
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    if mime.eq_ignore_ascii_case("application/octet-stream") {
        return Ok((Bytes::from(req.body.clone()), true));
    }
    // curl -d sends its data as a form; without a `data` field the body is the message itself.
    let form = mime.eq_ignore_ascii_case("application/x-www-form-urlencoded");
    let text = match form.then(|| form_field(&req.body, "data")).flatten() {
        Some(data) => data,
        None => req.body.clone(),
    };
    if std::str::from_utf8(&text).is_err() {
        let why =
            "text message is not UTF-8 (use Content-Type: application/octet-stream for binary)";
        return Err(ApiError::BadRequest(why.into()));
    }
    Ok((Bytes::from(text), false))
}

fn close_args(req: &Request) -> Result<(u16, String), ApiError> {
    let code = match req.query_param("code") {
        None | Some("") => close::NORMAL,
        Some(text) => match text.parse::<u16>() {
            Ok(code) if close::valid_to_send(code) => code,
            _ => return Err(ApiError::BadRequest(format!("invalid close code {text:?}"))),
        },
    };
    let reason = req.query_param("reason").unwrap_or("");
    if reason.len() > 123 {
        return Err(ApiError::BadRequest(
            "close reason longer than 123 bytes".into(),
        ));
    }
    Ok((code, reason.to_string()))
}

fn authorize(req: &Request, token: &str) -> Result<(), ApiError> {
    // The scheme name is case-insensitive (RFC 9110 §11.1).
    let header = req.header("authorization").unwrap_or("").trim();
    let given = match header.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => "",
    };
    if constant_time_eq(given.as_bytes(), token.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// Compares without an early exit, so timing does not reveal how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::request::parse;

    fn req(raw: &str) -> Request {
        parse(raw.as_bytes(), 1 << 20).unwrap().unwrap().0
    }

    #[test]
    fn routes() {
        let send = req("POST /connections/abc HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi");
        assert_eq!(
            route(&send, None),
            Ok(Command::Send {
                id: "abc".into(),
                data: Bytes::from_static(b"hi"),
                binary: false
            })
        );
        let close = req("DELETE /connections/abc?code=4001&reason=bye HTTP/1.1\r\n\r\n");
        assert_eq!(
            route(&close, None),
            Ok(Command::Close {
                id: "abc".into(),
                code: 4001,
                reason: "bye".into()
            })
        );
        assert_eq!(
            route(&req("GET /healthz HTTP/1.1\r\n\r\n"), None),
            Ok(Command::Health)
        );
        assert_eq!(
            route(&req("GET /nope HTTP/1.1\r\n\r\n"), None)
                .unwrap_err()
                .status(),
            404
        );
        assert_eq!(
            route(
                &req("PUT /connections/a HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
                None
            )
            .unwrap_err()
            .status(),
            405
        );
        let bad_code = req("DELETE /connections/abc?code=1006 HTTP/1.1\r\n\r\n");
        assert_eq!(route(&bad_code, None).unwrap_err().status(), 400);
    }

    #[test]
    fn bodies() {
        let form = req(
            "POST /connections/a HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\ndata=hi+x",
        );
        assert_eq!(
            message_body(&form),
            Ok((Bytes::from_static(b"hi x"), false))
        );
        let raw = b"POST /connections/a HTTP/1.1\r\nContent-Type: application/octet-stream\r\nContent-Length: 1\r\n\r\n\xff";
        let bin = parse(raw, 16).unwrap().unwrap().0;
        assert!(message_body(&bin).unwrap().1);
    }

    #[test]
    fn token() {
        let no = req("GET /healthz HTTP/1.1\r\n\r\n");
        assert_eq!(route(&no, Some("s3cret")), Err(ApiError::Unauthorized));
        let wrong = req("GET /healthz HTTP/1.1\r\nAuthorization: Bearer s3cre\r\n\r\n");
        assert_eq!(route(&wrong, Some("s3cret")), Err(ApiError::Unauthorized));
        let ok = req("GET /healthz HTTP/1.1\r\nAuthorization: Bearer s3cret\r\n\r\n");
        assert_eq!(route(&ok, Some("s3cret")), Ok(Command::Health));
    }
}

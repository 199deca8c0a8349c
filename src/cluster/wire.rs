//! The wire format of cluster messages on Redis pub/sub: one JSON object per message, version 1.
//!
//! Pure: bytes in, a [`Message`] out, and back. Three kinds travel:
//! - a publish, on `{prefix}publish`, the form a backend may send itself with one Redis
//!   `PUBLISH` (README, "Cluster"): `{"v":1,"channel":"room","data":"hi","exclude":["id"]}`,
//!   `"base64"` instead of `"data"` for binary, `"path":"/chat"` instead of `"channel"` for a
//!   broadcast; instances add `"from"`, their node tag, and skip their own publishes;
//! - a request from one instance, to the inbox `{prefix}inbox:{tag}` of the instance holding a
//!   connection, or to every instance on `{prefix}all`: a `/batch` entry (`"op":"send"`, ...)
//!   or a presence question, with `"call"` (the asker's number for it), `"from"` and, optional,
//!   `"deadline"` (see [`Message::Request`]);
//! - a reply to the asker's inbox, with `"re"` (the call) and `"from"`.
//!
//! Fields a version-1 reader does not know are ignored, so later versions can add some.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tungstenite::Bytes;

use crate::api::batch::{self, Entry, Op};
use crate::api::json::{self, Object};
use crate::api::json_value::{self, JsonError, Value};

/// The only version this reader understands; anything else is refused, not guessed at.
pub const VERSION: u64 = 1;

/// Who a publish is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// The members of these channels (once each, even if in several): `"channel":"room"`, or
    /// `"channels":["a","b"]`.
    Channels(Vec<String>),
    /// Every client whose WebSocket path starts with this (`/` reaches everyone).
    Path(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub audience: Audience,
    pub data: Bytes,
    pub binary: bool,
    /// Connection ids that must not get it, on whichever instance they are.
    pub exclude: Vec<String>,
    /// The publishing instance's tag; it has served its own clients already. `None` from a
    /// backend.
    pub from: Option<String>,
}

/// What one instance asks of another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `send`, `close`, `subscribe` or `unsubscribe` for a connection the other one holds.
    Op(Op),
    /// `GET /connections/{id}`.
    Info { id: String },
    /// The ids of a channel's members held there.
    Members { channel: String },
    /// The channels with members there, and how many.
    Channels,
    /// The ids of open connections there (in `channel`, if given).
    Connections { channel: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The push-API answer to an [`Request::Op`] or [`Request::Info`], as the holder gave it.
    Response {
        status: u16,
        body: String,
    },
    Ids(Vec<String>),
    Channels(Vec<(String, u64)>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Publish(Publish),
    Request {
        call: u64,
        from: String,
        /// When the asker stops waiting (it answered its caller 503 then), in wall-clock
        /// milliseconds since the Unix epoch: a request that arrives later is dropped, neither
        /// carried out nor answered. Absent (an older sender): no deadline.
        deadline: Option<u64>,
        request: Request,
    },
    Reply {
        call: u64,
        from: String,
        reply: Reply,
    },
}

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    Json(JsonError),
    NotAnObject,
    /// `"v"` missing or not [`VERSION`].
    Version,
    /// A field is missing or has the wrong form.
    Field(String),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Json(e) => fmt::Display::fmt(e, f),
            WireError::NotAnObject => f.write_str("message is not a JSON object"),
            WireError::Version => write!(f, "\"v\" must be {VERSION}"),
            WireError::Field(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for WireError {}

pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
    let Value::Object(fields) = json_value::parse(bytes).map_err(WireError::Json)? else {
        return Err(WireError::NotAnObject);
    };
    let mut e = Entry(fields);
    if e.take("v").and_then(|v| v.as_u64()) != Some(VERSION) {
        return Err(WireError::Version);
    }
    let field = WireError::Field;
    if let Some(re) = e.take("re") {
        let call = re
            .as_u64()
            .ok_or_else(|| field("\"re\" must be a number".into()))?;
        let from = e.string("from").map_err(field)?;
        let reply = reply(&mut e).map_err(field)?;
        return Ok(Message::Reply { call, from, reply });
    }
    if let Some(c) = e.take("call") {
        let call = c
            .as_u64()
            .ok_or_else(|| field("\"call\" must be a number".into()))?;
        let from = e.string("from").map_err(field)?;
        let deadline = match e.take("deadline") {
            None => None,
            Some(d) => Some(
                d.as_u64()
                    .ok_or_else(|| field("\"deadline\" must be a number".into()))?,
            ),
        };
        let request = request(e).map_err(field)?;
        return Ok(Message::Request {
            call,
            from,
            deadline,
            request,
        });
    }
    publish(&mut e).map(Message::Publish).map_err(field)
}

fn publish(e: &mut Entry) -> Result<Publish, String> {
    let channels = match e.take("channels") {
        None => None,
        Some(list) => match strings(list) {
            Some(names) if !names.is_empty() => Some(names),
            _ => return Err("\"channels\" must be a non-empty array of strings".into()),
        },
    };
    let audience = match (e.take("channel"), channels, e.take("path")) {
        (Some(Value::String(c)), None, None) => Audience::Channels(vec![c]),
        (None, Some(names), None) => Audience::Channels(names),
        (None, None, Some(Value::String(p))) => Audience::Path(p),
        (None, None, None) => return Err("missing \"channel\" (or \"path\")".into()),
        (Some(Value::String(_)) | None, _, Some(Value::String(_)) | None) => {
            return Err("give one of \"channel\", \"channels\" and \"path\"".into());
        }
        _ => return Err("\"channel\" and \"path\" must be strings".into()),
    };
    let (data, binary) = e.payload()?;
    let exclude = e.exclude()?;
    let from = match e.take("from") {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err("\"from\" must be a string".into()),
    };
    Ok(Publish {
        audience,
        data,
        binary,
        exclude,
        from,
    })
}

fn request(mut e: Entry) -> Result<Request, String> {
    let name = match e.take("op") {
        Some(Value::String(name)) => name,
        _ => return Err("missing \"op\"".into()),
    };
    Ok(match name.as_str() {
        "info" => Request::Info {
            id: e.string("id")?,
        },
        "members" => Request::Members {
            channel: e.string("channel")?,
        },
        "channels" => Request::Channels,
        "connections" => Request::Connections {
            channel: e.string("channel").ok(),
        },
        "publish" => return Err("publish is not a request".into()),
        _ => {
            e.0.push(("op".into(), Value::String(name)));
            Request::Op(batch::op(Value::Object(e.0))?)
        }
    })
}

fn reply(e: &mut Entry) -> Result<Reply, String> {
    if let Some(status) = e.take("status") {
        let status = status
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .filter(|s| (100..600).contains(s))
            .ok_or("\"status\" must be an HTTP status")?;
        return Ok(Reply::Response {
            status,
            body: e.string("body")?,
        });
    }
    if let Some(ids) = e.take("ids") {
        return strings(ids)
            .map(Reply::Ids)
            .ok_or("\"ids\" must be strings".into());
    }
    let bad = || "\"channels\" must be [name, count] pairs".to_string();
    let Some(Value::Array(items)) = e.take("channels") else {
        return Err("missing \"status\", \"ids\" or \"channels\"".into());
    };
    let mut channels = Vec::with_capacity(items.len());
    for item in items {
        match item.as_array() {
            Some([Value::String(name), n]) => {
                channels.push((name.clone(), n.as_u64().ok_or_else(bad)?))
            }
            _ => return Err(bad()),
        }
    }
    Ok(Reply::Channels(channels))
}

fn strings(value: Value) -> Option<Vec<String>> {
    let Value::Array(items) = value else {
        return None;
    };
    items
        .into_iter()
        .map(|v| match v {
            Value::String(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// The JSON text of a message; [`decode`] reads it back as it was.
pub fn encode(message: &Message) -> String {
    let o = Object::new().num("v", VERSION);
    match message {
        Message::Publish(p) => {
            let o = match &p.from {
                Some(from) => o.str("from", from),
                None => o,
            };
            let o = match &p.audience {
                Audience::Channels(names) if names.len() == 1 => o.str("channel", &names[0]),
                Audience::Channels(names) => o.raw("channels", &array(names)),
                Audience::Path(prefix) => o.str("path", prefix),
            };
            let o = payload(o, &p.data, p.binary);
            match p.exclude.is_empty() {
                true => o.finish(),
                false => o.raw("exclude", &array(&p.exclude)).finish(),
            }
        }
        Message::Request {
            call,
            from,
            deadline,
            request,
        } => {
            let o = o.num("call", *call).str("from", from);
            let o = match deadline {
                Some(ms) => o.num("deadline", *ms),
                None => o,
            };
            encode_request(o, request).finish()
        }
        Message::Reply { call, from, reply } => {
            let o = o.num("re", *call).str("from", from);
            match reply {
                Reply::Response { status, body } => o.num("status", *status).str("body", body),
                Reply::Ids(ids) => o.raw("ids", &array(ids)),
                Reply::Channels(channels) => {
                    let pairs: Vec<String> = channels
                        .iter()
                        .map(|(name, n)| format!("[{},{n}]", quoted(name)))
                        .collect();
                    o.raw("channels", &format!("[{}]", pairs.join(",")))
                }
            }
            .finish()
        }
    }
}

fn encode_request(o: Object, request: &Request) -> Object {
    match request {
        Request::Info { id } => o.str("op", "info").str("id", id),
        Request::Members { channel } => o.str("op", "members").str("channel", channel),
        Request::Channels => o.str("op", "channels"),
        Request::Connections { channel: None } => o.str("op", "connections"),
        Request::Connections { channel: Some(c) } => o.str("op", "connections").str("channel", c),
        Request::Op(Op::Send { id, data, binary }) => {
            payload(o.str("op", "send").str("id", id), data, *binary)
        }
        Request::Op(Op::Close { id, code, reason }) => o
            .str("op", "close")
            .str("id", id)
            .num("code", *code)
            .str("reason", reason),
        Request::Op(Op::Subscribe { id, channel }) => o
            .str("op", "subscribe")
            .str("id", id)
            .str("channel", channel),
        Request::Op(Op::Unsubscribe { id, channel }) => o
            .str("op", "unsubscribe")
            .str("id", id)
            .str("channel", channel),
        // Publishes travel as such, never as requests; `decode` refuses this form too.
        Request::Op(Op::Publish { .. }) => o.str("op", "publish"),
    }
}

fn payload(o: Object, data: &[u8], binary: bool) -> Object {
    match (binary, std::str::from_utf8(data)) {
        (false, Ok(text)) => o.str("data", text),
        _ => o.str("base64", &STANDARD.encode(data)),
    }
}

fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    json::escape_into(&mut out, s);
    out
}

fn array(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quoted(s)).collect();
    format!("[{}]", quoted.join(","))
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;

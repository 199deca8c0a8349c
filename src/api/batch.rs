//! The push API's `POST /batch` body: a JSON array of operation objects, parsed into [`Op`]s.
//!
//! Only parsing lives here; the server applies the operations in order. Each entry is judged
//! on its own so one bad entry costs one result, not the whole batch.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tungstenite::Bytes;

use super::json_value::{self, JsonError, Value};
use crate::ws::close;

/// Most entries one batch may carry, so one request cannot queue unbounded work.
pub const MAX_OPS: usize = 1000;

/// A close frame's payload is at most 125 bytes, two of which are the code.
const MAX_REASON: usize = 123;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Send {
        id: String,
        data: Bytes,
        binary: bool,
    },
    Publish {
        channel: String,
        data: Bytes,
        binary: bool,
        exclude: Vec<String>,
    },
    Close {
        id: String,
        code: u16,
        reason: String,
    },
    Subscribe {
        id: String,
        channel: String,
    },
    Unsubscribe {
        id: String,
        channel: String,
    },
}

/// Why a batch body was rejected as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    Json(JsonError),
    NotAnArray,
    TooManyOps(usize),
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::Json(e) => fmt::Display::fmt(e, f),
            BatchError::NotAnArray => f.write_str("batch must be a JSON array"),
            BatchError::TooManyOps(n) => write!(f, "too many operations: {n} (at most {MAX_OPS})"),
        }
    }
}

impl std::error::Error for BatchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BatchError::Json(e) => Some(e),
            _ => None,
        }
    }
}

/// Err only when the body as a whole is unusable (not JSON, not an array, more than MAX_OPS
/// entries). Each entry is parsed on its own: a bad entry becomes Err(reason) in its slot, so
/// the server can answer one result per operation and still apply the good ones.
pub fn parse(body: &[u8]) -> Result<Vec<Result<Op, String>>, BatchError> {
    let Value::Array(entries) = json_value::parse(body).map_err(BatchError::Json)? else {
        return Err(BatchError::NotAnArray);
    };
    if entries.len() > MAX_OPS {
        return Err(BatchError::TooManyOps(entries.len()));
    }
    Ok(entries.into_iter().map(op).collect())
}

/// One entry; also the form of an operation that one instance asks another to carry out
/// (`cluster::wire`).
pub(crate) fn op(entry: Value) -> Result<Op, String> {
    let Value::Object(fields) = entry else {
        return Err("entry is not an object".into());
    };
    let mut e = Entry(fields);
    let name = e.string("op")?;
    Ok(match name.as_str() {
        "send" => {
            let (id, (data, binary)) = (e.string("id")?, e.payload()?);
            Op::Send { id, data, binary }
        }
        "publish" => {
            let (channel, (data, binary)) = (e.string("channel")?, e.payload()?);
            Op::Publish {
                channel,
                data,
                binary,
                exclude: e.exclude()?,
            }
        }
        "close" => Op::Close {
            id: e.string("id")?,
            code: e.code()?,
            reason: e.reason()?,
        },
        "subscribe" => Op::Subscribe {
            id: e.string("id")?,
            channel: e.string("channel")?,
        },
        "unsubscribe" => Op::Unsubscribe {
            id: e.string("id")?,
            channel: e.string("channel")?,
        },
        _ => return Err(unknown_op(&name)),
    })
}

/// The name is echoed back, so it is cut short, and Debug quotes and escapes it.
fn unknown_op(name: &str) -> String {
    let short: String = name.chars().take(32).collect();
    format!("unknown op {short:?}")
}

/// One entry's fields. Fields are taken by value so payloads are moved out, not copied.
pub(crate) struct Entry(pub(crate) Vec<(String, Value)>);

impl Entry {
    /// Removes and returns the first field named `key`, like [`Value::get`] would find it.
    pub(crate) fn take(&mut self, key: &str) -> Option<Value> {
        let i = self.0.iter().position(|(k, _)| k == key)?;
        // `remove`, not `swap_remove`: later duplicates must stay behind earlier ones.
        Some(self.0.remove(i).1)
    }

    pub(crate) fn string(&mut self, key: &str) -> Result<String, String> {
        match self.take(key) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(format!("\"{key}\" must be a string")),
            None => Err(format!("missing \"{key}\"")),
        }
    }

    /// `data` (a text message) or `base64` (a binary one): the bytes and whether binary.
    pub(crate) fn payload(&mut self) -> Result<(Bytes, bool), String> {
        match (self.take("data"), self.take("base64")) {
            (Some(_), Some(_)) => Err("\"data\" and \"base64\" both given".into()),
            (None, None) => Err("missing \"data\" or \"base64\"".into()),
            (Some(Value::String(s)), None) => Ok((Bytes::from(s), false)),
            (None, Some(Value::String(s))) => match STANDARD.decode(s) {
                Ok(bytes) => Ok((Bytes::from(bytes), true)),
                Err(_) => Err("invalid base64".into()),
            },
            (Some(_), None) => Err("\"data\" must be a string".into()),
            (None, Some(_)) => Err("\"base64\" must be a string".into()),
        }
    }

    pub(crate) fn exclude(&mut self) -> Result<Vec<String>, String> {
        let bad = || "\"exclude\" must be an array of strings".to_string();
        match self.take("exclude") {
            None => Ok(Vec::new()),
            Some(Value::Array(ids)) => ids
                .into_iter()
                .map(|id| match id {
                    Value::String(s) => Ok(s),
                    _ => Err(bad()),
                })
                .collect(),
            Some(_) => Err(bad()),
        }
    }

    pub(crate) fn code(&mut self) -> Result<u16, String> {
        let n = match self.take("code") {
            None => return Ok(1000),
            Some(Value::Number(n)) => n,
            Some(_) => return Err("\"code\" must be a number".into()),
        };
        match Value::Number(n).as_u64() {
            Some(c) => match u16::try_from(c) {
                Ok(code) if close::valid_to_send(code) => Ok(code),
                _ => Err(format!("invalid close code {c}")),
            },
            // Debug keeps huge values short (`1e300`) where Display would print every digit.
            None => Err(format!("invalid close code {n:?}")),
        }
    }

    pub(crate) fn reason(&mut self) -> Result<String, String> {
        match self.take("reason") {
            None => Ok(String::new()),
            Some(Value::String(s)) if s.len() <= MAX_REASON => Ok(s),
            Some(Value::String(_)) => Err(format!("\"reason\" longer than {MAX_REASON} bytes")),
            Some(_) => Err("\"reason\" must be a string".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a one-entry batch; the entry is written with `'` for `"` to keep tests short.
    fn one(entry: &str) -> Result<Op, String> {
        let body = format!("[{}]", entry.replace('\'', "\""));
        let mut results = parse(body.as_bytes()).expect("batch parses");
        assert_eq!(results.len(), 1);
        results.remove(0)
    }

    fn send(data: &[u8], binary: bool) -> Result<Op, String> {
        let (id, data) = ("c".into(), Bytes::copy_from_slice(data));
        Ok(Op::Send { id, data, binary })
    }

    fn close(code: u16, reason: &str) -> Result<Op, String> {
        let (id, reason) = ("c".into(), reason.into());
        Ok(Op::Close { id, code, reason })
    }

    #[test]
    fn send_text_and_binary() {
        let op = one("{'op':'send','id':'c','data':'hi','x':[1]}");
        assert_eq!(op, send(b"hi", false));
        let op = one("{'op':'send','id':'c','base64':'AAH/'}");
        assert_eq!(op, send(&[0, 1, 255], true));
        assert_eq!(one("{'base64':'','id':'c','op':'send'}"), send(b"", true));
    }

    #[test]
    fn publish_with_and_without_exclude() {
        let publish = |data: &[u8], binary, exclude: &[&str]| {
            let exclude = exclude.iter().map(|s| s.to_string()).collect();
            let (channel, data) = ("r".into(), Bytes::copy_from_slice(data));
            Ok(Op::Publish {
                channel,
                data,
                binary,
                exclude,
            })
        };
        let op = one("{'op':'publish','channel':'r','data':'x','exclude':['a','b']}");
        assert_eq!(op, publish(b"x", false, &["a", "b"]));
        let op = one("{'op':'publish','channel':'r','base64':'AA=='}");
        assert_eq!(op, publish(&[0], true, &[]));
    }

    #[test]
    fn close_codes_and_reason() {
        assert_eq!(one("{'op':'close','id':'c'}"), close(1000, ""));
        let reason = "é".repeat(61) + "x"; // 123 bytes, the most allowed
        let entry = format!("{{'op':'close','id':'c','code':4999,'reason':'{reason}'}}");
        assert_eq!(one(&entry), close(4999, &reason));
        for code in [1000, 1003, 1007, 1014, 3000, 4000] {
            let op = one(&format!("{{'op':'close','id':'c','code':{code}}}"));
            assert_eq!(op, close(code, ""));
        }
    }

    #[test]
    fn subscribe_and_unsubscribe() {
        let (id, channel) = (String::from("c"), String::from("n"));
        let (i, c) = (id.clone(), channel.clone());
        assert_eq!(
            one("{'channel':'n','op':'subscribe','id':'c'}"),
            Ok(Op::Subscribe { id, channel })
        );
        let op = one("{'op':'unsubscribe','id':'c','channel':'n'}");
        assert_eq!(op, Ok(Op::Unsubscribe { id: i, channel: c }));
    }

    /// One bad entry per line: `entry => error`.
    const ENTRY_ERRORS: &str = r#"
    3                                                      => entry is not an object
    {'id':'c'}                                             => missing "op"
    {'op':'foo'}                                           => unknown op "foo"
    {'op':'send','data':'x'}                               => missing "id"
    {'op':'send','id':7,'data':'x'}                        => "id" must be a string
    {'op':'send','id':'c'}                                 => missing "data" or "base64"
    {'op':'send','id':'c','data':'','base64':''}           => "data" and "base64" both given
    {'op':'send','id':'c','data':null}                     => "data" must be a string
    {'op':'send','id':'c','base64':1}                      => "base64" must be a string
    {'op':'send','id':'c','base64':'AAF='}                 => invalid base64
    {'op':'send','id':'c','base64':'A-8='}                 => invalid base64
    {'op':'send','id':'c','base64':'AAE'}                  => invalid base64
    {'op':'publish','data':'x'}                            => missing "channel"
    {'op':'publish','channel':'r','data':'','exclude':[1]} => "exclude" must be an array of strings
    {'op':'publish','channel':'r','data':'','exclude':'a'} => "exclude" must be an array of strings
    {'op':'close','id':'c','code':999}                     => invalid close code 999
    {'op':'close','id':'c','code':1004}                    => invalid close code 1004
    {'op':'close','id':'c','code':1005}                    => invalid close code 1005
    {'op':'close','id':'c','code':1006}                    => invalid close code 1006
    {'op':'close','id':'c','code':1015}                    => invalid close code 1015
    {'op':'close','id':'c','code':2999}                    => invalid close code 2999
    {'op':'close','id':'c','code':5000}                    => invalid close code 5000
    {'op':'close','id':'c','code':70000}                   => invalid close code 70000
    {'op':'close','id':'c','code':-1}                      => invalid close code -1.0
    {'op':'close','id':'c','code':4000.5}                  => invalid close code 4000.5
    {'op':'close','id':'c','code':1e300}                   => invalid close code 1e300
    {'op':'close','id':'c','code':'4000'}                  => "code" must be a number
    {'op':'close','id':'c','reason':1}                     => "reason" must be a string
    {'op':'subscribe','id':'c'}                            => missing "channel"
    {'op':'unsubscribe','channel':'n'}                     => missing "id"
    "#;

    #[test]
    fn entry_errors() {
        for line in ENTRY_ERRORS.lines().filter(|l| !l.trim().is_empty()) {
            let (entry, want) = line.split_once("=>").expect("entry => error");
            assert_eq!(one(entry.trim()), Err(want.trim().to_string()), "{line}");
        }
        let entry = format!("{{'op':'close','id':'c','reason':'{}'}}", "x".repeat(124));
        assert_eq!(one(&entry), Err(r#""reason" longer than 123 bytes"#.into()));
        let want = Err(format!("unknown op {:?}", "x".repeat(32)));
        assert_eq!(one(&format!("{{'op':'{}'}}", "x".repeat(100))), want);
    }

    #[test]
    fn bad_entries_keep_their_slot() {
        let body = br#"[{"op":"subscribe","id":"a","channel":"c"}, 1, {"op":"x"}]"#;
        let results = parse(body).expect("batch parses");
        assert_eq!(results.len(), 3);
        assert!(results.first().is_some_and(Result::is_ok));
        assert_eq!(results.get(1), Some(&Err("entry is not an object".into())));
        assert_eq!(results.get(2), Some(&Err(r#"unknown op "x""#.into())));
        assert_eq!(parse(b" [] "), Ok(vec![]));
    }

    #[test]
    fn whole_body_errors() {
        assert_eq!(parse(br#"{"op":"send"}"#), Err(BatchError::NotAnArray));
        let eof = JsonError {
            offset: 3,
            kind: "unexpected end of input",
        };
        assert_eq!(parse(b"[1,"), Err(BatchError::Json(eof)));
        let entry = r#"{"op":"subscribe","id":"a","channel":"c"}"#;
        let body = |n: usize| format!("[{}]", vec![entry; n].join(","));
        assert_eq!(
            parse(body(MAX_OPS).as_bytes()).map(|r| r.len()),
            Ok(MAX_OPS)
        );
        let too_many = Err(BatchError::TooManyOps(MAX_OPS + 1));
        assert_eq!(parse(body(MAX_OPS + 1).as_bytes()), too_many);
    }

    #[test]
    fn display() {
        let shown = |e: BatchError| e.to_string();
        assert_eq!(shown(BatchError::NotAnArray), "batch must be a JSON array");
        let too_many = "too many operations: 1001 (at most 1000)";
        assert_eq!(shown(BatchError::TooManyOps(1001)), too_many);
        let json = parse(b"oops").map(|_| ()).map_err(shown);
        assert_eq!(
            json,
            Err("invalid JSON at byte 0: unexpected character".into())
        );
    }
}

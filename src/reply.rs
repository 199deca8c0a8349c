//! A backend's answer to one event, read from HTTP (or CGI) response parts.
//!
//! Pure: status, headers and body in, [`Reply`] out. The `WS-*` response headers are the
//! backend's way to steer wscgi; anything malformed in them is dropped with a warning rather
//! than failing the event, because the body may still be a perfectly good answer.

use tungstenite::Bytes;

use crate::headers;
use crate::ws::close;
use crate::ws::message::Deflated;

/// Limits on metadata a backend may store on one connection.
pub const MAX_META_ENTRIES: usize = 32;
pub const MAX_META_NAME: usize = 64;
pub const MAX_META_VALUE: usize = 4096;

/// What the backend asked for, in answer to one event.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub status: u16,
    /// Sent to the client as one message when non-empty (or when `send_empty`).
    pub body: Bytes,
    /// `WS-Send-Empty: 1`: an empty body is an empty message, not "nothing to send".
    pub send_empty: bool,
    /// `Content-Type: application/octet-stream` makes the message binary.
    pub binary: bool,
    /// The response's Content-Type, passed on when an open is rejected.
    pub content_type: Option<String>,
    /// `WS-Protocol`: the subprotocol chosen at open.
    pub protocol: Option<String>,
    /// `WS-Set-Meta-<Name>: value` (lowercase name; empty value deletes).
    pub set_meta: Vec<(String, String)>,
    /// `WS-Close: <code> [reason]`: close after the body is sent.
    pub close: Option<CloseRequest>,
    /// `WS-Subscribe: a, b`: channels to join.
    pub subscribe: Vec<String>,
    /// `WS-Unsubscribe: c`: channels to leave.
    pub unsubscribe: Vec<String>,
    /// `WS-Publish: room`: send the body to these channels' members instead of the sender.
    pub publish: Vec<String>,
    /// `WS-Exclude: self, <id>...`: connections a publish skips.
    pub exclude: Vec<String>,
    /// Problems found in the `WS-*` headers, for the log.
    pub warnings: Vec<String>,
    /// The body's compressed frame, made by the worker (see `ws::offload`).
    pub deflated: Option<Deflated>,
}

/// A close frame to send: code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseRequest {
    pub code: u16,
    pub reason: String,
}

impl Reply {
    /// Reads one response. Header names are matched case-insensitively.
    pub fn from_parts<'a>(
        status: u16,
        headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
        body: Bytes,
    ) -> Reply {
        let mut reply = Reply {
            status,
            body,
            ..Reply::default()
        };
        for (name, value) in headers {
            reply.header(name, value);
        }
        reply
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body is a message to send: non-empty, or empty on purpose (`WS-Send-Empty`).
    pub fn has_message(&self) -> bool {
        !self.body.is_empty() || self.send_empty
    }

    /// Binary when the backend said so, or when the bytes are not UTF-8 (a text frame must be).
    pub fn is_binary(&self) -> bool {
        self.binary || std::str::from_utf8(&self.body).is_err()
    }

    fn header(&mut self, name: &str, value: &[u8]) {
        // HTTP responses arrive with lowercase names already; CGI ones may not.
        let lower = headers::lowercase(name);
        let Ok(value) = std::str::from_utf8(value).map(str::trim) else {
            self.warnings.push(format!("{name}: value is not UTF-8"));
            return;
        };
        match &*lower {
            "content-type" => {
                self.binary = is_binary_type(value);
                self.content_type = Some(value.to_string());
            }
            "ws-protocol" if !value.is_empty() => self.protocol = Some(value.to_string()),
            "ws-close" => self.close = self.parse_close(value),
            "ws-send-empty" => self.send_empty = self.parse_flag(name, value),
            "ws-subscribe" => self.subscribe.extend(list(value)),
            "ws-unsubscribe" => self.unsubscribe.extend(list(value)),
            "ws-publish" => self.publish.extend(list(value)),
            "ws-exclude" => self.exclude.extend(list(value)),
            _ => {
                if let Some(meta) = lower.strip_prefix("ws-set-meta-") {
                    self.set_meta(meta, value);
                }
            }
        }
    }

    fn parse_flag(&mut self, name: &str, value: &str) -> bool {
        match value.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" => true,
            "0" | "false" | "no" => false,
            _ => {
                self.warnings
                    .push(format!("{name}: expected 1 or 0, got {value:?}; ignored"));
                false
            }
        }
    }

    fn parse_close(&mut self, value: &str) -> Option<CloseRequest> {
        let (code, reason) = value.split_once(' ').unwrap_or((value, ""));
        match code.parse::<u16>() {
            Ok(code) if close::valid_to_send(code) => Some(CloseRequest {
                code,
                reason: close::truncate_reason(reason.trim()),
            }),
            _ => {
                self.warnings
                    .push(format!("WS-Close: invalid close code {code:?}, using 1000"));
                Some(CloseRequest {
                    code: 1000,
                    reason: String::new(),
                })
            }
        }
    }

    fn set_meta(&mut self, name: &str, value: &str) {
        if name.is_empty() || name.len() > MAX_META_NAME || value.len() > MAX_META_VALUE {
            self.warnings.push(format!(
                "WS-Set-Meta-{name}: name or value too long, ignored"
            ));
            return;
        }
        self.set_meta.push((name.to_string(), value.to_string()));
    }
}

/// A comma-separated header value, trimmed, empty items dropped.
fn list(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn is_binary_type(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    mime.eq_ignore_ascii_case("application/octet-stream")
}

/// Applies `WS-Set-Meta-*` changes to a connection's metadata, within the limits.
/// Returns a warning when an entry had to be refused.
pub fn apply_meta(
    meta: &mut Vec<(String, String)>,
    changes: &[(String, String)],
) -> Option<String> {
    let mut refused = None;
    for (name, value) in changes {
        let existing = meta.iter().position(|(n, _)| n == name);
        match (existing, value.is_empty()) {
            (Some(i), true) => {
                meta.remove(i);
            }
            (Some(i), false) => meta[i].1 = value.clone(),
            (None, true) => {}
            (None, false) if meta.len() < MAX_META_ENTRIES => {
                meta.push((name.clone(), value.clone()))
            }
            (None, false) => {
                refused = Some(format!(
                    "metadata full ({MAX_META_ENTRIES} entries): {name} refused"
                ))
            }
        }
    }
    refused
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(headers: &[(&str, &str)]) -> Reply {
        let it = headers.iter().map(|(n, v)| (*n, v.as_bytes()));
        Reply::from_parts(200, it, Bytes::from_static(b"hi"))
    }

    #[test]
    fn reads_control_headers() {
        let r = reply(&[
            ("Content-Type", "application/octet-stream"),
            ("ws-protocol", "chat"),
            ("WS-Set-Meta-User", "alice"),
            ("WS-Close", "4000 go away now"),
        ]);
        assert!(r.binary);
        assert_eq!(r.protocol.as_deref(), Some("chat"));
        assert_eq!(r.set_meta, vec![("user".to_string(), "alice".to_string())]);
        assert_eq!(
            r.close,
            Some(CloseRequest {
                code: 4000,
                reason: "go away now".into()
            })
        );
        assert!(r.warnings.is_empty());
    }

    #[test]
    fn reads_channel_headers() {
        let r = reply(&[
            ("WS-Subscribe", "room1, room2"),
            ("WS-Subscribe", "room3"),
            ("WS-Unsubscribe", "old"),
            ("WS-Publish", "room1"),
            ("WS-Exclude", "self, abc,"),
        ]);
        assert_eq!(r.subscribe, ["room1", "room2", "room3"]);
        assert_eq!(r.unsubscribe, ["old"]);
        assert_eq!(r.publish, ["room1"]);
        assert_eq!(r.exclude, ["self", "abc"]);
    }

    #[test]
    fn text_by_default_and_bad_close_code_warns() {
        let r = reply(&[("Content-Type", "text/html"), ("WS-Close", "1005")]);
        assert!(!r.binary);
        assert_eq!(r.close.as_ref().map(|c| c.code), Some(1000));
        assert_eq!(r.warnings.len(), 1);
    }

    #[test]
    fn empty_body_is_a_message_only_when_asked() {
        let empty = |headers: &[(&str, &str)]| {
            let it = headers.iter().map(|(n, v)| (*n, v.as_bytes()));
            Reply::from_parts(200, it, Bytes::new())
        };
        assert!(!empty(&[]).has_message());
        assert!(empty(&[("WS-Send-Empty", "1")]).has_message());
        assert!(empty(&[("ws-send-empty", "yes")]).has_message());
        let bad = empty(&[("WS-Send-Empty", "maybe")]);
        assert!(!bad.has_message() && bad.warnings.len() == 1);
        assert!(
            reply(&[("WS-Send-Empty", "0")]).has_message(),
            "a body is always sent"
        );
    }

    #[test]
    fn meta_set_replace_delete_and_bound() {
        let mut meta = Vec::new();
        let set = |n: &str, v: &str| vec![(n.to_string(), v.to_string())];
        assert!(apply_meta(&mut meta, &set("a", "1")).is_none());
        apply_meta(&mut meta, &set("a", "2"));
        assert_eq!(meta, set("a", "2"));
        apply_meta(&mut meta, &set("a", ""));
        assert!(meta.is_empty());
        for i in 0..MAX_META_ENTRIES {
            apply_meta(&mut meta, &set(&format!("k{i}"), "v"));
        }
        assert!(apply_meta(&mut meta, &set("one-more", "v")).is_some());
        assert_eq!(meta.len(), MAX_META_ENTRIES);
    }
}

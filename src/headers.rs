//! Header names, lowercased and compared in one place. The two request parsers (the WebSocket
//! handshake, the push API) keep headers as (lowercase name, value) pairs and look them up
//! here; `--pass-header` names and a backend's response headers go through the same
//! functions. Pure.

use std::borrow::Cow;

/// A header name as wscgi keeps it: ASCII lowercase (borrowed when it is already).
pub fn lowercase(name: &str) -> Cow<'_, str> {
    match name.bytes().any(|b| b.is_ascii_uppercase()) {
        true => Cow::Owned(name.to_ascii_lowercase()),
        false => Cow::Borrowed(name),
    }
}

/// Whether header `name`, as sent in any case, is `lowercase_name`.
pub fn name_is(name: &str, lowercase_name: &str) -> bool {
    name.eq_ignore_ascii_case(lowercase_name)
}

/// A parsed request's headers: names lowercased, values as lossy UTF-8, in order.
pub fn from_httparse(headers: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value).into_owned();
            (lowercase(h.name).into_owned(), value)
        })
        .collect()
}

/// Every value of header `name`, in order.
pub fn values<'a, 'n>(
    headers: &'a [(String, String)],
    name: &'n str,
) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
    headers
        .iter()
        .filter(move |(n, _)| name_is(n, name))
        .map(|(_, v)| v.as_str())
}

/// The first value of header `name`.
pub fn first<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    values(headers, name).next()
}

/// Whether the comma-separated header `value` lists `token`, in any case
/// (`Connection: keep-alive, Upgrade`).
pub fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// What was wrong with a malformed request head, for the 400 response.
pub fn httparse_reason(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Version => "invalid http version",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Token | httparse::Error::Status => "invalid request line",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_in_any_case_and_keep_their_order() {
        let raw = [
            httparse::Header {
                name: "Sec-WebSocket-Protocol",
                value: b"a",
            },
            httparse::Header {
                name: "HOST",
                value: b"h\xff",
            },
            httparse::Header {
                name: "sec-websocket-protocol",
                value: b"b",
            },
        ];
        let headers = from_httparse(&raw);
        assert_eq!(headers[1], ("host".into(), "h\u{fffd}".into()));
        let offers: Vec<&str> = values(&headers, "sec-websocket-protocol").collect();
        assert_eq!(offers, ["a", "b"]);
        assert_eq!(first(&headers, "Host"), Some("h\u{fffd}"));
        assert_eq!(first(&headers, "origin"), None);
        assert!(matches!(lowercase("ws-event"), Cow::Borrowed(_)));
        assert_eq!(lowercase("WS-Event"), "ws-event");
        assert!(has_token("keep-alive, Upgrade", "upgrade"));
        assert!(!has_token("upgraded", "upgrade"));
    }
}

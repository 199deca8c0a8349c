//! `Sec-WebSocket-Extensions` negotiation for permessage-deflate (RFC 7692 §5, §7.1): parsing
//! the client's offers, picking the first one wscgi can honour, and the answer that accepts
//! it. An offer wscgi cannot honour is declined (passed over), never an error: at worst the
//! connection goes without compression. Pure.

use std::fmt::Write;

pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// The LZ77 window sizes RFC 7692 allows, in bits.
const WINDOW_BITS: std::ops::RangeInclusive<u8> = 8..=15;

/// What the server is willing to do, from the options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// `--deflate-context`: keep compression state between messages where the client allows.
    pub context_takeover: bool,
}

/// The permessage-deflate parameters in force on a connection, as answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// The server keeps its compression state from one message to the next.
    pub server_takeover: bool,
    /// The client may keep its compression state: the server must keep its inflater too.
    pub client_takeover: bool,
    /// The window the client's inflater has (`server_max_window_bits`, 15 unless offered).
    pub server_window_bits: u8,
    /// The offer named `server_max_window_bits`: an answer that accepts it names it too, even
    /// at 15 (RFC 7692 §7.1.2.1; a client may fail a handshake whose answer leaves it out).
    pub server_window_offered: bool,
}

impl Params {
    /// The `Sec-WebSocket-Extensions` value that accepts these parameters.
    pub fn answer(&self) -> String {
        let mut out = String::from(PERMESSAGE_DEFLATE);
        if !self.server_takeover {
            out.push_str("; server_no_context_takeover");
        }
        if !self.client_takeover {
            out.push_str("; client_no_context_takeover");
        }
        if self.server_window_offered || self.server_window_bits < 15 {
            let _ = write!(out, "; server_max_window_bits={}", self.server_window_bits);
        }
        out
    }
}

/// One offer's parameters, as the client sent them.
#[derive(Debug, Default)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
}

/// The parameters of the first permessage-deflate offer in `values` (every
/// `Sec-WebSocket-Extensions` header, in order) that wscgi can honour; `None` declines.
pub fn negotiate<'a>(values: impl IntoIterator<Item = &'a str>, policy: Policy) -> Option<Params> {
    values
        .into_iter()
        .flat_map(elements)
        .filter_map(|element| {
            let (name, params) = split_name(element);
            name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE)
                .then(|| offer(params))
                .flatten()
        })
        .map(|offer| accept(&offer, policy))
        .next()
}

fn accept(offer: &Offer, policy: Policy) -> Params {
    let server_window_bits = offer.server_max_window_bits.unwrap_or(15);
    Params {
        // wscgi's compressor keeps a 32 KiB window; with a smaller one the client could not
        // follow references into earlier messages, so each message stands alone (see
        // `ws::deflate`), and the answer says so.
        server_takeover: policy.context_takeover
            && !offer.server_no_context_takeover
            && server_window_bits == 15,
        client_takeover: policy.context_takeover && !offer.client_no_context_takeover,
        server_window_bits,
        server_window_offered: offer.server_max_window_bits.is_some(),
    }
}

/// The offer's parameters, or `None` when one is unknown, repeated or has a bad value
/// (RFC 7692 §5.1: such an offer is declined).
fn offer(params: &str) -> Option<Offer> {
    let mut offer = Offer::default();
    let mut seen: Vec<String> = Vec::new();
    if params.trim().is_empty() {
        return Some(offer);
    }
    for param in split_quoted(params, b';') {
        let param = param.trim();
        if param.is_empty() {
            return None;
        }
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(unquote(v.trim())?)),
            None => (param, None),
        };
        let name = name.to_ascii_lowercase();
        if seen.contains(&name) {
            return None;
        }
        match (name.as_str(), value) {
            ("server_no_context_takeover", None) => offer.server_no_context_takeover = true,
            ("client_no_context_takeover", None) => offer.client_no_context_takeover = true,
            ("server_max_window_bits", Some(v)) => offer.server_max_window_bits = Some(bits(&v)?),
            // The client can limit its window; wscgi inflates with the largest one, so it never
            // asks for less and the answer leaves the parameter out (RFC 7692 §7.1.2.2).
            ("client_max_window_bits", None) => {}
            ("client_max_window_bits", Some(v)) => _ = bits(&v)?,
            _ => return None,
        }
        seen.push(name);
    }
    Some(offer)
}

/// A window size: 8 to 15, digits only, no leading zero (RFC 7692 §7.1.2.1).
fn bits(value: &str) -> Option<u8> {
    if value.starts_with('0') || !value.bytes().all(|b| b.is_ascii_digit()) || value.len() > 2 {
        return None;
    }
    value.parse().ok().filter(|b| WINDOW_BITS.contains(b))
}

/// The extensions of one header value (comma-separated, commas in quoted strings kept).
fn elements(value: &str) -> impl Iterator<Item = &str> {
    split_quoted(value, b',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
}

/// An extension's name and the text of its parameters (after the first `;`).
fn split_name(element: &str) -> (&str, &str) {
    match element.split_once(';') {
        Some((name, params)) => (name.trim(), params),
        None => (element.trim(), ""),
    }
}

/// Splits at `sep` outside double quotes (a backslash escapes the next byte inside them).
fn split_quoted(text: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let s = rest?;
        let (mut quoted, mut escaped) = (false, false);
        for (i, b) in s.bytes().enumerate() {
            match b {
                _ if escaped => escaped = false,
                b'\\' if quoted => escaped = true,
                b'"' => quoted = !quoted,
                _ if b == sep && !quoted => {
                    rest = Some(&s[i + 1..]);
                    return Some(&s[..i]);
                }
                _ => {}
            }
        }
        rest = None;
        Some(s)
    })
}

/// A parameter value: a token, or a quoted string whose content is a token (RFC 6455 §9.1).
fn unquote(value: &str) -> Option<String> {
    let inner = match value.strip_prefix('"') {
        Some(rest) => {
            let body = rest.strip_suffix('"')?;
            let mut out = String::with_capacity(body.len());
            let mut chars = body.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.push(chars.next()?),
                    '"' => return None,
                    c => out.push(c),
                }
            }
            out
        }
        None => value.to_owned(),
    };
    (!inner.is_empty() && inner.bytes().all(is_token_byte)).then_some(inner)
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)
}

#[cfg(test)]
#[path = "extensions/tests.rs"]
mod tests;

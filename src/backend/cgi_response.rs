//! Reading a CGI response (RFC 3875 §6): header lines, a blank line, the body.
//!
//! Shared by the CGI backend (a child's stdout) and the FastCGI backend (`FCGI_STDOUT`). Pure,
//! so unit tests and the fuzzer call it directly.

use std::fmt;

use crate::headers;

/// Most bytes of header lines before the blank line.
pub const MAX_HEAD: usize = 64 * 1024;

/// A parsed response head; the body is `output[body_start..]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head<'a> {
    pub status: u16,
    /// Every header except `Status`, in order.
    pub headers: Vec<(&'a str, &'a [u8])>,
    pub body_start: usize,
}

/// Why the output is not a CGI response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgiError {
    /// Nothing was written at all.
    Empty,
    /// No blank line ends the headers (within [`MAX_HEAD`]).
    NoBlankLine,
    /// A header line without a colon, or with a name that is not a token.
    BadHeader(String),
    /// `Status:` is not a three-digit code from 100 to 599.
    BadStatus(String),
}

impl fmt::Display for CgiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CgiError::Empty => write!(f, "no output"),
            CgiError::NoBlankLine => write!(f, "no blank line after the headers"),
            CgiError::BadHeader(line) => write!(f, "malformed header line {line:?}"),
            CgiError::BadStatus(value) => write!(f, "invalid Status header {value:?}"),
        }
    }
}

impl std::error::Error for CgiError {}

/// Parses the head of `output`. Lines may end in `\n` or `\r\n`. Without `Status`, the status is
/// 302 when there is a `Location` header and 200 otherwise.
pub fn parse(output: &[u8]) -> Result<Head<'_>, CgiError> {
    if output.is_empty() {
        return Err(CgiError::Empty);
    }
    let mut headers = Vec::new();
    let mut status = None;
    let mut pos = 0;
    loop {
        let rest = output.get(pos..).unwrap_or_default();
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            return Err(CgiError::NoBlankLine);
        };
        if pos + nl > MAX_HEAD {
            return Err(CgiError::NoBlankLine);
        }
        let line = rest.get(..nl).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos += nl + 1;
        if line.is_empty() {
            break;
        }
        let (name, value) = split_header(line)?;
        if headers::name_is(name, "status") {
            status = Some(parse_status(value)?);
        } else {
            headers.push((name, value));
        }
    }
    let has_location = headers.iter().any(|(n, _)| headers::name_is(n, "location"));
    let status = status.unwrap_or(if has_location { 302 } else { 200 });
    Ok(Head {
        status,
        headers,
        body_start: pos,
    })
}

fn split_header(line: &[u8]) -> Result<(&str, &[u8]), CgiError> {
    let bad = || CgiError::BadHeader(String::from_utf8_lossy(line).chars().take(80).collect());
    let colon = line.iter().position(|&b| b == b':').ok_or_else(bad)?;
    let (name, value) = (
        line.get(..colon).unwrap_or_default(),
        line.get(colon + 1..).unwrap_or_default(),
    );
    let is_token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    if name.is_empty() || !name.iter().all(is_token) {
        return Err(bad());
    }
    let name = std::str::from_utf8(name).map_err(|_| bad())?;
    Ok((name, value.trim_ascii()))
}

/// `Status: 404 Not Found` or `Status: 404`.
fn parse_status(value: &[u8]) -> Result<u16, CgiError> {
    let bad = || CgiError::BadStatus(String::from_utf8_lossy(value).chars().take(40).collect());
    let code = value.get(..3).ok_or_else(bad)?;
    let rest = value.get(3..).unwrap_or_default();
    if !code.iter().all(u8::is_ascii_digit) || rest.first().is_some_and(|&b| b != b' ') {
        return Err(bad());
    }
    let code = std::str::from_utf8(code)
        .map_err(|_| bad())?
        .parse::<u16>()
        .map_err(|_| bad())?;
    if (100..600).contains(&code) {
        Ok(code)
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! cases {
        ($($name:ident: $input:expr => $expected:expr;)*) => {$(
            #[test]
            fn $name() {
                let got = parse($input).map(|h| (h.status, h.headers.len(), h.body_start));
                assert_eq!(got, $expected);
            }
        )*};
    }

    cases! {
        plain: b"Content-Type: text/plain\r\n\r\nhi" => Ok((200, 1, 28));
        unix_newlines: b"Content-Type: text/plain\n\nhi" => Ok((200, 1, 26));
        status_with_reason: b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\n" => Ok((404, 1, 51));
        status_code_only: b"Status: 418\n\n" => Ok((418, 0, 13));
        location_redirects: b"Location: /x\n\n" => Ok((302, 1, 14));
        no_headers: b"\nbody" => Ok((200, 0, 1));
        empty: b"" => Err(CgiError::Empty);
        no_blank_line: b"Content-Type: text/plain\r\nhello" => Err(CgiError::NoBlankLine);
        headers_only_no_end: b"Content-Type: text/plain\r\n" => Err(CgiError::NoBlankLine);
        not_a_header: b"hello world\n\n" => Err(CgiError::BadHeader("hello world".into()));
        space_in_name: b"Bad Name: x\n\n" => Err(CgiError::BadHeader("Bad Name: x".into()));
        status_words: b"Status: OK\n\n" => Err(CgiError::BadStatus("OK".into()));
        status_too_big: b"Status: 700\n\n" => Err(CgiError::BadStatus("700".into()));
        status_glued: b"Status: 2000\n\n" => Err(CgiError::BadStatus("2000".into()));
    }

    #[test]
    fn values_are_trimmed_and_body_is_untouched() {
        let out = b"WS-Close:  4000 bye \r\n\r\n\r\nbody\r\n";
        let head = parse(out).unwrap();
        assert_eq!(head.headers, vec![("WS-Close", &b"4000 bye"[..])]);
        assert_eq!(&out[head.body_start..], b"\r\nbody\r\n");
    }

    #[test]
    fn huge_head_is_refused() {
        let mut out = Vec::new();
        for _ in 0..(MAX_HEAD / 10 + 10) {
            out.extend_from_slice(b"X-A: 1234\n");
        }
        out.extend_from_slice(b"\n");
        assert_eq!(parse(&out), Err(CgiError::NoBlankLine));
    }
}

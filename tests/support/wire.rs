//! HTTP/1.x wire pieces shared by the test backend and the push-API client:
//! header lookup, body framing (Content-Length or chunked), size limits and
//! reason phrases.

/// Generous limits: tests may send big messages, but a runaway peer must not
/// make us allocate without bound.
pub(super) const MAX_BODY: usize = 64 * 1024 * 1024;
pub(super) const MAX_HEADERS: usize = 128;

/// How a message body is delimited.
#[derive(Clone, Copy)]
pub(super) enum Framing {
    Length(usize),
    Chunked,
}

pub(super) fn owned_headers(raw: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    raw.iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value).into_owned();
            (h.name.to_ascii_lowercase(), value)
        })
        .collect()
}

/// Chunked wins over Content-Length (RFC 9112 §6.3); no length means no body.
pub(super) fn body_framing(headers: &[(String, String)]) -> Result<Framing, String> {
    if header_has_token(headers, "transfer-encoding", "chunked") {
        return Ok(Framing::Chunked);
    }
    let Some(raw) = find_header(headers, "content-length") else {
        return Ok(Framing::Length(0));
    };
    let len: usize = raw
        .trim()
        .parse()
        .map_err(|_| format!("bad Content-Length {raw:?}"))?;
    if len > MAX_BODY {
        return Err(format!("body of {len} bytes exceeds {MAX_BODY}"));
    }
    Ok(Framing::Length(len))
}

/// The body and the number of bytes it took on the wire, or None while
/// incomplete.
pub(super) fn decode_body(
    data: &[u8],
    framing: Framing,
) -> Result<Option<(Vec<u8>, usize)>, String> {
    match framing {
        Framing::Length(n) if data.len() >= n => Ok(Some((data[..n].to_vec(), n))),
        Framing::Length(_) => Ok(None),
        Framing::Chunked => decode_chunked(data),
    }
}

/// Decodes a complete chunked body (trailers skipped). The loop is bounded by
/// `data`: every pass consumes at least one chunk-size line.
fn decode_chunked(data: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let (line_len, size) = match httparse::parse_chunk_size(&data[pos..]) {
            Ok(httparse::Status::Complete(parsed)) => parsed,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err("bad chunk size line".to_string()),
        };
        pos += line_len;
        if size == 0 {
            return Ok(trailers_len(&data[pos..]).map(|n| (body, pos + n)));
        }
        let size = usize::try_from(size)
            .ok()
            .filter(|s| body.len() + s <= MAX_BODY)
            .ok_or_else(|| format!("chunked body exceeds {MAX_BODY} bytes"))?;
        if data.len() < pos + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&data[pos..pos + size]);
        if &data[pos + size..pos + size + 2] != b"\r\n" {
            return Err("chunk not followed by CRLF".to_string());
        }
        pos += size + 2;
    }
}

/// Length of the trailer section (ending in an empty line), None if incomplete.
fn trailers_len(data: &[u8]) -> Option<usize> {
    if data.starts_with(b"\r\n") {
        return Some(2);
    }
    data.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

pub(super) fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Whether any `name` header lists `token` among its comma-separated values.
pub(super) fn header_has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The test backend answers with the same canonical phrases wscgi writes.
pub(super) fn reason_phrase(status: u16) -> &'static str {
    wscgi::ws::handshake::status_reason(status)
}

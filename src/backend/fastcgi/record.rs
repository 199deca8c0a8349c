//! FastCGI 1.0 records: encoders for what a client sends, a push parser for what it reads.
//!
//! Pure, no I/O; fuzzed. Every record is an 8-byte header (version 1, type, request id,
//! content length, padding length, reserved), the content, then the padding. Streams
//! (`PARAMS`, `STDIN`, `STDOUT`, `STDERR`) are split into records of at most 65535 content
//! bytes and end with an empty record.

use std::fmt;

pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 8;
/// Most content bytes in one record.
pub const MAX_CONTENT: usize = 0xffff;

pub const BEGIN_REQUEST: u8 = 1;
pub const ABORT_REQUEST: u8 = 2;
pub const END_REQUEST: u8 = 3;
pub const PARAMS: u8 = 4;
pub const STDIN: u8 = 5;
pub const STDOUT: u8 = 6;
pub const STDERR: u8 = 7;
pub const DATA: u8 = 8;
pub const GET_VALUES: u8 = 9;
pub const GET_VALUES_RESULT: u8 = 10;
pub const UNKNOWN_TYPE: u8 = 11;

/// `FCGI_BEGIN_REQUEST` role.
pub const RESPONDER: u16 = 1;
/// `FCGI_BEGIN_REQUEST` flag: the server keeps the connection open after the request.
pub const KEEP_CONN: u8 = 1;

/// `FCGI_END_REQUEST` protocol statuses.
pub const REQUEST_COMPLETE: u8 = 0;
pub const CANT_MPX_CONN: u8 = 1;
pub const OVERLOADED: u8 = 2;
pub const UNKNOWN_ROLE: u8 = 3;

/// One decoded record; `content` excludes the padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub kind: u8,
    pub request_id: u16,
    pub content: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// The header's version byte is not 1.
    BadVersion(u8),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::BadVersion(v) => write!(f, "bad FastCGI record version {v}"),
        }
    }
}

impl std::error::Error for RecordError {}

/// Appends one record, padded to a multiple of 8 bytes. `content` must be at most
/// [`MAX_CONTENT`] bytes; longer content is cut (callers split first).
fn record(out: &mut Vec<u8>, kind: u8, id: u16, content: &[u8]) {
    let content = content.get(..MAX_CONTENT).unwrap_or(content);
    let len = content.len() as u16;
    let padding = (8 - content.len() % 8) % 8;
    let [id_hi, id_lo] = id.to_be_bytes();
    let [len_hi, len_lo] = len.to_be_bytes();
    out.extend_from_slice(&[
        VERSION,
        kind,
        id_hi,
        id_lo,
        len_hi,
        len_lo,
        padding as u8,
        0,
    ]);
    out.extend_from_slice(content);
    out.resize(out.len() + padding, 0);
}

/// Appends `data` as a stream of records, then the empty record that ends it.
fn stream(out: &mut Vec<u8>, kind: u8, id: u16, data: &[u8]) {
    for chunk in data.chunks(MAX_CONTENT) {
        record(out, kind, id, chunk);
    }
    record(out, kind, id, &[]);
}

/// `FCGI_BEGIN_REQUEST` for the RESPONDER role.
pub fn begin_request(out: &mut Vec<u8>, id: u16, keep_conn: bool) {
    let [role_hi, role_lo] = RESPONDER.to_be_bytes();
    let flags = if keep_conn { KEEP_CONN } else { 0 };
    record(
        out,
        BEGIN_REQUEST,
        id,
        &[role_hi, role_lo, flags, 0, 0, 0, 0, 0],
    );
}

/// The `FCGI_PARAMS` stream: name-value pairs, then the empty record. A name or value of
/// 2^31 bytes or more cannot be encoded; such a pair is skipped.
pub fn params<N: AsRef<[u8]>, V: AsRef<[u8]>>(out: &mut Vec<u8>, id: u16, pairs: &[(N, V)]) {
    let mut data = Vec::new();
    for (name, value) in pairs {
        let (name, value) = (name.as_ref(), value.as_ref());
        if name.len() > 0x7fff_ffff || value.len() > 0x7fff_ffff {
            continue;
        }
        push_len(&mut data, name.len());
        push_len(&mut data, value.len());
        data.extend_from_slice(name);
        data.extend_from_slice(value);
    }
    stream(out, PARAMS, id, &data);
}

/// Lengths below 128 take one byte; others four, big-endian, with the high bit set.
fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        out.extend_from_slice(&(len as u32 | 0x8000_0000).to_be_bytes());
    }
}

/// The `FCGI_STDIN` stream: the request body, then the empty record.
pub fn stdin(out: &mut Vec<u8>, id: u16, body: &[u8]) {
    stream(out, STDIN, id, body);
}

/// Reads one record from the front of `buf`: `Ok(None)` when more bytes are needed, else the
/// record and the bytes it took (header, content and padding).
pub fn parse(buf: &[u8]) -> Result<Option<(Record<'_>, usize)>, RecordError> {
    match buf.first() {
        None => return Ok(None),
        Some(&v) if v != VERSION => return Err(RecordError::BadVersion(v)),
        Some(_) => {}
    }
    let Some(&[_, kind, id_hi, id_lo, len_hi, len_lo, padding, _]) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
    let total = HEADER_LEN + len + usize::from(padding);
    let (Some(content), true) = (buf.get(HEADER_LEN..HEADER_LEN + len), buf.len() >= total) else {
        return Ok(None);
    };
    let record = Record {
        kind,
        request_id: u16::from_be_bytes([id_hi, id_lo]),
        content,
    };
    Ok(Some((record, total)))
}

/// An `FCGI_END_REQUEST` body: the application's status and the protocol status.
pub fn end_request(content: &[u8]) -> Option<(u32, u8)> {
    let &[a, b, c, d, protocol_status, ..] = content else {
        return None;
    };
    Some((u32::from_be_bytes([a, b, c, d]), protocol_status))
}

/// Decodes a name-value pair stream (the inverse of [`params`]); `None` if it is truncated.
pub fn decode_pairs(mut data: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    let mut pairs = Vec::new();
    while !data.is_empty() {
        let (name_len, rest) = take_len(data)?;
        let (value_len, rest) = take_len(rest)?;
        let name = rest.get(..name_len)?;
        let value = rest.get(name_len..name_len.checked_add(value_len)?)?;
        data = rest.get(name_len + value_len..)?;
        pairs.push((name, value));
    }
    Some(pairs)
}

fn take_len(data: &[u8]) -> Option<(usize, &[u8])> {
    match data {
        [b, rest @ ..] if *b < 0x80 => Some((usize::from(*b), rest)),
        [a, b, c, d, rest @ ..] => {
            let len = u32::from_be_bytes([a & 0x7f, *b, *c, *d]);
            Some((usize::try_from(len).ok()?, rest))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record in `buf`, checking that the whole buffer is records.
    fn records(buf: &[u8]) -> Vec<Record<'_>> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < buf.len() {
            let (rec, n) = parse(&buf[pos..]).unwrap().expect("complete record");
            assert_eq!(n % 8, 0, "record not padded to 8");
            out.push(rec);
            pos += n;
        }
        out
    }

    fn concat(recs: &[Record<'_>]) -> Vec<u8> {
        recs.iter()
            .flat_map(|r| r.content.iter().copied())
            .collect()
    }

    #[test]
    fn records_are_padded_to_8() {
        for (len, padding) in [(0, 0), (1, 7), (7, 1), (8, 0), (9, 7), (65535, 1)] {
            let mut out = Vec::new();
            record(&mut out, STDIN, 1, &vec![b'x'; len]);
            assert_eq!(out.len(), HEADER_LEN + len + padding, "len {len}");
            assert_eq!(usize::from(out[6]), padding, "len {len}");
            assert_eq!(&out[..6], &[1, STDIN, 0, 1, (len >> 8) as u8, len as u8]);
        }
    }

    #[test]
    fn begin_request_layout() {
        for (keep, flags) in [(true, 1), (false, 0)] {
            let mut out = Vec::new();
            begin_request(&mut out, 0x0102, keep);
            assert_eq!(out, [1, 1, 1, 2, 0, 8, 0, 0, 0, 1, flags, 0, 0, 0, 0, 0]);
        }
    }

    #[test]
    fn streams_split_at_65535() {
        // (body length, content lengths of the records, including the final empty one)
        let cases: &[(usize, &[usize])] = &[
            (0, &[0]),
            (5, &[5, 0]),
            (65535, &[65535, 0]),
            (65536, &[65535, 1, 0]),
            (200_000, &[65535, 65535, 65535, 3395, 0]),
        ];
        for &(len, lens) in cases {
            let body: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = Vec::new();
            stdin(&mut out, 7, &body);
            let recs = records(&out);
            let got: Vec<usize> = recs.iter().map(|r| r.content.len()).collect();
            assert_eq!(got, lens, "body {len}");
            assert!(recs.iter().all(|r| r.kind == STDIN && r.request_id == 7));
            assert_eq!(concat(&recs), body);
        }
    }

    #[test]
    fn params_lengths_and_round_trip() {
        let long_value = vec![b'v'; 70_000];
        let cases: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = vec![
            // name, value, expected length prefix
            (b"A".to_vec(), b"1".to_vec(), vec![1, 1]),
            (b"N".to_vec(), vec![b'x'; 127], vec![1, 127]),
            (b"N".to_vec(), vec![b'x'; 128], vec![1, 0x80, 0, 0, 128]),
            (vec![b'n'; 300], Vec::new(), vec![0x80, 0, 1, 44, 0]),
            (
                b"BIG".to_vec(),
                long_value.clone(),
                vec![3, 0x80, 1, 0x11, 0x70],
            ),
        ];
        for (name, value, prefix) in &cases {
            let mut out = Vec::new();
            params(&mut out, 1, &[(name, value)]);
            let recs = records(&out);
            assert_eq!(recs.last().unwrap().content, b"");
            assert!(recs.iter().all(|r| r.kind == PARAMS));
            let data = concat(&recs);
            assert!(data.starts_with(prefix), "{prefix:?}");
            let pairs = decode_pairs(&data).unwrap();
            assert_eq!(pairs, [(&name[..], &value[..])]);
        }
        // Several pairs, one spanning two records.
        let pairs = [
            ("SHORT", b"1".to_vec()),
            ("LONG", long_value),
            ("Z", vec![]),
        ];
        let mut out = Vec::new();
        params(&mut out, 1, &pairs);
        let data = concat(&records(&out));
        let decoded = decode_pairs(&data).unwrap();
        assert_eq!(decoded.len(), 3);
        assert_eq!(decoded[1], (&b"LONG"[..], &pairs[1].1[..]));
    }

    #[test]
    fn partial_input_at_every_split_point() {
        let mut buf = Vec::new();
        record(&mut buf, STDOUT, 1, b"Status: 200\r\n\r\nhi");
        for cut in 0..buf.len() {
            assert_eq!(parse(&buf[..cut]), Ok(None), "cut at {cut}");
        }
        let (rec, n) = parse(&buf).unwrap().unwrap();
        assert_eq!(
            (rec.kind, rec.content, n),
            (STDOUT, &b"Status: 200\r\n\r\nhi"[..], 32)
        );
        // Trailing bytes of the next record are not consumed.
        buf.extend_from_slice(&[1, STDERR]);
        assert_eq!(parse(&buf).unwrap().unwrap().1, 32);
    }

    #[test]
    fn interleaved_stdout_and_stderr() {
        let mut buf = Vec::new();
        record(&mut buf, STDOUT, 1, b"Content-Type: text/plain\r\n");
        record(&mut buf, STDERR, 1, b"PHP Notice: x\n");
        record(&mut buf, STDOUT, 2, b"other request");
        record(&mut buf, STDOUT, 1, b"\r\nbody");
        record(&mut buf, STDERR, 1, b"second");
        record(&mut buf, STDOUT, 1, b"");
        record(&mut buf, END_REQUEST, 1, &[0, 0, 0, 0, 0, 0, 0, 0]);
        let recs = records(&buf);
        let of = |kind: u8| -> Vec<u8> {
            let mine = recs.iter().filter(|r| r.kind == kind && r.request_id == 1);
            mine.flat_map(|r| r.content.iter().copied()).collect()
        };
        assert_eq!(of(STDOUT), b"Content-Type: text/plain\r\n\r\nbody");
        assert_eq!(of(STDERR), b"PHP Notice: x\nsecond");
        assert_eq!(recs.last().unwrap().kind, END_REQUEST);
    }

    #[test]
    fn end_request_statuses() {
        let cases: [(&[u8], _); 6] = [
            (&[0, 0, 0, 0, 0, 0, 0, 0], Some((0, REQUEST_COMPLETE))),
            (&[0, 0, 1, 2, OVERLOADED, 0, 0, 0], Some((258, OVERLOADED))),
            (
                &[0xff, 0xff, 0xff, 0xff, 3, 0, 0, 0],
                Some((u32::MAX, UNKNOWN_ROLE)),
            ),
            (&[0, 0, 0, 7, 1], Some((7, CANT_MPX_CONN))),
            (&[0, 0, 0, 0], None),
            (&[], None),
        ];
        for (content, want) in cases {
            assert_eq!(end_request(content), want, "{content:?}");
        }
    }

    #[test]
    fn bad_version_is_an_error() {
        for buf in [
            &b"HTTP/1.1 400 Bad Request\r\n"[..],
            &[0],
            &[2, 6, 0, 1, 0, 0, 0, 0],
        ] {
            assert_eq!(parse(buf), Err(RecordError::BadVersion(buf[0])));
        }
    }

    #[test]
    fn decode_pairs_rejects_truncation() {
        for data in [&[5u8, 1, b'a'][..], &[0x80, 0, 0], &[0x80, 0, 0, 1, 0]] {
            assert_eq!(decode_pairs(data), None, "{data:?}");
        }
        let huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(decode_pairs(&huge), None);
    }
}

//! A permessage-deflate client by hand (RFC 7692), on a raw socket: the offer, frames of any
//! size with or without RSV1, and compression with flate2 itself, not with wscgi's code.

use std::io::{Read, Write};
use std::net::TcpStream;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

use super::raw_ws::raw_connect;
use super::server::Wscgi;

pub const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
const KEY: [u8; 4] = [0x5a, 0x17, 0xc3, 0x81];

/// Opens a WebSocket on `/` offering `extensions` (no header for `None`); returns the socket
/// and the `Sec-WebSocket-Extensions` of the 101, if any.
pub fn open_offering(server: &Wscgi, extensions: Option<&str>) -> (TcpStream, Option<String>) {
    open_offering_at(server, "/", extensions)
}

/// Like [`open_offering`], on `target` (a path and query).
pub fn open_offering_at(
    server: &Wscgi,
    target: &str,
    extensions: Option<&str>,
) -> (TcpStream, Option<String>) {
    let offer = extensions.map_or(String::new(), |e| {
        format!("Sec-WebSocket-Extensions: {e}\r\n")
    });
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: wscgi.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
    );
    let mut s = raw_connect(server, request.as_bytes());
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("a 101 response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    let answer = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("sec-websocket-extensions"))
        .map(|(_, value)| value.trim().to_string());
    (s, answer)
}

/// About `n` bytes of chat-like JSON.
pub fn json(n: usize) -> Vec<u8> {
    let mut out = b"[".to_vec();
    let mut i = 0;
    while out.len() < n {
        let item = format!(
            "{{\"id\":{i},\"user\":\"user{}\",\"text\":\"message number {i}\"}},",
            i % 7
        );
        out.extend_from_slice(item.as_bytes());
        i += 1;
    }
    out.truncate(n - 1);
    out.push(b']');
    out
}

/// Raw DEFLATE of `data`, sync-flushed, without the trailing `00 00 ff ff`.
pub fn deflate(data: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::new(6), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    loop {
        let before = c.total_in() as usize;
        c.compress_vec(&data[before..], &mut out, FlushCompress::Sync)
            .unwrap();
        if c.total_in() as usize == data.len() && out.len() < out.capacity() {
            break;
        }
        out.reserve(out.capacity().max(64));
    }
    assert!(out.ends_with(&TAIL));
    out.truncate(out.len() - TAIL.len());
    out
}

/// Inflates one message's payload (the tail restored), with no bound: test data only.
pub fn inflate(payload: &[u8]) -> Vec<u8> {
    let mut d = Decompress::new(false);
    let input = [payload, &TAIL].concat();
    let mut out = Vec::with_capacity(payload.len() * 4 + 64);
    loop {
        d.decompress_vec(
            &input[d.total_in() as usize..],
            &mut out,
            FlushDecompress::Sync,
        )
        .expect("valid deflate data from wscgi");
        // All input taken and room left over: nothing more is pending.
        if d.total_in() as usize == input.len() && out.len() < out.capacity() {
            return out;
        }
        out.reserve(out.capacity());
    }
}

/// A masked client frame of any size; `first` is the whole first header byte.
pub fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    wscgi::testing::client_frame(first, payload, KEY)
}

/// Reads one server frame of any size: (first header byte, payload, bytes on the wire).
pub fn read_big_frame(s: &mut TcpStream) -> (u8, Vec<u8>, usize) {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).expect("a frame from wscgi");
    assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
    let (len, extra) = match head[1] {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).unwrap();
            (u64::from(u16::from_be_bytes(b)), 2)
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).unwrap();
            (u64::from_be_bytes(b), 8)
        }
        n => (u64::from(n), 0),
    };
    let mut payload = vec![0u8; len as usize];
    s.read_exact(&mut payload).expect("the frame's payload");
    let wire = 2 + extra + payload.len();
    (head[0], payload, wire)
}

/// Sends `bytes` in one write.
pub fn send(s: &mut TcpStream, bytes: &[u8]) {
    s.write_all(bytes).expect("write to wscgi");
}

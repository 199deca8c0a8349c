//! WebSocket clients by hand, byte by byte: for tests that need frames no well-behaved client
//! library would send (reserved bits, unmasked frames, half a frame), or exact control over
//! what is on the wire and when.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::server::Wscgi;

/// A read that waits longer than this fails the test.
const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// The upgrade request of a plain WebSocket client for `path`.
pub fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: wscgi.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// A TCP connection to wscgi's WebSocket port that has sent `request`.
pub fn raw_connect(server: &Wscgi, request: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(server.ws_addr).unwrap();
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    s.write_all(request).unwrap();
    s
}

/// A WebSocket opened by hand on `path`; the 101 head is consumed byte by byte, so nothing
/// after it is lost.
pub fn raw_ws(server: &Wscgi, path: &str) -> TcpStream {
    let mut s = raw_connect(server, upgrade_request(path).as_bytes());
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("a 101 response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    s
}

/// A client frame with a small payload, masked unless `mask` is None.
pub fn raw_frame(first_byte: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut f = vec![first_byte, payload.len() as u8];
    match mask {
        Some(key) => {
            f[1] |= 0x80;
            f.extend(key);
            f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => f.extend(payload),
    }
    f
}

/// Reads the next server frame, which must be a close frame with a code, and returns the code.
pub fn raw_close_code(s: &mut TcpStream) -> u16 {
    let mut start = [0u8; 4];
    s.read_exact(&mut start).expect("a close frame from wscgi");
    assert_eq!(start[0], 0x88, "a final close frame: {start:?}");
    assert!((2..126).contains(&start[1]), "with a code: {start:?}");
    u16::from_be_bytes([start[2], start[3]])
}

/// Reads one unmasked server frame with a payload under 126 bytes: (first byte, payload).
pub fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).expect("a frame from wscgi");
    assert!(head[1] < 126, "a small unmasked frame: {head:?}");
    let mut payload = vec![0u8; usize::from(head[1])];
    s.read_exact(&mut payload).expect("the frame's payload");
    (head[0], payload)
}

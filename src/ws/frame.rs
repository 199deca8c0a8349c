//! Encoding of server-to-client frames.
//!
//! Server frames are never masked, so one encoding serves every recipient: a message published
//! to many clients is framed once (see `ws::message::Frames`) and the same `Bytes` are queued
//! for each of them.

use tungstenite::Bytes;

pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;

/// RSV1: the message is compressed (RFC 7692 §6).
pub const RSV1: u8 = 0x40;

/// One complete (FIN) frame with `opcode` and `payload`.
pub fn encode(opcode: u8, payload: &[u8]) -> Bytes {
    encode_with(opcode, 0, payload)
}

/// The length of the plain frame of a `payload_len`-byte payload, header included.
pub fn encoded_len(payload_len: usize) -> usize {
    let header = match payload_len {
        0..126 => 2,
        126..=0xffff => 4,
        _ => 10,
    };
    header + payload_len
}

/// Like [`encode`], with `flags` (RSV bits) set in the first byte.
pub fn encode_with(opcode: u8, flags: u8, payload: &[u8]) -> Bytes {
    let len = payload.len();
    let mut out = Vec::with_capacity(len + 10);
    out.push(0x80 | flags | opcode);
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_forms() {
        assert_eq!(&encode(OP_TEXT, b"hi")[..], b"\x81\x02hi");
        let mid = encode(OP_BINARY, &[7; 300]);
        assert_eq!(&mid[..4], &[0x82, 126, 1, 44]);
        assert_eq!(mid.len(), 304);
        for n in [0, 125, 126, 300, 65_535, 65_536, 70_000] {
            assert_eq!(encoded_len(n), encode(OP_TEXT, &vec![0; n]).len(), "{n}");
        }
        let big = encode(OP_BINARY, &[0; 70_000]);
        assert_eq!(&big[..10], &[0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
        assert_eq!(&encode(OP_PING, b"")[..], b"\x89\x00");
        assert_eq!(&encode_with(OP_TEXT, RSV1, b"z")[..], b"\xc1\x01z");
    }
}

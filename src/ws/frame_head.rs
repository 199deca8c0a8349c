//! A client frame's header (RFC 6455 §5.2), collected from bytes as they arrive in pieces.
//! Pure; used by the trackers that follow the byte stream beside tungstenite.

/// The longest header: 2 bytes, an 8-byte length, a 4-byte mask key.
pub const MAX_HEAD: usize = 14;

/// A complete header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub bytes: [u8; MAX_HEAD],
    pub len: usize,
    pub payload_len: u64,
}

impl Head {
    pub fn fin(&self) -> bool {
        self.bytes[0] & 0x80 != 0
    }

    pub fn rsv1(&self) -> bool {
        self.bytes[0] & 0x40 != 0
    }

    /// Any of RSV1-3.
    pub fn reserved_bits(&self) -> bool {
        self.bytes[0] & 0x70 != 0
    }

    pub fn opcode(&self) -> u8 {
        self.bytes[0] & 0x0f
    }

    pub fn is_control(&self) -> bool {
        self.opcode() & 0x08 != 0
    }

    pub fn mask(&self) -> Option<[u8; 4]> {
        (self.bytes[1] & 0x80 != 0).then(|| {
            let at = self.len - 4;
            [at, at + 1, at + 2, at + 3].map(|i| self.bytes[i])
        })
    }

    /// The header as read.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Collects one header; [`HeadReader::feed`] says when it is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadReader {
    have: usize,
    need: usize,
    bytes: [u8; MAX_HEAD],
}

impl Default for HeadReader {
    fn default() -> HeadReader {
        HeadReader {
            have: 0,
            need: 2,
            bytes: [0; MAX_HEAD],
        }
    }
}

impl HeadReader {
    /// No byte of a header collected yet.
    pub fn is_empty(&self) -> bool {
        self.have == 0
    }

    /// Takes header bytes from the front of `data`; the header once it is complete (the
    /// reader then starts over).
    pub fn feed(&mut self, data: &mut &[u8]) -> Option<Head> {
        loop {
            let take = (self.need - self.have).min(data.len());
            self.bytes[self.have..self.have + take].copy_from_slice(&data[..take]);
            self.have += take;
            *data = &data[take..];
            if self.have < self.need {
                return None;
            }
            let b1 = self.bytes[1];
            let extra = match b1 & 0x7f {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            let full = 2 + extra + if b1 & 0x80 != 0 { 4 } else { 0 };
            if self.have < full {
                self.need = full;
                continue;
            }
            let b = &self.bytes;
            let payload_len = match extra {
                2 => u64::from(u16::from_be_bytes([b[2], b[3]])),
                8 => u64::from_be_bytes([b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9]]),
                _ => u64::from(b1 & 0x7f),
            };
            let head = Head {
                bytes: self.bytes,
                len: full,
                payload_len,
            };
            *self = HeadReader::default();
            return Some(head);
        }
    }
}

/// Unmasks a payload that arrives in pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unmask {
    key: [u8; 4],
    /// Payload bytes seen so far, modulo 4: where in the key the next byte starts.
    at: usize,
}

impl Unmask {
    pub fn new(key: [u8; 4]) -> Unmask {
        Unmask { key, at: 0 }
    }

    /// Unmasks `masked` in chunks of at most 256 bytes, handing each to `f`.
    pub fn feed(&mut self, masked: &[u8], mut f: impl FnMut(&[u8])) {
        // Rotated so that byte i of each chunk takes key[i % 4] (chunks are a multiple of 4).
        let mut key = self.key;
        key.rotate_left(self.at);
        let mut buf = [0u8; 256];
        for chunk in masked.chunks(buf.len()) {
            for (i, (out, b)) in buf.iter_mut().zip(chunk).enumerate() {
                *out = b ^ key[i % 4];
            }
            f(&buf[..chunk.len()]);
        }
        self.at = (self.at + masked.len()) % 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_in_any_split() {
        let heads: [&[u8]; 4] = [
            &[0x81, 0x85, 1, 2, 3, 4],
            &[0xc2, 0xfe, 0x01, 0x2c, 9, 9, 9, 9],
            &[0x02, 0xff, 0, 0, 0, 0, 0, 1, 0x11, 0x70, 5, 6, 7, 8],
            &[0x89, 0x00],
        ];
        let lens = [5, 300, 70_000, 0];
        for (bytes, len) in heads.iter().zip(lens) {
            for cut in 0..bytes.len() {
                let mut r = HeadReader::default();
                let mut first = &bytes[..cut];
                assert_eq!(r.feed(&mut first), None);
                let mut rest = &bytes[cut..];
                let head = r.feed(&mut rest).expect("complete");
                assert!(rest.is_empty() && r.is_empty());
                assert_eq!((head.as_bytes(), head.payload_len), (*bytes, len));
            }
        }
        let mut r = HeadReader::default();
        let head = r.feed(&mut &heads[1][..]).unwrap();
        assert!(head.rsv1() && head.fin() && !head.is_control());
        assert_eq!((head.opcode(), head.mask()), (2, Some([9; 4])));
    }

    #[test]
    fn unmasking_across_pieces() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let plain: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let masked: Vec<u8> = plain
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect();
        let mut u = Unmask::new(key);
        let mut got = Vec::new();
        for piece in masked.chunks(7) {
            u.feed(piece, |p| got.extend_from_slice(p));
        }
        assert_eq!(got, plain);
    }
}

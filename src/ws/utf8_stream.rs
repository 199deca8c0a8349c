//! Incremental UTF-8 validation of a byte stream that arrives in arbitrary pieces.
//!
//! RFC 6455 §8.1 wants a connection failed as soon as a text message is known to be invalid
//! UTF-8, not only when the frame that holds the bad bytes is complete. This validator is
//! fed whatever part of a text message has arrived and says `Invalid` only once no
//! continuation could make the bytes so far valid: a multi-byte character cut off at the end
//! is merely incomplete. The rules are those of `std::str::from_utf8` (Unicode table 3-7:
//! no overlong forms, no surrogates, nothing above U+10FFFF). Pure.

/// Where the bytes fed so far stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Valid, and ending on a character boundary.
    Complete,
    /// Valid so far, but ending inside a multi-byte character.
    Incomplete,
    /// No continuation can make it valid.
    Invalid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Utf8Stream {
    /// Continuation bytes still missing from the current character.
    need: u8,
    /// The range the next continuation byte must fall in: narrower than 80..=BF right after
    /// some lead bytes, which is how overlong forms, surrogates and code points above
    /// U+10FFFF are caught at their second byte.
    low: u8,
    high: u8,
    /// Sticky: nothing after a bad byte can repair it.
    invalid: bool,
}

impl Utf8Stream {
    /// Follows the next bytes of the stream.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !self.invalid && !bytes.is_empty() {
            if self.need == 0 {
                // Text is mostly ASCII: skip it without going through the state machine.
                let ascii = bytes
                    .iter()
                    .position(|b| !b.is_ascii())
                    .unwrap_or(bytes.len());
                bytes = &bytes[ascii..];
                let Some((&lead, rest)) = bytes.split_first() else {
                    return;
                };
                self.lead(lead);
                bytes = rest;
            } else {
                self.continuation(bytes[0]);
                bytes = &bytes[1..];
            }
        }
    }

    pub fn status(&self) -> Status {
        match (self.invalid, self.need) {
            (true, _) => Status::Invalid,
            (false, 0) => Status::Complete,
            (false, _) => Status::Incomplete,
        }
    }

    fn lead(&mut self, byte: u8) {
        let (need, low, high) = match byte {
            0xC2..=0xDF => (1, 0x80, 0xBF),
            // E0 80..9F would be overlong.
            0xE0 => (2, 0xA0, 0xBF),
            0xE1..=0xEC | 0xEE..=0xEF => (2, 0x80, 0xBF),
            // ED A0..BF would be a UTF-16 surrogate.
            0xED => (2, 0x80, 0x9F),
            // F0 80..8F would be overlong.
            0xF0 => (3, 0x90, 0xBF),
            0xF1..=0xF3 => (3, 0x80, 0xBF),
            // F4 90.. would be above U+10FFFF.
            0xF4 => (3, 0x80, 0x8F),
            // Stray continuation bytes, overlong leads C0 and C1, and F5.. (beyond U+10FFFF).
            _ => return self.invalid = true,
        };
        *self = Utf8Stream {
            need,
            low,
            high,
            invalid: false,
        };
    }

    fn continuation(&mut self, byte: u8) {
        if !(self.low..=self.high).contains(&byte) {
            self.invalid = true;
            return;
        }
        self.need -= 1;
        (self.low, self.high) = (0x80, 0xBF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(bytes: &[u8]) -> Status {
        let mut v = Utf8Stream::default();
        v.feed(bytes);
        v.status()
    }

    /// What std says about `bytes` as a prefix of a stream.
    fn std_status(bytes: &[u8]) -> Status {
        match std::str::from_utf8(bytes) {
            Ok(_) => Status::Complete,
            Err(e) if e.error_len().is_none() => Status::Incomplete,
            Err(_) => Status::Invalid,
        }
    }

    #[test]
    fn valid_sequences() {
        for s in [
            "", "a", "\u{7f}", "é", "\u{7ff}", "\u{800}", "€", "\u{d7ff}", "\u{e000}",
        ] {
            assert_eq!(status_of(s.as_bytes()), Status::Complete, "{s:?}");
        }
        for s in [
            "\u{ffff}",
            "\u{10000}",
            "😀",
            "\u{10ffff}",
            "κόσμε",
            "Hello-µ@ßöäüàá-UTF-8!!",
        ] {
            assert_eq!(status_of(s.as_bytes()), Status::Complete, "{s:?}");
        }
    }

    #[test]
    fn overlong_encodings_are_invalid() {
        for bad in [
            &[0xC0, 0x80][..],
            &[0xC1, 0xBF],
            &[0xE0, 0x80, 0x80],
            &[0xE0, 0x9F, 0xBF],
            &[0xF0, 0x80, 0x80, 0x80],
            &[0xF0, 0x8F, 0xBF, 0xBF],
        ] {
            assert_eq!(status_of(bad), Status::Invalid, "{bad:x?}");
        }
    }

    #[test]
    fn surrogates_are_invalid() {
        for bad in [
            &[0xED, 0xA0, 0x80][..],
            &[0xED, 0xAF, 0xBF],
            &[0xED, 0xBF, 0xBF],
        ] {
            assert_eq!(status_of(bad), Status::Invalid, "{bad:x?}");
        }
    }

    #[test]
    fn code_points_above_10ffff_are_invalid() {
        for bad in [
            &[0xF4, 0x90, 0x80, 0x80][..],
            &[0xF5, 0x80, 0x80, 0x80],
            &[0xF7, 0xBF, 0xBF, 0xBF],
            &[0xF8, 0x88, 0x80, 0x80, 0x80],
            &[0xFE],
            &[0xFF],
        ] {
            assert_eq!(status_of(bad), Status::Invalid, "{bad:x?}");
        }
    }

    #[test]
    fn stray_and_missing_continuation_bytes_are_invalid() {
        for bad in [
            &[0x80][..],
            &[b'a', 0xBF],
            &[0xC3, b'a'],
            &[0xE2, 0x82, b'a'],
            &[0xCE, 0xBA, 0x80],
        ] {
            assert_eq!(status_of(bad), Status::Invalid, "{bad:x?}");
        }
    }

    /// Fail fast must not fire on a character that is merely cut off by a frame or read.
    #[test]
    fn truncated_sequences_are_incomplete() {
        for cut in [
            &[0xC3][..],
            &[0xE2],
            &[0xE2, 0x82],
            &[0xF0],
            &[0xF0, 0x9F],
            &[0xF4, 0x8F, 0xBF],
        ] {
            assert_eq!(status_of(cut), Status::Incomplete, "{cut:x?}");
        }
        // Invalid at the first byte where no continuation can help, not earlier.
        for (prefix, full) in [
            (&[0xE0][..], &[0xE0, 0x80][..]),
            (&[0xED], &[0xED, 0xA0]),
            (&[0xF4], &[0xF4, 0x90]),
        ] {
            assert_eq!(status_of(prefix), Status::Incomplete, "{prefix:x?}");
            assert_eq!(status_of(full), Status::Invalid, "{full:x?}");
        }
    }

    #[test]
    fn invalid_is_sticky() {
        let mut v = Utf8Stream::default();
        v.feed(&[0xFF]);
        v.feed(b"fine text");
        assert_eq!(v.status(), Status::Invalid);
    }

    /// Fed a byte at a time, every prefix is judged as std judges it (std reports the first
    /// error in a prefix, so a prefix holding a bad byte anywhere is invalid to both).
    #[test]
    fn byte_at_a_time_agrees_with_std() {
        let strings: [&[u8]; 10] = [
            "Hello-µ@ßöäüàá-UTF-8!!".as_bytes(),
            "κόσμε 😀 \u{10ffff} \u{800} € \u{ffff}".as_bytes(),
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80then more",
            b"\xf4\x90\x80\x80",
            b"abc\xe0\x80\x80",
            b"\xc0\xafx",
            b"\xf0\x9f\x98\x80\xf0\x9f\x98",
            b"\x80\x80",
            b"ok\xf5\x80\x80\x80",
            b"\xef\xbf\xbf\xed\x9f\xbf\xee\x80\x80",
        ];
        for s in strings {
            let mut v = Utf8Stream::default();
            for i in 0..s.len() {
                v.feed(&s[i..=i]);
                assert_eq!(v.status(), std_status(&s[..=i]), "{s:x?} up to byte {i}");
            }
            assert_eq!(status_of(s), std_status(s), "{s:x?} at once");
        }
    }

    /// Every sequence of up to four bytes drawn from the boundary values of each range.
    #[test]
    fn agrees_with_std_on_boundary_bytes() {
        const EDGES: [u8; 26] = [
            0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0,
            0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF8, 0xFF,
        ];
        let mut seq = Vec::with_capacity(4);
        fn walk(seq: &mut Vec<u8>) {
            if !seq.is_empty() {
                assert_eq!(status_of(seq), std_status(seq), "{seq:x?}");
            }
            if seq.len() == 4 {
                return;
            }
            for b in EDGES {
                seq.push(b);
                walk(seq);
                seq.pop();
            }
        }
        walk(&mut seq);
    }
}

//! Unit tests of the frame boundary tracker.

use super::*;

fn frame(fin: bool, opcode: u8, payload_len: usize) -> Vec<u8> {
    let first = if fin { 0x80 } else { 0 } | opcode;
    crate::testing::client_frame(first, &vec![7; payload_len], [1, 2, 3, 4])
}

#[test]
fn whole_frames_in_any_split() {
    let mut stream = frame(true, 1, 5);
    stream.extend(frame(true, 2, 300));
    stream.extend(frame(true, 2, 70_000));
    stream.extend(frame(true, 9, 0));
    for chunk in [1, 2, 3, 7, 100, 4096] {
        let mut b = Boundaries::default();
        for (i, piece) in stream.chunks(chunk).enumerate() {
            b.feed(piece);
            let consumed = (i + 1) * chunk;
            if consumed < stream.len() {
                continue;
            }
        }
        assert!(b.at_rest(), "chunk {chunk}");
    }
}

#[test]
fn partial_frames_and_fragmented_messages_are_not_at_rest() {
    let mut b = Boundaries::default();
    let f = frame(true, 1, 10);
    b.feed(&f[..5]);
    assert!(!b.at_rest(), "inside a frame");
    b.feed(&f[5..]);
    assert!(b.at_rest());
    b.feed(&frame(false, 1, 3));
    assert!(!b.at_rest(), "first fragment of a message");
    b.feed(&frame(true, 9, 2));
    assert!(!b.at_rest(), "a ping between fragments changes nothing");
    b.feed(&frame(true, 0, 3));
    assert!(b.at_rest(), "final fragment");
}

#[test]
fn zero_length_frames_complete_at_once() {
    let mut b = Boundaries::default();
    b.feed(&frame(true, 2, 0));
    assert!(b.at_rest());
}

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A client frame carrying `payload`, masked with `KEY`.
fn masked(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![
        if fin { 0x80 } else { 0 } | opcode,
        0x80 | payload.len() as u8,
    ];
    f.extend_from_slice(&KEY);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
    f
}

/// Cases 6.4.3/6.4.4: the bad bytes are seen before the rest of the frame arrives.
#[test]
fn invalid_utf8_is_seen_in_a_partial_text_frame() {
    let payload = ["κόσμε".as_bytes(), b"\xf4\x90\x80\x80-edited"].concat();
    let f = masked(true, 1, &payload);
    // Header and payload up to F4, then the 90 after it (no character above U+10FFFF).
    let f4 = 6 + "κόσμε".len() + 1;
    let mut b = Boundaries::default();
    b.feed(&f[..f4]);
    assert!(!b.invalid_utf8(), "F4 alone may still be valid");
    b.feed(&f[f4..f4 + 1]);
    assert!(b.invalid_utf8(), "right after F4 90");
    assert!(!b.at_rest());
    b.feed(&f[f4 + 1..]);
    assert!(b.invalid_utf8(), "sticky");
    assert!(b.at_rest(), "boundaries are still followed");
}

#[test]
fn valid_text_split_anywhere_is_never_invalid() {
    let text = "κόσμε 😀 € \u{10ffff} ascii";
    let mut stream = masked(false, 1, &text.as_bytes()[..9]);
    stream.extend(masked(true, 9, b"\xff\xfe ping"));
    stream.extend(masked(true, 0, &text.as_bytes()[9..]));
    stream.extend(masked(true, 1, text.as_bytes()));
    for cut in 0..=stream.len() {
        let mut b = Boundaries::default();
        b.feed(&stream[..cut]);
        assert!(!b.invalid_utf8(), "cut at {cut}");
        b.feed(&stream[cut..]);
        assert!(!b.invalid_utf8(), "cut at {cut}");
        assert!(b.at_rest());
    }
    let mut b = Boundaries::default();
    for byte in stream.chunks(1) {
        b.feed(byte);
        assert!(!b.invalid_utf8());
    }
}

#[test]
fn binary_and_control_payloads_are_not_validated() {
    let mut b = Boundaries::default();
    b.feed(&masked(true, 2, b"\xff\xc0\x80"));
    b.feed(&masked(false, 2, b"\xff"));
    b.feed(&masked(true, 0, b"\xed\xa0\x80"));
    assert!(!b.invalid_utf8(), "binary");
    b.feed(&masked(false, 1, b"text "));
    b.feed(&masked(true, 9, b"\xff"));
    b.feed(&masked(true, 10, b"\xc0\x80"));
    b.feed(&masked(true, 8, &[0x03, 0xe8, 0xff]));
    assert!(!b.invalid_utf8(), "control frames inside a text message");
    b.feed(&masked(true, 0, b"goes on"));
    assert!(!b.invalid_utf8());
}

/// A character cut between fragments is completed by the next one, and bad bytes in a
/// later fragment count as much as in the first.
#[test]
fn fragments_are_validated_as_one_message() {
    let mut b = Boundaries::default();
    b.feed(&masked(false, 1, b"a\xe2\x82"));
    b.feed(&masked(false, 0, b"\xacb"));
    assert!(!b.invalid_utf8(), "€ across fragments");
    let second = masked(true, 0, b"ok\xc0\x80 and more");
    b.feed(&second[..6 + 3]);
    assert!(b.invalid_utf8(), "overlong in the second fragment");
}

#[test]
fn each_message_starts_afresh() {
    let mut b = Boundaries::default();
    // A text message cut mid-character is tungstenite's to reject (the frame is whole);
    // what follows must not be judged as its continuation.
    b.feed(&masked(true, 1, b"\xe2\x82"));
    b.feed(&masked(true, 1, b"a"));
    assert!(!b.invalid_utf8(), "a new text message");
    b.feed(&masked(false, 1, b"\xe2\x82"));
    b.feed(&masked(true, 0, b""));
    b.feed(&masked(true, 1, b"a"));
    assert!(!b.invalid_utf8(), "after a fragmented one");
    b.feed(&masked(true, 1, b"a"));
    b.feed(&masked(true, 0, b"\xff"));
    assert!(!b.invalid_utf8(), "a stray continuation frame is not text");
}

#[test]
fn unmasked_or_reserved_frames_are_left_to_tungstenite() {
    let mut unmasked = masked(true, 1, b"\xff");
    unmasked[1] &= 0x7f;
    unmasked.drain(2..6);
    unmasked[2] = 0xff;
    let mut rsv1 = masked(true, 1, b"\xff");
    rsv1[0] |= 0x40;
    for f in [unmasked, rsv1] {
        let mut b = Boundaries::default();
        b.feed(&f);
        assert!(!b.invalid_utf8(), "{f:x?}");
        assert!(b.at_rest());
    }
}

#[test]
fn the_first_close_frame_is_kept_in_any_split() {
    let mut stream = masked(true, 1, b"text");
    stream.extend(masked(true, 8, b"\x03\xf6bad gateway"));
    stream.extend(masked(true, 8, b"\x03\xe8later"));
    for cut in 0..=stream.len() {
        let mut b = Boundaries::default();
        b.feed(&stream[..cut]);
        if cut < 10 + 6 + 13 {
            assert_eq!(b.close_payload(), None, "cut at {cut}: not all of it yet");
        }
        b.feed(&stream[cut..]);
        assert_eq!(
            b.close_payload(),
            Some(&b"\x03\xf6bad gateway"[..]),
            "cut at {cut}"
        );
    }
    let mut b = Boundaries::default();
    b.feed(&masked(true, 8, b""));
    assert_eq!(b.close_payload(), Some(&b""[..]), "an empty close frame");
}

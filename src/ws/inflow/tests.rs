use super::*;
use crate::ws::compress::Compressor;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A masked client frame; `first` is the whole first header byte.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    crate::testing::client_frame(first, payload, KEY)
}

fn plain(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = plain_head(first & 0x0f, payload.len(), true);
    f[0] = first;
    f.extend_from_slice(payload);
    f
}

fn run(inflow: &mut Inflow, input: &[u8], piece: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 333];
    for chunk in input.chunks(piece.max(1)) {
        inflow.feed(chunk);
        loop {
            let n = inflow.read(&mut buf);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
    }
    got
}

fn deflated(message: &[u8]) -> Vec<u8> {
    Compressor::new(1).compress(message, false).unwrap()
}

#[test]
fn compressed_messages_come_out_plain_and_the_rest_unchanged() {
    let text = "hello hello hello hello hello hello".as_bytes();
    let mut input = frame(0x81, b"plain");
    input.extend(frame(0xc1, &deflated(text)));
    input.extend(frame(0x89, b"ping"));
    input.extend(frame(0x82, &[]));
    let mut want = frame(0x81, b"plain");
    want.extend(plain(0x81, text));
    want.extend(frame(0x89, b"ping"));
    want.extend(frame(0x82, &[]));
    for piece in [1, 2, 5, 64, input.len()] {
        let mut inflow = Inflow::new(1 << 20, false);
        assert_eq!(run(&mut inflow, &input, piece), want, "piece {piece}");
        assert_eq!(inflow.violation(), None);
        assert_eq!(inflow.inflated_bytes, text.len() as u64);
    }
}

/// A compressed message in three fragments, a ping between two of them: the ping goes on
/// first, the message as one frame after its final fragment.
#[test]
fn fragmented_compressed_messages() {
    let message: Vec<u8> = b"{\"n\":1,\"text\":\"abcabcabc\"}".repeat(400);
    let wire = deflated(&message);
    let (a, rest) = wire.split_at(wire.len() / 3);
    let (b, c) = rest.split_at(rest.len() / 2);
    let mut input = frame(0x42, a);
    input.extend(frame(0x00, b));
    input.extend(frame(0x8a, b"pong"));
    input.extend(frame(0x80, c));
    let mut want = frame(0x8a, b"pong");
    want.extend(plain(0x82, &message));
    for piece in [3, 100, input.len()] {
        let mut inflow = Inflow::new(1 << 20, false);
        assert_eq!(run(&mut inflow, &input, piece), want, "piece {piece}");
    }
}

#[test]
fn framing_violations() {
    let cases: [(Vec<u8>, &str); 4] = [
        (frame(0xc9, b""), "RSV1 set on a control frame"),
        (
            [frame(0x01, b"a"), frame(0xc0, b"b")].concat(),
            "RSV1 set on a continuation frame",
        ),
        (
            [frame(0x41, &deflated(&[b'a'; 300])), frame(0x81, b"x")].concat(),
            "a new message before the compressed one ended",
        ),
        (vec![0xc1, 0x01, 0x00], "unmasked client frame"),
    ];
    for (input, why) in cases {
        let mut inflow = Inflow::new(1024, false);
        run(&mut inflow, &input, 1);
        assert_eq!(inflow.violation(), Some(Violation::Protocol(why)), "{why}");
        assert_eq!(inflow.violation().unwrap().close_code(), 1002);
    }
}

#[test]
fn bombs_and_bad_data() {
    let bomb = frame(0xc2, &deflated(&vec![0u8; 1 << 20]));
    let mut inflow = Inflow::new(64 * 1024, false);
    assert!(run(&mut inflow, &bomb, 512).is_empty());
    assert_eq!(inflow.violation().map(|v| v.close_code()), Some(1009));
    let mut inflow = Inflow::new(1024, false);
    let bad = [frame(0x81, b"before"), frame(0xc1, &[0x07, 0x00])].concat();
    assert_eq!(run(&mut inflow, &bad, 1000), frame(0x81, b"before"));
    assert_eq!(inflow.violation().map(|v| v.close_code()), Some(1007));
}

/// A client reading a server's unmasked frames.
#[test]
fn server_frames_for_a_client() {
    let text = b"abcabcabcabcabcabcabcabcabcabc";
    let mut f = vec![0xc1, 0];
    let packed = deflated(text);
    f[1] = packed.len() as u8;
    f.extend_from_slice(&packed);
    let mut inflow = Inflow::reading_server(1024, false);
    let mut want = vec![0x81, text.len() as u8];
    want.extend_from_slice(text);
    assert_eq!(run(&mut inflow, &f, 3), want);
    let mut inflow = Inflow::reading_server(1024, false);
    run(&mut inflow, &frame(0xc1, &packed), 100);
    assert_eq!(
        inflow.violation(),
        Some(Violation::Protocol("masked server frame"))
    );
}

/// RSV2/RSV3 and plain messages are tungstenite's to judge: they pass unchanged.
#[test]
fn other_reserved_bits_pass() {
    let input = [frame(0xe1, b"x"), frame(0x91, b"y"), frame(0x01, b"z")].concat();
    let mut inflow = Inflow::new(1024, false);
    assert_eq!(run(&mut inflow, &input, 7), input);
    assert_eq!(inflow.violation(), None);
}

/// Noise that does not compress: its compressed form is as long as it.
fn noise(n: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// A large message in one frame goes on packed (compressed, as a binary frame) and is
/// numbered among the data messages; smaller ones, and fragmented ones, are inflated as they
/// come.
#[test]
fn large_compressed_messages_go_on_packed_for_a_worker() {
    let letters: Vec<u8> = noise(6000).iter().map(|b| b'a' + b % 26).collect();
    let big = deflated(&letters);
    assert!(big.len() > 2000, "{}", big.len());
    let small = deflated(b"hello hello hello hello");
    let half = big.len() / 2;
    let mut input = frame(0x81, b"plain");
    input.extend(frame(0x41, &big[..half]));
    input.extend(frame(0x89, b"ping"));
    input.extend(frame(0x80, &big[half..]));
    input.extend(frame(0xc2, &small));
    input.extend(frame(0xc2, &big));
    let mut want = frame(0x81, b"plain");
    want.extend(frame(0x89, b"ping"));
    want.extend(plain(0x81, &letters));
    want.extend(plain(0x82, b"hello hello hello hello"));
    want.extend(plain(0x82, &big));
    for piece in [1, 7, 500, input.len()] {
        let mut inflow = Inflow::offloading(1 << 20, 1000, 10);
        assert_eq!(run(&mut inflow, &input, piece), want, "piece {piece}");
        assert_eq!(inflow.violation(), None);
        assert_eq!(inflow.wire_bytes, (2 * big.len() + small.len()) as u64);
        assert_eq!(inflow.inflated_bytes, (letters.len() + 23) as u64);
        assert_eq!(inflow.messages(), 14);
        assert!(!inflow.at_rest(), "the packed ones are not read yet");
        assert_eq!(inflow.take_packed(10), None, "the plain text message");
        assert_eq!(inflow.take_packed(11), None, "fragmented: inflated");
        assert_eq!(inflow.take_packed(12), None);
        assert_eq!(inflow.take_packed(13), Some(true));
        assert!(inflow.at_rest());
    }
}

/// Packed, a message is bounded by `--max-message` on the wire, as when inflating.
#[test]
fn a_packed_message_past_the_limit_is_too_big() {
    let big = noise(3000);
    let mut inflow = Inflow::offloading(2999, 1000, 0);
    run(&mut inflow, &frame(0xc2, &big), 100);
    assert_eq!(
        inflow.violation(),
        Some(Violation::Inflate(InflateError::TooBig))
    );
}

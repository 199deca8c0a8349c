use super::*;
use crate::ws::compress::Compressor;

fn compressed(message: &[u8]) -> Vec<u8> {
    Compressor::new(6)
        .compress(message, false)
        .expect("compressible")
}

#[test]
fn rfc_7692_example_hello() {
    // §7.2.3.1: "Hello" compressed, without context takeover.
    let mut inflater = Inflater::new(1024, false);
    inflater
        .feed(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])
        .unwrap();
    assert_eq!(inflater.finish().unwrap(), (b"Hello".to_vec(), 7));
    // §7.2.3.2: the same message with context takeover refers back to the first one.
    let mut inflater = Inflater::new(1024, true);
    for wire in [
        &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00][..],
        &[0xf2, 0x00, 0x11, 0x00, 0x00][..],
    ] {
        inflater.feed(wire).unwrap();
        assert_eq!(inflater.finish().unwrap().0, b"Hello");
    }
    // §7.2.3.3: a stored block; §7.2.3.4: a block with BFINAL set.
    for wire in [
        &[
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ][..],
        &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00][..],
    ] {
        let mut inflater = Inflater::new(1024, false);
        inflater.feed(wire).unwrap();
        assert_eq!(inflater.finish().unwrap().0, b"Hello");
    }
}

#[test]
fn fed_in_any_pieces() {
    let message: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8 ^ b'a').collect();
    let wire = compressed(&message);
    for piece in [1, 7, 1000, wire.len()] {
        let mut inflater = Inflater::new(message.len(), false);
        for chunk in wire.chunks(piece) {
            inflater.feed(chunk).unwrap();
        }
        let (got, on_wire) = inflater.finish().unwrap();
        assert_eq!((got.len(), on_wire), (message.len(), wire.len()), "{piece}");
        assert_eq!(got, message);
    }
}

/// A megabyte of zeros is about a kilobyte compressed; with a 64 KiB limit it is refused, and
/// the output buffer never grew past the limit.
#[test]
fn bombs_are_refused_at_the_limit() {
    let zeros = vec![0u8; 1 << 20];
    let wire = compressed(&zeros);
    assert!(wire.len() < 2048, "{}", wire.len());
    let limit = 64 * 1024;
    let mut inflater = Inflater::new(limit, false);
    let mut failed = None;
    for chunk in wire.chunks(100) {
        if let Err(e) = inflater.feed(chunk) {
            failed = Some(e);
            break;
        }
        assert!(inflater.out.capacity() <= limit);
    }
    let failed = failed.or_else(|| inflater.finish().err());
    assert_eq!(failed, Some(InflateError::TooBig));
    assert!(
        inflater.out.capacity() <= limit,
        "{}",
        inflater.out.capacity()
    );
}

#[test]
fn exactly_the_limit_is_accepted() {
    let message = vec![b'x'; 10_000];
    let wire = compressed(&message);
    let mut inflater = Inflater::new(10_000, false);
    inflater.feed(&wire).unwrap();
    assert_eq!(inflater.finish().unwrap().0.len(), 10_000);
    let mut inflater = Inflater::new(9_999, false);
    let err = inflater
        .feed(&wire)
        .and_then(|()| inflater.finish().map(|_| ()));
    assert_eq!(err, Err(InflateError::TooBig));
}

#[test]
fn the_wire_size_is_bounded_too() {
    // Empty stored blocks inflate to nothing, forever.
    let empty_block = [0x00, 0x00, 0x00, 0xff, 0xff];
    let mut inflater = Inflater::new(100, false);
    let mut result = Ok(());
    for _ in 0..30 {
        result = inflater.feed(&empty_block);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(InflateError::TooBig));
}

#[test]
fn bad_data_is_refused() {
    // Block type 3 is reserved.
    let mut inflater = Inflater::new(1024, false);
    let got = inflater
        .feed(&[0x07, 0x00])
        .and_then(|()| inflater.finish().map(|_| ()));
    assert_eq!(got, Err(InflateError::BadData));
    // A length that does not match its complement.
    let mut inflater = Inflater::new(1024, false);
    assert_eq!(
        inflater.feed(&[0x00, 0x05, 0x00, 0x00, 0x00]),
        Err(InflateError::BadData)
    );
}

#[test]
fn nothing_is_held_between_messages_without_takeover() {
    let mut inflater = Inflater::new(1024, false);
    inflater.feed(&compressed(&[b'a'; 500])).unwrap();
    assert!(inflater.state.is_some());
    inflater.finish().unwrap();
    assert!(inflater.state.is_none() && inflater.out.capacity() == 0);
}

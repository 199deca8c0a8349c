//! permessage-deflate across a resume: a session's missed messages are kept plain and replayed
//! through the send path of the NEW socket, so a client gets them in the encoding its new
//! handshake negotiated (compressed, or not at all when it no longer offers the extension), and
//! with `--deflate-context` on the new socket's fresh compression context. Raw sockets that
//! compress and inflate with flate2 itself, a real wscgi and a real recording backend.

mod support;

use std::net::TcpStream;
use std::time::Duration;

use flate2::{Decompress, FlushDecompress};
use support::raw_deflate::{TAIL, inflate, json, open_offering_at, read_big_frame};
use support::*;

const T: Duration = Duration::from_secs(10);
const NO_CONTEXT: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// Message `n` of a test: about `size` bytes of JSON that compresses well, tagged with `n`.
fn message(n: u64, size: usize) -> Vec<u8> {
    let mut m = format!("{{\"n\":{n},\"items\":").into_bytes();
    m.extend_from_slice(&json(size));
    m.push(b'}');
    m
}

/// Pushes message `n` to `id`; `status` is 200 (sent) or 202 (kept for a client away).
fn push(server: &Wscgi, id: &str, n: u64, size: usize, status: u16) {
    let answer = push_to(server, id, &message(n, size));
    assert_eq!(answer.status, status, "push {n}: {}", answer.body_str());
}

/// Reads the next frame: compressed (RSV1) or plain as `compressed` says, and it carries
/// message `n` once `inflate` undid the compression.
fn expect(
    s: &mut TcpStream,
    n: u64,
    size: usize,
    compressed: bool,
    inflate: &mut dyn FnMut(&[u8]) -> Vec<u8>,
) {
    let (first, payload, _) = read_big_frame(s);
    let want_first = if compressed { 0xc1 } else { 0x81 };
    assert_eq!(first, want_first, "message {n}: first byte {first:#x}");
    let got = if compressed {
        inflate(&payload)
    } else {
        payload
    };
    assert!(got == message(n, size), "message {n} arrives intact");
}

/// A client's inflater that keeps its window between messages (context takeover).
struct Context(Decompress);

impl Context {
    fn new() -> Context {
        Context(Decompress::new(false))
    }

    fn inflate(&mut self, payload: &[u8]) -> Vec<u8> {
        let input = [payload, &TAIL].concat();
        let start = self.0.total_in();
        let mut out = Vec::with_capacity(payload.len() * 8 + 64);
        loop {
            let taken = (self.0.total_in() - start) as usize;
            self.0
                .decompress_vec(&input[taken..], &mut out, FlushDecompress::Sync)
                .expect("valid deflate data in this context");
            if (self.0.total_in() - start) as usize == input.len() && out.len() < out.capacity() {
                return out;
            }
            out.reserve(out.capacity());
        }
    }
}

#[test]
fn a_resumed_client_gets_missed_messages_in_the_encoding_of_its_new_handshake() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let (path, key, size) = ("/feed", session_key(), 600);
    let offer = Some("permessage-deflate; client_max_window_bits");
    let plain = &mut |p: &[u8]| p.to_vec();
    let fresh = &mut |p: &[u8]| inflate(p);

    let (mut s, answer) = open_offering_at(&server, &resume_target(path, &key, None), offer);
    assert_eq!(answer.as_deref(), Some(NO_CONTEXT));
    let id = backend.conn_id_on(path, T);
    push(&server, &id, 1, size, 200);
    expect(&mut s, 1, size, true, fresh);
    reset_stream(s);
    wait_parked(&server, &id);
    push(&server, &id, 2, size, 202);
    push(&server, &id, 3, size, 202);

    // Back without offering the extension: the messages kept come plain, and so do live ones.
    let (mut s, answer) = open_offering_at(&server, &resume_target(path, &key, Some(1)), None);
    assert_eq!(answer, None, "no offer, no extension");
    expect(&mut s, 2, size, false, plain);
    expect(&mut s, 3, size, false, plain);
    push(&server, &id, 4, size, 200);
    expect(&mut s, 4, size, false, plain);
    reset_stream(s);
    wait_parked(&server, &id);
    push(&server, &id, 5, size, 202);
    push(&server, &id, 6, size, 202);

    // Back offering it again: the same kind of messages now come compressed.
    let (mut s, answer) = open_offering_at(&server, &resume_target(path, &key, Some(4)), offer);
    assert_eq!(answer.as_deref(), Some(NO_CONTEXT));
    expect(&mut s, 5, size, true, fresh);
    expect(&mut s, 6, size, true, fresh);
    push(&server, &id, 7, size, 200);
    expect(&mut s, 7, size, true, fresh);

    let events: Vec<String> = backend
        .events(&id)
        .iter()
        .map(|r| r.event().into())
        .collect();
    assert_eq!(
        events,
        ["open", "resume", "resume"],
        "one connection for the backend"
    );
    let wire = metric(&server, "wscgi_deflate_sent_compressed_bytes_total");
    let before = metric(&server, "wscgi_deflate_sent_uncompressed_bytes_total");
    let one = message(1, size).len() as u64;
    assert_eq!(before, 4 * one, "4 messages went compressed: 1, 5, 6, 7");
    assert!(wire > 0 && wire < before / 2, "{wire} of {before}");
}

/// With `--deflate-context` the replay is compressed in the new socket's context, message after
/// message, even when the outgoing buffer (`--max-outbuf`) takes only part of the replay at a
/// time: a message is compressed only when it is queued.
#[test]
fn a_replay_with_context_takeover_compresses_in_the_new_context() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &["--deflate-context", "--max-outbuf", "4K"]);
    let (path, key, size) = ("/ctx", session_key(), 3000);
    let offer = Some("permessage-deflate");

    let (mut s, answer) = open_offering_at(&server, &resume_target(path, &key, None), offer);
    assert_eq!(answer.as_deref(), Some("permessage-deflate"));
    let id = backend.conn_id_on(path, T);
    let mut old = Context::new();
    for n in 1..=2 {
        push(&server, &id, n, size, 200);
        expect(&mut s, n, size, true, &mut |p| old.inflate(p));
    }
    reset_stream(s);
    wait_parked(&server, &id);
    for n in 3..=8 {
        push(&server, &id, n, size, 202);
    }

    let (mut s, answer) = open_offering_at(&server, &resume_target(path, &key, Some(2)), offer);
    assert_eq!(answer.as_deref(), Some("permessage-deflate"));
    let mut new = Context::new();
    for n in 3..=8 {
        expect(&mut s, n, size, true, &mut |p| new.inflate(p));
    }
    push(&server, &id, 9, size, 200);
    expect(&mut s, 9, size, true, &mut |p| new.inflate(p));
}

//! Test and fuzz support: one connection's state machine driven through the same calls the
//! reactor makes (`on_readable`, `take_event`, `on_reply`, `flush`), over a real loopback
//! socket, with a backend that accepts the open and echoes messages; and client frames of any
//! size ([`client_frame`]). Not part of the API.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use tungstenite::Bytes;

use crate::config::Config;
use crate::conn_id::ConnKey;
use crate::events::{EventKind, Work};
use crate::reply::Reply;
use crate::ws::close;
use crate::ws::conn::{Conn, Limits, Readable};

const UPGRADE: &[u8] =
    b"GET /fuzz?x=1 HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/// What happened to the connection.
#[derive(Debug)]
pub struct Outcome {
    /// Everything the server wrote to the client.
    pub output: Vec<u8>,
    /// Messages that reached the (echo) backend.
    pub messages: usize,
    /// Their payloads, in order.
    pub bodies: Vec<Bytes>,
    /// After each part had been read: whether the connection still held a frame reader.
    pub reader_after_part: Vec<bool>,
    /// After each part had been read: whether it held a permessage-deflate record on the heap.
    pub deflate_after_part: Vec<bool>,
    /// The close code the WebSocket ended with, if it ended.
    pub close_code: Option<u16>,
}

/// Sends a valid upgrade request, then `frames` (at most 64 KiB are used), and runs the
/// connection until it has nothing more to do. Panics if an invariant breaks.
pub fn drive_conn(frames: &[u8]) -> Outcome {
    drive_conn_in_parts(&[frames])
}

/// Like [`drive_conn`], but the client sends `parts` one after the other, and the connection
/// runs until it is idle after each (so it sees the socket run dry in between).
pub fn drive_conn_in_parts(parts: &[&[u8]]) -> Outcome {
    drive(UPGRADE, false, parts)
}

/// Like [`drive_conn_in_parts`], the client offering permessage-deflate, and the server with
/// `--deflate-context` if `context`.
pub fn drive_deflate_in_parts(context: bool, parts: &[&[u8]]) -> Outcome {
    let upgrade = String::from_utf8_lossy(UPGRADE).replace(
        "\r\n\r\n",
        "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
    );
    drive(upgrade.as_bytes(), context, parts)
}

fn drive(upgrade: &[u8], deflate_context: bool, parts: &[&[u8]]) -> Outcome {
    let (mut client, server, remote) = LISTENER.with(|listener| {
        let client = TcpStream::connect(listener.local_addr().expect("bound")).expect("connect");
        let (server, remote) = listener.accept().expect("accept");
        (client, server, remote)
    });
    server.set_nonblocking(true).expect("nonblocking");
    let mut config = Config::for_backend("http://127.0.0.1:1/");
    config.max_message = 16 * 1024;
    config.max_pending = 8;
    if let Some(d) = &mut config.deflate {
        d.context_takeover = deflate_context;
    }
    let limits = Limits::from_config(&config);
    let key = ConnKey {
        index: 0,
        generation: 1,
    };
    let mut conn = Conn::new(key, mio::net::TcpStream::from_std(server), remote, &limits);
    let mut backend = EchoBackend::default();
    client.write_all(upgrade).expect("write upgrade");
    let mut budget = 64 * 1024;
    let (mut reader_after_part, mut deflate_after_part) = (Vec::new(), Vec::new());
    for part in parts {
        let part = part.get(..budget).unwrap_or(part);
        budget -= part.len();
        client.write_all(part).expect("write frames");
        backend.run(&mut conn, &limits);
        reader_after_part.push(conn.holds_reader());
        deflate_after_part.push(conn.holds_deflate());
    }
    client
        .shutdown(std::net::Shutdown::Write)
        .expect("shutdown");
    backend.run(&mut conn, &limits);
    let (messages, bodies) = (backend.bodies.len(), backend.bodies);
    let close_code = conn.close_code();
    if let Some(code) = close_code {
        let known =
            close::valid_on_wire(code) || code == close::NO_STATUS || code == close::ABNORMAL;
        assert!(known, "connection ended with close code {code}");
    }
    drop(conn);
    client
        .set_read_timeout(Some(std::time::Duration::from_secs(1)))
        .expect("timeout");
    let mut output = Vec::new();
    let _ = client.read_to_end(&mut output);
    assert!(
        output.starts_with(b"HTTP/1.1 101 "),
        "the upgrade was accepted"
    );
    Outcome {
        output,
        messages,
        bodies,
        reader_after_part,
        deflate_after_part,
        close_code,
    }
}

/// Accepts the open event and echoes every message, as the reactor and a backend would.
#[derive(Default)]
struct EchoBackend {
    bodies: Vec<Bytes>,
}

impl EchoBackend {
    fn run(&mut self, conn: &mut Conn, limits: &Limits) {
        let boot: Arc<str> = Arc::from("boot");
        for _ in 0..10_000 {
            conn.on_readable(limits, Readable::Unsure);
            // What the pool does: a large compressed message is inflated by its worker.
            let Some(Work::Deliver(event, offload)) = conn.take_work(&boot, limits) else {
                break;
            };
            let event = match offload.inflate {
                None => event,
                Some(limit) => match crate::ws::offload::inflate_event(event, limit) {
                    Ok((event, len)) => {
                        conn.inflated(len);
                        event
                    }
                    Err((code, reason)) => {
                        conn.refuse(code, reason, limits);
                        continue;
                    }
                },
            };
            let body = match &event.kind {
                EventKind::Message { data, .. } => {
                    self.bodies.push(data.clone());
                    data.clone()
                }
                _ => Bytes::new(),
            };
            conn.on_reply(
                Ok(Reply {
                    status: 200,
                    body,
                    ..Reply::default()
                }),
                limits,
            );
            conn.flush();
        }
    }
}

thread_local! {
    /// One listener per thread: fuzzing makes millions of connections, and tests running in
    /// parallel must each accept their own.
    static LISTENER: TcpListener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
}

/// A client frame of any size carrying `payload` masked with `key`; `first` is the whole first
/// header byte (FIN, RSV bits, opcode).
pub fn client_frame(first: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let mut f = vec![first];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n < 65536 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&key);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing: a client that half-closes right after its handshake never got its
    /// 101, because dropping the socket at EOF discarded the queued bytes.
    #[test]
    fn half_closed_client_still_gets_its_101() {
        let out = drive_conn(b"");
        assert_eq!(out.close_code, Some(close::ABNORMAL));
    }

    /// Found by fuzzing: after a frame over the size limit, reading on from the same frame
    /// decoder tripped an assertion inside tungstenite (and in release builds read as EOF).
    #[test]
    fn no_frame_is_read_after_a_protocol_failure() {
        let input = include_bytes!("../fuzz/regressions/ws_conn/read-after-capacity-error");
        let out = drive_conn(input);
        assert!(out.close_code.is_some());
    }

    fn masked(opcode_fin: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![opcode_fin];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        f.extend_from_slice(&[0, 0, 0, 0]);
        f.extend_from_slice(payload);
        f
    }

    /// After a large message the frame reader is replaced; what follows (a fragmented message
    /// with a ping in between, then a small one) must come through as if nothing happened.
    #[test]
    fn messages_after_a_large_one_pass_unchanged() {
        let big = masked(0x82, &[9; 10_000]);
        let first = masked(0x01, b"frag");
        let mut rest = masked(0x89, b"p");
        rest.extend(masked(0x80, b"mented"));
        rest.extend(masked(0x81, b"small"));
        // The socket runs dry after the big message (the reader is renewed there) and in the
        // middle of the fragmented message (where it must not be).
        let out = drive_conn_in_parts(&[&big, &first, &rest]);
        let want: [&[u8]; 3] = [&[9; 10_000], b"fragmented", b"small"];
        assert_eq!(out.bodies.iter().map(|b| &b[..]).collect::<Vec<_>>(), want);
        assert_eq!(
            out.close_code,
            Some(close::ABNORMAL),
            "ended only by the client's EOF"
        );
    }

    /// The frame reader (and its buffer, grown by a large message) is let go as soon as the
    /// socket runs dry at a frame boundary, and not while a frame is half received.
    #[test]
    fn the_reader_is_let_go_when_the_socket_runs_dry_at_a_frame_boundary() {
        let mut big_then_half = masked(0x82, &[9; 10_000]);
        let next = masked(0x81, b"after");
        big_then_half.extend_from_slice(&next[..3]);
        let out = drive_conn_in_parts(&[&big_then_half, &next[3..], &masked(0x81, b"small")]);
        assert_eq!(out.reader_after_part, [true, false, false]);
        assert_eq!(out.bodies.len(), 3);
        assert_eq!(&out.bodies[1][..], b"after");
    }

    /// Autobahn 6.4.3/6.4.4: a text frame whose first half already holds invalid UTF-8 fails
    /// the connection with 1007 at once, though the client never sends the rest (without
    /// fail fast, the client's EOF would end it with 1006).
    #[test]
    fn invalid_utf8_in_half_a_text_frame_fails_at_once() {
        let mut payload = "κόσμε".as_bytes().to_vec();
        payload.extend_from_slice(b"\xf4\x90\x80\x80");
        payload.extend_from_slice(b"-edited");
        let mut frame = masked(0x81, &payload);
        // Masked with a real key, so that the tracker's unmasking counts.
        frame[2..6].copy_from_slice(&[0x9a, 0x01, 0x7c, 0xe3]);
        for i in 0..payload.len() {
            frame[6 + i] ^= frame[2 + i % 4];
        }
        let half = 6 + "κόσμε".len() + 2; // up to F4 90: beyond U+10FFFF
        let out = drive_conn_in_parts(&[&frame[..half]]);
        assert_eq!(out.close_code, Some(close::INVALID_DATA));
        assert_eq!(out.messages, 0);
        let close_frame = [0x88, 2 + 29, 0x03, 0xef];
        let at = out.output.windows(4).position(|w| w == close_frame);
        let at = at.expect("a close frame with 1007");
        assert_eq!(&out.output[at + 4..], b"invalid UTF-8 in text message");
    }

    /// An idle connection with permessage-deflate negotiated keeps no record on the heap once
    /// a compressed message was read (and its echo sent compressed, from what it keeps); one
    /// with a compression context of its own keeps it.
    #[test]
    fn an_idle_deflate_connection_holds_no_record() {
        let text = "{\"text\":\"hello\"}".repeat(20);
        let packed = crate::ws::compress::Compressor::new(1)
            .compress(text.as_bytes(), false)
            .expect("compresses");
        let frame = client_frame(0xc1, &packed, [1, 2, 3, 4]);
        let out = drive_deflate_in_parts(false, &[&frame[..5], &frame[5..], &frame]);
        assert!(String::from_utf8_lossy(&out.output).contains("permessage-deflate"));
        assert_eq!(out.bodies, [text.as_bytes(), text.as_bytes()]);
        assert_eq!(
            out.deflate_after_part,
            [true, false, false],
            "busy while half read"
        );
        let head_end = out
            .output
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("101");
        let echo = &out.output[head_end + 4..];
        assert_eq!(echo[0], 0xc1, "echoed compressed");
        assert!(usize::from(echo[1]) < 126, "and smaller");
        let context = drive_deflate_in_parts(true, &[&frame]);
        assert_eq!(context.bodies, [text.as_bytes()]);
        assert_eq!(context.deflate_after_part, [true]);
    }

    #[test]
    fn echoes_a_masked_text_frame_then_closes_on_garbage() {
        // "hi", masked with key 1,2,3,4; then a frame with reserved bits set.
        let frames = [
            0x81,
            0x82,
            1,
            2,
            3,
            4,
            b'h' ^ 1,
            b'i' ^ 2,
            0xF1,
            0x80,
            0,
            0,
            0,
            0,
        ];
        let out = drive_conn(&frames);
        assert_eq!(out.messages, 1);
        assert_eq!(out.close_code, Some(close::PROTOCOL_ERROR));
        let text = String::from_utf8_lossy(&out.output);
        assert!(text.contains("hi"), "{text}");
    }
}

//! `bench-shape-floor`: what the design card's shape costs per event, with nothing else in it.
//!
//! The shape of wscgi and nothing more: one mio reactor thread holds the WebSockets; each
//! message goes through a mutex-and-condvar queue to one of a few blocking worker threads,
//! which sends one HTTP/1.1 request (head and body in one write) over its kept-alive
//! connection to the backend, reads the reply, and hands it back through a channel and a
//! `mio::Waker` rung once per batch; the reactor frames the body and writes it to the client.
//! No ureq, no tungstenite, no limits, no resume, no deflate, no metrics, no logging.
//! compare.sh runs it beside wscgi in the echo scenario: wscgi's CPU per message over this
//! program's is what wscgi adds to the shape; this program's over the nginx hop's is what the
//! shape itself costs (thread hand-offs, a blocking read per event).
//!
//! ```text
//! bench-shape-floor --listen 127.0.0.1:PORT --backend 127.0.0.1:PORT [--workers N]
//! ```
//! `--workers` defaults to wscgi's default (8). Messages of up to 125 bytes, unfragmented,
//! as the echo scenario sends; loopback only.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use mio::net::TcpStream as MioStream;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

#[path = "ws_bits.rs"]
mod ws_bits;
use ws_bits::{text_frame, upgrade};

const BELL: Token = Token(usize::MAX);
/// The longest reply body taken from the backend.
const MAX_REPLY: usize = 1 << 20;

/// One client's state on the reactor.
struct Client {
    sock: MioStream,
    input: Vec<u8>,
    /// Frame bytes the socket did not take yet.
    output: Vec<u8>,
    /// A message is at the backend; later ones wait here, as wscgi sends one event at a time.
    busy: bool,
    waiting: VecDeque<Vec<u8>>,
}

/// Jobs for the workers: a client's key and its message.
#[derive(Default)]
struct Queue {
    state: Mutex<Jobs>,
    ready: Condvar,
}

#[derive(Default)]
struct Jobs {
    waiting: VecDeque<(usize, Vec<u8>)>,
    /// Workers waiting for a job: a push wakes one only then, as in wscgi's pool.
    idle: usize,
}

/// The reactor's doorbell: rung once until answered.
struct Bell {
    waker: Waker,
    rung: AtomicBool,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        let at = args.iter().position(|a| a == name)?;
        args.get(at + 1).cloned()
    };
    let (Some(listen), Some(backend)) = (value("--listen"), value("--backend")) else {
        eprintln!("usage: bench-shape-floor --listen ADDR --backend ADDR [--workers N]");
        std::process::exit(2);
    };
    let backend: SocketAddr = backend.parse().unwrap_or_else(|_| {
        eprintln!("--backend takes ADDR:PORT");
        std::process::exit(2);
    });
    let workers = value("--workers").map_or(8, |n| n.parse().unwrap_or(8));
    let listener = TcpListener::bind(&listen).unwrap_or_else(|e| {
        eprintln!("bench-shape-floor: cannot listen on {listen}: {e}");
        std::process::exit(1);
    });

    let mut poll = Poll::new().expect("poll");
    let bell = Arc::new(Bell {
        waker: Waker::new(poll.registry(), BELL).expect("waker"),
        rung: AtomicBool::new(false),
    });
    let queue = Arc::new(Queue::default());
    let (done_tx, done) = channel::<(usize, Vec<u8>)>();
    for _ in 0..workers {
        let (queue, done_tx, bell) = (queue.clone(), done_tx.clone(), bell.clone());
        thread::spawn(move || work(&queue, backend, &done_tx, &bell));
    }
    // The handshake is blocking, on a thread of its own: the hot path is the messages.
    let (accepted_tx, accepted) = channel::<TcpStream>();
    let for_acceptor = bell.clone();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            if upgrade(&conn).is_ok() && conn.set_nonblocking(true).is_ok() {
                let _ = accepted_tx.send(conn);
                ring(&for_acceptor);
            }
        }
    });
    serve(&mut poll, &bell, &queue, &accepted, &done);
}

fn ring(bell: &Bell) {
    if !bell.rung.swap(true, Ordering::AcqRel) {
        let _ = bell.waker.wake();
    }
}

/// The reactor loop.
fn serve(
    poll: &mut Poll,
    bell: &Bell,
    queue: &Queue,
    accepted: &Receiver<TcpStream>,
    done: &Receiver<(usize, Vec<u8>)>,
) {
    let mut clients: Slab<Client> = Slab::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            panic!("poll: {e}");
        }
        for event in events.iter() {
            if event.token() == BELL {
                bell.rung.store(false, Ordering::Release);
                for sock in accepted.try_iter() {
                    let entry = clients.vacant_entry();
                    let mut sock = MioStream::from_std(sock);
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if poll
                        .registry()
                        .register(&mut sock, Token(entry.key()), interest)
                        .is_ok()
                    {
                        entry.insert(Client {
                            sock,
                            input: Vec::new(),
                            output: Vec::new(),
                            busy: false,
                            waiting: VecDeque::new(),
                        });
                    }
                }
                for (key, body) in done.try_iter() {
                    let Some(client) = clients.get_mut(key) else {
                        continue;
                    };
                    client.output.extend_from_slice(&text_frame(&body));
                    client.busy = false;
                    if let Some(next) = client.waiting.pop_front() {
                        client.busy = true;
                        submit(queue, key, next);
                    }
                    if flush(client).is_err() {
                        drop_client(poll, &mut clients, key);
                    }
                }
                continue;
            }
            let key = event.token().0;
            let Some(client) = clients.get_mut(key) else {
                continue;
            };
            let mut alive = flush(client).is_ok();
            if alive && event.is_readable() {
                alive = read(client, &mut buf, queue, key).is_ok();
            }
            if !alive {
                drop_client(poll, &mut clients, key);
            }
        }
    }
}

fn drop_client(poll: &Poll, clients: &mut Slab<Client>, key: usize) {
    if let Some(mut client) = clients.try_remove(key) {
        let _ = poll.registry().deregister(&mut client.sock);
    }
}

/// Reads what the socket has and turns whole frames into jobs; `Err` ends the client.
fn read(client: &mut Client, buf: &mut [u8], queue: &Queue, key: usize) -> io::Result<()> {
    loop {
        match client.sock.read(buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                client.input.extend_from_slice(&buf[..n]);
                if n < buf.len() {
                    break; // Short: the socket is dry (edge-triggered, as wscgi reads).
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    while let Some((opcode, payload, used)) = frame(&client.input)? {
        client.input.drain(..used);
        match opcode {
            1 | 2 if client.busy => client.waiting.push_back(payload),
            1 | 2 => {
                client.busy = true;
                submit(queue, key, payload);
            }
            8 => return Err(io::ErrorKind::ConnectionAborted.into()),
            _ => {}
        }
    }
    Ok(())
}

/// One whole client frame at the start of `input`: opcode, unmasked payload, bytes used.
fn frame(input: &[u8]) -> io::Result<Option<(u8, Vec<u8>, usize)>> {
    let [b0, b1, ..] = *input else {
        return Ok(None);
    };
    let len = usize::from(b1 & 0x7f);
    if b0 & 0x80 == 0 || b1 & 0x80 == 0 || len > 125 {
        return Err(io::Error::other("only short, whole, masked frames"));
    }
    let Some(rest) = input.get(2..6 + len) else {
        return Ok(None);
    };
    let (mask, data) = rest.split_at(4);
    let payload = data
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[i % 4])
        .collect();
    Ok(Some((b0 & 0x0f, payload, 6 + len)))
}

fn flush(client: &mut Client) -> io::Result<()> {
    while !client.output.is_empty() {
        match client.sock.write(&client.output) {
            Ok(n) => {
                client.output.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn submit(queue: &Queue, key: usize, payload: Vec<u8>) {
    let mut state = queue.state.lock().unwrap();
    state.waiting.push_back((key, payload));
    let wake = state.idle > 0;
    drop(state);
    if wake {
        queue.ready.notify_one();
    }
}

/// One worker: takes a job, makes its request over a kept connection, hands the reply back.
fn work(queue: &Queue, backend: SocketAddr, done: &Sender<(usize, Vec<u8>)>, bell: &Bell) {
    let mut conn: Option<TcpStream> = None;
    let mut request = Vec::with_capacity(1024);
    let mut reply = Vec::with_capacity(16 * 1024);
    let mut seq = 0u64;
    loop {
        let (key, payload) = {
            let mut state = queue.state.lock().unwrap();
            loop {
                if let Some(job) = state.waiting.pop_front() {
                    break job;
                }
                state.idle += 1;
                state = queue.ready.wait(state).unwrap();
                state.idle -= 1;
            }
        };
        seq += 1;
        request.clear();
        // About the head wscgi sends for a message (same headers, same size).
        let _ = write!(
            request,
            "POST / HTTP/1.1\r\nhost: {backend}\r\ncontent-type: text/plain; charset=utf-8\r\n\
             content-length: {}\r\nWS-Event: message\r\nWS-Boot-Id: floor-0000000000000000\r\n\
             WS-Connection-Id: floor-{key:016}\r\nWS-Seq: {seq}\r\nWS-Path: /bench\r\n\
             WS-Remote-Addr: 127.0.0.1:40000\r\nWS-Message-Type: text\r\n\
             user-agent: bench-shape-floor\r\naccept: */*\r\n\r\n",
            payload.len()
        );
        request.extend_from_slice(&payload);
        let body = match exchange(&mut conn, backend, &request, &mut reply) {
            Ok(body) => body,
            Err(e) => {
                eprintln!("bench-shape-floor: backend: {e}");
                conn = None;
                continue;
            }
        };
        if done.send((key, body)).is_err() {
            return;
        }
        ring(bell);
    }
}

/// Sends `request` over the kept connection (made if there is none) and returns the reply's
/// body.
fn exchange(
    conn: &mut Option<TcpStream>,
    backend: SocketAddr,
    request: &[u8],
    reply: &mut Vec<u8>,
) -> io::Result<Vec<u8>> {
    if conn.is_none() {
        let fresh = TcpStream::connect(backend)?;
        fresh.set_nodelay(true)?;
        *conn = Some(fresh);
    }
    let sock = conn.as_mut().expect("connected above");
    sock.write_all(request)?;
    reply.clear();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = sock.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        reply.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let httparse::Status::Complete(head) = response.parse(reply).map_err(io::Error::other)?
        else {
            continue;
        };
        let length = response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| {
                std::str::from_utf8(h.value)
                    .ok()?
                    .trim()
                    .parse::<usize>()
                    .ok()
            })
            .ok_or_else(|| io::Error::other("no content-length"))?;
        if length > MAX_REPLY {
            return Err(io::Error::other("reply too large"));
        }
        if reply.len() >= head + length {
            return Ok(reply[head..head + length].to_vec());
        }
    }
}

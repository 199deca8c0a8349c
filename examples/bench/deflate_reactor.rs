//! What a compressed message costs wscgi's reactor thread: the CPU time of the thread that runs
//! the event loop, per echoed message, with and without permessage-deflate, for chat-like JSON
//! of several sizes; and the longest round trip of another connection's pings meanwhile. wscgi
//! runs in-process (its reactor on a thread of its own) with an echo backend on a thread; the
//! client compresses with flate2 at level 1, as a browser would. Linux only (it reads
//! `/proc/self/task/*/schedstat`). For README, "Compression".
//! `cargo run --release --example bench-deflate-reactor`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use flate2::{Compress, Compression, FlushCompress};

#[path = "chat_json.rs"]
mod chat_json;
use chat_json::json;

/// On-CPU time of a thread, in nanoseconds.
fn cpu_ns(schedstat: &str) -> u64 {
    let text = std::fs::read_to_string(schedstat).expect("schedstat");
    text.split_whitespace().next().unwrap().parse().unwrap()
}

fn thread_schedstat(name: &str) -> String {
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let path = task.unwrap().path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim_end() == name {
            return path.join("schedstat").display().to_string();
        }
    }
    panic!("no thread {name}");
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::new(1), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
    while out.len() == out.capacity() {
        out.reserve(out.capacity());
        c.compress_vec(&[], &mut out, FlushCompress::Sync).unwrap();
    }
    out.truncate(out.len() - 4);
    out
}

/// A masked client frame (see `wscgi::testing::client_frame`).
fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    wscgi::testing::client_frame(first, payload, [0x5a, 0x17, 0xc3, 0x81])
}

fn read_frame(s: &mut TcpStream) -> (u8, usize) {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).unwrap();
    let len = match head[1] {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).unwrap();
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).unwrap();
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).unwrap();
    (head[0], len)
}

fn open(addr: std::net::SocketAddr, deflate: bool) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let offer = match deflate {
        true => "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
        false => "",
    };
    let request = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
    );
    s.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    s
}

/// An HTTP backend that answers every request with its body.
fn echo_backend() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = vec![0u8; 65536];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match conn.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    while buf.len() < end + 4 + len {
                        match conn.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body: Vec<u8> = buf.drain(..end + 4 + len).skip(end + 4).collect();
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    if conn
                        .write_all(&[response.as_bytes(), &body].concat())
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn main() {
    let backend = format!("http://{}/", echo_backend());
    let args: Vec<String> = [
        "--backend",
        &backend,
        "--listen",
        "127.0.0.1:0",
        "--push-listen",
        "127.0.0.1:0",
        "--workers",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let no_env = |_: &str| -> Option<String> { None };
    let Ok(wscgi::config::Command::Run(config)) = wscgi::config::parse(&args, &no_env) else {
        panic!("bad arguments");
    };
    let (tx, rx) = std::sync::mpsc::channel();
    thread::Builder::new()
        .name("reactor".into())
        .spawn(move || {
            let server = wscgi::Server::bind(config).unwrap();
            tx.send(server.ws_addr()).unwrap();
            server.run().unwrap();
        })
        .unwrap();
    let addr = rx.recv().unwrap();
    let reactor = thread_schedstat("reactor");
    println!(
        "| message | on the wire | reactor CPU per echo, deflate off | deflate on | longest ping round trip meanwhile (off / on) |"
    );
    println!("|---|---|---|---|---|");
    for size in [4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20] {
        let message = json(size);
        let packed = deflate(&message);
        let runs = ((64 << 20) / size).clamp(20, 400);
        let mut cells = Vec::new();
        let mut pings = Vec::new();
        for compressed in [false, true] {
            let frame = match compressed {
                true => client_frame(0xc1, &packed),
                false => client_frame(0x81, &message),
            };
            let mut s = open(addr, compressed);
            let mut pinger = open(addr, compressed);
            for _ in 0..3 {
                s.write_all(&frame).unwrap();
                read_frame(&mut s);
            }
            let stop = Arc::new(AtomicBool::new(false));
            let stopped = stop.clone();
            let ping = thread::spawn(move || {
                let mut longest = Duration::ZERO;
                while !stopped.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    pinger.write_all(&client_frame(0x89, b"ping")).unwrap();
                    assert_eq!(read_frame(&mut pinger).0, 0x8a);
                    longest = longest.max(sent.elapsed());
                    thread::sleep(Duration::from_millis(2));
                }
                longest
            });
            let before = cpu_ns(&reactor);
            for _ in 0..runs {
                s.write_all(&frame).unwrap();
                let (first, _) = read_frame(&mut s);
                assert_eq!(first, if compressed { 0xc1 } else { 0x81 });
            }
            let per = (cpu_ns(&reactor) - before) as f64 / runs as f64 / 1000.0;
            stop.store(true, Ordering::Relaxed);
            pings.push(ping.join().unwrap());
            cells.push(format!("{per:.0} µs"));
        }
        println!(
            "| {} KiB | {} B compressed | {} | {} | {:.1} ms / {:.1} ms |",
            size >> 10,
            packed.len(),
            cells[0],
            cells[1],
            pings[0].as_secs_f64() * 1000.0,
            pings[1].as_secs_f64() * 1000.0
        );
    }
    std::process::exit(0);
}

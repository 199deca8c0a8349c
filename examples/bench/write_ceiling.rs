//! `bench-write-ceiling`: the physical limit of a fan-out on this machine, for compare.sh.
//!
//! It holds WebSocket subscribers and does nothing else: on each `POST` to its push port it
//! frames the body once and writes that one frame to every subscriber in a tight loop of
//! blocking `write`s, then answers `200`. No channels, no backend, no queues, no event loop:
//! what is left is the kernel's cost of the writes (and, on loopback, of the receivers), so
//! wscgi's publish → last delivery divided by this program's, measured by the same load
//! generator in the same run, is what wscgi's own work adds.
//!
//! ```text
//! bench-write-ceiling --listen 127.0.0.1:PORT --push-listen 127.0.0.1:PORT [--threads N]
//! ```
//! `--threads 1` writes from one thread; `--threads 0` (the default) from one per core, each
//! owning an equal share of the subscribers. Loopback only: bind addresses are not checked.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread;

#[path = "ws_bits.rs"]
mod ws_bits;
use ws_bits::{text_frame, upgrade};

/// The longest push body taken; the load generator publishes at most a few KiB.
const MAX_BODY: usize = 1 << 20;

/// What a writer thread is asked to do.
enum Job {
    /// Take one more subscriber.
    Add(TcpStream),
    /// Write this frame to every subscriber held, then report how many took it whole.
    Write(Arc<Vec<u8>>, Sender<usize>),
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        let at = args.iter().position(|a| a == name)?;
        args.get(at + 1).cloned()
    };
    let (Some(listen), Some(push)) = (value("--listen"), value("--push-listen")) else {
        eprintln!("usage: bench-write-ceiling --listen ADDR --push-listen ADDR [--threads N]");
        std::process::exit(2);
    };
    let threads = match value("--threads").map(|t| t.parse::<usize>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("--threads takes a number (0: one per core)");
            std::process::exit(2);
        }
    };
    let threads = match threads {
        0 => thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let ws = TcpListener::bind(&listen).unwrap_or_else(|e| die(&listen, e));
    let api = TcpListener::bind(&push).unwrap_or_else(|e| die(&push, e));

    let writers: Vec<Sender<Job>> = (0..threads)
        .map(|_| {
            let (tx, rx) = channel();
            thread::spawn(move || writer(rx));
            tx
        })
        .collect();
    let for_api = writers.clone();
    thread::spawn(move || {
        for conn in api.incoming().flatten() {
            let writers = for_api.clone();
            thread::spawn(move || serve_push(conn, &writers));
        }
    });
    // Subscribers are dealt out in turn, so each writer holds an equal share.
    let mut next = 0;
    for conn in ws.incoming().flatten() {
        if upgrade(&conn).is_ok() {
            let _ = writers[next % writers.len()].send(Job::Add(conn));
            next += 1;
        }
    }
}

fn die(addr: &str, e: io::Error) -> ! {
    eprintln!("bench-write-ceiling: cannot listen on {addr}: {e}");
    std::process::exit(1);
}

/// One writer thread: holds its share of the subscribers and writes frames to them.
fn writer(jobs: Receiver<Job>) {
    let mut subscribers: Vec<TcpStream> = Vec::new();
    for job in jobs {
        match job {
            Job::Add(conn) => subscribers.push(conn),
            Job::Write(frame, done) => {
                // The tight loop this program exists for. A subscriber that fails is dropped.
                subscribers.retain_mut(|s| s.write_all(&frame).is_ok());
                let _ = done.send(subscribers.len());
            }
        }
    }
}

/// One push-API connection: keep-alive `POST`s, each one fan-out.
fn serve_push(conn: TcpStream, writers: &[Sender<Job>]) {
    let _ = conn.set_nodelay(true);
    let mut reader = BufReader::new(&conn);
    let mut line = String::new();
    loop {
        let mut length = 0usize;
        let mut first = true;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let l = line.trim_end();
            if l.is_empty() && !first {
                break;
            }
            first = false;
            if let Some((name, value)) = l.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        if length > MAX_BODY {
            return;
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let frame = Arc::new(text_frame(&body));
        let (done, reached) = channel();
        for w in writers {
            let _ = w.send(Job::Write(frame.clone(), done.clone()));
        }
        drop(done);
        let delivered: usize = reached.iter().sum();
        let json = format!("{{\"delivered\":{delivered}}}");
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
            json.len()
        );
        if (&conn).write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

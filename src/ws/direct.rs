//! One message written straight to many sockets, by several threads at once.
//!
//! A publish to thousands of clients costs one write(2) each, and on Linux each write to a
//! local peer also runs the receiving side's TCP processing inside the same call: a large
//! fan-out is bound by kernel time on one core. For those the hub has a few helper threads
//! ([`Writers`]) make a share of the writes while the reactor makes its own and then waits
//! (every write is non-blocking, so the wait is bounded by the work itself). Only connections
//! with nothing queued are written to directly, so bytes stay in order; whatever a socket does
//! not take is queued as usual afterwards, on the reactor. Only plain sockets: a TLS
//! connection's frames are queued and encrypted on the reactor.

use std::cell::OnceCell;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::mpsc::{self, Sender};
use std::thread;

use log::warn;

use mio::net::TcpStream;
use tungstenite::Bytes;

use super::conn::{Conn, Phase};
use super::message::Frames;

impl Conn {
    /// The socket and this connection's frame of the message, when the frame may be written to
    /// the socket directly: open, nothing queued, and no compression context of its own (its
    /// frame is then one that others share). The outcome goes back through
    /// `Conn::send_message` (`Written::Directly`), which picks the same frame.
    pub fn direct_target(&self, frames: &mut Frames) -> Option<(&TcpStream, Bytes)> {
        match &self.phase {
            // TLS connections encrypt on the reactor: their frames are queued instead. A replay
            // owns the socket until it caught up (see `ws::replay`).
            Phase::Open { wire, .. } if wire.out.is_empty() && !self.replaying() => {
                let compressed = self.deflate.shared_frame(frames).ok()?;
                let frame = compressed.map_or_else(|| frames.plain(), |c| c.frame);
                Some((wire.sock.plain_socket()?, frame))
            }
            _ => None,
        }
    }
}

/// The helper threads of large fan-outs, started at the first one and kept. A thread started
/// for each fan-out cost its start (a clone, a stack) and, new to the scheduler, waited behind
/// the threads already running, the load's readers included; a kept thread woken for the work
/// runs at once. On 2 cores a fan-out to 1,000 took about half again the write ceiling's time
/// that way.
pub struct Writers {
    /// Threads a fan-out is shared among, the caller's included.
    threads: usize,
    helpers: OnceCell<Vec<Sender<Batch>>>,
}

/// A helper's share: sockets by descriptor (see [`Writers::write`] for why that is sound), the
/// bytes for each, and where its outcomes go.
struct Batch {
    part: usize,
    targets: Vec<(RawFd, Bytes)>,
    done: Sender<(usize, Vec<io::Result<usize>>)>,
}

impl Writers {
    pub fn new(threads: usize) -> Writers {
        Writers {
            threads: threads.max(1),
            helpers: OnceCell::new(),
        }
    }

    /// One thread per core, up to four.
    pub fn per_core() -> Writers {
        Writers::new(thread::available_parallelism().map_or(1, |n| n.get().min(4)))
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Writes each target's bytes once to its socket, shared among the threads (this one
    /// included). Returns each write's outcome in the order of `targets`: bytes written (0
    /// when the socket was full), or the error. No socket may be listed twice.
    ///
    /// Helpers get descriptors, not the borrowed sockets (they outlive this call). That is
    /// sound because this call returns only after every helper handed back its outcomes or is
    /// gone (a helper that is gone writes nothing), and until then the borrow of `targets`
    /// keeps every socket open.
    pub fn write(&self, targets: &[(&TcpStream, Bytes)]) -> Vec<io::Result<usize>> {
        let per_thread = targets.len().div_ceil(self.threads).max(1);
        let parts: Vec<_> = targets.chunks(per_thread).collect();
        let helpers = self.helpers.get_or_init(|| start(self.threads - 1));
        let (done, outcomes) = mpsc::channel();
        let mut results: Vec<Option<Vec<io::Result<usize>>>> = parts.iter().map(|_| None).collect();
        let mut handed = 0;
        for (part, targets) in parts.iter().enumerate().skip(1) {
            let batch = Batch {
                part,
                targets: targets
                    .iter()
                    .map(|(s, b)| (s.as_raw_fd(), b.clone()))
                    .collect(),
                done: done.clone(),
            };
            match helpers.get(part - 1).map(|h| h.send(batch)) {
                Some(Ok(())) => handed += 1,
                // No helper (it could not be started, or it is gone): this thread writes.
                _ => results[part] = Some(write_each(targets)),
            }
        }
        drop(done);
        if let Some(own) = parts.first() {
            results[0] = Some(write_each(own));
        }
        for _ in 0..handed {
            let Ok((part, written)) = outcomes.recv() else {
                break; // Every helper left is gone.
            };
            results[part] = Some(written);
        }
        let failed = || Err(io::Error::other("writer failed"));
        parts
            .iter()
            .zip(results)
            .flat_map(|(part, r)| r.unwrap_or_else(|| part.iter().map(|_| failed()).collect()))
            .collect()
    }
}

/// Starts up to `n` helpers; fewer if the system has no threads to give.
fn start(n: usize) -> Vec<Sender<Batch>> {
    let mut helpers = Vec::with_capacity(n);
    for _ in 0..n {
        let (jobs, batches) = mpsc::channel::<Batch>();
        let spawned = thread::Builder::new()
            .name("wscgi-fanout".into())
            .spawn(move || {
                for batch in batches {
                    let written = batch.targets.iter().map(|(fd, b)| send(*fd, b)).collect();
                    let _ = batch.done.send((batch.part, written));
                }
            });
        match spawned {
            Ok(_) => helpers.push(jobs),
            Err(e) => {
                warn!("cannot start a fan-out writer thread: {e}");
                break;
            }
        }
    }
    helpers
}

/// One non-blocking send of `bytes` on socket `fd`: bytes taken (0 when the socket is full), or
/// the error.
fn send(fd: RawFd, bytes: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `bytes` is a valid buffer of that length; `fd` is a socket kept open for the
        // duration (see `Writers::write`). MSG_NOSIGNAL: a closed peer is an error, not SIGPIPE.
        let n = unsafe {
            libc::send(
                fd,
                bytes.as_ptr().cast(),
                bytes.len(),
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
            )
        };
        if let Ok(n) = usize::try_from(n) {
            return Ok(n);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(0),
            _ => return Err(e),
        }
    }
}

/// This thread's share: the same `send` the helpers make, on sockets it borrows.
fn write_each(targets: &[(&TcpStream, Bytes)]) -> Vec<io::Result<usize>> {
    targets
        .iter()
        .map(|(sock, bytes)| send(sock.as_raw_fd(), bytes))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream as StdStream};

    /// `n` connected pairs: our non-blocking ends, and the peers' blocking ends.
    fn pairs(n: usize) -> (Vec<TcpStream>, Vec<StdStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        (0..n)
            .map(|_| {
                let ours = StdStream::connect(addr).unwrap();
                let (peer, _) = listener.accept().unwrap();
                ours.set_nonblocking(true).unwrap();
                (TcpStream::from_std(ours), peer)
            })
            .unzip()
    }

    #[test]
    fn every_socket_gets_the_bytes_once_and_results_keep_their_order() {
        let (ours, mut peers) = pairs(37);
        let hello = Bytes::from_static(b"hello");
        let targets: Vec<_> = ours.iter().map(|s| (s, hello.clone())).collect();
        for threads in [1, 2, 3, 8, 100] {
            let results = Writers::new(threads).write(&targets);
            assert_eq!(results.len(), 37, "{threads} threads");
            assert!(
                results.iter().all(|r| matches!(r, Ok(5))),
                "{threads} threads"
            );
            for peer in &mut peers {
                let mut got = [0u8; 5];
                peer.read_exact(&mut got).unwrap();
                assert_eq!(&got, b"hello");
            }
        }
    }

    #[test]
    fn a_full_socket_reports_what_it_took() {
        let (ours, _peers) = pairs(3);
        // Nobody reads: the middle socket fills up and takes only part of a large message.
        let big = Bytes::from(vec![7u8; 64 << 20]);
        let middle = [(&ours[1], big.clone())];
        let writers = Writers::new(2);
        let first = writers.write(&middle).remove(0).unwrap();
        assert!(0 < first && first < big.len(), "took {first}");
        let x = Bytes::from_static(b"x");
        let targets: Vec<_> = ours.iter().map(|s| (s, x.clone())).collect();
        let results = writers.write(&targets);
        assert!(matches!(results[0], Ok(1)) && matches!(results[2], Ok(1)));
        assert!(matches!(results[1], Ok(0)), "full: {:?}", results[1]);
    }
}

//! One message written straight to many sockets, by several threads at once.
//!
//! A publish to thousands of clients costs one write(2) each, and on Linux each write to a
//! local peer also runs the receiving side's TCP processing inside the same call: a large
//! fan-out is bound by kernel time on one core. For those the hub has a few short-lived
//! threads make the writes in parallel while the reactor waits (every write is non-blocking,
//! so the wait is bounded by the work itself). Only connections with nothing queued are
//! written to directly, so bytes stay in order; whatever a socket does not take is queued as
//! usual afterwards, on the reactor. Only plain sockets: a TLS connection's frames are queued
//! and encrypted on the reactor.

use std::io::{self, Write};
use std::thread;

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

/// Writes each target's bytes once to its socket, spread over up to `threads` threads (this
/// one included). Returns each write's outcome in the order of `targets`: bytes written (0
/// when the socket was full), or the error.
pub fn write_parallel(targets: &[(&TcpStream, Bytes)], threads: usize) -> Vec<io::Result<usize>> {
    let per_thread = targets.len().div_ceil(threads.max(1)).max(1);
    thread::scope(|scope| {
        let mut parts = targets.chunks(per_thread);
        let own = parts.next().unwrap_or_default();
        let helpers: Vec<_> = parts
            .map(|part| {
                let spawned = thread::Builder::new()
                    .name("wscgi-fanout".into())
                    .spawn_scoped(scope, move || write_each(part));
                (part, spawned)
            })
            .collect();
        let mut results = write_each(own);
        for (part, spawned) in helpers {
            // No thread (resources short): this one does that part too.
            let Ok(handle) = spawned else {
                results.extend(write_each(part));
                continue;
            };
            match handle.join() {
                Ok(part_results) => results.extend(part_results),
                Err(_) => {
                    results.extend(part.iter().map(|_| Err(io::Error::other("writer failed"))))
                }
            }
        }
        results
    })
}

fn write_each(targets: &[(&TcpStream, Bytes)]) -> Vec<io::Result<usize>> {
    targets
        .iter()
        .map(|(sock, bytes)| {
            let mut sock = *sock;
            loop {
                match sock.write(bytes) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(0),
                    other => break other,
                }
            }
        })
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
            let results = write_parallel(&targets, threads);
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
        let first = write_parallel(&middle, 2).remove(0).unwrap();
        assert!(0 < first && first < big.len(), "took {first}");
        let x = Bytes::from_static(b"x");
        let targets: Vec<_> = ours.iter().map(|s| (s, x.clone())).collect();
        let results = write_parallel(&targets, 2);
        assert!(matches!(results[0], Ok(1)) && matches!(results[2], Ok(1)));
        assert!(matches!(results[1], Ok(0)), "full: {:?}", results[1]);
    }
}

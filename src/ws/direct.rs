//! One message written straight to many sockets, by several threads at once.
//!
//! A publish to thousands of clients costs one write(2) each, and on Linux each write to a
//! local peer also runs the receiving side's TCP processing inside the same call: a large
//! fan-out is bound by kernel time on one core. For those the hub has a few short-lived
//! threads make the writes in parallel while the reactor waits (every write is non-blocking,
//! so the wait is bounded by the work itself). Only connections with nothing queued are
//! written to directly, so bytes stay in order; whatever a socket does not take is queued as
//! usual afterwards, on the reactor.

use std::io::{self, Write};
use std::thread;

use log::debug;
use mio::net::TcpStream;

use super::close;
use super::conn::{Conn, Phase, SendError};
use super::frame::Encoded;

impl Conn {
    /// The socket, when a message may be written to it directly: open, and nothing queued.
    pub fn direct_socket(&self) -> Option<&TcpStream> {
        match &self.phase {
            Phase::Open { wire, .. } if wire.out.is_empty() => Some(&wire.sock),
            _ => None,
        }
    }

    /// Accounts for a direct write of `message` (see [`write_parallel`]): the bytes the socket
    /// did not take are queued; a failed write drops the connection.
    pub fn wrote_directly(
        &mut self,
        message: &Encoded,
        written: io::Result<usize>,
    ) -> Result<(), SendError> {
        match written {
            Ok(sent) => self.send_rest(message.clone(), sent),
            Err(e) => {
                debug!("{}: write failed: {e}", self.remote);
                self.drop_socket(close::ABNORMAL, "write failed");
                Err(SendError::NotOpen)
            }
        }
    }
}

/// Writes `bytes` once to each socket, spread over up to `threads` threads (this one
/// included). Returns each write's outcome in the order of `sockets`: bytes written (0 when
/// the socket was full), or the error.
pub fn write_parallel(
    sockets: &[&TcpStream],
    bytes: &[u8],
    threads: usize,
) -> Vec<io::Result<usize>> {
    let per_thread = sockets.len().div_ceil(threads.max(1)).max(1);
    thread::scope(|scope| {
        let mut parts = sockets.chunks(per_thread);
        let own = parts.next().unwrap_or_default();
        let helpers: Vec<_> = parts
            .map(|part| {
                let spawned = thread::Builder::new()
                    .name("wscgi-fanout".into())
                    .spawn_scoped(scope, move || write_each(part, bytes));
                (part, spawned)
            })
            .collect();
        let mut results = write_each(own, bytes);
        for (part, spawned) in helpers {
            // No thread (resources short): this one does that part too.
            let Ok(handle) = spawned else {
                results.extend(write_each(part, bytes));
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

fn write_each(sockets: &[&TcpStream], bytes: &[u8]) -> Vec<io::Result<usize>> {
    sockets
        .iter()
        .map(|&(mut sock)| {
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
        let sockets: Vec<&TcpStream> = ours.iter().collect();
        for threads in [1, 2, 3, 8, 100] {
            let results = write_parallel(&sockets, b"hello", threads);
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
        let big = vec![7u8; 64 << 20];
        let middle = [&ours[1]];
        let first = write_parallel(&middle, &big, 2).remove(0).unwrap();
        assert!(0 < first && first < big.len(), "took {first}");
        let sockets: Vec<&TcpStream> = ours.iter().collect();
        let results = write_parallel(&sockets, b"x", 2);
        assert!(matches!(results[0], Ok(1)) && matches!(results[2], Ok(1)));
        assert!(matches!(results[1], Ok(0)), "full: {:?}", results[1]);
    }
}

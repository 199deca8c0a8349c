//! One TLS server connection over a non-blocking socket, driven by rustls' unbuffered API.
//!
//! rustls' buffered `ServerConnection` keeps a 4 KiB receive buffer for the life of every
//! connection (measured: about 7.3 KiB in all per idle connection, for TLS 1.3 and 1.2). Here the
//! buffers are ours and exist only while they hold something: ciphertext is read into a buffer
//! on the reactor's stack and processed there; only a record cut off by the read is kept (on the
//! heap), and so are decrypted bytes the reader has not taken yet and records the socket has not
//! taken yet. An idle connection holds the rustls state and nothing else.
//!
//! Nothing here blocks: reads and writes give `WouldBlock` when the socket does, and the TLS
//! handshake runs inside reads (its replies are written as it goes; what the socket does not take
//! waits for the next write or read).

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::ServerConfig;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, InsufficientSizeError};

/// What one socket read may bring: a little more than the largest TLS record (16 KiB of
/// plaintext plus TLS 1.2's allowed 2 KiB of expansion and the header).
const READ_CHUNK: usize = 16 * 1024 + 2048 + 5;
/// Plaintext encrypted per write: one full record.
const WRITE_CHUNK: usize = 16 * 1024;
/// A partial record (or a handshake message split over records) kept between reads is at most
/// this long; rustls' own buffered API allows 64 KiB of handshake message too.
const MAX_INCOMING: usize = 64 * 1024 + READ_CHUNK;
/// Records the client has not taken yet while it keeps sending: one handshake flight (or one
/// application record) and replies rustls owes (alerts, TLS 1.3 key updates) fit many times
/// over; a client that asks for more of those and never reads is cut off.
const MAX_OUTGOING: usize = 64 * 1024 + WRITE_CHUNK;

/// The TLS side of a connection (see the module doc).
pub struct TlsStream {
    conn: UnbufferedServerConnection,
    /// Ciphertext of a record that has not fully arrived yet.
    incoming: Vec<u8>,
    /// Decrypted bytes not read yet, from `plain_at` on.
    plain: Vec<u8>,
    plain_at: usize,
    /// TLS records not written to the socket yet, from `out_at` on.
    outgoing: Vec<u8>,
    out_at: usize,
    /// The client sent close_notify: no more data will come.
    peer_closed: bool,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("handshaking", &self.conn.is_handshaking())
            .field("incoming", &self.incoming.len())
            .field("plain", &(self.plain.len() - self.plain_at))
            .field("outgoing", &(self.outgoing.len() - self.out_at))
            .finish()
    }
}

/// What the TLS state machine is asked to do besides reading.
enum Want<'a> {
    Nothing,
    /// Encrypt this application data (the handshake must be done).
    Encrypt(&'a [u8]),
    CloseNotify,
}

/// Where a run of the state machine stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// It needs more bytes from the client (the handshake is not done).
    Handshaking,
    /// Ready for application data; `took` bytes of it were encrypted (or the close_notify
    /// queued, `took` then 0).
    Open { took: usize },
    /// Both sides sent close_notify.
    Closed,
}

impl TlsStream {
    pub fn new(config: Arc<ServerConfig>) -> Result<TlsStream, rustls::Error> {
        Ok(TlsStream {
            conn: UnbufferedServerConnection::new(config)?,
            incoming: Vec::new(),
            plain: Vec::new(),
            plain_at: 0,
            outgoing: Vec::new(),
            out_at: 0,
            peer_closed: false,
        })
    }

    /// Still in the TLS handshake.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// The negotiated protocol version and ALPN protocol (None while handshaking).
    pub fn negotiated(&self) -> (Option<rustls::ProtocolVersion>, Option<&[u8]>) {
        (self.conn.protocol_version(), self.conn.alpn_protocol())
    }

    /// Decrypted bytes into `buf`. Reads the socket (and runs the handshake) only when none are
    /// left; `Ok(0)` at the end of the stream, `WouldBlock` when the socket has nothing more.
    pub fn read(&mut self, sock: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.plain_at < self.plain.len() {
                let n = buf.len().min(self.plain.len() - self.plain_at);
                buf[..n].copy_from_slice(&self.plain[self.plain_at..self.plain_at + n]);
                self.plain_at += n;
                if self.plain_at == self.plain.len() {
                    self.plain_at = 0;
                    release(&mut self.plain);
                }
                return Ok(n);
            }
            if self.peer_closed || buf.is_empty() {
                return Ok(0);
            }
            let mut chunk = [0u8; READ_CHUNK];
            let n = match sock.read(&mut chunk) {
                Ok(0) => return Ok(0),
                Ok(n) => n,
                Err(e) => return Err(e),
            };
            self.take_in(&mut chunk[..n])?;
            // Handshake replies go out now; a full socket keeps them for the next write.
            match self.flush(sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.outgoing.len() - self.out_at > MAX_OUTGOING {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "TLS: the client does not read what it is sent",
                ));
            }
        }
    }

    /// Encrypts the first bytes of `data` (up to one record) and writes what it can. Returns how
    /// many bytes were taken; `WouldBlock` when records from before still wait for the socket,
    /// or the handshake is not done.
    pub fn write(&mut self, sock: &mut TcpStream, data: &[u8]) -> io::Result<usize> {
        if !self.flush(sock)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let data = &data[..data.len().min(WRITE_CHUNK)];
        let took = match self.run_kept(Want::Encrypt(data))? {
            Stop::Open { took } => took,
            Stop::Handshaking => return Err(io::ErrorKind::WouldBlock.into()),
            Stop::Closed => return Err(io::ErrorKind::BrokenPipe.into()),
        };
        match self.flush(sock) {
            Ok(_) => Ok(took),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(took),
            Err(e) => Err(e),
        }
    }

    /// Writes the records waiting for the socket. `Ok(true)`: none left.
    pub fn flush(&mut self, sock: &mut TcpStream) -> io::Result<bool> {
        while self.out_at < self.outgoing.len() {
            match sock.write(&self.outgoing[self.out_at..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_at += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out_at = 0;
        release(&mut self.outgoing);
        Ok(true)
    }

    /// Queues close_notify (once the handshake is done) and writes what the socket takes.
    pub fn close_notify(&mut self, sock: &mut TcpStream) -> io::Result<bool> {
        self.run_kept(Want::CloseNotify)?;
        self.flush(sock)
    }

    /// Runs the state machine over freshly read ciphertext; a record cut off at the end is kept.
    fn take_in(&mut self, fresh: &mut [u8]) -> io::Result<()> {
        if self.incoming.is_empty() {
            // The common case: whole records, processed where they were read.
            let (used, _) = advance(self.parts(), fresh, Want::Nothing)?;
            self.incoming.extend_from_slice(&fresh[used..]);
        } else {
            if self.incoming.len() + fresh.len() > MAX_INCOMING {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "TLS message too large",
                ));
            }
            self.incoming.extend_from_slice(fresh);
            self.run_kept(Want::Nothing)?;
        }
        Ok(())
    }

    /// Runs the state machine over the kept partial record (often none).
    fn run_kept(&mut self, want: Want) -> io::Result<Stop> {
        let mut incoming = std::mem::take(&mut self.incoming);
        let result = advance(self.parts(), &mut incoming, want);
        if let Ok((used, _)) = &result {
            incoming.drain(..*used);
        }
        self.incoming = incoming;
        if self.incoming.is_empty() {
            release(&mut self.incoming);
        }
        result.map(|(_, stop)| stop)
    }

    fn parts(&mut self) -> Parts<'_> {
        Parts {
            conn: &mut self.conn,
            plain: &mut self.plain,
            outgoing: &mut self.outgoing,
            peer_closed: &mut self.peer_closed,
        }
    }
}

/// The fields `advance` changes, borrowed apart from the input buffer.
struct Parts<'a> {
    conn: &'a mut UnbufferedServerConnection,
    plain: &'a mut Vec<u8>,
    outgoing: &'a mut Vec<u8>,
    peer_closed: &'a mut bool,
}

/// Runs rustls over `input` until it needs more: application data goes to `plain`, records to
/// send to `outgoing`, and `want` is done once the handshake allows. Returns how many bytes of
/// `input` were used up, and where it stopped.
fn advance(p: Parts, input: &mut [u8], want: Want) -> io::Result<(usize, Stop)> {
    let mut used = 0;
    loop {
        let status = p.conn.process_tls_records(&mut input[used..]);
        let mut discard = status.discard;
        let state = status.state.map_err(tls_error)?;
        let stop = match state {
            // rustls' contract: each record's own `discard` adds to the status' one (0 today).
            ConnectionState::ReadTraffic(mut records) => {
                while let Some(record) = records.next_record() {
                    let record = record.map_err(tls_error)?;
                    discard += record.discard;
                    p.plain.extend_from_slice(record.payload);
                }
                None
            }
            // Early data is off (rustls' default: max_early_data_size 0), so never offered.
            ConnectionState::ReadEarlyData(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "TLS: early data, which is not accepted",
                ));
            }
            ConnectionState::EncodeTlsData(mut encode) => {
                append(
                    p.outgoing,
                    1024,
                    |out| encode.encode(out),
                    |e| match e {
                        EncodeError::InsufficientSize(InsufficientSizeError { required_size }) => {
                            Some(*required_size)
                        }
                        _ => None,
                    },
                )?;
                None
            }
            // Queued in `outgoing`, which the caller writes in order.
            ConnectionState::TransmitTlsData(transmit) => {
                transmit.done();
                None
            }
            ConnectionState::BlockedHandshake => Some(Stop::Handshaking),
            ConnectionState::PeerClosed => {
                *p.peer_closed = true;
                None
            }
            ConnectionState::Closed => Some(Stop::Closed),
            ConnectionState::WriteTraffic(mut traffic) => {
                let took = match want {
                    Want::Nothing => 0,
                    Want::Encrypt(data) => {
                        let guess = data.len() + 64;
                        append(
                            p.outgoing,
                            guess,
                            |out| traffic.encrypt(data, out),
                            too_small,
                        )?;
                        data.len()
                    }
                    Want::CloseNotify => {
                        append(
                            p.outgoing,
                            64,
                            |out| traffic.queue_close_notify(out),
                            too_small,
                        )?;
                        0
                    }
                };
                Some(Stop::Open { took })
            }
            // A state added by a later rustls: nothing we can act on.
            _ => Some(Stop::Handshaking),
        };
        used += discard;
        if let Some(stop) = stop {
            return Ok((used, stop));
        }
    }
}

/// Appends what `fill` writes to `outgoing`, growing it once if rustls says (`needs`) that
/// `guess` bytes are too few.
fn append<E: std::fmt::Display>(
    outgoing: &mut Vec<u8>,
    guess: usize,
    mut fill: impl FnMut(&mut [u8]) -> Result<usize, E>,
    needs: impl Fn(&E) -> Option<usize>,
) -> io::Result<()> {
    let start = outgoing.len();
    outgoing.resize(start + guess, 0);
    let mut result = fill(&mut outgoing[start..]);
    if let Some(size) = result.as_ref().err().and_then(&needs) {
        outgoing.resize(start + size, 0);
        result = fill(&mut outgoing[start..]);
    }
    match result {
        Ok(n) => {
            outgoing.truncate(start + n);
            Ok(())
        }
        Err(e) => {
            outgoing.truncate(start);
            Err(io::Error::other(format!("TLS: {e}")))
        }
    }
}

fn too_small(e: &EncryptError) -> Option<usize> {
    match e {
        EncryptError::InsufficientSize(InsufficientSizeError { required_size }) => {
            Some(*required_size)
        }
        _ => None,
    }
}

/// Empties `buf` and gives its memory back: an idle connection keeps no buffer at all (rustls
/// allocates per record anyway, so one more allocation per burst costs little).
fn release(buf: &mut Vec<u8>) {
    *buf = Vec::new();
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, TlsFailure(e))
}

/// A TLS protocol failure (a client that is not speaking TLS, say), inside an `io::Error`.
#[derive(Debug)]
struct TlsFailure(rustls::Error);

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TLS: {}", self.0)
    }
}

impl std::error::Error for TlsFailure {}

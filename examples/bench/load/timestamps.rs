//! Receive times: the socket wrapper tungstenite reads through, which uses `recvmsg` to pick up
//! the kernel's receive timestamp (`SO_TIMESTAMPNS`) of the data just read, so latencies do not
//! include the generator's own queueing between the packet's arrival and its read.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::time::{SystemTime, UNIX_EPOCH};

use mio::net::TcpStream;
use tungstenite::WebSocket;

use crate::tls::{self, Session};

/// The socket under tungstenite: reads with recvmsg to pick up the kernel's
/// receive timestamp of the data just read.
pub struct TsStream {
    pub inner: TcpStream,
    pub timestamps: bool,
    /// CLOCK_REALTIME ns of the last received segment (0: none yet).
    pub rx_ns: u64,
    /// `Some(true)` after a short read while the poll reported plain data: the socket is dry,
    /// and the read that would only say WouldBlock is skipped (the edge-triggered poll reports
    /// what comes later). `None` when the poll reported a close or an error: read to the end.
    /// With TLS it is about the socket under the TLS session, which holds what it decrypted.
    pub dry: Option<bool>,
    /// `wss://`: the TLS session reads and writes are made through (see `tls.rs`).
    pub tls: Option<Session>,
}

/// `SO_TIMESTAMPNS` (`SO_TIMESTAMPNS_OLD`, a 64-bit timespec on 64-bit
/// Linux); the control message type has the same number.
const SO_TIMESTAMPNS: libc::c_int = 35;

impl Read for TsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Taken out for the call, so that the session reads the socket through `self`.
        if let Some(mut session) = self.tls.take() {
            let read = tls::read(&mut session, self, buf);
            self.tls = Some(session);
            return read;
        }
        if self.dry == Some(true) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.read_socket(buf)?;
        if let Some(dry) = &mut self.dry {
            *dry = n > 0 && n < buf.len();
        }
        Ok(n)
    }
}

impl TsStream {
    fn read_socket(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.timestamps {
            return self.inner.read(buf);
        }
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control = [0u64; 16];
        // SAFETY: msghdr is plain data; every pointer in it outlives the call.
        let n = unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = std::mem::size_of_val(&control) as _;
            let n = libc::recvmsg(self.inner.as_raw_fd(), &mut msg, 0);
            if n > 0 {
                let mut c = libc::CMSG_FIRSTHDR(&msg);
                while !c.is_null() {
                    if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == SO_TIMESTAMPNS {
                        let ts: libc::timespec =
                            std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                        self.rx_ns = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
                    }
                    c = libc::CMSG_NXTHDR(&msg, c);
                }
            }
            n
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}

impl Write for TsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.tls.as_mut() {
            Some(session) => tls::write(session, &mut self.inner, buf),
            None => self.inner.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.tls.as_mut() {
            Some(session) => tls::flush(session, &mut self.inner),
            None => self.inner.flush(),
        }
    }
}

/// Asks the kernel for receive timestamps on `stream`; false when it refuses.
pub fn enable_timestamps(stream: &TcpStream) -> bool {
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads an int from the pointer we pass.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_TIMESTAMPNS,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as _,
        ) == 0
    }
}

/// Now, as CLOCK_REALTIME ns: the clock the kernel's receive timestamps use.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// When the frame just read arrived: the kernel's timestamp of the last data read, or now when
/// there is none (timestamps off or refused).
pub fn rx_time(ws: &WebSocket<TsStream>) -> u64 {
    match ws.get_ref().rx_ns {
        0 => now_ns(),
        ns => ns,
    }
}

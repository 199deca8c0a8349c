//! SIGTERM and SIGINT start a graceful shutdown; SIGHUP reloads the TLS certificate (and is
//! only logged without TLS).
//!
//! A signal handler may do almost nothing safely, so it only writes the signal number to a
//! pipe; a small thread reads the pipe and asks the server to shut down like any other caller.

use std::io::{self, Read};
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicI32, Ordering};
use std::thread;

use log::{info, warn};

use crate::server::ShutdownHandle;

/// The write end of the pipe, for the handler; -1 until installed.
static PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signal: libc::c_int) {
    let fd = PIPE.load(Ordering::Relaxed);
    let byte = signal as u8;
    // SAFETY: write(2) is async-signal-safe; the buffer is a local byte.
    unsafe {
        libc::write(fd, (&byte as *const u8).cast(), 1);
    }
}

/// Routes SIGTERM/SIGINT to `handle.shutdown()` and SIGHUP to `on_hup` (run on the signal
/// thread). Call once, from `main`.
pub fn install(handle: ShutdownHandle, on_hup: impl Fn() + Send + 'static) -> io::Result<()> {
    let (mut reader, writer) = UnixStream::pair()?;
    PIPE.store(writer.into_raw_fd(), Ordering::Relaxed);
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: the handler only calls write(2); sigaction is given a zeroed, valid struct.
        let ok = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut()) == 0
        };
        if !ok {
            return Err(io::Error::last_os_error());
        }
    }
    thread::Builder::new()
        .name("wscgi-signals".into())
        .spawn(move || {
            let mut byte = [0u8; 1];
            let mut stopping = false;
            while reader.read_exact(&mut byte).is_ok() {
                match libc::c_int::from(byte[0]) {
                    libc::SIGHUP => on_hup(),
                    _ if stopping => warn!("already shutting down"),
                    signal => {
                        info!("signal {signal}: shutting down gracefully");
                        stopping = true;
                        handle.shutdown();
                    }
                }
            }
        })?;
    Ok(())
}

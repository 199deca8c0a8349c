//! systemd socket activation: listening sockets inherited from systemd, so a restart of wscgi
//! never refuses a client (the kernel queues them while wscgi starts).
//!
//! systemd passes `LISTEN_PID` (our pid) and `LISTEN_FDS` (how many), the sockets starting at
//! file descriptor 3, in the order of the `.socket` unit's `ListenStream=` lines: the first is
//! the WebSocket listener, an optional second the push API.

use std::net::TcpListener;
use std::os::fd::FromRawFd;

use crate::server::Listeners;

const FIRST_FD: i32 = 3;

/// The inherited listeners, if wscgi was socket-activated.
pub fn listeners(env: &dyn Fn(&str) -> Option<String>) -> Listeners {
    let ours = env("LISTEN_PID").and_then(|p| p.parse::<u32>().ok()) == Some(std::process::id());
    let count = env("LISTEN_FDS")
        .and_then(|n| n.parse::<i32>().ok())
        .unwrap_or(0);
    if !ours || count < 1 {
        return Listeners::default();
    }
    // SAFETY: systemd hands these descriptors to this process (LISTEN_PID matched) and nothing
    // else in wscgi owns them; each is wrapped exactly once. systemd passes them without
    // FD_CLOEXEC; set it, or every CGI program would inherit the listening sockets.
    let take = |fd: i32| unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        TcpListener::from_raw_fd(fd)
    };
    Listeners {
        ws: Some(take(FIRST_FD)),
        push: (count >= 2).then(|| take(FIRST_FD + 1)),
    }
}

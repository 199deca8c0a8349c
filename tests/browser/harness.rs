//! Real programs for tests/browser.rs and tests/deploy.rs (`#[path = "browser/harness.rs"]`):
//! finding them (missing: a loud skip, or a failure when `CI` is set), temporary directories,
//! free ports, and children that lead their own process group and are killed with it on drop,
//! among them the `wscgi` binary (restartable on the same port) and wscgi under
//! systemd-socket-activate. (php-fpm, nginx and Caddy: proxies.rs.)
#![allow(dead_code)] // each test binary uses a part

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

// Each test binary uses only some of these; the rest would warn.
#[allow(unused_imports)]
pub use crate::support::procs::{Group, START, TempDir, free_port, listening, require, skip};

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
pub const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/chat");
/// The demo's page: what `--static` and the proxies serve (the scripts stay one level up).
pub const PUBLIC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/chat/public");
pub const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/deploy");

/// Whether `path` exists; see [`require`] for a missing one.
pub fn require_path(path: &Path, what: &str) -> bool {
    let found = path.exists();
    if !found {
        skip(&format!("{} does not exist", path.display()), what);
    }
    found
}

/// The real `wscgi` binary on fixed ports (chosen free at run time), so that it can be stopped
/// and started again on the same address. Its log: `wscgi-<n>.log` in `dir`.
pub struct WscgiProc {
    group: Option<Group>,
    pub port: u16,
    pub push_port: u16,
    args: Vec<String>,
    starts: usize,
}

impl WscgiProc {
    pub fn start(args: &[&str], dir: &TempDir) -> WscgiProc {
        let mut w = WscgiProc {
            group: None,
            port: free_port(),
            push_port: free_port(),
            args: args.iter().map(|s| s.to_string()).collect(),
            starts: 0,
        };
        w.spawn(dir);
        w
    }

    fn spawn(&mut self, dir: &TempDir) {
        self.starts += 1;
        let log = dir.path(&format!("wscgi-{}.log", self.starts));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wscgi"));
        cmd.env_clear()
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--push-listen")
            .arg(format!("127.0.0.1:{}", self.push_port))
            .args(["--shutdown-timeout", "5s", "--log-level", "debug"])
            .args(&self.args);
        let mut group = Group::spawn(cmd, "wscgi", &log);
        let port = self.port;
        group.wait_ready("wscgi", &log, || listening(port));
        self.group = Some(group);
    }

    /// SIGTERM (a graceful stop: clients get 1001, exit 0), then a new wscgi on the same ports.
    pub fn restart(&mut self, dir: &TempDir) {
        let mut old = self.group.take().expect("wscgi is running");
        let status = old.terminate(START);
        assert!(
            status.is_some_and(|s| s.success()),
            "SIGTERM: wscgi should stop gracefully with exit 0 within {START:?}, got {status:?} \
             (signal {:?}); log:\n{}",
            status.and_then(|s| s.signal()),
            dir.read(&format!("wscgi-{}.log", self.starts))
        );
        self.spawn(dir);
    }

    /// The running process (to send it signals).
    pub fn pid(&self) -> libc::pid_t {
        self.group.as_ref().expect("wscgi is running").pid()
    }

    /// The log of the running process.
    pub fn log(&self, dir: &TempDir) -> String {
        dir.read(&format!("wscgi-{}.log", self.starts))
    }

    /// Every log of this wscgi so far (for failure messages).
    pub fn logs(&self, dir: &TempDir) -> String {
        (1..=self.starts)
            .map(|n| format!("--- wscgi-{n}.log\n{}", dir.read(&format!("wscgi-{n}.log"))))
            .collect()
    }
}

/// systemd-socket-activate with the two sockets of wscgi.socket, in their order, running
/// `wscgi args`; its log (it says where it listens) in `dir/activate.log`.
pub fn socket_activate(dir: &TempDir, args: &[&str]) -> Option<(Group, u16, u16)> {
    let tool = require("systemd-socket-activate", "the socket activation test")?;
    let (ws, push) = (free_port(), free_port());
    let mut cmd = Command::new(tool);
    cmd.arg("-l").arg(format!("127.0.0.1:{ws}"));
    cmd.arg("-l").arg(format!("127.0.0.1:{push}"));
    cmd.arg(env!("CARGO_BIN_EXE_wscgi")).args(args);
    let log = dir.path("activate.log");
    let mut group = Group::spawn(cmd, "systemd-socket-activate", &log);
    // Not a connection: any connection would already start wscgi.
    let want = [ws, push].map(|p| format!("Listening on 127.0.0.1:{p} as"));
    group.wait_ready("systemd-socket-activate", &log, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        want.iter().all(|w| text.contains(w.as_str()))
    });
    Some((group, ws, push))
}

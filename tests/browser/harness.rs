//! Real programs for tests/browser.rs and tests/deploy.rs (`#[path = "browser/harness.rs"]`):
//! finding them (missing: a loud skip, or a failure when `CI` is set), temporary directories,
//! free ports, and children that lead their own process group and are killed with it on drop,
//! among them the `wscgi` binary (restartable on the same port) and wscgi under
//! systemd-socket-activate. (php-fpm, nginx and Caddy: proxies.rs.)
#![allow(dead_code)] // each test binary uses a part

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
pub const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/chat");
pub const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/deploy");
/// How long php-fpm, nginx or wscgi may take to start listening, or wscgi to stop.
const START: Duration = Duration::from_secs(10);
const DIRS: [&str; 6] = [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// The program `name` in the usual directories; `php-fpm*` also finds `php-fpm8.2`. Missing:
/// panics when `CI` is set (.ci/run installs it), otherwise a loud note and None.
pub fn require(name: &str, what: &str) -> Option<PathBuf> {
    let matches = |file: &str| match name.strip_suffix('*') {
        Some(stem) => file
            .strip_prefix(stem)
            .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.')),
        None => file == name,
    };
    let found = DIRS.iter().find_map(|dir| {
        let mut hits: Vec<PathBuf> = std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && matches(&p.file_name().unwrap().to_string_lossy()))
            .collect();
        hits.sort();
        hits.pop()
    });
    if found.is_none() {
        skip(&format!("{name} is not in {}", DIRS.join(" or ")), what);
    }
    found
}

/// Whether `path` exists; see [`require`] for a missing one.
pub fn require_path(path: &Path, what: &str) -> bool {
    let found = path.exists();
    if !found {
        skip(&format!("{} does not exist", path.display()), what);
    }
    found
}

/// Under CI a failure; otherwise a note written straight to stderr (the test harness hides
/// eprintln! output of a passing test).
pub fn skip(why: &str, what: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{why}; CI is set, so this is a failure (.ci/run installs it)");
    }
    let bar = "!".repeat(72);
    let note = format!("\n{bar}\n!!! SKIPPED: {why}\n!!! {what} did not run\n{bar}\n");
    let _ = std::io::stderr().write_all(note.as_bytes());
}

/// A directory of its own under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("wscgi-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// The file's text, or "" (for failure messages).
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port nothing listens on right now (bound to 0, read, released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

pub fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A child leading its own process group; drop kills the whole group and reaps the child.
pub struct Group {
    child: Child,
    /// Set once the leader is reaped: from then on its pid may name someone else's group.
    exit: Option<ExitStatus>,
}

impl Group {
    /// `child` must have been spawned with `process_group(0)`.
    pub fn new(child: Child) -> Group {
        Group { child, exit: None }
    }

    /// Spawns `cmd` in a new process group, stdin from /dev/null, stdout and stderr to `log`.
    pub fn spawn(mut cmd: Command, what: &str, log: &Path) -> Group {
        let out = std::fs::File::create(log).expect("create a log file");
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone().expect("log handle"))
            .stderr(out)
            .process_group(0);
        Group::new(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("cannot start {what}: {e}")),
        )
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    pub fn pid(&self) -> libc::pid_t {
        libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t")
    }

    /// The exit status, if the leader has exited (it is reaped then).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// Polls `ready` until it holds; panics with the log if the child exits or time is up.
    pub fn wait_ready(&mut self, what: &str, log: &Path, ready: impl Fn() -> bool) {
        let deadline = Instant::now() + START;
        while !ready() {
            let log = || std::fs::read_to_string(log).unwrap_or_default();
            if let Some(status) = self.exited() {
                panic!("{what} exited at start ({status}):\n{}", log());
            }
            assert!(
                Instant::now() < deadline,
                "{what} not ready in {START:?}:\n{}",
                log()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The exit status within `limit`, or None if the leader is still running.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while self.exited().is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        self.exit
    }

    /// SIGTERM to the leader alone, then [`Group::wait_exit`].
    pub fn terminate(&mut self, limit: Duration) -> Option<ExitStatus> {
        if self.exited().is_none() {
            // SAFETY: kill(2) has no memory-safety preconditions; the leader is not reaped,
            // so its pid is still ours.
            unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        }
        self.wait_exit(limit)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.exit.is_some() {
            return; // reaped: the pid no longer names our group
        }
        // SAFETY: kill(2) has no memory-safety preconditions; a negative pid names the group,
        // which still exists while its unreaped leader does.
        unsafe { libc::kill(-self.pid(), libc::SIGKILL) };
        let _ = self.child.wait();
    }
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

//! Real programs for the tests that run them (tests/support/php.rs and tests/browser/harness.rs
//! build on this; `mod support;` then `support::procs::...`): finding them (missing: a loud
//! skip, or a failure when `CI` is set), temporary directories, free ports, and children that
//! lead their own process group and are killed with it on drop.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long php-fpm, nginx or wscgi may take to start listening, or wscgi to stop.
pub const START: Duration = Duration::from_secs(10);
/// How long a dropped [`Group`]'s leader may take to stop after SIGTERM before the SIGKILL.
const GRACE: Duration = Duration::from_secs(2);
/// Where Debian and most installs put these programs, searched in this order.
const DIRS: [&str; 6] = [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// The program `name` in the first of [`DIRS`] that has it; a name ending in `*` also matches
/// that plus a version (`php-fpm*` finds `php-fpm8.2`; the highest when there are several).
/// Missing: panics when `CI` is set (.ci/run installs it), otherwise a loud note (see [`skip`])
/// and None.
pub fn require(name: &str, what: &str) -> Option<PathBuf> {
    let found = DIRS.iter().find_map(|dir| {
        let mut hits: Vec<PathBuf> = std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.is_file() && matches_name(&p.file_name().unwrap().to_string_lossy(), name)
            })
            .collect();
        hits.sort();
        hits.pop()
    });
    if found.is_none() {
        skip(&format!("{name} is not in {}", DIRS.join(" or ")), what);
    }
    found
}

/// `php-fpm*` matches `php-fpm` and `php-fpm8.2`, not `php-fpm-socket-helper`.
fn matches_name(file: &str, name: &str) -> bool {
    match name.strip_suffix('*') {
        Some(stem) => file
            .strip_prefix(stem)
            .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.')),
        None => file == name,
    }
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

/// nginx in the foreground with the config file `conf` (prefix and logs in `dir`), once it
/// listens on `port`.
pub fn nginx(dir: &TempDir, conf: &Path, port: u16) -> Group {
    let mut cmd = Command::new("nginx");
    cmd.arg("-p")
        .arg(&dir.0)
        .arg("-e")
        .arg(dir.path("error.log"));
    cmd.arg("-c").arg(conf).args(["-g", "daemon off;"]);
    let mut group = Group::spawn(cmd, "nginx", &dir.path("nginx.out"));
    group.wait_ready("nginx", &dir.path("error.log"), || listening(port));
    group
}

/// The `user` line of an nginx config: as root, workers would run as nobody, who may not enter
/// a 0700 temp dir.
pub fn nginx_user() -> &'static str {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        "user root;"
    } else {
        ""
    }
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

    /// A `#!/bin/sh` script with mode 755.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.write(name, &format!("#!/bin/sh\n{body}\n"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("chmod 755 {}: {e}", path.display()));
        path
    }

    /// The file's text, or "" if it cannot be read (for failure messages).
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

/// Whether something accepts connections on 127.0.0.1:`port`.
pub fn listening(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A child leading its own process group. Drop sends SIGTERM to the leader first (php-fpm's and
/// nginx's masters then stop and reap their workers; killed alone, those would stay zombies of
/// init), then SIGKILL to the whole group for whatever is left, and reaps the leader.
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

    /// Polls `ready` until it holds; panics with the log if the child exits or [`START`] passes.
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

    /// Whether the leader has exited, without reaping it: while it is a zombie its pid still
    /// names our group.
    fn leader_gone(&self) -> bool {
        // SAFETY: waitid(2) writes only into `info`, a zeroed local siginfo_t; WNOWAIT leaves
        // the child waitable, and si_pid is the field waitid sets for P_PID.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
            libc::waitid(libc::P_PID, self.child.id(), &mut info, flags) != 0 || info.si_pid() != 0
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.exit.is_some() {
            return; // reaped: the pid no longer names our group
        }
        let pid = self.pid();
        // SAFETY: kill(2) has no memory-safety preconditions; the leader is not reaped, so its
        // pid is still ours.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + GRACE;
        while !self.leader_gone() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: as above; a negative pid names the group, which still exists while its
        // unreaped leader does.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

//! Real programs for the CGI and FastCGI integration tests (`#[path = "support/php.rs"] mod php;`):
//! finding them (missing: a loud skip, or a failure when `CI` is set), temporary directories,
//! free ports, php-fpm and nginx started on 127.0.0.1 or unix sockets and killed as whole
//! process groups on drop, and the `wscgi` binary itself (for what the in-process server cannot
//! show: its own environment, or no `--backend`).
#![allow(dead_code)] // each test binary uses a part

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The chat demo (chat.php, chat-php-cgi.sh).
pub const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/chat");
/// How long php-fpm, nginx or wscgi may take to start listening.
const START: Duration = Duration::from_secs(10);
/// Where Debian and most installs put these programs.
const DIRS: [&str; 5] = ["/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/// A file in [`DIRS`] named `name` or, for a name ending in `*`, that plus a version
/// (`php-fpm*` finds `php-fpm8.2`). Missing: panics when `CI` is set, otherwise writes a loud
/// note straight to stderr (the harness hides eprintln! of a passing test) and gives None.
pub fn require(name: &str, what: &str) -> Option<PathBuf> {
    let entries = DIRS
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten());
    let found = (entries.flatten().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|f| matches_name(&f.to_string_lossy(), name))
        })
        .filter(|p| p.is_file())
        .max();
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

/// Whether `file` exists; see [`require`] for a missing one.
pub fn require_file(file: &str, what: &str) -> bool {
    let found = Path::new(file).is_file();
    if !found {
        skip(&format!("{file} does not exist"), what);
    }
    found
}

fn skip(why: &str, what: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{why}; CI is set, so this is a failure: install php-cli php-cgi php-fpm nginx");
    }
    let bar = "!".repeat(72);
    let note = format!("\n{bar}\n!!! SKIPPED: {why}\n!!! {what} did not run\n{bar}\n");
    let _ = std::io::stderr().write_all(note.as_bytes());
}

/// Call first in every test: blocks SIGCHLD in this thread and the threads it starts (the
/// in-process wscgi's), so the support clients' reads never fail with EINTR. glibc's
/// posix_spawn blocks all signals in the spawning thread for a moment; a child exiting then
/// raises a SIGCHLD the kernel cannot discard (the parent thread blocks it), so it wakes some
/// other thread, and a socket read with a timeout (SO_RCVTIMEO, as the clients use) returns
/// EINTR instead of restarting. Those reads treat EINTR as fatal. With SIGCHLD blocked in the
/// test's threads it goes to the harness's main thread, which ignores it harmlessly. Children
/// start with an empty signal mask whatever this thread's is (std resets it).
pub fn block_sigchld() {
    // SAFETY: plain libc calls on a zeroed, then initialised, local sigset_t.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// A directory of its own under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let name = format!("wscgi-{tag}-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(name);
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
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
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

/// A child that leads its own process group; drop kills the whole group and reaps the child.
pub struct Group(Child);

impl Group {
    fn spawn(mut cmd: Command, what: &str) -> Group {
        cmd.stdin(Stdio::null());
        Group(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("cannot start {what}: {e}")),
        )
    }

    fn exited(&mut self) -> bool {
        self.0.try_wait().ok().flatten().is_some()
    }

    /// Polls `ready` until it holds; panics with `log` if the child exits or [`START`] passes.
    fn wait_ready(&mut self, what: &str, log: &Path, ready: impl Fn() -> bool) {
        let deadline = Instant::now() + START;
        while !ready() {
            let log = || std::fs::read_to_string(log).unwrap_or_default();
            assert!(!self.exited(), "{what} exited at start:\n{}", log());
            assert!(
                Instant::now() < deadline,
                "{what} not ready in {START:?}:\n{}",
                log()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Group {
    /// SIGTERM to the leader first: php-fpm's and nginx's masters then stop and reap their
    /// workers (killed alone, those would stay zombies of init). Then SIGKILL to the group, for
    /// whatever is left, and reap.
    fn drop(&mut self) {
        let Ok(pgid) = libc::pid_t::try_from(self.0.id()) else {
            return;
        };
        // SAFETY: kill(2) has no memory-safety preconditions; a negative pid names a group.
        unsafe { libc::kill(pgid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(2);
        while !self.exited() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: as above.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where a php-fpm pool listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listen {
    Tcp,
    Unix,
}

/// A php-fpm with one static pool of 4 children (wscgi tests use `--workers 2`: every kept
/// FastCGI connection pins a child). Killed with its children on drop.
pub struct Fpm {
    _group: Group,
    dir: TempDir,
    port: u16,
    listen: Listen,
}

impl Fpm {
    /// None (after a loud skip note) when php-fpm is not installed.
    pub fn start(listen: Listen) -> Option<Fpm> {
        let bin = require("php-fpm*", "this php-fpm test")?;
        let dir = TempDir::new("fpm");
        let port = free_port();
        let addr = match listen {
            Listen::Tcp => format!("127.0.0.1:{port}"),
            Listen::Unix => dir.path("fpm.sock").display().to_string(),
        };
        let d = dir.0.display();
        let conf = format!(
            "[global]\npid = {d}/fpm.pid\nerror_log = {d}/fpm.log\ndaemonize = no\n\
             [www]\nlisten = {addr}\nlisten.mode = 0666\npm = static\npm.max_children = 4\n"
        );
        let conf = dir.write("fpm.conf", &conf);
        // -F foreground, -R allowed to run as root. The master setsid()s: its pid is the group.
        let mut cmd = Command::new(&bin);
        cmd.args(["-F", "-R", "-y"]).arg(&conf);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let mut group = Group::spawn(cmd, "php-fpm");
        let sock = dir.path("fpm.sock");
        group.wait_ready("php-fpm", &dir.path("fpm.log"), || match listen {
            Listen::Tcp => TcpStream::connect(("127.0.0.1", port)).is_ok(),
            Listen::Unix => UnixStream::connect(&sock).is_ok(),
        });
        Some(Fpm {
            _group: group,
            dir,
            port,
            listen,
        })
    }

    /// nginx's `fastcgi_pass` value.
    pub fn pass(&self) -> String {
        match self.listen {
            Listen::Tcp => format!("127.0.0.1:{}", self.port),
            Listen::Unix => format!("unix:{}", self.dir.path("fpm.sock").display()),
        }
    }

    /// wscgi's backend for `script` (an absolute path).
    pub fn backend(&self, script: &str) -> String {
        match self.listen {
            Listen::Tcp => format!("fastcgi://127.0.0.1:{}{script}", self.port),
            Listen::Unix => format!(
                "fastcgi://unix:{}:{script}",
                self.dir.path("fpm.sock").display()
            ),
        }
    }
}

/// nginx on a free port serving `root`, `*.php` through `fastcgi_pass`. Killed on drop.
pub struct Nginx {
    _group: Group,
    _dir: TempDir,
    pub port: u16,
}

impl Nginx {
    /// None (after a loud skip note) when nginx or its fastcgi_params is missing.
    pub fn start(root: &str, fastcgi_pass: &str) -> Option<Nginx> {
        let bin = require("nginx", "the nginx + php-fpm test")?;
        if !require_file("/etc/nginx/fastcgi_params", "the nginx + php-fpm test") {
            return None;
        }
        let dir = TempDir::new("nginx");
        let port = free_port();
        let d = dir.0.display();
        // As root, workers would run as nobody, who may not enter a 0700 temp dir.
        let root_user = match std::fs::metadata("/proc/self").map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.uid()
        }) {
            Ok(0) => "user root;\n",
            _ => "",
        };
        let temp: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
            .iter()
            .map(|t| format!("    {t}_temp_path {d}/{t};\n"))
            .collect();
        let conf = format!(
            "{root_user}pid {d}/nginx.pid;\nerror_log {d}/error.log;\nworker_processes 1;\n\
             events {{ worker_connections 64; }}\nhttp {{\n    access_log off;\n{temp}\
             server {{\n        listen 127.0.0.1:{port};\n        root {root};\n\
             location ~ \\.php$ {{\n            include /etc/nginx/fastcgi_params;\n\
             fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n\
             fastcgi_pass {fastcgi_pass};\n        }}\n    }}\n}}\n"
        );
        let conf = dir.write("nginx.conf", &conf);
        let mut cmd = Command::new(&bin);
        cmd.arg("-p")
            .arg(&dir.0)
            .arg("-e")
            .arg(dir.path("error.log"));
        cmd.arg("-c").arg(&conf).args(["-g", "daemon off;"]);
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let mut group = Group::spawn(cmd, "nginx");
        group.wait_ready("nginx", &dir.path("error.log"), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Some(Nginx {
            _group: group,
            _dir: dir,
            port,
        })
    }
}

/// The real `wscgi` binary with a clean environment plus `env`, listening on a free port;
/// its output goes to `log`. Killed on drop.
pub struct WscgiProcess {
    _group: Group,
    pub ws_addr: SocketAddr,
}

impl WscgiProcess {
    pub fn start(args: &[&str], env: &[(&str, &str)], log: &Path) -> WscgiProcess {
        let ws_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let out = std::fs::File::create(log).expect("create the wscgi log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wscgi"));
        cmd.env_clear().envs(env.iter().copied());
        cmd.args([
            "--listen",
            &ws_addr.to_string(),
            "--push-listen",
            "127.0.0.1:0",
            "--shutdown-timeout",
            "1s",
        ]);
        cmd.args(args).process_group(0);
        cmd.stdout(out.try_clone().expect("log handle")).stderr(out);
        let mut group = Group::spawn(cmd, "wscgi");
        group.wait_ready("wscgi", log, || TcpStream::connect(ws_addr).is_ok());
        WscgiProcess {
            _group: group,
            ws_addr,
        }
    }

    pub fn ws_url(&self, path_and_query: &str) -> String {
        format!("ws://{}{}", self.ws_addr, path_and_query)
    }
}

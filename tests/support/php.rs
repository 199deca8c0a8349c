//! Real programs for the CGI and FastCGI integration tests (`#[path = "support/php.rs"] mod php;`):
//! finding them (missing: a loud skip, or a failure when `CI` is set), temporary directories,
//! free ports, php-fpm and nginx started on 127.0.0.1 or unix sockets and killed as whole
//! process groups on drop, and the `wscgi` binary itself (for what the in-process server cannot
//! show: its own environment, or no `--backend`).
#![allow(dead_code)] // each test binary uses a part

use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;

// Each test binary uses only some of these; the rest would warn.
#[allow(unused_imports)]
pub use crate::support::procs::{Group, TempDir, free_port, listening, require, skip};

/// The chat demo (chat.php, chat-php-cgi.sh).
pub const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/chat");

/// Whether `file` exists; see [`require`] for a missing one.
pub fn require_file(file: &str, what: &str) -> bool {
    let found = Path::new(file).is_file();
    if !found {
        skip(&format!("{file} does not exist"), what);
    }
    found
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
        let mut group = Group::spawn(cmd, "php-fpm", &dir.path("fpm.out"));
        let sock = dir.path("fpm.sock");
        group.wait_ready("php-fpm", &dir.path("fpm.log"), || match listen {
            Listen::Tcp => listening(port),
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
        let mut group = Group::spawn(cmd, "nginx", &dir.path("nginx.out"));
        group.wait_ready("nginx", &dir.path("error.log"), || listening(port));
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
        cmd.args(args);
        let mut group = Group::spawn(cmd, "wscgi", log);
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

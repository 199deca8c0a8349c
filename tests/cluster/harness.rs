//! A cluster for tests/cluster.rs: a real `redis-server` on 127.0.0.1 and a free port, wscgi
//! instances joined to it (in-process, or the real binary when a test kills one), one test
//! backend for all, and clients spread over the instances.
//!
//! The backend: an open event is answered with the connection's own id as the first message
//! (so each client knows its id) and subscribes it to the channels in `?ch=a,b`; a message
//! `pub <channel> <exclude> <text>` is answered with `WS-Publish: <channel>`,
//! `WS-Exclude: <exclude>` and body `<text>`; any other message is echoed.
#![allow(dead_code)] // tests/cluster.rs and tests/cluster_failures.rs each use part of it

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::procs::{self, Group, TempDir};
use crate::support::{BackendReply, BackendRequest, Client, HttpResponse, TestBackend, Wscgi};
use crate::support::{connect, http, recv_text, wait_until};

/// A real redis-server, stopped (SIGTERM, then SIGKILL) on drop.
pub struct Redis {
    pub port: u16,
    pub dir: TempDir,
    server: Option<Group>,
    /// More `redis-server` options (a password, a unix socket).
    extra: Vec<String>,
    /// How the test itself connects (with the password, if any).
    pub url: String,
}

impl Redis {
    /// None (a loud skip) when redis-server is missing and CI is not set.
    pub fn start() -> Option<Redis> {
        Redis::start_with(&[], None)
    }

    /// With more options, and the password the test then connects with.
    pub fn start_with(extra: &[&str], password: Option<&str>) -> Option<Redis> {
        procs::require("redis-server", "the cluster tests")?;
        let port = procs::free_port();
        let auth = password.map_or(String::new(), |p| format!(":{p}@"));
        let mut redis = Redis {
            port,
            dir: TempDir::new("redis"),
            server: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            url: format!("redis://{auth}127.0.0.1:{port}/"),
        };
        redis.restart();
        Some(redis)
    }

    /// Starts it again on the same port (after [`Redis::stop`]).
    pub fn restart(&mut self) {
        let log = self.dir.path("redis.log");
        let mut cmd = Command::new("redis-server");
        let port = self.port.to_string();
        let dir = self.dir.0.to_string_lossy().into_owned();
        cmd.args([
            "--bind",
            "127.0.0.1",
            "--port",
            &port,
            "--save",
            "",
            "--appendonly",
            "no",
        ]);
        cmd.args(["--dir", &dir]).args(&self.extra);
        let mut group = Group::spawn(cmd, "redis-server", &log);
        let url = self.url.clone();
        group.wait_ready("redis-server", &log, || {
            redis::Client::open(url.as_str())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                .is_ok()
        });
        self.server = Some(group);
    }

    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.terminate(Duration::from_secs(5));
        }
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`): a Redis that is slow, not gone.
    pub fn freeze(&self, frozen: bool) {
        let server = self.server.as_ref().expect("redis-server runs");
        let signal = if frozen { libc::SIGSTOP } else { libc::SIGCONT };
        // SAFETY: kill(2) has no memory-safety preconditions; the child is not reaped yet.
        assert_eq!(unsafe { libc::kill(server.pid(), signal) }, 0);
    }

    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(5)))
            .expect("connect to the test redis-server")
    }
}

/// One wscgi instance of the cluster.
pub enum Node {
    InProcess(Wscgi),
    /// The real binary, so that a test can SIGKILL it.
    Process {
        group: Group,
        push_addr: SocketAddr,
        ws_addr: SocketAddr,
        log: PathBuf,
        _dir: TempDir,
    },
}

impl Node {
    pub fn push_addr(&self) -> SocketAddr {
        match self {
            Node::InProcess(w) => w.push_addr,
            Node::Process { push_addr, .. } => *push_addr,
        }
    }

    pub fn ws_url(&self, path: &str) -> String {
        match self {
            Node::InProcess(w) => w.ws_url(path),
            Node::Process { ws_addr, .. } => format!("ws://{ws_addr}{path}"),
        }
    }

    pub fn call(&self, method: &str, path: &str, body: &[u8]) -> HttpResponse {
        http(self.push_addr(), method, path, &[], body)
    }

    /// What a process node wrote to stderr so far.
    pub fn log(&self) -> String {
        match self {
            Node::Process { log, .. } => std::fs::read_to_string(log).unwrap_or_default(),
            Node::InProcess(_) => panic!("an in-process node's log goes to the test's stderr"),
        }
    }

    /// `wscgi_redis_up` in its `/metrics`.
    pub fn redis_up(&self) -> bool {
        metric(
            &self.call("GET", "/metrics", b"").body_str(),
            "wscgi_redis_up",
        ) == Some(1)
    }

    /// SIGKILL (a process node only): no chance to clean anything up.
    pub fn kill(&mut self) {
        let Node::Process { group, log, .. } = self else {
            panic!("only a process node can be killed");
        };
        // SAFETY: kill(2) has no memory-safety preconditions; the child is not reaped yet.
        unsafe { libc::kill(group.pid(), libc::SIGKILL) };
        assert!(
            group.wait_exit(Duration::from_secs(5)).is_some(),
            "killed: {log:?}"
        );
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`), a process node only: frozen, its sockets stay
    /// open and nobody answers on them.
    pub fn freeze(&mut self, frozen: bool) {
        let Node::Process { group, .. } = self else {
            panic!("only a process node can be frozen");
        };
        let signal = if frozen { libc::SIGSTOP } else { libc::SIGCONT };
        // SAFETY: kill(2) has no memory-safety preconditions; the child is not reaped yet.
        assert_eq!(unsafe { libc::kill(group.pid(), signal) }, 0);
    }

    /// SIGTERM (a process node): a clean shutdown, exit 0.
    pub fn terminate(&mut self) {
        let Node::Process { group, .. } = self else {
            panic!("only a process node is terminated");
        };
        let status = group
            .terminate(Duration::from_secs(10))
            .expect("exits after SIGTERM");
        assert!(status.success(), "clean shutdown exits 0: {status}");
    }
}

/// The value of an unlabelled metric.
pub fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub backend: TestBackend,
    pub redis: Redis,
}

/// How long a cluster may take to form, or to notice Redis again.
pub const JOIN: Duration = Duration::from_secs(15);

impl Cluster {
    /// `n` in-process instances; None when redis-server is missing outside CI.
    pub fn start(n: usize, extra: &[&str]) -> Option<Cluster> {
        let mut cluster = Cluster::on(Redis::start()?);
        for _ in 0..n {
            cluster.add_in_process(extra);
        }
        Some(cluster)
    }

    /// No instances yet.
    pub fn on(redis: Redis) -> Cluster {
        Cluster {
            nodes: Vec::new(),
            backend: TestBackend::start(backend),
            redis,
        }
    }

    fn args<'a>(&'a self, url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["--redis", url, "--backend-timeout", "3s"];
        args.extend(extra);
        args
    }

    pub fn add_in_process(&mut self, extra: &[&str]) {
        self.add_with_url(&self.redis.url(), extra);
    }

    /// An in-process instance that reaches Redis through `url`.
    pub fn add_with_url(&mut self, url: &str, extra: &[&str]) {
        let url = url.to_string();
        let backend = self.backend.url();
        let node = Wscgi::start(&backend, &self.args(&url, extra));
        self.nodes.push(Node::InProcess(node));
        self.wait_joined(self.nodes.len() - 1);
    }

    /// The real binary as one more instance.
    pub fn add_process(&mut self, extra: &[&str]) {
        let dir = TempDir::new("wscgi-node");
        let log = dir.path("wscgi.log");
        let ws_addr = SocketAddr::from(([127, 0, 0, 1], procs::free_port()));
        let push_addr = SocketAddr::from(([127, 0, 0, 1], procs::free_port()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wscgi"));
        let (url, backend) = (self.redis.url(), self.backend.url());
        cmd.env_clear()
            .args(["--backend", &backend, "--listen", &ws_addr.to_string()])
            .args([
                "--push-listen",
                &push_addr.to_string(),
                "--shutdown-timeout",
                "2s",
            ])
            .args(self.args(&url, extra));
        let mut group = Group::spawn(cmd, "wscgi", &log);
        group.wait_ready("wscgi", &log, || {
            std::net::TcpStream::connect(push_addr).is_ok()
        });
        self.nodes.push(Node::Process {
            group,
            push_addr,
            ws_addr,
            log,
            _dir: dir,
        });
        self.wait_joined(self.nodes.len() - 1);
    }

    fn wait_joined(&self, i: usize) {
        wait_until(
            JOIN,
            &format!("instance {i} reports wscgi_redis_up 1"),
            || self.nodes[i].redis_up(),
        );
    }

    /// A client on instance `i`, in the channels `ch` (comma separated, may be empty), on
    /// WebSocket path `path`; returns it with its connection id.
    pub fn join_on(&self, i: usize, path: &str, ch: &str) -> (Client, String) {
        let mut client = connect(&self.nodes[i].ws_url(&format!("{path}?ch={ch}")));
        let id = recv_text(&mut client);
        (client, id)
    }

    pub fn join(&self, i: usize, ch: &str) -> (Client, String) {
        self.join_on(i, "/chat", ch)
    }
}

/// The backend described at the top of this file.
fn backend(req: &BackendRequest) -> BackendReply {
    match req.event() {
        "open" => {
            let query = req.target.split_once("ch=").map_or("", |(_, q)| q);
            let channels = query.split('&').next().unwrap_or("");
            let reply = BackendReply::ok().body(req.conn_id());
            match channels.is_empty() {
                true => reply,
                false => reply.header("WS-Subscribe", channels),
            }
        }
        "message" => {
            let text = req.body_str();
            let mut parts = text.splitn(4, ' ');
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some("pub"), Some(ch), Some(exclude), Some(body)) => BackendReply::ok()
                    .header("WS-Publish", ch)
                    .header("WS-Exclude", exclude)
                    .body(body),
                _ => BackendReply::echo_of(req),
            }
        }
        _ => BackendReply::ok(),
    }
}

/// Reads text messages until `want` arrives; every message before it is returned (so a test
/// can say nothing else came, without waiting for silence).
pub fn until(client: &mut Client, want: &str) -> Vec<String> {
    until_each(client, &[want])
}

/// Like [`until`], until each of `wants` arrived (in any order); the others are returned.
pub fn until_each(client: &mut Client, wants: &[&str]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut seen, mut others) = (Vec::new(), Vec::new());
    while seen.len() < wants.len() {
        let text = recv_text(client);
        match wants.contains(&text.as_str()) && !seen.contains(&text) {
            true => seen.push(text),
            false => others.push(text),
        }
        assert!(
            Instant::now() < deadline,
            "not all of {wants:?} after {others:?}"
        );
    }
    others
}

/// The JSON number field `name` of a push-API answer.
pub fn field(response: &HttpResponse, name: &str) -> Option<u64> {
    let body = response.body_str();
    let at = body.find(&format!("\"{name}\":"))? + name.len() + 3;
    let digits: String = body[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// nginx in the foreground on `port`, its config `top` (a `stream { }` or `http { }` block,
/// after the `load_module` lines for `modules`), everything it writes in `dir`.
pub fn nginx(dir: &TempDir, port: u16, modules: &[&std::path::Path], top: &str) -> Group {
    let d = dir.0.display();
    let user = procs::nginx_user();
    let loads: String = modules
        .iter()
        .map(|m| format!("load_module {};\n", m.display()))
        .collect();
    let conf = dir.write(
        "nginx.conf",
        &format!(
            "{loads}{user}\nworker_processes 1;\nerror_log {d}/error.log;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 256; }}\n{top}\n"
        ),
    );
    procs::nginx(dir, &conf, port)
}

/// `server host:port;` for each instance, for an nginx upstream.
pub fn upstream_servers(nodes: &[Node]) -> String {
    nodes
        .iter()
        .map(|n| format!("server {};", n.ws_url("").trim_start_matches("ws://")))
        .collect()
}

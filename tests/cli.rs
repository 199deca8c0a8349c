//! The `wscgi` binary as a user runs it: --help and --version, exit codes and messages for bad
//! options and bind failures, and a whole run configured through WSCGI_* environment variables.

mod support;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use support::*;
use tungstenite::Message;

const T: Duration = Duration::from_secs(10);
/// A backend URL for runs that must fail before any event is sent.
const NOWHERE: &str = "http://127.0.0.1:9/ws";

/// Environment variables for a run.
type Env<'a> = &'a [(&'a str, &'a str)];

/// A running wscgi process. Dropping it kills and reaps it, so a failed assertion leaks nothing.
struct Proc {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

/// How a process ended: exit code (None if killed by a signal), stdout, stderr.
struct Exit {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Proc {
    /// Starts the binary with `args`, no inherited WSCGI_* variables, and `env` added.
    fn spawn(args: &[&str], env: Env) -> Proc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wscgi"));
        cmd.args(args).stdin(Stdio::null());
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("WSCGI_") {
                cmd.env_remove(name);
            }
        }
        cmd.envs(env.iter().copied());
        let mut child = cmd.spawn().expect("start the wscgi binary");
        let (stdout, stderr) = (Arc::default(), Arc::default());
        let readers = vec![
            drain(child.stdout.take().unwrap(), Arc::clone(&stdout)),
            drain(child.stderr.take().unwrap(), Arc::clone(&stderr)),
        ];
        Proc {
            child,
            stdout,
            stderr,
            readers,
        }
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Whether the process has exited (then it is reaped).
    fn exited(&mut self) -> bool {
        self.child.try_wait().expect("poll wscgi").is_some()
    }

    /// Waits for the process to exit by itself within [`T`]; panics (and kills it) if it does not.
    fn finish(mut self) -> Exit {
        wait_until(T, "wscgi exits by itself", || self.exited());
        let status = self.child.wait().expect("reap wscgi");
        for reader in self.readers.drain(..) {
            reader.join().expect("output reader");
        }
        let text =
            |buf: &Mutex<Vec<u8>>| String::from_utf8_lossy(&buf.lock().unwrap()).into_owned();
        let (stdout, stderr) = (text(&self.stdout), text(&self.stderr));
        Exit {
            code: status.code(),
            stdout,
            stderr,
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies a pipe into `sink` until EOF, on its own thread so the child never blocks on output.
fn drain(mut pipe: impl Read + Send + 'static, sink: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = pipe.read(&mut chunk) {
            sink.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    })
}

fn run(args: &[&str], env: Env) -> Exit {
    Proc::spawn(args, env).finish()
}

/// Two ports nobody listens on right now (both held at once so they differ).
fn free_ports() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = |l: &TcpListener| l.local_addr().unwrap().port();
    (port(&a), port(&b))
}

#[test]
fn help_lists_every_option_and_the_environment() {
    let options = "listen push-listen backend workers backend-timeout retries max-pending \
        max-message max-outbuf max-connections handshake-timeout ping-interval pass-header \
        event-format push-token log-level resume-window resume-buffer resume-max-bytes tls-cert tls-key help \
        version";
    // Help wins over everything else, even a bad value in the environment.
    let bad_env = [("WSCGI_WORKERS", "x")];
    for (flag, env) in [("--help", &[][..]), ("-h", &bad_env)] {
        let exit = run(&[flag], env);
        assert_eq!(exit.code, Some(0), "{flag}: {}", exit.stderr);
        assert!(exit.stdout.starts_with("wscgi"), "{flag}: {}", exit.stdout);
        for option in options.split_whitespace() {
            let listed = exit.stdout.contains(&format!("--{option}"));
            assert!(listed, "{flag}: --{option} missing");
        }
        let env_mentioned = exit.stdout.contains("WSCGI_");
        assert!(env_mentioned, "{flag}: environment variables missing");
    }
}

#[test]
fn version_prints_name_and_version() {
    for flag in ["--version", "-V"] {
        let exit = run(&[flag], &[]);
        assert_eq!(exit.code, Some(0), "{flag}: {}", exit.stderr);
        let want = format!("wscgi {}", env!("CARGO_PKG_VERSION"));
        assert_eq!(exit.stdout.trim(), want);
    }
}

#[test]
fn bad_options_exit_2_naming_the_problem() {
    // Were one accepted, it would serve on these addresses until killed, not on the defaults.
    let listen = ["--listen", "127.0.0.1:0", "--push-listen", "127.0.0.1:0"];
    let with = |args: &[&'static str]| [&listen[..], args].concat();
    #[rustfmt::skip]
    let cases: Vec<(Vec<&str>, Env, &str)> = vec![
        (with(&["--backend", NOWHERE, "--nope"]), &[], "nope"),
        (with(&["--backend", NOWHERE, "--workers", "x"]), &[], "--workers"),
        (with(&["--backend", NOWHERE, "--workers", "0"]), &[], "--workers"),
        (with(&["--backend", NOWHERE, "--max-message", "1MB"]), &[], "--max-message"),
        (with(&["--backend", NOWHERE, "stray"]), &[], "stray"),
        (with(&["--backend", "ftp://x"]), &[], "--backend"),
        (with(&[]), &[], "--backend"),
        (with(&[]), &[("WSCGI_BACKEND", NOWHERE), ("WSCGI_WORKERS", "x")], "WSCGI_WORKERS"),
    ];
    for (args, env, named) in cases {
        let exit = run(&args, env);
        assert_eq!(exit.code, Some(2), "{args:?} {env:?}: {}", exit.stderr);
        let stderr = &exit.stderr;
        assert!(stderr.contains(named), "{args:?}: stderr {stderr:?}");
        assert!(exit.stdout.is_empty(), "{args:?}: stdout {:?}", exit.stdout);
    }
}

/// `--tls-cert` and `--tls-key` (or WSCGI_TLS_CERT and WSCGI_TLS_KEY) go together; a build
/// without the `tls` feature refuses them (exit 2) instead of listening in plain text, and a
/// build with it refuses to start (exit 1) on files it cannot load.
#[test]
fn tls_options_are_checked_at_startup() {
    let listen = ["--listen", "127.0.0.1:0", "--push-listen", "127.0.0.1:0"];
    let base = [&listen[..], &["--backend", NOWHERE]].concat();
    let missing = "/nonexistent/wscgi-test.pem";
    for half in ["--tls-cert", "--tls-key"] {
        let exit = run(&[&base[..], &[half, missing]].concat(), &[]);
        assert_eq!(exit.code, Some(2), "{}", exit.stderr);
        // A build without TLS must not ask for the other file: it could not use either.
        let want = match cfg!(feature = "tls") {
            true => "--tls-cert and --tls-key must be given together".to_string(),
            false => format!("{half}: this wscgi was built without TLS support"),
        };
        assert!(exit.stderr.contains(&want), "{half}: {}", exit.stderr);
    }
    let env = [("WSCGI_TLS_CERT", missing), ("WSCGI_TLS_KEY", missing)];
    for (args, env, origin) in [
        (
            [&base[..], &["--tls-cert", missing, "--tls-key", missing]].concat(),
            &[][..],
            "--tls-cert",
        ),
        (base.clone(), &env[..], "WSCGI_TLS_CERT"),
    ] {
        let exit = run(&args, env);
        if cfg!(feature = "tls") {
            assert_eq!(exit.code, Some(1), "{origin}: {}", exit.stderr);
            let want = format!("TLS: cannot read {missing}");
            assert!(exit.stderr.contains(&want), "{origin}: {}", exit.stderr);
        } else {
            assert_eq!(exit.code, Some(2), "{origin}: {}", exit.stderr);
            let want = format!("{origin}: this wscgi was built without TLS support");
            assert!(exit.stderr.contains(&want), "{origin}: {}", exit.stderr);
        }
    }
}

#[test]
fn bind_failure_exits_1_with_a_message() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let free = "127.0.0.1:0";
    for (listen, push) in [(addr.as_str(), free), (free, addr.as_str())] {
        let exit = run(
            &[
                "--backend",
                NOWHERE,
                "--listen",
                listen,
                "--push-listen",
                push,
            ],
            &[],
        );
        let stderr = &exit.stderr;
        assert_eq!(exit.code, Some(1), "{listen} {push}: {stderr}");
        assert!(stderr.contains(&addr), "{listen} {push}: stderr {stderr:?}");
    }
}

#[test]
fn runs_configured_by_the_environment() {
    let backend = TestBackend::echo();
    let (ws_port, push_port) = free_ports();
    let ws = SocketAddr::from(([127, 0, 0, 1], ws_port));
    let push = SocketAddr::from(([127, 0, 0, 1], push_port));
    let (ws_text, push_text) = (ws.to_string(), push.to_string());
    let env = [
        ("WSCGI_BACKEND", backend.url()),
        ("WSCGI_LISTEN", ws_text),
        ("WSCGI_PUSH_LISTEN", push_text),
        // The command line wins over the environment.
        ("WSCGI_LOG_LEVEL", "nonsense".to_string()),
        // A proxy in the environment is not used: the backend is reached directly.
        ("HTTP_PROXY", "http://127.0.0.1:9".to_string()),
        ("http_proxy", "http://127.0.0.1:9".to_string()),
        ("ALL_PROXY", "http://127.0.0.1:9".to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut wscgi = Proc::spawn(&["--log-level", "warn"], &env);
    wait_until(T, "wscgi listens on WSCGI_LISTEN", || {
        assert!(!wscgi.exited(), "wscgi exited: {}", wscgi.stderr());
        TcpStream::connect(ws).is_ok()
    });

    let reqs = backend.wait_for(T, |r| !r.is_empty());
    assert_eq!(reqs[0].event(), "reset", "the first event after startup");
    assert_eq!(reqs[0].header("ws-boot-id").map(str::len), Some(22));

    let mut client = connect(&format!("ws://{ws}/env?x=1"));
    client.send(Message::text("through the binary")).unwrap();
    assert_eq!(recv_text(&mut client), "through the binary");
    let reqs = backend.wait_for(T, |r| r.iter().any(|q| q.event() == "message"));
    let message = reqs.iter().find(|q| q.event() == "message").unwrap();
    assert_eq!(message.target, "/ws?x=1", "events go to WSCGI_BACKEND");

    let health = http(push, "GET", "/healthz", &[], b"");
    assert_eq!(health.status, 200, "push API on WSCGI_PUSH_LISTEN");
    let path = format!("/connections/{}", message.conn_id());
    let pushed = http(push, "POST", &path, &[], b"hi");
    assert_eq!(pushed.status, 200, "{}", pushed.body_str());
    assert_eq!(recv_text(&mut client), "hi");
    assert!(!wscgi.exited(), "wscgi still runs: {}", wscgi.stderr());
}

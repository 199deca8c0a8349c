//! [`Wscgi`]: the server under test, parsed from command-line arguments and
//! run in-process on its own thread; dropping it (or [`Wscgi::stop_within`])
//! shuts it down.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::describe::panic_message;
use super::wait::join_within;

/// How long [`Wscgi::start`] waits for the server to bind, and its drop for
/// `run()` to return after `shutdown()`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// What the run thread reports once the server is bound.
struct Bound {
    ws_addr: SocketAddr,
    push_addr: SocketAddr,
    shutdown: wscgi::ShutdownHandle,
}

/// wscgi running on its own thread; dropping it shuts it down.
pub struct Wscgi {
    pub ws_addr: SocketAddr,
    pub push_addr: SocketAddr,
    shutdown: wscgi::ShutdownHandle,
    runner: Option<JoinHandle<Result<(), String>>>,
}

impl Wscgi {
    /// Starts wscgi with `--backend URL`, both listeners on 127.0.0.1:0 and
    /// 4 workers (unless `extra` sets `--workers`), followed by `extra`
    /// arguments. No environment variables are visible to it. Panics if the
    /// arguments are rejected or binding fails.
    pub fn start(backend_url: &str, extra: &[&str]) -> Wscgi {
        let mut base = vec![
            "--backend",
            backend_url,
            "--listen",
            "127.0.0.1:0",
            "--push-listen",
            "127.0.0.1:0",
        ];
        if !extra.contains(&"--workers") {
            base.extend(["--workers", "4"]);
        }
        // Dropping a Wscgi shuts it down gracefully; keep that quick unless a test asks.
        if !extra.contains(&"--shutdown-timeout") {
            base.extend(["--shutdown-timeout", "2s"]);
        }
        let args: Vec<String> = base.iter().chain(extra).map(|s| s.to_string()).collect();
        let (tx, rx) = mpsc::channel();
        // Parsing, binding and running all happen on the run thread, so the
        // server's types need not be Send; only the addresses and the
        // shutdown handle come back.
        let runner = thread::Builder::new()
            .name("wscgi-under-test".into())
            .spawn(move || run_server(args, tx))
            .expect("spawn wscgi thread");
        let bound = match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(Ok(bound)) => bound,
            Ok(Err(why)) => panic!("wscgi failed to start: {why}"),
            Err(_) => panic!("wscgi did not report its addresses within {STARTUP_TIMEOUT:?}"),
        };
        Wscgi {
            ws_addr: bound.ws_addr,
            push_addr: bound.push_addr,
            shutdown: bound.shutdown,
            runner: Some(runner),
        }
    }

    /// "ws://127.0.0.1:PORT" followed by `path_and_query` (which starts with '/').
    pub fn ws_url(&self, path_and_query: &str) -> String {
        format!("ws://{}{}", self.ws_addr, path_and_query)
    }
}

/// Body of the run thread. Start-up failures go back over `tx`; the return
/// value is run()'s outcome, checked when the [`Wscgi`] is dropped.
fn run_server(args: Vec<String>, tx: mpsc::Sender<Result<Bound, String>>) -> Result<(), String> {
    let no_env = |_: &str| -> Option<String> { None };
    let config = match wscgi::config::parse(&args, &no_env) {
        Ok(wscgi::config::Command::Run(config)) => config,
        Ok(_) => {
            let _ = tx.send(Err(format!("{args:?} asked for help/version, not a run")));
            return Ok(());
        }
        Err(e) => {
            let _ = tx.send(Err(format!("arguments {args:?} rejected: {e:?}")));
            return Ok(());
        }
    };
    let server = match wscgi::Server::bind(config) {
        Ok(server) => server,
        Err(e) => {
            let _ = tx.send(Err(format!("bind failed: {e}")));
            return Ok(());
        }
    };
    let bound = Bound {
        ws_addr: server.ws_addr(),
        push_addr: server.push_addr(),
        shutdown: server.shutdown_handle(),
    };
    if tx.send(Ok(bound)).is_err() {
        return Ok(()); // the test gave up waiting; nobody will stop us
    }
    server.run().map_err(|e| e.to_string())
}

impl Wscgi {
    /// Asks for a graceful shutdown and waits until `run()` returned; panics after `limit`.
    pub fn stop_within(mut self, limit: Duration) {
        self.shutdown.shutdown();
        let runner = self.runner.take().expect("running");
        match join_within(runner, limit) {
            Some(Ok(Ok(()))) => {}
            None => panic!("wscgi run() did not return within {limit:?} of shutdown()"),
            Some(Ok(Err(e))) => panic!("wscgi run() returned an error: {e}"),
            Some(Err(payload)) => panic!("wscgi run() panicked: {}", panic_message(&*payload)),
        }
    }
}

impl Drop for Wscgi {
    fn drop(&mut self) {
        self.shutdown.shutdown();
        let Some(runner) = self.runner.take() else {
            return;
        };
        let failure = match join_within(runner, SHUTDOWN_TIMEOUT) {
            None => {
                // Leave the thread behind rather than hang the test binary.
                eprintln!(
                    "warning: wscgi run() did not return within {SHUTDOWN_TIMEOUT:?} of shutdown()"
                );
                return;
            }
            Some(Ok(Ok(()))) => return,
            Some(Ok(Err(e))) => format!("wscgi run() returned an error: {e}"),
            Some(Err(payload)) => format!("wscgi run() panicked: {}", panic_message(&*payload)),
        };
        // A server that died is a test failure, unless the test already failed.
        if thread::panicking() {
            eprintln!("{failure}");
        } else {
            panic!("{failure}");
        }
    }
}

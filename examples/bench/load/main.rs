//! WebSocket load generator for wscgi's benchmarks (`bench-load`).
//!
//! One thread, one mio poll, every client connection a small state machine
//! (TCP connect → upgrade request → `101` → tungstenite `WebSocket` in client
//! role), so the generator itself costs as little CPU as possible on a
//! machine it shares with the server under test. Scenarios:
//!
//! - `idle`    open N connections at a bounded rate, hold them, count the
//!   survivors; with `--pid` sample the server's RSS/PSS (its whole process
//!   tree) before connecting and at the end.
//! - `echo`    C connections each send M messages of B bytes one at a time
//!   (send, wait for the echo, repeat); messages/s and latency percentiles.
//! - `fanout`  N subscribers, then K publishes through a push API (wscgi's
//!   `POST /channels/NAME`, or Pushpin's `POST /publish/`), one at a time;
//!   time from the publish request to the last delivery, frames/s.
//! - `connect` C concurrent loops of connect → handshake → `101` → close;
//!   handshakes/s.
//!
//! Receive times are the kernel's receive timestamps (`SO_TIMESTAMPNS`) when
//! the kernel gives them, so the generator's own queueing does not count as
//! server latency. Each result is printed as one JSON line (prefix-free, on
//! stdout) followed by one human line. Every phase is bounded in time, and a
//! watchdog ends the process after `--timeout` seconds whatever happens.
//!
//! `cargo run --release --example bench-load -- --help` lists the options.
//!
//! This file owns the command line (usage text, [`Opts`]) and the dispatch to a scenario; the
//! modules: `client` + `drive` + `timestamps` (the connection engine), `pool` (opening, idling
//! and closing many connections), `idle`, `echo`, `fanout` (+ `http` for its push API) and
//! `connect` (the scenarios), `procfs` (memory and CPU of the processes under test), `stats` and
//! `output` (percentiles, the JSON and human lines), `limits` (open-files limit, watchdog).

mod client;
mod connect;
mod drive;
mod echo;
mod fanout;
mod http;
mod idle;
mod limits;
mod output;
mod payload;
mod pool;
mod procfs;
mod stats;
mod timestamps;
mod tls;

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use output::Report;

const USAGE: &str = "\
usage: bench-load SCENARIO [options]      SCENARIO: idle | echo | fanout | connect

common:
  --url URL[,URL]      WebSocket URL, ws://HOST:PORT/PATH (default ws://127.0.0.1:8080/bench);
                       several (a cluster): connections go to each in turn, same path;
                       wss:// (built with --features tls): TLS, certificate not checked,
                       no session resumption (every handshake a full one)
  --label NAME         name of the server under test, copied into the output (default server)
  --pid PID[,PID]      server process(es): memory (RSS/PSS) and CPU of their whole process
                       tree are sampled; repeatable
  --backend-pid PID    backend process(es): CPU sampled; repeatable
  --rate N             new connections per second while opening (default 2000)
  --inflight N         handshakes in flight at once while opening (default 256)
  --duration SECS      limit of the measured phase (default 10)
  --timeout SECS       hard limit of the whole run; the process exits 3 then (default 120)
  --handshake-timeout SECS   per connection (default 10)
  --no-timestamps      measure receive times in user space instead of SO_TIMESTAMPNS
  --deflate            offer permessage-deflate; where accepted, messages go out compressed
                       and compressed ones are inflated; bytes on the wire are reported
  --json               pad messages with chat-like JSON instead of `x` (echo, fanout)
idle:     -n/--connections N (default 10000)  --hold SECS (default 5)
echo:     -c/--connections C (default 50)  -m/--messages M per connection (default 2000)
          -b/--size B bytes (default 64)  --warmup W messages per connection (default 20)
fanout:   -n/--connections N subscribers (default 1000)  -k/--publishes K (default 20)
          -b/--size B (default 64)  --push URL (default http://127.0.0.1:8081/channels/bench)
          --push-format raw|pushpin (default raw: the body is the message; pushpin: JSON
          items for Pushpin's /publish/)  --channel NAME (default bench, for pushpin)
          --interval-ms MS pause between publishes (default 20)
connect:  -c/--connections C concurrent (default 50)  (--duration SECS of measuring)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{USAGE}");
        return if args.is_empty() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let opts = match Opts::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench-load: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    limits::raise_nofile_limit();
    limits::start_watchdog(&opts);
    let result = match opts.scenario.as_str() {
        "idle" => idle::run(&opts),
        "echo" => echo::run(&opts),
        "fanout" => fanout::run(&opts),
        "connect" => connect::run(&opts),
        _ => unreachable!("checked by Opts::parse"),
    };
    match result {
        Ok(report) => {
            println!("{}", report.json());
            println!("{}", report.human);
            if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            let mut r = Report::new(&opts);
            r.ok = false;
            r.s("error", &e);
            println!("{}", r.json());
            println!("{} {}: FAILED: {e}", opts.scenario, opts.label);
            ExitCode::FAILURE
        }
    }
}

/// The parsed command line; every field is an option of [`USAGE`] or derived from one.
pub struct Opts {
    pub scenario: String,
    pub label: String,
    /// Where connections go, in turn (several: the instances of a cluster).
    pub addrs: Vec<SocketAddr>,
    pub host: String,
    pub path: String,
    pub connections: usize,
    pub rate: f64,
    pub inflight: usize,
    pub messages: usize,
    pub size: usize,
    pub warmup: usize,
    pub duration: Duration,
    pub hold: Duration,
    pub timeout: Duration,
    pub handshake_timeout: Duration,
    pub timestamps: bool,
    pub pids: Vec<u32>,
    pub backend_pids: Vec<u32>,
    /// `wss://`: TLS (a build with `--features tls`).
    pub tls: bool,
    pub push: String,
    pub push_format: String,
    pub channel: String,
    pub publishes: usize,
    pub interval: Duration,
    pub deflate: bool,
    pub json: bool,
}

impl Opts {
    fn parse(args: &[String]) -> Result<Opts, String> {
        let scenario = args[0].clone();
        let defaults: (usize, usize) = match scenario.as_str() {
            "idle" => (10_000, 0),
            "echo" => (50, 64),
            "fanout" => (1000, 64),
            "connect" => (50, 0),
            other => return Err(format!("unknown scenario {other:?}")),
        };
        let mut o = Opts {
            scenario,
            label: "server".into(),
            addrs: Vec::new(),
            host: "127.0.0.1:8080".into(),
            path: "/bench".into(),
            connections: defaults.0,
            rate: 2000.0,
            inflight: 256,
            messages: 2000,
            size: defaults.1,
            warmup: 20,
            duration: Duration::from_secs(10),
            hold: Duration::from_secs(5),
            timeout: Duration::from_secs(120),
            handshake_timeout: Duration::from_secs(10),
            timestamps: true,
            pids: Vec::new(),
            backend_pids: Vec::new(),
            tls: false,
            push: "http://127.0.0.1:8081/channels/bench".into(),
            push_format: "raw".into(),
            channel: "bench".into(),
            publishes: 20,
            interval: Duration::from_millis(20),
            deflate: false,
            json: false,
        };
        let mut url = "ws://127.0.0.1:8080/bench".to_string();
        let mut i = 1;
        while i < args.len() {
            let flag = args[i].as_str();
            let switch = match flag {
                "--no-timestamps" => Some(&mut o.timestamps),
                "--deflate" => Some(&mut o.deflate),
                "--json" => Some(&mut o.json),
                _ => None,
            };
            if let Some(on) = switch {
                *on = flag != "--no-timestamps";
                i += 1;
                continue;
            }
            let value = args
                .get(i + 1)
                .ok_or_else(|| format!("{flag} needs a value"))?
                .as_str();
            i += 2;
            let num = |v: &str| -> Result<f64, String> {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| format!("{flag}: not a number: {v:?}"))
            };
            let count = |v: &str| -> Result<usize, String> {
                v.parse::<usize>()
                    .map_err(|_| format!("{flag}: not a count: {v:?}"))
            };
            let pids = |v: &str, into: &mut Vec<u32>| -> Result<(), String> {
                for p in v.split(',').filter(|p| !p.is_empty()) {
                    into.push(p.parse().map_err(|_| format!("{flag}: not a pid: {p:?}"))?);
                }
                Ok(())
            };
            match flag {
                "--url" => url = value.to_string(),
                "--label" => o.label = value.to_string(),
                "--pid" => pids(value, &mut o.pids)?,
                "--backend-pid" => pids(value, &mut o.backend_pids)?,
                "--rate" => o.rate = num(value)?.max(1.0),
                "--inflight" => o.inflight = count(value)?.max(1),
                "-n" | "-c" | "--connections" => o.connections = count(value)?,
                "-m" | "--messages" => o.messages = count(value)?,
                "-b" | "--size" => o.size = count(value)?,
                "--warmup" => o.warmup = count(value)?,
                "--duration" => o.duration = Duration::from_secs_f64(num(value)?),
                "--hold" => o.hold = Duration::from_secs_f64(num(value)?),
                "--timeout" => o.timeout = Duration::from_secs_f64(num(value)?.max(1.0)),
                "--handshake-timeout" => {
                    o.handshake_timeout = Duration::from_secs_f64(num(value)?.max(0.1))
                }
                "--push" => o.push = value.to_string(),
                "--push-format" => {
                    if value != "raw" && value != "pushpin" {
                        return Err("--push-format is raw or pushpin".into());
                    }
                    o.push_format = value.to_string();
                }
                "--channel" => o.channel = value.to_string(),
                "-k" | "--publishes" => o.publishes = count(value)?,
                "--interval-ms" => o.interval = Duration::from_millis(num(value)? as u64),
                other => return Err(format!("unknown option {other}")),
            }
        }
        for url in url.split(',') {
            let (tls, rest) = match (url.strip_prefix("ws://"), url.strip_prefix("wss://")) {
                (Some(rest), _) => (false, rest),
                (None, Some(rest)) => (true, rest),
                _ => return Err(format!("--url must start with ws:// or wss:// ({url})")),
            };
            if tls && !cfg!(feature = "tls") {
                return Err("wss:// needs bench-load built with --features tls".into());
            }
            o.tls = tls;
            let (host, path) = match rest.find('/') {
                Some(at) => (&rest[..at], &rest[at..]),
                None => (rest, "/"),
            };
            let addr = host
                .to_socket_addrs()
                .map_err(|e| format!("--url {url}: {e}"))?
                .next()
                .ok_or_else(|| format!("--url {url}: no address"))?;
            o.addrs.push(addr);
            o.host = host.to_string();
            o.path = path.to_string();
        }
        if o.connections == 0 {
            return Err("--connections must be at least 1".into());
        }
        Ok(o)
    }
}

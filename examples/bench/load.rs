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

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream as StdTcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Bytes, Message, WebSocket};

const USAGE: &str = "\
usage: bench-load SCENARIO [options]      SCENARIO: idle | echo | fanout | connect

common:
  --url URL            WebSocket URL, ws://HOST:PORT/PATH (default ws://127.0.0.1:8080/bench)
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
    raise_nofile_limit();
    start_watchdog(&opts);
    let result = match opts.scenario.as_str() {
        "idle" => idle(&opts),
        "echo" => echo(&opts),
        "fanout" => fanout(&opts),
        "connect" => connect(&opts),
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

// ---------------------------------------------------------------------------
// options

struct Opts {
    scenario: String,
    label: String,
    addr: SocketAddr,
    host: String,
    path: String,
    connections: usize,
    rate: f64,
    inflight: usize,
    messages: usize,
    size: usize,
    warmup: usize,
    duration: Duration,
    hold: Duration,
    timeout: Duration,
    handshake_timeout: Duration,
    timestamps: bool,
    pids: Vec<u32>,
    backend_pids: Vec<u32>,
    push: String,
    push_format: String,
    channel: String,
    publishes: usize,
    interval: Duration,
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
            addr: "127.0.0.1:8080".parse().expect("literal"),
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
            push: "http://127.0.0.1:8081/channels/bench".into(),
            push_format: "raw".into(),
            channel: "bench".into(),
            publishes: 20,
            interval: Duration::from_millis(20),
        };
        let mut url = "ws://127.0.0.1:8080/bench".to_string();
        let mut i = 1;
        while i < args.len() {
            let flag = args[i].as_str();
            if flag == "--no-timestamps" {
                o.timestamps = false;
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
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| format!("--url must start with ws:// ({url})"))?;
        let (host, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        o.addr = host
            .to_socket_addrs()
            .map_err(|e| format!("--url {url}: {e}"))?
            .next()
            .ok_or_else(|| format!("--url {url}: no address"))?;
        o.host = host.to_string();
        o.path = path.to_string();
        if o.connections == 0 {
            return Err("--connections must be at least 1".into());
        }
        Ok(o)
    }
}

/// The generator holds one socket per client connection; 10,000 of them need
/// more than the usual soft limit of 1024 descriptors.
fn raise_nofile_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                eprintln!("bench-load: cannot raise the open-files limit");
            }
        }
    }
}

/// Ends the process after `--timeout`, whatever it is doing, with one JSON line.
fn start_watchdog(opts: &Opts) {
    let timeout = opts.timeout;
    let (scenario, label) = (opts.scenario.clone(), opts.label.clone());
    thread::spawn(move || {
        thread::sleep(timeout);
        println!(
            "{{\"scenario\":\"{scenario}\",\"label\":\"{}\",\"ok\":false,\"error\":\"hard timeout after {}s\"}}",
            json_escape(&label),
            timeout.as_secs()
        );
        println!("{scenario} {label}: FAILED: hard timeout after {timeout:?}");
        let _ = io::stdout().flush();
        std::process::exit(3);
    });
}

// ---------------------------------------------------------------------------
// the client engine

/// The socket under tungstenite: reads with recvmsg to pick up the kernel's
/// receive timestamp of the data just read.
struct TsStream {
    inner: TcpStream,
    timestamps: bool,
    /// CLOCK_REALTIME ns of the last received segment (0: none yet).
    rx_ns: u64,
}

/// `SO_TIMESTAMPNS` (`SO_TIMESTAMPNS_OLD`, a 64-bit timespec on 64-bit
/// Linux); the control message type has the same number.
const SO_TIMESTAMPNS: libc::c_int = 35;

impl Read for TsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.timestamps {
            return self.inner.read(buf);
        }
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control = [0u64; 16];
        // SAFETY: msghdr is plain data; every pointer in it outlives the call.
        let n = unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = std::mem::size_of_val(&control) as _;
            let n = libc::recvmsg(self.inner.as_raw_fd(), &mut msg, 0);
            if n > 0 {
                let mut c = libc::CMSG_FIRSTHDR(&msg);
                while !c.is_null() {
                    if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == SO_TIMESTAMPNS {
                        let ts: libc::timespec =
                            std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                        self.rx_ns = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
                    }
                    c = libc::CMSG_NXTHDR(&msg, c);
                }
            }
            n
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}

impl Write for TsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn enable_timestamps(stream: &TcpStream) -> bool {
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads an int from the pointer we pass.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_TIMESTAMPNS,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as _,
        ) == 0
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

enum Phase {
    Connecting(TcpStream),
    Handshake {
        stream: TcpStream,
        written: usize,
        buf: Vec<u8>,
    },
    Open(Box<WebSocket<TsStream>>),
    /// We sent a close frame; waiting for the server's and its TCP close.
    Closing(Box<WebSocket<TsStream>>),
    Gone,
}

struct Conn {
    phase: Phase,
    started: Instant,
    closing_since: Option<Instant>,
}

enum Ev {
    /// Handshake done (`101`); how long it took from the TCP connect.
    Open { id: usize, took: Duration },
    /// A text or binary message; `rx_ns` is the receive time (CLOCK_REALTIME).
    Msg { id: usize, data: Bytes, rx_ns: u64 },
    /// The connection is gone; `was_open` tells whether it got its `101`.
    Closed {
        id: usize,
        was_open: bool,
        why: String,
    },
}

struct Engine {
    poll: Poll,
    events: Events,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    addr: SocketAddr,
    request: Vec<u8>,
    accept: String,
    config: WebSocketConfig,
    timestamps: bool,
    handshake_timeout: Duration,
    close_timeout: Duration,
    deferred: Vec<Ev>,
    last_sweep: Instant,
    /// Connections past their `101` and not gone.
    open: usize,
    /// Connections before their `101`.
    pending: usize,
}

const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

impl Engine {
    fn new(opts: &Opts) -> io::Result<Engine> {
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\
             User-Agent: bench-load\r\n\r\n",
            opts.path, opts.host
        )
        .into_bytes();
        Ok(Engine {
            poll: Poll::new()?,
            events: Events::with_capacity(4096),
            conns: Vec::new(),
            free: Vec::new(),
            addr: opts.addr,
            request,
            accept: WS_ACCEPT.to_string(),
            // Small buffers: the generator holds up to 10,000 of these.
            config: WebSocketConfig::default()
                .read_buffer_size(4096)
                .write_buffer_size(0),
            timestamps: opts.timestamps,
            handshake_timeout: opts.handshake_timeout,
            close_timeout: Duration::from_secs(3),
            deferred: Vec::new(),
            last_sweep: Instant::now(),
            open: 0,
            pending: 0,
        })
    }

    /// Starts one connection; its id comes back in the events.
    fn connect(&mut self) -> Result<usize, String> {
        let mut stream = TcpStream::connect(self.addr).map_err(|e| format!("connect: {e}"))?;
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            Token(id),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.free.push(id);
            return Err(format!("register: {e}"));
        }
        self.conns[id] = Some(Conn {
            phase: Phase::Connecting(stream),
            started: Instant::now(),
            closing_since: None,
        });
        self.pending += 1;
        Ok(id)
    }

    fn is_open(&self, id: usize) -> bool {
        matches!(
            self.conns.get(id),
            Some(Some(Conn {
                phase: Phase::Open(_),
                ..
            }))
        )
    }

    /// Sends one message; a failure closes the connection (reported by the
    /// next `poll`). False when the connection is not open.
    fn send(&mut self, id: usize, msg: Message) -> bool {
        let Some(Some(conn)) = self.conns.get_mut(id) else {
            return false;
        };
        let Phase::Open(ws) = &mut conn.phase else {
            return false;
        };
        match ws.send(msg) {
            Ok(()) => true,
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => true,
            Err(e) => {
                let why = format!("send: {e}");
                self.finish(id, why);
                false
            }
        }
    }

    /// Starts the closing handshake (close frame 1000); the connection is
    /// reported `Closed` once the server closed it (or after 3 s).
    fn close(&mut self, id: usize) {
        let Some(Some(conn)) = self.conns.get_mut(id) else {
            return;
        };
        let Phase::Open(mut ws) = std::mem::replace(&mut conn.phase, Phase::Gone) else {
            return;
        };
        let _ = ws.close(None);
        let _ = ws.flush();
        conn.phase = Phase::Closing(ws);
        conn.closing_since = Some(Instant::now());
        self.open -= 1;
    }

    /// Drops every connection without a closing handshake.
    fn drop_all(&mut self) {
        for id in 0..self.conns.len() {
            if self.conns[id].is_some() {
                self.finish(id, "dropped".into());
            }
        }
        self.deferred.clear();
    }

    /// Removes a connection and queues its `Closed` event.
    fn finish(&mut self, id: usize, why: String) {
        let Some(mut conn) = self.conns[id].take() else {
            return;
        };
        let was_open = match &mut conn.phase {
            Phase::Connecting(s) | Phase::Handshake { stream: s, .. } => {
                self.pending -= 1;
                let _ = self.poll.registry().deregister(s);
                false
            }
            Phase::Open(ws) => {
                self.open -= 1;
                let _ = self.poll.registry().deregister(&mut ws.get_mut().inner);
                true
            }
            Phase::Closing(ws) => {
                let _ = self.poll.registry().deregister(&mut ws.get_mut().inner);
                true
            }
            Phase::Gone => false,
        };
        self.free.push(id);
        self.deferred.push(Ev::Closed { id, was_open, why });
    }

    /// Waits up to `timeout` for socket events and appends what happened.
    fn poll(&mut self, timeout: Duration, out: &mut Vec<Ev>) {
        out.append(&mut self.deferred);
        let wait = if out.is_empty() {
            timeout
        } else {
            Duration::ZERO
        };
        if let Err(e) = self.poll.poll(&mut self.events, Some(wait))
            && e.kind() != io::ErrorKind::Interrupted
        {
            eprintln!("bench-load: poll: {e}");
        }
        let ready: Vec<(usize, bool, bool)> = self
            .events
            .iter()
            .map(|e| {
                (
                    e.token().0,
                    e.is_readable() || e.is_read_closed() || e.is_error(),
                    e.is_writable() || e.is_error(),
                )
            })
            .collect();
        for (id, readable, writable) in ready {
            self.drive(id, readable, writable, out);
        }
        let now = Instant::now();
        if now.duration_since(self.last_sweep) >= Duration::from_millis(100) {
            self.last_sweep = now;
            self.sweep(now);
        }
        out.append(&mut self.deferred);
    }

    fn sweep(&mut self, now: Instant) {
        for id in 0..self.conns.len() {
            let Some(conn) = &self.conns[id] else {
                continue;
            };
            let expired = match conn.phase {
                Phase::Connecting(_) | Phase::Handshake { .. } => {
                    now.duration_since(conn.started) > self.handshake_timeout
                }
                Phase::Closing(_) => conn
                    .closing_since
                    .is_some_and(|t| now.duration_since(t) > self.close_timeout),
                _ => false,
            };
            if expired {
                let why = match conn.phase {
                    Phase::Closing(_) => "close timeout",
                    _ => "handshake timeout",
                };
                self.finish(id, why.into());
            }
        }
    }

    fn drive(&mut self, id: usize, readable: bool, writable: bool, out: &mut Vec<Ev>) {
        let Some(Some(conn)) = self.conns.get_mut(id) else {
            return;
        };
        let phase = std::mem::replace(&mut conn.phase, Phase::Gone);
        match phase {
            Phase::Connecting(stream) => {
                match stream.take_error() {
                    Ok(None) => {}
                    Ok(Some(e)) | Err(e) => {
                        conn.phase = Phase::Connecting(stream);
                        return self.finish(id, format!("connect: {e}"));
                    }
                }
                match stream.peer_addr() {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                        conn.phase = Phase::Connecting(stream);
                        return;
                    }
                    Err(e) => {
                        conn.phase = Phase::Connecting(stream);
                        return self.finish(id, format!("connect: {e}"));
                    }
                }
                let _ = stream.set_nodelay(true);
                if self.timestamps {
                    enable_timestamps(&stream);
                }
                conn.phase = Phase::Handshake {
                    stream,
                    written: 0,
                    buf: Vec::with_capacity(512),
                };
                self.drive(id, true, true, out);
            }
            Phase::Handshake {
                mut stream,
                mut written,
                mut buf,
            } => {
                while written < self.request.len() {
                    match stream.write(&self.request[written..]) {
                        Ok(n) => written += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            conn.phase = Phase::Handshake {
                                stream,
                                written,
                                buf,
                            };
                            return self.finish(id, format!("write upgrade: {e}"));
                        }
                    }
                }
                let mut chunk = [0u8; 4096];
                let mut eof = false;
                loop {
                    match stream.read(&mut chunk) {
                        Ok(0) => {
                            eof = true;
                            break;
                        }
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            conn.phase = Phase::Handshake {
                                stream,
                                written,
                                buf,
                            };
                            return self.finish(id, format!("read upgrade: {e}"));
                        }
                    }
                }
                match parse_upgrade(&buf, &self.accept) {
                    Ok(Some(head_len)) => {
                        let rest = buf[head_len..].to_vec();
                        let ts = TsStream {
                            inner: stream,
                            timestamps: self.timestamps,
                            rx_ns: 0,
                        };
                        let ws = WebSocket::from_partially_read(
                            ts,
                            rest,
                            Role::Client,
                            Some(self.config),
                        );
                        conn.phase = Phase::Open(Box::new(ws));
                        self.pending -= 1;
                        self.open += 1;
                        out.push(Ev::Open {
                            id,
                            took: conn.started.elapsed(),
                        });
                        // Frames may have come with the 101.
                        self.drive(id, true, false, out);
                    }
                    Ok(None) => {
                        conn.phase = Phase::Handshake {
                            stream,
                            written,
                            buf,
                        };
                        if eof {
                            self.finish(id, "closed during handshake".into());
                        } else if buf_len_of(&self.conns[id]) > 16 * 1024 {
                            self.finish(id, "upgrade response too large".into());
                        }
                    }
                    Err(why) => {
                        conn.phase = Phase::Handshake {
                            stream,
                            written,
                            buf,
                        };
                        self.finish(id, why);
                    }
                }
            }
            Phase::Open(mut ws) | Phase::Closing(mut ws) => {
                let closing = conn.closing_since.is_some();
                if writable {
                    match ws.flush() {
                        Ok(()) => {}
                        Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                        }
                        Err(e) => {
                            conn.phase = if closing {
                                Phase::Closing(ws)
                            } else {
                                Phase::Open(ws)
                            };
                            let why = if closing {
                                "closed".to_string()
                            } else {
                                format!("flush: {e}")
                            };
                            return self.finish(id, why);
                        }
                    }
                }
                let mut ended = None;
                if readable {
                    loop {
                        match ws.read() {
                            Ok(Message::Text(t)) => out.push(Ev::Msg {
                                id,
                                rx_ns: rx_time(&ws),
                                data: Bytes::from(t),
                            }),
                            Ok(Message::Binary(b)) => out.push(Ev::Msg {
                                id,
                                rx_ns: rx_time(&ws),
                                data: b,
                            }),
                            Ok(Message::Close(frame)) => {
                                if !closing && ended.is_none() {
                                    let code = frame.map(|f| u16::from(f.code)).unwrap_or(1005);
                                    ended = Some(format!("server closed ({code})"));
                                }
                            }
                            Ok(_) => {}
                            Err(tungstenite::Error::Io(e))
                                if e.kind() == io::ErrorKind::WouldBlock =>
                            {
                                break;
                            }
                            Err(
                                tungstenite::Error::ConnectionClosed
                                | tungstenite::Error::AlreadyClosed,
                            ) => {
                                ended.get_or_insert_with(|| "closed".to_string());
                                break;
                            }
                            Err(e) => {
                                if closing {
                                    ended.get_or_insert_with(|| "closed".to_string());
                                } else {
                                    ended.get_or_insert_with(|| format!("read: {e}"));
                                }
                                break;
                            }
                        }
                    }
                }
                conn.phase = if closing {
                    Phase::Closing(ws)
                } else {
                    Phase::Open(ws)
                };
                if let Some(why) = ended {
                    self.finish(id, if closing { "closed".into() } else { why });
                }
            }
            Phase::Gone => {}
        }
    }
}

fn buf_len_of(conn: &Option<Conn>) -> usize {
    match conn {
        Some(Conn {
            phase: Phase::Handshake { buf, .. },
            ..
        }) => buf.len(),
        _ => 0,
    }
}

fn rx_time(ws: &WebSocket<TsStream>) -> u64 {
    match ws.get_ref().rx_ns {
        0 => now_ns(),
        ns => ns,
    }
}

/// Ok(Some(head length)) for a valid `101`, Ok(None) while incomplete.
fn parse_upgrade(buf: &[u8], accept: &str) -> Result<Option<usize>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(format!("bad upgrade response: {e}")),
        Ok(httparse::Status::Complete(n)) => {
            let code = resp.code.unwrap_or(0);
            if code != 101 {
                return Err(format!("status {code}"));
            }
            let ok = resp.headers.iter().any(|h| {
                h.name.eq_ignore_ascii_case("sec-websocket-accept") && h.value == accept.as_bytes()
            });
            if !ok {
                return Err("wrong Sec-WebSocket-Accept".into());
            }
            Ok(Some(n))
        }
    }
}

/// Opens `n` connections at `opts.rate` per second, at most `opts.inflight`
/// handshakes at once, until all answered or `limit` passed. Returns the ids
/// of the open ones, the failures by reason, and the time it took.
struct Opened {
    ids: Vec<usize>,
    failures: HashMap<String, usize>,
    took: Duration,
}

fn open_many(engine: &mut Engine, n: usize, opts: &Opts, limit: Duration) -> Opened {
    let start = Instant::now();
    let mut started = 0usize;
    let mut answered = 0usize;
    let mut ids = Vec::with_capacity(n);
    let mut failures: HashMap<String, usize> = HashMap::new();
    let mut events = Vec::new();
    let mut backoff_until = start;
    while answered < n && start.elapsed() < limit {
        let now = Instant::now();
        let budget = ((now.duration_since(start).as_secs_f64() * opts.rate) as usize + 1).min(n);
        while started < budget && engine.pending < opts.inflight && now >= backoff_until {
            match engine.connect() {
                Ok(_) => started += 1,
                Err(why) => {
                    // Out of ports or descriptors: count it, wait a little.
                    *failures.entry(why).or_default() += 1;
                    started += 1;
                    answered += 1;
                    backoff_until = now + Duration::from_millis(50);
                    break;
                }
            }
        }
        engine.poll(Duration::from_millis(2), &mut events);
        for ev in events.drain(..) {
            match ev {
                Ev::Open { id, .. } => {
                    answered += 1;
                    ids.push(id);
                }
                Ev::Closed {
                    was_open: false,
                    why,
                    ..
                } => {
                    answered += 1;
                    *failures.entry(why).or_default() += 1;
                }
                Ev::Closed { .. } | Ev::Msg { .. } => {}
            }
        }
    }
    ids.retain(|id| engine.is_open(*id));
    Opened {
        ids,
        failures,
        took: start.elapsed(),
    }
}

// ---------------------------------------------------------------------------
// process sampling (/proc)

#[derive(Clone, Copy, Default)]
struct Sample {
    procs: usize,
    rss_kib: u64,
    pss_kib: u64,
    /// utime + stime (+ those of reaped children), in seconds.
    cpu_s: f64,
}

/// The given processes and all their descendants (by ppid in /proc/*/stat).
fn process_tree(roots: &[u32]) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(fields) = stat_fields(pid)
                && let Some(ppid) = fields.get(1).and_then(|s| s.parse::<u32>().ok())
            {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut out = Vec::new();
    let mut stack: Vec<u32> = roots.to_vec();
    while let Some(pid) = stack.pop() {
        if out.contains(&pid) {
            continue;
        }
        out.push(pid);
        if let Some(kids) = children.get(&pid) {
            stack.extend(kids);
        }
    }
    out
}

/// Fields of /proc/PID/stat after the command name: [state, ppid, ...];
/// utime is index 11, stime 12, cutime 13, cstime 14.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_string).collect())
}

fn sample(roots: &[u32]) -> Sample {
    let mut s = Sample::default();
    if roots.is_empty() {
        return s;
    }
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    for pid in process_tree(roots) {
        let Some(fields) = stat_fields(pid) else {
            continue;
        };
        s.procs += 1;
        let t: u64 = (11..=14)
            .filter_map(|i| fields.get(i).and_then(|v| v.parse::<u64>().ok()))
            .sum();
        s.cpu_s += t as f64 / ticks;
        if let Ok(text) = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
            for line in text.lines() {
                let kib = |l: &str| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                if line.starts_with("Rss:") {
                    s.rss_kib += kib(line);
                } else if line.starts_with("Pss:") {
                    s.pss_kib += kib(line);
                }
            }
        }
    }
    s
}

fn cpu_only(roots: &[u32]) -> f64 {
    if roots.is_empty() {
        return 0.0;
    }
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    process_tree(roots)
        .into_iter()
        .filter_map(stat_fields)
        .map(|f| {
            (11..=14)
                .filter_map(|i| f.get(i).and_then(|v| v.parse::<u64>().ok()))
                .sum::<u64>() as f64
                / ticks
        })
        .sum()
}

fn own_cpu_s() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut ru) != 0 {
            return 0.0;
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }
}

/// CPU seconds spent by the server tree, the backend tree and this process
/// between `begin` and `end`.
struct Cpu {
    server: f64,
    backend: f64,
    client: f64,
}

impl Cpu {
    fn begin(opts: &Opts) -> Cpu {
        Cpu {
            server: cpu_only(&opts.pids),
            backend: cpu_only(&opts.backend_pids),
            client: own_cpu_s(),
        }
    }
    fn end(&self, opts: &Opts) -> Cpu {
        Cpu {
            server: (cpu_only(&opts.pids) - self.server).max(0.0),
            backend: (cpu_only(&opts.backend_pids) - self.backend).max(0.0),
            client: (own_cpu_s() - self.client).max(0.0),
        }
    }
    fn add_to(&self, r: &mut Report, opts: &Opts) {
        if !opts.pids.is_empty() {
            r.f("server_cpu_s", self.server, 3);
        }
        if !opts.backend_pids.is_empty() {
            r.f("backend_cpu_s", self.backend, 3);
        }
        r.f("client_cpu_s", self.client, 3);
    }
}

// ---------------------------------------------------------------------------
// results

struct Report {
    fields: Vec<(String, String)>,
    ok: bool,
    human: String,
}

impl Report {
    fn new(opts: &Opts) -> Report {
        let mut r = Report {
            fields: Vec::new(),
            ok: true,
            human: String::new(),
        };
        r.s("scenario", &opts.scenario);
        r.s("label", &opts.label);
        r
    }
    fn s(&mut self, k: &str, v: &str) {
        self.fields
            .push((k.into(), format!("\"{}\"", json_escape(v))));
    }
    fn i(&mut self, k: &str, v: u64) {
        self.fields.push((k.into(), v.to_string()));
    }
    fn f(&mut self, k: &str, v: f64, digits: usize) {
        let text = if v.is_finite() {
            format!("{v:.digits$}")
        } else {
            "null".into()
        };
        self.fields.push((k.into(), text));
    }
    fn failures(&mut self, failures: &HashMap<String, usize>) {
        let mut list: Vec<_> = failures.iter().collect();
        list.sort_by(|a, b| b.1.cmp(a.1));
        let mut text = String::from("{");
        for (n, (why, count)) in list.iter().take(5).enumerate() {
            if n > 0 {
                text.push(',');
            }
            let _ = write!(text, "\"{}\":{count}", json_escape(why));
        }
        text.push('}');
        self.fields.push(("failures".into(), text));
    }
    fn json(&self) -> String {
        let mut out = String::from("{");
        let _ = write!(out, "\"ok\":{}", self.ok);
        for (k, v) in &self.fields {
            let _ = write!(out, ",\"{k}\":{v}");
        }
        out.push('}');
        out
    }
}

fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn top_failure(failures: &HashMap<String, usize>) -> String {
    failures
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(why, n)| format!(" (failures: {n}x {why})"))
        .unwrap_or_default()
}

/// Keeps servicing the connections (pongs, closes) for `d`.
fn idle_for(engine: &mut Engine, d: Duration) -> usize {
    let until = Instant::now() + d;
    let mut events = Vec::new();
    let mut closed = 0;
    while Instant::now() < until {
        engine.poll(
            until
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100)),
            &mut events,
        );
        closed += events
            .drain(..)
            .filter(|e| matches!(e, Ev::Closed { .. }))
            .count();
    }
    closed
}

/// Closes every connection politely, waiting at most `limit` for the server.
fn close_all(engine: &mut Engine, limit: Duration) {
    for id in 0..engine.conns.len() {
        engine.close(id);
    }
    let until = Instant::now() + limit;
    let mut events = Vec::new();
    while engine.conns.iter().any(Option::is_some) && Instant::now() < until {
        engine.poll(Duration::from_millis(20), &mut events);
        events.clear();
    }
    engine.drop_all();
}

// ---------------------------------------------------------------------------
// scenarios

fn idle(opts: &Opts) -> Result<Report, String> {
    let mut engine = Engine::new(opts).map_err(|e| e.to_string())?;
    let before = sample(&opts.pids);
    let limit = Duration::from_secs_f64(opts.connections as f64 / opts.rate + 30.0);
    let opened = open_many(&mut engine, opts.connections, opts, limit);
    idle_for(&mut engine, Duration::from_secs(1).min(opts.hold));
    idle_for(&mut engine, opts.hold);
    let alive = engine.open;
    let after = sample(&opts.pids);
    close_all(&mut engine, Duration::from_secs(5));

    let mut r = Report::new(opts);
    r.i("requested", opts.connections as u64);
    r.i("opened", opened.ids.len() as u64);
    r.i("alive", alive as u64);
    r.f("open_s", opened.took.as_secs_f64(), 3);
    r.f(
        "open_per_s",
        opened.ids.len() as f64 / opened.took.as_secs_f64(),
        0,
    );
    r.failures(&opened.failures);
    let mut human = format!(
        "idle {}: {alive}/{} connections alive after {:.1}s hold (opened in {:.1}s){}",
        opts.label,
        opts.connections,
        opts.hold.as_secs_f64(),
        opened.took.as_secs_f64(),
        top_failure(&opened.failures)
    );
    if !opts.pids.is_empty() {
        let per = |a: u64, b: u64| {
            if alive == 0 {
                f64::NAN
            } else {
                (b as f64 - a as f64) / alive as f64
            }
        };
        r.i("procs_before", before.procs as u64);
        r.i("procs_after", after.procs as u64);
        r.i("rss_before_kib", before.rss_kib);
        r.i("rss_after_kib", after.rss_kib);
        r.i("pss_before_kib", before.pss_kib);
        r.i("pss_after_kib", after.pss_kib);
        r.f("rss_per_conn_kib", per(before.rss_kib, after.rss_kib), 2);
        r.f("pss_per_conn_kib", per(before.pss_kib, after.pss_kib), 2);
        let _ = write!(
            human,
            "; server RSS {} → {} KiB ({:.2} KiB/conn), PSS {} → {} KiB ({:.2} KiB/conn), {} → {} processes",
            before.rss_kib,
            after.rss_kib,
            per(before.rss_kib, after.rss_kib),
            before.pss_kib,
            after.pss_kib,
            per(before.pss_kib, after.pss_kib),
            before.procs,
            after.procs
        );
    }
    r.ok = alive > 0;
    r.human = human;
    Ok(r)
}

/// Message `seq` of connection `id`: a readable prefix, padded to `size`.
fn payload(id: usize, seq: usize, size: usize) -> String {
    let mut s = format!("{id}:{seq}:");
    while s.len() < size {
        s.push('x');
    }
    s.truncate(size);
    s
}

fn echo(opts: &Opts) -> Result<Report, String> {
    let mut engine = Engine::new(opts).map_err(|e| e.to_string())?;
    let c = opts.connections;
    let opened = open_many(&mut engine, c, opts, Duration::from_secs(30));
    if opened.ids.is_empty() {
        return Err(format!(
            "no connection opened{}",
            top_failure(&opened.failures)
        ));
    }
    let ids = opened.ids.clone();
    // Per connection: messages left, the one in flight (payload, sent at).
    struct Slot {
        left: usize,
        seq: usize,
        expect: String,
        sent_ns: u64,
        waiting: bool,
    }
    let mut slots: HashMap<usize, Slot> = HashMap::new();
    let mut latencies: Vec<u64> = Vec::with_capacity(ids.len() * opts.messages);
    let mut mismatches = 0u64;
    let mut closed = 0u64;
    let mut events = Vec::new();
    let mut cpu = None;
    let mut measure_start = Instant::now();
    let mut last_done = measure_start;

    for (round, per_conn) in [(0, opts.warmup), (1, opts.messages)] {
        if per_conn == 0 {
            continue;
        }
        slots.clear();
        if round == 1 {
            latencies.clear();
            cpu = Some(Cpu::begin(opts));
            measure_start = Instant::now();
        }
        let deadline = Instant::now()
            + if round == 1 {
                opts.duration
            } else {
                Duration::from_secs(10)
            };
        for &id in &ids {
            let expect = payload(id, 0, opts.size);
            let sent_ns = now_ns();
            if engine.send(id, Message::text(expect.clone())) {
                slots.insert(
                    id,
                    Slot {
                        left: per_conn - 1,
                        seq: 0,
                        expect,
                        sent_ns,
                        waiting: true,
                    },
                );
            }
        }
        let mut waiting = slots.len();
        let grace = deadline + Duration::from_secs(2);
        while waiting > 0 && Instant::now() < grace {
            engine.poll(Duration::from_millis(5), &mut events);
            let now = Instant::now();
            for ev in events.drain(..) {
                match ev {
                    Ev::Msg { id, data, rx_ns } => {
                        let Some(slot) = slots.get_mut(&id) else {
                            continue;
                        };
                        if !slot.waiting {
                            continue;
                        }
                        if data.as_ref() != slot.expect.as_bytes() {
                            mismatches += 1;
                        }
                        latencies.push(rx_ns.saturating_sub(slot.sent_ns));
                        last_done = now;
                        if slot.left > 0 && now < deadline {
                            slot.left -= 1;
                            slot.seq += 1;
                            slot.expect = payload(id, slot.seq, opts.size);
                            slot.sent_ns = now_ns();
                            if !engine.send(id, Message::text(slot.expect.clone())) {
                                slot.waiting = false;
                                waiting -= 1;
                            }
                        } else {
                            slot.waiting = false;
                            waiting -= 1;
                        }
                    }
                    Ev::Closed { id, .. } => {
                        closed += 1;
                        if let Some(slot) = slots.get_mut(&id)
                            && slot.waiting
                        {
                            slot.waiting = false;
                            waiting -= 1;
                        }
                    }
                    Ev::Open { .. } => {}
                }
            }
        }
    }
    let cpu = cpu.map(|c| c.end(opts));
    let elapsed = last_done.duration_since(measure_start).as_secs_f64();
    close_all(&mut engine, Duration::from_secs(3));

    latencies.sort_unstable();
    let n = latencies.len() as u64;
    let rate = n as f64 / elapsed.max(1e-9);
    let mut r = Report::new(opts);
    r.i("connections", ids.len() as u64);
    r.i("size", opts.size as u64);
    r.i("messages", n);
    r.f("elapsed_s", elapsed, 3);
    r.f("msgs_per_s", rate, 0);
    r.f("p50_ms", ms(pct(&latencies, 50.0)), 3);
    r.f("p90_ms", ms(pct(&latencies, 90.0)), 3);
    r.f("p99_ms", ms(pct(&latencies, 99.0)), 3);
    r.f("max_ms", ms(latencies.last().copied().unwrap_or(0)), 3);
    r.i("mismatches", mismatches);
    r.i("closed", closed);
    r.failures(&opened.failures);
    if let Some(cpu) = &cpu {
        cpu.add_to(&mut r, opts);
        if n > 0 && !opts.pids.is_empty() {
            r.f("server_cpu_us_per_msg", cpu.server * 1e6 / n as f64, 2);
        }
    }
    r.ok = n > 0 && mismatches == 0;
    r.human = format!(
        "echo {}: {rate:.0} msg/s over {} connections ({n} round trips of {} B in {elapsed:.2}s), \
         latency p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms{}{}",
        opts.label,
        ids.len(),
        opts.size,
        ms(pct(&latencies, 50.0)),
        ms(pct(&latencies, 90.0)),
        ms(pct(&latencies, 99.0)),
        ms(latencies.last().copied().unwrap_or(0)),
        if mismatches > 0 {
            format!(", {mismatches} WRONG echoes")
        } else {
            String::new()
        },
        cpu.as_ref()
            .filter(|_| !opts.pids.is_empty())
            .map(|c| format!(", server CPU {:.2}s", c.server))
            .unwrap_or_default()
    );
    Ok(r)
}

/// Minimal blocking HTTP/1.1 client with keep-alive, for the push API.
struct Http {
    addr: SocketAddr,
    host: String,
    path: String,
    stream: Option<StdTcpStream>,
    buf: Vec<u8>,
}

impl Http {
    fn new(url: &str) -> Result<Http, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("--push must start with http:// ({url})"))?;
        let (host, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        let addr = host
            .to_socket_addrs()
            .map_err(|e| format!("--push {url}: {e}"))?
            .next()
            .ok_or_else(|| format!("--push {url}: no address"))?;
        Ok(Http {
            addr,
            host: host.into(),
            path: path.into(),
            stream: None,
            buf: Vec::new(),
        })
    }

    /// Sends one POST (reconnecting once if the kept-alive socket died).
    fn send(&mut self, content_type: &str, body: &[u8]) -> io::Result<()> {
        let mut req = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            self.path,
            self.host,
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        for attempt in 0..2 {
            if self.stream.is_none() {
                let s = StdTcpStream::connect_timeout(&self.addr, Duration::from_secs(5))?;
                s.set_nodelay(true)?;
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                self.stream = Some(s);
                self.buf.clear();
            }
            let s = self.stream.as_mut().expect("just set");
            match s.write_all(&req) {
                Ok(()) => return Ok(()),
                Err(e) if attempt == 1 => return Err(e),
                Err(_) => self.stream = None,
            }
        }
        Ok(())
    }

    /// Reads the response to the last request: (status, body).
    fn receive(&mut self) -> io::Result<(u16, Vec<u8>)> {
        let s = self
            .stream
            .as_mut()
            .ok_or_else(|| io::Error::other("not connected"))?;
        let mut chunk = [0u8; 8192];
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head) = resp
                .parse(&self.buf)
                .map_err(|e| io::Error::other(e.to_string()))?
            {
                let code = resp.code.unwrap_or(0);
                let mut len = 0usize;
                let mut close = false;
                for h in resp.headers.iter() {
                    if h.name.eq_ignore_ascii_case("content-length") {
                        len = std::str::from_utf8(h.value)
                            .ok()
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                    } else if h.name.eq_ignore_ascii_case("connection")
                        && h.value.eq_ignore_ascii_case(b"close")
                    {
                        close = true;
                    }
                }
                if self.buf.len() >= head + len {
                    let body = self.buf[head..head + len].to_vec();
                    self.buf.drain(..head + len);
                    if close {
                        self.stream = None;
                    }
                    return Ok((code, body));
                }
            }
            let n = s.read(&mut chunk)?;
            if n == 0 {
                self.stream = None;
                return Err(io::Error::other("push API closed the connection"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn publish_body(opts: &Opts, message: &str) -> (String, Vec<u8>) {
    if opts.push_format == "pushpin" {
        let json = format!(
            "{{\"items\":[{{\"channel\":\"{}\",\"formats\":{{\"ws-message\":{{\"content\":\"{}\"}}}}}}]}}",
            json_escape(&opts.channel),
            json_escape(message)
        );
        ("application/json".into(), json.into_bytes())
    } else {
        (
            "text/plain; charset=utf-8".into(),
            message.as_bytes().to_vec(),
        )
    }
}

/// The publish sequence number at the start of a fanout message (`K|...`),
/// or None for a warm-up message (`w|...`).
fn seq_of(data: &[u8]) -> Option<usize> {
    let end = data.iter().position(|b| *b == b'|')?;
    std::str::from_utf8(&data[..end]).ok()?.parse().ok()
}

fn fanout(opts: &Opts) -> Result<Report, String> {
    let mut engine = Engine::new(opts).map_err(|e| e.to_string())?;
    let mut http = Http::new(&opts.push)?;
    let limit = Duration::from_secs_f64(opts.connections as f64 / opts.rate + 30.0);
    let opened = open_many(&mut engine, opts.connections, opts, limit);
    if opened.ids.is_empty() {
        return Err(format!(
            "no subscriber connected{}",
            top_failure(&opened.failures)
        ));
    }
    let subscribers = opened.ids.len();
    let mut events = Vec::new();
    let mut publish_errors = 0u64;
    let mut last_status = 0u16;

    // Warm-up: publish until every subscriber got one (subscriptions may
    // become effective a little after the 101, e.g. in Pushpin).
    let mut warmed: HashMap<usize, bool> = opened.ids.iter().map(|id| (*id, false)).collect();
    let mut warm_count = 0usize;
    let warm_deadline = Instant::now() + Duration::from_secs(30);
    let warm_msg = {
        let mut s = String::from("w|");
        while s.len() < opts.size {
            s.push('x');
        }
        s
    };
    while warm_count < engine.open.min(subscribers) && Instant::now() < warm_deadline {
        let (ct, body) = publish_body(opts, &warm_msg);
        http.send(&ct, &body)
            .map_err(|e| format!("publish to {}: {e}", opts.push))?;
        // Wait until everyone has it, or deliveries stopped for a while (a
        // rate-limited server may take seconds for one publish).
        let mut last_progress = Instant::now();
        while warm_count < engine.open.min(subscribers)
            && last_progress.elapsed() < Duration::from_millis(1000)
            && Instant::now() < warm_deadline
        {
            engine.poll(Duration::from_millis(10), &mut events);
            for ev in events.drain(..) {
                if let Ev::Msg { id, .. } = ev
                    && let Some(w) = warmed.get_mut(&id)
                {
                    last_progress = Instant::now();
                    if !*w {
                        *w = true;
                        warm_count += 1;
                    }
                }
            }
        }
        match http.receive() {
            Ok((status, _)) => last_status = status,
            Err(e) => return Err(format!("publish response from {}: {e}", opts.push)),
        }
    }
    idle_for(&mut engine, Duration::from_millis(200));
    let reachable = engine.open;

    // Measured publishes, one at a time.
    let cpu = Cpu::begin(opts);
    let mut last_lat: Vec<u64> = Vec::new();
    let mut first_lat: Vec<u64> = Vec::new();
    let mut deliveries = 0u64;
    let mut missing = 0u64;
    let mut busy_ns = 0u64;
    let phase_deadline = Instant::now() + opts.duration;
    for k in 0..opts.publishes {
        if Instant::now() >= phase_deadline {
            break;
        }
        let msg = {
            let mut s = format!("{k}|");
            while s.len() < opts.size {
                s.push('x');
            }
            s
        };
        let (ct, body) = publish_body(opts, &msg);
        let want = engine.open;
        let t0 = now_ns();
        http.send(&ct, &body)
            .map_err(|e| format!("publish to {}: {e}", opts.push))?;
        let mut got = 0usize;
        let (mut first, mut last) = (u64::MAX, 0u64);
        let until = Instant::now() + Duration::from_secs(10);
        while got < want && Instant::now() < until {
            engine.poll(Duration::from_millis(5), &mut events);
            for ev in events.drain(..) {
                if let Ev::Msg { data, rx_ns, .. } = ev
                    && seq_of(&data) == Some(k)
                {
                    got += 1;
                    first = first.min(rx_ns);
                    last = last.max(rx_ns);
                }
            }
        }
        match http.receive() {
            Ok((status, _)) => {
                last_status = status;
                if !(200..300).contains(&status) {
                    publish_errors += 1;
                }
            }
            Err(_) => publish_errors += 1,
        }
        deliveries += got as u64;
        missing += (want - got.min(want)) as u64;
        if got > 0 {
            last_lat.push(last.saturating_sub(t0));
            first_lat.push(first.saturating_sub(t0));
            busy_ns += last.saturating_sub(t0);
        }
        if !opts.interval.is_zero() {
            idle_for(&mut engine, opts.interval);
        }
    }
    let cpu = cpu.end(opts);
    close_all(&mut engine, Duration::from_secs(5));

    let rounds = last_lat.len();
    last_lat.sort_unstable();
    first_lat.sort_unstable();
    let frames_per_s = deliveries as f64 / (busy_ns as f64 / 1e9).max(1e-9);
    let mut r = Report::new(opts);
    r.i("subscribers", subscribers as u64);
    r.i("reached_in_warmup", warm_count as u64);
    r.i("reachable", reachable as u64);
    r.i("publishes", rounds as u64);
    r.i("size", opts.size as u64);
    r.i("deliveries", deliveries);
    r.i("missing", missing);
    r.i("publish_errors", publish_errors);
    r.i("last_publish_status", last_status as u64);
    r.f("median_last_ms", ms(pct(&last_lat, 50.0)), 3);
    r.f("max_last_ms", ms(last_lat.last().copied().unwrap_or(0)), 3);
    r.f("median_first_ms", ms(pct(&first_lat, 50.0)), 3);
    r.f("frames_per_s", frames_per_s, 0);
    r.failures(&opened.failures);
    cpu.add_to(&mut r, opts);
    r.ok = rounds > 0 && missing == 0 && publish_errors == 0;
    r.human = format!(
        "fanout {}: {} publishes to {subscribers} subscribers ({warm_count} reached in warm-up): \
         last delivery median {:.3} ms, max {:.3} ms (first {:.3} ms), {frames_per_s:.0} frames/s, \
         {missing} missing, {publish_errors} publish errors{}",
        opts.label,
        rounds,
        ms(pct(&last_lat, 50.0)),
        ms(last_lat.last().copied().unwrap_or(0)),
        ms(pct(&first_lat, 50.0)),
        top_failure(&opened.failures)
    );
    Ok(r)
}

fn connect(opts: &Opts) -> Result<Report, String> {
    let mut engine = Engine::new(opts).map_err(|e| e.to_string())?;
    let c = opts.connections;
    let mut events = Vec::new();
    let mut failures: HashMap<String, usize> = HashMap::new();
    let mut handshakes: Vec<u64> = Vec::new();
    let mut cycles = 0u64;
    let cpu = Cpu::begin(opts);
    let start = Instant::now();
    let deadline = start + opts.duration;
    let mut active = 0usize;
    let mut backoff_until = start;
    while Instant::now() < deadline {
        let now = Instant::now();
        while active < c && now >= backoff_until {
            match engine.connect() {
                Ok(_) => active += 1,
                Err(why) => {
                    *failures.entry(why).or_default() += 1;
                    backoff_until = now + Duration::from_millis(20);
                    break;
                }
            }
        }
        engine.poll(Duration::from_millis(5), &mut events);
        for ev in events.drain(..) {
            match ev {
                Ev::Open { id, took } => {
                    handshakes.push(took.as_nanos() as u64);
                    engine.close(id);
                }
                Ev::Closed { was_open, why, .. } => {
                    active -= 1;
                    if was_open {
                        cycles += 1;
                    } else {
                        *failures.entry(why).or_default() += 1;
                    }
                }
                Ev::Msg { .. } => {}
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu.end(opts);
    close_all(&mut engine, Duration::from_secs(3));

    let n = handshakes.len() as u64;
    handshakes.sort_unstable();
    let rate = n as f64 / elapsed;
    let failed: usize = failures.values().sum();
    let mut r = Report::new(opts);
    r.i("concurrency", c as u64);
    r.i("handshakes", n);
    r.i("cycles", cycles);
    r.i("failed", failed as u64);
    r.f("elapsed_s", elapsed, 3);
    r.f("handshakes_per_s", rate, 0);
    r.f("p50_ms", ms(pct(&handshakes, 50.0)), 3);
    r.f("p99_ms", ms(pct(&handshakes, 99.0)), 3);
    r.f("max_ms", ms(handshakes.last().copied().unwrap_or(0)), 3);
    r.failures(&failures);
    cpu.add_to(&mut r, opts);
    if n > 0 && !opts.pids.is_empty() {
        r.f(
            "server_cpu_us_per_handshake",
            cpu.server * 1e6 / n as f64,
            1,
        );
    }
    r.ok = n > 0;
    r.human = format!(
        "connect {}: {rate:.0} handshakes/s at concurrency {c} ({n} in {elapsed:.1}s, {failed} failed), \
         handshake p50 {:.3} ms, p99 {:.3} ms{}",
        opts.label,
        ms(pct(&handshakes, 50.0)),
        ms(pct(&handshakes, 99.0)),
        top_failure(&failures)
    );
    Ok(r)
}

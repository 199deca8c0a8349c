//! Defences against hostile or careless clients: the connection limit, idle timeouts, a saturated
//! worker queue, garbage and connection churn, and running out of file descriptors.

mod support;

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use support::*;
use tungstenite::Message;
use tungstenite::stream::MaybeTlsStream;

const T: Duration = Duration::from_secs(5);
/// Churn: this many hostile threads, each doing at most this many rounds within the budget.
const CHURN_THREADS: u64 = 20;
const CHURN_ROUNDS: usize = 500;
/// Half-handshakes each hostile thread keeps open at once.
const HALF_OPEN: usize = 16;
const CHURN_BUDGET: Duration = Duration::from_secs(3);
/// The well-behaved client's pace during the churn, and its bound on one round trip.
const PACE: Duration = Duration::from_millis(20);
const MAX_RTT: Duration = Duration::from_secs(1);
/// Runs its first argument with the other arguments under a limit of 40 file descriptors.
const LOW_FD_LIMIT: &str = "ulimit -n 40; exec \"$0\" \"$@\"";

fn echo(client: &mut Client, text: &str) {
    client.send(Message::text(text)).unwrap();
    assert_eq!(recv_text(client), text);
}

fn count(reqs: &[BackendRequest], event: &str) -> usize {
    reqs.iter().filter(|q| q.event() == event).count()
}

fn raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, T).expect("TCP connect");
    s.set_read_timeout(Some(T)).unwrap();
    s.set_write_timeout(Some(T)).unwrap();
    s
}

/// Sends `request` on a fresh connection and reads the whole answer (the server closes after
/// a rejection); a server that keeps the connection fails the read after 5 s.
fn answer(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = raw(addr);
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("a complete answer");
    String::from_utf8_lossy(&out).into_owned()
}

/// Connects, retrying while the server turns clients away, until it accepts one.
fn accepted(url: &str) -> Client {
    let mut client = None;
    wait_until(T, &format!("{url} accepts a client"), || {
        client = try_connect_with(url, &[]).ok();
        client.is_some()
    });
    client.unwrap()
}

/// `queued_events` from /healthz: jobs waiting for a worker.
#[test]
fn the_client_over_max_connections_gets_503_and_a_freed_slot_is_reused() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &["--max-connections", "5"]);
    let url = server.ws_url("/");
    let mut clients: Vec<Client> = (0..5).map(|_| connect(&url)).collect();
    // Nothing sent: the 503 is written at accept, before any request is read.
    let sixth = answer(server.ws_addr, b"");
    assert!(sixth.starts_with("HTTP/1.1 503 "), "{sixth}");
    assert!(sixth.contains("--max-connections"), "{sixth}");
    for (i, client) in clients.iter_mut().enumerate() {
        echo(client, &format!("still served {i}"));
    }
    drop(clients.pop()); // its slot frees once its close event is delivered
    clients.push(accepted(&url));
    for (i, client) in clients.iter_mut().enumerate() {
        echo(client, &format!("after the swap {i}"));
    }
    let opens = count(&backend.requests(), "open");
    assert_eq!(opens, 6, "refusals never reach the backend");
}

#[test]
fn idle_timeout_closes_silent_clients_and_spares_talkative_ones() {
    let backend = TestBackend::echo();
    let args = ["--idle-timeout", "500ms", "--ping-interval", "off"];
    let server = Wscgi::start(&backend.url(), &args);
    let started = Instant::now();
    let mut silent = connect(&server.ws_url("/silent"));
    let mut talker = connect(&server.ws_url("/talker"));
    let mut n = 0;
    while started.elapsed() < Duration::from_millis(1500) && n < 30 {
        n += 1;
        echo(&mut talker, &format!("m{n}"));
        thread::sleep(Duration::from_millis(100)); // the pace under test, not a synchronisation
    }
    let frame = recv_close(&mut silent).expect("a close frame with a code");
    assert_eq!(u16::from(frame.code), 1000);
    assert_eq!(frame.reason.as_str(), "idle timeout");
    let is_close = |q: &BackendRequest, p| q.event() == "close" && q.header("ws-path") == Some(p);
    let reqs = backend.wait_for(T, |r| r.iter().any(|q| is_close(q, "/silent")));
    let close = reqs.iter().find(|q| is_close(q, "/silent")).unwrap();
    assert_eq!(close.header("ws-close-code"), Some("1000"));
    assert_eq!(close.header("ws-close-reason"), Some("idle timeout"));
    let after = close.at.duration_since(started);
    let expected = Duration::from_millis(500)..Duration::from_millis(1500);
    assert!(expected.contains(&after), "closed after {after:?}");

    echo(&mut talker, "still open after 1.5 s");
    assert!(!backend.requests().iter().any(|q| is_close(q, "/talker")));
}

#[test]
fn a_saturated_worker_queue_turns_new_clients_away_and_loses_nothing() {
    const CLIENTS: usize = 80;
    // Message replies take 300 ms until the test opens the gate, then the backlog drains fast.
    let slow = Arc::new(AtomicBool::new(true));
    let gate = Arc::clone(&slow);
    let backend = TestBackend::start(move |req| {
        let slow = req.event() == "message" && gate.load(Ordering::SeqCst);
        let ms = if slow { 300 } else { 0 };
        BackendReply::ok()
            .body(req.body.clone())
            .delay(Duration::from_millis(ms))
    });
    let server = Wscgi::start(&backend.url(), &["--workers", "1"]);
    let url = server.ws_url("/");
    let mut clients: Vec<Client> = (0..CLIENTS).map(|_| connect(&url)).collect();
    // One job per connection can wait for the worker; each has a second message behind it.
    for (i, client) in clients.iter_mut().enumerate() {
        client.send(Message::text(format!("{i}.0"))).unwrap();
        client.send(Message::text(format!("{i}.1"))).unwrap();
    }
    let saturated = || queued_jobs(&server) >= 64;
    wait_until(T, "64 jobs wait for the one worker", saturated);
    let refused = answer(server.ws_addr, b"");
    assert!(refused.starts_with("HTTP/1.1 503 "), "{refused}");
    assert!(refused.contains("backend queue full"), "{refused}");

    slow.store(false, Ordering::SeqCst);
    let all = |r: &[BackendRequest]| count(r, "message") == 2 * CLIENTS;
    backend.wait_for(Duration::from_secs(20), all);
    for (i, client) in clients.iter_mut().enumerate() {
        let got = [recv_text(client), recv_text(client)];
        assert_eq!(got, [format!("{i}.0"), format!("{i}.1")], "client {i}");
    }
    // Each message reached the backend once (each reply proves one), the first one first.
    let reqs = backend.requests();
    assert_eq!(count(&reqs, "message"), 2 * CLIENTS);
    for q in reqs.iter().filter(|q| q.event() == "message") {
        let seq = if q.body_str().ends_with(".0") { 1 } else { 2 };
        assert_eq!(q.seq(), seq, "{}", q.body_str());
    }
    assert_eq!(
        count(&reqs, "open"),
        CLIENTS,
        "the refused client never reached it"
    );
    echo(&mut connect(&url), "the backlog drained");
}

/// 1 to `max` bytes from xorshift64: reproducible garbage without a dependency.
fn noise(state: &mut u64, max: usize) -> Vec<u8> {
    let mut next = || {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    };
    let n = 1 + (next() % max as u64) as usize;
    (0..n).map(|_| next() as u8).collect()
}

/// One hostile client: rounds of garbage, half-handshakes, oversized heads and WebSockets
/// dropped mid-flight, until [`CHURN_ROUNDS`] or `until`. Returns the rounds done.
fn churn(addr: SocketAddr, seed: u64, until: Instant) -> usize {
    let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut half_open = Vec::new();
    let big =
        upgrade_request("/big").replace("Host:", &format!("X-Pad: {}\r\nHost:", "a".repeat(9000)));
    let mut rounds = 0;
    while rounds < CHURN_ROUNDS && Instant::now() < until {
        rounds += 1;
        let garbage = noise(&mut rng, 4096);
        let _ = raw(addr).write_all(&garbage); // then dropped
        let head = upgrade_request("/half");
        let mut half = raw(addr);
        let cut = noise(&mut rng, head.len()).len() - 1;
        let _ = half.write_all(&head.as_bytes()[..cut]);
        if half_open.len() == HALF_OPEN {
            half_open.remove(0);
        }
        half_open.push(half); // held for a while, then dropped
        let refused = answer(addr, big.as_bytes());
        assert!(refused.starts_with("HTTP/1.1 431 "), "{refused}");
        let mut ws = connect(&format!("ws://{addr}/garbage"));
        if let MaybeTlsStream::Plain(tcp) = ws.get_mut() {
            let _ = tcp.write_all(&noise(&mut rng, 256)); // then dropped without a close frame
        }
        drop(connect(&format!("ws://{addr}/dropped")));
    }
    rounds
}

#[test]
fn garbage_and_churn_do_not_delay_a_well_behaved_client() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let mut good = connect(&server.ws_url("/good"));
    let (until, addr) = (Instant::now() + CHURN_BUDGET, server.ws_addr);
    let threads: Vec<_> = (0..CHURN_THREADS)
        .map(|seed| thread::spawn(move || churn(addr, seed, until)))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut sent, mut worst) = (0, Duration::ZERO);
    while threads.iter().any(|t| !t.is_finished()) && sent < 1000 {
        assert!(Instant::now() < deadline, "churn threads still running");
        sent += 1;
        let text = format!("tick {sent}");
        let started = Instant::now();
        good.send(Message::text(text.clone())).unwrap();
        assert_eq!(recv_text(&mut good), text, "every reply, in order");
        let rtt = started.elapsed();
        assert!(rtt < MAX_RTT, "round trip {sent} took {rtt:?}");
        worst = worst.max(rtt);
        thread::sleep(PACE.saturating_sub(rtt)); // the pace under test
    }
    let rounds: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    eprintln!("churn: {rounds} rounds; {sent} round trips, the slowest {worst:?}");
    assert!(sent >= 20, "only {sent} round trips during the churn");

    // Every WebSocket the churn opened got its close event; only the good one is still open.
    let closed = |r: &[BackendRequest]| count(r, "close") + 1 == count(r, "open");
    let reqs = backend.wait_for(T, closed);
    assert!(count(&reqs, "open") > 2 * CHURN_THREADS as usize);
    let health = http(server.push_addr, "GET", "/healthz", &[], b"");
    assert_eq!(health.status, 200, "{}", health.body_str());
    echo(&mut connect(&server.ws_url("/after")), "still accepting");
    echo(&mut good, "and still serving");
}

/// Kills and reaps the wscgi process, also when a test fails half-way.
struct Guard(std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// User plus system CPU time of process `pid` (all its threads), from /proc/<pid>/stat.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let (_, after_name) = stat.rsplit_once(')').unwrap();
    let f: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / per_second)
}

#[test]
fn out_of_file_descriptors_backs_off_logs_once_and_recovers() {
    let backend = TestBackend::echo();
    // Two free ports (both held at once so they differ).
    let bind = || std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let free = [bind(), bind()];
    let (ws, push) = (free[0].local_addr().unwrap(), free[1].local_addr().unwrap());
    drop(free);
    let log = format!(
        "{}/emfile-{}.log",
        env!("CARGO_TARGET_TMPDIR"),
        std::process::id()
    );
    let stderr = File::create(&log).unwrap();
    let (ws_text, push_text, url) = (ws.to_string(), push.to_string(), backend.url());
    #[rustfmt::skip]
    let args = ["--backend", &url, "--listen", &ws_text, "--push-listen", &push_text,
        "--workers", "2", "--log-level", "warn"];
    let child = Command::new("sh")
        .args(["-c", LOW_FD_LIMIT, env!("CARGO_BIN_EXE_wscgi")])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start wscgi under ulimit -n 40");
    let mut wscgi = Guard(child);
    let pid = wscgi.0.id();
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();
    let mut alive = || {
        let running = wscgi.0.try_wait().unwrap().is_none();
        assert!(running, "wscgi exited: {}", logged());
    };
    wait_until(T, "wscgi listens", || {
        alive();
        TcpStream::connect(ws).is_ok()
    });
    backend.wait_for(T, |r| count(r, "reset") == 1);

    // More connections than it has descriptors: it accepts what it can, the rest wait in the
    // backlog, and accept() fails with EMFILE.
    let hogs: Vec<TcpStream> = (0..60).map(|_| raw(ws)).collect();
    wait_until(T, "accept fails", || logged().contains("accept failed"));
    let before = cpu_time(pid);
    thread::sleep(Duration::from_secs(2)); // proving an absence: no busy loop while out of fds
    let spent = cpu_time(pid).saturating_sub(before);
    assert!(spent.as_millis() < 500, "{spent:?} CPU in 2 s out of fds");
    alive();

    drop(hogs);
    echo(&mut accepted(&format!("ws://{ws}/")), "recovered");
    let text = logged();
    let lines = text.lines().filter(|l| l.contains("accept failed")).count();
    assert!((1..=3).contains(&lines), "{lines} lines:\n{text}");
    let _ = std::fs::remove_file(&log);
}

/// A client that keeps sending is not idle, even while wscgi has stopped reading it because of
/// its own backpressure (here `--max-pending 1` behind a 1.5 s backend request).
#[test]
fn a_client_paused_by_backpressure_is_not_idle() {
    let backend = TestBackend::start(|req| {
        let ms = if req.body == b"slow" { 1500 } else { 0 };
        BackendReply::ok()
            .body(req.body.clone())
            .delay(Duration::from_millis(ms))
    });
    #[rustfmt::skip]
    let args = ["--idle-timeout", "500ms", "--ping-interval", "off", "--max-pending", "1"];
    let server = Wscgi::start(&backend.url(), &args);
    let mut client = connect(&server.ws_url("/busy"));
    let started = Instant::now();
    let mut sent = vec!["slow".to_string()];
    client.send(Message::text("slow")).unwrap();
    while started.elapsed() < Duration::from_millis(1500) && sent.len() < 20 {
        thread::sleep(Duration::from_millis(100)); // the pace under test
        let text = format!("m{}", sent.len());
        client.send(Message::text(text.clone())).unwrap();
        sent.push(text);
    }
    for want in &sent {
        assert_eq!(&recv_text(&mut client), want); // not a close frame 1000 "idle timeout"
    }
}

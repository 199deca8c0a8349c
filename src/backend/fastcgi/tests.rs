//! The client against fake servers (always) and a real php-fpm (when `php-fpm8.2` is
//! installed; skipped with a note otherwise).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::*;
use crate::backend::cgi_env::http_var;
use crate::reply::CloseRequest;

const SCRIPT: &str = r#"<?php
http_response_code((int)($_SERVER['HTTP_WS_STATUS'] ?? 200));
header('WS-Close: 4000 bye');
header('Content-Type: text/plain');
if (isset($_SERVER['HTTP_WS_SLEEP_MS'])) { usleep(1000 * (int)$_SERVER['HTTP_WS_SLEEP_MS']); }
if (isset($_SERVER['HTTP_WS_STDERR'])) {
    for ($i = 0; $i < 3; $i++) { error_log($_SERVER['HTTP_WS_STDERR'] . " $i"); }
}
if (isset($_SERVER['HTTP_WS_SIZE'])) { echo str_repeat('x', (int)$_SERVER['HTTP_WS_SIZE']); exit; }
echo $_SERVER['HTTP_WS_EVENT'], ':', file_get_contents('php://input');
"#;

/// A php-fpm with a TCP pool, a unix pool and a unix pool whose children exit after two
/// requests; killed with its workers on drop.
struct Fpm {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for Fpm {
    fn drop(&mut self) {
        // The master calls setsid(): its process group holds the workers, which outlive a
        // master killed alone.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Fpm {
    fn start() -> Option<Fpm> {
        let bin = ["php-fpm8.2", "/usr/sbin/php-fpm8.2"]
            .into_iter()
            .find(|b| Command::new(b).arg("-v").output().is_ok());
        let Some(bin) = bin else {
            eprintln!("php-fpm8.2 not installed: skipping the php-fpm test");
            return None;
        };
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("wscgi-fcgi-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("test.php"), SCRIPT).unwrap();
        let port = free_port();
        let d = dir.display();
        let pool = |name: &str, listen: &str, extra: &str| {
            format!(
                "[{name}]\nlisten = {listen}\nlisten.mode = 0666\npm = static\npm.max_children = 2\n{extra}"
            )
        };
        let conf = format!(
            "[global]\npid = {d}/fpm.pid\nerror_log = {d}/fpm.log\ndaemonize = no\n{}{}{}",
            pool("tcp", &format!("127.0.0.1:{port}"), ""),
            pool("unix", &format!("{d}/unix.sock"), ""),
            pool("short", &format!("{d}/short.sock"), "pm.max_requests = 2\n"),
        );
        std::fs::write(dir.join("fpm.conf"), conf).unwrap();
        let child = Command::new(bin)
            .args(["-F", "-R", "-y"])
            .arg(dir.join("fpm.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let fpm = Fpm { child, dir, port };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() || !fpm.sock("short").exists() {
            assert!(start.elapsed().as_secs() < 10, "php-fpm did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(fpm)
    }

    fn sock(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.sock"))
    }

    fn tcp(&self) -> FcgiAddr {
        FcgiAddr::Tcp(format!("127.0.0.1:{}", self.port))
    }

    fn script(&self) -> PathBuf {
        self.dir.join("test.php")
    }
}

/// A port nothing listens on (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn params(script: &Path, body: &[u8], headers: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    let mut p: Vec<(String, Vec<u8>)> = vec![
        ("GATEWAY_INTERFACE".into(), b"CGI/1.1".to_vec()),
        ("REQUEST_METHOD".into(), b"POST".to_vec()),
        ("SCRIPT_FILENAME".into(), script.to_str().unwrap().into()),
        ("SCRIPT_NAME".into(), b"/test.php".to_vec()),
        ("CONTENT_LENGTH".into(), body.len().to_string().into()),
        ("CONTENT_TYPE".into(), b"text/plain".to_vec()),
    ];
    for (name, value) in headers {
        p.push((http_var(name), value.as_bytes().to_vec()));
    }
    p
}

fn backend(addr: FcgiAddr, timeout_ms: u64, max_body: usize) -> FastCgiBackend {
    FastCgiBackend::new(addr, Duration::from_millis(timeout_ms), max_body, 2)
}

fn connects(b: &FastCgiBackend) -> usize {
    b.connects.load(Ordering::Relaxed)
}

/// Runs the test script with `body` and `headers` (as `HTTP_*` params).
fn call(
    b: &FastCgiBackend,
    fpm: &Fpm,
    body: &[u8],
    headers: &[(&str, &str)],
) -> Result<Reply, BackendError> {
    b.send(&params(&fpm.script(), body, headers), body, "t")
}

#[test]
fn php_fpm_round_trip_over_tcp_and_unix() {
    let Some(fpm) = Fpm::start() else { return };
    for addr in [fpm.tcp(), FcgiAddr::Unix(fpm.sock("unix"))] {
        let b = backend(addr.clone(), 5000, 1 << 20);
        let hdrs = [("WS-Event", "message"), ("WS-Status", "201")];
        let reply = call(&b, &fpm, b"hello", &hdrs).unwrap();
        assert_eq!(
            (reply.status, &reply.body[..]),
            (201, &b"message:hello"[..]),
            "{addr:?}"
        );
        let close = CloseRequest {
            code: 4000,
            reason: "bye".into(),
        };
        assert_eq!(reply.close, Some(close));
        assert_eq!(
            reply.content_type.as_deref(),
            Some("text/plain;charset=UTF-8")
        );
    }
}

#[test]
fn php_fpm_sequential_requests_reuse_one_connection() {
    let Some(fpm) = Fpm::start() else { return };
    let b = backend(fpm.tcp(), 5000, 1 << 20);
    for i in 0..5 {
        let reply = call(
            &b,
            &fpm,
            format!("n={i}").as_bytes(),
            &[("WS-Event", "open")],
        );
        assert_eq!(reply.unwrap().body, format!("open:n={i}").as_bytes());
    }
    assert_eq!(connects(&b), 1);
}

#[test]
fn php_fpm_idle_connection_closed_by_server_is_retried() {
    let Some(fpm) = Fpm::start() else { return };
    // Children of the "short" pool exit after two requests, closing our kept connection.
    let b = backend(FcgiAddr::Unix(fpm.sock("short")), 5000, 1 << 20);
    for _ in 0..6 {
        let reply = call(&b, &fpm, b"", &[("WS-Event", "close")]).unwrap();
        assert_eq!(reply.body, "close:".as_bytes());
    }
    assert_eq!(connects(&b), 3);
}

#[test]
fn php_fpm_stderr_and_large_bodies() {
    let Some(fpm) = Fpm::start() else { return };
    let b = backend(fpm.tcp(), 10_000, 4 << 20);
    let hdrs = [("WS-Event", "message"), ("WS-Stderr", "oops\nsecond line")];
    let reply = call(&b, &fpm, b"x", &hdrs).unwrap();
    assert_eq!((reply.status, &reply.body[..]), (200, &b"message:x"[..]));
    assert!(
        b.stderr_lines.load(Ordering::Relaxed) >= 3,
        "stderr not seen"
    );

    // Echo of a 300 kB body: many STDIN and STDOUT records.
    let big: Vec<u8> = (0..300_000).map(|i| b'a' + (i % 26) as u8).collect();
    let reply = call(&b, &fpm, &big, &[("WS-Event", "m")]).unwrap();
    assert!(reply.body[..2] == *b"m:" && reply.body[2..] == big[..]);

    // 3 MB each way. (PHP reads a POST body in full before the script runs: no deadlock risk.)
    let huge = vec![b'y'; 3 << 20];
    let reply = call(
        &b,
        &fpm,
        &huge,
        &[("WS-Event", "m"), ("WS-Size", "3145728")],
    )
    .unwrap();
    assert_eq!(reply.body.len(), 3 << 20);
    let reply = call(&b, &fpm, b"", &[("WS-Event", "m")]).unwrap();
    assert_eq!(reply.body, "m:".as_bytes());
    assert_eq!(connects(&b), 1);
}

#[test]
fn php_fpm_errors() {
    let Some(fpm) = Fpm::start() else { return };
    let b = backend(fpm.tcp(), 5000, 1000);
    let too_big = call(&b, &fpm, b"", &[("WS-Size", "5000")]);
    assert_eq!(too_big.unwrap_err(), BackendError::TooLarge);
    let missing = params(&fpm.dir.join("missing.php"), b"", &[]);
    assert_eq!(b.send(&missing, b"", "t").unwrap().status, 404);
    let b = backend(fpm.tcp(), 300, 1000);
    let slow = call(&b, &fpm, b"", &[("WS-Sleep-Ms", "1500")]);
    assert_eq!(slow.unwrap_err(), BackendError::Timeout("fastcgi".into()));
}

#[test]
fn php_fpm_idle_connections_pin_children() {
    let Some(fpm) = Fpm::start() else { return };
    // Three concurrent requests, two children: two idle connections then hold both children
    // and the third waits in php-fpm's backlog until it times out; the timeout empties the pool.
    let b = backend(fpm.tcp(), 1500, 1000);
    let slow = [("WS-Event", "m"), ("WS-Sleep-Ms", "300")];
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| s.spawn(|| call(&b, &fpm, b"", &slow)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 2, "{results:?}");
    assert!(b.lock_idle().is_empty());
    let reply = call(&b, &fpm, b"", &[("WS-Event", "m")]).unwrap();
    assert_eq!(reply.body, "m:".as_bytes());
}

#[test]
fn unreachable_servers() {
    let port = free_port();
    let missing = std::env::temp_dir().join("wscgi-fcgi-no-such.sock");
    for addr in [
        FcgiAddr::Tcp(format!("127.0.0.1:{port}")),
        FcgiAddr::Unix(missing),
        FcgiAddr::Tcp("no-such-host.invalid:9000".into()),
    ] {
        let err = backend(addr.clone(), 2000, 100)
            .send(&[], b"", "t")
            .unwrap_err();
        assert!(
            matches!(err, BackendError::Unreachable(_)),
            "{addr:?}: {err:?}"
        );
    }
}

/// A one-connection server that reads one request, then writes `answer`.
fn fake_server(answer: Vec<u8>) -> FcgiAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = FcgiAddr::Tcp(listener.local_addr().unwrap().to_string());
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = vec![0; 65536];
        let _ = s.read(&mut buf);
        let _ = s.write_all(&answer);
    });
    addr
}

/// `data` as STDOUT records of `chunk` bytes, each with 3 bytes of padding.
fn stdout_records(out: &mut Vec<u8>, data: &[u8], chunk: usize) {
    for piece in data.chunks(chunk) {
        let [hi, lo] = (piece.len() as u16).to_be_bytes();
        out.extend_from_slice(&[1, record::STDOUT, 0, 1, hi, lo, 3, 0]);
        out.extend_from_slice(piece);
        out.extend_from_slice(&[0; 3]);
    }
}

fn end_request(out: &mut Vec<u8>, protocol_status: u8) {
    out.extend_from_slice(&[1, record::END_REQUEST, 0, 1, 0, 8, 0, 0]);
    out.extend_from_slice(&[0, 0, 0, 0, protocol_status, 0, 0, 0]);
}

/// `stdout` in records of 5 bytes, then END_REQUEST with `protocol_status`.
fn answer(stdout: &[u8], protocol_status: u8) -> Vec<u8> {
    let mut out = Vec::new();
    stdout_records(&mut out, stdout, 5);
    end_request(&mut out, protocol_status);
    out
}

type Want = Result<(u16, &'static [u8]), BackendError>;

#[test]
fn fake_server_answers() {
    let mut ok = Vec::new();
    stdout_records(
        &mut ok,
        b"Status: 202 Accepted\r\nWS-Close: 4001 x\r\n\r\nbo",
        5,
    );
    ok.extend_from_slice(&[1, record::STDERR, 0, 1, 0, 4, 0, 0, b'e', b'r', b'r', b'\n']);
    ok.extend_from_slice(&answer(b"dy", 0));
    let invalid = |why: &str| Err(BackendError::Invalid(format!("fastcgi: {why}")));
    let unreachable = |why: &str| Err(BackendError::Unreachable(format!("fastcgi: {why}")));
    let cases: [(Vec<u8>, Want); 7] = [
        (ok, Ok((202, b"body"))),
        (answer(b"", 2), unreachable("overloaded")),
        (answer(b"", 3), unreachable("unknown role")),
        (answer(b"", 0), invalid("no output")),
        (
            answer(b"no blank line", 0),
            invalid("no blank line after the headers"),
        ),
        (
            b"HTTP/1.1 400 Bad\r\n\r\n".to_vec(),
            invalid("bad FastCGI record version 72"),
        ),
        (
            vec![1, record::STDOUT, 0, 1, 0, 9],
            invalid("connection closed early"),
        ),
    ];
    for (answer, want) in cases {
        let b = backend(fake_server(answer), 2000, 100);
        let got = b.send(&[("A".into(), b"1".to_vec())], b"body", "t");
        let got = got.map(|r| (r.status, r.body.to_vec()));
        assert_eq!(got, want.map(|(s, b)| (s, b.to_vec())));
    }
}

#[test]
fn server_answering_before_reading_its_input() {
    // 1 MB each way over a unix socket (buffers of a few hundred kB): writing the whole request
    // before reading would deadlock with this server.
    let dir = std::env::temp_dir().join(format!("wscgi-fcgi-eager-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("eager.sock");
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut answer = Vec::new();
        let mut out = b"Content-Type: text/plain\r\n\r\n".to_vec();
        out.resize(out.len() + (1 << 20), b'z');
        stdout_records(&mut answer, &out, 65535);
        end_request(&mut answer, 0);
        s.write_all(&answer).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = std::io::copy(&mut s, &mut std::io::sink());
    });
    let b = backend(FcgiAddr::Unix(path), 5000, 2 << 20);
    let reply = b.send(&[], &vec![b'q'; 1 << 20], "t").unwrap();
    assert_eq!(reply.body.len(), 1 << 20);
    let _ = std::fs::remove_dir_all(&dir);
}

//! Tests for the CGI backend against real child processes: environment, timeouts, crashes, sizes.

use super::*;
use std::os::unix::fs::PermissionsExt;
use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Writing a script while another test forks could leave a writable fd to it in a child
/// for a moment (ETXTBSY): scripts are written under the write lock, runs hold a read lock.
static FORK: RwLock<()> = RwLock::new(());

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("wscgi-cgi-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.0.join(name);
        let _lock = FORK.write().unwrap_or_else(|e| e.into_inner());
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn backend(program: PathBuf) -> CgiBackend {
    CgiBackend::new(program, vec![], Duration::from_secs(10), 1 << 20)
}

fn send(b: &CgiBackend, body: &[u8]) -> Result<Reply, BackendError> {
    let vars = "REQUEST_METHOD=POST REDIRECT_STATUS=200 HTTP_WS_EVENT=message CONTENT_LENGTH=";
    let vars = format!("{vars}{}", body.len());
    let params: Vec<(String, Vec<u8>)> = (vars.split(' ').filter_map(|v| v.split_once('=')))
        .map(|(name, value)| (name.into(), value.into()))
        .collect();
    let _lock = FORK.read().unwrap_or_else(|e| e.into_inner());
    b.send(&params, body, "test")
}

fn text(reply: &Reply) -> &str {
    std::str::from_utf8(&reply.body).unwrap()
}

const HEAD: &str = r"printf 'Content-Type: text/plain\r\n\r\n'";

#[test]
fn echo() {
    let dir = TempDir::new();
    let s = dir.script(
        "echo.sh",
        r#"body=$(head -c "$CONTENT_LENGTH")
printf 'Content-Type: text/plain\r\nWS-Close: 4000 bye\r\n\r\n%s' "$body""#,
    );
    let reply = send(&backend(s), b"hello world").unwrap();
    assert_eq!((reply.status, text(&reply)), (200, "hello world"));
    let close = reply.close.unwrap();
    assert_eq!((close.code, close.reason.as_str()), (4000, "bye"));
}

#[test]
fn environment_is_params_and_pass_env_only() {
    let dir = TempDir::new();
    let env = format!("{HEAD}\ntr '\\0' '\\n' < /proc/$$/environ\necho \"cwd=$(pwd -P)\"");
    let s = dir.script("env.sh", &env);
    let reply = send(&backend(s.clone()), b"").unwrap();
    let lines: Vec<&str> = text(&reply).lines().collect();
    for var in [
        "HTTP_WS_EVENT=message",
        "REQUEST_METHOD=POST",
        "REDIRECT_STATUS=200",
    ] {
        assert!(lines.contains(&var), "{var} missing in {lines:?}");
    }
    let inherited = |l: &&str| l.starts_with("PATH=") || l.starts_with("HOME=");
    assert!(!lines.iter().any(inherited), "{lines:?}");
    let cwd = format!("cwd={}", dir.0.canonicalize().unwrap().display());
    assert!(lines.contains(&cwd.as_str()), "{lines:?}");

    let pass = vec![("PATH".to_string(), "/usr/bin:/bin".to_string())];
    let reply = send(
        &CgiBackend::new(s, pass, Duration::from_secs(10), 1024),
        b"",
    );
    assert!(text(&reply.unwrap()).contains("PATH=/usr/bin:/bin\n"));
}

#[test]
fn status_404_with_exit_255_is_an_answer() {
    let dir = TempDir::new();
    let s = dir.script(
        "404.sh",
        r"printf 'Status: 404 Not Found\nContent-Type: text/html\n\nNo input file specified.\n'
exit 255",
    );
    let reply = send(&backend(s), b"").unwrap();
    assert_eq!(
        (reply.status, text(&reply)),
        (404, "No input file specified.\n")
    );
}

#[test]
fn crash_and_bad_output_are_invalid() {
    let dir = TempDir::new();
    let crash = send(&backend(dir.script("crash.sh", "exit 1")), b"");
    assert!(matches!(&crash, Err(BackendError::Invalid(m)) if m.contains("exit status: 1")));
    let s = dir.script("nohead.sh", r"printf 'Content-Type: text/plain\n'");
    assert!(matches!(
        send(&backend(s), b""),
        Err(BackendError::Invalid(_))
    ));
}

/// No such process, or a zombie (killed, only waiting for init to reap it).
fn is_gone(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit(") ").next().is_some_and(|s| s.starts_with('Z'))
    })
}

#[test]
fn timeout_kills_the_whole_group() {
    let dir = TempDir::new();
    let s = dir.script("hang.sh", "sleep 30 &\necho $! > hang.pid\nwait");
    let b = CgiBackend::new(s, vec![], Duration::from_millis(300), 1 << 20);
    let start = Instant::now();
    assert_eq!(
        send(&b, b"").unwrap_err(),
        BackendError::Timeout("cgi".into())
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    let pid = std::fs::read_to_string(dir.0.join("hang.pid")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !is_gone(pid.trim()) {
        assert!(Instant::now() < deadline, "sleep {pid} still running");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn huge_output_is_too_large() {
    let dir = TempDir::new();
    let s = dir.script("huge.sh", &format!("{HEAD}\nyes | head -c 2000000"));
    assert_eq!(send(&backend(s), b"").unwrap_err(), BackendError::TooLarge);
}

#[test]
fn large_stdin_with_early_output_does_not_deadlock() {
    let dir = TempDir::new();
    let big = format!("{HEAD}\nyes 0123456789 | head -c 200000\nhead -c $CONTENT_LENGTH | wc -c");
    let body = vec![b'x'; 1 << 20];
    let reply = send(&backend(dir.script("big.sh", &big)), &body).unwrap();
    assert_eq!(reply.body.len(), 200_000 + "1048576\n".len());
    assert!(text(&reply).ends_with("1048576\n"));
    // A child that never reads its input.
    let s = dir.script("noread.sh", &format!("{HEAD}\nprintf ok"));
    assert_eq!(text(&send(&backend(s), &body).unwrap()), "ok");
}

#[test]
fn stderr_does_not_break_the_response() {
    let dir = TempDir::new();
    let err = format!("echo oops >&2\nyes warning | head -c 300000 >&2\n{HEAD}\nprintf ok");
    let reply = send(&backend(dir.script("err.sh", &err)), b"").unwrap();
    assert_eq!((reply.status, text(&reply)), (200, "ok"));
}

#[test]
fn missing_or_not_executable_program_is_unreachable() {
    let dir = TempDir::new();
    let missing = send(&backend(dir.0.join("missing.sh")), b"");
    assert!(matches!(missing, Err(BackendError::Unreachable(m)) if m.contains("cannot run")));
    std::fs::write(dir.0.join("plain.txt"), "not a program").unwrap();
    let plain = send(&backend(dir.0.join("plain.txt")), b"");
    assert!(matches!(plain, Err(BackendError::Unreachable(_))));
}

//! The CGI promise with real programs: small shell scripts written into a temp dir run once
//! per event, and one bad run (a crash, a hang, garbage output) costs that one event, never the
//! service. Also the RFC 3875 environment, `--cgi-env`, `Status:` answers, routes and php-cgi's
//! missing script. Scripts set their own PATH: wscgi gives CGI programs a clean environment.

#[path = "support/php.rs"]
mod php;
mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use php::{TempDir, WscgiProcess};
use support::*;
use tungstenite::Message;
use tungstenite::stream::MaybeTlsStream;

/// Every script starts so: a PATH, and the event's body in `$body`.
const PRELUDE: &str = "PATH=/usr/bin:/bin\nexport PATH\nbody=$(head -c \"${CONTENT_LENGTH:-0}\")";
/// The environment the script was started with, one `NAME=value` a line, and the body.
const ENV_SH: &str = r#"printf 'Content-Type: text/plain\r\n\r\n'
tr '\0' '\n' < /proc/$$/environ
printf 'BODY=%s\n' "$body""#;
/// Message "hang": sleeps 30 s (its pids in sh.pid and sleep.pid); anything else is echoed.
const HANG_SH: &str = r#"if [ $HTTP_WS_EVENT = message ] && [ "$body" = hang ]; then
    sleep 30 & echo $! > sleep.pid
    echo $$ > sh.pid
    wait
fi
printf 'Content-Type: text/plain\r\n\r\n%s' "$body""#;
/// Crashes (exit 1, no output) on `?crash` at open or on message "crash"; message "nohead"
/// gets headers without the blank line; anything else is echoed.
const CRASH_SH: &str = r#"case $HTTP_WS_EVENT:$QUERY_STRING:"$body" in
open:crash:*|message:*:crash) exit 1 ;;
message:*:nohead) printf 'Content-Type: text/plain\r\nStatus: 200 OK\r\n'; exit 0 ;;
esac
printf 'Content-Type: text/plain\r\n\r\n%s' "$body""#;

fn script(dir: &TempDir, name: &str, body: &str) -> String {
    let path = dir.script(name, &format!("{PRELUDE}\n{body}"));
    path.display().to_string()
}

/// `NAME=value` lines (the first `=` splits).
fn vars(text: &str) -> HashMap<String, String> {
    let pairs = text.lines().filter_map(|l| l.split_once('='));
    pairs.map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

fn check(vars: &HashMap<String, String>, expect: &[(&str, &str)], what: &str) {
    for (name, value) in expect {
        let got = vars.get(*name).map(String::as_str);
        assert_eq!(got, Some(*value), "{what}: {name} in {vars:#?}");
    }
}

/// The close code the server sends next.
fn close_code(c: &mut Client) -> u16 {
    recv_close(c).map_or(1005, |f| u16::from(f.code))
}

/// The status and body a rejected handshake got; panics if it was accepted.
fn rejected(url: &str) -> (u16, String) {
    match try_connect_with(url, &[]) {
        Err(tungstenite::Error::Http(r)) => {
            let body = r.body().as_deref().unwrap_or_default();
            (
                r.status().as_u16(),
                String::from_utf8_lossy(body).into_owned(),
            )
        }
        Err(e) => panic!("{url}: {e}"),
        Ok(_) => panic!("{url}: accepted, expected a rejection"),
    }
}

fn echo(c: &mut Client, text: &str) {
    c.send(Message::text(text)).unwrap();
    assert_eq!(recv_text(c), text);
}

#[test]
fn environment_is_rfc_3875() {
    php::block_sigchld();
    let dir = TempDir::new("cgi-env");
    let env_sh = script(&dir, "env.sh", ENV_SH);
    let route = format!("/chat=cgi:{env_sh}");
    let server = Wscgi::start(&format!("cgi:{env_sh}"), &["--route", &route]);
    let mut c = connect_with(&server.ws_url("/chat/room?x=1"), &[("Cookie", "a=1")]);
    let MaybeTlsStream::Plain(tcp) = c.get_ref() else {
        panic!("plain TCP")
    };
    let local = tcp.local_addr().unwrap();
    let open = vars(&recv_text(&mut c));
    let remote_port = local.port().to_string();
    let expect = [
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("REQUEST_METHOD", "POST"),
        ("SCRIPT_FILENAME", env_sh.as_str()),
        ("SCRIPT_NAME", "/chat"),
        ("PATH_INFO", "/room"),
        ("QUERY_STRING", "x=1"),
        ("REQUEST_URI", "/chat/room?x=1"),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("REMOTE_PORT", remote_port.as_str()),
        ("SERVER_NAME", "127.0.0.1"),
        ("REDIRECT_STATUS", "200"),
        ("CONTENT_LENGTH", "0"),
        ("HTTP_WS_EVENT", "open"),
        ("HTTP_WS_SEQ", "0"),
        ("HTTP_WS_PATH", "/chat/room?x=1"),
        ("HTTP_COOKIE", "a=1"),
        ("BODY", ""),
    ];
    check(&open, &expect, "open");
    let id = open["HTTP_WS_CONNECTION_ID"].clone();
    assert_eq!(id.len(), 22, "HTTP_WS_CONNECTION_ID {id:?}");
    for name in ["PATH", "HOME", "CONTENT_TYPE"] {
        assert!(!open.contains_key(name), "open: {name} is set: {open:#?}");
    }

    c.send(Message::text("héllo")).unwrap();
    let message = vars(&recv_text(&mut c));
    let expect = [
        ("HTTP_WS_EVENT", "message"),
        ("HTTP_WS_SEQ", "1"),
        ("HTTP_WS_CONNECTION_ID", id.as_str()),
        ("HTTP_WS_MESSAGE_TYPE", "text"),
        ("CONTENT_LENGTH", "6"),
        ("CONTENT_TYPE", "text/plain; charset=utf-8"),
        ("BODY", "héllo"),
        ("HTTP_COOKIE", "a=1"),
    ];
    check(&message, &expect, "message");

    // Outside /chat, the --backend route (`/`): no SCRIPT_NAME, the whole path is PATH_INFO.
    let mut other = connect(&server.ws_url("/elsewhere"));
    let expect = [
        ("SCRIPT_NAME", ""),
        ("PATH_INFO", "/elsewhere"),
        ("QUERY_STRING", ""),
    ];
    check(&vars(&recv_text(&mut other)), &expect, "/elsewhere");
}

/// SERVER_PORT is the port the client connected to (RFC 3875 §4.1.15), also when wscgi was
/// told `--listen 127.0.0.1:0` (as `Wscgi::start` does) or got its socket from systemd.
#[test]
fn server_port_is_the_port_clients_reach() {
    php::block_sigchld();
    let dir = TempDir::new("cgi-port");
    let env_sh = script(&dir, "env.sh", ENV_SH);
    let server = Wscgi::start(&format!("cgi:{env_sh}"), &[]);
    let mut c = connect(&server.ws_url("/"));
    let port = server.ws_addr.port().to_string();
    check(&vars(&recv_text(&mut c)), &[("SERVER_PORT", &port)], "open");
}

#[test]
fn cgi_env_passes_only_named_variables() {
    php::block_sigchld();
    let dir = TempDir::new("cgi-pass");
    let env_sh = script(&dir, "env.sh", ENV_SH);
    let backend = format!("cgi:{env_sh}");
    let mut args = vec!["--backend", &backend];
    for name in ["MY_VAR", "PATH", "NOT_SET_ANYWHERE", "HTTP_WS_EVENT"] {
        args.extend(["--cgi-env", name]);
    }
    let env = [
        ("MY_VAR", "a value = with spaces"),
        ("PATH", "/usr/bin:/bin"),
        ("OTHER_VAR", "not named, not passed"),
        ("HTTP_WS_EVENT", "forged"),
    ];
    let wscgi = WscgiProcess::start(&args, &env, &dir.path("wscgi.log"));
    let mut c = connect(&wscgi.ws_url("/"));
    let open = vars(&recv_text(&mut c));
    let port = wscgi.ws_addr.port().to_string();
    let expect = [
        ("SERVER_PORT", port.as_str()),
        ("MY_VAR", "a value = with spaces"),
        ("PATH", "/usr/bin:/bin"),
        // A passed variable never overrides the event's own.
        ("HTTP_WS_EVENT", "open"),
    ];
    check(&open, &expect, "open");
    for name in ["OTHER_VAR", "NOT_SET_ANYWHERE"] {
        assert!(!open.contains_key(name), "{name} is set: {open:#?}");
    }
}

/// No such process, or a zombie (killed, waiting to be reaped).
fn is_gone(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit(") ").next().is_some_and(|s| s.starts_with('Z'))
    })
}

#[test]
fn a_hanging_script_is_killed_at_the_timeout() {
    php::block_sigchld();
    let dir = TempDir::new("cgi-hang");
    let hang = script(&dir, "hang.sh", HANG_SH);
    let args = ["--backend-timeout", "500ms", "--retries", "0"];
    let server = Wscgi::start(&format!("cgi:{hang}"), &args);
    let mut c = connect(&server.ws_url("/"));
    echo(&mut c, "first");
    let start = Instant::now();
    c.send(Message::text("hang")).unwrap();
    assert_eq!(
        close_code(&mut c),
        1011,
        "the hung message fails its client"
    );
    let took = start.elapsed();
    assert!(took < Duration::from_secs(3), "closed after {took:?}");

    // The script and what it started are killed (the process group), not left sleeping.
    for file in ["sh.pid", "sleep.pid"] {
        let pid = dir.read(file).trim().to_string();
        assert!(!pid.is_empty(), "{file} not written");
        wait_until(
            Duration::from_secs(5),
            &format!("{file} {pid} is gone"),
            || is_gone(&pid),
        );
    }
    let mut next = connect(&server.ws_url("/"));
    echo(&mut next, "the service lives on");
}

#[test]
fn a_crash_or_garbage_fails_one_event_only() {
    php::block_sigchld();
    let dir = TempDir::new("cgi-crash");
    let crash = script(&dir, "crash.sh", CRASH_SH);
    let server = Wscgi::start(&format!("cgi:{crash}"), &["--retries", "0"]);
    let mut bystander = connect(&server.ws_url("/"));
    echo(&mut bystander, "before");

    let mut victim = connect(&server.ws_url("/"));
    victim.send(Message::text("crash")).unwrap();
    assert_eq!(close_code(&mut victim), 1011, "exit 1 without output");
    echo(&mut bystander, "still here");
    let mut next = connect(&server.ws_url("/"));
    echo(&mut next, "after the crash");

    next.send(Message::text("nohead")).unwrap();
    assert_eq!(close_code(&mut next), 1011, "headers without a blank line");
    let (status, _) = rejected(&server.ws_url("/?crash"));
    assert_eq!(status, 502, "a crash at open is a bad gateway");

    let mut last = connect(&server.ws_url("/"));
    echo(&mut last, "after the garbage");
    echo(&mut bystander, "and still here");
}

#[test]
fn stderr_does_not_break_the_response() {
    php::block_sigchld();
    let dir = TempDir::new("cgi-stderr");
    let noisy = r#"echo 'warning: about to answer' >&2
yes 'a long warning line' | head -c 300000 >&2
printf 'no newline at the end' >&2
printf 'Content-Type: text/plain\r\n\r\n%s' "$body"
echo 'and after the answer' >&2"#;
    let noisy = script(&dir, "noisy.sh", noisy);
    let server = Wscgi::start(&format!("cgi:{noisy}"), &["--retries", "0"]);
    let mut c = connect(&server.ws_url("/"));
    echo(&mut c, "heard over the noise");
    echo(&mut c, "twice");
}

#[test]
fn status_answers() {
    php::block_sigchld();
    let dir = TempDir::new("cgi-status");
    let status = r#"case $HTTP_WS_EVENT:$QUERY_STRING:"$body" in
open:deny:*) printf 'Status: 403 Forbidden\r\n\r\n' ;;
open:missing:*) printf 'Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nno such room' ;;
open:*) printf 'Content-Type: text/plain\r\n\r\nwelcome' ;;
message:*:find) printf 'Status: 404\nContent-Type: text/plain\n\nnot found' ;;
*) printf 'Content-Type: text/plain\r\n\r\n%s' "$body" ;;
esac"#;
    let status = script(&dir, "status.sh", status);
    let server = Wscgi::start(&format!("cgi:{status}"), &[]);
    assert_eq!(rejected(&server.ws_url("/?deny")).0, 403);
    let (code, body) = rejected(&server.ws_url("/?missing"));
    assert_eq!((code, body.as_str()), (404, "no such room"));

    let mut c = connect(&server.ws_url("/?ok"));
    assert_eq!(recv_text(&mut c), "welcome");
    // A 4xx to a message is a deliberate answer: delivered, and the connection stays open.
    c.send(Message::text("find")).unwrap();
    assert_eq!(recv_text(&mut c), "not found");
    echo(&mut c, "still open");
}

#[test]
fn routes_pick_the_program() {
    php::block_sigchld();
    let dir = TempDir::new("cgi-routes");
    let answer = r#"printf 'Content-Type: text/plain\r\n\r\n%s|%s|%s' "${0##*/}" "$SCRIPT_NAME" "$PATH_INFO""#;
    let a = script(&dir, "a.sh", answer);
    let b = script(&dir, "b.sh", answer);
    let (route_a, route_b) = (format!("/a=cgi:{a}"), format!("/b=cgi:{b}"));
    let args = ["--route", &route_a, "--route", &route_b];
    let wscgi = WscgiProcess::start(&args, &[], &dir.path("wscgi.log"));
    for path in ["/", "/c", "/ab", "/bb/x"] {
        assert_eq!(rejected(&wscgi.ws_url(path)).0, 404, "{path}");
    }
    let answers = [
        ("/a/x", "a.sh|/a|/x"),
        ("/b", "b.sh|/b|"),
        ("/a?q=1", "a.sh|/a|"),
    ];
    for (path, want) in answers {
        let mut c = connect(&wscgi.ws_url(path));
        assert_eq!(recv_text(&mut c), want, "{path}");
    }
}

#[test]
fn php_cgi_missing_script_is_404() {
    php::block_sigchld();
    if php::require("php-cgi", "the php-cgi missing script test").is_none() {
        return;
    }
    let dir = TempDir::new("cgi-php404");
    let wrapper = r#"PATH=/usr/local/bin:/usr/bin:/bin
SCRIPT_FILENAME=$PWD/nowhere.php
export PATH SCRIPT_FILENAME
exec php-cgi"#;
    let wrapper = dir.script("nowhere.sh", wrapper).display().to_string();
    let server = Wscgi::start(&format!("cgi:{wrapper}"), &[]);
    let (status, body) = rejected(&server.ws_url("/chat"));
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("No input file specified"), "{body:?}");
}

//! The PHP and Python push-API helpers (examples/php, examples/python) run against a real wscgi.
//!
//! Each test runs a short script in the real interpreter (`php -r`, `python3 -c`) that calls
//! the helpers and prints every answer as `label<TAB>json`; the test checks those answers and
//! what the WebSocket clients and the backend saw. A missing interpreter skips loudly, or fails
//! when `CI` is set.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::*;

const T: Duration = Duration::from_secs(5);
/// Every interpreter run is killed after this long.
const CHILD_TIMEOUT: Duration = Duration::from_secs(20);
/// Valid as a channel name, but every URL-special character in it must be encoded.
const CHANNEL: &str = "room#1?&%+=:";
const TOKEN: &str = "s3cret";

/// One helper library and how to run scripts that use it.
struct Lang {
    program: &'static str,
    /// Arguments before the script text.
    args: &'static [&'static str],
    /// What the script's `HELPERS` variable names, relative to the crate root.
    helpers: &'static str,
    /// Loads the helpers and defines `out(label, answer)`.
    prelude: &'static str,
    /// Env: ID_A, ID_B, ID_C, CHANNEL. See `helpers_drive_every_push_call`.
    scenario: &'static str,
    /// Env: ID_A, DEAD_URL, WSCGI_PUSH_TOKEN. See `token_and_errors_are_data`.
    token: &'static str,
}

const PHP: Lang = Lang {
    program: "php",
    args: &[
        "-d",
        "display_errors=stderr",
        "-d",
        "error_reporting=-1",
        "-r",
    ],
    helpers: "examples/php/wscgi.php",
    prelude: r#"require getenv('HELPERS');
function out(string $label, array $r): void {
    echo $label, "\t", json_encode($r, JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE), "\n";
}
"#,
    scenario: r#"[$a, $b, $c, $ch] = [getenv('ID_A'), getenv('ID_B'), getenv('ID_C'), getenv('CHANNEL')];
out('send_text', wscgi_send($a, 'héllo ✓'));
out('send_binary', wscgi_send($b, "\x00\xff\x80", true));
out('sub_a', wscgi_subscribe($a, $ch));
out('sub_b', wscgi_subscribe($b, $ch));
out('publish_excl', wscgi_publish($ch, 'to room', [$a]));
out('unsub_b', wscgi_unsubscribe($b, $ch));
out('publish', wscgi_publish($ch, 'after unsub'));
out('broadcast_chat', wscgi_broadcast('chat only', '/chat'));
out('broadcast_all', wscgi_broadcast('everyone'));
out('send_unknown', wscgi_send('no-such-id', 'x'));
out('publish_nobody', wscgi_publish('nobody-here', 'x'));
out('close', wscgi_close($c, 4001, 'bye now'));
out('send_closed', wscgi_send($c, 'late'));
"#,
    token: r#"$a = getenv('ID_A');
out('with_token', wscgi_send($a, 'secret hello'));
putenv('WSCGI_PUSH_TOKEN');
out('no_token', wscgi_send($a, 'not delivered'));
putenv('WSCGI_PUSH_TOKEN=wrong');
out('wrong_token', wscgi_broadcast('not delivered'));
putenv('WSCGI_PUSH_URL=' . getenv('DEAD_URL'));
out('unreachable', wscgi_send($a, 'x'));
"#,
};

const PYTHON: Lang = Lang {
    program: "python3",
    args: &["-c"],
    helpers: "examples/python",
    prelude: r#"import json, os, sys
sys.path.insert(0, os.environ["HELPERS"])
import wscgi
def out(label, r):
    print(label + "\t" + json.dumps(r, separators=(",", ":")), flush=True)
"#,
    scenario: r#"a, b, c, ch = (os.environ[k] for k in ("ID_A", "ID_B", "ID_C", "CHANNEL"))
out("send_text", wscgi.send(a, "héllo ✓"))
out("send_binary", wscgi.send(b, b"\x00\xff\x80", binary=True))
out("sub_a", wscgi.subscribe(a, ch))
out("sub_b", wscgi.subscribe(b, ch))
out("publish_excl", wscgi.publish(ch, "to room", exclude=[a]))
out("unsub_b", wscgi.unsubscribe(b, ch))
out("publish", wscgi.publish(ch, b"after unsub"))
out("broadcast_chat", wscgi.broadcast("chat only", path_prefix="/chat"))
out("broadcast_all", wscgi.broadcast("everyone"))
out("send_unknown", wscgi.send("no-such-id", "x"))
out("publish_nobody", wscgi.publish("nobody-here", "x"))
out("close", wscgi.close(c, 4001, "bye now"))
out("send_closed", wscgi.send(c, "late"))
"#,
    token: r#"a = os.environ["ID_A"]
out("with_token", wscgi.send(a, "secret hello"))
del os.environ["WSCGI_PUSH_TOKEN"]
out("no_token", wscgi.send(a, "not delivered"))
os.environ["WSCGI_PUSH_TOKEN"] = "wrong"
out("wrong_token", wscgi.broadcast("not delivered"))
os.environ["WSCGI_PUSH_URL"] = os.environ["DEAD_URL"]
out("unreachable", wscgi.send(a, "x"))
"#,
};

#[test]
fn php_helpers_drive_every_push_call() {
    helpers_drive_every_push_call(&PHP);
}

#[test]
fn python_helpers_drive_every_push_call() {
    helpers_drive_every_push_call(&PYTHON);
}

#[test]
fn php_helpers_send_the_token_and_return_errors_as_data() {
    token_and_errors_are_data(&PHP);
}

#[test]
fn python_helpers_send_the_token_and_return_errors_as_data() {
    token_and_errors_are_data(&PYTHON);
}

fn helpers_drive_every_push_call(lang: &Lang) {
    if !available(lang.program) {
        return;
    }
    let backend = TestBackend::start(|_| BackendReply::ok());
    let server = Wscgi::start(&backend.url(), &[]);
    let (mut a, id_a) = open_client(&server, &backend, "/chat/a");
    let (mut b, id_b) = open_client(&server, &backend, "/chat/b");
    let (mut c, id_c) = open_client(&server, &backend, "/other/c");
    let vars = [
        ("ID_A", id_a.as_str()),
        ("ID_B", id_b.as_str()),
        ("ID_C", id_c.as_str()),
        ("CHANNEL", CHANNEL),
    ];
    let out = run_script(lang, lang.scenario, &server, &vars);

    let ch = format!("\"{CHANNEL}\"");
    let (ch, a_id) = (ch.as_str(), format!("\"{id_a}\""));
    let expected: [Expected; 11] = [
        ("send_text", 200, &[("id", &a_id), ("bytes", "10")]), // "héllo ✓" is 10 bytes
        ("send_binary", 200, &[("ok", "true"), ("bytes", "3")]),
        ("sub_a", 200, &[("channel", ch), ("subscribed", "true")]),
        ("sub_b", 200, &[("channel", ch), ("subscribed", "true")]),
        ("publish_excl", 200, &[("channel", ch), ("delivered", "1")]),
        ("unsub_b", 200, &[("channel", ch), ("subscribed", "false")]),
        ("publish", 200, &[("channel", ch), ("delivered", "1")]),
        ("broadcast_chat", 200, &[("delivered", "2")]),
        ("broadcast_all", 200, &[("delivered", "3")]),
        ("publish_nobody", 404, &[("delivered", "0")]),
        ("close", 200, &[("ok", "true"), ("code", "4001")]),
    ];
    for (label, status, fields) in expected {
        check(&out, label, status, fields);
    }
    for label in ["send_unknown", "publish_nobody", "send_closed"] {
        check_error(&out, label, 404);
    }

    // Each client's stream shows exactly what was pushed to it, in order: A was excluded from
    // "to room", B had left before "after unsub", C is not under /chat.
    recv_texts(&mut a, &["héllo ✓", "after unsub", "chat only", "everyone"]);
    assert_eq!(recv_binary(&mut b), [0x00, 0xff, 0x80]);
    recv_texts(&mut b, &["to room", "chat only", "everyone"]);
    recv_texts(&mut c, &["everyone"]);
    let frame = recv_close(&mut c).expect("a close frame with a code");
    assert_eq!(u16::from(frame.code), 4001);
    assert_eq!(frame.reason.as_str(), "bye now");
    let closed = |q: &BackendRequest| q.event() == "close" && q.conn_id() == id_c;
    let reqs = backend.wait_for(T, |r| r.iter().any(closed));
    let close = reqs.iter().find(|q| closed(q)).unwrap();
    assert_eq!(close.header("ws-close-code"), Some("4001"));
    assert_eq!(close.header("ws-close-reason"), Some("bye now"));
}

fn token_and_errors_are_data(lang: &Lang) {
    if !available(lang.program) {
        return;
    }
    let backend = TestBackend::start(|_| BackendReply::ok());
    let server = Wscgi::start(&backend.url(), &["--push-token", TOKEN]);
    let (mut a, id_a) = open_client(&server, &backend, "/a");
    // An address nothing listens on: bound, then released.
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dead_url = format!("http://{dead}");
    let vars = [
        ("ID_A", id_a.as_str()),
        ("WSCGI_PUSH_TOKEN", TOKEN),
        ("DEAD_URL", &dead_url),
    ];
    let out = run_script(lang, lang.token, &server, &vars);

    check(&out, "with_token", 200, &[("ok", "true")]);
    check_error(&out, "no_token", 401);
    check_error(&out, "wrong_token", 401);
    check_error(&out, "unreachable", 0);
    assert_eq!(recv_text(&mut a), "secret hello");
    // A marker sent afterwards is next: the refused calls delivered nothing.
    let (path, bearer) = (format!("/connections/{id_a}"), format!("Bearer {TOKEN}"));
    let marker = http(
        server.push_addr,
        "POST",
        &path,
        &[("Authorization", &bearer)],
        b"m",
    );
    assert_eq!(marker.status, 200, "{}", marker.body_str());
    assert_eq!(recv_text(&mut a), "m");
}

/// Connects a client on `path` and returns it with its connection id (from the open event).
fn open_client(server: &Wscgi, backend: &TestBackend, path: &str) -> (Client, String) {
    let client = connect(&server.ws_url(path));
    let is_open = |q: &BackendRequest| q.event() == "open" && q.header("ws-path") == Some(path);
    let reqs = backend.wait_for(T, |r| r.iter().any(is_open));
    let id = reqs.iter().find(|q| is_open(q)).unwrap().conn_id();
    (client, id.to_string())
}

/// The next text messages, which must be `want`.
fn recv_texts(client: &mut Client, want: &[&str]) {
    let got: Vec<String> = want.iter().map(|_| recv_text(client)).collect();
    assert_eq!(got, want);
}

/// Whether `program` runs. Missing: fails under CI, else skips with a loud message.
fn available(program: &str) -> bool {
    let ran = bounded(Command::new(program).arg("--version"));
    if ran.as_ref().is_ok_and(|(status, ..)| status.success()) {
        return true;
    }
    let why = match ran {
        Ok((status, _, stderr)) => format!("`{program} --version` failed ({status}): {stderr}"),
        Err(e) => format!("cannot run `{program}`: {e}"),
    };
    if std::env::var_os("CI").is_some() {
        panic!("{why}; CI is set, so a missing {program} is a failure (install it)");
    }
    // Straight to stderr, not eprintln!: the test harness would swallow that for a passing test.
    let bar = "!".repeat(72);
    let note =
        format!("\n{bar}\n!!! SKIPPED: {why}\n!!! the {program} helper test did not run\n{bar}\n");
    let _ = std::io::stderr().write_all(note.as_bytes());
    false
}

/// Label → raw JSON answer, from the script's `label<TAB>json` lines.
type Answers = HashMap<String, String>;
/// An answer's label, status and raw JSON field values.
type Expected<'a> = (&'a str, u16, &'a [(&'a str, &'a str)]);

/// Runs `body` after the language's prelude with the push URL and `vars` in its environment;
/// panics unless it exits 0 with nothing on stderr and only answer lines on stdout.
fn run_script(lang: &Lang, body: &str, server: &Wscgi, vars: &[(&str, &str)]) -> Answers {
    let helpers = format!("{}/{}", env!("CARGO_MANIFEST_DIR"), lang.helpers);
    let script = format!("{}{}", lang.prelude, body);
    let mut cmd = Command::new(lang.program);
    cmd.args(lang.args)
        .arg(&script)
        .env_remove("WSCGI_PUSH_TOKEN")
        .env("WSCGI_PUSH_URL", format!("http://{}", server.push_addr))
        .env("HELPERS", &helpers)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONIOENCODING", "utf-8")
        .envs(vars.iter().copied());
    let (status, stdout, stderr) =
        bounded(&mut cmd).unwrap_or_else(|e| panic!("cannot run {}: {e}", lang.program));
    let context = format!(
        "{} script\n--- stdout:\n{stdout}--- stderr:\n{stderr}",
        lang.program
    );
    assert!(status.success(), "{status} from the {context}");
    assert!(stderr.is_empty(), "warnings from the {context}");
    stdout
        .lines()
        .map(|line| match line.split_once('\t') {
            Some((label, json)) => (label.to_string(), json.to_string()),
            None => panic!("unexpected line {line:?} from the {context}"),
        })
        .collect()
}

/// Runs `cmd` to completion with piped output, killing it after [`CHILD_TIMEOUT`].
fn bounded(cmd: &mut Command) -> std::io::Result<(ExitStatus, String, String)> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + CHILD_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still running after {CHILD_TIMEOUT:?}; killed");
        }
        thread::sleep(Duration::from_millis(10));
    };
    Ok((status, stdout.join().unwrap(), stderr.join().unwrap()))
}

/// Asserts the answer labelled `label` has this status and these raw JSON field values.
fn check<'a>(out: &'a Answers, label: &str, status: u16, fields: &[(&str, &str)]) -> &'a str {
    let json = out
        .get(label)
        .unwrap_or_else(|| panic!("no {label:?} answer in {out:#?}"));
    let status = status.to_string();
    for (key, want) in [("status", status.as_str())].iter().chain(fields) {
        assert_eq!(
            field(json, key).as_deref(),
            Some(*want),
            "{label}.{key}: {json}"
        );
    }
    json
}

/// Asserts the answer has this status and a non-empty "error" string.
fn check_error(out: &Answers, label: &str, status: u16) {
    let json = check(out, label, status, &[]);
    let error = field(json, "error").unwrap_or_default();
    assert!(
        error.starts_with('"') && error.len() > 2,
        "{label}: no error text in {json}"
    );
}

/// The raw JSON value of `key` in a flat object (strings keep their quotes).
fn field(json: &str, key: &str) -> Option<String> {
    let start = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &json[start..];
    let len = if rest.starts_with('"') {
        let mut escaped = false;
        let close = rest.char_indices().skip(1).find(|&(_, c)| {
            let end = c == '"' && !escaped;
            escaped = c == '\\' && !escaped;
            end
        });
        close?.0 + 1
    } else {
        rest.find([',', '}'])?
    };
    Some(rest[..len].to_string())
}

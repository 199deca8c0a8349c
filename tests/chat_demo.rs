//! The chat demo in examples/chat: its page (examples/chat/public) served by `--static`, and a
//! whole chat room run through each of its CGI backends (chat.sh, chat.py, chat.php via
//! php-cgi) by a real wscgi with real WebSocket clients; and `--static` never serving backend
//! code. A missing interpreter skips loudly, or fails when `CI` is set.

mod support;

use std::io::Write;
use std::path::Path;

use support::*;
use tungstenite::Message;

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/chat");
/// What the quick start serves: the page, without the scripts beside it.
const PUBLIC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/chat/public");

#[test]
fn chat_sh_room() {
    chat_room("chat.sh");
}

#[test]
fn chat_py_room() {
    // The shebang names /usr/bin/python3: CGI programs get no PATH.
    if available("python3", &["/usr/bin"]) {
        chat_room("chat.py");
    }
}

#[test]
fn chat_php_cgi_room() {
    // The wrapper's PATH.
    if available("php-cgi", &["/usr/local/bin", "/usr/bin", "/bin"]) {
        chat_room("chat-php-cgi.sh");
    }
}

/// wscgi with `--static examples/chat/public` and `script` as its CGI backend: the page is
/// served, and alice and bob chat.
fn chat_room(script: &str) {
    let backend = format!("cgi:{DEMO}/{script}");
    let server = Wscgi::start(&backend, &["--static", PUBLIC]);
    page_is_served(&server);

    let mut alice = connect(&server.ws_url("/chat?name=alice"));
    assert_eq!(recv_text(&mut alice), "* alice joined", "{script}");
    let mut bob = connect(&server.ws_url("/chat?name=bob"));
    assert_eq!(recv_text(&mut alice), "* bob joined", "{script}");
    assert_eq!(recv_text(&mut bob), "* bob joined", "{script}");

    bob.send(Message::text("hi")).unwrap();
    assert_eq!(
        recv_text(&mut bob),
        "bob: hi",
        "{script}: the sender hears itself"
    );
    assert_eq!(recv_text(&mut alice), "bob: hi", "{script}");

    bob.close(None).unwrap();
    let _ = recv_close(&mut bob);
    assert_eq!(recv_text(&mut alice), "* bob left", "{script}");

    // Names are cleaned the same way by every script: only [A-Za-z0-9_-], at most 20.
    let mut carol = connect(&server.ws_url("/chat?x=1&name=%3Cb%3Ecar%20ol%3C%2Fb%3E&y=2"));
    assert_eq!(recv_text(&mut alice), "* bcarolb joined", "{script}");
    assert_eq!(recv_text(&mut carol), "* bcarolb joined", "{script}");
    let long = "x".repeat(30);
    let _dave = connect(&server.ws_url(&format!("/chat?name={long}")));
    let want = format!("* {} joined", &long[..20]);
    assert_eq!(recv_text(&mut alice), want, "{script}: names are cut at 20");

    // No name: "guest-" and the first 4 characters of the connection id.
    let _anon = connect(&server.ws_url("/chat?nickname=zed"));
    let joined = recv_text(&mut alice);
    let guest = joined
        .strip_prefix("* guest-")
        .and_then(|rest| rest.strip_suffix(" joined"))
        .unwrap_or_else(|| panic!("{script}: {joined:?} is no guest joining"));
    assert_eq!(guest.len(), 4, "{script}: {joined:?}");
    assert!(
        guest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{script}: {joined:?} has 4 characters of a URL-safe id"
    );

    carol.send(Message::text("héllo <b>")).unwrap();
    assert_eq!(recv_text(&mut alice), "bcarolb: héllo <b>", "{script}");
}

/// A plain GET on the WebSocket port is answered from `--static examples/chat/public`.
fn page_is_served(server: &Wscgi) {
    let page = http(server.ws_addr, "GET", "/", &[], b"");
    assert_eq!(page.status, 200, "GET /: {}", page.body_str());
    let body = page.body_str();
    assert!(
        body.contains(r#"id="log""#),
        "GET / is the chat page: {body}"
    );
    assert!(
        page.header("content-type")
            .is_some_and(|ct| ct.starts_with("text/html")),
        "GET / is HTML: {:?}",
        page.headers
    );
    let missing = http(server.ws_addr, "GET", "/nope", &[], b"");
    assert_eq!(missing.status, 404, "GET /nope: {}", missing.body_str());
}

/// README's quick start exactly as written (paths relative to the repository, where cargo runs
/// the tests): the page at `/`, and the script it runs is not there to be fetched.
#[test]
fn the_quick_start_serves_its_page_and_not_its_script() {
    let server = Wscgi::start(
        "cgi:examples/chat/chat.sh",
        &["--static", "examples/chat/public"],
    );
    page_is_served(&server);
    let script = http(server.ws_addr, "GET", "/chat.sh", &[], b"");
    assert_eq!(script.status, 404, "GET /chat.sh: {}", script.body_str());
}

/// The quick start's old layout, the page beside its scripts, as a user copying it for their
/// own app might keep it: `--static` still serves the page but none of the backend's code
/// (the CGI program, the FastCGI script a route names, any PHP file).
#[test]
fn static_files_never_include_backend_code() {
    let fastcgi = format!("/php=fastcgi://127.0.0.1:9{DEMO}/chat-php-cgi.sh");
    let args = ["--static", DEMO, "--route", &fastcgi];
    let server = Wscgi::start(&format!("cgi:{DEMO}/chat.py"), &args);
    for script in [
        "/chat.py",
        "/chat-php-cgi.sh",
        "/chat.php",
        "/chat.php?x",
        "/%63hat.py",
    ] {
        let got = http(server.ws_addr, "GET", script, &[], b"");
        assert_eq!(got.status, 404, "GET {script}: {}", got.body_str());
        assert!(!got.body_str().contains("wscgi"), "GET {script}: no source");
    }
    let page = http(server.ws_addr, "GET", "/public/index.html", &[], b"");
    assert_eq!(page.status, 200, "the page: {}", page.body_str());
}

/// Whether `program` is in one of `dirs` (where the demo script will look for it). Missing:
/// fails under CI, else skips with a loud message.
fn available(program: &str, dirs: &[&str]) -> bool {
    if dirs.iter().any(|d| Path::new(d).join(program).is_file()) {
        return true;
    }
    let why = format!("{program} is not in {}", dirs.join(" or "));
    if std::env::var_os("CI").is_some() {
        panic!("{why}; CI is set, so a missing {program} is a failure (install it)");
    }
    // Straight to stderr, not eprintln!: the test harness would swallow that for a passing test.
    let bar = "!".repeat(72);
    let note = format!(
        "\n{bar}\n!!! SKIPPED: {why}\n!!! the chat demo with {program} did not run\n{bar}\n"
    );
    let _ = std::io::stderr().write_all(note.as_bytes());
    false
}

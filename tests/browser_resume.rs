//! The chat demo survives a network blink in a real browser: headless Chromium (driven by
//! tests/browser/resume.mjs through playwright-core) loads the page from the real `wscgi`
//! binary (`--static examples/chat/public`, chat.sh as CGI) and connects through a TCP proxy in this test. The
//! proxy cuts the connection (no close frame), lines are published to the room while the page
//! is away, the network comes back, and the page must show every one of them once, having
//! resumed its session (examples/client/wscgi.js): no second join, no leave, no reset.
//! Missing chromium, node or playwright-core: a loud skip, or a failure when `CI` is set.
//!
//! Also here: the demo serves the browser helper itself, so its copy must be the helper.

#[path = "browser/cut_proxy.rs"]
mod cut_proxy;
#[path = "browser/driver.rs"]
mod driver;
#[path = "browser/harness.rs"]
mod harness;
mod support;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use cut_proxy::CutProxy;
use driver::{browser_tools, percent_encode, run_driver, shots_dir};
use harness::*;
use support::{http, wait_until};

/// Lines published while the page is away.
const MISSED: usize = 5;
const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn the_demo_serves_the_browser_helper_unchanged() {
    let helper = std::fs::read(Path::new(ROOT).join("examples/client/wscgi.js")).unwrap();
    let served = std::fs::read(Path::new(PUBLIC).join("wscgi.js")).unwrap();
    assert!(
        helper == served,
        "examples/chat/public/wscgi.js must be a copy of examples/client/wscgi.js"
    );
}

#[test]
fn the_chat_page_resumes_after_a_network_blink_without_losing_a_line() {
    let Some(node) = browser_tools() else {
        return;
    };
    let dir = TempDir::new("browser-resume");
    let backend = format!("cgi:{DEMO}/chat.sh");
    let wscgi = WscgiProc::start(&["--static", PUBLIC, "--backend", &backend], &dir);
    let proxy = CutProxy::start(SocketAddr::from(([127, 0, 0, 1], wscgi.port)));
    let push = SocketAddr::from(([127, 0, 0, 1], wscgi.push_port));
    let ws = format!("ws://{}/chat", proxy.addr);
    let url = format!(
        "http://127.0.0.1:{}/?ws={}",
        wscgi.port,
        percent_encode(&ws)
    );
    let shots = shots_dir();
    let missed = MISSED.to_string();
    let args = [url.as_str(), shots.to_str().expect("a UTF-8 path"), &missed];
    let script = "tests/browser/resume.mjs";
    match run_driver(&node, script, &args, &dir, LIMIT, "CUT", || {
        blink(&proxy, push)
    }) {
        Ok(steps) => {
            let _ = writeln!(std::io::stderr(), "resume: {steps}");
        }
        Err(why) => panic!("resume: {why}\n{}", wscgi.logs(&dir)),
    }
}

/// The network blinks: the page's connection is cut, its session parks, lines are published
/// to the room meanwhile (each kept for the parked page), then the network is back.
fn blink(proxy: &CutProxy, push: SocketAddr) {
    proxy.cut();
    let t = Duration::from_secs(10);
    wait_until(t, "the page's session is parked", || {
        let room = http(push, "GET", "/channels/chat", &[], b"").body_str();
        let Some((_, members)) = room.split_once("\"members\":[\"") else {
            return false;
        };
        let id = members.split('"').next().unwrap_or_default();
        let shown = http(push, "GET", &format!("/connections/{id}"), &[], b"").body_str();
        shown.contains("\"parked\":true")
    });
    for n in 1..=MISSED {
        let line = format!("while away {n}");
        let answer = http(push, "POST", "/channels/chat", &[], line.as_bytes());
        let body = answer.body_str();
        assert_eq!(answer.status, 200, "{body}");
        assert!(
            body.contains("\"queued\":1"),
            "kept for the parked page: {body}"
        );
    }
    proxy.heal();
}

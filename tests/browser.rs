//! The chat demo in a real browser: headless Chromium (driven by tests/browser/chat.mjs through
//! playwright-core) talks to the real `wscgi` binary
//!
//! - behind real nginx with TLS, running examples/deploy/nginx.conf, with php-fpm running
//!   examples/chat/chat.php as wscgi's FastCGI backend (`https://localhost:PORT/`: the page
//!   derives `wss://localhost:PORT/chat` itself);
//! - behind real Caddy with TLS, running examples/deploy/Caddyfile, with chat.py as CGI;
//! - alone, as in the quick start: `--static examples/chat/public` and chat.sh as CGI (the
//!   page told where to connect with `?ws=`);
//! - alone over its own TLS (feature `tls`): `https://localhost:PORT/` from `--static`, the
//!   chat over `wss://` on the same port.
//!
//! Each: A sees B join, B's message reaches A, closing B's page shows "* B left", and after
//! wscgi is restarted on the same port (SIGTERM, exit 0, a new process) A's page reconnects by
//! itself and chats again. Screenshots: target/browser-shots/*.png. Missing chromium, node,
//! playwright-core, nginx, php-fpm, openssl or caddy: a loud skip, or a failure when `CI` is
//! set (.ci/run installs them).

#[path = "browser/driver.rs"]
mod driver;
#[path = "browser/harness.rs"]
mod harness;
#[path = "browser/proxies.rs"]
mod proxies;
mod support;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use driver::{browser_tools, percent_encode, run_driver, shots_dir};
use harness::*;
use proxies::{caddy, nginx, php_fpm};

/// One scenario, driver included; the driver's own waits are 15 s each.
const SCENARIO_LIMIT: Duration = Duration::from_secs(60);

#[test]
fn chat_through_nginx_tls_and_php_fpm() {
    let Some(node) = browser_tools() else { return };
    let what = "the browser test behind nginx";
    if require("nginx", what).is_none()
        || require("openssl", what).is_none()
        || !require_path(Path::new("/etc/nginx/mime.types"), what)
        || !require_path(Path::new("/etc/nginx/fastcgi_params"), what)
    {
        return;
    }
    let dir = TempDir::new("browser-nginx");
    // php-fpm pins one child to each of wscgi's kept FastCGI connections (one per worker).
    let Some((_fpm, fpm_port)) = php_fpm(&dir, 4) else {
        return;
    };
    let backend = format!("fastcgi://127.0.0.1:{fpm_port}{DEMO}/chat.php");
    let mut wscgi = WscgiProc::start(&["--backend", &backend, "--workers", "2"], &dir);
    let port = free_port();
    let _nginx = nginx(&dir, port, wscgi.port, fpm_port);

    // examples/deploy/nginx.conf keeps the backend script away from browsers.
    let gets = "/chat.php=404,/index.html=200,/nope=404";
    let url = format!("https://localhost:{port}/");
    run_chat(&node, &url, gets, "nginx", &mut wscgi, &dir);

    // nginx's log shows the upgrade it proxied (the page's resume key is in the query).
    let access = dir.read("access.log");
    assert!(
        access
            .lines()
            .any(|l| l.contains("GET /chat?name=A&wscgi-resume=") && l.contains("HTTP/1.1\" 101")),
        "nginx proxied the WebSocket upgrade; access.log:\n{access}"
    );
}

#[test]
fn chat_with_static_and_sh_cgi() {
    let Some(node) = browser_tools() else { return };
    let dir = TempDir::new("browser-cgi");
    let backend = format!("cgi:{DEMO}/chat.sh");
    let mut wscgi = WscgiProc::start(&["--static", PUBLIC, "--backend", &backend], &dir);
    // The page's ?ws= override names the WebSocket base; the page adds ?name= itself.
    let ws = format!("ws://127.0.0.1:{}/chat", wscgi.port);
    let url = format!(
        "http://127.0.0.1:{}/?ws={}",
        wscgi.port,
        percent_encode(&ws)
    );
    run_chat(&node, &url, "", "cgi", &mut wscgi, &dir);
}

#[test]
fn chat_through_caddy_tls_and_python_cgi() {
    let Some(node) = browser_tools() else { return };
    let what = "the browser test behind Caddy";
    let Some(bin) = require("caddy", what) else {
        return;
    };
    // chat.py's shebang: CGI programs get no PATH.
    if !require_path(Path::new("/usr/bin/python3"), what) {
        return;
    }
    let dir = TempDir::new("browser-caddy");
    let backend = format!("cgi:{DEMO}/chat.py");
    let mut wscgi = WscgiProc::start(&["--backend", &backend], &dir);
    let port = free_port();
    let _caddy = caddy(&dir, &bin, port, wscgi.port);
    let url = format!("https://localhost:{port}/");
    run_chat(
        &node,
        &url,
        "/chat.php=404,/nope=404",
        "caddy",
        &mut wscgi,
        &dir,
    );
}

/// wscgi's own TLS (feature `tls`): the page over https from `--static`, the chat over wss on
/// the same port, which the page derives from its own URL.
#[cfg(feature = "tls")]
#[test]
fn chat_over_wscgi_tls_with_static_and_sh_cgi() {
    let Some(node) = browser_tools() else { return };
    if require("openssl", "the browser test over wscgi's TLS").is_none() {
        return;
    }
    let dir = TempDir::new("browser-tls");
    let (cert, key) = support::tls_client::make_cert(&dir.0, "server", false);
    let backend = format!("cgi:{DEMO}/chat.sh");
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let args = [
        "--static",
        PUBLIC,
        "--backend",
        &backend,
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
    ];
    let mut wscgi = WscgiProc::start(&args, &dir);
    let url = format!("https://localhost:{}/", wscgi.port);
    run_chat(&node, &url, "/nope=404", "wscgi-tls", &mut wscgi, &dir);
}

/// Runs tests/browser/chat.mjs on `url` (with `gets`, see there): restarts `wscgi` when it says
/// RESTART, and fails the test with its output and wscgi's logs unless it ends with PASS within
/// [`SCENARIO_LIMIT`].
fn run_chat(node: &Path, url: &str, gets: &str, tag: &str, wscgi: &mut WscgiProc, dir: &TempDir) {
    let shots = shots_dir();
    let shots = shots.to_str().expect("a UTF-8 path");
    let args = [url, shots, tag, gets];
    let script = "tests/browser/chat.mjs";
    let outcome = run_driver(node, script, &args, dir, SCENARIO_LIMIT, "RESTART", || {
        wscgi.restart(dir)
    });
    match outcome {
        // What happened, step by step with timings, to stderr (the harness hides eprintln!).
        Ok(steps) => {
            let _ = std::io::stderr().write_all(format!("{tag}: {steps}\n").as_bytes());
        }
        Err(why) => panic!("{tag}: {why}\n{}", wscgi.logs(dir)),
    }
}

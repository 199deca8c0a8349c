//! What examples/deploy/ promises: the systemd units are valid and socket activation works
//! (under systemd-socket-activate, the same hand-over of fd 3 and fd 4 that wscgi.socket
//! makes), the Caddyfile is valid, the README's options table is `wscgi --help`, and release
//! builds keep unwinding so a worker panic costs one event. Missing tools: a loud skip, or a
//! failure when `CI` is set (.ci/run installs them).

#[path = "browser/harness.rs"]
mod harness;
mod support;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use harness::*;
use support::{TestBackend, connect, http, recv_close, recv_text};
use tungstenite::Message;

#[test]
fn socket_activation_hands_over_both_listeners() {
    let dir = TempDir::new("activate");
    let backend = TestBackend::echo();
    // --listen and --push-listen name ports the test itself listens on, so that nothing else
    // can take them meanwhile: wscgi must take fd 3 and 4 instead (binding these would fail).
    let held_ws = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let held_push = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    for held in [&held_ws, &held_push] {
        held.set_nonblocking(true).unwrap();
    }
    let (ws_listen, push_listen) = (
        held_ws.local_addr().unwrap().to_string(),
        held_push.local_addr().unwrap().to_string(),
    );
    let args = [
        "--backend",
        &backend.url(),
        "--listen",
        &ws_listen,
        "--push-listen",
        &push_listen,
    ];
    let Some((mut wscgi, ws, push)) = socket_activate(&dir, &args) else {
        return;
    };
    assert!(
        backend.requests().is_empty(),
        "wscgi ran before the first connection"
    );

    // The first connection starts wscgi, which finds it waiting on fd 3.
    let mut client = connect(&format!("ws://127.0.0.1:{ws}/chat"));
    client.send(Message::text("through fd 3")).unwrap();
    assert_eq!(recv_text(&mut client), "through fd 3");
    let health = http(([127, 0, 0, 1], push).into(), "GET", "/healthz", &[], b"");
    assert_eq!(
        health.status,
        200,
        "GET /healthz on fd 4: {}",
        health.body_str()
    );
    assert!(
        health.body_str().contains(r#""connections":1"#),
        "{}",
        health.body_str()
    );
    for held in [&held_ws, &held_push] {
        assert!(
            held.accept().is_err(),
            "a client reached --listen/--push-listen rather than fd 3/4"
        );
    }
    let log = dir.read("activate.log");
    assert!(
        log.contains("Execing"),
        "systemd-socket-activate started wscgi:\n{log}"
    );

    // SIGTERM, as `systemctl stop` sends it: clients get 1001, the close event is delivered,
    // exit 0.
    let status = wscgi.terminate(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit after SIGTERM: {status:?}\n{log}"
    );
    let close = recv_close(&mut client).map(|f| u16::from(f.code));
    assert_eq!(
        close,
        Some(1001),
        "the client is told the server is going away"
    );
    let events: Vec<String> = backend
        .requests()
        .iter()
        .map(|r| r.event().into())
        .collect();
    assert_eq!(
        events,
        ["reset", "open", "message", "close"],
        "backend events"
    );
}

/// systemd hands the listeners over without FD_CLOEXEC; wscgi must set it, or every CGI
/// program it runs inherits them (and could accept WebSocket or push-API clients, or keep the
/// ports after wscgi is gone).
#[test]
fn socket_activated_listeners_do_not_leak_into_cgi_programs() {
    let dir = TempDir::new("activate-cgi");
    let script = dir.path("fds.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nsockets:'\n\
         for f in /proc/$$/fd/*; do l=$(readlink \"$f\") && case $l in socket:*) \
         printf ' %s' \"$l\";; esac; done\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let backend = format!("cgi:{}", script.display());
    let Some((wscgi, ws, _)) = socket_activate(&dir, &["--backend", &backend]) else {
        return;
    };
    let mut client = connect(&format!("ws://127.0.0.1:{ws}/"));
    let inherited = recv_text(&mut client);
    assert!(
        inherited.starts_with("sockets:"),
        "the CGI program's answer: {inherited:?}"
    );
    for fd in [3, 4] {
        let link = std::fs::read_link(format!("/proc/{}/fd/{fd}", wscgi.pid())).unwrap();
        let socket = link.display().to_string();
        assert!(socket.starts_with("socket:"), "wscgi's fd {fd} is {socket}");
        assert!(
            !inherited.split(' ').any(|s| s == socket),
            "the CGI program holds wscgi's listener fd {fd} ({socket}): {inherited}"
        );
    }
}

/// `systemd-analyze verify` on copies of the units whose ExecStart is the built binary (it
/// checks that the binary exists). It needs no running systemd, so it works in containers.
#[test]
fn systemd_units_verify() {
    let Some(analyze) = require("systemd-analyze", "the systemd unit check") else {
        return;
    };
    let dir = TempDir::new("units");
    let service = std::fs::read_to_string(format!("{DEPLOY}/wscgi.service")).unwrap();
    let socket = std::fs::read_to_string(format!("{DEPLOY}/wscgi.socket")).unwrap();
    assert_eq!(
        service.matches("/usr/local/bin/wscgi ").count(),
        1,
        "one ExecStart"
    );
    dir.write(
        "wscgi.service",
        &service.replace(
            "/usr/local/bin/wscgi ",
            &format!("{} ", env!("CARGO_BIN_EXE_wscgi")),
        ),
    );
    dir.write("wscgi.socket", &socket);
    verify_units(&analyze, &dir);

    // The socket order is wscgi's fd order: WebSocket clients first, then the push API.
    let listens: Vec<&str> = socket
        .lines()
        .filter_map(|l| l.strip_prefix("ListenStream="))
        .collect();
    assert_eq!(listens, ["127.0.0.1:8080", "127.0.0.1:8081"]);
    assert!(
        service.contains("--listen 127.0.0.1:8080")
            && service.contains("--push-listen 127.0.0.1:8081")
    );
    // systemd's SIGKILL must come after wscgi's own graceful shutdown has had its time.
    let secs = |s: &str| s.trim().trim_end_matches('s').parse::<u64>().unwrap();
    let grace = secs(
        service
            .split("--shutdown-timeout ")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap(),
    );
    let stop = secs(
        service
            .lines()
            .find_map(|l| l.strip_prefix("TimeoutStopSec="))
            .unwrap(),
    );
    assert!(
        stop > grace,
        "TimeoutStopSec={stop}s must exceed --shutdown-timeout {grace}s"
    );
}

/// `systemd-analyze verify` of wscgi.socket and wscgi.service in `dir` (with any drop-ins in
/// `wscgi.*.d/` beside them). Unknown keys and unparsable values are only warnings there: any
/// line about our units fails.
fn verify_units(analyze: &Path, dir: &TempDir) {
    let out = Command::new(analyze)
        .args(["verify", "--man=no", "wscgi.socket", "wscgi.service"])
        .current_dir(&dir.0)
        .output()
        .expect("run systemd-analyze");
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let ours: Vec<&str> = said.lines().filter(|l| l.contains("wscgi.s")).collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify:\n{said}"
    );
}

/// wscgi's own TLS: the drop-ins for both units verify on top of them, and the socket order
/// stays WebSocket clients (now port 443), then the push API (still loopback).
#[test]
fn tls_drop_ins_verify() {
    let Some(analyze) = require("systemd-analyze", "the systemd drop-in check") else {
        return;
    };
    let dir = TempDir::new("units-tls");
    let ours = format!("{} ", env!("CARGO_BIN_EXE_wscgi"));
    let read = |name: &str| std::fs::read_to_string(format!("{DEPLOY}/{name}")).unwrap();
    let service = read("wscgi.service").replace("/usr/local/bin/wscgi ", &ours);
    let drop_in = read("wscgi-tls.conf").replace("/usr/local/bin/wscgi ", &ours);
    let socket_drop_in = read("wscgi-tls.socket.conf");
    dir.write("wscgi.service", &service);
    dir.write("wscgi.socket", &read("wscgi.socket"));
    for d in ["wscgi.service.d", "wscgi.socket.d"] {
        std::fs::create_dir(dir.path(d)).unwrap();
    }
    dir.write("wscgi.service.d/tls.conf", &drop_in);
    dir.write("wscgi.socket.d/tls.conf", &socket_drop_in);
    verify_units(&analyze, &dir);
    let listens: Vec<&str> = socket_drop_in
        .lines()
        .filter_map(|l| l.strip_prefix("ListenStream="))
        .collect();
    assert_eq!(listens, ["", "443", "127.0.0.1:8081"]);
    assert!(drop_in.contains("--tls-cert /etc/wscgi/tls/fullchain.pem"));
}

#[test]
fn caddyfile_is_valid() {
    let Some(caddy) = require("caddy", "the Caddyfile check") else {
        return;
    };
    let home = TempDir::new("caddy");
    let out = Command::new(caddy)
        .args(["validate", "--adapter", "caddyfile", "--config"])
        .arg(format!("{DEPLOY}/Caddyfile"))
        .env("HOME", &home.0)
        .env("XDG_DATA_HOME", &home.0)
        .env("XDG_CONFIG_HOME", &home.0)
        .output()
        .expect("run caddy");
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.contains("Valid configuration"),
        "caddy validate:\n{said}"
    );
}

/// The options table under `## Options` in README.md: (names, quoted default value) per row.
fn readme_options() -> Vec<(Vec<String>, Option<String>)> {
    let readme = std::fs::read_to_string(format!("{ROOT}/README.md")).unwrap();
    let section = readme
        .split("\n## Options\n")
        .nth(1)
        .expect("README has ## Options");
    let section = section.split("\n## ").next().unwrap();
    let quoted = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    let rows: Vec<_> = section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').collect();
            let names = quoted(cells[1])
                .iter()
                .filter_map(|q| q.split_whitespace().next().map(str::to_string))
                .collect();
            // A default is a value when the whole cell is one quoted value (not "(this or
            // `--route`)", "off", "none").
            let default = cells[2].trim();
            let value = default.len() > 1 && default.starts_with('`') && default.ends_with('`');
            (names, value.then(|| default.trim_matches('`').to_string()))
        })
        .collect();
    assert!(rows.len() > 10, "README's options table: {rows:?}");
    rows
}

/// `wscgi --help` per option: (names, the whole entry with its continuation lines).
fn help_options() -> Vec<(Vec<String>, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_wscgi"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut entries: Vec<(Vec<String>, String)> = Vec::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let indent = line.len() - line.trim_start().len();
        if indent == 2 && line.trim_start().starts_with('-') {
            let spec = line.trim().split("  ").next().unwrap();
            let names = spec
                .split(", ")
                .filter_map(|s| s.split_whitespace().next())
                .map(str::to_string);
            entries.push((names.collect(), line.to_string()));
        } else if indent > 2
            && let Some(last) = entries.last_mut()
        {
            last.1.push_str(line);
        } else if line.trim().is_empty() || indent == 0 {
            entries.push((Vec::new(), String::new())); // ends the entry before
        }
    }
    entries.retain(|(names, _)| !names.is_empty());
    entries
}

#[test]
fn readme_options_table_lists_every_option_of_help() {
    let names = |v: Vec<Vec<String>>| -> BTreeSet<String> { v.into_iter().flatten().collect() };
    let in_readme = names(readme_options().into_iter().map(|r| r.0).collect());
    let in_help = names(help_options().into_iter().map(|h| h.0).collect());
    let only_help: Vec<_> = in_help.difference(&in_readme).collect();
    let only_readme: Vec<_> = in_readme.difference(&in_help).collect();
    assert!(
        only_help.is_empty() && only_readme.is_empty(),
        "README's options table and `wscgi --help` differ: only in --help {only_help:?}, \
         only in README {only_readme:?}"
    );
}

/// Every default README's table quotes as a value is the "(default ...)" of that option's
/// --help entry (whitespace ignored: --help wraps long lists).
#[test]
fn readme_defaults_match_help() {
    let help = help_options();
    let squeeze = |s: &str| s.split_whitespace().collect::<String>();
    let mut checked = 0;
    for (names, default) in readme_options() {
        let Some(default) = default else { continue };
        let entry = help.iter().find(|(n, _)| *n == names).map(|h| h.1.as_str());
        let entry = entry.unwrap_or_else(|| panic!("README's {names:?} is not in --help"));
        assert!(
            squeeze(entry).contains(&format!("(default{}", squeeze(&default))),
            "README says {names:?} defaults to {default:?}; --help says: {entry}"
        );
        checked += 1;
    }
    assert!(
        checked >= 10,
        "only {checked} quoted defaults in README's table"
    );
}

/// A worker panic must cost one event, not the service: the pool catches it, which
/// `panic = "abort"` would make impossible.
#[test]
fn release_profile_keeps_unwinding() {
    let manifest = std::fs::read_to_string(format!("{ROOT}/Cargo.toml")).unwrap();
    let release = manifest.split("[profile.release]").nth(1).unwrap_or("");
    let release = release.split("\n[").next().unwrap();
    let panic = release
        .lines()
        .map(|l| l.split('#').next().unwrap().replace(' ', ""))
        .find_map(|l| l.strip_prefix("panic=").map(str::to_string));
    assert_ne!(
        panic.as_deref(),
        Some("\"abort\""),
        "[profile.release] sets panic = \"abort\""
    );
    for config in [".cargo/config.toml", ".cargo/config"] {
        let text = std::fs::read_to_string(Path::new(ROOT).join(config)).unwrap_or_default();
        assert!(
            !text.replace(' ', "").contains("panic=abort"),
            "{config} sets panic=abort"
        );
    }
}

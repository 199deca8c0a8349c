//! The real `wscgi` binary with TLS (feature `tls`): SIGHUP loads a renewed certificate (new
//! connections get it, an open one keeps working) and keeps the current one when the new file
//! is broken, saying why; a client that does not speak TLS leaves a debug log line; systemd
//! socket activation and SIGTERM's graceful stop work over `wss://` as they do over `ws://`.
//! Missing openssl or systemd-socket-activate: a loud skip, or a failure when `CI` is set.
#![cfg(feature = "tls")]

#[path = "browser/harness.rs"]
mod harness;
mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use harness::*;
use support::tls_client::*;
use support::{TestBackend, wait_until};

const T: Duration = Duration::from_secs(10);

/// The fingerprint a new TLS client is shown.
fn served(addr: SocketAddr) -> String {
    tls_connect(addr, &[&TLS13]).expect("TLS handshake").1
}

/// A fresh certificate in a new temp dir, an echo backend, and the wscgi arguments for both;
/// None (after a loud skip note) without openssl.
fn tls_setup(tag: &str) -> Option<(TempDir, TestBackend, Vec<String>)> {
    require("openssl", "the TLS tests of the binary")?;
    let dir = TempDir::new(tag);
    let (cert, key) = make_cert(&dir.0, "server", false);
    let backend = TestBackend::echo();
    let args = ["--backend", &backend.url(), "--tls-cert"]
        .iter()
        .map(|s| s.to_string())
        .chain([cert.display().to_string(), "--tls-key".into()])
        .chain([key.display().to_string()])
        .collect();
    Some((dir, backend, args))
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn hup(wscgi: &WscgiProc) {
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our running child.
    assert_eq!(unsafe { libc::kill(wscgi.pid(), libc::SIGHUP) }, 0);
}

#[test]
fn sighup_reloads_the_certificate_and_a_broken_file_keeps_the_current_one() {
    if require("openssl", "the TLS reload test").is_none() {
        return;
    }
    let dir = TempDir::new("tls-reload");
    let (cert, key) = make_cert(&dir.0, "live", false);
    let first = openssl_fingerprint(&cert);
    let backend = TestBackend::echo();
    let (cert_arg, key_arg) = (cert.display().to_string(), key.display().to_string());
    let args = ["--backend", &backend.url(), "--tls-cert", &cert_arg];
    let wscgi = WscgiProc::start(&[&args[..], &["--tls-key", &key_arg]].concat(), &dir);
    let addr: SocketAddr = ([127, 0, 0, 1], wscgi.port).into();
    let (mut open, seen) = wss_connect(addr, "/chat", &[&TLS13]);
    assert_eq!(seen, first, "the certificate of --tls-cert");
    echo(&mut open, "before the renewal");

    // A renewal as certbot makes it: new files in place (an RSA key this time), then SIGHUP.
    let (new_cert, new_key) = make_cert(&dir.0, "renewed", true);
    let renewed = openssl_fingerprint(&new_cert);
    assert_ne!(renewed, first);
    std::fs::rename(&new_key, &key).unwrap();
    std::fs::rename(&new_cert, &cert).unwrap();
    hup(&wscgi);
    wait_until(T, "new connections get the renewed certificate", || {
        served(addr) == renewed
    });
    assert!(
        wscgi
            .log(&dir)
            .contains(&format!("reloaded from {cert_arg} (SHA-1 {renewed})"))
    );
    echo(&mut open, "the open connection keeps working");

    // A broken file: the renewed certificate stays, and the log says why.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nbroken\n").unwrap();
    hup(&wscgi);
    wait_until(T, "the failed reload is logged", || {
        wscgi
            .log(&dir)
            .contains("TLS certificate not reloaded, keeping the current one")
    });
    assert_eq!(served(addr), renewed, "the current certificate stays");
    echo(&mut open, "still open after the failed reload");
    let (mut late, _) = wss_connect(addr, "/chat", &[&TLS12]);
    echo(&mut late, "a new connection after the failed reload");
}

#[test]
fn clients_not_speaking_tls_leave_a_debug_line() {
    let Some((dir, _backend, args)) = tls_setup("tls-log") else {
        return;
    };
    let wscgi = WscgiProc::start(&strs(&args), &dir);
    // Plain HTTP, then bytes that are no protocol at all (a ClientHello header with nonsense
    // after it): one debug line each.
    let garbage: &[u8] = &[0x16, 0x03, 0x01, 0x00, 0x05, 0xde, 0xad, 0xbe, 0xef, 0x00];
    for (n, bytes) in [&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..], garbage]
        .into_iter()
        .enumerate()
    {
        let mut s = TcpStream::connect(("127.0.0.1", wscgi.port)).unwrap();
        s.write_all(bytes).unwrap();
        wait_until(T, "a debug line about the client", || {
            let log = wscgi.log(&dir);
            let lines = log
                .lines()
                .filter(|l| l.contains("DEBUG") && l.contains("closed during the handshake: TLS"));
            lines.count() == n + 1
        });
    }
    let log = wscgi.log(&dir);
    assert!(!log.contains("WARN") && !log.contains("ERROR"), "{log}");
}

#[test]
fn socket_activation_and_graceful_stop_over_wss() {
    let Some((dir, backend, args)) = tls_setup("tls-activate") else {
        return;
    };
    let Some((mut wscgi, ws, _push)) = socket_activate(&dir, &strs(&args)) else {
        return;
    };
    // The first connection starts wscgi, which finds it waiting on fd 3 and speaks TLS on it.
    let (mut client, _) = wss_connect(([127, 0, 0, 1], ws).into(), "/chat", &[&TLS13]);
    echo(&mut client, "through fd 3, over TLS");
    let status = wscgi.terminate(T);
    assert!(
        status.is_some_and(|s| s.success()),
        "exit 0 after SIGTERM: {status:?}\n{}",
        dir.read("activate.log")
    );
    let code = recv_close_code(&mut client);
    assert_eq!(code, Some(1001), "going away, over TLS");
    wait_until(T, "the close event reaches the backend", || {
        backend.event_names().iter().any(|e| e == "close")
    });
}

/// examples/deploy/certbot-deploy-hook.sh, run as certbot would after a renewal (its target
/// directory, group and reload command pointed at the test's own): wscgi, reading the hook's
/// copies, serves the renewed certificate.
#[test]
fn the_certbot_deploy_hook_installs_the_renewal_and_wscgi_serves_it() {
    if require("openssl", "the certbot hook test").is_none() {
        return;
    }
    let dir = TempDir::new("tls-certbot");
    let live = dir.path("live/chat.example.com");
    std::fs::create_dir_all(&live).unwrap();
    let (cert, key) = make_cert(&dir.0, "first", false);
    std::fs::rename(&cert, live.join("fullchain.pem")).unwrap();
    std::fs::rename(&key, live.join("privkey.pem")).unwrap();
    // SAFETY: getegid(2) has no preconditions.
    let group = unsafe { libc::getegid() }.to_string();
    let installed = dir.path("etc-wscgi-tls");
    let hook = |reload: &str| {
        let out = std::process::Command::new(format!("{DEPLOY}/certbot-deploy-hook.sh"))
            .env("RENEWED_LINEAGE", &live)
            .env("WSCGI_TLS_DIR", &installed)
            .env("WSCGI_TLS_GROUP", &group)
            .env("WSCGI_RELOAD", reload)
            .output()
            .expect("run the deploy hook");
        let said = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "certbot-deploy-hook.sh: {said}");
    };
    hook("true"); // the first copy, before wscgi runs
    let backend = TestBackend::echo();
    let cert_arg = installed.join("fullchain.pem").display().to_string();
    let key_arg = installed.join("privkey.pem").display().to_string();
    let args = [
        "--backend",
        &backend.url(),
        "--tls-cert",
        &cert_arg,
        "--tls-key",
        &key_arg,
    ];
    let wscgi = WscgiProc::start(&args, &dir);
    let addr: SocketAddr = ([127, 0, 0, 1], wscgi.port).into();
    let first = openssl_fingerprint(&live.join("fullchain.pem"));
    assert_eq!(served(addr), first);

    let (cert, key) = make_cert(&dir.0, "renewed", false);
    let renewed = openssl_fingerprint(&cert);
    std::fs::rename(&cert, live.join("fullchain.pem")).unwrap();
    std::fs::rename(&key, live.join("privkey.pem")).unwrap();
    hook(&format!("kill -HUP {}", wscgi.pid()));
    wait_until(T, "wscgi serves the certificate the hook installed", || {
        served(addr) == renewed
    });
    let mode = std::fs::metadata(installed.join("privkey.pem")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        mode.permissions().mode() & 0o777,
        0o640,
        "the key is not world-readable"
    );
}

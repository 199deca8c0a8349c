//! `wss://` and `https://` on the WebSocket listener (`--tls-cert`, `--tls-key`; feature `tls`):
//! echo over TLS 1.3 and over TLS 1.2 only, with ALPN `http/1.1`; a `--static` page over
//! https; messages far larger than one TLS record both ways; clients that do not speak TLS
//! (plain HTTP, random bytes) and a silent one (the handshake timeout) are closed without
//! disturbing anyone else; a graceful shutdown closes `wss://` clients with 1001; a resumable
//! `wss://` client dropped with a TCP reset resumes over `wss://` with what it missed; Python's
//! `websockets` over OpenSSL (another TLS stack than ours) chats over `wss://` with
//! permessage-deflate. Certificates
//! come from the real openssl program (missing: a loud skip, or a failure when `CI` is set).
#![cfg(feature = "tls")]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::procs::{TempDir, require};
use support::tls_client::*;
use support::*;

const T: Duration = Duration::from_secs(10);

/// wscgi with a fresh certificate, echoing through a test backend, with `extra` options.
struct TlsServer {
    server: Wscgi,
    backend: TestBackend,
    dir: TempDir,
}

fn start(extra: &[&str]) -> Option<TlsServer> {
    require("openssl", "the TLS tests")?;
    let dir = TempDir::new("tls");
    let (cert, key) = make_cert(&dir.0, "server", false);
    let backend = TestBackend::start(|req| match req.event() {
        "message" => BackendReply::echo_of(req),
        _ => BackendReply::ok(),
    });
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let mut args = vec!["--tls-cert", &cert, "--tls-key", &key];
    args.extend(extra);
    let server = Wscgi::start(&backend.url(), &args);
    Some(TlsServer {
        server,
        backend,
        dir,
    })
}

#[test]
fn wss_echo_over_tls13_with_alpn_http11() {
    let Some(t) = start(&[]) else { return };
    let (mut ws, _) = wss_connect(t.server.ws_addr, "/chat", &[&TLS13, &TLS12]);
    let (version, alpn) = negotiated(&ws);
    assert_eq!(version, Some(ProtocolVersion::TLSv1_3), "TLS 1.3 preferred");
    assert_eq!(
        alpn.as_deref(),
        Some(&b"http/1.1"[..]),
        "ALPN: h2 was offered first"
    );
    echo(&mut ws, "hello over TLS 1.3");
    // Far larger than one TLS record (16 KiB) each way, and several in a row.
    let big = "x".repeat(300 * 1024);
    for _ in 0..3 {
        echo(&mut ws, &big);
    }
    ws.close(None).unwrap();
    while ws.read().is_ok() {}
}

#[test]
fn wss_echo_over_tls12_only() {
    let Some(t) = start(&[]) else { return };
    let (mut ws, _) = wss_connect(t.server.ws_addr, "/chat", &[&TLS12]);
    let (version, alpn) = negotiated(&ws);
    assert_eq!(version, Some(ProtocolVersion::TLSv1_2));
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    echo(&mut ws, "hello over TLS 1.2");
    echo(&mut ws, &"y".repeat(100 * 1024));
}

#[test]
fn static_page_over_https() {
    let site = TempDir::new("tls-site");
    site.write("index.html", "<h1>over https</h1>\n");
    let site_dir = site.0.display().to_string();
    let Some(t) = start(&["--static", &site_dir]) else {
        return;
    };
    for versions in [&[&TLS13][..], &[&TLS12][..]] {
        let (mut stream, _) = tls_connect(t.server.ws_addr, versions).expect("TLS handshake");
        stream
            .write_all(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut response = Vec::new();
        // The server closes after the response (close_notify, then TCP).
        let end = stream.read_to_end(&mut response);
        let text = String::from_utf8_lossy(&response);
        assert!(
            text.starts_with("HTTP/1.1 200 "),
            "{versions:?}: {end:?}: {text}"
        );
        assert!(text.ends_with("<h1>over https</h1>\n"), "{text}");
    }
}

/// What a client gets back before the server closes: everything it sent, read until end of
/// stream (or reset); and how long that took.
fn read_until_closed(s: &mut TcpStream) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    s.set_read_timeout(Some(T)).unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return (got, started.elapsed()),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
        }
    }
}

#[test]
fn clients_not_speaking_tls_are_closed_and_nobody_else_notices() {
    let Some(t) = start(&[]) else { return };
    let addr = t.server.ws_addr;
    // A client that is open all along.
    let (mut bystander, _) = wss_connect(addr, "/chat", &[&TLS13]);
    echo(&mut bystander, "before");

    let plain = format!("GET /chat HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\r\n");
    let mut random = vec![0u8; 4096];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for b in random.iter_mut() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *b = state as u8;
    }
    for (what, bytes) in [
        ("plain HTTP", plain.as_bytes()),
        ("random bytes", &random[..]),
    ] {
        let mut s = TcpStream::connect(addr).unwrap();
        let _ = s.write_all(bytes);
        let (got, took) = read_until_closed(&mut s);
        assert!(took < T, "{what}: closed at once, not after {took:?}");
        assert!(
            !String::from_utf8_lossy(&got).contains("HTTP/1.1"),
            "{what}: no plaintext HTTP answer on the TLS port: {got:?}"
        );
    }
    echo(&mut bystander, "after");
    let (mut newcomer, _) = wss_connect(addr, "/chat", &[&TLS12]);
    echo(&mut newcomer, "still serving");
}

#[test]
fn a_silent_client_is_closed_by_the_handshake_timeout() {
    let Some(t) = start(&["--handshake-timeout", "1s"]) else {
        return;
    };
    let connected = Instant::now();
    let mut silent = TcpStream::connect(t.server.ws_addr).unwrap();
    // One that stops in the middle of its ClientHello fares no better.
    let mut halfway = TcpStream::connect(t.server.ws_addr).unwrap();
    halfway
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    for (what, s) in [("silent", &mut silent), ("halfway", &mut halfway)] {
        let (got, _) = read_until_closed(s);
        let took = connected.elapsed();
        assert!(got.is_empty(), "{what}: nothing sent back: {got:?}");
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(4),
            "{what}: closed by the 1 s handshake timeout (ticks are 250 ms), after {took:?}"
        );
    }
    let (mut ws, _) = wss_connect(t.server.ws_addr, "/chat", &[&TLS13]);
    echo(&mut ws, "a prompt client is served");
}

#[test]
fn graceful_shutdown_closes_wss_clients_with_1001() {
    let Some(t) = start(&[]) else { return };
    let (mut ws, _) = wss_connect(t.server.ws_addr, "/chat", &[&TLS13]);
    echo(&mut ws, "before the shutdown");
    let TlsServer { server, dir, .. } = t;
    let stopping = std::thread::spawn(move || server.stop_within(T));
    let code = recv_close_code(&mut ws);
    assert_eq!(code, Some(1001), "going away");
    // Answer it, as a client does: the server finishes and stops.
    while ws.read().is_ok() {}
    stopping.join().expect("wscgi stopped within the limit");
    drop(dir);
}

/// Resume (issue 13) over TLS: the session outlives its TLS connection; the new one, with its
/// own TLS handshake, gets the messages pushed while the client was away, then live ones.
#[test]
fn a_wss_client_dropped_by_a_reset_resumes_over_wss_with_what_it_missed() {
    let Some(t) = start(&[]) else { return };
    let (server, addr) = (&t.server, t.server.ws_addr);
    let key = session_key();
    let path = "/feed";
    let (mut first, _) = wss_connect(addr, &resume_target(path, &key, None), &[&TLS13]);
    let id = t.backend.conn_id_on(path, T);
    for n in 1..=3 {
        let answer = push_to(server, &id, format!("m{n}").as_bytes());
        assert_eq!(answer.status, 200, "{}", answer.body_str());
        assert_eq!(recv_wss_text(&mut first), format!("m{n}"));
    }
    // No close_notify, no close frame, no FIN: the TCP connection under TLS is reset.
    reset_stream(first.into_inner().sock);
    wait_parked(server, &id);
    for n in 4..=6 {
        let answer = push_to(server, &id, format!("m{n}").as_bytes());
        assert_eq!(
            answer.status,
            202,
            "push {n} while away: {}",
            answer.body_str()
        );
    }

    let (mut again, _) = wss_connect(addr, &resume_target(path, &key, Some(3)), &[&TLS12]);
    for n in 4..=6 {
        assert_eq!(
            recv_wss_text(&mut again),
            format!("m{n}"),
            "replayed in order"
        );
    }
    let live = push_to(server, &id, b"m7");
    assert_eq!(live.status, 200, "{}", live.body_str());
    assert_eq!(recv_wss_text(&mut again), "m7");
    echo(&mut again, "hello after the resume");
    let shown = connection_info(server, &id).body_str();
    assert!(shown.contains("\"state\":\"open\""), "{shown}");
    let events: Vec<String> = t
        .backend
        .events(&id)
        .iter()
        .map(|r| r.event().to_string())
        .collect();
    assert_eq!(
        events.iter().filter(|e| *e == "open").count(),
        1,
        "{events:?}"
    );
    assert_eq!(
        events.iter().filter(|e| *e == "resume").count(),
        1,
        "{events:?}"
    );
    assert!(!events.iter().any(|e| e == "close"), "{events:?}");
}

/// The next text message over wss (pings and pongs skipped).
fn recv_wss_text(ws: &mut Wss) -> String {
    loop {
        match ws.read().expect("read over wss") {
            tungstenite::Message::Text(got) => return got.to_string(),
            tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => continue,
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

/// Python `websockets` (TLS by the ssl module, i.e. OpenSSL) against rustls: its defaults,
/// the certificate not checked, permessage-deflate on (its default): messages from tiny to
/// several TLS records, echoed, compressed both ways inside TLS.
const PY_CLIENT: &str = r#"
import asyncio, json, ssl, sys
from websockets.asyncio.client import connect

async def main(url):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    async with connect(url, ssl=ctx, max_size=None) as ws:
        print("tls:", ws.transport.get_extra_info("ssl_object").version())
        print("extensions:", ws.response.headers.get("Sec-WebSocket-Extensions"))
        for n in (1, 100, 5000):
            msg = json.dumps([{"id": i, "user": "alice", "text": "hello there"} for i in range(n)])
            await ws.send(msg)
            echo = await asyncio.wait_for(ws.recv(), 10)
            assert echo == msg, "echo differs for %d items" % n
        print("chatted")

asyncio.run(main(sys.argv[1]))
"#;

#[test]
fn python_websockets_over_openssl_chats_over_wss() {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python3");
    let what = "the Python websockets wss:// test (.ci/run: .venv with websockets)";
    let has_websockets = python.is_file()
        && std::process::Command::new(&python)
            .args(["-c", "import websockets"])
            .status()
            .is_ok_and(|s| s.success());
    if !has_websockets {
        return support::procs::skip("no .venv/bin/python3 with websockets", what);
    }
    let Some(t) = start(&[]) else { return };
    let url = format!("wss://localhost:{}/chat", t.server.ws_addr.port());
    let out = std::process::Command::new(&python)
        .args(["-c", PY_CLIENT, &url])
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("tls: TLSv1.3"), "{stdout}");
    assert!(stdout.contains("chatted"), "{stdout}");
    assert!(
        stdout.contains("extensions: permessage-deflate"),
        "{stdout}"
    );
    let metrics = http(t.server.push_addr, "GET", "/metrics", &[], b"").body_str();
    for name in [
        "wscgi_deflate_received_compressed_bytes_total",
        "wscgi_deflate_sent_compressed_bytes_total",
    ] {
        let line = metrics.lines().find(|l| l.starts_with(&format!("{name} ")));
        let value: u64 = line
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0);
        assert!(value > 0, "{name} is {value}");
    }
}

//! permessage-deflate with a real client library: Python `websockets` (compression on by
//! default) negotiates it with wscgi and chats, both ways compressed. Runs `./.venv/bin/python3`
//! with `websockets` (.ci/run installs both); missing, the test skips loudly (fails when `CI`
//! is set). Chromium's side is in tests/browser.rs (the chat demo shows `ws.extensions`).

mod support;

use std::path::Path;
use std::process::Command;

use support::procs::skip;
use support::*;

/// Connects with websockets' defaults, sends chat-like JSON messages of several sizes and
/// checks each echo; prints the negotiated extensions and the compressed byte counts seen.
const CLIENT: &str = r#"
import asyncio, json, sys
from websockets.asyncio.client import connect

async def main(url):
    async with connect(url, max_size=None) as ws:
        print("extensions:", ws.response.headers.get("Sec-WebSocket-Extensions"))
        for n in (10, 100, 1000):
            msg = json.dumps([{"id": i, "user": "alice", "text": "hello there"} for i in range(n)])
            await ws.send(msg)
            echo = await asyncio.wait_for(ws.recv(), 10)
            assert echo == msg, "echo differs for %d items" % n
        print("chatted")

asyncio.run(main(sys.argv[1]))
"#;

#[test]
fn python_websockets_negotiates_deflate_and_chats() {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python3");
    let what = "the Python websockets deflate test (.ci/run: .venv with websockets)";
    let has_websockets = python.is_file()
        && Command::new(&python)
            .args(["-c", "import websockets"])
            .status()
            .is_ok_and(|s| s.success());
    if !has_websockets {
        return skip("no .venv/bin/python3 with websockets", what);
    }
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let out = Command::new(&python)
        .args(["-c", CLIENT, &server.ws_url("/")])
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("chatted"), "{stdout}");
    // The larger messages went compressed both ways.
    let metrics = http(server.push_addr, "GET", "/metrics", &[], b"").body_str();
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

//! The browser helper (examples/client/wscgi.js) in node, against a real wscgi: what it does
//! when a first connection fails before it opens. node (20 or later, for its WebSocket) is
//! required: missing, a loud skip, or a failure when `CI` is set.

mod support;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::procs::require;
use support::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// node 20's WebSocket (undici) fires `error` but never `close` when a connection fails before
/// it opens (a refused handshake, or close() while connecting); browsers fire `close` with 1006
/// after the `error` (WHATWG "fail the WebSocket connection"), and the helper relies on it.
/// This makes node's do the same; a `close` node does fire later is ignored by the helper (the
/// socket is no longer its current one).
const BROWSER_LIKE: &str = r#"globalThis.WebSocket = class extends globalThis.WebSocket {
  constructor(...args) {
    super(...args);
    let closed = false;
    this.addEventListener("close", () => { closed = true; });
    this.addEventListener("error", () => setTimeout(() => {
      if (!closed && this.onclose) { closed = true; this.onclose({ code: 1006 }); }
    }, 0));
  }
};"#;

/// The first open is answered only after the helper gave up on it (`openTimeout`). wscgi still
/// opens that session when the answer comes (its client is gone by then, so it parks), and a
/// retry under the same key would be refused with 409 for the whole resume window: the retry
/// must start a new session under a new key, and it opens at once.
#[test]
fn a_first_connection_that_timed_out_is_retried_under_a_new_key() {
    let Some(node) = require("node", "the wscgi.js retry test") else {
        return;
    };
    let opens = Arc::new(AtomicUsize::new(0));
    let seen = opens.clone();
    let backend = TestBackend::start(move |req| match req.event() {
        "open" if seen.fetch_add(1, Ordering::SeqCst) == 0 => {
            BackendReply::ok().delay(Duration::from_millis(1500))
        }
        _ => BackendReply::ok(),
    });
    let server = Wscgi::start(&backend.url(), &[]);
    let script = format!(
        r#"import {{ connect }} from "file://{ROOT}/examples/client/wscgi.js";
{BROWSER_LIKE}
const s = connect(process.argv[1], {{
  onstatus: (status) => console.log("status", status),
  onopen: () => {{ console.log("OPEN"); s.close(); process.exit(0); }},
}}, {{ openTimeout: 300, minDelay: 50, maxDelay: 100 }});
setTimeout(() => {{ console.log("never opened"); process.exit(1); }}, 5000);
"#
    );
    let out = Command::new(node)
        .args(["--experimental-websocket", "--input-type=module", "-e"])
        .arg(&script)
        .arg(server.ws_url("/retry"))
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("OPEN"),
        "{}\n{stdout}\n{stderr}",
        out.status
    );
    let keys: Vec<String> = backend
        .requests()
        .iter()
        .filter(|r| r.event() == "open")
        .map(|r| r.conn_id().to_string())
        .collect();
    assert!(keys.len() >= 2, "a second session opened: {keys:?}");
}

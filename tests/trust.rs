//! What a backend can trust: `--origin` keeps cross-site browsers out before the backend hears
//! of them, and `--secret` signs every backend request (`WS-Timestamp`, `WS-Signature`). The
//! signatures are checked with an independent HMAC (Python's or PHP's standard library).

mod support;

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::*;
use tungstenite::Message;

const T: Duration = Duration::from_secs(5);
const SECRET: &str = "s3cret";

#[test]
fn origin_allow_list_refuses_other_sites_before_the_backend() {
    let backend = TestBackend::echo();
    let allowed = "https://good.example,*.example.org";
    let server = Wscgi::start(&backend.url(), &["--origin", allowed]);
    backend.wait_for(T, |r| r.len() == 1);
    let url = server.ws_url("/");
    #[rustfmt::skip]
    let refused = ["https://evil.example", "http://good.example", "https://good.example.evil.test",
        "https://example.org", "https://evil-example.org", "null"];
    for origin in refused {
        match try_connect_with(&url, &[("Origin", origin)]) {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 403, "{origin}");
                let body = response.body().clone().unwrap_or_default();
                assert_eq!(String::from_utf8_lossy(&body), "origin not allowed\n");
            }
            Ok(_) => panic!("Origin {origin} was accepted"),
            Err(e) => panic!("Origin {origin}: {e}"),
        }
    }
    // Proving an absence: give a wrongly dispatched open event time to arrive.
    thread::sleep(Duration::from_millis(200));
    assert_eq!(
        backend.event_names(),
        ["reset"],
        "refused origins never reach the backend"
    );

    let welcome = [
        ("/exact", Some("https://good.example")),
        ("/sub", Some("https://chat.example.org")),
        ("/sub-port", Some("HTTP://A.B.Example.Org:8443")),
        ("/no-origin", None), // not a browser, so not cross-site
    ];
    for (path, origin) in welcome {
        let headers: Vec<(&str, &str)> = origin.iter().map(|o| ("Origin", *o)).collect();
        let mut client = try_connect_with(&server.ws_url(path), &headers)
            .unwrap_or_else(|e| panic!("Origin {origin:?} refused: {e}"));
        client.send(Message::text(path)).unwrap();
        assert_eq!(recv_text(&mut client), path);
    }
    let reqs = backend.requests();
    let opens: Vec<(Option<&str>, Option<&str>)> = reqs
        .iter()
        .filter(|q| q.event() == "open")
        .map(|q| (q.header("ws-path"), q.header("origin")))
        .collect();
    let want: Vec<(Option<&str>, Option<&str>)> =
        welcome.iter().map(|(p, o)| (Some(*p), *o)).collect();
    assert_eq!(opens, want, "the Origin is passed on as sent");
}

/// Lowercase hex HMAC-SHA1 of each message keyed with `key`, computed by an interpreter's
/// standard library, not by wscgi's code (messages travel hex-encoded in argv). None (after a
/// loud note) when neither python3 nor php runs; with `CI` set that is a failure instead.
fn independent_hmac_sha1(key: &str, messages: &[Vec<u8>]) -> Option<Vec<String>> {
    let python = "import hashlib, hmac, sys\n\
        for m in sys.argv[2:]:\n    \
        print(hmac.new(sys.argv[1].encode(), bytes.fromhex(m), hashlib.sha1).hexdigest())";
    let php = r#"foreach (array_slice($argv, 2) as $m) echo hash_hmac("sha1", hex2bin($m), $argv[1]), "\n";"#;
    let hex: Vec<String> = messages
        .iter()
        .map(|m| m.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    // Both see argv as [program text, key, messages...].
    let runs = [
        ("python3", vec!["-c", python]),
        ("php", vec!["-r", php, "--"]),
    ];
    for (program, args) in runs {
        let mut cmd = Command::new(program);
        cmd.args(args).arg(key).args(&hex);
        let Ok(out) = cmd.stdin(Stdio::null()).stderr(Stdio::inherit()).output() else {
            continue;
        };
        assert!(out.status.success(), "{program} failed: {:?}", out.status);
        let text = String::from_utf8(out.stdout).unwrap();
        return Some(text.lines().map(String::from).collect());
    }
    assert!(std::env::var_os("CI").is_none(), "CI needs python3 or php");
    eprintln!("SKIPPED: neither python3 nor php runs, so signatures cannot be checked");
    None
}

#[test]
fn secret_signs_every_backend_request() {
    // The checker itself, on RFC 2202's test case 2.
    let rfc = independent_hmac_sha1("Jefe", &[b"what do ya want for nothing?".to_vec()]);
    let Some(rfc) = rfc else { return };
    assert_eq!(rfc, ["effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"]);

    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &["--secret", SECRET]);
    let mut client = connect(&server.ws_url("/signed?room=5"));
    let text = "héllo\nworld\n\n";
    client.send(Message::text(text)).unwrap();
    assert_eq!(recv_text(&mut client), text);
    client
        .send(Message::binary(vec![0u8, 10, 255, 13]))
        .unwrap();
    assert_eq!(recv_binary(&mut client), [0u8, 10, 255, 13]);
    drop(client);
    let reqs = backend.wait_for(T, |r| r.iter().any(|q| q.event() == "close"));
    let names: Vec<&str> = reqs.iter().map(|q| q.event()).collect();
    assert_eq!(names, ["reset", "open", "message", "message", "close"]);

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut signed = Vec::new();
    for q in &reqs {
        let event = q.event();
        let stamp = q
            .header("ws-timestamp")
            .unwrap_or_else(|| panic!("{event}: no timestamp"));
        let ts: u64 = stamp
            .parse()
            .unwrap_or_else(|_| panic!("{event}: timestamp {stamp:?}"));
        assert!(ts.abs_diff(now) <= 60, "{event}: timestamp {ts}, now {now}");
        // reset belongs to no connection: empty id and seq (and no such headers).
        let (id, seq) = match event {
            "reset" => {
                assert_eq!(
                    (q.header("ws-connection-id"), q.header("ws-seq")),
                    (None, None)
                );
                (String::new(), String::new())
            }
            _ => (q.conn_id().to_string(), q.seq().to_string()),
        };
        let mut message = format!("{stamp}\n{id}\n{event}\n{seq}\n").into_bytes();
        message.extend_from_slice(&q.body);
        signed.push(message);
    }
    let got: Vec<&str> = reqs
        .iter()
        .map(|q| q.header("ws-signature").unwrap_or("-"))
        .collect();
    let want = independent_hmac_sha1(SECRET, &signed).unwrap();
    assert_eq!(got, want, "signatures of {names:?}");
    let forged = independent_hmac_sha1("s3cret!", &signed).unwrap();
    assert!(
        got.iter().zip(&forged).all(|(g, f)| g != f),
        "the key matters"
    );
}

#[test]
fn without_a_secret_nothing_is_signed() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let mut client = connect(&server.ws_url("/plain"));
    client.send(Message::text("hi")).unwrap();
    assert_eq!(recv_text(&mut client), "hi");
    drop(client);
    let reqs = backend.wait_for(T, |r| r.iter().any(|q| q.event() == "close"));
    assert_eq!(reqs.len(), 4, "reset, open, message, close");
    for q in &reqs {
        let signed = q.header("ws-timestamp").or(q.header("ws-signature"));
        assert_eq!(signed, None, "{} event", q.event());
    }
}

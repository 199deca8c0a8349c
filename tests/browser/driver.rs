//! Node drivers of headless Chromium for tests/browser.rs and tests/browser_resume.rs
//! (`#[path = "browser/driver.rs"]`): finding node, Chromium and playwright-core (missing: a
//! loud skip, or a failure when `CI` is set), and running a driver script that prints its steps,
//! stops at a cue line until the test has acted (then gets "GO" on stdin), and ends with PASS.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{Group, ROOT, TempDir, require, skip};

/// node, with playwright-core and /usr/bin/chromium; None after a loud skip note.
pub fn browser_tools() -> Option<PathBuf> {
    let what = "the browser test";
    let node = require("node", what)?;
    require("chromium", what)?;
    // TOOLING.md: Debian's chromium, driven by playwright-core (never a downloaded browser).
    let pw = Path::new(ROOT).join("node_modules/playwright-core/package.json");
    if !pw.is_file() {
        skip(
            &format!(
                "{} is missing (npm install --no-audit --no-fund --no-save --no-package-lock \
                 playwright-core, at the repository root)",
                pw.display()
            ),
            what,
        );
        return None;
    }
    Some(node)
}

/// Where drivers put their screenshots: target/browser-shots.
pub fn shots_dir() -> PathBuf {
    let shots = Path::new(ROOT).join("target/browser-shots");
    std::fs::create_dir_all(&shots).expect("create target/browser-shots");
    shots
}

/// Runs `node script args` from the repository root (its stderr in `dir/driver.err`). Each time
/// it prints `cue`, `act` runs and the driver is told "GO". `Ok(steps)` when it ends with PASS
/// within `limit`; otherwise `Err` with its output (after SIGTERM, so playwright closes the
/// browser; the group is killed when dropped).
pub fn run_driver(
    node: &Path,
    script: &str,
    args: &[&str],
    dir: &TempDir,
    limit: Duration,
    cue: &str,
    mut act: impl FnMut(),
) -> Result<String, String> {
    let started = Instant::now();
    let mut cmd = Command::new(node);
    cmd.current_dir(ROOT)
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .process_group(0)
        .stderr(std::fs::File::create(dir.path("driver.err")).expect("driver log"));
    let mut driver = Group::new(cmd.spawn().expect("start node"));
    let mut stdin = driver.child().stdin.take().expect("driver stdin");
    let stdout = driver.child().stdout.take().expect("driver stdout");
    let (tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    let failure = loop {
        match lines.recv_timeout(limit.saturating_sub(started.elapsed())) {
            Ok(line) if line == cue => {
                act();
                writeln!(stdin, "GO").expect("tell the driver GO");
                seen.push(line);
            }
            Ok(line) => seen.push(line),
            Err(mpsc::RecvTimeoutError::Timeout) => break Some("time limit".to_string()),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // stdout closed: the driver is exiting.
                let status = driver.wait_exit(Duration::from_secs(10));
                let passed =
                    status.is_some_and(|s| s.success()) && seen.last().is_some_and(|l| l == "PASS");
                break (!passed).then(|| format!("driver ended with {status:?}"));
            }
        }
    };
    let took = started.elapsed();
    match failure {
        None => Ok(format!("passed in {took:.1?}\n    {}", seen.join("\n    "))),
        Some(why) => {
            driver.terminate(Duration::from_secs(5));
            Err(format!(
                "{why} after {took:.1?}\n--- driver stdout\n{}\n--- driver stderr\n{}",
                seen.join("\n"),
                dir.read("driver.err")
            ))
        }
    }
}

/// Enough of encodeURIComponent for a ws:// URL in a query string.
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

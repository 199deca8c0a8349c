//! Scenario `fanout`: N subscribers, then K publishes through a push API (wscgi's
//! `POST /channels/NAME`, or Pushpin's `POST /publish/`), one at a time; the time from the
//! publish request to the first and the last delivery, and frames per second. A warm-up first
//! publishes until every subscriber got a message, since subscriptions may take effect a little
//! after the `101`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::Opts;
use crate::client::{Engine, Ev};
use crate::http::Http;
use crate::output::{Report, json_escape, top_failure};
use crate::pool::{close_all, idle_for, open_many};
use crate::procfs::Cpu;
use crate::stats::{ms, pct};
use crate::timestamps::{now_ns, wire_now};

/// Content type and body of one publish of `message`, in the format `--push-format` names.
fn publish_body(opts: &Opts, message: &str) -> (String, Vec<u8>) {
    if opts.push_format == "pushpin" {
        let json = format!(
            "{{\"items\":[{{\"channel\":\"{}\",\"formats\":{{\"ws-message\":{{\"content\":\"{}\"}}}}}}]}}",
            json_escape(&opts.channel),
            json_escape(message)
        );
        ("application/json".into(), json.into_bytes())
    } else {
        (
            "text/plain; charset=utf-8".into(),
            message.as_bytes().to_vec(),
        )
    }
}

/// The publish sequence number at the start of a fanout message (`K|...`),
/// or None for a warm-up message (`w|...`).
fn seq_of(data: &[u8]) -> Option<usize> {
    let end = data.iter().position(|b| *b == b'|')?;
    std::str::from_utf8(&data[..end]).ok()?.parse().ok()
}

/// Runs the scenario; `Err` when it could not run at all (no engine, nobody connected).
pub fn run(opts: &Opts) -> Result<Report, String> {
    let mut engine = Engine::new(opts).map_err(|e| e.to_string())?;
    let mut http = Http::new(&opts.push)?;
    let limit = Duration::from_secs_f64(opts.connections as f64 / opts.rate + 30.0);
    let opened = open_many(&mut engine, opts.connections, opts, limit);
    if opened.ids.is_empty() {
        return Err(format!(
            "no subscriber connected{}",
            top_failure(&opened.failures)
        ));
    }
    let subscribers = opened.ids.len();
    let mut events = Vec::new();
    let mut publish_errors = 0u64;
    let mut last_status = 0u16;

    // Warm-up: publish until every subscriber got one (subscriptions may
    // become effective a little after the 101, e.g. in Pushpin).
    let mut warmed: HashMap<usize, bool> = opened.ids.iter().map(|id| (*id, false)).collect();
    let mut warm_count = 0usize;
    let warm_deadline = Instant::now() + Duration::from_secs(30);
    let warm_msg = crate::payload::fill("w|", opts.size, opts.json);
    while warm_count < engine.open.min(subscribers) && Instant::now() < warm_deadline {
        let (ct, body) = publish_body(opts, &warm_msg);
        http.send(&ct, &body)
            .map_err(|e| format!("publish to {}: {e}", opts.push))?;
        // Wait until everyone has it, or deliveries stopped for a while (a
        // rate-limited server may take seconds for one publish).
        let mut last_progress = Instant::now();
        while warm_count < engine.open.min(subscribers)
            && last_progress.elapsed() < Duration::from_millis(1000)
            && Instant::now() < warm_deadline
        {
            engine.poll(Duration::from_millis(10), &mut events);
            for ev in events.drain(..) {
                if let Ev::Msg { id, .. } = ev
                    && let Some(w) = warmed.get_mut(&id)
                {
                    last_progress = Instant::now();
                    if !*w {
                        *w = true;
                        warm_count += 1;
                    }
                }
            }
        }
        match http.receive() {
            Ok((status, _)) => last_status = status,
            Err(e) => return Err(format!("publish response from {}: {e}", opts.push)),
        }
    }
    idle_for(&mut engine, Duration::from_millis(200));
    let reachable = engine.open;

    // Measured publishes, one at a time.
    let cpu = Cpu::begin(opts);
    let wire_start = wire_now();
    let mut last_lat: Vec<u64> = Vec::new();
    let mut first_lat: Vec<u64> = Vec::new();
    let mut deliveries = 0u64;
    let mut missing = 0u64;
    let mut busy_ns = 0u64;
    let phase_deadline = Instant::now() + opts.duration;
    for k in 0..opts.publishes {
        if Instant::now() >= phase_deadline {
            break;
        }
        let msg = crate::payload::fill(&format!("{k}|"), opts.size, opts.json);
        let (ct, body) = publish_body(opts, &msg);
        let want = engine.open;
        let t0 = now_ns();
        http.send(&ct, &body)
            .map_err(|e| format!("publish to {}: {e}", opts.push))?;
        let mut got = 0usize;
        let (mut first, mut last) = (u64::MAX, 0u64);
        let until = Instant::now() + Duration::from_secs(10);
        while got < want && Instant::now() < until {
            engine.poll(Duration::from_millis(5), &mut events);
            for ev in events.drain(..) {
                if let Ev::Msg { data, rx_ns, .. } = ev
                    && seq_of(&data) == Some(k)
                {
                    got += 1;
                    first = first.min(rx_ns);
                    last = last.max(rx_ns);
                }
            }
        }
        match http.receive() {
            Ok((status, _)) => {
                last_status = status;
                if !(200..300).contains(&status) {
                    publish_errors += 1;
                }
            }
            Err(_) => publish_errors += 1,
        }
        deliveries += got as u64;
        missing += (want - got.min(want)) as u64;
        if got > 0 {
            last_lat.push(last.saturating_sub(t0));
            first_lat.push(first.saturating_sub(t0));
            busy_ns += last.saturating_sub(t0);
        }
        if !opts.interval.is_zero() {
            idle_for(&mut engine, opts.interval);
        }
    }
    let cpu = cpu.end(opts);
    close_all(&mut engine, Duration::from_secs(5));

    let rounds = last_lat.len();
    last_lat.sort_unstable();
    first_lat.sort_unstable();
    let frames_per_s = deliveries as f64 / (busy_ns as f64 / 1e9).max(1e-9);
    let mut r = Report::new(opts);
    r.i("subscribers", subscribers as u64);
    r.i("reached_in_warmup", warm_count as u64);
    r.i("reachable", reachable as u64);
    r.i("publishes", rounds as u64);
    r.i("size", opts.size as u64);
    r.i("deliveries", deliveries);
    r.i("missing", missing);
    r.i("publish_errors", publish_errors);
    r.i("last_publish_status", last_status as u64);
    r.f("median_last_ms", ms(pct(&last_lat, 50.0)), 3);
    r.f("max_last_ms", ms(last_lat.last().copied().unwrap_or(0)), 3);
    r.f("median_first_ms", ms(pct(&first_lat, 50.0)), 3);
    r.f("frames_per_s", frames_per_s, 0);
    r.failures(&opened.failures);
    cpu.add_to(&mut r, opts);
    if deliveries > 0 {
        let down = wire_now().0 - wire_start.0;
        r.f(
            "wire_bytes_per_delivery",
            down as f64 / deliveries as f64,
            1,
        );
        if !opts.pids.is_empty() {
            r.f(
                "server_cpu_us_per_delivery",
                cpu.server * 1e6 / deliveries as f64,
                3,
            );
        }
    }
    r.ok = rounds > 0 && missing == 0 && publish_errors == 0;
    r.human = format!(
        "fanout {}: {} publishes to {subscribers} subscribers ({warm_count} reached in warm-up): \
         last delivery median {:.3} ms, max {:.3} ms (first {:.3} ms), {frames_per_s:.0} frames/s, \
         {missing} missing, {publish_errors} publish errors{}",
        opts.label,
        rounds,
        ms(pct(&last_lat, 50.0)),
        ms(last_lat.last().copied().unwrap_or(0)),
        ms(pct(&first_lat, 50.0)),
        top_failure(&opened.failures)
    );
    Ok(r)
}

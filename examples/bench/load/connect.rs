//! Scenario `connect`: C concurrent loops of connect → handshake → `101` → close, for
//! `--duration`; handshakes per second and handshake latency percentiles.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::Opts;
use crate::client::{Engine, Ev};
use crate::output::{Report, top_failure};
use crate::pool::close_all;
use crate::procfs::Cpu;
use crate::stats::{ms, pct};

/// Runs the scenario; `Err` when it could not run at all (no engine, nobody connected).
pub fn run(opts: &Opts) -> Result<Report, String> {
    let mut engine = Engine::new(opts).map_err(|e| e.to_string())?;
    let c = opts.connections;
    let mut events = Vec::new();
    let mut failures: HashMap<String, usize> = HashMap::new();
    let mut handshakes: Vec<u64> = Vec::new();
    let mut cycles = 0u64;
    let cpu = Cpu::begin(opts);
    let start = Instant::now();
    let deadline = start + opts.duration;
    let mut active = 0usize;
    let mut backoff_until = start;
    while Instant::now() < deadline {
        let now = Instant::now();
        while active < c && now >= backoff_until {
            match engine.connect() {
                Ok(_) => active += 1,
                Err(why) => {
                    *failures.entry(why).or_default() += 1;
                    backoff_until = now + Duration::from_millis(20);
                    break;
                }
            }
        }
        engine.poll(Duration::from_millis(5), &mut events);
        for ev in events.drain(..) {
            match ev {
                Ev::Open { id, took } => {
                    handshakes.push(took.as_nanos() as u64);
                    engine.close(id);
                }
                Ev::Closed { was_open, why, .. } => {
                    active -= 1;
                    if was_open {
                        cycles += 1;
                    } else {
                        *failures.entry(why).or_default() += 1;
                    }
                }
                Ev::Msg { .. } => {}
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu.end(opts);
    close_all(&mut engine, Duration::from_secs(3));

    let n = handshakes.len() as u64;
    handshakes.sort_unstable();
    let rate = n as f64 / elapsed;
    let failed: usize = failures.values().sum();
    let mut r = Report::new(opts);
    r.i("concurrency", c as u64);
    r.i("handshakes", n);
    r.i("cycles", cycles);
    r.i("failed", failed as u64);
    r.f("elapsed_s", elapsed, 3);
    r.f("handshakes_per_s", rate, 0);
    r.f("p50_ms", ms(pct(&handshakes, 50.0)), 3);
    r.f("p99_ms", ms(pct(&handshakes, 99.0)), 3);
    r.f("max_ms", ms(handshakes.last().copied().unwrap_or(0)), 3);
    r.failures(&failures);
    cpu.add_to(&mut r, opts);
    if n > 0 && !opts.pids.is_empty() {
        r.f(
            "server_cpu_us_per_handshake",
            cpu.server * 1e6 / n as f64,
            1,
        );
    }
    r.ok = n > 0;
    r.human = format!(
        "connect {}: {rate:.0} handshakes/s at concurrency {c} ({n} in {elapsed:.1}s, {failed} failed), \
         handshake p50 {:.3} ms, p99 {:.3} ms{}",
        opts.label,
        ms(pct(&handshakes, 50.0)),
        ms(pct(&handshakes, 99.0)),
        top_failure(&failures)
    );
    Ok(r)
}

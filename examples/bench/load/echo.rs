//! Scenario `echo`: C connections each send M messages of B bytes one at a time (send, wait for
//! the echo, repeat), after a warm-up round; messages per second and round-trip latency
//! percentiles. Every echo is compared with what was sent.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tungstenite::Message;

use crate::Opts;
use crate::client::{Engine, Ev};
use crate::output::{Report, top_failure};
use crate::pool::{close_all, open_many};
use crate::procfs::Cpu;
use crate::stats::{ms, pct};
use crate::timestamps::{now_ns, wire_now};

/// Message `seq` of connection `id`: a readable prefix, padded to `size`.
fn payload(id: usize, seq: usize, size: usize, json: bool) -> String {
    crate::payload::fill(&format!("{id}:{seq}:"), size, json)
}

/// Runs the scenario; `Err` when it could not run at all (no engine, nobody connected).
pub fn run(opts: &Opts) -> Result<Report, String> {
    let mut engine = Engine::new(opts).map_err(|e| e.to_string())?;
    let c = opts.connections;
    let opened = open_many(&mut engine, c, opts, Duration::from_secs(30));
    if opened.ids.is_empty() {
        return Err(format!(
            "no connection opened{}",
            top_failure(&opened.failures)
        ));
    }
    let ids = opened.ids.clone();
    // Per connection: messages left, the one in flight (payload, sent at).
    struct Slot {
        left: usize,
        seq: usize,
        expect: String,
        sent_ns: u64,
        waiting: bool,
    }
    let mut slots: HashMap<usize, Slot> = HashMap::new();
    let mut latencies: Vec<u64> = Vec::with_capacity(ids.len() * opts.messages);
    let mut mismatches = 0u64;
    let mut closed = 0u64;
    let mut events = Vec::new();
    let mut cpu = None;
    let mut measure_start = Instant::now();
    let mut last_done = measure_start;

    let mut wire_start = (0, 0);
    for (round, per_conn) in [(0, opts.warmup), (1, opts.messages)] {
        if per_conn == 0 {
            continue;
        }
        slots.clear();
        if round == 1 {
            latencies.clear();
            cpu = Some(Cpu::begin(opts));
            wire_start = wire_now();
            measure_start = Instant::now();
        }
        let deadline = Instant::now()
            + if round == 1 {
                opts.duration
            } else {
                Duration::from_secs(10)
            };
        for &id in &ids {
            let expect = payload(id, 0, opts.size, opts.json);
            let sent_ns = now_ns();
            if engine.send(id, Message::text(expect.clone())) {
                slots.insert(
                    id,
                    Slot {
                        left: per_conn - 1,
                        seq: 0,
                        expect,
                        sent_ns,
                        waiting: true,
                    },
                );
            }
        }
        let mut waiting = slots.len();
        let grace = deadline + Duration::from_secs(2);
        while waiting > 0 && Instant::now() < grace {
            engine.poll(Duration::from_millis(5), &mut events);
            let now = Instant::now();
            for ev in events.drain(..) {
                match ev {
                    Ev::Msg { id, data, rx_ns } => {
                        let Some(slot) = slots.get_mut(&id) else {
                            continue;
                        };
                        if !slot.waiting {
                            continue;
                        }
                        if data.as_ref() != slot.expect.as_bytes() {
                            mismatches += 1;
                        }
                        latencies.push(rx_ns.saturating_sub(slot.sent_ns));
                        last_done = now;
                        if slot.left > 0 && now < deadline {
                            slot.left -= 1;
                            slot.seq += 1;
                            slot.expect = payload(id, slot.seq, opts.size, opts.json);
                            slot.sent_ns = now_ns();
                            if !engine.send(id, Message::text(slot.expect.clone())) {
                                slot.waiting = false;
                                waiting -= 1;
                            }
                        } else {
                            slot.waiting = false;
                            waiting -= 1;
                        }
                    }
                    Ev::Closed { id, .. } => {
                        closed += 1;
                        if let Some(slot) = slots.get_mut(&id)
                            && slot.waiting
                        {
                            slot.waiting = false;
                            waiting -= 1;
                        }
                    }
                    Ev::Open { .. } => {}
                }
            }
        }
    }
    let cpu = cpu.map(|c| c.end(opts));
    let elapsed = last_done.duration_since(measure_start).as_secs_f64();
    close_all(&mut engine, Duration::from_secs(3));

    latencies.sort_unstable();
    let n = latencies.len() as u64;
    let rate = n as f64 / elapsed.max(1e-9);
    let mut r = Report::new(opts);
    r.i("connections", ids.len() as u64);
    r.i("size", opts.size as u64);
    r.i("messages", n);
    r.f("elapsed_s", elapsed, 3);
    r.f("msgs_per_s", rate, 0);
    r.f("p50_ms", ms(pct(&latencies, 50.0)), 3);
    r.f("p90_ms", ms(pct(&latencies, 90.0)), 3);
    r.f("p99_ms", ms(pct(&latencies, 99.0)), 3);
    r.f("max_ms", ms(latencies.last().copied().unwrap_or(0)), 3);
    // Bytes on the wire per message each way (frame headers included; TCP's not).
    let wire = wire_now();
    if n > 0 {
        r.f(
            "wire_up_bytes_per_msg",
            (wire.1 - wire_start.1) as f64 / n as f64,
            1,
        );
        r.f(
            "wire_down_bytes_per_msg",
            (wire.0 - wire_start.0) as f64 / n as f64,
            1,
        );
    }
    r.i("mismatches", mismatches);
    r.i("closed", closed);
    r.failures(&opened.failures);
    if let Some(cpu) = &cpu {
        cpu.add_to(&mut r, opts);
        if n > 0 && !opts.pids.is_empty() {
            r.f("server_cpu_us_per_msg", cpu.server * 1e6 / n as f64, 2);
        }
    }
    r.ok = n > 0 && mismatches == 0;
    r.human = format!(
        "echo {}: {rate:.0} msg/s over {} connections ({n} round trips of {} B in {elapsed:.2}s), \
         latency p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms{}{}",
        opts.label,
        ids.len(),
        opts.size,
        ms(pct(&latencies, 50.0)),
        ms(pct(&latencies, 90.0)),
        ms(pct(&latencies, 99.0)),
        ms(latencies.last().copied().unwrap_or(0)),
        if mismatches > 0 {
            format!(", {mismatches} WRONG echoes")
        } else {
            String::new()
        },
        cpu.as_ref()
            .filter(|_| !opts.pids.is_empty())
            .map(|c| format!(", server CPU {:.2}s", c.server))
            .unwrap_or_default()
    );
    Ok(r)
}

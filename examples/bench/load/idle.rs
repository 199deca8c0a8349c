//! Scenario `idle`: open N connections at a bounded rate, hold them, count the survivors; with
//! `--pid`, the server's RSS/PSS (its whole process tree) before connecting and at the end, so
//! the difference per connection is what an idle connection costs the server.

use std::fmt::Write as _;
use std::time::Duration;

use crate::Opts;
use crate::client::Engine;
use crate::output::{Report, top_failure};
use crate::pool::{close_all, idle_for, open_many};
use crate::procfs::sample;

/// Runs the scenario; `Err` when it could not run at all (no engine, nobody connected).
pub fn run(opts: &Opts) -> Result<Report, String> {
    let mut engine = Engine::new(opts).map_err(|e| e.to_string())?;
    let before = sample(&opts.pids);
    let limit = Duration::from_secs_f64(opts.connections as f64 / opts.rate + 30.0);
    let opened = open_many(&mut engine, opts.connections, opts, limit);
    idle_for(&mut engine, Duration::from_secs(1).min(opts.hold));
    idle_for(&mut engine, opts.hold);
    let alive = engine.open;
    let after = sample(&opts.pids);
    close_all(&mut engine, Duration::from_secs(5));

    let mut r = Report::new(opts);
    r.i("requested", opts.connections as u64);
    r.i("opened", opened.ids.len() as u64);
    r.i("alive", alive as u64);
    r.f("open_s", opened.took.as_secs_f64(), 3);
    r.f(
        "open_per_s",
        opened.ids.len() as f64 / opened.took.as_secs_f64(),
        0,
    );
    r.failures(&opened.failures);
    let mut human = format!(
        "idle {}: {alive}/{} connections alive after {:.1}s hold (opened in {:.1}s){}",
        opts.label,
        opts.connections,
        opts.hold.as_secs_f64(),
        opened.took.as_secs_f64(),
        top_failure(&opened.failures)
    );
    if !opts.pids.is_empty() {
        let per = |a: u64, b: u64| {
            if alive == 0 {
                f64::NAN
            } else {
                (b as f64 - a as f64) / alive as f64
            }
        };
        r.i("procs_before", before.procs as u64);
        r.i("procs_after", after.procs as u64);
        r.i("rss_before_kib", before.rss_kib);
        r.i("rss_after_kib", after.rss_kib);
        r.i("pss_before_kib", before.pss_kib);
        r.i("pss_after_kib", after.pss_kib);
        r.f("rss_per_conn_kib", per(before.rss_kib, after.rss_kib), 2);
        r.f("pss_per_conn_kib", per(before.pss_kib, after.pss_kib), 2);
        let _ = write!(
            human,
            "; server RSS {} → {} KiB ({:.2} KiB/conn), PSS {} → {} KiB ({:.2} KiB/conn), {} → {} processes",
            before.rss_kib,
            after.rss_kib,
            per(before.rss_kib, after.rss_kib),
            before.pss_kib,
            after.pss_kib,
            per(before.pss_kib, after.pss_kib),
            before.procs,
            after.procs
        );
    }
    r.ok = alive > 0;
    r.human = human;
    Ok(r)
}

//! Summaries of latency samples: nearest-rank percentiles of sorted nanosecond values, shown in
//! milliseconds.

/// Nearest-rank percentile of sorted values.
pub fn pct(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Nanoseconds as milliseconds, the unit of every latency in the output.
pub fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

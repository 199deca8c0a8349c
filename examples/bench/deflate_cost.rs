//! What permessage-deflate costs per message on this machine: wscgi's own compressor (level 1,
//! the default, and 6) and bounded inflater, timed on chat-like JSON of several sizes, next to
//! framing the same message plainly. For the question whether compression may run on the
//! reactor (README, "Compression"). `cargo run --release --example bench-deflate-cost`.

use std::time::{Duration, Instant};

use wscgi::ws::compress::Compressor;
use wscgi::ws::frame;
use wscgi::ws::inflate::Inflater;

#[path = "chat_json.rs"]
mod chat_json;
use chat_json::json;

/// Median time of `f` over enough runs to take about 200 ms.
fn time(mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    let mut runs = 0u32;
    while start.elapsed() < Duration::from_millis(50) {
        f();
        runs += 1;
    }
    let rounds = (runs * 4).max(5);
    let mut samples: Vec<Duration> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    println!("size\tframe_us\tdeflate1_us\tdeflate6_us\tinflate_us\tratio1");
    for size in [200, 1024, 4096, 16 * 1024, 64 * 1024, 256 * 1024, 1 << 20] {
        let message = json(size);
        let plain = time(|| {
            std::hint::black_box(frame::encode(frame::OP_TEXT, &message));
        });
        let mut c1 = Compressor::new(1);
        let mut c6 = Compressor::new(6);
        let packed = c1.compress(&message, false).expect("JSON shrinks");
        let d1 = time(|| {
            std::hint::black_box(c1.compress(&message, false));
        });
        let d6 = time(|| {
            std::hint::black_box(c6.compress(&message, false));
        });
        let inflate = time(|| {
            let mut inflater = Inflater::new(1 << 21, false);
            inflater.feed(&packed).unwrap();
            std::hint::black_box(inflater.finish().unwrap());
        });
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "{size}\t{:.2}\t{:.1}\t{:.1}\t{:.1}\t{:.2}",
            us(plain),
            us(d1),
            us(d6),
            us(inflate),
            size as f64 / packed.len() as f64
        );
    }
}

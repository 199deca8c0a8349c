//! The reactor's share of the work for large compressed messages, in thread CPU time (not
//! wall time, so a loaded machine does not make it flaky): echoing 1 MB JSON messages
//! compressed both ways costs the reactor thread less than inflating and compressing them
//! alone costs (measured on the test thread with wscgi's own inflater and compressor), which
//! is what the reactor spent on top of everything else when it did that work inline. Meanwhile
//! another connection's pings are answered; their longest round trip is printed.
//!
//! Alone in its file: it finds the server's thread by name among the process's threads.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::raw_deflate::{
    client_frame, deflate, inflate, json, open_offering, read_big_frame, send,
};
use support::*;
use wscgi::ws::compress::Compressor;
use wscgi::ws::inflate::Inflater;

const MESSAGES: usize = 30;

/// On-CPU time of the thread whose `schedstat` this is, in nanoseconds.
fn cpu_ns(schedstat: &str) -> u64 {
    let text = std::fs::read_to_string(schedstat).expect("schedstat");
    let first = text.split_whitespace().next().unwrap_or("");
    first.parse().expect("nanoseconds on the CPU")
}

/// The `schedstat` file of the thread that runs the server under test (its reactor).
fn reactor_stat() -> String {
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let path = task.unwrap().path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        // Thread names are cut to 15 bytes.
        if comm.trim_end() == "wscgi-under-tes" {
            return path.join("schedstat").display().to_string();
        }
    }
    panic!("no wscgi-under-test thread");
}

#[test]
fn large_messages_cost_the_reactor_less_than_their_compression_and_inflation() {
    let backend = TestBackend::echo();
    let server = Wscgi::start(&backend.url(), &[]);
    let (mut big, _) = open_offering(&server, Some("permessage-deflate"));
    let (mut small, _) = open_offering(&server, Some("permessage-deflate"));
    let message = json(1_000_000);
    let packed = deflate(&message);
    let frame = client_frame(0xc1, &packed);

    // What the reactor did per message before: inflate it, compress the echo.
    let own = "/proc/thread-self/schedstat";
    let before = cpu_ns(own);
    for _ in 0..MESSAGES {
        let mut inflater = Inflater::new(1 << 20, false);
        inflater.feed(&packed).unwrap();
        let (plain, _) = inflater.finish().unwrap();
        assert!(Compressor::new(1).compress(&plain, false).is_some());
    }
    let work = cpu_ns(own) - before;

    let stat = reactor_stat();
    let done = Arc::new(AtomicBool::new(false));
    let stop = done.clone();
    let pinger = std::thread::spawn(move || {
        small
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut longest = Duration::ZERO;
        while !stop.load(Ordering::Relaxed) {
            let sent = Instant::now();
            send(&mut small, &client_frame(0x89, b"ping"));
            let (first, _, _) = read_big_frame(&mut small);
            assert_eq!(first, 0x8a);
            longest = longest.max(sent.elapsed());
            std::thread::sleep(Duration::from_millis(5));
        }
        longest
    });
    let before = cpu_ns(&stat);
    for _ in 0..MESSAGES {
        send(&mut big, &frame);
        let (first, payload, _) = read_big_frame(&mut big);
        assert_eq!(first, 0xc1);
        assert_eq!(inflate(&payload).len(), message.len());
    }
    let reactor = cpu_ns(&stat) - before;
    done.store(true, Ordering::Relaxed);
    let longest = pinger.join().unwrap();
    eprintln!(
        "{MESSAGES} echoes of {} bytes ({} compressed): reactor {:?}; inflating and \
         compressing them {:?}; longest ping round trip {longest:?}",
        message.len(),
        packed.len(),
        Duration::from_nanos(reactor),
        Duration::from_nanos(work),
    );
    assert!(
        reactor < work,
        "the reactor spent {reactor} ns, inflating and compressing alone {work} ns"
    );
}

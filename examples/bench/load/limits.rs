//! Limits of the run as a whole: enough file descriptors for thousands of client sockets, and a
//! watchdog that ends the process after `--timeout` whatever it is stuck in, so a server that
//! hangs cannot hang the benchmark script.

use std::io::{self, Write};
use std::thread;

use crate::Opts;
use crate::output::json_escape;

/// The generator holds one socket per client connection; 10,000 of them need
/// more than the usual soft limit of 1024 descriptors.
pub fn raise_nofile_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                eprintln!("bench-load: cannot raise the open-files limit");
            }
        }
    }
}

/// Ends the process after `--timeout`, whatever it is doing, with one JSON line.
pub fn start_watchdog(opts: &Opts) {
    let timeout = opts.timeout;
    let (scenario, label) = (opts.scenario.clone(), opts.label.clone());
    thread::spawn(move || {
        thread::sleep(timeout);
        println!(
            "{{\"scenario\":\"{scenario}\",\"label\":\"{}\",\"ok\":false,\"error\":\"hard timeout after {}s\"}}",
            json_escape(&label),
            timeout.as_secs()
        );
        println!("{scenario} {label}: FAILED: hard timeout after {timeout:?}");
        let _ = io::stdout().flush();
        std::process::exit(3);
    });
}

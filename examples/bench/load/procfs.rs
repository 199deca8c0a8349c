//! Sampling the processes under test through /proc: memory (RSS and PSS from `smaps_rollup`)
//! and CPU time of whole process trees, since a server may run workers or helpers as child
//! processes (websocketd: one per connection), and this generator's own CPU time.

use std::collections::HashMap;
use std::fs;

use crate::Opts;
use crate::output::Report;

/// One look at a process tree: how many processes, their memory and their CPU time.
#[derive(Clone, Copy, Default)]
pub struct Sample {
    pub procs: usize,
    pub rss_kib: u64,
    pub pss_kib: u64,
    /// utime + stime (+ those of reaped children), in seconds.
    pub cpu_s: f64,
}

/// The given processes and all their descendants (by ppid in /proc/*/stat).
fn process_tree(roots: &[u32]) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(fields) = stat_fields(pid)
                && let Some(ppid) = fields.get(1).and_then(|s| s.parse::<u32>().ok())
            {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut out = Vec::new();
    let mut stack: Vec<u32> = roots.to_vec();
    while let Some(pid) = stack.pop() {
        if out.contains(&pid) {
            continue;
        }
        out.push(pid);
        if let Some(kids) = children.get(&pid) {
            stack.extend(kids);
        }
    }
    out
}

/// Fields of /proc/PID/stat after the command name: [state, ppid, ...];
/// utime is index 11, stime 12, cutime 13, cstime 14.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_string).collect())
}

/// Processes, memory and CPU time of the trees under `roots` (zero when there are none).
pub fn sample(roots: &[u32]) -> Sample {
    let mut s = Sample::default();
    if roots.is_empty() {
        return s;
    }
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    for pid in process_tree(roots) {
        let Some(fields) = stat_fields(pid) else {
            continue;
        };
        s.procs += 1;
        let t: u64 = (11..=14)
            .filter_map(|i| fields.get(i).and_then(|v| v.parse::<u64>().ok()))
            .sum();
        s.cpu_s += t as f64 / ticks;
        if let Ok(text) = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
            for line in text.lines() {
                let kib = |l: &str| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                if line.starts_with("Rss:") {
                    s.rss_kib += kib(line);
                } else if line.starts_with("Pss:") {
                    s.pss_kib += kib(line);
                }
            }
        }
    }
    s
}

/// CPU time of the trees under `roots` alone: no smaps_rollup, which is slow for big processes.
fn cpu_only(roots: &[u32]) -> f64 {
    if roots.is_empty() {
        return 0.0;
    }
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    process_tree(roots)
        .into_iter()
        .filter_map(stat_fields)
        .map(|f| {
            (11..=14)
                .filter_map(|i| f.get(i).and_then(|v| v.parse::<u64>().ok()))
                .sum::<u64>() as f64
                / ticks
        })
        .sum()
}

/// This process's CPU time so far, to tell what the generator itself cost.
fn own_cpu_s() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut ru) != 0 {
            return 0.0;
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }
}

/// CPU seconds spent by the server tree, the backend tree and this process
/// between `begin` and `end`.
pub struct Cpu {
    pub server: f64,
    pub backend: f64,
    pub client: f64,
}

impl Cpu {
    pub fn begin(opts: &Opts) -> Cpu {
        Cpu {
            server: cpu_only(&opts.pids),
            backend: cpu_only(&opts.backend_pids),
            client: own_cpu_s(),
        }
    }
    pub fn end(&self, opts: &Opts) -> Cpu {
        Cpu {
            server: (cpu_only(&opts.pids) - self.server).max(0.0),
            backend: (cpu_only(&opts.backend_pids) - self.backend).max(0.0),
            client: (own_cpu_s() - self.client).max(0.0),
        }
    }
    pub fn add_to(&self, r: &mut Report, opts: &Opts) {
        if !opts.pids.is_empty() {
            r.f("server_cpu_s", self.server, 3);
        }
        if !opts.backend_pids.is_empty() {
            r.f("backend_cpu_s", self.backend, 3);
        }
        r.f("client_cpu_s", self.client, 3);
    }
}

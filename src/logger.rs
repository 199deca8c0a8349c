//! A small stderr logger behind the `log` facade: one line per record, as text
//! (`2026-11-21T23:59:01Z WARN message`) or, with `--log-format json`, as one JSON object
//! (`{"ts":"2026-11-21T23:59:01Z","level":"WARN","msg":"message"}`).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use log::{LevelFilter, Log, Metadata, Record};

use crate::date::civil_from_days;

struct StderrLogger;

static LOGGER: StderrLogger = StderrLogger;
static JSON: AtomicBool = AtomicBool::new(false);

/// Installs the logger once; later calls only change the level and format.
pub fn init(level: LevelFilter, json: bool) {
    JSON.store(json, Ordering::Relaxed);
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // Other crates log through the same facade; keep only our own records above debug.
        let ours = record.target().starts_with("wscgi");
        if !ours && record.level() > log::Level::Warn {
            return;
        }
        let line = match JSON.load(Ordering::Relaxed) {
            false => format!("{} {} {}\n", timestamp(), record.level(), record.args()),
            true => {
                let msg = record.args().to_string();
                let obj = crate::api::json::Object::new()
                    .str("ts", &timestamp())
                    .str("level", record.level().as_str());
                format!("{}\n", obj.str("msg", &msg).finish())
            }
        };
        // A closed stderr must never take the server down.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// UTC time as RFC 3339 (seconds), computed without a date crate.
pub fn timestamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use crate::date::civil_from_days;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_414), (2025, 11, 22));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}

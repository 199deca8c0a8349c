//! Counters and the Prometheus text exposition of `GET /metrics`.
//!
//! Everything is counted on the reactor thread (workers report latency and retries inside their
//! results), so plain integers suffice. Per-connection traffic is counted by each connection
//! and folded in here when it goes away; a scrape adds the live connections' share.

use std::fmt::Write;
use std::time::Duration;

use crate::events::EventName;

/// Upper bounds of the backend latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Messages and bytes one connection sent and received.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    pub messages_in: u64,
    pub bytes_in: u64,
    pub messages_out: u64,
    pub bytes_out: u64,
}

impl Traffic {
    pub fn add(&mut self, other: Traffic) {
        self.messages_in += other.messages_in;
        self.bytes_in += other.bytes_in;
        self.messages_out += other.messages_out;
        self.bytes_out += other.bytes_out;
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub accepted: u64,
    pub rejected: u64,
    /// Events sent to the backend, by `EventName` order: reset, open, message, close, resume.
    pub events: [u64; 5],
    pub backend_errors: u64,
    pub backend_retries: u64,
    latency_buckets: [u64; BUCKETS.len()],
    latency_count: u64,
    latency_sum: f64,
    /// Traffic of connections that are gone.
    pub closed_traffic: Traffic,
    pub published: u64,
    pub deliveries: u64,
    pub slow_consumer_closes: u64,
    /// Sessions continued on a new socket, and resumes refused with 4409.
    pub resumes: u64,
    pub resumes_refused: u64,
}

/// Values read at scrape time rather than counted.
#[derive(Debug, Default, Clone, Copy)]
pub struct Gauges {
    pub open_connections: usize,
    pub all_connections: usize,
    pub pending_events: usize,
    pub queued_jobs: usize,
    /// Connections that stopped reading because the server is saturated.
    pub saturation_paused: usize,
    pub channels: usize,
    pub live_traffic: Traffic,
    /// Sessions waiting for their client, and the bytes they keep.
    pub parked_sessions: usize,
    pub parked_bytes: usize,
}

impl Metrics {
    pub fn event_sent(&mut self, name: EventName) {
        self.events[name as usize] += 1;
    }

    pub fn backend_done(&mut self, elapsed: Duration, retries: u32, failed: bool) {
        let secs = elapsed.as_secs_f64();
        for (bucket, bound) in self.latency_buckets.iter_mut().zip(BUCKETS) {
            if secs <= bound {
                *bucket += 1;
            }
        }
        self.latency_count += 1;
        self.latency_sum += secs;
        self.backend_retries += u64::from(retries);
        if failed {
            self.backend_errors += 1;
        }
    }

    /// The Prometheus text format (version 0.0.4).
    pub fn render(&self, g: &Gauges) -> String {
        let mut traffic = self.closed_traffic;
        traffic.add(g.live_traffic);
        let mut out = String::with_capacity(4096);
        let o = &mut out;
        gauge(
            o,
            "wscgi_connections_open",
            "WebSocket connections open now",
            g.open_connections as u64,
        );
        gauge(
            o,
            "wscgi_connections",
            "client connections held, in any phase",
            g.all_connections as u64,
        );
        counter(
            o,
            "wscgi_connections_accepted_total",
            "WebSocket connections accepted",
            self.accepted,
        );
        counter(
            o,
            "wscgi_connections_rejected_total",
            "handshakes refused (bad request, backend said no, full)",
            self.rejected,
        );
        help(
            o,
            "wscgi_backend_events_total",
            "counter",
            "events sent to the backend, by type",
        );
        for name in [
            EventName::Reset,
            EventName::Open,
            EventName::Message,
            EventName::Close,
            EventName::Resume,
        ] {
            let _ = writeln!(
                o,
                "wscgi_backend_events_total{{event=\"{}\"}} {}",
                name.as_str(),
                self.events[name as usize]
            );
        }
        counter(
            o,
            "wscgi_backend_errors_total",
            "events that failed after all retries",
            self.backend_errors,
        );
        counter(
            o,
            "wscgi_backend_retries_total",
            "backend request retries",
            self.backend_retries,
        );
        self.render_latency(o);
        counter(
            o,
            "wscgi_messages_received_total",
            "messages received from clients",
            traffic.messages_in,
        );
        counter(
            o,
            "wscgi_received_bytes_total",
            "message payload bytes received from clients",
            traffic.bytes_in,
        );
        counter(
            o,
            "wscgi_messages_sent_total",
            "messages sent to clients",
            traffic.messages_out,
        );
        counter(
            o,
            "wscgi_sent_bytes_total",
            "message payload bytes sent to clients",
            traffic.bytes_out,
        );
        counter(
            o,
            "wscgi_published_total",
            "messages published to channels or broadcast",
            self.published,
        );
        counter(
            o,
            "wscgi_publish_deliveries_total",
            "published messages queued to a client",
            self.deliveries,
        );
        counter(
            o,
            "wscgi_slow_consumer_closes_total",
            "clients closed with 1008 for not keeping up",
            self.slow_consumer_closes,
        );
        gauge(
            o,
            "wscgi_pending_events",
            "events waiting for the backend (queued per connection or for a worker)",
            (g.pending_events + g.queued_jobs) as u64,
        );
        counter(
            o,
            "wscgi_resumes_total",
            "sessions resumed on a new socket (wscgi-resume)",
            self.resumes,
        );
        counter(
            o,
            "wscgi_resumes_refused_total",
            "resumes refused with 4409 (unknown key, count outside what was kept)",
            self.resumes_refused,
        );
        gauge(
            o,
            "wscgi_parked_sessions",
            "sessions waiting for their client to resume",
            g.parked_sessions as u64,
        );
        gauge(
            o,
            "wscgi_parked_bytes",
            "bytes kept for parked sessions (--resume-max-bytes bounds them)",
            g.parked_bytes as u64,
        );
        gauge(
            o,
            "wscgi_saturation_paused_connections",
            "connections not read while the worker queue is full",
            g.saturation_paused as u64,
        );
        gauge(
            o,
            "wscgi_channels",
            "channels with at least one member",
            g.channels as u64,
        );
        out
    }

    fn render_latency(&self, o: &mut String) {
        let name = "wscgi_backend_request_duration_seconds";
        help(
            o,
            name,
            "histogram",
            "time to deliver one event, retries included",
        );
        for (count, bound) in self.latency_buckets.iter().zip(BUCKETS) {
            let _ = writeln!(o, "{name}_bucket{{le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(o, "{name}_bucket{{le=\"+Inf\"}} {}", self.latency_count);
        let _ = writeln!(o, "{name}_sum {}", self.latency_sum);
        let _ = writeln!(o, "{name}_count {}", self.latency_count);
    }
}

fn help(o: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(o, "# HELP {name} {text}\n# TYPE {name} {kind}");
}

fn counter(o: &mut String, name: &str, text: &str, value: u64) {
    help(o, name, "counter", text);
    let _ = writeln!(o, "{name} {value}");
}

fn gauge(o: &mut String, name: &str, text: &str, value: u64) {
    help(o, name, "gauge", text);
    let _ = writeln!(o, "{name} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let mut m = Metrics::default();
        m.event_sent(EventName::Message);
        m.backend_done(Duration::from_millis(3), 1, false);
        let text = m.render(&Gauges {
            open_connections: 2,
            ..Gauges::default()
        });
        assert!(text.contains("wscgi_connections_open 2\n"));
        assert!(text.contains("wscgi_backend_events_total{event=\"message\"} 1\n"));
        assert!(text.contains("wscgi_backend_retries_total 1\n"));
        assert!(text.contains("wscgi_backend_request_duration_seconds_bucket{le=\"0.0025\"} 0\n"));
        assert!(text.contains("wscgi_backend_request_duration_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(text.contains("wscgi_backend_request_duration_seconds_count 1\n"));
    }
}

//! `/metrics` as clients, events and fan-outs happen: counters, gauges, the latency
//! histogram, and the traffic of connections that are gone.

mod support;

use std::time::Duration;

use support::rooms::*;
use support::*;
use tungstenite::Message;

const T: Duration = Duration::from_secs(10);

#[test]
fn metrics_count_connections_events_and_fanout() {
    let backend = room_backend();
    let server = Wscgi::start(&backend.url(), &[]);
    let (mut a, id_a) = join(&server, &backend, "/a");
    let (mut b, _) = join(&server, &backend, "/b");
    for n in 0..3 {
        a.send(Message::text(n.to_string())).unwrap();
        assert_eq!(recv_text(&mut a), n.to_string());
    }
    assert_eq!(post(&server, "/channels/room", "news", 200), 2);
    assert_eq!(post(&server, "/broadcast", "all", 200), 2);
    for cl in [&mut a, &mut b] {
        assert_eq!(recv_text(cl), "news");
        assert_eq!(recv_text(cl), "all");
    }
    let m = metrics(&server);
    let expected = [
        ("wscgi_connections_open", 2),
        ("wscgi_connections_accepted_total", 2),
        ("wscgi_backend_events_total{event=\"open\"}", 2),
        ("wscgi_backend_events_total{event=\"message\"}", 3),
        ("wscgi_backend_events_total{event=\"close\"}", 0),
        ("wscgi_published_total", 2),
        ("wscgi_publish_deliveries_total", 4),
        ("wscgi_messages_received_total", 3),
        ("wscgi_messages_sent_total", 3 + 4),
        ("wscgi_slow_consumer_closes_total", 0),
        ("wscgi_channels", 1),
    ];
    for (name, value) in expected {
        assert_eq!(sample(&m, name), value, "{name}");
    }
    let hist = "wscgi_backend_request_duration_seconds";
    let count = sample(&m, &format!("{hist}_count"));
    assert!(count >= 5, "two opens and three messages timed: {count}");
    assert_eq!(sample(&m, &format!("{hist}_bucket{{le=\"+Inf\"}}")), count);
    let ten = sample(&m, &format!("{hist}_bucket{{le=\"10\"}}"));
    assert!(sample(&m, &format!("{hist}_bucket{{le=\"0.001\"}}")) <= ten && ten <= count);

    // A closed connection's traffic still counts.
    a.close(None).unwrap();
    let _ = recv_close(&mut a);
    drop(a);
    let closed = |q: &BackendRequest| q.conn_id() == id_a && q.event() == "close";
    backend.wait_for(T, |r| r.iter().any(closed));
    wait_until(T, "a's close is counted and a is gone", || {
        let m = metrics(&server);
        sample(&m, "wscgi_connections_open") == 1
            && sample(&m, "wscgi_backend_events_total{event=\"close\"}") == 1
            && sample(&m, "wscgi_connections") == 1
    });
    let m = metrics(&server);
    assert_eq!(sample(&m, "wscgi_messages_received_total"), 3);
    assert_eq!(sample(&m, "wscgi_messages_sent_total"), 7);
    assert_eq!(sample(&m, "wscgi_connections_accepted_total"), 2);
}

#[test]
fn the_reset_event_is_counted_like_every_other_event() {
    let backend = room_backend();
    let server = Wscgi::start(&backend.url(), &[]);
    let _client = join(&server, &backend, "/a");
    let m = metrics(&server);
    assert_eq!(sample(&m, "wscgi_backend_events_total{event=\"reset\"}"), 1);
    let timed = sample(&m, "wscgi_backend_request_duration_seconds_count");
    assert_eq!(timed, 2, "reset and open were both delivered");
}

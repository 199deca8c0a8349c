//! A cluster (`--redis`, built with `--features redis`) meeting resume and slowness: a parked
//! session takes calls through other instances and resumes on the instance holding it; README's
//! nginx `hash` upstream routes each resume back there; an instance that freezes costs callers
//! `--backend-timeout` at most. Missing redis-server or nginx: a loud skip, or a failure when
//! `CI` is set (.ci/run installs them).
#![cfg(feature = "redis")]

#[path = "cluster/harness.rs"]
mod harness;
mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use harness::{Cluster, field};
use support::{recv_close, recv_text, wait_until};

#[test]
fn a_parked_session_takes_calls_through_other_instances_and_resumes_on_its_own() {
    let Some(c) = Cluster::start(3, &[]) else {
        return;
    };
    let key = support::session_key();
    let target = support::resume_target("/chat?ch=room", &key, None);
    let mut client = support::connect(&c.nodes[1].ws_url(&target));
    let id = recv_text(&mut client); // message 1 of the session: the open reply
    support::reset(client);
    let info = format!("/connections/{id}");
    wait_until(
        Duration::from_secs(10),
        "parked, seen from instance 0",
        || {
            c.nodes[0]
                .call("GET", &info, b"")
                .body_str()
                .contains("\"parked\":true")
        },
    );
    // Carried out by the holder, answered with its result: 202, queued for the resume.
    let r = c.nodes[0].call("POST", &info, b"while away");
    assert_eq!(r.status, 202, "{}", r.body_str());
    assert!(r.body_str().contains("\"queued\":true"), "{}", r.body_str());
    let r = c.nodes[2].call("POST", "/channels/room", b"published while away");
    assert_eq!(field(&r, "other_instances"), Some(2), "{}", r.body_str());
    let r = c.nodes[2].call("GET", "/channels/room", b"");
    assert!(
        r.body_str().contains(&id),
        "still a member: {}",
        r.body_str()
    );
    // Another instance does not know the key (README: route resumes back with nginx `hash`).
    let again = support::resume_target("/chat?ch=room", &key, Some(1));
    let mut elsewhere = support::connect(&c.nodes[0].ws_url(&again));
    let refused = recv_close(&mut elsewhere).map(|f| u16::from(f.code));
    assert_eq!(refused, Some(4409));
    let mut back = support::connect(&c.nodes[1].ws_url(&again));
    assert_eq!(recv_text(&mut back), "while away");
    assert_eq!(recv_text(&mut back), "published while away");
    let r = c.nodes[0].call("POST", &info, b"live");
    assert_eq!(r.status, 200, "open again: {}", r.body_str());
    assert_eq!(recv_text(&mut back), "live");
    let events: Vec<String> = c
        .backend
        .events(&id)
        .iter()
        .map(|e| e.event().to_string())
        .collect();
    assert_eq!(events, ["open", "resume"], "one connection to the backend");
}

/// README's nginx `http` upstream for resumable clients in a cluster: the same key goes to the
/// same instance (so every resume finds its session), clients without a key are spread.
#[test]
fn nginx_hash_routes_each_resume_back_to_its_instance() {
    if support::procs::require("nginx", "the nginx resume routing test").is_none() {
        return;
    }
    let Some(c) = Cluster::start(2, &[]) else {
        return;
    };
    let dir = support::procs::TempDir::new("nginx-hash");
    let port = support::procs::free_port();
    let upstreams = harness::upstream_servers(&c.nodes);
    let d = dir.0.display();
    let temp: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
        .iter()
        .map(|t| format!("{t}_temp_path {d}/{t};\n"))
        .collect();
    // As in README ("Cluster"), but for the listen address and the servers.
    let http = format!(
        "http {{ access_log off; {temp}\n\
         map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}\n\
         map $args $wscgi_route {{ \"~(^|&)wscgi-resume=(?<key>[A-Za-z0-9_-]+)\" $key;\n\
         default $request_id; }}\n\
         upstream wscgi {{ hash $wscgi_route consistent; {upstreams} }}\n\
         server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://wscgi;\n\
         proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade;\n\
         proxy_set_header Connection $connection_upgrade; proxy_read_timeout 1h; }} }} }}"
    );
    let _nginx = harness::nginx(&dir, port, &[], &http);
    let url = |target: &str| format!("ws://127.0.0.1:{port}{target}");
    let plain: Vec<_> = (0..16)
        .map(|_| {
            let mut client = support::connect(&url("/chat?ch=room"));
            (recv_text(&mut client), client)
        })
        .collect();
    let tags: HashSet<&str> = plain.iter().map(|(id, _)| &id[..8]).collect();
    assert_eq!(tags.len(), 2, "clients without a key spread over both");
    for n in 0..6 {
        let key = support::session_key();
        let start = support::resume_target("/chat?ch=room", &key, None);
        let mut client = support::connect(&url(&start));
        let id = recv_text(&mut client);
        support::reset(client);
        let info = format!("/connections/{id}");
        wait_until(Duration::from_secs(10), "parked", || {
            c.nodes[0]
                .call("GET", &info, b"")
                .body_str()
                .contains("\"parked\":true")
        });
        let r = c.nodes[n % 2].call("POST", &info, format!("missed {n}").as_bytes());
        assert_eq!(r.status, 202, "{}", r.body_str());
        let again = support::resume_target("/chat?ch=room", &key, Some(1));
        let mut back = support::connect(&url(&again));
        assert_eq!(
            recv_text(&mut back),
            format!("missed {n}"),
            "resumed through nginx"
        );
    }
}

/// An instance that stops answering (SIGSTOP: its Redis connections stay open): a call for
/// its connection answers 503 within `--backend-timeout` (3 s here), presence leaves it out;
/// once it runs again, so do calls to it.
#[test]
fn a_frozen_instance_costs_callers_the_backend_timeout_at_most() {
    let Some(mut c) = Cluster::start(1, &[]) else {
        return;
    };
    c.add_process(&[]);
    let (_here, here) = c.join(0, "room");
    let (mut there, id) = c.join(1, "room");
    c.nodes[1].freeze(true);
    let started = Instant::now();
    let r = c.nodes[0].call("POST", &format!("/connections/{id}"), b"frozen");
    let took = started.elapsed();
    assert_eq!(r.status, 503, "{}", r.body_str());
    assert!(
        r.body_str().contains("--backend-timeout"),
        "{}",
        r.body_str()
    );
    assert!(
        took < Duration::from_millis(4500),
        "not past the timeout: {took:?}"
    );
    let started = Instant::now();
    let r = c.nodes[0].call("GET", "/channels/room", b"");
    let took = started.elapsed();
    assert_eq!(field(&r, "count"), Some(1), "{}", r.body_str());
    assert!(r.body_str().contains(&here), "{}", r.body_str());
    assert!(
        took < Duration::from_millis(4500),
        "not past the timeout: {took:?}"
    );
    c.nodes[1].freeze(false);
    // What was refused with 503 was not carried out: the client gets the next push only.
    wait_until(
        Duration::from_secs(10),
        "the thawed instance answers",
        || {
            c.nodes[0]
                .call("POST", &format!("/connections/{id}"), b"thawed")
                .status
                == 200
        },
    );
    assert_eq!(recv_text(&mut there), "thawed");
    // SIGCONT interrupts the subscriber's wait; that is not a Redis outage.
    let log = c.nodes[1].log();
    assert!(!log.contains("redis unavailable"), "{log}");
}

/// A `/batch` takes `--backend-timeout` (3 s here) at most, however its time is spent: its
/// first operation waits 2 s for a Redis that stalls, its second goes to a frozen instance, and
/// gets only what is left of the batch's 3 s, not 3 s afresh.
#[test]
fn a_batch_across_slow_instances_takes_the_backend_timeout_at_most() {
    let Some(mut c) = Cluster::start(2, &[]) else {
        return;
    };
    c.add_process(&[]);
    let (mut slow, slow_id) = c.join(1, "");
    let (_frozen, frozen_id) = c.join(2, "");
    let batch = format!(
        r#"[{{"op":"send","id":"{slow_id}","data":"late"}},{{"op":"send","id":"{frozen_id}","data":"never"}}]"#
    );
    c.nodes[2].freeze(true);
    c.redis.freeze(true);
    let (r, took) = std::thread::scope(|s| {
        let call = s.spawn(|| {
            let started = Instant::now();
            let r = c.nodes[0].call("POST", "/batch", batch.as_bytes());
            (r, started.elapsed())
        });
        std::thread::sleep(Duration::from_secs(2));
        c.redis.freeze(false);
        call.join().unwrap()
    });
    c.nodes[2].freeze(false);
    assert_eq!(r.status, 200, "{}", r.body_str());
    let body = r.body_str();
    assert!(
        body.contains(r#"[{"status":200"#) && body.contains(r#"},{"status":503"#),
        "the first carried out, the second not: {body}"
    );
    assert!(
        took < Duration::from_millis(4500),
        "not past the batch's timeout: {took:?}"
    );
    assert_eq!(recv_text(&mut slow), "late");
}

/// A forwarded call that reaches its holder after the asker's deadline (the asker answered its
/// caller 503 by then) is dropped there, neither carried out nor answered; one in time, or one
/// without a deadline (an older sender), is carried out. Sent here with a direct Redis PUBLISH
/// to the holder's inbox, as another instance would.
#[test]
fn a_request_past_its_deadline_is_dropped_by_its_holder() {
    let Some(c) = Cluster::start(1, &[]) else {
        return;
    };
    let (mut client, id) = c.join(0, "");
    let inbox = format!("wscgi:inbox:{}", &id[..8]);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let now_ms = u64::try_from(now.as_millis()).unwrap();
    let mut redis = c.redis.conn();
    for (deadline, data) in [
        (Some(now_ms - 1000), "expired"),
        (Some(now_ms + 60_000), "in time"),
        (None, "no deadline"),
    ] {
        let deadline = deadline.map_or(String::new(), |d| format!(r#","deadline":{d}"#));
        let request = format!(
            r#"{{"v":1,"call":1,"from":"elsewhere"{deadline},"op":"send","id":"{id}","data":"{data}"}}"#
        );
        let receivers: u64 = redis::cmd("PUBLISH")
            .arg(&inbox)
            .arg(request)
            .query(&mut redis)
            .unwrap();
        assert_eq!(receivers, 1, "the holder listens on {inbox}");
    }
    assert_eq!(recv_text(&mut client), "in time");
    assert_eq!(recv_text(&mut client), "no deadline");
}

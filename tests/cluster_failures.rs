//! A cluster (`--redis`, built with `--features redis`) when things go wrong or get real: an
//! instance killed or stopped, Redis stopped and restarted, passwords, databases and unix
//! sockets, two instances behind nginx's `stream` module, and the PHP and Python examples
//! publishing through Redis. Missing redis-server (or nginx, php-redis, redis-py): a loud skip,
//! or a failure when `CI` is set (.ci/run installs them).
#![cfg(feature = "redis")]

#[path = "cluster/harness.rs"]
mod harness;
mod support;

use std::time::{Duration, Instant};

use harness::{Cluster, Redis, field, metric, until};
use support::{recv_text, wait_until};

/// How long an instance may take to see Redis back.
const RECONNECT: Duration = Duration::from_secs(15);

#[test]
fn a_killed_instance_leaves_presence_within_the_ttl_and_a_stopped_one_at_once() {
    let Some(mut c) = Cluster::start(1, &["--redis-node-ttl", "1s"]) else {
        return;
    };
    c.add_process(&["--redis-node-ttl", "1s"]);
    c.add_process(&["--redis-node-ttl", "1s"]);
    let (_a, a) = c.join(0, "room");
    let (_b, b) = c.join(1, "room");
    let (_d, d) = c.join(2, "room");
    let count = |c: &Cluster| field(&c.nodes[0].call("GET", "/channels/room", b""), "count");
    assert_eq!(count(&c), Some(3));
    let mut redis = c.redis.conn();
    let alive = |conn: &mut redis::Connection, id: &str| -> bool {
        redis::cmd("EXISTS")
            .arg(format!("wscgi:node:{}", &id[..8]))
            .query(conn)
            .unwrap()
    };
    assert!(alive(&mut redis, &b) && alive(&mut redis, &d));
    let keys: Vec<String> = redis::cmd("KEYS").arg("wscgi:*").query(&mut redis).unwrap();
    for key in &keys {
        let ttl: i64 = redis::cmd("PTTL").arg(key).query(&mut redis).unwrap();
        assert!(
            ttl > 0 && ttl <= 1000,
            "{key} expires within the TTL: {ttl}"
        );
    }
    let killed = Instant::now();
    c.nodes[1].kill();
    wait_until(
        Duration::from_secs(1) + Duration::from_millis(500),
        "b gone from presence",
        || count(&c) == Some(2),
    );
    wait_until(Duration::from_secs(2), "b's liveness key expired", || {
        !alive(&mut redis, &b)
    });
    assert!(
        killed.elapsed() < Duration::from_millis(1500),
        "within the TTL: {:?}",
        killed.elapsed()
    );
    c.nodes[2].terminate();
    assert!(
        !alive(&mut redis, &d),
        "a clean shutdown removes the key at once"
    );
    let r = c.nodes[0].call("GET", "/channels/room", b"");
    assert_eq!(field(&r, "count"), Some(1), "{}", r.body_str());
    assert!(r.body_str().contains(&a));
}

#[test]
fn redis_stopped_and_restarted_mid_run() {
    let Some(mut c) = Cluster::start(2, &[]) else {
        return;
    };
    // The real binary as the third, for its log.
    c.add_process(&[]);
    let mut members: Vec<_> = (0..3).map(|i| c.join(i, "room")).collect();
    c.nodes[0].call("POST", "/channels/room", b"before");
    for (m, _) in &mut members {
        assert_eq!(recv_text(m), "before");
    }
    c.redis.stop();
    wait_until(RECONNECT, "every instance sees redis gone", || {
        c.nodes.iter().all(|n| !n.redis_up())
    });
    for (i, node) in c.nodes.iter().enumerate() {
        for (method, path) in [
            ("POST", "/channels/room"),
            ("GET", "/channels/room"),
            ("POST", "/broadcast"),
        ] {
            let started = Instant::now();
            let r = node.call(method, path, b"during");
            assert_eq!(r.status, 503, "{method} {path} on {i}: {}", r.body_str());
            assert!(r.body_str().contains("redis"), "says why: {}", r.body_str());
            assert!(started.elapsed() < Duration::from_secs(1), "fails fast");
        }
        let remote = &members[(i + 1) % 3].1;
        assert_eq!(
            node.call("POST", &format!("/connections/{remote}"), b"x")
                .status,
            503
        );
        let local = &members[i].1;
        let r = node.call(
            "POST",
            &format!("/connections/{local}"),
            b"local still works",
        );
        assert_eq!(r.status, 200, "{}", r.body_str());
    }
    // A reply's WS-Publish still reaches the members here; the rest is counted as failed.
    let ws = tungstenite::Message::text("pub room none here only");
    members[0].0.send(ws).unwrap();
    assert_eq!(
        until(&mut members[0].0, "here only"),
        vec!["local still works".to_string()]
    );
    for (m, _) in &mut members[1..] {
        assert_eq!(recv_text(m), "local still works", "still connected");
    }
    c.redis.restart();
    wait_until(RECONNECT, "every instance is back", || {
        c.nodes.iter().all(|n| n.redis_up())
    });
    // The restarted Redis kept nothing (no persistence): each instance wrote its liveness again.
    let mut redis = c.redis.conn();
    wait_until(RECONNECT, "three liveness keys again", || {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("wscgi:node:*")
            .query(&mut redis)
            .unwrap();
        keys.len() == 3
    });
    let r = c.nodes[2].call("POST", "/channels/room", b"after");
    assert_eq!(
        (r.status, field(&r, "other_instances")),
        (200, Some(2)),
        "{}",
        r.body_str()
    );
    for (m, _) in &mut members {
        assert_eq!(recv_text(m), "after");
    }
    let r = c.nodes[0].call("POST", &format!("/connections/{}", members[1].1), b"pushed");
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(recv_text(&mut members[1].0), "pushed");
    let log = c.nodes[2].log();
    let count = |what: &str| log.lines().filter(|l| l.contains(what)).count();
    assert_eq!(
        count("redis unavailable"),
        1,
        "one line for the outage, not one per call:\n{log}"
    );
    assert_eq!(
        count("redis: connected again after"),
        1,
        "and one for the recovery:\n{log}"
    );
    let metrics = c.nodes[0].call("GET", "/metrics", b"").body_str();
    assert!(
        metric(&metrics, "wscgi_cluster_messages_sent_total") >= Some(2),
        "{metrics}"
    );
    assert!(
        metric(&metrics, "wscgi_cluster_messages_failed_total") >= Some(1),
        "{metrics}"
    );
}

/// examples/python/wscgi_redis.py (redis-py, from ./.venv) and examples/php/wscgi_redis.php
/// (phpredis) publish in the documented format; missing: a skip, or a failure under CI.
#[test]
fn the_python_and_php_examples_publish_through_redis() {
    let Some(c) = Cluster::start(3, &[]) else {
        return;
    };
    let mut members: Vec<_> = (0..3).map(|i| c.join(i, "room")).collect();
    let excluded = members[2].1.clone();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python3");
    let port = c.redis.port.to_string();
    let mut ran = Vec::new();
    if example_works(&python, &["-c", "import redis"], "redis-py in ./.venv") {
        let script = root.join("examples/python/wscgi_redis.py");
        let out = std::process::Command::new(&python)
            .arg(script)
            .args(["room", "from python", &excluded])
            .env("WSCGI_REDIS", c.redis.url())
            .output()
            .expect("run the python example");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3", "{out:?}");
        ran.push("from python");
    }
    let php = std::path::Path::new("/usr/bin/php");
    if example_works(
        php,
        &["-r", "exit(class_exists('Redis') ? 0 : 1);"],
        "php with phpredis",
    ) {
        let out = std::process::Command::new(php)
            .arg(root.join("examples/php/wscgi_redis.php"))
            .args(["room", "from php", &excluded])
            .env("WSCGI_REDIS_PORT", &port)
            .output()
            .expect("run the php example");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3", "{out:?}");
        ran.push("from php");
    }
    // Through Redis too, which orders it after the examples' publishes for every instance.
    let end = r#"{"v":1,"channel":"room","data":"end"}"#;
    let _: u64 = redis::cmd("PUBLISH")
        .arg("wscgi:publish")
        .arg(end)
        .query(&mut c.redis.conn())
        .unwrap();
    for (i, (m, _)) in members.iter_mut().enumerate() {
        let want: Vec<String> = match i {
            2 => vec![],
            _ => ran.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(until(m, "end"), want, "member {i}");
    }
}

/// Whether `program args` exits 0; if not, a skip (a failure under CI).
fn example_works(program: &std::path::Path, args: &[&str], what: &str) -> bool {
    let ok = std::process::Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        support::procs::skip(&format!("{what} is not available"), "one cluster example");
    }
    ok
}

/// README's setup: two instances behind nginx's `stream` module (round robin here, so the
/// clients split over both); a publish on one reaches all of them.
#[test]
fn two_instances_behind_nginx_stream() {
    let module = std::path::Path::new("/usr/lib/nginx/modules/ngx_stream_module.so");
    if support::procs::require("nginx", "the nginx stream cluster test").is_none() {
        return;
    }
    if !module.is_file() {
        support::procs::skip(
            "nginx's stream module (libnginx-mod-stream) is missing",
            "the nginx stream test",
        );
        return;
    }
    let Some(c) = Cluster::start(2, &[]) else {
        return;
    };
    let dir = support::procs::TempDir::new("nginx-stream");
    let port = support::procs::free_port();
    let upstreams = harness::upstream_servers(&c.nodes);
    let stream = format!(
        "stream {{ upstream wscgi_cluster {{ {upstreams} }}\n\
         server {{ listen 127.0.0.1:{port}; proxy_pass wscgi_cluster; proxy_timeout 1h; }} }}"
    );
    let _nginx = harness::nginx(&dir, port, &[module], &stream);
    let mut clients: Vec<_> = (0..4)
        .map(|_| {
            let mut client = support::connect(&format!("ws://127.0.0.1:{port}/chat?ch=room"));
            let id = recv_text(&mut client);
            (client, id)
        })
        .collect();
    let tags: std::collections::HashSet<String> =
        clients.iter().map(|(_, id)| id[..8].to_string()).collect();
    assert_eq!(
        tags.len(),
        2,
        "nginx spread the clients over both instances"
    );
    let r = c.nodes[1].call("POST", "/channels/room", b"through nginx");
    assert_eq!(
        (field(&r, "delivered"), field(&r, "other_instances")),
        (Some(2), Some(1)),
        "{}",
        r.body_str()
    );
    for (client, _) in &mut clients {
        assert_eq!(recv_text(client), "through nginx");
    }
}

/// `--redis` with a password and a database number, and over a unix socket (`redis+unix://`,
/// the password then in the query as the redis crate reads it).
#[test]
fn urls_with_a_password_a_database_and_a_unix_socket() {
    let dir = support::procs::TempDir::new("redis-sock");
    let sock = dir.path("redis.sock").to_string_lossy().into_owned();
    let options = [
        "--requirepass",
        "s3cret",
        "--unixsocket",
        &sock,
        "--unixsocketperm",
        "700",
    ];
    let Some(redis) = Redis::start_with(&options, Some("s3cret")) else {
        return;
    };
    let tcp = format!("redis://default:s3cret@127.0.0.1:{}/3", redis.port);
    let unix = format!("redis+unix://{sock}?pass=s3cret&db=3");
    let mut c = Cluster::on(redis);
    c.add_with_url(&tcp, &[]);
    c.add_with_url(&unix, &[]);
    let wrong = format!("redis://:wrong@127.0.0.1:{}/3", c.redis.port);
    c.nodes.push(harness::Node::InProcess(support::Wscgi::start(
        &c.backend.url(),
        &["--redis", &wrong],
    )));
    let (mut a, a_id) = c.join(0, "room");
    let (mut b, b_id) = c.join(1, "room");
    let r = c.nodes[1].call("POST", "/channels/room", b"both");
    assert_eq!(
        field(&r, "other_instances"),
        Some(1),
        "the wrong password joined nothing: {}",
        r.body_str()
    );
    assert_eq!(
        (recv_text(&mut a), recv_text(&mut b)),
        ("both".into(), "both".into())
    );
    let mut conn = c.redis.conn();
    let _: () = redis::cmd("SELECT").arg(3).query(&mut conn).unwrap();
    for id in [&a_id, &b_id] {
        let key = format!("wscgi:node:{}", &id[..8]);
        let exists: bool = redis::cmd("EXISTS").arg(&key).query(&mut conn).unwrap();
        assert!(exists, "{key} is in database 3");
    }
    assert!(!c.nodes[2].redis_up(), "refused with a wrong password");
    let r = c.nodes[2].call("POST", "/channels/room", b"x");
    assert_eq!(r.status, 503, "{}", r.body_str());
}

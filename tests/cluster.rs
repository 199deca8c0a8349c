//! Several wscgi instances as one (`--redis`, built with `--features redis`): a real
//! redis-server started here on a free port, three instances, clients spread over them. Each
//! test has a cluster of its own. Missing redis-server: a loud skip, or a failure when `CI` is
//! set (.ci/run installs it). Failures, deployments and examples: tests/cluster_failures.rs.
#![cfg(feature = "redis")]

#[path = "cluster/harness.rs"]
mod harness;
mod support;

use std::time::{Duration, Instant};

use harness::{Cluster, field, metric, until, until_each};
use support::{recv_close, recv_text, wait_until};

#[test]
fn a_publish_from_each_instance_reaches_every_member_once_in_order() {
    let Some(c) = Cluster::start(3, &[]) else {
        return;
    };
    let mut members: Vec<_> = (0..6).map(|i| c.join(i % 3, "room").0).collect();
    let (_outsider, _) = c.join(1, "other");
    for from in 0..3 {
        for n in 0..20 {
            let r = c.nodes[from].call("POST", "/channels/room", format!("m{from}-{n}").as_bytes());
            assert_eq!(r.status, 200, "{}", r.body_str());
            assert_eq!(
                field(&r, "delivered"),
                Some(2),
                "two members here: {}",
                r.body_str()
            );
            assert_eq!(field(&r, "other_instances"), Some(2), "{}", r.body_str());
        }
    }
    // Order holds per publisher: each ends its own run, and a member has all of a run once it
    // has that run's end.
    for (from, node) in c.nodes.iter().enumerate() {
        node.call("POST", "/channels/room", format!("end{from}").as_bytes());
    }
    for (i, m) in members.iter_mut().enumerate() {
        let got = until_each(m, &["end0", "end1", "end2"]);
        for from in 0..3 {
            let mine: Vec<&String> = got
                .iter()
                .filter(|t| t.starts_with(&format!("m{from}-")))
                .collect();
            let want: Vec<String> = (0..20).map(|n| format!("m{from}-{n}")).collect();
            assert_eq!(
                mine,
                want.iter().collect::<Vec<_>>(),
                "member {i}, publisher {from}"
            );
        }
        assert_eq!(got.len(), 60, "member {i} got each publish once: {got:?}");
    }
    // Each instance its own boot id and its own startup reset.
    let resets: Vec<String> = c
        .backend
        .requests()
        .iter()
        .filter(|r| r.event() == "reset")
        .map(|r| r.header("ws-boot-id").unwrap_or("").to_string())
        .collect();
    let distinct: std::collections::HashSet<&String> = resets.iter().collect();
    assert_eq!((resets.len(), distinct.len()), (3, 3), "{resets:?}");
}

#[test]
fn ws_publish_with_exclude_reaches_the_other_instances() {
    let Some(c) = Cluster::start(3, &[]) else {
        return;
    };
    let (mut sender, _) = c.join(0, "room");
    let (mut excluded, excluded_id) = c.join(1, "room");
    let mut others: Vec<_> = [0, 1, 2, 2].iter().map(|&i| c.join(i, "room").0).collect();
    let text = format!("pub room self,{excluded_id} hello");
    sender.send(tungstenite::Message::text(text)).unwrap();
    for o in &mut others {
        assert_eq!(recv_text(o), "hello");
    }
    // Sent after "hello" by the same publisher: whoever sees it first saw no "hello".
    sender
        .send(tungstenite::Message::text("pub room none end"))
        .unwrap();
    for o in &mut others {
        assert_eq!(recv_text(o), "end");
    }
    assert_eq!(
        until(&mut excluded, "end"),
        Vec::<String>::new(),
        "excluded on instance 1"
    );
    let r = c.nodes[2].call(
        "POST",
        &format!("/channels/room?exclude={excluded_id}"),
        b"fin",
    );
    assert_eq!(field(&r, "delivered"), Some(2), "{}", r.body_str());
    assert_eq!(
        until(&mut sender, "end"),
        Vec::<String>::new(),
        "self excluded"
    );
}

#[test]
fn broadcast_by_path_reaches_every_instance() {
    let Some(c) = Cluster::start(3, &[]) else {
        return;
    };
    let mut chat: Vec<_> = (0..3).map(|i| c.join_on(i, "/chat/x", "").0).collect();
    let mut other: Vec<_> = (0..3).map(|i| c.join_on(i, "/other", "").0).collect();
    let r = c.nodes[2].call("POST", "/broadcast?path=/chat", b"to chat");
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(field(&r, "other_instances"), Some(2));
    // The same publisher, so every client sees the two in this order.
    c.nodes[2].call("POST", "/broadcast", b"to all");
    for client in &mut chat {
        assert_eq!(until(client, "to all"), vec!["to chat".to_string()]);
    }
    for client in &mut other {
        assert_eq!(until(client, "to all"), Vec::<String>::new());
    }
}

#[test]
fn push_info_and_close_by_id_through_another_instance() {
    let Some(c) = Cluster::start(3, &[]) else {
        return;
    };
    let (mut client, id) = c.join(1, "room");
    let received = |n: usize| {
        let text = c.nodes[n].call("GET", "/metrics", b"").body_str();
        metric(&text, "wscgi_cluster_messages_received_total")
    };
    let (before_holder, before_bystander) = (received(1), received(2));
    let r = c.nodes[0].call("POST", &format!("/connections/{id}"), b"pushed");
    assert_eq!(
        (r.status, field(&r, "bytes")),
        (200, Some(6)),
        "{}",
        r.body_str()
    );
    assert_eq!(recv_text(&mut client), "pushed");
    // One message to the holder (and one answer back), nothing to anyone else.
    assert_eq!(
        received(1),
        before_holder.map(|n| n + 1),
        "the holder got it"
    );
    assert_eq!(received(2), before_bystander, "no broadcast to the third");
    let r = c.nodes[2].call("GET", &format!("/connections/{id}"), b"");
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert!(
        r.body_str().contains("\"path\":\"/chat?ch=room\""),
        "{}",
        r.body_str()
    );
    assert!(
        r.body_str().contains("\"channels\":[\"room\"]"),
        "{}",
        r.body_str()
    );
    let r = c.nodes[0].call("POST", &format!("/connections/{id}"), b"\xff");
    assert_eq!(r.status, 400, "checked before it travels: {}", r.body_str());
    let r = c.nodes[2].call(
        "DELETE",
        &format!("/connections/{id}?code=4001&reason=bye"),
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    let close = recv_close(&mut client).expect("a close frame");
    assert_eq!(u16::from(close.code), 4001);
    wait_until(Duration::from_secs(5), "the close event", || {
        c.backend.events(&id).iter().any(|e| e.event() == "close")
    });
    let r = c.nodes[0].call("GET", &format!("/connections/{id}"), b"");
    assert_eq!(r.status, 404, "gone: {}", r.body_str());
}

#[test]
fn an_id_no_instance_holds_is_404() {
    let Some(c) = Cluster::start(3, &[]) else {
        return;
    };
    let (_client, id) = c.join(1, "");
    let same_instance = format!("{}{}", &id[..8], "A".repeat(22));
    let no_instance = format!("zzzzzzzz{}", &id[8..]);
    for unknown in [
        same_instance,
        no_instance,
        "short".to_string(),
        id[8..].to_string(),
    ] {
        for method in ["GET", "POST", "DELETE"] {
            let started = Instant::now();
            let r = c.nodes[0].call(method, &format!("/connections/{unknown}"), b"x");
            assert_eq!(r.status, 404, "{method} {unknown}: {}", r.body_str());
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "answered at once"
            );
        }
    }
    let put = c.nodes[2].call(
        "PUT",
        &format!("/channels/r/connections/zzzzzzzz{}", &id[8..]),
        b"",
    );
    assert_eq!(put.status, 404);
}

#[test]
fn presence_membership_and_batch_across_instances() {
    let Some(c) = Cluster::start(3, &[]) else {
        return;
    };
    let members: Vec<_> = (0..6).map(|i| c.join(i % 3, "room")).collect();
    let mut ids: Vec<String> = members.iter().map(|(_, id)| id.clone()).collect();
    ids.sort();
    let want = format!(
        "\"members\":[{}]",
        ids.iter()
            .map(|i| format!("\"{i}\""))
            .collect::<Vec<_>>()
            .join(",")
    );
    for node in &c.nodes {
        let r = node.call("GET", "/channels/room", b"");
        assert_eq!(
            (r.status, field(&r, "count")),
            (200, Some(6)),
            "{}",
            r.body_str()
        );
        assert!(r.body_str().contains(&want), "{}", r.body_str());
        let r = node.call("GET", "/channels", b"");
        assert!(
            r.body_str().contains("{\"name\":\"room\",\"members\":6}"),
            "{}",
            r.body_str()
        );
        let r = node.call("GET", "/connections?channel=room", b"");
        assert_eq!(field(&r, "count"), Some(6), "{}", r.body_str());
    }
    assert_eq!(c.nodes[0].call("GET", "/channels/nobody", b"").status, 404);
    let (mut remote, rid) = c.join(2, "");
    let r = c.nodes[0].call("PUT", &format!("/channels/vip/connections/{rid}"), b"");
    assert_eq!(r.status, 200, "{}", r.body_str());
    let r = c.nodes[1].call("GET", "/channels/vip", b"");
    assert!(r.body_str().contains(&rid), "{}", r.body_str());
    c.nodes[1].call("POST", "/channels/vip", b"vip only");
    assert_eq!(recv_text(&mut remote), "vip only");
    let r = c.nodes[1].call("DELETE", &format!("/channels/vip/connections/{rid}"), b"");
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(c.nodes[0].call("GET", "/channels/vip", b"").status, 404);
    let batch = format!(
        r#"[{{"op":"send","id":"{rid}","data":"b1"}},{{"op":"subscribe","id":"{rid}","channel":"b"}},
           {{"op":"publish","channel":"b","data":"b2"}},{{"op":"send","id":"zzzzzzzz{}","data":"x"}},
           {{"op":"close","id":"{rid}","code":4002}}]"#,
        &rid[8..]
    );
    let r = c.nodes[0].call("POST", "/batch", batch.as_bytes());
    let body = r.body_str();
    let statuses: Vec<&str> = body
        .match_indices("\"status\":")
        .map(|(i, _)| &body[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["200", "200", "200", "404", "200"], "{body}");
    assert_eq!(recv_text(&mut remote), "b1");
    assert_eq!(recv_text(&mut remote), "b2");
    assert_eq!(
        recv_close(&mut remote).map(|f| u16::from(f.code)),
        Some(4002)
    );
}

#[test]
fn a_redis_publish_in_the_documented_format_reaches_every_instance() {
    let Some(c) = Cluster::start(3, &[]) else {
        return;
    };
    let mut members: Vec<_> = (0..3).map(|i| c.join(i, "room")).collect();
    let excluded = members[1].1.clone();
    let mut redis = c.redis.conn();
    let publish = |conn: &mut redis::Connection, json: &str| -> u64 {
        redis::cmd("PUBLISH")
            .arg("wscgi:publish")
            .arg(json)
            .query(conn)
            .unwrap()
    };
    assert_eq!(
        publish(
            &mut redis,
            r#"{"v":1,"channel":"room","data":"from redis"}"#
        ),
        3
    );
    publish(
        &mut redis,
        &format!(r#"{{"v":1,"channel":"room","base64":"AAH/","exclude":["{excluded}"]}}"#),
    );
    publish(
        &mut redis,
        r#"{"v":2,"channel":"room","data":"a later version is refused"}"#,
    );
    publish(&mut redis, r#"{"v":1,"path":"/chat","data":"end"}"#);
    for (i, (m, _)) in members.iter_mut().enumerate() {
        assert_eq!(recv_text(m), "from redis");
        if i != 1 {
            assert_eq!(support::recv_binary(m), vec![0, 1, 255]);
        }
        assert_eq!(recv_text(m), "end", "member {i}");
    }
    let metrics = c.nodes[0].call("GET", "/metrics", b"").body_str();
    assert!(
        metric(&metrics, "wscgi_cluster_messages_failed_total") >= Some(1),
        "{metrics}"
    );
    assert!(
        metric(&metrics, "wscgi_cluster_messages_received_total") >= Some(4),
        "{metrics}"
    );
}

//! Saturation (the worker queue at its cap): connections with events waiting stop being read,
//! the server keeps count of them without looking at every connection, and as soon as the
//! queue is under its cap again exactly those are read on, nothing lost.

mod support;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use support::*;
use tungstenite::Message;

const T: Duration = Duration::from_secs(10);
/// With one worker, the queue's cap is 64 jobs.
const CAP: usize = 64;
/// Clients that send a second and third message while their first waits in the queue.
const PAUSED: usize = 10;

/// Message events wait at the backend until the test lets them through, one per permit.
#[derive(Default)]
struct Gate {
    permits: Mutex<usize>,
    changed: Condvar,
}

impl Gate {
    fn pass(&self) {
        let permits = self.permits.lock().unwrap();
        let mut permits = self.changed.wait_while(permits, |p| *p == 0).unwrap();
        *permits -= 1;
    }

    fn let_through(&self, n: usize) {
        *self.permits.lock().unwrap() += n;
        self.changed.notify_all();
    }
}

#[test]
fn connections_paused_by_saturation_are_counted_and_read_on_when_it_ends() {
    let gate = Arc::new(Gate::default());
    let at_backend = Arc::clone(&gate);
    let backend = TestBackend::start(move |req| {
        if req.event() == "message" {
            at_backend.pass();
        }
        BackendReply::echo_of(req)
    });
    let server = Wscgi::start(&backend.url(), &["--workers", "1"]);
    let paused_now = || metric(&server, "wscgi_saturation_paused_connections");
    let mut clients: Vec<Client> = (0..=CAP).map(|_| connect(&server.ws_url("/s"))).collect();
    let opens = backend.wait_for(T, |r| {
        r.iter().filter(|q| q.event() == "open").count() > CAP
    });
    let ids: Vec<String> = opens
        .iter()
        .filter(|q| q.event() == "open")
        .map(|q| q.conn_id().to_string())
        .collect();
    // Client 0's event at the backend, everyone else's queued: the queue is at its cap.
    for c in &mut clients {
        c.send(Message::text("1")).unwrap();
    }
    wait_until(T, "the queue is full", || {
        metric(&server, "wscgi_pending_events") == CAP as u64
    });
    assert_eq!(paused_now(), 0, "nobody has more to read yet");
    // Each of these has its first event queued: it reads "2", then stops before "3".
    let paused = 1..=PAUSED;
    for c in &mut clients[paused.clone()] {
        c.send(Message::text("2")).unwrap();
        c.send(Message::text("3")).unwrap();
    }
    wait_until(T, "they stopped reading", || paused_now() == PAUSED as u64);
    for i in paused.clone() {
        assert_eq!(
            pending_events(&server, &ids[i]),
            1,
            "client {i}: \"3\" not read"
        );
    }

    // One event answered: the queue is under its cap, and the paused clients are read on at
    // once, while their own first events still wait for the worker.
    gate.let_through(1);
    assert_eq!(recv_text(&mut clients[0]), "1");
    wait_until(T, "they read on", || paused_now() == 0);
    for i in paused.clone() {
        assert_eq!(
            pending_events(&server, &ids[i]),
            2,
            "client {i}: \"2\" and \"3\" read"
        );
    }

    gate.let_through(usize::MAX / 2);
    for (i, c) in clients.iter_mut().enumerate().skip(1) {
        let last = if paused.contains(&i) { 3 } else { 1 };
        for n in 1..=last {
            assert_eq!(recv_text(c), n.to_string(), "client {i}");
        }
    }
    let messages = backend
        .requests()
        .iter()
        .filter(|q| q.event() == "message")
        .count();
    assert_eq!(
        messages,
        CAP + 1 + 2 * PAUSED,
        "each message reached the backend once"
    );
}

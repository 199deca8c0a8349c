//! A session whose resume socket fails while the backend decides on the resume: driven through
//! the calls the hub makes, over real loopback sockets.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use super::*;
use crate::config::Config;
use crate::conn_id::ConnKey;
use crate::reply::Reply;
use crate::ws::close;
use crate::ws::conn::Readable;

const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAA";

/// A connection that read `target`'s upgrade request (and holds a claim on `KEY`).
fn claiming(listener: &TcpListener, target: &str, limits: &Limits) -> (TcpStream, Conn) {
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, remote) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    let key = ConnKey {
        index: 0,
        generation: 1,
    };
    let mut conn = Conn::new(key, mio::net::TcpStream::from_std(server), remote, limits);
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    client.write_all(request.as_bytes()).unwrap();
    conn.on_readable(limits, Readable::Unsure);
    assert!(conn.claim().is_some(), "a claim on the key");
    (client, conn)
}

/// The backend answers the event in flight with `status`; returns that event.
fn answer(conn: &mut Conn, status: u16, limits: &Limits) -> EventKind {
    let event = conn
        .take_event(&Arc::from("boot"))
        .expect("an event in flight");
    let reply = Reply {
        status,
        ..Reply::default()
    };
    conn.on_reply(Ok(reply), limits);
    event.kind
}

/// An open session, parked, whose resume is at the backend when its new socket fails.
fn resume_socket_failed(listener: &TcpListener, limits: &Limits) -> Conn {
    let (first, mut conn) = claiming(listener, &format!("/?wscgi-resume={KEY}"), limits);
    conn.start_session(limits);
    assert!(matches!(answer(&mut conn, 200, limits), EventKind::Open));
    drop(first);
    conn.on_readable(limits, Readable::Unsure);
    assert_eq!(conn.state_name(), "parked");
    let target = format!("/?wscgi-resume={KEY}&wscgi-received=0");
    let (_second, mut claimer) = claiming(listener, &target, limits);
    let claim = claimer.take_claim().unwrap();
    assert_eq!(conn.check_resume(&claim), Ok(()));
    conn.resume(claim, limits);
    assert_eq!(conn.state_name(), "resuming");
    conn.drop_socket(close::ABNORMAL, "write failed");
    assert_eq!(
        conn.state_name(),
        "parked",
        "the session waits for its client"
    );
    assert_eq!(conn.close_code(), None);
    conn
}

#[test]
fn a_resume_whose_socket_fails_parks_the_session() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let limits = Limits::from_config(&Config::for_backend("http://127.0.0.1:1/"));

    // The backend accepts the resume: the session goes on waiting, and can be resumed.
    let mut conn = resume_socket_failed(&listener, &limits);
    assert!(matches!(answer(&mut conn, 200, &limits), EventKind::Resume));
    assert_eq!(conn.state_name(), "parked");
    assert_eq!(conn.close_code(), None);
    let target = format!("/?wscgi-resume={KEY}&wscgi-received=0");
    let (_third, mut claimer) = claiming(&listener, &target, &limits);
    assert_eq!(conn.check_resume(claimer.claim().unwrap()), Ok(()));
    let claim = claimer.take_claim().unwrap();
    conn.resume(claim, &limits);
    assert!(matches!(answer(&mut conn, 200, &limits), EventKind::Resume));
    assert_eq!(conn.state_name(), "open");

    // The backend refuses it: the session ends with its one close event.
    let mut conn = resume_socket_failed(&listener, &limits);
    assert!(matches!(answer(&mut conn, 403, &limits), EventKind::Resume));
    assert_eq!(conn.close_code(), Some(close::ABNORMAL));
    let close = conn.take_event(&Arc::from("boot")).map(|e| e.kind);
    assert!(matches!(close, Some(EventKind::Close { .. })), "{close:?}");
}

/// The replay's own check (a guard: the hub checked the count at the claim) refuses with 4409,
/// and says so once for the refused-resumes counter.
#[test]
fn a_replay_refused_after_the_backend_accepted_is_reported_once() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let limits = Limits::from_config(&Config::for_backend("http://127.0.0.1:1/"));
    let (first, mut conn) = claiming(&listener, &format!("/?wscgi-resume={KEY}"), &limits);
    conn.start_session(&limits);
    answer(&mut conn, 200, &limits);
    drop(first);
    conn.on_readable(&limits, Readable::Unsure);
    assert_eq!(conn.state_name(), "parked");
    // Five messages ahead of what was sent: only the claim's check would have caught it.
    let target = format!("/?wscgi-resume={KEY}&wscgi-received=5");
    let (_second, mut claimer) = claiming(&listener, &target, &limits);
    conn.resume(claimer.take_claim().unwrap(), &limits);
    assert!(!conn.take_replay_refused());
    assert!(matches!(answer(&mut conn, 200, &limits), EventKind::Resume));
    assert_eq!(conn.close_code(), Some(CANNOT_RESUME));
    assert!(conn.take_replay_refused(), "reported");
    assert!(!conn.take_replay_refused(), "once");
}

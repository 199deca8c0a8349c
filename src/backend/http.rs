//! The HTTP backend: one POST per event through a shared keep-alive ureq agent.

use std::io::{self, Read};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use tungstenite::Bytes;
use ureq::Agent;
use ureq::http::{Extensions, HeaderValue, Uri};
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{Connector, NextTimeout};

use super::request::BackendRequest;
use super::tcp::LeanTcpConnector;
use super::wire_names;
use crate::events::BackendError;
use crate::reply::Reply;

#[derive(Debug)]
pub struct HttpBackend {
    /// One per worker thread (see [`HttpBackend::lane`]), made by its thread's first request:
    /// a worker that never sends holds none.
    lanes: Vec<OnceLock<Lane>>,
    timeout: Duration,
    url: String,
    max_body: u64,
}

/// What one worker thread sends with, its own so that threads share no pool, lock or reference
/// count: cloning a shared `Uri` or header name is an atomic increment on a cache line every
/// worker writes to.
#[derive(Debug)]
struct Lane {
    /// With a pool of its own, holding this thread's kept connection.
    agent: Agent,
    /// The backend URL parsed once: an event without a query string reuses it.
    uri: Option<Uri>,
    /// ureq's record of the protocol's header names' case, cloned into every request.
    casing: Extensions,
}

impl HttpBackend {
    /// `workers`: how many threads send; each keeps its own connection alive.
    pub fn new(url: &str, timeout: Duration, max_body: usize, workers: usize) -> HttpBackend {
        HttpBackend {
            lanes: (0..workers.max(1)).map(|_| OnceLock::new()).collect(),
            timeout,
            url: url.to_string(),
            // ureq's limit fails on the read that finds the end of a body of exactly `limit`
            // bytes; one more byte of allowance accepts bodies of exactly --max-message.
            max_body: max_body as u64 + 1,
        }
    }

    /// The calling thread's lane. ureq's pool is one list behind one lock that every request
    /// searches and every reply purges (comparing each kept connection with every other): with
    /// an agent per worker thread, that list holds the thread's own connection.
    fn lane(&self) -> &Lane {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local!(static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed));
        let lane = &self.lanes[SLOT.with(|slot| *slot) % self.lanes.len()];
        lane.get_or_init(|| {
            let agent = Agent::with_parts(config(self.timeout), connector(), DirectResolver);
            Lane {
                casing: wire_names::casing(&agent),
                agent,
                uri: self.url.parse().ok(),
            }
        })
    }

    pub fn send(&self, req: &BackendRequest<'_>) -> Result<Reply, BackendError> {
        let lane = self.lane();
        let mut builder = match (&lane.uri, req.query.is_empty()) {
            (Some(uri), true) => lane.agent.post(uri.clone()),
            _ => lane.agent.post(with_query(&self.url, req.query)),
        };
        // Names are sent as documented (`WS-Event`): see `wire_names`. A name that is
        // lowercase already (a passed client header) needs no record of its case.
        if let Some(extensions) = builder.extensions_mut() {
            *extensions = lane.casing.clone();
        }
        for (name, value) in &req.headers {
            builder = match (wire_names::known(name), builder.headers_mut()) {
                (Some(known), Some(headers)) => {
                    let value = HeaderValue::from_bytes(value)
                        .map_err(|e| BackendError::Invalid(format!("{name}: {e}")))?;
                    headers.append(known, value);
                    builder
                }
                _ if name.bytes().any(|b| b.is_ascii_uppercase()) => {
                    builder.header_raw(name, value)
                }
                _ => builder.header(name.as_ref(), value.as_ref()),
            };
        }
        if let Some(ct) = req.content_type {
            builder = builder.content_type(ct);
        }
        let response = builder.send(&req.body[..]).map_err(map_error)?;
        // The headers are read in place, before the body takes the response.
        let headers = response.headers().iter();
        let parts = headers.map(|(n, v)| (n.as_str(), v.as_bytes()));
        let mut reply = Reply::from_parts(response.status().as_u16(), parts, Bytes::new());
        let mut body = response.into_body();
        // Sized from Content-Length when there is one, so that a reply is read in one go
        // rather than grown from a small probe.
        let expected = body.content_length().unwrap_or(0).min(self.max_body);
        let mut bytes = Vec::with_capacity(expected as usize + 1);
        let mut reader = body.with_config().limit(self.max_body).reader();
        reader
            .read_to_end(&mut bytes)
            .map_err(|e| map_error(e.into()))?;
        reply.body = Bytes::from(bytes);
        Ok(reply)
    }
}

/// One lane's agent configuration.
fn config(timeout: Duration) -> ureq::config::Config {
    Agent::config_builder()
        // 4xx and 5xx are answers with a meaning; we map them ourselves.
        .http_status_as_error(false)
        // ureq would take a proxy from HTTP_PROXY/ALL_PROXY; our transport (tcp.rs) goes
        // straight to the backend, as a local service should be reached.
        .proxy(None)
        .timeout_global(Some(timeout))
        .max_redirects(0)
        // Its own kept connection, and room for one more should two threads share the lane.
        .max_idle_connections(2)
        .max_idle_connections_per_host(2)
        .user_agent(concat!("wscgi/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Plain TCP, and TLS over it for `https://` backends when built with the `tls` feature.
#[cfg(not(feature = "tls"))]
fn connector() -> impl Connector<()> {
    ().chain(LeanTcpConnector)
}

#[cfg(feature = "tls")]
fn connector() -> impl Connector<()> {
    use ureq::unversioned::transport::RustlsConnector;
    ().chain(LeanTcpConnector).chain(RustlsConnector::default())
}

/// Resolves without spawning a thread. ureq's default resolver starts a lookup thread for every
/// request once a timeout is set, even for an IP address on a kept-alive connection; that thread
/// cost more than the rest of the request. The backend is nearly always an IP literal or
/// `localhost`, answered here at once; other names use the system resolver on the worker thread.
#[derive(Debug)]
struct DirectResolver;

impl Resolver for DirectResolver {
    fn resolve(
        &self,
        uri: &Uri,
        _: &ureq::config::Config,
        _: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let authority = uri.authority().ok_or(ureq::Error::HostNotFound)?;
        let https = uri
            .scheme_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("https"));
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let mut found = self.empty();
        match host.parse::<IpAddr>() {
            Ok(ip) => found.push(SocketAddr::new(ip, port)),
            Err(_) => {
                for addr in (host, port)
                    .to_socket_addrs()
                    .map_err(ureq::Error::Io)?
                    .take(16)
                {
                    found.push(addr);
                }
            }
        }
        match found.is_empty() {
            true => Err(ureq::Error::HostNotFound),
            false => Ok(found),
        }
    }
}

/// Appends the WebSocket URL's query to the backend URL.
fn with_query(url: &str, query: &str) -> String {
    match (query.is_empty(), url.contains('?')) {
        (true, _) => url.to_string(),
        (false, true) => format!("{url}&{query}"),
        (false, false) => format!("{url}?{query}"),
    }
}

fn map_error(err: ureq::Error) -> BackendError {
    use ureq::Error as E;
    match err {
        E::Timeout(phase) => BackendError::Timeout(phase.to_string()),
        E::BodyExceedsLimit(_) => BackendError::TooLarge,
        E::HostNotFound | E::ConnectionFailed => BackendError::Unreachable(err.to_string()),
        E::Io(e) if is_connect_error(&e) => BackendError::Unreachable(e.to_string()),
        E::Io(e) if e.kind() == io::ErrorKind::TimedOut => BackendError::Timeout("read".into()),
        other => BackendError::Invalid(other.to_string()),
    }
}

fn is_connect_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::AddrNotAvailable
            | io::ErrorKind::NetworkUnreachable
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// Reads one request with a body of `body` bytes and answers it, keeping the connection;
    /// returns the request as received.
    fn answer_one(sock: &mut std::net::TcpStream, body: usize) -> String {
        let mut got = Vec::new();
        let mut buf = [0; 4096];
        while got.len() < body || !got[..got.len() - body].ends_with(b"\r\n\r\n") {
            let n = sock.read(&mut buf).unwrap();
            assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .unwrap();
        String::from_utf8(got).unwrap()
    }

    /// A listener for the test's backend, and wscgi's HTTP backend pointed at `path` on it.
    fn listening(path: &str) -> (TcpListener, HttpBackend) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}{path}", listener.local_addr().unwrap());
        (
            listener,
            HttpBackend::new(&url, Duration::from_secs(5), 1024, 1),
        )
    }

    fn message(body: &'static [u8]) -> BackendRequest<'static> {
        BackendRequest {
            query: "",
            path: "/",
            remote: None,
            headers: vec![(Cow::Borrowed("WS-Event"), Cow::Borrowed(&b"message"[..]))],
            content_type: Some(super::super::request::TEXT),
            body: Bytes::from_static(body),
        }
    }

    /// The kept connection is checked when it is taken for the next request: one the backend
    /// closed after answering is not used.
    #[test]
    fn a_kept_connection_the_backend_closed_is_not_reused() {
        let (listener, backend) = listening("/");
        let server = std::thread::spawn(move || {
            let (mut first, _) = listener.accept().unwrap();
            answer_one(&mut first, 2);
            drop(first);
            let (mut second, _) = listener.accept().unwrap();
            answer_one(&mut second, 2);
        });
        assert_eq!(&backend.send(&message(b"a1")).unwrap().body[..], b"ok");
        // The backend's FIN arrives while the connection rests in the pool.
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(&backend.send(&message(b"a2")).unwrap().body[..], b"ok");
        server.join().unwrap();
    }

    #[test]
    fn header_names_keep_their_case_on_the_wire() {
        let (listener, backend) = listening("/ws");
        let server = std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            answer_one(&mut sock, 2)
        });
        let req = BackendRequest {
            query: "room=5",
            path: "/chat",
            remote: None,
            headers: vec![
                (Cow::Borrowed("WS-Event"), Cow::Borrowed(&b"message"[..])),
                (Cow::Borrowed("WS-Seq"), Cow::Borrowed(&b"7"[..])),
                (Cow::Borrowed("cookie"), Cow::Borrowed(&b"a=1"[..])),
                (Cow::Owned("WS-Meta-user".into()), Cow::Borrowed(&b"al"[..])),
            ],
            content_type: Some(super::super::request::TEXT),
            body: Bytes::from_static(b"hi"),
        };
        let reply = backend.send(&req).unwrap();
        assert_eq!(&reply.body[..], b"ok");
        let head = server.join().unwrap();
        assert!(head.starts_with("POST /ws?room=5 HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("\r\nWS-Event: message\r\n"), "{head}");
        assert!(head.contains("\r\ncookie: a=1\r\n"), "{head}");
        assert!(head.contains("\r\nWS-Seq: 7\r\n"), "{head}");
        assert!(head.contains("\r\nWS-Meta-user: al\r\n"), "{head}");
        // Names of the protocol the request does not carry are not sent.
        assert!(!head.contains("WS-Close-Code"), "{head}");
    }

    #[test]
    fn query_is_appended() {
        assert_eq!(with_query("http://h/ws", ""), "http://h/ws");
        assert_eq!(with_query("http://h/ws", "room=5"), "http://h/ws?room=5");
        assert_eq!(
            with_query("http://h/ws?k=1", "room=5"),
            "http://h/ws?k=1&room=5"
        );
    }
}

//! Helpers for resume tests: session keys, dropping a client's TCP connection without a close
//! frame (a reset), the URLs that start and resume a session, and the push-API calls that send
//! to and look at one connection.

use std::net::TcpStream;
use std::os::fd::AsRawFd;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tungstenite::stream::MaybeTlsStream;

use super::client::Client;
use super::http_client::{HttpResponse, http};
use super::server::Wscgi;
use super::wait::wait_until;

/// A new session key as a client makes one: 128 random bits, URL-safe base64 (22 characters).
pub fn session_key() -> String {
    let mut bytes = [0u8; 16];
    let mut urandom = std::fs::File::open("/dev/urandom").expect("open /dev/urandom");
    std::io::Read::read_exact(&mut urandom, &mut bytes).expect("read /dev/urandom");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `path` (which may have a query) with `wscgi-resume=KEY`, plus `wscgi-received=N` when
/// resuming.
pub fn resume_target(path: &str, key: &str, received: Option<u64>) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    match received {
        Some(n) => format!("{path}{sep}wscgi-resume={key}&wscgi-received={n}"),
        None => format!("{path}{sep}wscgi-resume={key}"),
    }
}

/// Ends the TCP connection with a reset: no close frame, no FIN (SO_LINGER 0, then close).
pub fn reset_stream(stream: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor and a correctly sized `linger` for SO_LINGER.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
    drop(stream);
}

/// Drops a library client's connection with a reset (see [`reset_stream`]).
pub fn reset(client: Client) {
    match client.into_inner() {
        MaybeTlsStream::Plain(stream) => reset_stream(stream),
        _ => panic!("a plain TCP client"),
    }
}

/// `POST /connections/{id}` with `body` as a text message.
pub fn push_to(server: &Wscgi, id: &str, body: &[u8]) -> HttpResponse {
    let path = format!("/connections/{id}");
    let headers = [("Content-Type", "text/plain; charset=utf-8")];
    http(server.push_addr, "POST", &path, &headers, body)
}

/// `GET /connections/{id}`.
pub fn connection_info(server: &Wscgi, id: &str) -> HttpResponse {
    http(
        server.push_addr,
        "GET",
        &format!("/connections/{id}"),
        &[],
        b"",
    )
}

/// Waits (10 s at most) until the push API shows connection `id` as parked.
pub fn wait_parked(server: &Wscgi, id: &str) {
    wait_until(
        std::time::Duration::from_secs(10),
        "the session is parked",
        || {
            connection_info(server, id)
                .body_str()
                .contains("\"parked\":true")
        },
    );
}

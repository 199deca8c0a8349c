//! Blocking WebSocket client helpers built on tungstenite: [`connect`] and
//! friends (with bounded timeouts and full rejection bodies), and
//! [`recv_text`], [`recv_binary`], [`recv_close`] that skip control frames.

use std::io::{self, Read};
use std::net::{TcpStream, ToSocketAddrs};

use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::http::{HeaderName, HeaderValue, Uri};
use tungstenite::protocol::CloseFrame;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use super::describe::truncate;
use super::wait::{IO_TIMEOUT, is_timeout};
use super::wire::MAX_BODY;

/// Upper bound on frames skipped while looking for a particular one; each
/// read is itself bounded by the client's read timeout.
const MAX_SKIPPED_FRAMES: usize = 10_000;

pub type Client = WebSocket<MaybeTlsStream<TcpStream>>;

/// Connects or panics with the reason. Reads time out after 5 s.
pub fn connect(url: &str) -> Client {
    connect_with(url, &[])
}

/// Like [`connect`], with extra handshake request headers.
pub fn connect_with(url: &str, headers: &[(&str, &str)]) -> Client {
    try_connect_with(url, headers).unwrap_or_else(|e| {
        panic!(
            "WebSocket connect to {url} failed: {}",
            describe_ws_error(&e)
        )
    })
}

/// Connects, adding `headers` to the handshake request: the first occurrence
/// of a name replaces tungstenite's own value, later ones are appended. A
/// rejected handshake is `Err(Error::Http(response))` with the full body.
/// Connect, handshake and every later read/write time out after 5 s.
pub fn try_connect_with(url: &str, headers: &[(&str, &str)]) -> Result<Client, tungstenite::Error> {
    let mut request = url.into_client_request()?;
    let mut given: Vec<HeaderName> = Vec::new();
    for (name, value) in headers {
        let name =
            HeaderName::from_bytes(name.as_bytes()).map_err(tungstenite::http::Error::from)?;
        let value = HeaderValue::from_str(value).map_err(tungstenite::http::Error::from)?;
        if given.contains(&name) {
            request.headers_mut().append(name, value);
        } else {
            request.headers_mut().insert(name.clone(), value);
            given.push(name);
        }
    }
    let stream = tcp_connect(request.uri())?;
    // A second handle on the socket: the handshake consumes the stream, and
    // tungstenite keeps only the body bytes that arrived with the head.
    let spare = stream.try_clone()?;
    match tungstenite::client::client(request, MaybeTlsStream::Plain(stream)) {
        Ok((ws, _response)) => Ok(ws),
        Err(HandshakeError::Failure(tungstenite::Error::Http(mut response))) => {
            complete_rejection_body(&mut response, spare);
            Err(tungstenite::Error::Http(response))
        }
        Err(HandshakeError::Failure(e)) => Err(e),
        Err(HandshakeError::Interrupted(_)) => Err(tungstenite::Error::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no handshake response within {IO_TIMEOUT:?}"),
        ))),
    }
}

fn tcp_connect(uri: &Uri) -> io::Result<TcpStream> {
    let host = uri.host().unwrap_or("127.0.0.1");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    let addr = (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no address for {host}")))?;
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Reads the rest of a rejection's body (per its Content-Length) that
/// arrived after the head. Bounded by that length and the read timeout.
fn complete_rejection_body(
    response: &mut tungstenite::http::Response<Option<Vec<u8>>>,
    mut spare: TcpStream,
) {
    let want = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_BODY);
    let body = response.body_mut().get_or_insert_with(Vec::new);
    let mut chunk = [0u8; 8192];
    while body.len() < want {
        match spare.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&chunk[..n.min(want - body.len())]),
        }
    }
}

fn describe_ws_error(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Http(response) => {
            let body = response.body().as_deref().unwrap_or_default();
            format!(
                "handshake rejected with {}: {:?}",
                response.status(),
                String::from_utf8_lossy(body)
            )
        }
        tungstenite::Error::Io(io) if is_timeout(io) => {
            format!("timed out after {IO_TIMEOUT:?} ({io})")
        }
        other => other.to_string(),
    }
}

/// The next data message (text or binary), skipping ping/pong. Panics on a
/// close frame, an error or the read timeout.
fn recv_data(c: &mut Client) -> Message {
    for _ in 0..MAX_SKIPPED_FRAMES {
        match c.read() {
            // tungstenite queues the pong reply to a ping by itself.
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
            // A child process exiting can interrupt a read with a timeout (EINTR).
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
            Ok(msg) => return msg,
            Err(e) => panic!("waiting for a WebSocket message: {}", describe_ws_error(&e)),
        }
    }
    panic!("no data message among {MAX_SKIPPED_FRAMES} control frames");
}

/// The next data message, which must be text.
pub fn recv_text(c: &mut Client) -> String {
    match recv_data(c) {
        Message::Text(text) => text.to_string(),
        other => panic!("expected a text message, got {}", describe_message(&other)),
    }
}

/// The next data message, which must be binary.
pub fn recv_binary(c: &mut Client) -> Vec<u8> {
    match recv_data(c) {
        Message::Binary(bytes) => bytes.to_vec(),
        other => panic!(
            "expected a binary message, got {}",
            describe_message(&other)
        ),
    }
}

/// Reads until the peer's close frame, skipping any messages before it, and
/// returns its payload (None for a close frame without a code). Our close
/// reply is flushed so the server sees a complete closing handshake. Panics
/// if the connection ends without a close frame or a read times out.
pub fn recv_close(c: &mut Client) -> Option<CloseFrame> {
    for _ in 0..MAX_SKIPPED_FRAMES {
        match c.read() {
            Ok(Message::Close(frame)) => {
                let _ = c.flush();
                return frame;
            }
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("waiting for a close frame: {}", describe_ws_error(&e)),
        }
    }
    panic!("no close frame among {MAX_SKIPPED_FRAMES} messages");
}

fn describe_message(m: &Message) -> String {
    match m {
        Message::Text(t) => format!("text {:?}", truncate(t.as_str(), 200)),
        Message::Binary(b) => format!("binary ({} bytes)", b.len()),
        Message::Close(Some(f)) => {
            format!("close frame {} {:?}", u16::from(f.code), f.reason.as_str())
        }
        Message::Close(None) => "close frame without code".to_string(),
        other => format!("{other:?}"),
    }
}

//! TLS for the tests of wscgi's `wss://` and `https://` (feature `tls`): certificates made by
//! the real `openssl` program, and a real rustls client (blocking, with timeouts) that accepts
//! any certificate but checks its signatures and remembers its SHA-1 fingerprint, so tests can
//! tell which certificate the server presented.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{self, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, StreamOwned};
use sha1::{Digest, Sha1};
use tungstenite::{Message, WebSocket};

// Each test binary uses only some of these; the rest would warn.
#[allow(unused_imports)]
pub use rustls::ProtocolVersion;
#[allow(unused_imports)]
pub use rustls::version::{TLS12, TLS13};

pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;
pub type Wss = WebSocket<TlsStream>;

/// Every blocking read and write of these clients gives up after this long.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A self-signed certificate for `localhost` (EC P-256, or RSA 2048 with `rsa`), valid one day,
/// written as `NAME.crt` and `NAME.key` into `dir`. Panics if openssl fails.
pub fn make_cert(dir: &Path, name: &str, rsa: bool) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let mut cmd = Command::new("openssl");
    cmd.args([
        "req",
        "-x509",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
    ]);
    match rsa {
        true => cmd.args(["-newkey", "rsa:2048"]),
        false => cmd.args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
    };
    let out = cmd
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// The certificate's SHA-1 fingerprint as openssl itself prints it (`AB:CD:...`).
pub fn openssl_fingerprint(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha1", "-in"])
        .arg(cert)
        .output()
        .expect("run openssl x509");
    let text = String::from_utf8_lossy(&out.stdout);
    let (_, hex) = text
        .trim()
        .split_once('=')
        .expect("openssl prints NAME=HEX");
    hex.to_string()
}

/// Accepts the server's certificate whatever it is, after checking the handshake signature made
/// with it; keeps its fingerprint.
#[derive(Debug)]
struct Remember {
    provider: Arc<CryptoProvider>,
    seen: Mutex<Option<String>>,
}

impl ServerCertVerifier for Remember {
    fn verify_server_cert(
        &self,
        cert: &CertificateDer,
        _: &[CertificateDer],
        _: &ServerName,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.seen.lock().unwrap() = Some(fingerprint(cert));
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn fingerprint(cert: &CertificateDer) -> String {
    let hex: Vec<String> = Sha1::digest(cert.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    hex.join(":")
}

/// A finished TLS handshake with `addr`, offering `versions` and ALPN `h2, http/1.1` (as
/// browsers do). Also returns the fingerprint of the certificate the server presented.
pub fn tls_connect(
    addr: SocketAddr,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> io::Result<(TlsStream, String)> {
    let provider = Arc::new(crypto::ring::default_provider());
    let verifier = Arc::new(Remember {
        provider: provider.clone(),
        seen: Mutex::new(None),
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let name = ServerName::try_from("localhost").expect("a valid name");
    let conn = ClientConnection::new(Arc::new(config), name).map_err(io::Error::other)?;
    let sock = TcpStream::connect(addr)?;
    sock.set_read_timeout(Some(IO_TIMEOUT))?;
    sock.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut stream = StreamOwned::new(conn, sock);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    let seen = verifier.seen.lock().unwrap().take();
    Ok((stream, seen.expect("the server presented a certificate")))
}

/// A `wss://` client on `path` after a TLS handshake offering `versions`; panics on failure.
/// Also returns the certificate's fingerprint.
pub fn wss_connect(
    addr: SocketAddr,
    path: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> (Wss, String) {
    let (stream, seen) = tls_connect(addr, versions).expect("TLS handshake with wscgi");
    let url = format!("wss://localhost:{}{path}", addr.port());
    let (ws, response) = tungstenite::client::client(url, stream).expect("WebSocket handshake");
    assert_eq!(response.status(), 101);
    (ws, seen)
}

/// Sends `text` and expects it back (pings and pongs in between are skipped).
pub fn echo(ws: &mut Wss, text: &str) {
    ws.send(Message::text(text)).expect("send over wss");
    loop {
        match ws.read().expect("read over wss") {
            Message::Text(got) => return assert_eq!(got.as_str(), text, "the echo"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected the echo, got {other:?}"),
        }
    }
}

/// The code of the server's close frame (None: a frame without one); panics on anything but
/// a close frame and messages before it.
pub fn recv_close_code(ws: &mut Wss) -> Option<u16> {
    loop {
        match ws.read() {
            Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
            Ok(_) => continue,
            Err(e) => panic!("expected a close frame over TLS, got {e}"),
        }
    }
}

/// The negotiated TLS version and ALPN protocol of a client.
pub fn negotiated(ws: &Wss) -> (Option<ProtocolVersion>, Option<Vec<u8>>) {
    let conn = &ws.get_ref().conn;
    (
        conn.protocol_version(),
        conn.alpn_protocol().map(<[u8]>::to_vec),
    )
}

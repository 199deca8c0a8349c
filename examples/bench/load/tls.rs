//! `wss://` for the load generator: with `--features tls` (the feature that also gives wscgi its
//! TLS), each connection gets a rustls client under its socket wrapper (`TsStream`), driven
//! non-blocking like the socket itself. The server's certificate is not checked (the bench
//! makes a self-signed one), and sessions are never resumed, so every handshake measured is a
//! full one. Without the feature, `wss://` URLs are refused when the options are read.

use std::io::{self, Read, Write};

#[cfg(feature = "tls")]
pub use with_tls::{Client, Session};
#[cfg(not(feature = "tls"))]
pub use without_tls::{Client, Session};

#[cfg(feature = "tls")]
mod with_tls {
    use std::sync::Arc;

    use rustls::client::Resumption;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};

    /// The configuration every connection's session is made from.
    pub struct Client(Arc<ClientConfig>);

    /// One connection's TLS state.
    pub type Session = Box<ClientConnection>;

    impl Client {
        pub fn new() -> Result<Client, String> {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCert))
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            config.resumption = Resumption::disabled();
            Ok(Client(Arc::new(config)))
        }

        pub fn session(&self, host: &str) -> Result<Session, String> {
            let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
            let name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
            let conn = ClientConnection::new(self.0.clone(), name).map_err(|e| e.to_string())?;
            Ok(Box::new(conn))
        }
    }

    /// Accepts any certificate: the bench measures the server's cost, not the trust chain.
    #[derive(Debug)]
    struct AnyCert;

    impl ServerCertVerifier for AnyCert {
        fn verify_server_cert(
            &self,
            _: &CertificateDer,
            _: &[CertificateDer],
            _: &ServerName,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }

        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            rustls::crypto::ring::default_provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
}

#[cfg(not(feature = "tls"))]
mod without_tls {
    /// Never made: `new` refuses.
    pub enum Client {}
    /// Never made, so every use of one is unreachable.
    pub enum Session {}

    impl Client {
        pub fn new() -> Result<Client, String> {
            Err("wss:// needs bench-load built with --features tls".into())
        }

        pub fn session(&self, _: &str) -> Result<Session, String> {
            match *self {}
        }
    }
}

/// Plaintext from `session` into `buf`, reading `sock` as needed; `WouldBlock` when the socket
/// has no more, `Ok(0)` at the end.
#[cfg(feature = "tls")]
pub fn read(
    session: &mut Session,
    sock: &mut (impl Read + Write),
    buf: &mut [u8],
) -> io::Result<usize> {
    loop {
        match session.reader().read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        if session.read_tls(sock)? == 0 {
            return Ok(0);
        }
        session
            .process_new_packets()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        // Handshake flights, and data written before the handshake was done.
        send(session, sock)?;
    }
}

/// Takes `buf` (rustls buffers it) and writes what the socket takes.
#[cfg(feature = "tls")]
pub fn write(session: &mut Session, sock: &mut impl Write, buf: &[u8]) -> io::Result<usize> {
    let n = session.writer().write(buf)?;
    send(session, sock)?;
    Ok(n)
}

/// Writes every record rustls holds; `WouldBlock` when the socket is full.
#[cfg(feature = "tls")]
pub fn flush(session: &mut Session, sock: &mut impl Write) -> io::Result<()> {
    while session.wants_write() {
        session.write_tls(sock)?;
    }
    Ok(())
}

/// [`flush`], where a full socket is fine: the rest goes at the next write or flush.
#[cfg(feature = "tls")]
fn send(session: &mut Session, sock: &mut impl Write) -> io::Result<()> {
    match flush(session, sock) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        other => other,
    }
}

#[cfg(not(feature = "tls"))]
pub fn read(session: &mut Session, _: &mut (impl Read + Write), _: &mut [u8]) -> io::Result<usize> {
    match *session {}
}

#[cfg(not(feature = "tls"))]
pub fn write(session: &mut Session, _: &mut impl Write, _: &[u8]) -> io::Result<usize> {
    match *session {}
}

#[cfg(not(feature = "tls"))]
pub fn flush(session: &mut Session, _: &mut impl Write) -> io::Result<()> {
    match *session {}
}

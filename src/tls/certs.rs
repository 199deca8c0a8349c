//! The server's certificate and key (`--tls-cert`, `--tls-key`): loaded at startup, loaded
//! again on SIGHUP (Let's Encrypt renewals). New connections get whatever is current; open ones
//! keep the one they started with. A reload that fails keeps the current one.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rustls::ServerConfig;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha1::{Digest, Sha1};

/// The files and the configuration built from them.
pub struct Certs {
    cert: PathBuf,
    key: PathBuf,
    current: Mutex<Loaded>,
}

#[derive(Clone)]
struct Loaded {
    config: Arc<ServerConfig>,
    fingerprint: String,
}

/// Why the certificate or key could not be used.
#[derive(Debug)]
pub enum CertError {
    Read {
        path: PathBuf,
        source: io::Error,
    },
    /// Not PEM, or a PEM block that does not decode.
    Pem {
        path: PathBuf,
        error: pem::Error,
    },
    /// The certificate file holds no `CERTIFICATE` block.
    NoCertificate(PathBuf),
    /// rustls refused the pair (an unsupported key, or a key that does not fit the certificate).
    Rejected(rustls::Error),
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            CertError::Pem { path, error } => {
                write!(f, "{}: not a usable PEM file: {error}", path.display())
            }
            CertError::NoCertificate(path) => {
                write!(f, "{}: no CERTIFICATE in the file", path.display())
            }
            CertError::Rejected(e) => write!(f, "certificate and key refused: {e}"),
        }
    }
}

impl std::error::Error for CertError {}

impl Certs {
    pub fn load(cert: &Path, key: &Path) -> Result<Certs, CertError> {
        let loaded = load(cert, key)?;
        Ok(Certs {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: Mutex::new(loaded),
        })
    }

    /// The configuration for a new connection.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.lock().config.clone()
    }

    /// SHA-1 fingerprint of the current certificate, as `openssl x509 -fingerprint` shows it.
    pub fn fingerprint(&self) -> String {
        self.lock().fingerprint.clone()
    }

    /// Loads the files again; on success new connections get the new certificate. Returns its
    /// fingerprint; on failure the current one stays.
    pub fn reload(&self) -> Result<String, CertError> {
        let loaded = load(&self.cert, &self.key)?;
        let fingerprint = loaded.fingerprint.clone();
        *self.lock() = loaded;
        Ok(fingerprint)
    }

    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Loaded> {
        // The guarded value is replaced whole, never left half-written.
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn load(cert_path: &Path, key_path: &Path) -> Result<Loaded, CertError> {
    let read = |path: &Path| {
        read_small(path).map_err(|source| CertError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let pem_error = |path: &Path| {
        let path = path.to_path_buf();
        move |error| CertError::Pem { path, error }
    };
    let chain = CertificateDer::pem_slice_iter(&read(cert_path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error(cert_path))?;
    let key = PrivateKeyDer::from_pem_slice(&read(key_path)?).map_err(pem_error(key_path))?;
    let Some(leaf) = chain.first() else {
        return Err(CertError::NoCertificate(cert_path.to_path_buf()));
    };
    let fingerprint = fingerprint(leaf);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // rustls' safe defaults: TLS 1.3 and 1.2, its default cipher suites and key exchanges.
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(CertError::Rejected)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(CertError::Rejected)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Loaded {
        config: Arc::new(config),
        fingerprint,
    })
}

/// PEM files of a certificate chain and key are a few KiB; a path that names something else
/// (a device, a huge file) is refused rather than read into memory.
const MAX_FILE: u64 = 1024 * 1024;

fn read_small(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "larger than 1 MiB, not a PEM certificate or key",
        ));
    }
    Ok(bytes)
}

fn fingerprint(cert: &CertificateDer) -> String {
    let digest = Sha1::digest(cert.as_ref());
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

//! Unguessable identifiers from the operating system's random source.
//!
//! Connection ids and the boot id are 128 random bits, written as URL-safe base64 (22 characters),
//! so a client or a third party can never guess another connection's id, and ids are never
//! reused within or across runs.

use std::fs::File;
use std::io::{self, Read};
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// `/dev/urandom` stays open for the life of the process: one read per id, no reopen.
static URANDOM: OnceLock<io::Result<File>> = OnceLock::new();

/// Fills `buf` from the OS random source.
pub fn fill(buf: &mut [u8]) -> io::Result<()> {
    match URANDOM.get_or_init(|| File::open("/dev/urandom")) {
        Ok(file) => (&*file).read_exact(buf),
        Err(e) => Err(io::Error::new(e.kind(), format!("/dev/urandom: {e}"))),
    }
}

/// A new 128-bit random id as URL-safe text.
pub fn new_id() -> io::Result<String> {
    let mut bytes = [0u8; 16];
    fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_url_safe_and_distinct() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }
}

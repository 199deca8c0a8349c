//! `--secret`: every backend request carries `WS-Timestamp` and `WS-Signature`, so a backend
//! that others can reach can reject forged events.
//!
//! `WS-Signature` is the lowercase hex HMAC-SHA1 (RFC 2104) of
//! `"{timestamp}\n{connection id}\n{event}\n{seq}\n"` followed by the request body, keyed with
//! the secret. HMAC-SHA1 needs only the `sha1` crate wscgi already uses for the handshake, and
//! is still a sound MAC (SHA-1's collision weakness does not carry over to HMAC).

use sha1::{Digest, Sha1};

const BLOCK: usize = 64;

pub fn hmac_sha1(key: &[u8], message: &[&[u8]]) -> [u8; 20] {
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..20].copy_from_slice(&Sha1::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let mut inner = Sha1::new();
    inner.update(pad(0x36));
    for part in message {
        inner.update(part);
    }
    let mut outer = Sha1::new();
    outer.update(pad(0x5c));
    outer.update(inner.finalize());
    let mut out = [0u8; 20];
    out.copy_from_slice(&outer.finalize());
    out
}

/// The `WS-Signature` value for one request.
pub fn signature(
    secret: &str,
    timestamp: u64,
    id: &str,
    event: &str,
    seq: &str,
    body: &[u8],
) -> String {
    let head = format!("{timestamp}\n{id}\n{event}\n{seq}\n");
    let mac = hmac_sha1(secret.as_bytes(), &[head.as_bytes(), body]);
    mac.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn rfc_2202_vectors() {
        assert_eq!(
            hex(&hmac_sha1(&[0x0b; 20], &[b"Hi There"])),
            "b617318655057264e28bc0b6fb378c8ef146be00"
        );
        assert_eq!(
            hex(&hmac_sha1(b"Jefe", &[b"what do ya want ", b"for nothing?"])),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        let long_key = [0xaa; 80];
        let msg = b"Test Using Larger Than Block-Size Key - Hash Key First";
        assert_eq!(
            hex(&hmac_sha1(&long_key, &[msg])),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112"
        );
    }

    #[test]
    fn signature_covers_every_field() {
        let base = signature("k", 1, "id", "message", "3", b"hi");
        assert_eq!(base.len(), 40);
        assert_ne!(base, signature("k", 2, "id", "message", "3", b"hi"));
        assert_ne!(base, signature("k", 1, "id", "message", "4", b"hi"));
        assert_ne!(base, signature("k", 1, "id", "message", "3", b"ho"));
        assert_ne!(base, signature("j", 1, "id", "message", "3", b"hi"));
    }
}

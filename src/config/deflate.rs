//! What the permessage-deflate options (`--no-deflate`, `--deflate-context`, `--deflate-min`,
//! `--deflate-level`) set, and their defaults.

/// How permessage-deflate (RFC 7692) is offered to clients that ask for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deflate {
    /// `--deflate-context`: keep compression state between messages where the client allows.
    pub context_takeover: bool,
    /// `--deflate-min`: shorter outgoing messages are sent uncompressed.
    pub min_size: usize,
    /// `--deflate-level`, 1 (fastest) to 9 (smallest).
    pub level: u32,
}

impl Default for Deflate {
    fn default() -> Deflate {
        Deflate {
            context_takeover: false,
            min_size: 128,
            level: 1,
        }
    }
}

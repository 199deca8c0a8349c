//! What the permessage-deflate options (`--no-deflate`, `--deflate-context`, `--deflate-min`,
//! `--deflate-level`) set, and their defaults.

use super::error::CliError;
use super::sources::Sources;
use super::values::{count, size};

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

/// The options' permessage-deflate settings; `None` with `--no-deflate`.
pub(super) fn deflate(s: &Sources) -> Result<Option<Deflate>, CliError> {
    let d = Deflate::default();
    let settings = Deflate {
        context_takeover: s.flag("deflate-context")?,
        min_size: s.get("deflate-min", d.min_size, |v| size(v, 0))?,
        level: s.get("deflate-level", d.level, |v| count(v, 1, 9))?,
    };
    Ok((!s.flag("no-deflate")?).then_some(settings))
}

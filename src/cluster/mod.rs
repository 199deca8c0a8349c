//! Several wscgi instances as one, through Redis (`--redis`, cargo feature `redis`).
//!
//! - [`wire`]: the JSON messages instances (and backends) exchange; pure, always built, fuzzed.
//! - `link`: the Redis connections, each on its own thread; what they hear comes back to the
//!   reactor through the bell, like backend results, so the reactor never waits on Redis.
//! - `calls`: push-API calls waiting for other instances (forwarded pushes, publishes waiting
//!   for Redis's count, presence questions to every instance), each with its deadline.
//! - `node`: this instance's side of the cluster on the reactor: its tag, the link's health
//!   (logged once per outage), counters.
//!
//! Connection ids of a clustered instance start with its node tag, so a push to an id goes to
//! the one instance that holds it. Presence is asked of every instance when it is wanted, not
//! copied into Redis: an instance that dies takes its members with it.

#[cfg(feature = "redis")]
pub mod calls;
#[cfg(feature = "redis")]
pub mod link;
#[cfg(feature = "redis")]
pub mod node;
pub mod wire;

use std::io;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::random;

/// A node tag: 48 random bits as URL-safe base64. It names an instance in connection ids and
/// Redis names; its boot id stays its own.
pub const TAG_LEN: usize = 8;

/// A connection id without a tag is 22 characters (see `random::new_id`).
const PLAIN_ID_LEN: usize = 22;

pub fn new_tag() -> io::Result<String> {
    let mut bytes = [0u8; 6];
    random::fill(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The tag of the instance that holds connection `id`, if `id` has the clustered form.
pub fn node_of(id: &str) -> Option<&str> {
    match id.len() == TAG_LEN + PLAIN_ID_LEN && id.is_ascii() {
        true => id.get(..TAG_LEN),
        false => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_their_instance() {
        let tag = new_tag().unwrap();
        assert_eq!(tag.len(), TAG_LEN);
        let id = format!("{tag}{}", random::new_id().unwrap());
        assert_eq!(node_of(&id), Some(tag.as_str()));
        assert_eq!(node_of(&random::new_id().unwrap()), None, "unclustered id");
        assert_eq!(node_of(&format!("é{}", "x".repeat(28))), None, "not ASCII");
    }
}

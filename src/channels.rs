//! Channel membership: which connections are in which named channel.
//!
//! Kept in both directions so that publishing walks one channel's members and closing a
//! connection removes it from all of its channels without scanning every channel. Empty
//! channels disappear.

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::conn_id::ConnKey;

/// Most channels one connection may be in.
pub const MAX_PER_CONNECTION: usize = 64;
/// Longest channel name, in bytes.
pub const MAX_NAME: usize = 128;

/// Why a subscription was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscribeError {
    /// Empty, too long, or not printable ASCII without `,` `/` and spaces.
    InvalidName,
    /// The connection is already in [`MAX_PER_CONNECTION`] channels.
    TooMany,
}

impl fmt::Display for SubscribeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscribeError::InvalidName => write!(
                f,
                "invalid channel name (1-{MAX_NAME} printable ASCII characters, no space, ',' or '/')"
            ),
            SubscribeError::TooMany => {
                write!(f, "connection is already in {MAX_PER_CONNECTION} channels")
            }
        }
    }
}

impl std::error::Error for SubscribeError {}

/// Names travel in comma-separated headers and in URL paths, so `,` and `/` are excluded.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b',' && b != b'/')
}

#[derive(Debug, Default)]
pub struct Channels {
    members: HashMap<String, HashSet<ConnKey>>,
    joined: HashMap<ConnKey, Vec<String>>,
}

impl Channels {
    /// Adds `key` to `name`; joining a channel twice is not an error.
    pub fn subscribe(&mut self, name: &str, key: ConnKey) -> Result<(), SubscribeError> {
        if !valid_name(name) {
            return Err(SubscribeError::InvalidName);
        }
        let joined = self.joined.entry(key).or_default();
        if joined.iter().any(|n| n == name) {
            return Ok(());
        }
        if joined.len() >= MAX_PER_CONNECTION {
            return Err(SubscribeError::TooMany);
        }
        joined.push(name.to_string());
        self.members
            .entry(name.to_string())
            .or_default()
            .insert(key);
        Ok(())
    }

    /// Removes `key` from `name`; returns whether it was a member.
    pub fn unsubscribe(&mut self, name: &str, key: ConnKey) -> bool {
        let Some(joined) = self.joined.get_mut(&key) else {
            return false;
        };
        let Some(pos) = joined.iter().position(|n| n == name) else {
            return false;
        };
        joined.swap_remove(pos);
        if joined.is_empty() {
            self.joined.remove(&key);
        }
        self.remove_member(name, key);
        true
    }

    /// Removes `key` from every channel it is in.
    pub fn leave_all(&mut self, key: ConnKey) {
        for name in self.joined.remove(&key).unwrap_or_default() {
            self.remove_member(&name, key);
        }
    }

    fn remove_member(&mut self, name: &str, key: ConnKey) {
        if let Some(set) = self.members.get_mut(name) {
            set.remove(&key);
            if set.is_empty() {
                self.members.remove(name);
            }
        }
    }

    pub fn members(&self, name: &str) -> Option<&HashSet<ConnKey>> {
        self.members.get(name)
    }

    /// Every channel with its member count, sorted by name.
    pub fn list(&self) -> Vec<(&str, usize)> {
        let mut all: Vec<(&str, usize)> = self
            .members
            .iter()
            .map(|(n, m)| (n.as_str(), m.len()))
            .collect();
        all.sort_unstable();
        all
    }

    pub fn of(&self, key: ConnKey) -> &[String] {
        self.joined.get(&key).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> ConnKey {
        ConnKey {
            index: i,
            generation: i as u64,
        }
    }

    #[test]
    fn subscribe_unsubscribe_and_cleanup() {
        let mut c = Channels::default();
        c.subscribe("room", key(1)).unwrap();
        c.subscribe("room", key(1)).unwrap();
        c.subscribe("room", key(2)).unwrap();
        c.subscribe("other", key(1)).unwrap();
        assert_eq!(c.list(), vec![("other", 1), ("room", 2)]);
        assert!(c.unsubscribe("room", key(2)));
        assert!(!c.unsubscribe("room", key(2)));
        c.leave_all(key(1));
        assert!(c.list().is_empty(), "empty channels disappear");
        assert!(c.of(key(1)).is_empty());
    }

    #[test]
    fn names_and_bounds() {
        let mut c = Channels::default();
        for bad in ["", "a b", "a,b", "a/b", "é", &"x".repeat(MAX_NAME + 1)] {
            assert_eq!(
                c.subscribe(bad, key(1)),
                Err(SubscribeError::InvalidName),
                "{bad:?}"
            );
        }
        for i in 0..MAX_PER_CONNECTION {
            c.subscribe(&format!("c{i}"), key(1)).unwrap();
        }
        assert_eq!(
            c.subscribe("one-more", key(1)),
            Err(SubscribeError::TooMany)
        );
    }
}

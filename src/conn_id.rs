//! Connection keys: a slab index plus a generation.
//!
//! Slab slots are reused as soon as a connection is removed. A worker's result for an old
//! connection may arrive after its slot went to a new one; the generation makes such a key
//! stale, so the result is dropped instead of reaching the wrong client.

/// Identifies one connection in the server's slab for its whole life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnKey {
    pub index: usize,
    pub generation: u64,
}

/// Hands out generations; never repeats within a run.
#[derive(Debug, Default)]
pub struct Generations {
    next: u64,
}

impl Generations {
    pub fn next_generation(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}

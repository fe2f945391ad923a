//! Keys whose items a queued reply still references. memcached keeps a
//! reference to every item an `mg` answered with until that reply is
//! written out; an `incr`, `decr` or `ma` on such an item cannot rewrite
//! it in place and makes a new item instead (no space padding, counted in
//! `total_items`). Replies are written out at memcached's flush points
//! (see [`crate::conn`]), where the pins are dropped.

/// The pinned keys of one connection, in one flat buffer (no allocation
/// per pin once it has grown).
#[derive(Default)]
pub struct Pins {
    keys: Vec<u8>,
    ends: Vec<usize>,
}

impl Pins {
    /// A reply now references `key`'s item.
    pub fn pin(&mut self, key: &[u8]) {
        self.keys.extend_from_slice(key);
        self.ends.push(self.keys.len());
    }

    /// Whether a queued reply references `key`'s item.
    pub fn contains(&self, key: &[u8]) -> bool {
        let mut start = 0;
        self.ends.iter().any(|&end| {
            let hit = &self.keys[start..end] == key;
            start = end;
            hit
        })
    }

    /// The replies were written out: nothing is referenced any more.
    pub fn clear(&mut self) {
        self.keys.clear();
        self.ends.clear();
    }
}

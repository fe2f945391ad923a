//! `GenSlab`: a slab whose keys carry a generation.
//!
//! A key is `generation << 32 | index`. A removed key never finds the newer
//! value that reuses its slot, so an event or a closure that outlived the
//! thing it was meant for is dropped instead of reaching a stranger. Used
//! for the loop's channel table, its object table and the io_uring
//! driver's in-flight operations.

use slab::Slab;

/// Generation-checked slab (loop-thread data; not synchronised).
pub(crate) struct GenSlab<T> {
    slots: Slab<(u64, T)>,
    generation: u32,
}

impl<T> Default for GenSlab<T> {
    fn default() -> Self {
        GenSlab {
            slots: Slab::new(),
            generation: 0,
        }
    }
}

/// The slot index of a key.
#[inline]
pub(crate) fn index_of(key: u64) -> usize {
    (key & 0xffff_ffff) as usize
}

impl<T> GenSlab<T> {
    /// Stores `value` under a fresh key. Generation 0 is never handed out,
    /// so no key equals 0 or a reserved key with index `u32::MAX`.
    pub(crate) fn insert_with(&mut self, value: impl FnOnce(u64) -> T) -> u64 {
        let g = self.generation.wrapping_add(1).max(1);
        self.generation = g;
        let entry = self.slots.vacant_entry();
        let key = ((g as u64) << 32) | entry.key() as u64;
        entry.insert((key, value(key)));
        key
    }

    /// Stores `value` under a fresh key.
    pub(crate) fn insert(&mut self, value: T) -> u64 {
        self.insert_with(|_| value)
    }

    /// The live value of `key`.
    #[inline]
    pub(crate) fn get(&self, key: u64) -> Option<&T> {
        match self.slots.get(index_of(key)) {
            Some((k, v)) if *k == key => Some(v),
            _ => None,
        }
    }

    /// The live value of `key`, mutably.
    #[inline]
    pub(crate) fn get_mut(&mut self, key: u64) -> Option<&mut T> {
        match self.slots.get_mut(index_of(key)) {
            Some((k, v)) if *k == key => Some(v),
            _ => None,
        }
    }

    /// Removes and returns the value of `key` if it is live.
    pub(crate) fn remove(&mut self, key: u64) -> Option<T> {
        self.get(key)?;
        Some(self.slots.remove(index_of(key)).1)
    }

    /// True when nothing is stored.
    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The live values.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> + '_ {
        self.slots.iter().map(|(_, (_, v))| v)
    }

    /// The live keys.
    pub(crate) fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.slots.iter().map(|(_, (k, _))| *k)
    }

    /// Number of live values.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::GenSlab;

    #[test]
    fn a_removed_key_never_finds_the_slot_reuser() {
        let mut s = GenSlab::default();
        let a = s.insert("a");
        assert_eq!(s.remove(a), Some("a"));
        let b = s.insert("b");
        assert_eq!(super::index_of(a), super::index_of(b));
        assert_eq!(s.get(a), None);
        assert_eq!(s.remove(a), None);
        assert_eq!(s.get(b), Some(&"b"));
        assert_ne!(a >> 32, 0);
    }
}

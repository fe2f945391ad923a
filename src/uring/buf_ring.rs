//! A provided-buffer ring: receive buffers the kernel picks from for
//! multishot `RECV`, handed back as soon as their bytes are copied out.

use io_uring::types::BufRingEntry;
use io_uring::IoUring;
use std::alloc::{alloc, alloc_zeroed, dealloc, Layout};
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

/// The buffer group id of the ring (one ring per loop).
pub(crate) const GROUP: u16 = 0;

/// Receive buffers registered with one io_uring instance.
///
/// Memory layout: `entries` ring slots (page-aligned, shared with the
/// kernel) and `count * size` bytes of buffers. Both stay allocated until
/// the ring is unregistered or the io_uring instance is gone; `Uring`'s
/// `Drop` guarantees that by draining all operations first.
pub(crate) struct BufRing {
    ring: *mut BufRingEntry,
    ring_layout: Layout,
    bufs: *mut u8,
    bufs_layout: Layout,
    count: u16,
    size: u32,
    /// Buffers in circulation: ids `0..provided`. The kernel takes buffers
    /// in ring order, so every buffer provided is cycled through and the
    /// copies go to memory that many buffers wide; starting small and
    /// growing only when a receive runs out keeps that memory in cache
    /// (and out of RSS) when few connections are busy at once.
    provided: u16,
    /// Our copy of the tail (the kernel reads the shared one).
    tail: u16,
}

impl BufRing {
    /// Allocates `count` buffers of `size` bytes (count a power of two),
    /// registers them with `ring` as group [`GROUP`] and provides the first
    /// `initial` of them (see [`grow`](Self::grow) for the rest).
    pub(crate) fn new(ring: &IoUring, count: u16, size: u32, initial: u16) -> io::Result<BufRing> {
        assert!(count.is_power_of_two() && size > 0);
        let ring_layout =
            Layout::from_size_align(count as usize * std::mem::size_of::<BufRingEntry>(), 4096)
                .map_err(io::Error::other)?;
        let bufs_layout = Layout::from_size_align(count as usize * size as usize, 64)
            .map_err(io::Error::other)?;
        // SAFETY: both layouts have a non-zero size. The buffers are not
        // zeroed (megabytes per loop): only bytes the kernel wrote, as a
        // completion reports, are ever read.
        let (entries, bufs) = unsafe { (alloc_zeroed(ring_layout), alloc(bufs_layout)) };
        if entries.is_null() || bufs.is_null() {
            // SAFETY: freeing only what was allocated above with its layout.
            unsafe {
                if !entries.is_null() {
                    dealloc(entries, ring_layout);
                }
                if !bufs.is_null() {
                    dealloc(bufs, bufs_layout);
                }
            }
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        }
        let mut br = BufRing {
            ring: entries.cast(),
            ring_layout,
            bufs,
            bufs_layout,
            count,
            size,
            provided: initial.clamp(1, count),
            tail: 0,
        };
        // SAFETY: the ring memory is page-aligned, holds `count` entries and
        // lives until `self` is dropped, which happens only after the
        // io_uring instance is drained and closed (see `Uring::drop`).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(br.ring as u64, count, GROUP, 0)?;
        }
        for bid in 0..br.provided {
            br.push(bid);
        }
        br.publish();
        Ok(br)
    }

    /// A ring with no memory, left behind when the real one is leaked.
    pub(crate) fn empty() -> BufRing {
        BufRing {
            ring: std::ptr::null_mut(),
            ring_layout: Layout::new::<u8>(),
            bufs: std::ptr::null_mut(),
            bufs_layout: Layout::new::<u8>(),
            count: 1,
            size: 1,
            provided: 1,
            tail: 0,
        }
    }

    /// Buffers in circulation.
    #[cfg(test)]
    pub(crate) fn provided(&self) -> u16 {
        self.provided
    }

    /// Doubles the buffers in circulation (up to `count`), after a receive
    /// ended for want of one; false when all are already provided.
    pub(crate) fn grow(&mut self) -> bool {
        if self.ring.is_null() || self.provided == self.count {
            return false;
        }
        let more = self.provided.min(self.count - self.provided);
        for bid in self.provided..self.provided + more {
            self.push(bid);
        }
        self.provided += more;
        self.publish();
        true
    }

    /// The first `len` bytes of buffer `bid`, which the kernel filled.
    ///
    /// The caller must hold `bid` from a completion and not have recycled it yet.
    pub(crate) fn bytes(&self, bid: u16, len: usize) -> &[u8] {
        let bid = bid.min(self.provided - 1) as usize;
        let len = len.min(self.size as usize);
        // SAFETY: `bid` came from a completion, so the kernel has finished
        // writing this buffer and will not touch it until it is recycled;
        // the range is inside the allocation (both clamped above).
        unsafe { std::slice::from_raw_parts(self.bufs.add(bid * self.size as usize), len) }
    }

    /// Hands buffer `bid` back to the kernel.
    pub(crate) fn recycle(&mut self, bid: u16) {
        self.push(bid.min(self.provided - 1));
        self.publish();
    }

    fn push(&mut self, bid: u16) {
        let idx = (self.tail & (self.count - 1)) as usize;
        // SAFETY: `idx < count`, inside the ring allocation; the kernel only
        // reads entries between its head and the published tail, and this
        // one is past the tail until `publish`.
        let entry = unsafe { &mut *self.ring.add(idx) };
        // SAFETY: `bid < provided <= count`, so the address is inside the
        // buffers. At most `provided` ids circulate, so the ring (`count`
        // entries) never holds more entries than it has room for.
        entry.set_addr(unsafe { self.bufs.add(bid as usize * self.size as usize) } as u64);
        entry.set_len(self.size);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail field lives in the first entry of the ring
        // allocation and is only ever written by us; the kernel reads it
        // with acquire semantics, so a release store publishes the entries.
        unsafe {
            let tail = BufRingEntry::tail(self.ring) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        if self.ring.is_null() {
            return;
        }
        // SAFETY: allocated in `new` with these layouts; the owner drops the
        // io_uring instance (which unregisters the group) before this.
        unsafe {
            dealloc(self.ring.cast(), self.ring_layout);
            dealloc(self.bufs, self.bufs_layout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provides_few_buffers_first_and_doubles_up_to_the_count() {
        let Ok(ring) = IoUring::new(8) else {
            eprintln!("skipped: io_uring is not available here");
            return;
        };
        let Ok(mut br) = BufRing::new(&ring, 16, 64, 2) else {
            eprintln!("skipped: provided-buffer rings are not available here");
            return;
        };
        assert_eq!(br.provided(), 2);
        let mut seen = vec![br.provided()];
        while br.grow() {
            seen.push(br.provided());
        }
        assert_eq!(seen, [2, 4, 8, 16]);
        // The shared tail counts every buffer handed to the kernel.
        assert_eq!(br.tail, 16);
        assert!(!br.grow());
        drop(ring);
    }
}

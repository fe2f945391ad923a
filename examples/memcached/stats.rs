//! Counters for `stats`. Each I/O thread bumps its own block (single
//! writer: a plain load and store, no locked instruction, no shared cache
//! line); `stats` sums the blocks. `stats reset` records a baseline
//! instead of writing into other threads' counters.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

macro_rules! counters {
    ($($name:ident),* $(,)?) => {
        /// One thread's counters.
        #[derive(Default)]
        pub struct Counters { $(pub $name: AtomicU64,)* }

        /// A sum of counters, in memcached's `stats` order.
        #[derive(Clone, Copy, Default)]
        pub struct Snapshot { $(pub $name: u64,)* }

        impl Counters {
            fn add_to(&self, s: &mut Snapshot) {
                $(s.$name = s.$name.wrapping_add(self.$name.load(Relaxed));)*
            }
        }

        impl Snapshot {
            fn minus(mut self, base: &Snapshot) -> Snapshot {
                $(self.$name = self.$name.wrapping_sub(base.$name);)*
                self
            }
        }
    };
}

counters!(
    cmd_get,
    cmd_set,
    cmd_flush,
    cmd_touch,
    cmd_meta,
    get_hits,
    get_misses,
    delete_misses,
    delete_hits,
    incr_misses,
    incr_hits,
    decr_misses,
    decr_hits,
    cas_misses,
    cas_hits,
    cas_badval,
    touch_hits,
    touch_misses,
    store_too_large,
    store_no_memory,
    bytes_read,
    bytes_written,
);

/// Adds `n` to a counter only this thread writes.
#[inline]
pub fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
}

/// Every thread's counters.
#[derive(Default)]
pub struct Registry {
    blocks: Mutex<Vec<Arc<Counters>>>,
    baseline: Mutex<Snapshot>,
}

thread_local! {
    static LOCAL: std::cell::OnceCell<Arc<Counters>> = const { std::cell::OnceCell::new() };
}

impl Registry {
    /// Runs `f` with this thread's counters, registering them on first use.
    #[inline]
    pub fn with<R>(&self, f: impl FnOnce(&Counters) -> R) -> R {
        LOCAL.with(|cell| {
            let c = cell.get_or_init(|| {
                let c = Arc::new(Counters::default());
                self.blocks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(c.clone());
                c
            });
            f(c)
        })
    }

    /// The sum over all threads since the last reset.
    pub fn snapshot(&self) -> Snapshot {
        let mut s = self.raw();
        s = s.minus(&self.baseline.lock().unwrap_or_else(|e| e.into_inner()));
        s
    }

    fn raw(&self) -> Snapshot {
        let mut s = Snapshot::default();
        for c in self.blocks.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            c.add_to(&mut s);
        }
        s
    }

    /// `stats reset`.
    pub fn reset(&self) {
        let now = self.raw();
        *self.baseline.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }
}

//! Small shared helpers for the crate's cross-thread state.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Locks `m`, ignoring poisoning.
///
/// Every mutex in the crate guards data that a panicking holder cannot leave
/// half-updated (a queue swapped out whole, a map insert or remove), so a
/// poisoned lock is still usable and one panicking callback must not make
/// every later caller panic too.
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits on `cv` for at most `timeout`, ignoring poisoning like [`lock`].
pub(crate) fn wait_timeout<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Duration,
) -> MutexGuard<'a, T> {
    cv.wait_timeout(guard, timeout)
        .unwrap_or_else(|e| e.into_inner())
        .0
}

/// Round-robin choice among `n` items, callable from any thread.
#[derive(Debug, Default)]
pub(crate) struct RoundRobin(AtomicUsize);

impl RoundRobin {
    /// The next index in `0..n`; `n` must not be 0.
    pub(crate) fn next(&self, n: usize) -> usize {
        self.0.fetch_add(1, Ordering::Relaxed) % n
    }
}

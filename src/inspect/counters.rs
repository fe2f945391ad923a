//! Counters kept by each loop thread: plain `Cell`s, no atomics, no locks.
//!
//! The hot path touches only the [`ConnStats`] inside the connection it is
//! already working on (an add to a field next to its buffers). Per-loop
//! figures that are not per connection (accepts, poll waits, the totals of
//! closed connections) live in a thread-local; a loop owns its thread, so
//! per thread is per loop. A loop's totals are the closed connections'
//! totals (folded in once, at close) plus its live connections' counters,
//! summed on the loop thread when someone asks (`inspect::gather`, which
//! finds the live connections in the loop's channel table).
//!
//! Per connection this costs 32 bytes and no allocation, so the C10K
//! memory budget holds.
//!
//! This module is plain data: it imports nothing from the rest of the crate,
//! so the loop and connection code (lower layers) can call into it.
//!
//! The hooks (re-apply them by hand when those files move):
//! * `acceptor.rs`, `handle_read`: [`accepted`] per accepted fd,
//!   [`accept_error`] on `EMFILE`/`ENFILE`;
//! * `event_loop.rs`, `run_until_quit`: [`poll_entered`] before the poll,
//!   [`poll_returned`] after it (the wait histogram); `EventLoop::handlers`
//!   and `Registry::handlers` (`channel.rs`) list the live channels;
//! * `tcp_connection.rs`, `ConnCore`: a `stats: ConnStats` field made by
//!   [`ConnStats::open`] in `establish`; [`ConnStats::read`] in
//!   `read_and_dispatch` when bytes arrived; [`ConnStats::wrote`] where
//!   `send_in_loop` and `send_file_in_loop` write directly;
//!   [`ConnStats::flushed`] around the output flush in `handle_write`;
//!   [`ConnStats::high_water`] in `enqueue`; [`ConnStats::close`] in
//!   `notify_closed`; `live_connections` lists the loop's connections.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Upper bounds of the poll-wait histogram buckets, in seconds (the last
/// bucket, `+Inf`, is implied).
pub const POLL_WAIT_BOUNDS: [f64; 6] = [0.0001, 0.001, 0.01, 0.1, 1.0, 10.0];
const BOUNDS_NS: [u64; 6] = [
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
];

/// Per-loop counters that do not belong to one connection.
struct LoopStats {
    accepted: Cell<u64>,
    accept_errors: Cell<u64>,
    opened: Cell<u64>,
    closed: Cell<u64>,
    closed_bytes_in: Cell<u64>,
    closed_bytes_out: Cell<u64>,
    closed_messages: Cell<u64>,
    high_water: Cell<u64>,
    polls: Cell<u64>,
    poll_wait_ns: Cell<u64>,
    /// Non-cumulative counts; index `BOUNDS_NS.len()` is `+Inf`.
    poll_buckets: [Cell<u64>; 7],
}

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: Cell<u64> = Cell::new(0);

thread_local! {
    // Cells only, const-initialised, no destructor: every access is a plain
    // thread-pointer-relative load, with no lazy-init check.
    static LOOP: LoopStats = const { LoopStats {
        accepted: ZERO, accept_errors: ZERO, opened: ZERO, closed: ZERO,
        closed_bytes_in: ZERO, closed_bytes_out: ZERO, closed_messages: ZERO,
        high_water: ZERO, polls: ZERO, poll_wait_ns: ZERO, poll_buckets: [ZERO; 7],
    } };
}

fn bump(c: &Cell<u64>, n: u64) {
    c.set(c.get().wrapping_add(n));
}

/// Hook: the acceptor on this thread accepted a connection.
pub(crate) fn accepted() {
    LOOP.with(|s| bump(&s.accepted, 1));
}

/// Hook: `accept` failed for lack of file descriptors (`EMFILE`/`ENFILE`).
pub(crate) fn accept_error() {
    LOOP.with(|s| bump(&s.accept_errors, 1));
}

/// Hook, before the loop polls: the time it starts waiting, or `None`
/// when it will not wait (the timeout is zero), which saves a clock read.
#[inline]
pub(crate) fn poll_entered(timeout: Option<Duration>) -> Option<Instant> {
    match timeout {
        Some(t) if t.is_zero() => None,
        _ => Some(Instant::now()),
    }
}

/// Hook, once poll returned at `now`: records the wait in the histogram.
#[inline]
pub(crate) fn poll_returned(entered: Option<Instant>, now: Instant) {
    let ns = entered.map_or(0, |t| now.saturating_duration_since(t).as_nanos() as u64);
    LOOP.with(|s| {
        bump(&s.polls, 1);
        bump(&s.poll_wait_ns, ns);
        let i = BOUNDS_NS
            .iter()
            .position(|&b| ns <= b)
            .unwrap_or(BOUNDS_NS.len());
        bump(&s.poll_buckets[i], 1);
    });
}

/// The counters of one connection, owned by its loop-thread half and
/// listed (weakly) in its loop's live set until it closes.
/// Process-wide origin of connection ages (kept in 32 bits of seconds).
static EPOCH: OnceLock<Instant> = OnceLock::new();
/// `opened` of a closed connection.
const CLOSED: u32 = u32::MAX;

/// The counters of one connection, kept inline in its loop-thread half.
pub(crate) struct ConnStats {
    bytes_in: Cell<u64>,
    bytes_out: Cell<u64>,
    messages: Cell<u64>,
    high_water: Cell<u32>,
    /// Seconds from [`EPOCH`] to the connection's start; [`CLOSED`] once closed.
    opened: Cell<u32>,
}

/// One connection's figures at one moment.
pub(crate) struct ConnFigures {
    pub age: Duration,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub messages: u64,
    pub high_water: u64,
}

impl ConnStats {
    /// Hook: a connection is being established on this thread's loop.
    pub(crate) fn open() -> ConnStats {
        let epoch = *EPOCH.get_or_init(Instant::now);
        let secs = epoch.elapsed().as_secs().min(u64::from(CLOSED - 1)) as u32;
        LOOP.with(|s| bump(&s.opened, 1));
        ConnStats {
            bytes_in: Cell::new(0),
            bytes_out: Cell::new(0),
            messages: Cell::new(0),
            high_water: Cell::new(0),
            opened: Cell::new(secs),
        }
    }

    /// Hook: `n` bytes were read and handed to the message callback.
    #[inline]
    pub(crate) fn read(&self, n: usize) {
        bump(&self.bytes_in, n as u64);
        bump(&self.messages, 1);
    }

    /// Hook: `n` bytes were written straight to the socket.
    #[inline]
    pub(crate) fn wrote(&self, n: usize) {
        bump(&self.bytes_out, n as u64);
    }

    /// Hook: a flush of the output queue took it from `before` to `after` bytes.
    pub(crate) fn flushed(&self, before: u64, after: u64) {
        bump(&self.bytes_out, before.saturating_sub(after));
    }

    /// Hook: the output queue crossed the high-water mark.
    pub(crate) fn high_water(&self) {
        self.high_water.set(self.high_water.get().saturating_add(1));
        LOOP.with(|s| bump(&s.high_water, 1));
    }

    /// Hook: the connection closed; folds its totals into its loop's.
    /// Idempotent.
    pub(crate) fn close(&self) {
        if self.opened.replace(CLOSED) == CLOSED {
            return;
        }
        LOOP.with(|s| {
            bump(&s.closed, 1);
            bump(&s.closed_bytes_in, self.bytes_in.get());
            bump(&s.closed_bytes_out, self.bytes_out.get());
            bump(&s.closed_messages, self.messages.get());
        });
    }

    /// The figures of a live connection (`None` once closed: its bytes are
    /// in the loop's closed totals).
    pub(crate) fn figures(&self) -> Option<ConnFigures> {
        let opened = self.opened.get();
        if opened == CLOSED {
            return None;
        }
        let epoch = *EPOCH.get_or_init(Instant::now);
        let age = epoch
            .elapsed()
            .saturating_sub(Duration::from_secs(opened.into()));
        Some(ConnFigures {
            age,
            bytes_in: self.bytes_in.get(),
            bytes_out: self.bytes_out.get(),
            messages: self.messages.get(),
            high_water: self.high_water.get().into(),
        })
    }
}

/// This thread's loop counters, without its live connections.
pub(crate) struct RawLoop {
    pub accepted: u64,
    pub accept_errors: u64,
    pub opened: u64,
    pub closed: u64,
    pub closed_bytes_in: u64,
    pub closed_bytes_out: u64,
    pub closed_messages: u64,
    pub high_water: u64,
    pub polls: u64,
    pub poll_wait_ns: u64,
    pub poll_buckets: [u64; 7],
}

/// Reads this thread's loop counters.
pub(crate) fn collect() -> RawLoop {
    LOOP.with(|s| RawLoop {
        accepted: s.accepted.get(),
        accept_errors: s.accept_errors.get(),
        opened: s.opened.get(),
        closed: s.closed.get(),
        closed_bytes_in: s.closed_bytes_in.get(),
        closed_bytes_out: s.closed_bytes_out.get(),
        closed_messages: s.closed_messages.get(),
        high_water: s.high_water.get(),
        polls: s.polls.get(),
        poll_wait_ns: s.poll_wait_ns.get(),
        poll_buckets: std::array::from_fn(|i| s.poll_buckets[i].get()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_folds_totals_once() {
        let before = collect();
        let a = ConnStats::open();
        a.read(10);
        a.wrote(4);
        a.flushed(10, 4);
        a.high_water();
        let f = a.figures().unwrap();
        assert_eq!(
            (f.bytes_in, f.bytes_out, f.messages, f.high_water),
            (10, 10, 1, 1)
        );
        a.close();
        a.close();
        assert!(a.figures().is_none());
        let after = collect();
        assert_eq!(after.opened - before.opened, 1);
        assert_eq!(after.closed - before.closed, 1);
        assert_eq!(after.closed_bytes_in - before.closed_bytes_in, 10);
        assert_eq!(after.closed_bytes_out - before.closed_bytes_out, 10);
        assert_eq!(after.high_water - before.high_water, 1);
    }

    #[test]
    fn stays_small() {
        assert_eq!(std::mem::size_of::<ConnStats>(), 32);
    }

    #[test]
    fn poll_waits_land_in_their_bucket() {
        let t = Instant::now();
        poll_returned(None, t);
        poll_returned(Some(t), t + Duration::from_millis(5));
        let raw = collect();
        assert_eq!(raw.polls, 2);
        assert_eq!(raw.poll_buckets[0], 1);
        assert_eq!(raw.poll_buckets[2], 1);
        assert_eq!(raw.poll_wait_ns, 5_000_000);
    }
}

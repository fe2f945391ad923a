//! Timers: [`TimerId`] and the per-loop [`TimerQueue`] behind `run_at`,
//! `run_after`, `run_every` and `cancel`.
//!
//! Each loop has one `timerfd` on `CLOCK_MONOTONIC` (the clock behind
//! [`Instant`]), armed for the earliest deadline, so a wall-clock jump can
//! neither stop nor rush a repeating timer (muduo #168). Timers fire in
//! deadline order, ties in creation order. A repeating timer's n-th firing is
//! due at `start + n * interval`, so it does not drift; if the loop was too
//! busy to fire some periods, the missed ones are skipped rather than fired
//! in a burst.

use rustix::fd::OwnedFd;
use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::time::{Duration, Instant};

/// Names a timer so it can be cancelled. Returned by `run_at`, `run_after`
/// and `run_every`; cheap to copy and to send to other threads.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TimerId(pub(crate) u64);

impl TimerId {
    /// The timer's sequence number, unique within its loop.
    pub fn sequence(self) -> u64 {
        self.0
    }
}

/// Hashes timer sequence numbers: they are unique integers chosen by us,
/// so one multiplication spreads them well and SipHash's defence against
/// chosen keys buys nothing.
#[derive(Default)]
struct SeqHasher(u64);

impl Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type SeqMap<V> = HashMap<u64, V, BuildHasherDefault<SeqHasher>>;
type SeqSet = HashSet<u64, BuildHasherDefault<SeqHasher>>;

/// A timer callback. Repeating timers are called many times.
pub(crate) type TimerCallback = Box<dyn FnMut()>;

struct Entry {
    callback: Option<TimerCallback>,
    start: Instant,
    interval: Option<Duration>,
    fired: u64,
    cancelled: bool,
}

/// The loop's timer queue (loop thread only).
///
/// A binary heap orders deadlines; a map from sequence number to entry owns
/// the callbacks, so cancelling is a map removal and stale heap entries are
/// skipped when they surface (and compacted away when they pile up).
pub(crate) struct TimerQueue {
    fd: OwnedFd,
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    entries: SeqMap<Entry>,
    armed: Option<Instant>,
    /// Cancels that arrived before their timer's insertion (possible when a
    /// remote `run_at` is still queued); bounded by the in-flight count.
    early_cancels: SeqSet,
}

/// Far enough to mean "never" without overflowing `Instant` arithmetic.
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

pub(crate) fn deadline_after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).unwrap_or_else(|| now + FAR_FUTURE)
}

impl TimerQueue {
    pub(crate) fn new() -> io::Result<TimerQueue> {
        let fd = rustix::time::timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        Ok(TimerQueue {
            fd,
            heap: BinaryHeap::new(),
            entries: SeqMap::default(),
            armed: None,
            early_cancels: SeqSet::default(),
        })
    }

    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn insert(
        &mut self,
        seq: u64,
        when: Instant,
        interval: Option<Duration>,
        callback: TimerCallback,
    ) {
        if self.early_cancels.remove(&seq) {
            return;
        }
        self.entries.insert(
            seq,
            Entry {
                callback: Some(callback),
                start: when,
                interval,
                fired: 0,
                cancelled: false,
            },
        );
        self.heap.push(Reverse((when, seq)));
        self.rearm();
    }

    /// Cancels `seq`. `maybe_in_flight` says a remote insertion may still be
    /// queued, in which case an unknown id is remembered until it arrives.
    pub(crate) fn cancel(&mut self, seq: u64, maybe_in_flight: bool) {
        match self.entries.get_mut(&seq) {
            Some(e) if e.callback.is_none() => e.cancelled = true, // running now
            Some(_) => {
                self.entries.remove(&seq);
                self.maybe_compact();
            }
            None if maybe_in_flight => {
                self.early_cancels.insert(seq);
            }
            None => {}
        }
    }

    /// Forgets early cancels once no insertion can be in flight.
    pub(crate) fn settle(&mut self) {
        self.early_cancels.clear();
    }

    fn maybe_compact(&mut self) {
        if self.heap.len() > 1024 && self.heap.len() > 4 * self.entries.len() {
            let entries = &self.entries;
            self.heap
                .retain(|Reverse((_, seq))| entries.contains_key(seq));
        }
    }

    fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(&Reverse((when, seq))) = self.heap.peek() {
            if self.entries.contains_key(&seq) {
                return Some(when);
            }
            self.heap.pop();
        }
        None
    }

    /// Programs the timerfd for the earliest live deadline, skipping the
    /// syscall when that deadline is already armed.
    pub(crate) fn rearm(&mut self) {
        let next = self.next_deadline();
        if next == self.armed {
            return;
        }
        self.armed = next;
        let value = match next {
            // A zero it_value disarms a timerfd, so an overdue deadline is
            // armed one microsecond ahead instead.
            Some(when) => when
                .saturating_duration_since(Instant::now())
                .max(Duration::from_micros(1)),
            None => Duration::ZERO,
        };
        let spec = Itimerspec {
            it_interval: Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: Timespec {
                tv_sec: value.as_secs() as i64,
                tv_nsec: value.subsec_nanos() as _,
            },
        };
        if let Err(e) = rustix::time::timerfd_settime(&self.fd, TimerfdTimerFlags::empty(), &spec) {
            tracing::error!(error = %e, "timerfd_settime failed");
        }
    }

    /// Drains the timerfd after it became readable.
    pub(crate) fn acknowledge(&mut self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.fd, &mut buf);
        self.armed = None;
    }

    /// Pops the next expired timer, taking its callback out so it can be
    /// called without borrowing the queue.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<(u64, TimerCallback)> {
        loop {
            let &Reverse((when, seq)) = self.heap.peek()?;
            if when > now {
                return None;
            }
            self.heap.pop();
            if let Some(e) = self.entries.get_mut(&seq) {
                if let Some(cb) = e.callback.take() {
                    return Some((seq, cb));
                }
            }
        }
    }

    /// Puts a fired timer's callback back if it repeats and was not cancelled.
    pub(crate) fn finish(&mut self, seq: u64, callback: TimerCallback, now: Instant) {
        let Some(e) = self.entries.get_mut(&seq) else {
            return;
        };
        e.fired += 1;
        match e.interval {
            Some(interval) if !e.cancelled && !interval.is_zero() => {
                let mut n = e.fired;
                let mut next = deadline_after(
                    e.start,
                    interval.saturating_mul(n.min(u32::MAX as u64) as u32),
                );
                if next <= now {
                    // Skip the periods the loop was too busy to fire.
                    let behind =
                        now.saturating_duration_since(e.start).as_nanos() / interval.as_nanos();
                    n = behind as u64 + 1;
                    next = deadline_after(
                        e.start,
                        interval.saturating_mul(n.min(u32::MAX as u64) as u32),
                    );
                }
                e.fired = n;
                e.callback = Some(callback);
                self.heap.push(Reverse((next, seq)));
            }
            _ => {
                self.entries.remove(&seq);
            }
        }
    }
}

//! Answers in request order when workers finish out of order.
//!
//! The loop thread numbers each request of a connection; a worker that
//! finishes hands its answer back with that number. Answers wait in a small
//! map until every earlier one has been sent, so a client that pipelines
//! many puzzles on one connection still gets them back in order, while the
//! pool solves them in parallel. `TcpConnection::send` is thread-safe; it is
//! called under this connection's lock so sends reach the loop in order.
//!
//! A client that pipelines without limit would queue jobs without limit, so
//! the connection stops reading at [`MAX_IN_FLIGHT`] unanswered requests
//! (TCP flow control then slows the client) and resumes at half that.

use muduo::TcpConnectionPtr;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Unanswered requests at which a connection stops reading.
pub const MAX_IN_FLIGHT: u64 = 1024;

/// Per-connection sequencing, kept in the connection's context as an `Arc`.
#[derive(Default)]
pub struct Ordered {
    /// Next number to hand out (loop thread only, atomic for `Sync`).
    next_seq: AtomicU64,
    /// Set once an error answer is queued: later input is ignored.
    closing: AtomicBool,
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    next_send: u64,
    done: BTreeMap<u64, (Vec<u8>, bool)>,
    /// Reading is stopped for backpressure.
    paused: bool,
}

impl Ordered {
    /// Numbers the next request.
    pub fn next(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// True once an error answer has been queued.
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    /// Marks the connection as closing after an error (loop thread).
    pub fn set_closing(&self) {
        self.closing.store(true, Ordering::Relaxed);
    }

    /// Answer `seq` is ready: sends it and every later answer already done,
    /// in order. `shutdown` half-closes the connection once that answer is sent.
    pub fn complete(&self, conn: &TcpConnectionPtr, seq: u64, answer: Vec<u8>, shutdown: bool) {
        let mut guard = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let p = &mut *guard;
        p.done.insert(seq, (answer, shutdown));
        let mut out = Vec::new();
        let mut close = false;
        while let Some((bytes, last)) = p.done.remove(&p.next_send) {
            p.next_send += 1;
            out.extend_from_slice(&bytes);
            close |= last;
        }
        if !out.is_empty() {
            conn.send_vec(out);
        }
        if close {
            conn.shutdown();
        } else if p.paused && self.in_flight(p) <= MAX_IN_FLIGHT / 2 {
            p.paused = false;
            conn.start_read();
        }
    }

    /// Stops reading from `conn` while too many of its requests are
    /// unanswered (loop thread, after queueing a read's requests). Checked
    /// under the same lock as [`complete`](Self::complete) resumes, so a
    /// resume is never lost.
    pub fn pause_if_full(&self, conn: &TcpConnectionPtr) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if !p.paused && self.in_flight(&p) >= MAX_IN_FLIGHT {
            p.paused = true;
            conn.stop_read();
        }
    }

    fn in_flight(&self, p: &Pending) -> u64 {
        self.next_seq.load(Ordering::Relaxed) - p.next_send
    }
}

//! Snapshots of loops and connections, gathered on each loop's own thread.

use super::counters::{self, POLL_WAIT_BOUNDS};
use crate::event_loop::{EventLoop, LoopHandle};
use crate::socket::TcpInfo;
use crate::tcp_connection::live_connections;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What to gather besides the loop totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Detail {
    /// Also list each live connection.
    pub connections: bool,
    /// Also read each connection's `TCP_INFO` (one `getsockopt` per connection).
    pub tcp_info: bool,
}

/// One loop's counters at one moment.
///
/// Counters are per thread: a loop counts from the moment its thread
/// started counting, including connections of every server and client on it.
#[derive(Clone, Debug, Default)]
pub struct LoopSnapshot {
    /// The loop's id ([`LoopHandle::id`]).
    pub id: u64,
    /// The loop's name.
    pub name: String,
    /// Times the loop returned from polling.
    pub iterations: u64,
    /// Polls recorded in the wait histogram.
    pub polls: u64,
    /// Total time spent waiting in poll.
    pub poll_wait: Duration,
    /// Polls per wait bucket, not cumulative; bounds are
    /// [`poll_wait_bounds`] then `+Inf`.
    pub poll_wait_buckets: [u64; 7],
    /// Channels registered (connections, listeners, user fds).
    pub channels: usize,
    /// Live timers.
    pub timers: usize,
    /// Closures queued from other threads and not yet run.
    pub pending: usize,
    /// Connections accepted by an acceptor on this loop.
    pub accepted: u64,
    /// Accepts that failed for lack of file descriptors.
    pub accept_errors: u64,
    /// Connections established on this loop.
    pub opened: u64,
    /// Connections closed on this loop.
    pub closed: u64,
    /// Connections open now.
    pub open: usize,
    /// Bytes read from connections.
    pub bytes_read: u64,
    /// Bytes written to connections.
    pub bytes_written: u64,
    /// Message callbacks run (reads that delivered bytes).
    pub messages: u64,
    /// Output bytes queued in user space now, over all connections.
    pub output_queued: u64,
    /// Times a connection's output queue crossed its high-water mark.
    pub high_water_events: u64,
    /// The live connections (with [`Detail::connections`]).
    pub connections: Vec<ConnSnapshot>,
}

/// One live connection at one moment.
#[derive(Clone, Debug)]
pub struct ConnSnapshot {
    /// The owning loop's id.
    pub loop_id: u64,
    /// The connection's name.
    pub name: String,
    /// The peer's address.
    pub peer: SocketAddr,
    /// Our address.
    pub local: SocketAddr,
    /// Time since it was established (whole seconds).
    pub age: Duration,
    /// Bytes read.
    pub bytes_in: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// Message callbacks run.
    pub messages: u64,
    /// Output bytes queued in user space.
    pub output_queued: u64,
    /// High-water-mark crossings.
    pub high_water_events: u64,
    /// The kernel's `TCP_INFO` (with [`Detail::tcp_info`]).
    pub tcp_info: Option<TcpInfo>,
}

/// Runs on the loop thread: reads its counters and state.
fn on_loop(handle: &LoopHandle, detail: Detail) -> LoopSnapshot {
    let raw = counters::collect();
    let lp = EventLoop::current();
    let live = lp.as_ref().map(live_connections).unwrap_or_default();
    let mut snap = LoopSnapshot {
        id: handle.id(),
        name: handle.name().to_string(),
        iterations: lp.as_ref().map_or(0, |l| l.iteration()),
        polls: raw.polls,
        poll_wait: Duration::from_nanos(raw.poll_wait_ns),
        poll_wait_buckets: raw.poll_buckets,
        channels: lp.as_ref().map_or(0, |l| l.channel_count()),
        timers: lp.as_ref().map_or(0, |l| l.timer_count()),
        pending: handle.queue_size(),
        accepted: raw.accepted,
        accept_errors: raw.accept_errors,
        opened: raw.opened,
        closed: raw.closed,
        open: live.len(),
        bytes_read: raw.closed_bytes_in,
        bytes_written: raw.closed_bytes_out,
        messages: raw.closed_messages,
        output_queued: 0,
        high_water_events: raw.high_water,
        connections: Vec::new(),
    };
    for (conn, f, queued) in live {
        snap.bytes_read += f.bytes_in;
        snap.bytes_written += f.bytes_out;
        snap.messages += f.messages;
        snap.output_queued += queued;
        if detail.connections {
            snap.connections.push(ConnSnapshot {
                loop_id: handle.id(),
                name: conn.name().to_string(),
                peer: conn.peer_addr(),
                local: conn.local_addr(),
                age: f.age,
                bytes_in: f.bytes_in,
                bytes_out: f.bytes_out,
                messages: f.messages,
                output_queued: queued,
                high_water_events: f.high_water,
                tcp_info: detail.tcp_info.then(|| conn.tcp_info().ok()).flatten(),
            });
        }
    }
    snap
}

/// Gathers a snapshot of each loop, each read on its own thread (a closure
/// posted with `run_in_loop`), so the loops' hot paths take no lock and
/// no atomic. Loops that are gone, or that do not answer within `limit`
/// (blocked or not running), are left out. Callable from any thread; the
/// loops are asked all at once, so the wait is that of the slowest.
pub fn gather(loops: &[LoopHandle], detail: Detail, limit: Duration) -> Vec<LoopSnapshot> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut asked = 0;
    for (i, h) in loops.iter().enumerate() {
        if !h.is_alive() {
            continue;
        }
        asked += 1;
        let (tx, me) = (tx.clone(), h.clone());
        h.run_in_loop(move || {
            let _ = tx.send((i, on_loop(&me, detail)));
        });
    }
    drop(tx);
    let deadline = Instant::now() + limit;
    let mut got = Vec::with_capacity(asked);
    while got.len() < asked {
        match rx.recv_deadline(deadline) {
            Ok(s) => got.push(s),
            Err(_) => break,
        }
    }
    got.sort_by_key(|(i, _)| *i);
    got.into_iter().map(|(_, s)| s).collect()
}

/// The upper bounds of [`LoopSnapshot::poll_wait_buckets`], in seconds.
pub fn poll_wait_bounds() -> &'static [f64] {
    &POLL_WAIT_BOUNDS
}

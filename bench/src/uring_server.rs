//! The bare io_uring echo loop behind `uring_pingpong`: the completion-side
//! counterpart of [`crate::epoll_server`], written directly on the
//! `io-uring` crate with no library in between.
//!
//! Per thread: one ring (`SINGLE_ISSUER | DEFER_TASKRUN`, falling back to
//! `COOP_TASKRUN`; without either, io_uring costs 1.3-1.5x epoll's CPU), one
//! `SO_REUSEPORT` listener with a multishot ACCEPT, and a provided-buffer
//! ring of 16 KiB buffers shared by the thread's connections. Each
//! connection has one multishot RECV picking buffers from that ring; the
//! received bytes are sent back straight from the ring buffers (no copy),
//! and a buffer returns to the ring when its send completes. Sends go out
//! after a whole batch of completions has been handled, one per connection,
//! gathering every chunk that arrived (a 64 KiB message spans four buffers:
//! sending each on its own cost twice the CPU of epoll's single write;
//! measured). A connection
//! whose multishot RECV ended on `ENOBUFS` is re-armed once buffers come
//! back. Every loop iteration makes exactly one `io_uring_enter`
//! (`submit_and_wait(1)`), submitting everything queued while handling the
//! previous batch of completions (an early submit happens only if the
//! submission queue fills up).
//!
//! Lifetimes (the rules of DESIGN.md "Drivers and transports"): the buffer
//! memory is leaked, so it outlives the ring and every operation; a
//! connection's fd is closed only after the final completion of each of its
//! operations (its RECV's CQE without `IORING_CQE_F_MORE`, its SEND's CQE),
//! cancelling the RECV first; `user_data` carries a generation so that a
//! completion can never be mistaken for one of a later connection in the
//! same slot.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use rustix::net::sockopt;
use slab::Slab;

use crate::cli::ServerArgs;
use crate::sys;

/// Size of one provided buffer: at least a typical message (2 KiB buffers
/// for 4 KiB messages cost 1.5x), and a 64 KiB message takes four.
pub const BUF_SIZE: usize = 16 * 1024;
/// Most provided buffers per thread (a power of two, at most 32768). A
/// buffer is held from its RECV until its SEND completes, so this must cover
/// every connection of the thread with a message in flight, times the
/// buffers a message spans: 1000 sessions of 64 KiB on one thread need 4000.
pub const BUF_COUNT: u16 = 8192;
/// Buffers provided at first; doubled (up to `BUF_COUNT`) each time a RECV
/// ends on ENOBUFS. The kernel takes buffers in ring order, so every buffer
/// provided is cycled through: providing all 8192 (128 MiB) up front made a
/// single 64 KiB session cost 1.75x epoll's CPU, as each copy went to cold
/// memory; 64 buffers cost 1.2x (measured).
pub const INITIAL_BUFS: u16 = 64;
const BUF_GROUP: u16 = 0;
const SQ_ENTRIES: u32 = 2048;
/// Chunks gathered into one SENDMSG.
const MAX_IOV: usize = 16;
const CQ_ENTRIES: u32 = 32768;

/// Runs the echo server forever with `args.threads.max(1)` threads, each
/// with its own ring and `SO_REUSEPORT` listener.
pub fn serve(name: &str, args: &ServerArgs) -> ! {
    sys::raise_nofile_limit().ok();
    let threads = args.threads.max(1);
    // Blocking listeners: io_uring waits for readiness itself.
    let listeners: Vec<OwnedFd> = (0..threads)
        .map(|_| {
            sys::tcp_listener(args.addr, true, false).unwrap_or_else(|e| {
                eprintln!("{name}: cannot listen on {}: {e}", args.addr);
                std::process::exit(1)
            })
        })
        .collect();
    let (tx, rx) = std::sync::mpsc::channel();
    let handles: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                // The ring is created on the thread that uses it: SINGLE_ISSUER
                // and DEFER_TASKRUN tie it to that thread.
                let lp = Loop::new(listener);
                let _ = tx.send(lp.as_ref().map(|l| l.setup).map_err(|e| e.to_string()));
                lp?.run()
            })
        })
        .collect();
    drop(tx);
    for ready in rx {
        match ready {
            Ok(setup) => eprintln!(
                "{name}: listening on {} (ring {setup}, {INITIAL_BUFS} to {BUF_COUNT} x {} KiB buffers)",
                args.addr,
                BUF_SIZE / 1024
            ),
            Err(e) => {
                eprintln!("{name}: io_uring setup failed: {e}");
                std::process::exit(1)
            }
        }
    }
    for handle in handles {
        if let Ok(Err(e)) = handle.join() {
            eprintln!("{name}: loop failed: {e}");
        }
    }
    std::process::exit(1)
}

/// What a completion belongs to; the top two bits of `user_data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Accept = 0,
    Recv = 1,
    Send = 2,
    Cancel = 3,
}

const GEN_MASK: u32 = (1 << 30) - 1;

/// `user_data`: op (2 bits) | generation (30 bits) | slab slot (32 bits).
fn token(op: Op, slot: usize, gen: u32) -> u64 {
    (op as u64) << 62 | u64::from(gen & GEN_MASK) << 32 | slot as u64
}

fn untoken(data: u64) -> (Op, usize, u32) {
    let op = match data >> 62 {
        0 => Op::Accept,
        1 => Op::Recv,
        2 => Op::Send,
        _ => Op::Cancel,
    };
    (
        op,
        (data & 0xffff_ffff) as usize,
        (data >> 32) as u32 & GEN_MASK,
    )
}

/// The provided-buffer ring: `BUF_COUNT` ring entries (page-aligned, shared
/// with the kernel) pointing into the first `provided` of `BUF_COUNT`
/// buffers of `BUF_SIZE` bytes (memory reserved for all, touched as used).
struct BufRing {
    entries: *mut types::BufRingEntry,
    bufs: *mut u8,
    /// Buffers `0..provided` are in use (in the ring or held by us).
    provided: u16,
    /// Our copy of the ring tail; published to the kernel by `publish`.
    tail: u16,
    /// Buffers currently in the ring (the kernel may pick them).
    available: usize,
}

impl BufRing {
    fn register(ring: &IoUring) -> io::Result<BufRing> {
        let ring_bytes = usize::from(BUF_COUNT) * std::mem::size_of::<types::BufRingEntry>();
        let layout = std::alloc::Layout::from_size_align(ring_bytes, 4096)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: the layout has a non-zero size. The memory is zeroed (a
        // valid ring: tail 0) and deliberately never freed: the kernel keeps
        // using it for as long as the ring lives, which is the thread's life.
        let entries = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<types::BufRingEntry>();
        if entries.is_null() {
            return Err(io::ErrorKind::OutOfMemory.into());
        }
        // Leaked for the same reason: the kernel writes received bytes here
        // for as long as any RECV is armed.
        let bufs = vec![0u8; usize::from(BUF_COUNT) * BUF_SIZE]
            .leak()
            .as_mut_ptr();
        // SAFETY: `entries` points to `BUF_COUNT` page-aligned entries that
        // stay valid (leaked) for the life of the ring.
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                entries as u64,
                BUF_COUNT,
                BUF_GROUP,
                0,
            )?;
        }
        let mut br = BufRing {
            entries,
            bufs,
            provided: 0,
            tail: 0,
            available: 0,
        };
        br.grow();
        br.publish();
        Ok(br)
    }

    /// Provides more buffers: the first `INITIAL_BUFS`, then twice as many
    /// as before, up to `BUF_COUNT`. False when all are provided already.
    fn grow(&mut self) -> bool {
        let target = (self.provided.saturating_mul(2)).clamp(INITIAL_BUFS, BUF_COUNT);
        if target <= self.provided {
            return false;
        }
        for bid in self.provided..target {
            self.recycle(bid);
        }
        self.provided = target;
        true
    }

    /// Start of buffer `bid`.
    fn ptr(&self, bid: u16) -> *mut u8 {
        // In bounds: bid < BUF_COUNT (the kernel only returns ids we gave it).
        self.bufs.wrapping_add(usize::from(bid) * BUF_SIZE)
    }

    /// Gives buffer `bid` back to the ring (visible to the kernel after the
    /// next `publish`). Called only for buffers the kernel handed us in a
    /// CQE and that no operation uses any more.
    fn recycle(&mut self, bid: u16) {
        let index = usize::from(self.tail & (BUF_COUNT - 1));
        // SAFETY: `index < BUF_COUNT`, inside the leaked ring. The kernel
        // reads entries only between its head and the published tail, and
        // this slot is past the published tail (at most BUF_COUNT buffers
        // are ever in the ring), so nobody else accesses it now.
        let entry = unsafe { &mut *self.entries.add(index) };
        entry.set_addr(self.ptr(bid) as u64);
        entry.set_len(BUF_SIZE as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
        self.available += 1;
    }

    /// Publishes the tail so the kernel sees every recycled buffer.
    fn publish(&self) {
        // SAFETY: the tail field lives inside the leaked, initialised ring,
        // is u16-aligned, and is shared with the kernel, hence the atomic
        // (release: the entries written before are visible first).
        unsafe {
            let tail = types::BufRingEntry::tail(self.entries).cast::<AtomicU16>();
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

/// Bytes received into one ring buffer, waiting to be (or being) sent.
struct Chunk {
    bid: u16,
    off: u32,
    len: u32,
}

/// A connection's gather list for SENDMSG, boxed so that its address stays
/// fixed while the kernel reads it (the slab may move connections).
struct Gather {
    hdr: libc::msghdr,
    iov: [libc::iovec; MAX_IOV],
}

impl Gather {
    fn new() -> Box<Gather> {
        // SAFETY: msghdr and iovec are plain C structs for which all-zero
        // (null pointers, zero lengths) is a valid value.
        Box::new(unsafe { std::mem::zeroed() })
    }
}

struct Conn {
    fd: OwnedFd,
    gen: u32,
    /// The multishot RECV has not delivered its final completion yet.
    recv_armed: bool,
    /// A SEND is in flight for (a prefix of) the queue.
    sending: bool,
    /// Listed in `Loop::to_flush`.
    flush_queued: bool,
    /// EOF or error seen: waiting for in-flight operations to end.
    closing: bool,
    cancel_sent: bool,
    queue: VecDeque<Chunk>,
    gather: Box<Gather>,
}

struct Loop {
    ring: IoUring,
    bufs: BufRing,
    conns: Slab<Conn>,
    listener: OwnedFd,
    next_gen: u32,
    /// Connections whose RECV ended on ENOBUFS, re-armed when buffers return.
    starved: Vec<(usize, u32)>,
    /// Connections with queued bytes to send once the batch is handled.
    to_flush: Vec<(usize, u32)>,
    setup: &'static str,
}

fn new_ring() -> io::Result<(IoUring, &'static str)> {
    let first = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_cqsize(CQ_ENTRIES)
        .build(SQ_ENTRIES);
    match first {
        Ok(ring) => Ok((ring, "SINGLE_ISSUER|DEFER_TASKRUN")),
        Err(_) => IoUring::builder()
            .setup_coop_taskrun()
            .setup_cqsize(CQ_ENTRIES)
            .build(SQ_ENTRIES)
            .map(|ring| (ring, "COOP_TASKRUN")),
    }
}

impl Loop {
    fn new(listener: OwnedFd) -> io::Result<Loop> {
        let (ring, setup) = new_ring()?;
        let bufs = BufRing::register(&ring)?;
        Ok(Loop {
            ring,
            bufs,
            conns: Slab::with_capacity(1024),
            listener,
            next_gen: 0,
            starved: Vec::new(),
            to_flush: Vec::new(),
            setup,
        })
    }

    fn run(mut self) -> io::Result<()> {
        self.arm_accept()?;
        let mut batch: Vec<cqueue::Entry> = Vec::with_capacity(CQ_ENTRIES as usize);
        loop {
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => {}
                Err(e) => return Err(e),
            }
            batch.clear();
            batch.extend(self.ring.completion());
            for cqe in &batch {
                self.dispatch(cqe.user_data(), cqe.result(), cqe.flags())?;
            }
            self.flush_all()?;
            // Any ENOBUFS means the ring is too small for this load.
            if !self.starved.is_empty() {
                self.bufs.grow();
            }
            self.bufs.publish();
            self.rearm_starved()?;
        }
    }

    /// Queues `sqe` for the next `io_uring_enter`, submitting early only
    /// when the submission queue is full.
    ///
    /// # Safety
    /// Every buffer and fd `sqe` refers to must stay valid until its final
    /// completion.
    unsafe fn push(&mut self, sqe: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: forwarded from the caller.
            if unsafe { self.ring.submission().push(sqe) }.is_ok() {
                return Ok(());
            }
            self.ring.submit()?;
        }
    }

    fn arm_accept(&mut self) -> io::Result<()> {
        let sqe = opcode::AcceptMulti::new(types::Fd(self.listener.as_raw_fd()))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(token(Op::Accept, 0, 0));
        // SAFETY: no buffer; the listener is owned by this loop, which lives
        // (and keeps it open) until the process exits.
        unsafe { self.push(&sqe) }
    }

    fn arm_recv(&mut self, slot: usize) -> io::Result<()> {
        let c = &mut self.conns[slot];
        c.recv_armed = true;
        let sqe = opcode::RecvMulti::new(types::Fd(c.fd.as_raw_fd()), BUF_GROUP)
            .build()
            .user_data(token(Op::Recv, slot, c.gen));
        // SAFETY: the RECV writes only into provided buffers (leaked, so
        // always valid); the fd is closed only when the slot is freed, which
        // waits for this RECV's final completion (`recv_armed` false).
        unsafe { self.push(&sqe) }
    }

    /// Lists `slot` for a send at the end of the batch.
    fn schedule_flush(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        if !c.flush_queued {
            c.flush_queued = true;
            self.to_flush.push((slot, c.gen));
        }
    }

    fn flush_all(&mut self) -> io::Result<()> {
        let mut list = std::mem::take(&mut self.to_flush);
        for &(slot, gen) in &list {
            if self.conns.get(slot).is_some_and(|c| c.gen == gen) {
                self.send_queued(slot)?;
            }
        }
        list.clear();
        self.to_flush = list;
        Ok(())
    }

    /// Sends the queued chunks (up to `MAX_IOV`, the first one possibly
    /// partly sent already) in one SEND or SENDMSG.
    fn send_queued(&mut self, slot: usize) -> io::Result<()> {
        let bufs = &self.bufs;
        let c = &mut self.conns[slot];
        c.flush_queued = false;
        if c.sending || c.closing || c.queue.is_empty() {
            return Ok(());
        }
        c.sending = true;
        let fd = types::Fd(c.fd.as_raw_fd());
        let start = |chunk: &Chunk| bufs.ptr(chunk.bid).wrapping_add(chunk.off as usize);
        let sqe = if c.queue.len() == 1 {
            let chunk = &c.queue[0];
            opcode::Send::new(fd, start(chunk), chunk.len - chunk.off)
                .flags(libc::MSG_NOSIGNAL)
                .build()
        } else {
            let g = &mut *c.gather;
            let mut n = 0;
            for (iov, chunk) in g.iov.iter_mut().zip(c.queue.iter()) {
                iov.iov_base = start(chunk).cast();
                iov.iov_len = (chunk.len - chunk.off) as usize;
                n += 1;
            }
            g.hdr.msg_iov = g.iov.as_mut_ptr();
            g.hdr.msg_iovlen = n;
            opcode::SendMsg::new(fd, &g.hdr)
                .flags(libc::MSG_NOSIGNAL as u32)
                .build()
        };
        let sqe = sqe.user_data(token(Op::Send, slot, c.gen));
        // SAFETY: the bytes are in leaked ring buffers that go back to the
        // kernel only after this SEND completes (their chunks stay queued
        // until then); the gather list is boxed per connection and not
        // rewritten while `sending`; the fd stays open while `sending`.
        unsafe { self.push(&sqe) }
    }

    fn dispatch(&mut self, data: u64, res: i32, flags: u32) -> io::Result<()> {
        let (op, slot, gen) = untoken(data);
        match op {
            Op::Accept => self.on_accept(res, cqueue::more(flags)),
            Op::Recv => self.on_recv(slot, gen, res, flags),
            Op::Send => self.on_send(slot, gen, res),
            // The cancel request's own result; the RECV's final CQE follows.
            Op::Cancel => Ok(()),
        }
    }

    fn on_accept(&mut self, res: i32, more: bool) -> io::Result<()> {
        if res >= 0 {
            // SAFETY: a successful accept completion carries a new fd that
            // nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(res) };
            let _ = sockopt::set_tcp_nodelay(&fd, true);
            self.next_gen = self.next_gen.wrapping_add(1) & GEN_MASK;
            let slot = self.conns.insert(Conn {
                fd,
                gen: self.next_gen,
                recv_armed: false,
                sending: false,
                flush_queued: false,
                closing: false,
                cancel_sent: false,
                queue: VecDeque::with_capacity(MAX_IOV),
                gather: Gather::new(),
            });
            self.arm_recv(slot)?;
        } else {
            // EMFILE and friends: the bench raises RLIMIT_NOFILE, so this is
            // only reported; the multishot ACCEPT is re-armed below.
            eprintln!("accept: {}", io::Error::from_raw_os_error(-res));
        }
        if !more {
            self.arm_accept()?;
        }
        Ok(())
    }

    fn on_recv(&mut self, slot: usize, gen: u32, res: i32, flags: u32) -> io::Result<()> {
        let bid = cqueue::buffer_select(flags);
        if bid.is_some() {
            self.bufs.available -= 1;
        }
        let more = cqueue::more(flags);
        let Some(c) = self.conns.get_mut(slot).filter(|c| c.gen == gen) else {
            // Unreachable by construction (slots outlive their operations);
            // never lose a buffer all the same.
            if let Some(bid) = bid {
                self.bufs.recycle(bid);
            }
            return Ok(());
        };
        if !more {
            c.recv_armed = false;
        }
        match (res, bid) {
            (n, Some(bid)) if n > 0 => {
                if c.closing {
                    self.bufs.recycle(bid);
                } else {
                    c.queue.push_back(Chunk {
                        bid,
                        off: 0,
                        len: n as u32,
                    });
                    self.schedule_flush(slot);
                    // Multishot may end on its own (e.g. CQ overflow).
                    if !more {
                        self.arm_recv(slot)?;
                    }
                }
            }
            (e, _) if e == -libc::ENOBUFS => {
                if !c.closing {
                    self.starved.push((slot, gen));
                }
            }
            // 0 is EOF; anything else an error.
            _ => self.close(slot)?,
        }
        self.free_if_done(slot);
        Ok(())
    }

    fn on_send(&mut self, slot: usize, gen: u32, res: i32) -> io::Result<()> {
        let Some(c) = self.conns.get_mut(slot).filter(|c| c.gen == gen) else {
            return Ok(());
        };
        c.sending = false;
        if c.closing {
            for chunk in c.queue.drain(..) {
                self.bufs.recycle(chunk.bid);
            }
            self.free_if_done(slot);
            return Ok(());
        }
        if res <= 0 {
            self.close(slot)?;
            self.free_if_done(slot);
            return Ok(());
        }
        let mut sent = res as u32;
        while sent > 0 {
            let Some(front) = c.queue.front_mut() else {
                break;
            };
            let left = front.len - front.off;
            if sent < left {
                front.off += sent;
                break;
            }
            sent -= left;
            let bid = front.bid;
            c.queue.pop_front();
            self.bufs.recycle(bid);
        }
        if !c.queue.is_empty() {
            self.schedule_flush(slot);
        }
        Ok(())
    }

    /// First phase of closing: return queued buffers (unless a SEND may
    /// still read them: then its completion returns them) and cancel the
    /// RECV; `free_if_done` does the rest.
    fn close(&mut self, slot: usize) -> io::Result<()> {
        let c = &mut self.conns[slot];
        c.closing = true;
        if !c.sending {
            for chunk in c.queue.drain(..) {
                self.bufs.recycle(chunk.bid);
            }
        }
        if c.recv_armed && !c.cancel_sent {
            c.cancel_sent = true;
            let sqe = opcode::AsyncCancel::new(token(Op::Recv, slot, c.gen))
                .build()
                .user_data(token(Op::Cancel, slot, c.gen));
            // SAFETY: a cancel refers to no buffer and no fd.
            unsafe { self.push(&sqe) }?;
        }
        Ok(())
    }

    /// Second phase: once no operation is in flight, free the slot (which
    /// closes the fd).
    fn free_if_done(&mut self, slot: usize) {
        if self
            .conns
            .get(slot)
            .is_some_and(|c| c.closing && !c.recv_armed && !c.sending)
        {
            self.conns.remove(slot);
        }
    }

    fn rearm_starved(&mut self) -> io::Result<()> {
        if self.starved.is_empty() || self.bufs.available == 0 {
            return Ok(());
        }
        let starved = std::mem::take(&mut self.starved);
        for (slot, gen) in starved {
            let live = self
                .conns
                .get(slot)
                .is_some_and(|c| c.gen == gen && !c.closing && !c.recv_armed);
            if live {
                self.arm_recv(slot)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for (op, slot, gen) in [
            (Op::Accept, 0, 0),
            (Op::Recv, 7, 1),
            (Op::Send, 0xffff_ffff, GEN_MASK),
            (Op::Cancel, 12345, 999),
        ] {
            assert_eq!(untoken(token(op, slot, gen)), (op, slot, gen));
        }
    }
}

//! The io_uring driver: the loop's completion backend (the Proactor).
//!
//! Every `unsafe` of the completion side lives in this module (and its
//! `buf_ring` child). The rule that makes it sound: a buffer or fd named by
//! a submission belongs to the kernel until that operation's **final**
//! completion (for multishot operations, the completion without
//! `IORING_CQE_F_MORE`). So each operation lives in the `ops` slab, keyed by
//! its `user_data`, and owns what keeps its memory and fd alive:
//!
//! * a send owns its [`Buffer`] (moving a `Buffer` does not move its heap
//!   bytes) and an `Rc` of its handler, which owns the socket;
//! * a multishot receive or accept owns an `Rc` of its handler (which owns
//!   the socket); its bytes land in the provided-buffer ring, owned by the
//!   driver;
//! * a poll (used for generic channels: eventfd, timerfd, user fds) names
//!   only an fd. A channel's fd is owned by its handler, which the loop's
//!   channel table holds until it has deregistered the channel (which
//!   removes the poll); the loop's own eventfd and timerfd live as long as
//!   the loop.
//!
//! Closing is two-phase: the owner asks for a cancel, and drops its
//! handler only when the final completion arrives. The driver itself, when
//! dropped, cancels everything and waits for the completions before it
//! frees any memory; if the kernel does not answer in time the memory is
//! leaked rather than freed under the kernel's feet.
//!
//! Generic channels get level-triggered readiness from single-shot
//! `POLL_ADD`s re-armed after each event, so `Channel` semantics are those
//! of level-triggered epoll.

mod buf_ring;

use crate::buffer::Buffer;
use crate::gen_slab::GenSlab;
use crate::poller::{Interest, Ready, Token};
use buf_ring::{BufRing, GROUP};
use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// `user_data` of submissions whose completion nobody waits for
/// (cancels, poll removals). Never a `GenSlab` key (index `u32::MAX`).
const IGNORED: u64 = u64::MAX;
/// Submission and completion queue sizes.
const SQ_ENTRIES: u32 = 1024;
const CQ_ENTRIES: u32 = 8192;
/// Most receive buffers per loop (allocated at once, touched and provided
/// only as needed), and their size; 16 KiB covers typical messages in one
/// completion. A buffer goes back to the ring as soon as its bytes are
/// copied, so running out only pauses a receive until the next loop
/// iteration re-arms it (the data waits in the socket). More buffers cost
/// more than that pause: the kernel takes them in ring order, so every
/// receive writes to the buffer least recently used, and a ring larger than
/// the cache makes each copy a cache miss. Measured (1 loop, 64 KiB
/// ping-pong, 1000 sessions): 2048 buffers 55.8 µs of CPU per message, 128
/// buffers 37.8, 64 buffers 32.4; 16 B and 4 KiB messages within noise of
/// each other. `MUDUO_URING_RECV_BUFFERS` overrides it.
const RECV_BUFFERS: u16 = 128;
const RECV_BUFFER_SIZE: u32 = 16 * 1024;
/// Receive buffers provided at first, doubled each time a receive ends for
/// want of one (ENOBUFS), up to [`RECV_BUFFERS`].
const INITIAL_RECV_BUFFERS: u16 = 64;

/// What a completion-based transport is told. Called on the loop thread,
/// with no driver borrow held except during [`on_recv`](Self::on_recv).
pub(crate) trait CompletionHandler {
    /// Bytes of a receive, in a ring buffer that goes back to the kernel
    /// right after this returns: copy them, and do not touch the driver.
    fn on_recv(&self, data: &[u8]);
    /// A receive or accept completion: `res` is the kernel's result (bytes,
    /// fd, or `-errno`); `more` is false on the operation's final completion.
    fn on_complete(&self, op: OpKind, res: i32, more: bool, now: Instant);
    /// A send finished: `res` bytes were sent (or `-errno`); `buf` is the
    /// buffer it was given, with nothing consumed.
    fn on_sent(&self, res: i32, buf: Buffer);
}

/// The kind of a multishot operation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum OpKind {
    /// Multishot receive into the provided-buffer ring.
    Recv,
    /// Multishot accept.
    Accept,
}

enum Op {
    Poll(Token),
    Multi(OpKind, Rc<dyn CompletionHandler>),
    Send(Rc<dyn CompletionHandler>, Buffer),
}

struct PollReg {
    fd: RawFd,
    interest: Interest,
    armed: Option<u64>,
}

/// What one completion means, resolved while the driver is borrowed and
/// acted on after the borrow ends (handlers may submit more work).
pub(crate) enum Event {
    Nothing,
    Ready(Token, Ready),
    Multi {
        handler: Rc<dyn CompletionHandler>,
        op: OpKind,
        res: i32,
        more: bool,
        buffer: Option<u16>,
    },
    Sent(Rc<dyn CompletionHandler>, i32, Buffer),
}

/// One io_uring instance with its operations and receive buffers.
pub(crate) struct Uring {
    // Field order matters for the fallback drop path: the ring (the fd)
    // closes before the buffers and operations are released.
    ring: IoUring,
    bufs: BufRing,
    ops: GenSlab<Op>,
    polls: HashMap<Token, PollReg>,
    completions: Vec<(u64, i32, u32)>,
}

impl Uring {
    /// Sets up a ring with the cheapest task-running mode the kernel has,
    /// probes the opcodes the driver needs and registers the receive buffers.
    pub(crate) fn new() -> io::Result<Uring> {
        let ring = build_ring().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("io_uring is not available ({e}); check kernel.io_uring_disabled, seccomp, or the kernel version"),
            )
        })?;
        probe(&ring)?;
        let bufs = BufRing::new(
            &ring,
            recv_buffers(),
            RECV_BUFFER_SIZE,
            INITIAL_RECV_BUFFERS,
        )
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "io_uring provided-buffer rings are not supported ({e}; kernel 5.19+ needed)"
                ),
            )
        })?;
        Ok(Uring {
            ring,
            bufs,
            ops: GenSlab::default(),
            polls: HashMap::new(),
            completions: Vec::with_capacity(256),
        })
    }

    /// Queues a submission; submits early only if the queue is full.
    ///
    /// # Safety
    /// Whatever memory and fd `entry` names must stay valid until the
    /// operation's final completion (see the module docs).
    unsafe fn push(&mut self, entry: squeue::Entry) {
        for _ in 0..8 {
            // SAFETY: the caller's contract.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return;
            }
            if let Err(e) = self.ring.submit() {
                tracing::warn!(error = %e, "io_uring submit failed while the queue was full");
            }
        }
        tracing::error!("io_uring submission queue stays full; submission dropped");
    }

    // ----- generic channels: readiness through POLL_ADD ----------------------

    /// Starts watching `fd` for `interest` (level-triggered).
    pub(crate) fn register(&mut self, fd: BorrowedFd<'_>, token: Token, interest: Interest) {
        self.polls.insert(
            token,
            PollReg {
                fd: fd.as_raw_fd(),
                interest,
                armed: None,
            },
        );
        self.rearm(token);
    }

    /// Changes what a registered fd is watched for.
    pub(crate) fn reregister(&mut self, fd: BorrowedFd<'_>, token: Token, interest: Interest) {
        let old = match self.polls.get_mut(&token) {
            Some(reg) => {
                reg.fd = fd.as_raw_fd();
                reg.interest = interest;
                reg.armed.take()
            }
            None => return self.register(fd, token, interest),
        };
        if let Some(key) = old {
            self.remove_poll(key);
        }
        self.rearm(token);
    }

    /// Stops watching the fd of `token`.
    pub(crate) fn deregister(&mut self, token: Token) {
        if let Some(PollReg {
            armed: Some(key), ..
        }) = self.polls.remove(&token)
        {
            self.remove_poll(key);
        }
    }

    fn remove_poll(&mut self, key: u64) {
        let entry = opcode::PollRemove::new(key).build().user_data(IGNORED);
        // SAFETY: a poll removal names only another operation's user_data.
        unsafe { self.push(entry) };
    }

    /// Arms a single-shot poll for `token` if it is registered, has
    /// interest and has none in flight. Called after each of its events,
    /// which gives level-triggered behaviour.
    pub(crate) fn rearm(&mut self, token: Token) {
        let Some(reg) = self.polls.get(&token) else {
            return;
        };
        if reg.armed.is_some() || reg.interest.is_empty() {
            return;
        }
        let fd = reg.fd;
        let mut mask = 0u32;
        if reg.interest.is_readable() {
            mask |= (libc::POLLIN | libc::POLLPRI | libc::POLLRDHUP) as u32;
        }
        if reg.interest.is_writable() {
            mask |= libc::POLLOUT as u32;
        }
        let key = self.ops.insert(Op::Poll(token));
        if let Some(reg) = self.polls.get_mut(&token) {
            reg.armed = Some(key);
        }
        let entry = opcode::PollAdd::new(types::Fd(fd), mask)
            .build()
            .user_data(key);
        // SAFETY: a poll names only the fd. A channel's handler owns it and
        // the channel table drops the handler only after deregistering,
        // which removes the poll; the kernel holds its own file reference
        // for a poll still in flight.
        unsafe { self.push(entry) };
    }

    // ----- completion operations ----------------------------------------------

    /// Starts a multishot receive on `fd` into the provided-buffer ring.
    pub(crate) fn recv_multishot(&mut self, fd: RawFd, handler: Rc<dyn CompletionHandler>) -> u64 {
        let key = self.ops.insert(Op::Multi(OpKind::Recv, handler));
        let entry = opcode::RecvMulti::new(types::Fd(fd), GROUP)
            .build()
            .user_data(key);
        // SAFETY: the op owns an Rc of the handler, which owns the socket, so
        // `fd` stays open until the final completion removes the op; the
        // bytes go to ring buffers that live as long as the driver.
        unsafe { self.push(entry) };
        key
    }

    /// Starts a multishot accept on the listening socket `fd`.
    pub(crate) fn accept_multishot(
        &mut self,
        fd: RawFd,
        handler: Rc<dyn CompletionHandler>,
    ) -> u64 {
        let key = self.ops.insert(Op::Multi(OpKind::Accept, handler));
        let entry = opcode::AcceptMulti::new(types::Fd(fd))
            .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
            .build()
            .user_data(key);
        // SAFETY: the op owns an Rc of the handler (the acceptor), which owns
        // the listening socket until the final completion removes the op; no
        // memory is named (no peer address is asked for).
        unsafe { self.push(entry) };
        key
    }

    /// Sends the readable bytes of `buf` on `fd`; the buffer comes back in
    /// [`CompletionHandler::on_sent`] with the result.
    pub(crate) fn send(
        &mut self,
        fd: RawFd,
        buf: Buffer,
        handler: Rc<dyn CompletionHandler>,
    ) -> u64 {
        let len = buf.readable_bytes().min(u32::MAX as usize) as u32;
        let ptr = buf.peek().as_ptr();
        let key = self.ops.insert(Op::Send(handler, buf));
        let entry = opcode::Send::new(types::Fd(fd), ptr, len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(key);
        // SAFETY: the op owns the Buffer whose readable bytes `ptr..ptr+len`
        // are sent (moving a Buffer does not move its heap memory, and nobody
        // else can reach it until the op is removed at its completion), and
        // an Rc of the handler, which owns the socket `fd`.
        unsafe { self.push(entry) };
        key
    }

    /// Asks the kernel to cancel operation `key`; its final completion still
    /// arrives (usually with `-ECANCELED`) and only then is it released.
    pub(crate) fn cancel(&mut self, key: u64) {
        if self.ops.get(key).is_none() {
            return;
        }
        let entry = opcode::AsyncCancel::new(key).build().user_data(IGNORED);
        // SAFETY: a cancel names only another operation's user_data.
        unsafe { self.push(entry) };
    }

    // ----- waiting and completions ----------------------------------------------

    /// Submits everything queued and waits up to `timeout` (`None` =
    /// forever) for at least one completion, in one `io_uring_enter`; then
    /// moves the completions out of the ring.
    pub(crate) fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let result = match timeout {
            None => self.ring.submit_and_wait(1),
            Some(d) => {
                let ts = types::Timespec::new()
                    .sec(d.as_secs())
                    .nsec(d.subsec_nanos());
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
        };
        match result {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) => {}
            Err(e) => return Err(e),
        }
        let completions = &mut self.completions;
        completions.extend(
            self.ring
                .completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        Ok(())
    }

    /// Takes the completions gathered by the last [`wait`](Self::wait).
    pub(crate) fn take_completions(&mut self) -> Vec<(u64, i32, u32)> {
        std::mem::take(&mut self.completions)
    }

    /// Hands the (drained) completion vector back, to keep its capacity.
    pub(crate) fn return_completions(&mut self, mut v: Vec<(u64, i32, u32)>) {
        v.clear();
        if self.completions.is_empty() {
            self.completions = v;
        }
    }

    /// Resolves one completion; releases the operation on its final one.
    pub(crate) fn resolve(&mut self, user_data: u64, res: i32, flags: u32) -> Event {
        if user_data == IGNORED {
            return Event::Nothing;
        }
        let more = cqueue::more(flags);
        match self.ops.get(user_data) {
            None => Event::Nothing,
            Some(Op::Send(..)) => match self.ops.remove(user_data) {
                Some(Op::Send(handler, buf)) => Event::Sent(handler, res, buf),
                _ => Event::Nothing,
            },
            Some(Op::Poll(token)) => {
                let token = *token;
                self.ops.remove(user_data);
                match self.polls.get_mut(&token) {
                    Some(reg) if reg.armed == Some(user_data) => reg.armed = None,
                    _ => return Event::Nothing, // replaced or removed meanwhile
                }
                if res == -libc::ECANCELED {
                    return Event::Nothing;
                }
                // A failed poll (e.g. EBADF: the fd was closed while
                // registered) would fail again at once if re-armed: report
                // it as INVALID, which makes the loop disable the channel.
                let ready = if res < 0 {
                    Ready::INVALID | Ready::ERROR
                } else {
                    Ready::from_kernel_bits(res as u32)
                };
                Event::Ready(token, ready)
            }
            Some(Op::Multi(op, handler)) => {
                let op = *op;
                if res == -libc::ENOBUFS {
                    // The receive ends and its owner re-arms it: let the
                    // next one find more buffers.
                    self.bufs.grow();
                }
                let handler = if more {
                    handler.clone()
                } else {
                    match self.ops.remove(user_data) {
                        Some(Op::Multi(_, h)) => h,
                        _ => return Event::Nothing,
                    }
                };
                Event::Multi {
                    handler,
                    op,
                    res,
                    more,
                    buffer: cqueue::buffer_select(flags),
                }
            }
        }
    }

    /// The bytes of receive buffer `bid` (valid until [`recycle`](Self::recycle)).
    pub(crate) fn buffer(&self, bid: u16, len: usize) -> &[u8] {
        self.bufs.bytes(bid, len)
    }

    /// Gives receive buffer `bid` back to the kernel.
    pub(crate) fn recycle(&mut self, bid: u16) {
        self.bufs.recycle(bid);
    }
}

impl Drop for Uring {
    fn drop(&mut self) {
        // Phase one: cancel everything in flight.
        let keys: Vec<u64> = self.ops.keys().collect();
        for key in keys {
            self.cancel(key);
        }
        // Phase two: wait (bounded) for every final completion before the
        // buffers they may write to are freed.
        for _ in 0..50 {
            if self.ops.is_empty() {
                break;
            }
            if self.wait(Some(Duration::from_millis(20))).is_err() {
                break;
            }
            for (ud, res, flags) in self.take_completions() {
                if let Event::Multi {
                    buffer: Some(bid), ..
                } = self.resolve(ud, res, flags)
                {
                    self.bufs.recycle(bid);
                }
            }
        }
        if !self.ops.is_empty() {
            tracing::warn!(
                ops = self.ops.len(),
                "io_uring operations still in flight at loop teardown; leaking their memory"
            );
            let ops = std::mem::take(&mut self.ops);
            std::mem::forget(ops);
            // The ring buffers may still be written to as well.
            let bufs = std::mem::replace(&mut self.bufs, BufRing::empty());
            std::mem::forget(bufs);
        }
    }
}

/// Most receive buffers per loop: [`RECV_BUFFERS`], or `MUDUO_URING_RECV_BUFFERS`
/// (rounded up to a power of two, 1 to 32768) to tune for many busy
/// connections per loop, or to test running out of them.
fn recv_buffers() -> u16 {
    std::env::var("MUDUO_URING_RECV_BUFFERS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .map(|n| n.clamp(1, 32768).next_power_of_two() as u16)
        .unwrap_or(RECV_BUFFERS)
}

/// SINGLE_ISSUER + DEFER_TASKRUN where the kernel has them (6.1+), else
/// COOP_TASKRUN (5.19+), else plain. Without one of the first two,
/// measured io_uring servers cost 1.3-1.5x epoll's CPU per message.
fn build_ring() -> io::Result<IoUring> {
    IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_cqsize(CQ_ENTRIES)
        .build(SQ_ENTRIES)
        .or_else(|_| {
            IoUring::builder()
                .setup_coop_taskrun()
                .setup_cqsize(CQ_ENTRIES)
                .build(SQ_ENTRIES)
        })
        .or_else(|_| {
            IoUring::builder()
                .setup_cqsize(CQ_ENTRIES)
                .build(SQ_ENTRIES)
        })
}

fn probe(ring: &IoUring) -> io::Result<()> {
    let mut probe = Probe::new();
    ring.submitter().register_probe(&mut probe)?;
    let needed = [
        (opcode::PollAdd::CODE, "POLL_ADD"),
        (opcode::PollRemove::CODE, "POLL_REMOVE"),
        (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
        (opcode::RecvMulti::CODE, "RECV"),
        (opcode::Send::CODE, "SEND"),
        (opcode::AcceptMulti::CODE, "ACCEPT"),
    ];
    for (code, name) in needed {
        if !probe.is_supported(code) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("io_uring lacks the {name} opcode on this kernel"),
            ));
        }
    }
    Ok(())
}

/// Takes ownership of the fd an accept completion returned.
pub(crate) fn adopt_accepted(res: i32) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    if res < 0 {
        return None;
    }
    // SAFETY: a successful accept completion's result is a new fd that
    // nothing else owns; it is wrapped exactly once, here.
    Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(res) })
}

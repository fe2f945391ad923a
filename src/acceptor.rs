//! `Acceptor`: the listening socket of a server, on its base loop.

use crate::channel::{Channel, ChannelHandler};
use crate::event_loop::EventLoop;
use crate::poller::Token;
use crate::socket;
use crate::uring::{adopt_accepted, CompletionHandler, OpKind};
use crate::Buffer;
use rustix::fd::{AsRawFd, OwnedFd};
use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

/// Connections accepted per readable event with level triggering, so one
/// busy listener cannot starve the loop's other channels.
const ACCEPT_BATCH: usize = 64;

/// Accepts connections and hands each to `on_new` (muduo's `Acceptor`).
///
/// Lives in its loop's channel table; removing its channel drops it and
/// closes the listening socket. When the process runs out of fds
/// (`EMFILE`/`ENFILE`) it uses the idle-fd trick from muduo and libev: it
/// keeps one spare fd open, and when accept fails for lack of fds it frees
/// the spare, accepts the pending connection, closes it at once and takes
/// the spare again. The client sees a clean close instead of hanging, and
/// the level-triggered listener does not make the loop spin.
///
/// On io_uring it accepts with one multishot `ACCEPT`. When that fails for
/// lack of fds (or any other error) it falls back to the readiness path
/// above (its channel, watched with a level-triggered `POLL_ADD`), which
/// refuses the pending connections with the idle-fd trick; once the queue
/// is drained with fds to spare, the multishot accept is armed again.
pub(crate) struct Acceptor {
    listener: OwnedFd,
    idle: RefCell<Option<OwnedFd>>,
    channel: RefCell<Option<Channel>>,
    on_new: Box<dyn Fn(OwnedFd, SocketAddr)>,
    edge: bool,
    last_warning: Cell<Option<Instant>>,
    /// io_uring: the multishot accept in flight, if any.
    completion: bool,
    accept_op: Cell<Option<u64>>,
    closed: Cell<bool>,
    me: Weak<Acceptor>,
}

fn open_idle() -> Option<OwnedFd> {
    rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()
}

impl Acceptor {
    /// Registers an already listening socket with `lp`; returns the channel token.
    pub(crate) fn start(
        lp: &EventLoop,
        listener: OwnedFd,
        on_new: Box<dyn Fn(OwnedFd, SocketAddr)>,
    ) -> io::Result<Token> {
        let completion = lp.poller_kind().is_completion();
        let acceptor = Rc::new_cyclic(|me| Acceptor {
            listener,
            idle: RefCell::new(open_idle()),
            channel: RefCell::new(None),
            on_new,
            edge: lp.poller_kind().is_edge_triggered(),
            last_warning: Cell::new(None),
            completion,
            accept_op: Cell::new(None),
            closed: Cell::new(false),
            me: me.clone(),
        });
        let channel = lp.register(acceptor.clone())?;
        if !completion {
            channel.enable_reading()?;
        }
        let token = channel.token();
        *acceptor.channel.borrow_mut() = Some(channel);
        if completion {
            acceptor.arm_multishot();
        }
        Ok(token)
    }

    /// Takes the acceptor out of its loop, closing the listening socket
    /// (on io_uring, once the cancelled accept's final completion is in).
    pub(crate) fn close(&self) {
        self.closed.set(true);
        if let Some(key) = self.accept_op.get() {
            if let Some(ch) = self.channel.borrow().as_ref() {
                ch.with_uring(|u| u.cancel(key));
            }
        }
        let channel = self.channel.borrow_mut().take();
        drop(channel);
    }

    /// io_uring: arms the multishot accept unless one is in flight.
    fn arm_multishot(&self) {
        if self.closed.get() || self.accept_op.get().is_some() {
            return;
        }
        let Some(me) = self.me.upgrade() else { return };
        let fd = self.listener.as_raw_fd();
        if let Some(ch) = self.channel.borrow().as_ref() {
            if let Some(key) = ch.with_uring(|u| u.accept_multishot(fd, me)) {
                self.accept_op.set(Some(key));
            }
        }
    }

    /// io_uring: the multishot accept failed; accept through readiness
    /// (with the idle-fd trick) until the backlog is drained.
    fn fall_back_to_readiness(&self) {
        if let Some(ch) = self.channel.borrow().as_ref() {
            if let Err(e) = ch.enable_reading() {
                tracing::error!(error = %e, "cannot watch the listening socket");
            }
        }
    }

    /// The idle-fd trick; returns whether a pending connection was refused.
    fn out_of_fds(&self, e: &io::Error) -> bool {
        let now = Instant::now();
        let quiet = self
            .last_warning
            .get()
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1));
        if !quiet {
            self.last_warning.set(Some(now));
            tracing::warn!(error = %e, "out of file descriptors: refusing connections (idle-fd trick)");
        }
        self.idle.borrow_mut().take();
        // `accept` reserves the fd before it looks at the queue, so EMFILE
        // comes back even when nothing is pending: only this accept says
        // whether there was a connection to refuse.
        let refused = match socket::accept(&self.listener) {
            Ok((fd, _)) => {
                drop(fd);
                true
            }
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        };
        *self.idle.borrow_mut() = open_idle();
        refused
    }
}

impl ChannelHandler for Acceptor {
    /// The listening socket, which this acceptor owns.
    fn fd(&self) -> rustix::fd::BorrowedFd<'_> {
        rustix::fd::AsFd::as_fd(&self.listener)
    }
    fn handle_read(&self, _receive_time: Instant) {
        let drained = self.accept_ready();
        // io_uring: back to the multishot accept once the backlog is drained
        // and an fd is spare again (else the next connection finds it out).
        if self.completion && drained && self.idle.borrow().is_some() {
            if let Some(ch) = self.channel.borrow().as_ref() {
                let _ = ch.disable_reading();
            }
            self.arm_multishot();
        }
    }
}

impl Acceptor {
    /// The readiness accept loop; true when it stopped at `EAGAIN`.
    fn accept_ready(&self) -> bool {
        let mut accepted = 0;
        while self.edge || accepted < ACCEPT_BATCH {
            match socket::accept(&self.listener) {
                Ok((fd, peer)) => {
                    accepted += 1;
                    crate::inspect::counters::accepted();
                    (self.on_new)(fd, peer);
                }
                Err(e) => match e.raw_os_error() {
                    _ if e.kind() == io::ErrorKind::WouldBlock => return true,
                    Some(libc::EMFILE) | Some(libc::ENFILE) => {
                        crate::inspect::counters::accept_error();
                        if !self.out_of_fds(&e) {
                            break; // nothing was pending: do not spin on EMFILE
                        }
                        if self.idle.borrow().is_none() {
                            break; // could not even free a slot: try again on the next event
                        }
                    }
                    Some(libc::EINTR)
                    | Some(libc::ECONNABORTED)
                    | Some(libc::EPROTO)
                    | Some(libc::EPERM) => {}
                    _ => {
                        tracing::error!(error = %e, "accept failed");
                        break;
                    }
                },
            }
        }
        false
    }
}

impl CompletionHandler for Acceptor {
    fn on_recv(&self, _data: &[u8]) {}

    fn on_complete(&self, op: OpKind, res: i32, more: bool, _now: Instant) {
        if op != OpKind::Accept {
            return;
        }
        if !more {
            self.accept_op.set(None);
        }
        let Some(fd) = adopt_accepted(res) else {
            match -res {
                libc::ECANCELED => {}
                libc::EINTR | libc::ECONNABORTED | libc::EPROTO | libc::EPERM if !more => {
                    self.arm_multishot()
                }
                libc::EINTR | libc::ECONNABORTED | libc::EPROTO | libc::EPERM => {}
                _ => {
                    crate::inspect::counters::accept_error();
                    if -res != libc::EMFILE && -res != libc::ENFILE {
                        tracing::warn!(error = %io::Error::from_raw_os_error(-res), "multishot accept failed; accepting through readiness");
                    }
                    if !more && !self.closed.get() {
                        self.fall_back_to_readiness();
                    }
                }
            }
            return;
        };
        if self.closed.get() {
            return; // `fd` drops: the listener is going away
        }
        crate::inspect::counters::accepted();
        match socket::peer_addr(&fd) {
            Ok(peer) => (self.on_new)(fd, peer),
            Err(e) => tracing::debug!(error = %e, "accepted connection vanished"),
        }
        if !more {
            self.arm_multishot();
        }
    }

    fn on_sent(&self, _res: i32, _buf: Buffer) {}
}

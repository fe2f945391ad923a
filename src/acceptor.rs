//! `Acceptor`: the listening socket of a server, on its base loop.

use crate::channel::{Channel, ChannelHandler};
use crate::event_loop::EventLoop;
use crate::poller::Token;
use crate::socket;
use rustix::fd::OwnedFd;
use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
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
pub(crate) struct Acceptor {
    listener: OwnedFd,
    idle: RefCell<Option<OwnedFd>>,
    channel: RefCell<Option<Channel>>,
    on_new: Box<dyn Fn(OwnedFd, SocketAddr)>,
    edge: bool,
    last_warning: Cell<Option<Instant>>,
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
        let acceptor = Rc::new(Acceptor {
            listener,
            idle: RefCell::new(open_idle()),
            channel: RefCell::new(None),
            on_new,
            edge: lp.poller_kind().is_edge_triggered(),
            last_warning: Cell::new(None),
        });
        let channel = lp.register(&acceptor.listener, acceptor.clone())?;
        channel.enable_reading()?;
        let token = channel.token();
        *acceptor.channel.borrow_mut() = Some(channel);
        Ok(token)
    }

    /// Takes the acceptor out of its loop, closing the listening socket.
    pub(crate) fn close(&self) {
        let channel = self.channel.borrow_mut().take();
        drop(channel);
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
    fn handle_read(&self, _receive_time: Instant) {
        let mut accepted = 0;
        while self.edge || accepted < ACCEPT_BATCH {
            match socket::accept(&self.listener) {
                Ok((fd, peer)) => {
                    accepted += 1;
                    (self.on_new)(fd, peer);
                }
                Err(e) => match e.raw_os_error() {
                    _ if e.kind() == io::ErrorKind::WouldBlock => break,
                    Some(libc::EMFILE) | Some(libc::ENFILE) => {
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
    }
}

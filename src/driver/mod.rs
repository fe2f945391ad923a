//! The loop's driver: readiness (epoll, poll) or completion (io_uring).
//!
//! An enum, not a trait object: the loop calls it once per iteration and per
//! registration change, and each arm is a direct call. The readiness arms
//! report "fd X may be read now" and the loop dispatches to its
//! [`Channel`](crate::Channel)s; the completion arm reports "operation X is
//! done" and the loop hands the result to the operation's owner (see
//! [`crate::uring`]). Generic channels work on every driver; on io_uring
//! they are watched with `POLL_ADD`.

use crate::channel::Registry;
use crate::poller::{Epoll, Interest, Poll, Poller, PollerKind, Ready, Token};
use crate::uring::{Event, Uring};
use rustix::event::epoll;
use std::io;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

/// One loop's I/O driver.
pub(crate) enum Driver {
    Epoll(Epoll),
    Poll(Poll, Vec<(Token, Ready)>),
    Uring(Box<Uring>),
}

/// The events of one wait, lent out of the driver while they are dispatched.
enum Events {
    Epoll(Vec<epoll::Event>),
    Poll(Vec<(Token, Ready)>),
    Uring(Vec<(u64, i32, u32)>),
}

impl Driver {
    /// Builds the driver for `kind`; returns it with the kind actually used
    /// ([`PollerKind::Auto`] resolves to io_uring or, with a log line, epoll).
    pub(crate) fn new(kind: PollerKind) -> io::Result<(Driver, PollerKind)> {
        Ok(match kind {
            PollerKind::Epoll => (Driver::Epoll(Epoll::new(false)?), kind),
            PollerKind::EpollEdge => (Driver::Epoll(Epoll::new(true)?), kind),
            PollerKind::Poll => (Driver::Poll(Poll::new(), Vec::new()), kind),
            PollerKind::Uring => (Driver::Uring(Box::new(Uring::new()?)), kind),
            PollerKind::Auto => match Uring::new() {
                Ok(u) => (Driver::Uring(Box::new(u)), PollerKind::Uring),
                Err(e) => {
                    tracing::info!(error = %e, "io_uring unavailable; falling back to epoll");
                    (Driver::Epoll(Epoll::new(false)?), PollerKind::Epoll)
                }
            },
        })
    }

    /// The io_uring driver, if this is one.
    #[inline]
    pub(crate) fn uring(&mut self) -> Option<&mut Uring> {
        match self {
            Driver::Uring(u) => Some(u),
            _ => None,
        }
    }

    /// Starts watching `fd` (interest never empty).
    pub(crate) fn register(
        &mut self,
        fd: BorrowedFd<'_>,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match self {
            Driver::Epoll(p) => p.register(fd, token, interest),
            Driver::Poll(p, _) => p.register(fd, token, interest),
            Driver::Uring(u) => {
                u.register(fd, token, interest);
                Ok(())
            }
        }
    }

    /// Changes what `fd` is watched for.
    pub(crate) fn reregister(
        &mut self,
        fd: BorrowedFd<'_>,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match self {
            Driver::Epoll(p) => p.reregister(fd, token, interest),
            Driver::Poll(p, _) => p.reregister(fd, token, interest),
            Driver::Uring(u) => {
                u.reregister(fd, token, interest);
                Ok(())
            }
        }
    }

    /// Stops watching `fd`.
    pub(crate) fn deregister(&mut self, fd: BorrowedFd<'_>, token: Token) -> io::Result<()> {
        match self {
            Driver::Epoll(p) => p.deregister(fd),
            Driver::Poll(p, _) => p.deregister(fd),
            Driver::Uring(u) => {
                u.deregister(token);
                Ok(())
            }
        }
    }

    /// Waits up to `timeout` (`None` = forever). On io_uring this is also
    /// the one `io_uring_enter` that submits the iteration's work.
    pub(crate) fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Driver::Epoll(p) => p.wait(timeout),
            Driver::Poll(p, events) => {
                events.clear();
                p.poll(timeout, events)
            }
            Driver::Uring(u) => u.wait(timeout),
        }
    }

    fn take_events(&mut self) -> Events {
        match self {
            Driver::Epoll(p) => Events::Epoll(p.take_events()),
            Driver::Poll(_, events) => Events::Poll(std::mem::take(events)),
            Driver::Uring(u) => Events::Uring(u.take_completions()),
        }
    }

    fn return_events(&mut self, events: Events) {
        match (self, events) {
            (Driver::Epoll(p), Events::Epoll(v)) => p.return_events(v),
            (Driver::Poll(_, slot), Events::Poll(v)) => *slot = v,
            (Driver::Uring(u), Events::Uring(v)) => u.return_completions(v),
            _ => {}
        }
    }
}

/// Delivers what the last [`Driver::wait`] gathered: readiness events to
/// channels (tokens the loop keeps for itself go to `internal`, which
/// returns true when it took one), completions to their operations' owners.
#[inline]
pub(crate) fn dispatch(registry: &Registry, now: Instant, mut internal: impl FnMut(Token) -> bool) {
    let events = registry.driver.borrow_mut().take_events();
    match &events {
        Events::Epoll(v) => {
            for ev in v {
                let (token, ready) = crate::poller::epoll_event(ev);
                if !internal(token) {
                    registry.dispatch(token, ready, now);
                }
            }
        }
        Events::Poll(v) => {
            for &(token, ready) in v {
                if !internal(token) {
                    registry.dispatch(token, ready, now);
                }
            }
        }
        Events::Uring(v) => {
            for &(user_data, res, flags) in v {
                complete(registry, now, user_data, res, flags, &mut internal);
            }
        }
    }
    registry.driver.borrow_mut().return_events(events);
}

fn complete(
    registry: &Registry,
    now: Instant,
    user_data: u64,
    res: i32,
    flags: u32,
    internal: &mut impl FnMut(Token) -> bool,
) {
    let event = match registry.driver.borrow_mut().uring() {
        Some(u) => u.resolve(user_data, res, flags),
        None => return,
    };
    match event {
        Event::Nothing => {}
        Event::Ready(token, ready) => {
            if !internal(token) {
                registry.dispatch(token, ready, now);
            }
            if let Some(u) = registry.driver.borrow_mut().uring() {
                u.rearm(token);
            }
        }
        Event::Multi {
            handler,
            op,
            res,
            more,
            buffer,
        } => {
            if let Some(bid) = buffer {
                // Copied out, then the buffer goes straight back to the kernel.
                if let Some(u) = registry.driver.borrow_mut().uring() {
                    if res > 0 {
                        handler.on_recv(u.buffer(bid, res as usize));
                    }
                    u.recycle(bid);
                }
            }
            handler.on_complete(op, res, more, now);
        }
        Event::Sent(handler, res, buf) => handler.on_sent(res, buf),
    }
}

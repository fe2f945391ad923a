//! The `epoll(7)` backend.

use super::{Interest, Poller, Ready, Token};
use rustix::event::epoll;
use rustix::fd::{BorrowedFd, OwnedFd};
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

const INITIAL_EVENTS: usize = 16;
const MAX_EVENTS: usize = 4096;

/// `epoll`-based [`Poller`]; level-triggered unless built edge-triggered.
///
/// The event array starts at 16 entries and doubles (up to 4096) whenever a
/// wait fills it, as muduo's `EPollPoller` does.
pub struct Epoll {
    fd: OwnedFd,
    edge: bool,
    events: Vec<epoll::Event>,
}

impl Epoll {
    /// Creates an epoll instance (close-on-exec).
    pub fn new(edge_triggered: bool) -> io::Result<Epoll> {
        let fd = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        Ok(Epoll {
            fd,
            edge: edge_triggered,
            events: Vec::with_capacity(INITIAL_EVENTS),
        })
    }

    fn flags(&self, interest: Interest) -> epoll::EventFlags {
        // RDHUP is level-triggered and cannot be cleared by the handler, so it
        // is asked for only with readability: a channel that stopped reading
        // after the peer's FIN must not make the loop spin.
        let mut f = epoll::EventFlags::empty();
        if interest.is_readable() {
            f |= epoll::EventFlags::IN | epoll::EventFlags::RDHUP;
        }
        if interest.is_writable() {
            f |= epoll::EventFlags::OUT;
        }
        if self.edge {
            f |= epoll::EventFlags::ET;
        }
        f
    }
}

pub(crate) fn borrow(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: the Poller contract: a registered fd stays open until it is
    // deregistered; the borrow is used only for the one syscall at hand.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

impl Poller for Epoll {
    fn register(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        epoll::add(
            &self.fd,
            borrow(fd),
            epoll::EventData::new_u64(token.0),
            self.flags(interest),
        )?;
        Ok(())
    }

    fn reregister(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        epoll::modify(
            &self.fd,
            borrow(fd),
            epoll::EventData::new_u64(token.0),
            self.flags(interest),
        )?;
        Ok(())
    }

    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        epoll::delete(&self.fd, borrow(fd))?;
        Ok(())
    }

    fn poll(&mut self, timeout: Option<Duration>, out: &mut Vec<(Token, Ready)>) -> io::Result<()> {
        let ts = timeout.map(|d| rustix::time::Timespec {
            tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: d.subsec_nanos() as _,
        });
        self.events.clear();
        match epoll::wait(
            &self.fd,
            rustix::buffer::spare_capacity(&mut self.events),
            ts.as_ref(),
        ) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        for ev in &self.events {
            // Copied out: the kernel's epoll_event is packed.
            let flags = ev.flags;
            out.push((Token(ev.data.u64()), Ready::from_kernel_bits(flags.bits())));
        }
        if self.events.len() == self.events.capacity() && self.events.capacity() < MAX_EVENTS {
            let cap = self.events.capacity();
            self.events.reserve_exact(cap);
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        if self.edge {
            "epoll-et"
        } else {
            "epoll"
        }
    }
}

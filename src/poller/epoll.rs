//! The `epoll(7)` backend.

use super::{Interest, Poller, Ready, Token};
use rustix::event::epoll;
use rustix::fd::{BorrowedFd, OwnedFd};
use std::io;
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

impl Poller for Epoll {
    fn register(&mut self, fd: BorrowedFd<'_>, token: Token, interest: Interest) -> io::Result<()> {
        epoll::add(
            &self.fd,
            fd,
            epoll::EventData::new_u64(token.0),
            self.flags(interest),
        )?;
        Ok(())
    }

    fn reregister(
        &mut self,
        fd: BorrowedFd<'_>,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        epoll::modify(
            &self.fd,
            fd,
            epoll::EventData::new_u64(token.0),
            self.flags(interest),
        )?;
        Ok(())
    }

    fn deregister(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        epoll::delete(&self.fd, fd)?;
        Ok(())
    }

    fn poll(&mut self, timeout: Option<Duration>, out: &mut Vec<(Token, Ready)>) -> io::Result<()> {
        self.wait(timeout)?;
        out.extend(self.events.iter().map(event_of));
        Ok(())
    }
}

/// The token and readiness of one kernel event.
#[inline]
pub(crate) fn event_of(ev: &epoll::Event) -> (Token, Ready) {
    // Copied out: the kernel's epoll_event is packed.
    let flags = ev.flags;
    (Token(ev.data.u64()), Ready::from_kernel_bits(flags.bits()))
}

impl Epoll {
    /// Waits up to `timeout` (`None` = forever); the events are then in
    /// [`take_events`](Self::take_events). `EINTR` gives no events.
    pub(crate) fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let ts = timeout.map(|d| rustix::time::Timespec {
            tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: d.subsec_nanos() as _,
        });
        if self.events.len() == self.events.capacity() && self.events.capacity() < MAX_EVENTS {
            // The last wait filled the array: let the next one report more.
            let cap = self.events.capacity();
            self.events.reserve_exact(cap);
        }
        self.events.clear();
        match epoll::wait(
            &self.fd,
            rustix::buffer::spare_capacity(&mut self.events),
            ts.as_ref(),
        ) {
            Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The kernel's event array of the last wait, lent to the loop so it
    /// iterates it in place (no copy); give it back with
    /// [`return_events`](Self::return_events).
    pub(crate) fn take_events(&mut self) -> Vec<epoll::Event> {
        std::mem::take(&mut self.events)
    }

    /// Gives the event array back (keeping its length, which tells the next
    /// wait whether the array was full).
    pub(crate) fn return_events(&mut self, events: Vec<epoll::Event>) {
        self.events = events;
    }
}

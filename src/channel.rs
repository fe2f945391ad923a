//! `Channel`: one fd's registration in a loop, its interest, and event dispatch.
//!
//! A [`Channel`] is muduo's `Channel`: it ties a file descriptor to a
//! [`ChannelHandler`] inside one [`EventLoop`](crate::EventLoop), keeps the
//! interest (read, write, both, none) and, when the poller reports events,
//! dispatches them to the handler's read / write / close / error methods.
//! Only the events a channel asked for are acted on: a channel that is not
//! interested in reading never has its read handler called, and a channel
//! with no interest at all is taken out of the poller, so a hung-up or
//! erroring fd nobody listens to cannot make the loop spin (muduo #286).
//!
//! Channels are loop-thread objects (`!Send`). The loop keeps each one in a
//! slot addressed by a [`Token`] that carries a generation, so an event that
//! was queued for a channel that has since been removed is never delivered
//! to a newer channel that reuses the slot or the fd number.

use crate::poller::{Interest, Poller, Ready, Token};
use slab::Slab;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::RawFd;
use std::rc::{Rc, Weak};
use std::time::Instant;

/// What a channel does with its events. Every method has an empty default.
///
/// Handlers are called on the loop thread only, with no loop borrow held, so
/// they may register, update or remove channels (their own included), add
/// timers and queue closures.
pub trait ChannelHandler: Any {
    /// The fd is readable (or at EOF, or has an error to collect by reading).
    /// `receive_time` is when the poll that reported it returned.
    fn handle_read(&self, receive_time: Instant) {
        let _ = receive_time;
    }
    /// The fd is writable.
    fn handle_write(&self) {}
    /// The peer hung up and there is nothing left to read.
    fn handle_close(&self) {}
    /// An error is pending on the fd (for sockets, read it with `SO_ERROR`).
    fn handle_error(&self) {}
}

type ReadFn = Box<dyn Fn(Instant)>;
type EventFn = Box<dyn Fn()>;

/// A [`ChannelHandler`] made of closures, like muduo's `Channel::setReadCallback` and friends.
///
/// ```
/// use muduo::{ChannelCallbacks, EventLoop, Interest};
/// use std::rc::Rc;
/// # fn main() -> std::io::Result<()> {
/// let lp = EventLoop::new()?;
/// let (r, _w) = rustix::pipe::pipe()?;
/// let cb = ChannelCallbacks::new().on_read(|_when| println!("readable"));
/// let ch = lp.register(&r, Rc::new(cb))?;
/// ch.enable_reading()?;
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct ChannelCallbacks {
    read: Option<ReadFn>,
    write: Option<EventFn>,
    close: Option<EventFn>,
    error: Option<EventFn>,
}

impl ChannelCallbacks {
    /// No callbacks yet.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the read callback.
    pub fn on_read(mut self, f: impl Fn(Instant) + 'static) -> Self {
        self.read = Some(Box::new(f));
        self
    }
    /// Sets the write callback.
    pub fn on_write(mut self, f: impl Fn() + 'static) -> Self {
        self.write = Some(Box::new(f));
        self
    }
    /// Sets the close (hang-up) callback.
    pub fn on_close(mut self, f: impl Fn() + 'static) -> Self {
        self.close = Some(Box::new(f));
        self
    }
    /// Sets the error callback.
    pub fn on_error(mut self, f: impl Fn() + 'static) -> Self {
        self.error = Some(Box::new(f));
        self
    }
}

impl ChannelHandler for ChannelCallbacks {
    fn handle_read(&self, t: Instant) {
        if let Some(f) = &self.read {
            f(t)
        }
    }
    fn handle_write(&self) {
        if let Some(f) = &self.write {
            f()
        }
    }
    fn handle_close(&self) {
        if let Some(f) = &self.close {
            f()
        }
    }
    fn handle_error(&self) {
        if let Some(f) = &self.error {
            f()
        }
    }
}

struct Slot {
    token: Token,
    fd: RawFd,
    interest: Interest,
    in_poller: bool,
    handler: Rc<dyn ChannelHandler>,
}

/// The loop's table of channels and its poller (loop thread only).
pub(crate) struct Registry {
    pub(crate) poller: RefCell<Box<dyn Poller>>,
    slots: RefCell<Slab<Slot>>,
    generation: Cell<u32>,
}

fn pack(index: usize, generation: u32) -> Token {
    Token(((generation as u64) << 32) | index as u64)
}

fn index_of(token: Token) -> usize {
    (token.0 & 0xffff_ffff) as usize
}

impl Registry {
    pub(crate) fn new(poller: Box<dyn Poller>) -> Registry {
        Registry {
            poller: RefCell::new(poller),
            slots: RefCell::new(Slab::new()),
            generation: Cell::new(0),
        }
    }

    pub(crate) fn add(self: &Rc<Self>, fd: RawFd, handler: Rc<dyn ChannelHandler>) -> Channel {
        let mut slots = self.slots.borrow_mut();
        let entry = slots.vacant_entry();
        // Generation 0 is never handed out, so no packed token equals the
        // loop's reserved internal tokens (which use index u32::MAX).
        let g = self.generation.get().wrapping_add(1).max(1);
        self.generation.set(g);
        let token = pack(entry.key(), g);
        entry.insert(Slot {
            token,
            fd,
            interest: Interest::NONE,
            in_poller: false,
            handler,
        });
        Channel {
            token,
            fd,
            registry: Rc::downgrade(self),
            interest: Cell::new(Interest::NONE),
        }
    }

    fn set_interest(&self, token: Token, interest: Interest) -> io::Result<()> {
        let mut slots = self.slots.borrow_mut();
        let slot = match slots.get_mut(index_of(token)) {
            Some(s) if s.token == token => s,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "channel was removed",
                ))
            }
        };
        let mut poller = self.poller.borrow_mut();
        if interest.is_empty() {
            if slot.in_poller {
                poller.deregister(slot.fd)?;
                slot.in_poller = false;
            }
        } else if slot.in_poller {
            if slot.interest != interest {
                poller.reregister(slot.fd, token, interest)?;
            }
        } else {
            poller.register(slot.fd, token, interest)?;
            slot.in_poller = true;
        }
        slot.interest = interest;
        Ok(())
    }

    fn remove(&self, token: Token) {
        let removed = {
            let mut slots = self.slots.borrow_mut();
            match slots.get(index_of(token)) {
                Some(s) if s.token == token => Some(slots.remove(index_of(token))),
                _ => None,
            }
        };
        // The handler Rc is dropped here, after the borrow ends, because
        // dropping it may drop a Channel that calls back into the registry.
        if let Some(slot) = removed {
            if slot.in_poller {
                if let Err(e) = self.poller.borrow_mut().deregister(slot.fd) {
                    tracing::debug!(fd = slot.fd, error = %e, "deregister on remove");
                }
            }
        }
    }

    /// The handler behind a live token (used to reach a connection's state).
    pub(crate) fn handler(&self, token: Token) -> Option<Rc<dyn ChannelHandler>> {
        self.with_slot(token, |s| s.handler.clone())
    }

    fn current(&self, token: Token) -> Option<(Interest, Rc<dyn ChannelHandler>)> {
        self.with_slot(token, |s| (s.interest, s.handler.clone()))
    }

    fn interest(&self, token: Token) -> Option<Interest> {
        self.with_slot(token, |s| s.interest)
    }

    /// Reads the live slot of `token`; `None` when the token is stale (its
    /// slot is empty or was reused by a newer channel).
    #[inline]
    fn with_slot<R>(&self, token: Token, f: impl FnOnce(&Slot) -> R) -> Option<R> {
        match self.slots.borrow().get(index_of(token)) {
            Some(s) if s.token == token => Some(f(s)),
            _ => None,
        }
    }

    /// Number of live channels.
    pub(crate) fn len(&self) -> usize {
        self.slots.borrow().len()
    }

    /// Delivers one poller event, muduo's `Channel::handleEvent`, acting
    /// only on what the channel currently asks for. The slot is looked up
    /// again before each step because a handler may remove its channel.
    pub(crate) fn dispatch(&self, token: Token, ready: Ready, now: Instant) {
        let Some((interest, handler)) = self.current(token) else {
            return; // stale: the channel was removed after the event was queued
        };
        if interest.is_empty() {
            return;
        }
        if ready.contains(Ready::INVALID) {
            tracing::warn!(
                fd = self.slots.borrow()[index_of(token)].fd,
                "fd closed while registered; disabling its channel"
            );
            let _ = self.set_interest(token, Interest::NONE);
            handler.handle_error();
            return;
        }
        // `interest` is re-read only after a handler ran, since a handler
        // may change or remove its own channel.
        let mut interest = Some(interest);
        if ready.contains(Ready::HUP) && !ready.contains(Ready::READABLE) {
            handler.handle_close();
            interest = self.interest(token);
            if interest.is_none() {
                return;
            }
        }
        if ready.contains(Ready::ERROR) {
            handler.handle_error();
            interest = self.interest(token);
        }
        let readable = Ready::READABLE.union(Ready::READ_CLOSED);
        if ready.intersects(readable) && interest.is_some_and(|i| i.is_readable()) {
            handler.handle_read(now);
        }
        if ready.contains(Ready::WRITABLE) {
            match self.interest(token) {
                Some(i) if i.is_writable() => handler.handle_write(),
                _ => {}
            }
        }
    }

    /// Drops every slot (loop teardown). Handlers are dropped outside the borrow.
    pub(crate) fn clear(&self) {
        let slots = std::mem::take(&mut *self.slots.borrow_mut());
        drop(slots);
    }
}

/// One fd's registration in an [`EventLoop`](crate::EventLoop) (muduo's `Channel`).
///
/// Made by [`EventLoop::register`](crate::EventLoop::register), which starts
/// it with no interest. Interest changes take effect at once. Dropping the
/// channel (or calling [`remove`](Channel::remove)) takes the fd out of the
/// loop; it never closes the fd, which stays with its owner.
///
/// Loop thread only (`!Send`). Methods on a channel whose loop is gone
/// return an error or do nothing.
pub struct Channel {
    token: Token,
    fd: RawFd,
    registry: Weak<Registry>,
    interest: Cell<Interest>,
}

impl Channel {
    /// The registration token (slot index plus generation).
    pub fn token(&self) -> Token {
        self.token
    }
    /// The fd this channel watches.
    pub fn fd(&self) -> RawFd {
        self.fd
    }
    /// The current interest.
    pub fn interest(&self) -> Interest {
        self.interest.get()
    }
    /// True when readability is wanted.
    pub fn is_reading(&self) -> bool {
        self.interest.get().is_readable()
    }
    /// True when writability is wanted (muduo's `isWriting`).
    pub fn is_writing(&self) -> bool {
        self.interest.get().is_writable()
    }
    /// True when nothing is wanted.
    pub fn is_none_event(&self) -> bool {
        self.interest.get().is_empty()
    }

    /// Replaces the interest. An empty interest takes the fd out of the poller
    /// while keeping the channel (and its token) alive.
    pub fn set_interest(&self, interest: Interest) -> io::Result<()> {
        if interest == self.interest.get() {
            return Ok(());
        }
        let reg = self.registry.upgrade().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotConnected,
                "the channel's event loop is gone",
            )
        })?;
        reg.set_interest(self.token, interest)?;
        self.interest.set(interest);
        Ok(())
    }
    /// Adds readability to the interest.
    pub fn enable_reading(&self) -> io::Result<()> {
        self.set_interest(self.interest.get().add(Interest::READABLE))
    }
    /// Removes readability from the interest.
    pub fn disable_reading(&self) -> io::Result<()> {
        self.set_interest(self.interest.get().remove(Interest::READABLE))
    }
    /// Adds writability to the interest.
    pub fn enable_writing(&self) -> io::Result<()> {
        self.set_interest(self.interest.get().add(Interest::WRITABLE))
    }
    /// Removes writability from the interest.
    pub fn disable_writing(&self) -> io::Result<()> {
        self.set_interest(self.interest.get().remove(Interest::WRITABLE))
    }
    /// Clears all interest.
    pub fn disable_all(&self) -> io::Result<()> {
        self.set_interest(Interest::NONE)
    }

    /// Takes the channel out of its loop. Idempotent; also done on drop.
    /// Events already queued for it are discarded by the token check.
    pub fn remove(&self) {
        if let Some(reg) = self.registry.upgrade() {
            reg.remove(self.token);
        }
        self.interest.set(Interest::NONE);
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.remove();
    }
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("fd", &self.fd)
            .field("token", &self.token)
            .field("interest", &self.interest.get())
            .finish()
    }
}

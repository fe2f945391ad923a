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
//!
//! # Who owns the fd
//!
//! The fd's lifetime is a type, not a promise. A channel is registered with
//! its handler only ([`EventLoop::register`](crate::EventLoop::register)
//! takes no fd): the handler owns the fd, or holds its owner, and lends it
//! through [`ChannelHandler::fd`]. The loop's slot keeps the handler (an
//! `Rc`) for as long as the channel is registered, so the fd stays open for
//! that long; removing the channel first takes the fd out of the poller and
//! only then drops the slot's handler. Safe code cannot close a registered
//! fd: to close it, it would need the owner, which the handler keeps (an
//! `OwnedFd` moved into [`ChannelCallbacks`] is gone from the caller), and
//! a borrowed fd does not satisfy the `'static` bound:
//!
//! ```compile_fail
//! use muduo::{ChannelCallbacks, EventLoop};
//! use std::rc::Rc;
//! # fn main() -> std::io::Result<()> {
//! let lp = EventLoop::new()?;
//! let (r, _w) = rustix::pipe::pipe()?;
//! let ch = lp.register(Rc::new(ChannelCallbacks::new(&r)))?; // borrows `r`: not 'static
//! drop(r); // would close the fd the loop still polls
//! # drop(ch);
//! # Ok(()) }
//! ```
//!
//! ```compile_fail
//! use muduo::{ChannelCallbacks, EventLoop};
//! use std::rc::Rc;
//! # fn main() -> std::io::Result<()> {
//! let lp = EventLoop::new()?;
//! let (r, _w) = rustix::pipe::pipe()?;
//! let ch = lp.register(Rc::new(ChannelCallbacks::new(r)))?; // `r` moves into the handler
//! drop(r); // use of a moved value: the channel owns it now
//! # drop(ch);
//! # Ok(()) }
//! ```
//!
//! To keep using the fd elsewhere, share it (`Rc<OwnedFd>`, `Arc<T>`): it
//! closes when the last owner, possibly the channel's handler, drops it.

use crate::driver::Driver;
use crate::gen_slab::GenSlab;
use crate::poller::{Interest, Ready, Token};
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::rc::{Rc, Weak};
use std::time::Instant;

/// What a channel does with its events, and the fd it watches.
///
/// [`fd`](Self::fd) is required; every event method has an empty default.
/// Event methods are called on the loop thread only, with no loop borrow
/// held, so they may register, update or remove channels (their own
/// included), add timers and queue closures.
pub trait ChannelHandler: Any {
    /// The fd this channel watches, borrowed from the handler itself.
    ///
    /// The handler owns the fd (or holds its owner, such as an `Rc` or
    /// `Arc`), which is what keeps it open while the channel is registered:
    /// the loop holds the handler until the channel is removed. It must
    /// return the same fd on every call. Called on the loop thread at
    /// registration and at every interest change, while the loop's channel
    /// table is borrowed: it must not register, update or remove channels.
    fn fd(&self) -> BorrowedFd<'_>;
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

/// A [`ChannelHandler`] made of closures, like muduo's `Channel::setReadCallback`
/// and friends, holding the owner of the fd it watches.
///
/// ```
/// use muduo::{ChannelCallbacks, EventLoop, Interest};
/// use std::rc::Rc;
/// # fn main() -> std::io::Result<()> {
/// let lp = EventLoop::new()?;
/// let (r, _w) = rustix::pipe::pipe()?;
/// // The handler owns the read end: it closes when the channel is gone.
/// let cb = ChannelCallbacks::new(r).on_read(|_when| println!("readable"));
/// let ch = lp.register(Rc::new(cb))?;
/// ch.enable_reading()?;
/// # Ok(()) }
/// ```
///
/// To read the fd in a callback too, share it:
///
/// ```
/// use muduo::{ChannelCallbacks, EventLoop};
/// use std::rc::Rc;
/// # fn main() -> std::io::Result<()> {
/// let lp = EventLoop::new()?;
/// let (r, _w) = rustix::pipe::pipe()?;
/// let r = Rc::new(r);
/// let reader = r.clone();
/// let cb = ChannelCallbacks::new(r).on_read(move |_| {
///     let mut buf = [0u8; 64];
///     let _ = rustix::io::read(&*reader, &mut buf);
/// });
/// let ch = lp.register(Rc::new(cb))?;
/// ch.enable_reading()?;
/// # Ok(()) }
/// ```
pub struct ChannelCallbacks {
    owner: Box<dyn AsFd>,
    read: Option<ReadFn>,
    write: Option<EventFn>,
    close: Option<EventFn>,
    error: Option<EventFn>,
}

impl ChannelCallbacks {
    /// No callbacks yet, watching the fd of `owner`, which the handler
    /// keeps (and so keeps open) until it is dropped: an `OwnedFd`, a
    /// `File`, a `UnixStream`, or a shared owner such as `Rc<OwnedFd>` or
    /// `Arc<T>` when the fd is used elsewhere too. `owner` must lend the
    /// same fd on every call (every std and rustix fd type does).
    pub fn new(owner: impl AsFd + 'static) -> Self {
        ChannelCallbacks {
            owner: Box::new(owner),
            read: None,
            write: None,
            close: None,
            error: None,
        }
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
    fn fd(&self) -> BorrowedFd<'_> {
        self.owner.as_fd()
    }
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
    /// The number of `handler.fd()`, for logs and checks only: the poller
    /// is always given the fd borrowed from the handler.
    fd: RawFd,
    interest: Interest,
    in_poller: bool,
    handler: Rc<dyn ChannelHandler>,
}

/// The loop's table of channels and its poller (loop thread only).
pub(crate) struct Registry {
    pub(crate) driver: RefCell<Driver>,
    slots: RefCell<GenSlab<Slot>>,
}

impl Registry {
    pub(crate) fn new(driver: Driver) -> Registry {
        Registry {
            driver: RefCell::new(driver),
            slots: RefCell::new(GenSlab::default()),
        }
    }

    pub(crate) fn add(self: &Rc<Self>, handler: Rc<dyn ChannelHandler>) -> Channel {
        let fd = handler.fd().as_raw_fd();
        // GenSlab never hands out generation 0, so no token equals the
        // loop's reserved internal tokens (which use index u32::MAX).
        let token = Token(self.slots.borrow_mut().insert(Slot {
            fd,
            interest: Interest::NONE,
            in_poller: false,
            handler,
        }));
        Channel {
            token,
            fd,
            registry: Rc::downgrade(self),
            interest: Cell::new(Interest::NONE),
        }
    }

    fn set_interest(&self, token: Token, interest: Interest) -> io::Result<()> {
        #[cfg(test)]
        if fault::take() {
            return Err(io::Error::other("injected poller failure"));
        }
        let mut slots = self.slots.borrow_mut();
        let slot = match slots.get_mut(token.0) {
            Some(s) => s,
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "channel was removed",
                ))
            }
        };
        // Borrowed from the handler the slot holds: open while the slot is.
        let fd = slot.handler.fd();
        debug_assert_eq!(fd.as_raw_fd(), slot.fd, "ChannelHandler::fd changed");
        let mut poller = self.driver.borrow_mut();
        if interest.is_empty() {
            if slot.in_poller {
                poller.deregister(fd, token)?;
                slot.in_poller = false;
            }
        } else if slot.in_poller {
            if slot.interest != interest {
                poller.reregister(fd, token, interest)?;
            }
        } else {
            poller.register(fd, token, interest)?;
            slot.in_poller = true;
        }
        slot.interest = interest;
        Ok(())
    }

    fn remove(&self, token: Token) {
        let removed = self.slots.borrow_mut().remove(token.0);
        if let Some(slot) = removed {
            self.deregister(&slot, token);
        }
        // The handler Rc (the fd's owner) is dropped only here: after the
        // fd left the poller, and after the borrow ends, because dropping
        // it may drop a Channel that calls back into the registry.
    }

    fn deregister(&self, slot: &Slot, token: Token) {
        if slot.in_poller {
            if let Err(e) = self
                .driver
                .borrow_mut()
                .deregister(slot.handler.fd(), token)
            {
                tracing::debug!(fd = slot.fd, error = %e, "deregister on remove");
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
        self.slots.borrow().get(token.0).map(f)
    }

    /// Every live channel's handler (the inspector lists connections with it).
    pub(crate) fn handlers(&self) -> Vec<Rc<dyn ChannelHandler>> {
        self.slots
            .borrow()
            .values()
            .map(|s| s.handler.clone())
            .collect()
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
        if ready.intersects(Ready::INVALID | Ready::HUP | Ready::ERROR) {
            return self.dispatch_rare(token, ready, now, interest, handler);
        }
        // The common case, readable and/or writable: `dispatch_rare`
        // without its first steps, so the hot path stays small.
        if ready.intersects(Ready::READABLE | Ready::READ_CLOSED) && interest.is_readable() {
            handler.handle_read(now);
        }
        if ready.contains(Ready::WRITABLE) {
            match self.interest(token) {
                Some(i) if i.is_writable() => handler.handle_write(),
                _ => {}
            }
        }
    }

    /// [`dispatch`](Self::dispatch) of an event that reports a hang-up, an
    /// error or a closed fd. Out of line and cold: inlined, it made the
    /// register allocation of the hot path worse (callgrind: about 5
    /// instructions per echoed message).
    #[cold]
    #[inline(never)]
    fn dispatch_rare(
        &self,
        token: Token,
        ready: Ready,
        now: Instant,
        interest: Interest,
        handler: Rc<dyn ChannelHandler>,
    ) {
        if ready.contains(Ready::INVALID) {
            // poll's POLLNVAL: the fd was closed behind the loop's back,
            // which only unsafe code can do now.
            tracing::warn!(
                fd = ?self.with_slot(token, |s| s.fd),
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

    /// Drops every slot (loop teardown), each fd out of the poller before
    /// its handler goes. Handlers are dropped outside the borrow.
    pub(crate) fn clear(&self) {
        let slots = std::mem::take(&mut *self.slots.borrow_mut());
        for key in slots.keys() {
            if let Some(slot) = slots.get(key) {
                self.deregister(slot, Token(key));
            }
        }
        drop(slots);
    }
}

/// One fd's registration in an [`EventLoop`](crate::EventLoop) (muduo's `Channel`).
///
/// Made by [`EventLoop::register`](crate::EventLoop::register), which starts
/// it with no interest. Interest changes take effect at once. Dropping the
/// channel (or calling [`remove`](Channel::remove)) takes the fd out of the
/// loop, then lets go of the loop's reference to the handler; the fd closes
/// when its owner (the handler, or the last holder of a shared owner) drops
/// it, never while the channel is registered.
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

    /// Runs `f` on the loop's io_uring driver, if the loop has one and is alive.
    pub(crate) fn with_uring<R>(&self, f: impl FnOnce(&mut crate::uring::Uring) -> R) -> Option<R> {
        let reg = self.registry.upgrade()?;
        let mut driver = reg.driver.borrow_mut();
        driver.uring().map(f)
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

/// Test-only fault injection: make the next interest change on this thread
/// fail as a failed `epoll_ctl` would.
#[cfg(test)]
pub(crate) mod fault {
    use std::cell::Cell;
    thread_local! {
        static FAIL_NEXT: Cell<bool> = const { Cell::new(false) };
    }
    /// The next `Channel::set_interest` on this thread fails.
    pub(crate) fn fail_next_interest_change() {
        FAIL_NEXT.with(|f| f.set(true));
    }
    pub(super) fn take() -> bool {
        FAIL_NEXT.with(|f| f.replace(false))
    }
}

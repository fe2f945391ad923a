//! `Connector`: a non-blocking connect with retry and exponential backoff.

use crate::channel::{Channel, ChannelHandler};
use crate::event_loop::EventLoop;
use crate::socket;
use crate::timer::TimerId;
use rustix::fd::OwnedFd;
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

/// First retry delay (muduo's `kInitRetryDelayMs`).
pub(crate) const INIT_RETRY_DELAY: Duration = Duration::from_millis(500);
/// Longest retry delay (muduo's `kMaxRetryDelayMs`).
pub(crate) const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Disconnected,
    Connecting,
    Connected,
}

/// Connects a socket to a server, retrying failed attempts after 0.5 s,
/// 1 s, 2 s, ... up to 30 s (muduo's `Connector`).
///
/// A loop-thread object: the channel table holds it while a connect is in
/// flight, a timer while a retry waits, and its owner through the loop's
/// object table. Timers and handlers hold only weak references, so
/// dropping the owner stops everything.
pub(crate) struct Connector {
    server: SocketAddr,
    state: Cell<State>,
    active: Cell<bool>,
    retry_delay: Cell<Duration>,
    socket: RefCell<Option<OwnedFd>>,
    channel: RefCell<Option<Channel>>,
    timer: Cell<Option<TimerId>>,
    on_connected: Box<dyn Fn(OwnedFd)>,
    me: Weak<Connector>,
}

impl Connector {
    pub(crate) fn new(server: SocketAddr, on_connected: Box<dyn Fn(OwnedFd)>) -> Rc<Connector> {
        Rc::new_cyclic(|me| Connector {
            server,
            state: Cell::new(State::Disconnected),
            active: Cell::new(false),
            retry_delay: Cell::new(INIT_RETRY_DELAY),
            socket: RefCell::new(None),
            channel: RefCell::new(None),
            timer: Cell::new(None),
            on_connected,
            me: me.clone(),
        })
    }

    /// Starts connecting unless an attempt or a retry is already under way.
    pub(crate) fn start(&self) {
        self.active.set(true);
        if self.state.get() == State::Disconnected && self.timer.get().is_none() {
            self.connect();
        }
    }

    /// Starts over with the initial delay (after a connection was lost).
    pub(crate) fn restart(&self) {
        self.state.set(State::Disconnected);
        self.retry_delay.set(INIT_RETRY_DELAY);
        self.start();
    }

    /// Stops connecting and cancels any pending retry.
    pub(crate) fn stop(&self) {
        self.active.set(false);
        if let (Some(id), Some(lp)) = (self.timer.take(), EventLoop::current()) {
            lp.cancel(id);
        }
        if self.state.get() == State::Connecting {
            self.state.set(State::Disconnected);
            self.channel.borrow_mut().take();
            self.socket.borrow_mut().take();
        }
    }

    fn connect(&self) {
        let (fd, result) = match socket::start_connect(self.server) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(server = %self.server, error = %e, "cannot create a socket");
                return self.retry();
            }
        };
        match result {
            Ok(()) => self.connecting(fd),
            Err(e) => match e.raw_os_error() {
                Some(libc::EINPROGRESS) | Some(libc::EINTR) | Some(libc::EISCONN) => {
                    self.connecting(fd)
                }
                Some(libc::EAGAIN)
                | Some(libc::EADDRINUSE)
                | Some(libc::EADDRNOTAVAIL)
                | Some(libc::ECONNREFUSED)
                | Some(libc::ENETUNREACH)
                | Some(libc::EHOSTUNREACH)
                | Some(libc::ETIMEDOUT) => {
                    tracing::debug!(server = %self.server, error = %e, "connect failed, will retry");
                    drop(fd);
                    self.retry();
                }
                _ => {
                    tracing::error!(server = %self.server, error = %e, "connect failed, giving up");
                    drop(fd);
                    self.state.set(State::Disconnected);
                }
            },
        }
    }

    fn connecting(&self, fd: OwnedFd) {
        let Some(lp) = EventLoop::current() else {
            return;
        };
        let Some(me) = self.me.upgrade() else { return };
        self.state.set(State::Connecting);
        let registered = lp.register(&fd, me).and_then(|ch| {
            ch.enable_writing()?;
            Ok(ch)
        });
        *self.socket.borrow_mut() = Some(fd);
        match registered {
            Ok(ch) => *self.channel.borrow_mut() = Some(ch),
            Err(e) => {
                tracing::warn!(server = %self.server, error = %e, "cannot watch connecting socket");
                self.retry();
            }
        }
    }

    fn retry(&self) {
        self.channel.borrow_mut().take();
        self.socket.borrow_mut().take();
        self.state.set(State::Disconnected);
        if !self.active.get() {
            return;
        }
        let delay = self.retry_delay.get();
        self.retry_delay.set((delay * 2).min(MAX_RETRY_DELAY));
        tracing::debug!(server = %self.server, ?delay, "retrying connect");
        if let Some(lp) = EventLoop::current() {
            let weak = self.me.clone();
            let id = lp.run_after_local(delay, move || {
                if let Some(c) = weak.upgrade() {
                    c.timer.set(None);
                    if c.active.get() {
                        c.connect();
                    }
                }
            });
            self.timer.set(Some(id));
        }
    }

    fn finish_connect(&self) {
        if self.state.get() != State::Connecting {
            return;
        }
        self.channel.borrow_mut().take();
        let Some(fd) = self.socket.borrow_mut().take() else {
            return;
        };
        if let Some(e) = socket::take_error(&fd) {
            tracing::debug!(server = %self.server, error = %e, "connect failed, will retry");
            drop(fd);
            self.retry();
        } else if socket::is_self_connect(&fd) {
            tracing::warn!(server = %self.server, "self-connect detected, retrying");
            drop(fd);
            self.retry();
        } else if self.active.get() {
            self.state.set(State::Connected);
            self.retry_delay.set(INIT_RETRY_DELAY);
            (self.on_connected)(fd);
        } else {
            self.state.set(State::Disconnected);
        }
    }
}

impl ChannelHandler for Connector {
    fn handle_read(&self, _receive_time: Instant) {}
    fn handle_write(&self) {
        self.finish_connect();
    }
    fn handle_close(&self) {
        self.finish_connect();
    }
    fn handle_error(&self) {
        self.finish_connect();
    }
}

impl Drop for Connector {
    fn drop(&mut self) {
        self.channel.get_mut().take();
    }
}

//! `Connector`: a non-blocking connect with retry and exponential backoff.

use crate::channel::{Channel, ChannelHandler};
use crate::event_loop::EventLoop;
use crate::socket;
use crate::timer::TimerId;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::time::Duration;

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

/// How a [`Connector`] attempts and retries.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnectConfig {
    /// An attempt still in progress after this long fails with `TimedOut`
    /// and is retried (`None`: the kernel's own SYN timeout, minutes).
    pub(crate) timeout: Option<Duration>,
}

/// Connects a socket to a server, retrying failed attempts after about
/// 0.5 s, 1 s, 2 s, ... up to 30 s (muduo's `Connector`). Each delay is
/// randomised to between half and one and a half times its nominal value,
/// so clients that lost a server together do not come back in lock-step
/// (muduo PR #172: without jitter hundreds of 10k clients failed to
/// reconnect after a server restart).
///
/// A loop-thread object: a timer holds it while a retry waits, and its
/// owner through the loop's object table. The connect in flight is an
/// [`Attempt`], the channel's handler, which owns the connecting socket for
/// as long as it is registered. Timers and handlers hold only weak
/// references, so dropping the owner stops everything.
pub(crate) struct Connector {
    server: SocketAddr,
    state: Cell<State>,
    active: Cell<bool>,
    retry_delay: Cell<Duration>,
    /// The attempt in flight (dropping it closes its socket).
    channel: RefCell<Option<Channel>>,
    timer: Cell<Option<TimerId>>,
    /// The timeout of the attempt in flight.
    deadline: Cell<Option<TimerId>>,
    config: ConnectConfig,
    on_connected: Box<dyn Fn(OwnedFd)>,
    on_failed: Box<dyn Fn(&io::Error)>,
    me: Weak<Connector>,
}

impl Connector {
    pub(crate) fn new(
        server: SocketAddr,
        config: ConnectConfig,
        on_connected: Box<dyn Fn(OwnedFd)>,
        on_failed: Box<dyn Fn(&io::Error)>,
    ) -> Rc<Connector> {
        Rc::new_cyclic(|me| Connector {
            server,
            state: Cell::new(State::Disconnected),
            active: Cell::new(false),
            retry_delay: Cell::new(INIT_RETRY_DELAY),
            channel: RefCell::new(None),
            timer: Cell::new(None),
            deadline: Cell::new(None),
            config,
            on_connected,
            on_failed,
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
        self.cancel_deadline();
        if self.state.get() == State::Connecting {
            self.state.set(State::Disconnected);
            self.channel.borrow_mut().take();
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
                    (self.on_failed)(&e);
                    self.retry();
                }
                _ => {
                    tracing::error!(server = %self.server, error = %e, "connect failed, giving up");
                    drop(fd);
                    self.state.set(State::Disconnected);
                    (self.on_failed)(&e);
                }
            },
        }
    }

    fn connecting(&self, fd: OwnedFd) {
        let Some(lp) = EventLoop::current() else {
            return;
        };
        self.state.set(State::Connecting);
        let attempt = Rc::new(Attempt {
            socket: fd,
            connector: self.me.clone(),
        });
        let registered = lp.register(attempt).and_then(|ch| {
            ch.enable_writing()?;
            Ok(ch)
        });
        match registered {
            Ok(ch) => {
                *self.channel.borrow_mut() = Some(ch);
                if let Some(limit) = self.config.timeout {
                    let weak = self.me.clone();
                    let id = lp.run_after_local(limit, move || {
                        if let Some(c) = weak.upgrade() {
                            c.deadline.set(None);
                            c.timed_out();
                        }
                    });
                    self.deadline.set(Some(id));
                }
            }
            Err(e) => {
                tracing::warn!(server = %self.server, error = %e, "cannot watch connecting socket");
                self.retry();
            }
        }
    }

    /// The attempt in flight took longer than the connect timeout.
    fn timed_out(&self) {
        if self.state.get() != State::Connecting {
            return;
        }
        let e = io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
        tracing::debug!(server = %self.server, timeout = ?self.config.timeout, "connect timed out, will retry");
        (self.on_failed)(&e);
        self.retry();
    }

    fn cancel_deadline(&self) {
        if let (Some(id), Some(lp)) = (self.deadline.take(), EventLoop::current()) {
            lp.cancel(id);
        }
    }

    fn retry(&self) {
        self.cancel_deadline();
        self.channel.borrow_mut().take();
        self.state.set(State::Disconnected);
        if !self.active.get() {
            return;
        }
        let nominal = self.retry_delay.get();
        self.retry_delay.set((nominal * 2).min(MAX_RETRY_DELAY));
        let delay = jittered(nominal);
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

    /// The attempt on `fd` has an outcome (writable, hung up or in error).
    fn finish_connect(&self, fd: &OwnedFd) {
        if self.state.get() != State::Connecting {
            return;
        }
        self.cancel_deadline();
        // Out of the loop; `fd` stays open while the attempt is borrowed.
        self.channel.borrow_mut().take();
        if let Some(e) = socket::take_error(fd) {
            tracing::debug!(server = %self.server, error = %e, "connect failed, will retry");
            (self.on_failed)(&e);
            self.retry();
        } else if socket::is_self_connect(fd) {
            tracing::warn!(server = %self.server, "self-connect detected, retrying");
            self.retry();
        } else if self.active.get() {
            // The attempt keeps its socket until it is dropped (it is the
            // registered handler, and the loop is still dispatching to
            // it), so the connection gets a duplicate of the socket; the
            // original closes when the attempt goes.
            let fd = match rustix::io::fcntl_dupfd_cloexec(fd, 0) {
                Ok(fd) => fd,
                Err(e) => {
                    let e = io::Error::from(e);
                    tracing::warn!(server = %self.server, error = %e, "cannot take the connected socket, will retry");
                    (self.on_failed)(&e);
                    return self.retry();
                }
            };
            self.state.set(State::Connected);
            self.retry_delay.set(INIT_RETRY_DELAY);
            (self.on_connected)(fd);
        } else {
            self.state.set(State::Disconnected);
        }
    }
}

/// One connect attempt: the registered handler of the connecting socket,
/// which it owns for the registration's life.
struct Attempt {
    socket: OwnedFd,
    connector: Weak<Connector>,
}

impl Attempt {
    fn finish(&self) {
        if let Some(c) = self.connector.upgrade() {
            c.finish_connect(&self.socket);
        }
    }
}

impl ChannelHandler for Attempt {
    fn fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
    fn handle_write(&self) {
        self.finish();
    }
    fn handle_close(&self) {
        self.finish();
    }
    fn handle_error(&self) {
        self.finish();
    }
}

/// `nominal` scaled by a random factor in [0.5, 1.5).
fn jittered(nominal: Duration) -> Duration {
    thread_local! {
        static RNG: Cell<u64> = Cell::new({
            use std::hash::{BuildHasher, Hasher};
            // RandomState is seeded from the OS: a different start per thread.
            std::collections::hash_map::RandomState::new().build_hasher().finish() | 1
        });
    }
    let r = RNG.with(|rng| {
        // xorshift64*: plenty for spreading retries, no dependency.
        let mut x = rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        rng.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    });
    let unit = (r >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
    nominal.mul_f64(0.5 + unit)
}

impl Drop for Connector {
    fn drop(&mut self) {
        self.cancel_deadline();
        self.channel.get_mut().take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_range_and_varies() {
        let d = Duration::from_millis(1000);
        let v: Vec<Duration> = (0..200).map(|_| jittered(d)).collect();
        assert!(v.iter().all(|x| *x >= d / 2 && *x < d * 3 / 2));
        let distinct: std::collections::HashSet<_> = v.iter().collect();
        assert!(
            distinct.len() > 150,
            "not random enough: {}",
            distinct.len()
        );
    }
}

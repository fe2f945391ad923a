//! Readiness demultiplexers: the `Poller` seam between an [`EventLoop`] and the kernel.
//!
//! An [`EventLoop`] owns exactly one [`Poller`]. Two backends exist:
//! [`Epoll`] (level-triggered by default, edge-triggered on request) and
//! [`Poll`] (`poll(2)`, the portable fallback muduo also ships). Which one a
//! loop uses is picked by [`PollerKind`]: through
//! [`EventLoopBuilder::poller`](crate::EventLoopBuilder::poller), or by
//! setting the environment variable `MUDUO_USE_POLL` (any value), as in muduo.
//!
//! The trait speaks only of file descriptors, [`Interest`], [`Token`]s and
//! [`Ready`] sets, so that the loop never sees epoll details. It is a
//! *readiness* interface ("you may read now") and nothing more: a
//! completion-based driver such as io_uring ("your read is done, here are
//! the bytes") cannot sit behind it, because there the kernel owns the
//! buffer while the operation is in flight. That driver is a separate
//! variant of the loop's driver, with its own transport for connections.
//!
//! [`EventLoop`]: crate::EventLoop

mod epoll;
mod poll;

pub(crate) use epoll::event_of as epoll_event;
pub use epoll::Epoll;
pub use poll::Poll;

use std::fmt;
use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

/// What a channel wants to hear about: readable, writable, both, or nothing.
///
/// ```
/// use muduo::Interest;
/// let both = Interest::READABLE | Interest::WRITABLE;
/// assert!(both.is_readable() && both.is_writable());
/// assert!(both.remove(Interest::WRITABLE) == Interest::READABLE);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Interest(u8);

impl Interest {
    /// No interest: the fd is kept in the loop's table but not polled.
    pub const NONE: Interest = Interest(0);
    /// Interest in readability (data, EOF, or an error to collect).
    pub const READABLE: Interest = Interest(1);
    /// Interest in writability.
    pub const WRITABLE: Interest = Interest(2);

    /// True when no event is wanted.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// True when readability is wanted.
    pub const fn is_readable(self) -> bool {
        self.0 & 1 != 0
    }
    /// True when writability is wanted.
    pub const fn is_writable(self) -> bool {
        self.0 & 2 != 0
    }
    /// This interest plus `other`.
    pub const fn add(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }
    /// This interest without `other`.
    pub const fn remove(self, other: Interest) -> Interest {
        Interest(self.0 & !other.0)
    }
}

impl std::ops::BitOr for Interest {
    type Output = Interest;
    fn bitor(self, rhs: Interest) -> Interest {
        self.add(rhs)
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.is_readable(), self.is_writable()) {
            (false, false) => f.write_str("NONE"),
            (true, false) => f.write_str("READABLE"),
            (false, true) => f.write_str("WRITABLE"),
            (true, true) => f.write_str("READABLE | WRITABLE"),
        }
    }
}

/// The events a poller reported for one fd (muduo's `revents`).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Ready(u8);

impl Ready {
    /// Data (or EOF) can be read.
    pub const READABLE: Ready = Ready(1);
    /// The fd can be written.
    pub const WRITABLE: Ready = Ready(2);
    /// The peer shut down its write side (`EPOLLRDHUP`).
    pub const READ_CLOSED: Ready = Ready(4);
    /// Hang-up: both directions are closed (`EPOLLHUP`/`POLLHUP`).
    pub const HUP: Ready = Ready(8);
    /// An error is pending on the fd (`EPOLLERR`/`POLLERR`).
    pub const ERROR: Ready = Ready(16);
    /// The fd is not open (`POLLNVAL`; only the poll backend reports it).
    pub const INVALID: Ready = Ready(32);

    /// The empty set.
    pub const fn empty() -> Ready {
        Ready(0)
    }
    /// True when every flag of `other` is set.
    pub const fn contains(self, other: Ready) -> bool {
        self.0 & other.0 == other.0
    }
    /// True when any flag of `other` is set.
    pub const fn intersects(self, other: Ready) -> bool {
        self.0 & other.0 != 0
    }
    /// Union of two sets.
    pub const fn union(self, other: Ready) -> Ready {
        Ready(self.0 | other.0)
    }
    /// True when nothing was reported.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Converts the kernel's event bits. epoll and poll use the same values
    /// on Linux (`EPOLLIN == POLLIN`, ...; checked at compile time below),
    /// so both backends share this.
    #[inline]
    pub(crate) fn from_kernel_bits(bits: u32) -> Ready {
        // Branch-free: one shift-and-mask per flag, on the hot path.
        const IN: u32 = libc::EPOLLIN as u32 | libc::EPOLLPRI as u32;
        let flag = |mask: u32, r: Ready| ((bits & mask != 0) as u8) * r.0;
        Ready(
            flag(IN, Ready::READABLE)
                | flag(libc::EPOLLOUT as u32, Ready::WRITABLE)
                | flag(libc::EPOLLRDHUP as u32, Ready::READ_CLOSED)
                | flag(libc::EPOLLHUP as u32, Ready::HUP)
                | flag(libc::EPOLLERR as u32, Ready::ERROR)
                | flag(libc::POLLNVAL as u32, Ready::INVALID),
        )
    }
}

const _: () = assert!(
    libc::EPOLLIN == libc::POLLIN as i32
        && libc::EPOLLPRI == libc::POLLPRI as i32
        && libc::EPOLLOUT == libc::POLLOUT as i32
        && libc::EPOLLERR == libc::POLLERR as i32
        && libc::EPOLLHUP == libc::POLLHUP as i32
        && libc::EPOLLRDHUP == libc::POLLRDHUP as i32
);

impl std::ops::BitOr for Ready {
    type Output = Ready;
    fn bitor(self, rhs: Ready) -> Ready {
        self.union(rhs)
    }
}

impl fmt::Debug for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Ready::READABLE, "READABLE"),
            (Ready::WRITABLE, "WRITABLE"),
            (Ready::READ_CLOSED, "READ_CLOSED"),
            (Ready::HUP, "HUP"),
            (Ready::ERROR, "ERROR"),
            (Ready::INVALID, "INVALID"),
        ];
        let mut first = true;
        for (flag, name) in names {
            if self.contains(flag) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("EMPTY")?;
        }
        Ok(())
    }
}

/// An opaque registration key handed to the poller and given back with each event.
///
/// The loop packs a slot index and a generation into it, so an event queued
/// for an fd that has since been closed and whose number was reused never
/// reaches the new owner.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Token(pub u64);

/// Which driver (backend) a loop uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum PollerKind {
    /// `epoll(7)`, level-triggered (muduo's default).
    #[default]
    Epoll,
    /// `epoll(7)`, edge-triggered: handlers must drain fds until `EAGAIN`.
    EpollEdge,
    /// `poll(2)`: O(n) per call, kept for comparison and portability.
    Poll,
    /// io_uring, the completion (Proactor) backend: connections receive
    /// through multishot `RECV` into a provided-buffer ring and send through
    /// `SEND` submissions, listeners accept through multishot `ACCEPT`, and
    /// generic [`Channel`](crate::Channel)s are watched with `POLL_ADD`
    /// (level-triggered). Building a loop fails with a clear error where
    /// the kernel lacks io_uring or an opcode it needs.
    Uring,
    /// io_uring where available, else epoll (with a log line). A loop built
    /// with it reports the kind it actually uses.
    Auto,
}

impl PollerKind {
    /// The kind chosen by the environment: `MUDUO_BACKEND` (`epoll`,
    /// `epoll-et`, `poll`, `uring` or `auto`) when set and valid, else
    /// [`PollerKind::Poll`] when `MUDUO_USE_POLL` is set (to anything, as
    /// in muduo), else [`PollerKind::Epoll`]. An invalid `MUDUO_BACKEND`
    /// is logged and ignored.
    pub fn from_env() -> PollerKind {
        if let Some(v) = std::env::var_os("MUDUO_BACKEND") {
            match v.to_str().and_then(PollerKind::parse) {
                Some(kind) => return kind,
                None => {
                    tracing::warn!(value = ?v, "MUDUO_BACKEND: expected epoll, epoll-et, poll, uring or auto; ignored")
                }
            }
        }
        if std::env::var_os("MUDUO_USE_POLL").is_some() {
            PollerKind::Poll
        } else {
            PollerKind::Epoll
        }
    }

    /// Parses `epoll` (or `epoll-lt`), `epoll-et` (or `epoll-edge`), `poll`,
    /// `uring` (or `io_uring`, `io-uring`) and `auto`.
    pub fn parse(s: &str) -> Option<PollerKind> {
        match s {
            "epoll" | "epoll-lt" => Some(PollerKind::Epoll),
            "epoll-et" | "epoll-edge" => Some(PollerKind::EpollEdge),
            "poll" => Some(PollerKind::Poll),
            "uring" | "io_uring" | "io-uring" => Some(PollerKind::Uring),
            "auto" => Some(PollerKind::Auto),
            _ => None,
        }
    }

    /// The name [`parse`](Self::parse) accepts for this kind.
    pub fn name(self) -> &'static str {
        match self {
            PollerKind::Epoll => "epoll",
            PollerKind::EpollEdge => "epoll-et",
            PollerKind::Poll => "poll",
            PollerKind::Uring => "uring",
            PollerKind::Auto => "auto",
        }
    }

    /// True for the edge-triggered backend, whose handlers must read and write until `EAGAIN`.
    pub fn is_edge_triggered(self) -> bool {
        self == PollerKind::EpollEdge
    }

    /// True for the completion backend (io_uring).
    pub fn is_completion(self) -> bool {
        self == PollerKind::Uring
    }
}

impl std::fmt::Display for PollerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for PollerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        PollerKind::parse(s).ok_or_else(|| {
            format!("unknown poller {s:?}: expected epoll, epoll-et, poll, uring or auto")
        })
    }
}

/// A readiness demultiplexer (muduo's `Poller`).
///
/// Used only by the thread that owns the loop. Each call borrows the fd
/// only for that call; a poller remembers the fd's number between calls
/// (epoll in the kernel, [`Poll`] in its array), so the caller keeps the
/// fd open from `register` until `deregister`. An [`EventLoop`] does this
/// by type: its channel table holds each channel's
/// [`ChannelHandler`](crate::ChannelHandler), which owns (or holds the
/// owner of) the fd, and deregisters before dropping it.
///
/// [`EventLoop`]: crate::EventLoop
pub trait Poller {
    /// Starts watching `fd` for `interest`, tagging its events with `token`.
    /// `interest` is never empty: the loop deregisters instead.
    fn register(&mut self, fd: BorrowedFd<'_>, token: Token, interest: Interest) -> io::Result<()>;
    /// Changes what an already registered fd is watched for.
    fn reregister(
        &mut self,
        fd: BorrowedFd<'_>,
        token: Token,
        interest: Interest,
    ) -> io::Result<()>;
    /// Stops watching `fd`.
    fn deregister(&mut self, fd: BorrowedFd<'_>) -> io::Result<()>;
    /// Waits up to `timeout` (`None` = forever) and appends what happened to `events`.
    /// An interrupted wait (`EINTR`) returns `Ok` with no events.
    fn poll(
        &mut self,
        timeout: Option<Duration>,
        events: &mut Vec<(Token, Ready)>,
    ) -> io::Result<()>;
}

#[cfg(test)]
mod tests {
    use super::Ready;

    #[test]
    fn kernel_bits_map_to_ready_flags() {
        let b = |v: i32| v as u32;
        assert_eq!(Ready::from_kernel_bits(b(libc::EPOLLIN)), Ready::READABLE);
        assert_eq!(Ready::from_kernel_bits(b(libc::EPOLLPRI)), Ready::READABLE);
        assert_eq!(Ready::from_kernel_bits(b(libc::EPOLLOUT)), Ready::WRITABLE);
        assert_eq!(
            Ready::from_kernel_bits(b(libc::EPOLLIN
                | libc::EPOLLRDHUP
                | libc::EPOLLHUP
                | libc::EPOLLERR)),
            Ready::READABLE | Ready::READ_CLOSED | Ready::HUP | Ready::ERROR
        );
        assert_eq!(
            Ready::from_kernel_bits(libc::POLLNVAL as u32),
            Ready::INVALID
        );
        assert!(Ready::from_kernel_bits(0).is_empty());
        assert_eq!(
            format!("{:?}", Ready::READABLE | Ready::HUP),
            "READABLE | HUP"
        );
    }
}

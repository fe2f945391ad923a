//! The `poll(2)` backend.

use super::{Interest, Poller, Ready, Token};
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

/// `poll(2)`-based [`Poller`] (muduo's `PollPoller`).
///
/// Only fds with a non-empty interest are in the array (the loop deregisters
/// fds whose interest drops to nothing), so a hang-up on an fd nobody listens
/// to cannot make `poll` return in a loop.
///
/// The array outlives each call, so it keeps plain fd numbers (a borrowed
/// fd's lifetime would end with the call that lent it): the [`Poller`]
/// contract, which an [`EventLoop`](crate::EventLoop) enforces by type,
/// keeps every listed fd open until it is deregistered.
#[derive(Default)]
pub struct Poll {
    fds: Vec<libc::pollfd>,
    tokens: Vec<Token>,
    index: HashMap<RawFd, usize>,
}

impl Poll {
    /// Creates an empty poll set.
    pub fn new() -> Poll {
        Poll::default()
    }

    fn entry(fd: BorrowedFd<'_>, interest: Interest) -> libc::pollfd {
        let mut events = 0;
        if interest.is_readable() {
            events |= libc::POLLIN | libc::POLLRDHUP;
        }
        if interest.is_writable() {
            events |= libc::POLLOUT;
        }
        libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        }
    }
}

impl Poller for Poll {
    fn register(&mut self, fd: BorrowedFd<'_>, token: Token, interest: Interest) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        if self.index.contains_key(&raw) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "fd already registered",
            ));
        }
        self.index.insert(raw, self.fds.len());
        self.fds.push(Self::entry(fd, interest));
        self.tokens.push(token);
        Ok(())
    }

    fn reregister(
        &mut self,
        fd: BorrowedFd<'_>,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        let &i = self
            .index
            .get(&fd.as_raw_fd())
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        self.fds[i] = Self::entry(fd, interest);
        self.tokens[i] = token;
        Ok(())
    }

    fn deregister(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let i = self
            .index
            .remove(&fd.as_raw_fd())
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        self.fds.swap_remove(i);
        self.tokens.swap_remove(i);
        if let Some(moved) = self.fds.get(i) {
            self.index.insert(moved.fd, i);
        }
        Ok(())
    }

    fn poll(&mut self, timeout: Option<Duration>, out: &mut Vec<(Token, Ready)>) -> io::Result<()> {
        let ts = timeout.map(|d| libc::timespec {
            tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
            tv_nsec: d.subsec_nanos() as _,
        });
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `fds` is a live array of `fds.len()` initialised pollfds
        // that the kernel may write `revents` into, `ts_ptr` is null or
        // points at `ts` on this frame, and a null sigmask is allowed. Every
        // fd number in the array is open: it was registered from a borrowed
        // fd, and the loop's channel table deregisters a channel's fd before
        // it drops the handler that owns the fd (a `Poll` used directly is
        // bound by the same `Poller` contract). poll only reads an fd's
        // readiness; it never acts on the fd.
        let n = unsafe {
            libc::ppoll(
                self.fds.as_mut_ptr(),
                self.fds.len() as libc::nfds_t,
                ts_ptr,
                std::ptr::null(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::Interrupted => Ok(()),
                _ => Err(e),
            };
        }
        let mut left = n as usize;
        for (pfd, &token) in self.fds.iter().zip(&self.tokens) {
            if left == 0 {
                break;
            }
            if pfd.revents == 0 {
                continue;
            }
            left -= 1;
            let r = Ready::from_kernel_bits(pfd.revents as u16 as u32);
            out.push((token, r));
        }
        Ok(())
    }
}

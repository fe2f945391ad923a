//! The `poll(2)` backend.

use super::epoll::borrow;
use super::{Interest, Poller, Ready, Token};
use rustix::event::{PollFd, PollFlags};
use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// `poll(2)`-based [`Poller`] (muduo's `PollPoller`).
///
/// Only fds with a non-empty interest are in the array (the loop deregisters
/// fds whose interest drops to nothing), so a hang-up on an fd nobody listens
/// to cannot make `poll` return in a loop.
#[derive(Default)]
pub struct Poll {
    fds: Vec<PollFd<'static>>,
    tokens: Vec<Token>,
    index: HashMap<RawFd, usize>,
}

impl Poll {
    /// Creates an empty poll set.
    pub fn new() -> Poll {
        Poll::default()
    }

    fn flags(interest: Interest) -> PollFlags {
        let mut f = PollFlags::empty();
        if interest.is_readable() {
            f |= PollFlags::IN | PollFlags::RDHUP;
        }
        if interest.is_writable() {
            f |= PollFlags::OUT;
        }
        f
    }
}

impl Poller for Poll {
    fn register(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        if self.index.contains_key(&fd) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "fd already registered",
            ));
        }
        self.index.insert(fd, self.fds.len());
        self.fds
            .push(PollFd::from_borrowed_fd(borrow(fd), Self::flags(interest)));
        self.tokens.push(token);
        Ok(())
    }

    fn reregister(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        let &i = self
            .index
            .get(&fd)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        self.fds[i] = PollFd::from_borrowed_fd(borrow(fd), Self::flags(interest));
        self.tokens[i] = token;
        Ok(())
    }

    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        let i = self
            .index
            .remove(&fd)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        self.fds.swap_remove(i);
        self.tokens.swap_remove(i);
        if i < self.fds.len() {
            let moved = std::os::fd::AsRawFd::as_raw_fd(&rustix::fd::AsFd::as_fd(&self.fds[i]));
            self.index.insert(moved, i);
        }
        Ok(())
    }

    fn poll(&mut self, timeout: Option<Duration>, out: &mut Vec<(Token, Ready)>) -> io::Result<()> {
        let ts = timeout.map(|d| rustix::time::Timespec {
            tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: d.subsec_nanos() as _,
        });
        let n = match rustix::event::poll(&mut self.fds, ts.as_ref()) {
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut left = n;
        for (pfd, &token) in self.fds.iter().zip(&self.tokens) {
            if left == 0 {
                break;
            }
            let f = pfd.revents();
            if f.is_empty() {
                continue;
            }
            left -= 1;
            let r = Ready::from_kernel_bits(f.bits() as u32);
            out.push((token, r));
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        "poll"
    }
}

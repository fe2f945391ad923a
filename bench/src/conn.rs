//! One non-blocking TCP connection in an epoll set, plus a queue for the
//! bytes the kernel did not take yet.
//!
//! Shared by the bare epoll peers and the ping-pong client so that both sides
//! follow the same muduo discipline: write directly while nothing is queued,
//! queue the remainder, and ask for `EPOLLOUT` only while the queue is
//! non-empty (interest is `EPOLLIN` *or* `EPOLLOUT`, which also gives
//! back-pressure: a connection that cannot drain stops being read).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Instant;

use rustix::event::epoll::{self, Event, EventData, EventFlags};
use rustix::time::Timespec;

use crate::sys::would_block;

/// A registered, non-blocking connection. Its epoll key is its fd number.
pub struct Conn {
    fd: OwnedFd,
    out: Vec<u8>,
}

impl Conn {
    /// Adds `fd` (already non-blocking) to `ep` for `EPOLLIN`.
    pub fn register(ep: &OwnedFd, fd: OwnedFd) -> io::Result<Self> {
        let key = fd.as_raw_fd() as u64;
        epoll::add(ep, &fd, EventData::new_u64(key), EventFlags::IN)?;
        Ok(Conn {
            fd,
            out: Vec::new(),
        })
    }

    /// The epoll key (the fd number) of this connection.
    pub fn key(&self) -> usize {
        self.fd.as_raw_fd() as usize
    }

    /// The socket itself.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Reads once into `buf`: `Ok(Some(n))` bytes read (0 = nothing to read
    /// right now), `Ok(None)` = the peer closed the stream.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match rustix::io::read(&self.fd, buf) {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(n)),
            Err(e) if would_block(&e) => Ok(Some(0)),
            Err(e) => Err(e.into()),
        }
    }

    /// Sends `data`: one direct `write` while nothing is queued, the rest is
    /// queued and interest switches to `EPOLLOUT`.
    pub fn send(&mut self, ep: &OwnedFd, data: &[u8]) -> io::Result<()> {
        if !self.out.is_empty() {
            self.out.extend_from_slice(data);
            return Ok(());
        }
        let written = match rustix::io::write(&self.fd, data) {
            Ok(n) => n,
            Err(e) if would_block(&e) => 0,
            Err(e) => return Err(e.into()),
        };
        if written < data.len() {
            self.out.extend_from_slice(&data[written..]);
            self.interest(ep, EventFlags::OUT)?;
        }
        Ok(())
    }

    /// Handles `EPOLLOUT`: writes queued bytes and returns to `EPOLLIN` once
    /// the queue is empty.
    pub fn flush(&mut self, ep: &OwnedFd) -> io::Result<()> {
        if self.out.is_empty() {
            return self.interest(ep, EventFlags::IN);
        }
        match rustix::io::write(&self.fd, &self.out) {
            Ok(n) => {
                self.out.drain(..n);
            }
            Err(e) if would_block(&e) => {}
            Err(e) => return Err(e.into()),
        }
        if self.out.is_empty() {
            self.interest(ep, EventFlags::IN)?;
        }
        Ok(())
    }

    /// True while bytes are queued (the connection waits for `EPOLLOUT`).
    pub fn is_writing(&self) -> bool {
        !self.out.is_empty()
    }

    fn interest(&self, ep: &OwnedFd, flags: EventFlags) -> io::Result<()> {
        let key = EventData::new_u64(self.key() as u64);
        Ok(epoll::modify(ep, &self.fd, key, flags)?)
    }
}

/// A table of connections indexed by fd number: O(1) lookup from an epoll
/// key without hashing.
pub struct ConnTable<T> {
    slots: Vec<Option<T>>,
}

impl<T> Default for ConnTable<T> {
    fn default() -> Self {
        ConnTable { slots: Vec::new() }
    }
}

impl<T> ConnTable<T> {
    /// Stores `value` under `key`, growing the table as needed.
    pub fn insert(&mut self, key: usize, value: T) {
        if key >= self.slots.len() {
            self.slots.resize_with(key + 1, || None);
        }
        self.slots[key] = Some(value);
    }

    /// The entry under `key`, if any.
    pub fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        self.slots.get_mut(key).and_then(Option::as_mut)
    }

    /// Removes (and so closes) the entry under `key`.
    pub fn remove(&mut self, key: usize) -> Option<T> {
        self.slots.get_mut(key).and_then(Option::take)
    }

    /// Iterates over the live entries.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots.iter_mut().filter_map(Option::as_mut)
    }
}

/// The event array of a client's epoll loop, waited on until a deadline.
pub struct Waiter {
    events: Vec<Event>,
}

impl Default for Waiter {
    fn default() -> Self {
        let empty = Event {
            flags: EventFlags::empty(),
            data: EventData::new_u64(0),
        };
        Waiter {
            events: vec![empty; 256],
        }
    }
}

impl Waiter {
    /// Waits on `ep` for events until `deadline`: the ready events, or
    /// `None` once the deadline has passed. Interrupted waits are retried.
    pub fn wait(&mut self, ep: &OwnedFd, deadline: Instant) -> io::Result<Option<&[Event]>> {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let timeout = Timespec::try_from(deadline - now).unwrap_or(Timespec {
                tv_sec: 1,
                tv_nsec: 0,
            });
            match epoll::wait(ep, &mut self.events[..], Some(&timeout)) {
                Ok(n) => return Ok(Some(&self.events[..n])),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

//! The completion transport: a connection's io_uring operations.
//!
//! At most one multishot receive and one send are in flight per
//! connection. A receive that was asked to stop stays "cancelling" until
//! its final completion, so a new one is never armed beside it (two
//! receives in flight could deliver bytes out of order). A send owns its
//! buffer until its completion; a short send is resubmitted with the rest.

use super::ReadOutcome;
use crate::buffer::Buffer;
use crate::channel::Channel;
use crate::uring::CompletionHandler;
use std::cell::Cell;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Recv {
    Idle,
    Active(u64),
    Cancelling(u64),
}

/// A connection's operations in flight.
pub(crate) struct Completion {
    recv: Cell<Recv>,
    send: Cell<Option<u64>>,
    in_flight: Cell<usize>,
}

impl Completion {
    pub(crate) fn new() -> Completion {
        Completion {
            recv: Cell::new(Recv::Idle),
            send: Cell::new(None),
            in_flight: Cell::new(0),
        }
    }

    /// True while a send is in flight.
    #[inline]
    pub(crate) fn sending(&self) -> bool {
        self.send.get().is_some()
    }

    /// Bytes handed to the kernel and not yet confirmed.
    #[inline]
    pub(crate) fn in_flight_bytes(&self) -> usize {
        self.in_flight.get()
    }

    /// Arms the multishot receive unless one is in flight (or still
    /// cancelling: the caller re-arms after its final completion).
    pub(crate) fn start_recv(&self, channel: &Channel, fd: RawFd, h: Rc<dyn CompletionHandler>) {
        if self.recv.get() != Recv::Idle {
            return;
        }
        if let Some(key) = channel.with_uring(|u| u.recv_multishot(fd, h)) {
            self.recv.set(Recv::Active(key));
        }
    }

    /// Asks the receive to stop; bytes already on their way still arrive.
    pub(crate) fn stop_recv(&self, channel: &Channel) {
        if let Recv::Active(key) = self.recv.get() {
            channel.with_uring(|u| u.cancel(key));
            self.recv.set(Recv::Cancelling(key));
        }
    }

    /// The receive's final completion arrived.
    pub(crate) fn recv_ended(&self) {
        self.recv.set(Recv::Idle);
    }

    /// Submits `buf` (non-empty) for sending.
    pub(crate) fn submit_send(
        &self,
        channel: &Channel,
        fd: RawFd,
        buf: Buffer,
        h: Rc<dyn CompletionHandler>,
    ) {
        let len = buf.readable_bytes();
        if let Some(key) = channel.with_uring(|u| u.send(fd, buf, h)) {
            self.send.set(Some(key));
            self.in_flight.set(len);
        }
    }

    /// The send's completion arrived.
    pub(crate) fn send_ended(&self) {
        self.send.set(None);
        self.in_flight.set(0);
    }

    /// Cancels everything in flight (closing); completions still arrive.
    pub(crate) fn cancel_all(&self, channel: &Channel) {
        self.stop_recv(channel);
        if let Some(key) = self.send.get() {
            channel.with_uring(|u| u.cancel(key));
        }
    }
}

/// What a receive completion's result means (`None`: nothing to act on,
/// e.g. the receive was cancelled or ran out of ring buffers).
pub(crate) fn recv_outcome(res: i32) -> Option<ReadOutcome> {
    match res {
        n if n > 0 => Some(ReadOutcome::Open),
        0 => Some(ReadOutcome::Eof),
        e if e == -libc::ENOBUFS || e == -libc::ECANCELED || e == -libc::EINTR => None,
        e => Some(ReadOutcome::Failed(io::Error::from_raw_os_error(-e))),
    }
}

/// Applies a send completion to its buffer: consumes what was sent.
pub(crate) fn send_outcome(res: i32, buf: &mut Buffer) -> io::Result<()> {
    match res {
        n if n >= 0 => {
            buf.retrieve(n as usize);
            Ok(())
        }
        e if e == -libc::EINTR || e == -libc::EAGAIN => Ok(()),
        e => Err(io::Error::from_raw_os_error(-e)),
    }
}

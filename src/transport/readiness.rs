//! The readiness transport: plain non-blocking syscalls, made when the
//! driver (epoll or poll) reports the socket ready.

use super::ReadOutcome;
use crate::buffer::Buffer;
use crate::output_queue::{send_range, FileRange, Flushed, OutputQueue};
use crate::socket;
use rustix::fd::AsFd;
use std::io;

/// With edge triggering, bytes read per readiness event before the message
/// callback runs; the rest is read from the loop's local queue, after the
/// callbacks this batch queued (e.g. a high-water-mark callback that calls
/// `stop_read`), so a fast peer can neither grow the input without bound
/// nor starve the loop's other channels.
pub(crate) const EDGE_READ_BUDGET: usize = 1024 * 1024;

/// Reads once (level-triggered) or until `EAGAIN`, EOF or the read budget
/// (edge-triggered). Returns (bytes read, how it ended).
#[inline]
pub(crate) fn read(fd: impl AsFd, buf: &mut Buffer, edge: bool) -> (usize, ReadOutcome) {
    let fd = fd.as_fd();
    let mut got = 0;
    loop {
        match buf.read_fd(fd) {
            Ok(0) => return (got, ReadOutcome::Eof),
            Ok(n) => {
                got += n;
                if !edge {
                    return (got, ReadOutcome::Open);
                }
                if got >= EDGE_READ_BUDGET {
                    return (got, ReadOutcome::More);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (got, ReadOutcome::Open),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (got, ReadOutcome::Failed(e)),
        }
    }
}

/// Sends what the socket takes now; `Ok(0)` when it takes nothing.
#[inline]
pub(crate) fn send(fd: impl AsFd, data: &[u8]) -> io::Result<usize> {
    match socket::send(&fd, data) {
        Ok(n) => Ok(n),
        Err(e)
            if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted =>
        {
            Ok(0)
        }
        Err(e) => Err(e),
    }
}

/// Sends as much of `range` as the socket takes now.
pub(crate) fn send_file(fd: impl AsFd, range: &mut FileRange) -> io::Result<()> {
    let fd = fd.as_fd();
    // Until EAGAIN or the end: a short sendfile may only mean the file
    // ended early, which the next call reports.
    loop {
        match send_range(&fd, range) {
            Ok(_) if range.remaining > 0 => continue,
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Writes queued output until it is all out or the socket is full.
/// `Ok(None)` means would-block.
pub(crate) fn flush(fd: impl AsFd, output: &mut OutputQueue) -> io::Result<Option<Flushed>> {
    match output.flush(&fd.as_fd()) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

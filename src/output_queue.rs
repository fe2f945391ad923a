//! `OutputQueue`: what a connection still has to write, bytes and file
//! ranges in the order they were queued.

use crate::buffer::{return_spare_buffer, Buffer};
use crate::socket;
use rustix::fd::AsFd;
use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::sync::Arc;

/// The most one `sendfile` call is asked to move; the socket's send buffer
/// usually takes less, this only bounds a single call.
const SENDFILE_CHUNK: u64 = 1 << 30;

/// A range of a file still to send with `sendfile(2)`.
pub(crate) struct FileRange {
    pub(crate) file: Arc<File>,
    pub(crate) offset: u64,
    pub(crate) remaining: u64,
}

enum Item {
    Bytes(Buffer),
    File(FileRange),
}

/// Pending output. `head` holds the bytes that go first; once a file range
/// is queued, later bytes queue behind it in `rest`, so order is kept
/// without copying file contents into memory.
#[derive(Default)]
pub(crate) struct OutputQueue {
    head: Buffer,
    /// Boxed: most connections never queue a file, and an idle connection
    /// should cost as little memory as possible.
    rest: Option<Box<Rest>>,
}

#[derive(Default)]
struct Rest {
    items: VecDeque<Item>,
    bytes: u64,
}

/// How a write attempt ended.
pub(crate) enum Flushed {
    /// Everything queued is written.
    All,
    /// The socket is full; wait for the next writable event.
    Partly,
}

impl OutputQueue {
    /// True when nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_empty() && self.rest.as_ref().is_none_or(|r| r.items.is_empty())
    }

    /// Bytes queued, file ranges included.
    pub(crate) fn len(&self) -> u64 {
        self.head.readable_bytes() as u64 + self.rest.as_ref().map_or(0, |r| r.bytes)
    }

    /// Releases memory once drained (large buffers are not kept around).
    pub(crate) fn release_if_large(&mut self, keep: usize) {
        if self.is_empty() && self.head.capacity() > keep {
            self.head = Buffer::new();
        }
    }

    /// Drops everything queued (closing queued files).
    pub(crate) fn clear(&mut self) {
        *self = OutputQueue::default();
    }

    pub(crate) fn push_bytes(&mut self, data: &[u8]) {
        let Some(rest) = self.rest.as_mut().filter(|r| !r.items.is_empty()) else {
            self.head.append(data);
            return;
        };
        rest.bytes += data.len() as u64;
        if let Some(Item::Bytes(b)) = rest.items.back_mut() {
            b.append(data);
        } else {
            let mut b = Buffer::with_capacity(data.len());
            b.append(data);
            rest.items.push_back(Item::Bytes(b));
        }
    }

    /// Queues the readable bytes of `buf` and leaves it empty. When nothing
    /// is queued, `buf`'s memory becomes the head itself (no copy) and `buf`
    /// gets the old empty head's memory, or none. Otherwise the bytes are
    /// copied behind what is queued, so they go out in the same send
    /// (queueing each buffer on its own would cost a send apiece).
    pub(crate) fn push_buffer(&mut self, buf: &mut Buffer) {
        if self.is_empty() {
            std::mem::swap(&mut self.head, buf);
        } else {
            self.push_bytes(buf.peek());
        }
        buf.retrieve_all();
    }

    pub(crate) fn push_file(&mut self, range: FileRange) {
        if range.remaining == 0 {
            return;
        }
        let rest = self.rest.get_or_insert_with(Box::default);
        rest.bytes += range.remaining;
        rest.items.push_back(Item::File(range));
    }

    /// Writes until everything is out or the socket is full.
    pub(crate) fn flush(&mut self, fd: &impl AsFd) -> io::Result<Flushed> {
        loop {
            if !self.head.is_empty() {
                let want = self.head.readable_bytes();
                let n = retry_eintr(|| socket::send(fd, self.head.peek()))?;
                self.head.retrieve(n);
                if n < want {
                    return Ok(Flushed::Partly);
                }
                continue;
            }
            let Some(rest) = self.rest.as_mut() else {
                return Ok(Flushed::All);
            };
            match rest.items.front_mut() {
                None => {
                    self.rest = None; // drained: give the memory back
                    return Ok(Flushed::All);
                }
                Some(Item::Bytes(_)) => {
                    if let Some(Item::Bytes(b)) = rest.items.pop_front() {
                        rest.bytes -= b.readable_bytes() as u64;
                        // The emptied head's memory goes to the thread's
                        // spares (the next receive uses it) rather than
                        // back to the allocator.
                        return_spare_buffer(std::mem::replace(&mut self.head, b));
                    }
                }
                Some(Item::File(range)) => {
                    // A short sendfile does not mean the socket is full (the
                    // file may have ended), so go on until it says EAGAIN
                    // (an error here) or reports the end: with edge
                    // triggering no further writable event would come.
                    let (n, _) = send_range(fd, range)?;
                    rest.bytes -= n;
                    if range.remaining == 0 {
                        rest.items.pop_front();
                    }
                }
            }
        }
    }
}

/// Bytes of a file read per chunk when a completion transport sends a file
/// range through memory (its fallback for `sendfile`).
const FILE_CHUNK: usize = 64 * 1024;

impl OutputQueue {
    /// For completion transports: takes the next bytes to send as a buffer
    /// the caller owns until the kernel is done with it. File ranges are
    /// read into memory chunk by chunk. `Ok(None)` when nothing is queued;
    /// an error when a queued file cannot be read (or ended early).
    pub(crate) fn take_chunk(&mut self) -> io::Result<Option<Buffer>> {
        loop {
            if !self.head.is_empty() {
                return Ok(Some(std::mem::take(&mut self.head)));
            }
            let Some(rest) = self.rest.as_mut() else {
                return Ok(None);
            };
            match rest.items.front_mut() {
                None => {
                    self.rest = None;
                    return Ok(None);
                }
                Some(Item::Bytes(_)) => {
                    if let Some(Item::Bytes(b)) = rest.items.pop_front() {
                        rest.bytes -= b.readable_bytes() as u64;
                        // The emptied head's memory goes to the thread's
                        // spares (the next receive uses it) rather than
                        // back to the allocator.
                        return_spare_buffer(std::mem::replace(&mut self.head, b));
                    }
                }
                Some(Item::File(range)) => {
                    let want = range.remaining.min(FILE_CHUNK as u64) as usize;
                    let mut chunk = Buffer::with_capacity(want);
                    chunk.ensure_writable(want);
                    let n = read_file_at(&range.file, range.offset, chunk.writable_slice(), want)?;
                    chunk.has_written(n);
                    range.offset += n as u64;
                    range.remaining -= n as u64;
                    rest.bytes -= n as u64;
                    if range.remaining == 0 {
                        rest.items.pop_front();
                    }
                    return Ok(Some(chunk));
                }
            }
        }
    }

    /// Takes the head buffer (empty when nothing is queued; its capacity
    /// is reused), leaving an unallocated one.
    pub(crate) fn take_head(&mut self) -> Buffer {
        std::mem::take(&mut self.head)
    }

    /// Gives an emptied send buffer back as the head, so steady-state
    /// sending reuses one allocation (only if the head is unallocated).
    pub(crate) fn reuse_head(&mut self, mut buf: Buffer) -> Option<Buffer> {
        if self.head.capacity() == 0 && self.head.is_empty() {
            buf.retrieve_all();
            self.head = buf;
            None
        } else {
            Some(buf)
        }
    }
}

fn read_file_at(file: &File, offset: u64, out: &mut [u8], want: usize) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let want = want.min(out.len());
    let n = retry_eintr(|| file.read_at(&mut out[..want], offset))?;
    if n == 0 && want > 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "file ended at offset {offset} before the promised range was sent (it shrank?)"
            ),
        ));
    }
    Ok(n)
}

/// One `sendfile` call for `range`; returns (sent, asked).
pub(crate) fn send_range(fd: &impl AsFd, range: &mut FileRange) -> io::Result<(u64, u64)> {
    let want = range.remaining.min(SENDFILE_CHUNK);
    let mut off = range.offset;
    let n = retry_eintr(|| {
        Ok(rustix::fs::sendfile(
            fd,
            &*range.file,
            Some(&mut off),
            want as usize,
        )?)
    })? as u64;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "file ended at offset {} with {} bytes still to send (it shrank?)",
                range.offset, range.remaining
            ),
        ));
    }
    range.offset += n;
    range.remaining -= n;
    Ok((n, want))
}

fn retry_eintr<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffer(data: &[u8]) -> Buffer {
        let mut b = Buffer::new();
        b.append(data);
        b
    }

    #[test]
    fn push_buffer_takes_the_memory_when_nothing_is_queued() {
        let mut q = OutputQueue::default();
        let mut b = buffer(&[7u8; 2000]);
        let bytes_at = b.peek().as_ptr();
        q.push_buffer(&mut b);
        assert!(b.is_empty());
        assert_eq!(q.len(), 2000);
        let chunk = q.take_chunk().unwrap().unwrap();
        assert_eq!(chunk.peek().as_ptr(), bytes_at, "queued without a copy");
        assert_eq!(chunk.peek(), &[7u8; 2000][..]);
    }

    #[test]
    fn push_buffer_behind_queued_bytes_keeps_the_order() {
        let mut q = OutputQueue::default();
        q.push_bytes(b"first ");
        let mut b = buffer(b"second");
        q.push_buffer(&mut b);
        assert!(b.is_empty());
        assert_eq!(q.len(), 12);
        assert_eq!(q.take_chunk().unwrap().unwrap().peek(), b"first second");
        assert!(q.take_chunk().unwrap().is_none());
    }
}

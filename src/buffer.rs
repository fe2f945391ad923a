//! [`Buffer`]: the byte buffer every connection reads into and writes from.
//!
//! The design follows muduo's `Buffer`: one contiguous allocation split by
//! two indices into three regions,
//!
//! ```text
//! +-------------------+------------------+------------------+
//! | prependable bytes |  readable bytes  |  writable bytes  |
//! |                   |     (CONTENT)    |                  |
//! +-------------------+------------------+------------------+
//! 0      <=      reader index   <=   writer index    <=   capacity
//! ```
//!
//! * reading consumes from the front of the readable region (the reader
//!   index moves right);
//! * writing appends into the writable region (the writer index moves right);
//! * the prependable region lets a length header be put in front of a
//!   message that has already been written, without copying the message.
//!
//! A buffer allocates nothing until the first byte is written, so an idle
//! connection costs no buffer memory, and [`Buffer::shrink`] gives memory
//! back after a burst.

use std::cell::RefCell;
use std::collections::TryReserveError;
use std::fmt;
use std::io::{self, IoSliceMut};
use std::rc::Rc;

use rustix::fd::AsFd;

/// Bytes reserved in front of the readable region when a buffer is
/// allocated or compacted, so that a small header (a length, a type tag)
/// can be prepended without moving the content.
pub const CHEAP_PREPEND: usize = 8;

/// Minimum size of the data area (excluding [`CHEAP_PREPEND`]) of a
/// buffer's first allocation.
pub const INITIAL_SIZE: usize = 1024;

/// Size of the per-thread overflow area used by [`Buffer::read_fd`]: one
/// call reads at most `writable_bytes() + READ_FD_EXTRA` bytes.
pub const READ_FD_EXTRA: usize = 64 * 1024;

/// A growable byte buffer with cheap prepend, modelled on muduo's `Buffer`.
///
/// Layout: `| prependable | readable | writable |` over one `Vec<u8>`, with
/// a reader index and a writer index (see the [module docs](self)).
///
/// * **Lazy allocation.** [`Buffer::new`] and [`Default`] allocate nothing.
///   The first write allocates `CHEAP_PREPEND + max(INITIAL_SIZE, needed)`
///   bytes. [`Buffer::shrink`]`(0)` on an empty buffer frees the memory
///   again.
/// * **Amortised growth.** When the writable region is too small, the buffer
///   first tries to slide the readable bytes back to the front (reusing the
///   space freed by reads); only if that is not enough does it reallocate,
///   at least doubling, and copying only the readable bytes.
/// * **Network byte order** helpers: `append_u32`, `peek_u32`, `read_u32`,
///   `prepend_u32` and friends for every 8..64-bit integer.
/// * **Reading from a file descriptor** with [`Buffer::read_fd`]: one
///   `readv(2)` into the writable region plus a 64 KiB per-thread overflow
///   area, so a buffer need not be large before the read to take a large
///   read.
///
/// A `Buffer` is plain data: it is `Send` (it can be moved to another
/// thread) but it is not meant to be shared. It does no locking.
///
/// In muduo-rs a connection owns its output buffer, but the input buffer
/// its message callback sees is usually **lent**: each loop thread has one
/// 64 KiB read area that connections read into in place, and a connection
/// owns a private input buffer (taken from a small per-thread pool of
/// spares) only while a partial message waits for more bytes. So keep no
/// reference to the input buffer's memory past the callback.
///
/// # Panics
///
/// No method panics because of the values it is given or the order in which
/// methods are called: reads past the end return `None` or clamp, and
/// retrieving more than is readable retrieves everything. The one exception
/// is growth that cannot be satisfied (more than `isize::MAX` bytes, or the
/// allocator fails): like `Vec::reserve`, the infallible growing methods
/// ([`append`](Buffer::append), [`ensure_writable`](Buffer::ensure_writable),
/// [`prepend`](Buffer::prepend), [`with_capacity`](Buffer::with_capacity),
/// `append_*`, `prepend_*`) panic then. Use
/// [`try_append`](Buffer::try_append),
/// [`try_ensure_writable`](Buffer::try_ensure_writable) or
/// [`try_prepend`](Buffer::try_prepend) to get an error instead;
/// [`read_fd`](Buffer::read_fd) and the [`io::Write`] impl report it as
/// [`io::ErrorKind::OutOfMemory`].
///
/// # Example
///
/// ```
/// use muduo::buffer::{Buffer, CHEAP_PREPEND};
///
/// let mut buf = Buffer::new();
/// assert_eq!(buf.capacity(), 0); // nothing allocated yet
///
/// buf.append(b"hello");
/// buf.prepend_u32(5); // length header in front, no copy of the body
/// assert_eq!(buf.readable_bytes(), 9);
/// assert_eq!(buf.prependable_bytes(), CHEAP_PREPEND - 4);
///
/// let len = buf.read_u32().unwrap() as usize;
/// assert_eq!(buf.retrieve_as_vec(len), b"hello");
/// assert!(buf.is_empty());
///
/// buf.shrink(0); // give the memory back
/// assert_eq!(buf.capacity(), 0);
/// ```
pub struct Buffer {
    /// The whole allocation; `buf.len()` is the usable size and is kept
    /// equal to the allocation's capacity. All of it is initialised.
    buf: Vec<u8>,
    /// Start of the readable region.
    reader: usize,
    /// End of the readable region, start of the writable region.
    writer: usize,
}

// Invariant: reader <= writer <= buf.len(), and buf.len() == 0 implies
// reader == writer == 0.

/// Spare input buffers kept per thread, and the largest one kept.
const MAX_SPARES: usize = 64;
const MAX_SPARE_CAPACITY: usize = READ_FD_EXTRA;
/// A read area a callback grew beyond this is released after use.
const MAX_AREA_CAPACITY: usize = 4 * (READ_FD_EXTRA + CHEAP_PREPEND);

thread_local! {
    /// The thread's read area: connections read into it in place and lend
    /// it to the message callback (they hold an `Rc` of it, so the hot path
    /// needs no thread-local lookup); [`Buffer::read_fd`] uses its writable
    /// region as the overflow area. The only 64 KiB read memory per thread.
    static READ_AREA: Rc<RefCell<Buffer>> = Rc::new(RefCell::new(Buffer::new()));
    /// Emptied private input buffers, kept for the next connection whose
    /// message straddles two reads, so such messages do not allocate.
    static SPARES: RefCell<Vec<Buffer>> = const { RefCell::new(Vec::new()) };
}

/// The calling thread's read area (see `READ_AREA`).
pub(crate) fn thread_read_area() -> Rc<RefCell<Buffer>> {
    READ_AREA
        .try_with(Rc::clone)
        .unwrap_or_else(|_| Rc::new(RefCell::new(Buffer::new())))
}

/// A private input buffer holding `data`, from the thread's spares when
/// one is there.
pub(crate) fn spare_buffer_with(data: &[u8]) -> Buffer {
    let mut b = SPARES
        .try_with(|t| t.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_default();
    b.append(data);
    b
}

/// Keeps an emptied private input buffer for [`spare_buffer_with`].
pub(crate) fn return_spare_buffer(mut b: Buffer) {
    b.retrieve_all();
    if b.capacity() == 0 || b.capacity() > MAX_SPARE_CAPACITY + CHEAP_PREPEND {
        return;
    }
    let _ = SPARES.try_with(move |t| {
        let mut t = t.borrow_mut();
        if t.len() < MAX_SPARES {
            t.push(b);
        }
    });
}

#[cold]
#[inline(never)]
fn grow_failed(err: TryReserveError) -> ! {
    panic!("muduo::buffer::Buffer: cannot grow: {err}")
}

fn out_of_memory(err: TryReserveError) -> io::Error {
    io::Error::new(io::ErrorKind::OutOfMemory, err)
}

/// Finds the first `\r\n` in `hay`, returning the index of the `\r`.
fn find_crlf_in(hay: &[u8]) -> Option<usize> {
    let mut from = 0;
    loop {
        let i = from + memchr::memchr(b'\r', hay.get(from..)?)?;
        if hay.get(i + 1) == Some(&b'\n') {
            return Some(i);
        }
        from = i + 1;
    }
}

impl Buffer {
    /// Creates an empty buffer without allocating.
    ///
    /// The first write allocates `CHEAP_PREPEND + max(INITIAL_SIZE, needed)`
    /// bytes.
    #[inline]
    pub const fn new() -> Self {
        Buffer {
            buf: Vec::new(),
            reader: 0,
            writer: 0,
        }
    }

    /// Creates an empty buffer with room for `n` bytes of content (plus
    /// [`CHEAP_PREPEND`]). `with_capacity(0)` allocates nothing, like
    /// [`Buffer::new`].
    ///
    /// # Panics
    ///
    /// If `CHEAP_PREPEND + n` bytes cannot be allocated (see the
    /// [type-level notes](Buffer#panics)).
    pub fn with_capacity(n: usize) -> Self {
        let mut buf = Buffer::new();
        if n > 0 {
            let len = CHEAP_PREPEND.saturating_add(n);
            if let Err(e) = buf.relocate(len, &[]) {
                grow_failed(e);
            }
        }
        buf
    }

    // ----- sizes and views ------------------------------------------------

    /// Number of bytes that can be read: the length of [`peek`](Self::peek).
    #[inline]
    pub fn readable_bytes(&self) -> usize {
        self.writer - self.reader
    }

    /// Number of bytes that can be written without reallocating or moving
    /// data: the length of [`writable_slice`](Self::writable_slice).
    #[inline]
    pub fn writable_bytes(&self) -> usize {
        self.buf.len() - self.writer
    }

    /// Number of bytes in front of the readable region, where
    /// [`prepend`](Self::prepend) can write without moving data.
    /// Zero for a buffer that has not allocated yet.
    #[inline]
    pub fn prependable_bytes(&self) -> usize {
        self.reader
    }

    /// `true` when there is nothing to read.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.reader == self.writer
    }

    /// Bytes currently allocated (`prependable + readable + writable`);
    /// zero for a new buffer and after [`shrink`](Self::shrink)`(0)` on an
    /// empty one.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// The readable bytes, oldest first. O(1), does not consume them.
    #[inline]
    pub fn peek(&self) -> &[u8] {
        &self.buf[self.reader..self.writer]
    }

    /// The readable bytes, mutably (for in-place decoding, masking, ...).
    #[inline]
    pub fn peek_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.reader..self.writer]
    }

    /// The writable region: fill a prefix of it, then call
    /// [`has_written`](Self::has_written) with the number of bytes filled.
    /// Call [`ensure_writable`](Self::ensure_writable) first to make it
    /// large enough; it is empty for a buffer that has not allocated yet.
    ///
    /// ```
    /// use muduo::buffer::Buffer;
    ///
    /// let mut buf = Buffer::new();
    /// buf.ensure_writable(3);
    /// buf.writable_slice()[..3].copy_from_slice(b"abc");
    /// buf.has_written(3);
    /// assert_eq!(buf.peek(), b"abc");
    /// ```
    #[inline]
    pub fn writable_slice(&mut self) -> &mut [u8] {
        &mut self.buf[self.writer..]
    }

    // ----- consuming --------------------------------------------------------

    /// Consumes `n` readable bytes. If `n >= readable_bytes()` this is
    /// [`retrieve_all`](Self::retrieve_all) (never panics). O(1).
    #[inline]
    pub fn retrieve(&mut self, n: usize) {
        if n < self.readable_bytes() {
            self.reader += n;
        } else {
            self.retrieve_all();
        }
    }

    /// Consumes the readable bytes before `index`, an index into
    /// [`peek`](Self::peek) such as one returned by
    /// [`find_crlf`](Self::find_crlf). Same as [`retrieve`](Self::retrieve)
    /// (clamps likewise); the name reads better with the `find_*` methods.
    ///
    /// ```
    /// use muduo::buffer::Buffer;
    ///
    /// let mut buf = Buffer::from(&b"GET / HTTP/1.1\r\nHost: a\r\n"[..]);
    /// let eol = buf.find_crlf().unwrap();
    /// assert_eq!(&buf.peek()[..eol], b"GET / HTTP/1.1");
    /// buf.retrieve_until(eol + 2);
    /// assert_eq!(buf.peek(), b"Host: a\r\n");
    /// ```
    #[inline]
    pub fn retrieve_until(&mut self, index: usize) {
        self.retrieve(index);
    }

    /// Consumes everything and resets both indices to [`CHEAP_PREPEND`]
    /// (or 0 for an unallocated buffer). Keeps the memory; see
    /// [`shrink`](Self::shrink) to release it. O(1).
    #[inline]
    pub fn retrieve_all(&mut self) {
        let start = CHEAP_PREPEND.min(self.buf.len());
        self.reader = start;
        self.writer = start;
    }

    /// Consumes up to `n` bytes (clamped to `readable_bytes()`) and returns
    /// them as a new `Vec`. O(n).
    pub fn retrieve_as_vec(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.readable_bytes());
        let out = self.peek()[..n].to_vec();
        self.retrieve(n);
        out
    }

    /// Consumes all readable bytes and returns them as a new `Vec`.
    pub fn retrieve_all_as_vec(&mut self) -> Vec<u8> {
        let out = self.peek().to_vec();
        self.retrieve_all();
        out
    }

    /// Consumes up to `n` bytes (clamped to `readable_bytes()`) and returns
    /// them as a `String`. The conversion is **lossy**: invalid UTF-8,
    /// including a multi-byte character cut at `n`, becomes U+FFFD.
    pub fn retrieve_as_string(&mut self, n: usize) -> String {
        let n = n.min(self.readable_bytes());
        let out = String::from_utf8_lossy(&self.peek()[..n]).into_owned();
        self.retrieve(n);
        out
    }

    /// Consumes all readable bytes and returns them as a `String`, lossily
    /// (invalid UTF-8 becomes U+FFFD).
    pub fn retrieve_all_as_string(&mut self) -> String {
        let out = String::from_utf8_lossy(self.peek()).into_owned();
        self.retrieve_all();
        out
    }

    // ----- producing --------------------------------------------------------

    /// Appends `data` after the readable bytes, growing if needed.
    /// Amortised O(data.len()).
    ///
    /// # Panics
    ///
    /// Only if the buffer cannot grow (see the
    /// [type-level notes](Buffer#panics)); [`try_append`](Self::try_append)
    /// returns an error instead.
    #[inline]
    pub fn append(&mut self, data: &[u8]) {
        if let Err(e) = self.try_append(data) {
            grow_failed(e);
        }
    }

    /// Appends `data`, or returns an error (leaving the buffer unchanged) if
    /// the buffer cannot grow enough.
    #[inline]
    pub fn try_append(&mut self, data: &[u8]) -> Result<(), TryReserveError> {
        self.try_ensure_writable(data.len())?;
        let end = self.writer + data.len();
        self.buf[self.writer..end].copy_from_slice(data);
        self.writer = end;
        Ok(())
    }

    /// Makes sure at least `n` bytes are writable (muduo's `makeSpace`).
    ///
    /// O(1) when there is already room. Otherwise, if the prependable space
    /// freed by reads plus the writable space is enough, the readable bytes
    /// are moved back to offset [`CHEAP_PREPEND`] (O(readable)); else the
    /// buffer reallocates to at least `CHEAP_PREPEND + readable + n` bytes,
    /// and at least twice its old size, copying only the readable bytes.
    /// The first allocation is `CHEAP_PREPEND + max(INITIAL_SIZE, n)`.
    ///
    /// # Panics
    ///
    /// Only if the buffer cannot grow (see the
    /// [type-level notes](Buffer#panics)).
    #[inline]
    pub fn ensure_writable(&mut self, n: usize) {
        if let Err(e) = self.try_ensure_writable(n) {
            grow_failed(e);
        }
    }

    /// Like [`ensure_writable`](Self::ensure_writable), but returns an error
    /// (leaving the buffer unchanged) if it cannot grow, for example when
    /// `n` is larger than `isize::MAX`.
    #[inline]
    pub fn try_ensure_writable(&mut self, n: usize) -> Result<(), TryReserveError> {
        if self.writable_bytes() >= n {
            Ok(())
        } else {
            self.make_space(n)
        }
    }

    /// Marks `n` bytes of the writable region as written (they become
    /// readable). Clamped to [`writable_bytes`](Self::writable_bytes).
    #[inline]
    pub fn has_written(&mut self, n: usize) {
        self.writer += n.min(self.writable_bytes());
    }

    /// Takes back the last `n` readable bytes (they become writable
    /// again). Clamped to [`readable_bytes`](Self::readable_bytes).
    #[inline]
    pub fn unwrite(&mut self, n: usize) {
        self.writer -= n.min(self.readable_bytes());
    }

    /// Puts `data` in front of the readable bytes.
    ///
    /// O(data.len()) when `data.len() <= prependable_bytes()`. Otherwise the
    /// readable bytes are moved right within the allocation if it is large
    /// enough, or the buffer reallocates; either way this succeeds.
    ///
    /// # Panics
    ///
    /// Only if the buffer cannot grow (see the
    /// [type-level notes](Buffer#panics)); [`try_prepend`](Self::try_prepend)
    /// returns an error instead.
    #[inline]
    pub fn prepend(&mut self, data: &[u8]) {
        if let Err(e) = self.try_prepend(data) {
            grow_failed(e);
        }
    }

    /// Like [`prepend`](Self::prepend), but returns an error (leaving the
    /// buffer unchanged) if it cannot grow.
    #[inline]
    pub fn try_prepend(&mut self, data: &[u8]) -> Result<(), TryReserveError> {
        let len = data.len();
        if len <= self.reader {
            self.reader -= len;
            self.buf[self.reader..self.reader + len].copy_from_slice(data);
            Ok(())
        } else {
            self.prepend_slow(data)
        }
    }

    /// Releases memory: reallocates to exactly
    /// `CHEAP_PREPEND + readable_bytes() + reserve` bytes, keeping the
    /// readable bytes. `shrink(0)` on an empty buffer frees the allocation
    /// entirely (capacity 0, like a new buffer).
    ///
    /// `shrink` never grows the buffer: if that size is not smaller than
    /// the current capacity it does nothing (so afterwards
    /// `writable_bytes()` may be less than `reserve`; use
    /// [`ensure_writable`](Self::ensure_writable) for that). If the smaller
    /// allocation fails, the buffer is left as it was. O(readable).
    pub fn shrink(&mut self, reserve: usize) {
        let readable = self.readable_bytes();
        if readable == 0 && reserve == 0 {
            *self = Buffer::new();
            return;
        }
        let target = CHEAP_PREPEND
            .saturating_add(readable)
            .saturating_add(reserve);
        if target < self.buf.len() {
            let _ = self.relocate(target, &[]);
        }
    }

    // ----- searching --------------------------------------------------------

    /// Index (into [`peek`](Self::peek)) of the first `"\r\n"`, pointing at
    /// the `\r`. O(readable), SIMD-accelerated via `memchr`.
    #[inline]
    pub fn find_crlf(&self) -> Option<usize> {
        find_crlf_in(self.peek())
    }

    /// Index (into [`peek`](Self::peek)) of the first `"\r\n"` starting at
    /// or after `start`. `None` if `start > readable_bytes()`.
    #[inline]
    pub fn find_crlf_from(&self, start: usize) -> Option<usize> {
        find_crlf_in(self.peek().get(start..)?).map(|i| start + i)
    }

    /// Index (into [`peek`](Self::peek)) of the first `\n`. O(readable).
    #[inline]
    pub fn find_eol(&self) -> Option<usize> {
        memchr::memchr(b'\n', self.peek())
    }

    /// Index (into [`peek`](Self::peek)) of the first `\n` at or after
    /// `start`. `None` if `start > readable_bytes()`.
    #[inline]
    pub fn find_eol_from(&self, start: usize) -> Option<usize> {
        memchr::memchr(b'\n', self.peek().get(start..)?).map(|i| start + i)
    }

    // ----- file descriptors -------------------------------------------------

    /// Reads from `fd` into the buffer with a single `readv(2)`.
    ///
    /// The read goes into the writable region and, when that is smaller
    /// than [`READ_FD_EXTRA`], also into a 64 KiB per-thread overflow area
    /// (allocated once per thread, never zeroed again); bytes that land in
    /// the overflow area are then appended. So one call reads up to
    /// `writable_bytes() + READ_FD_EXTRA` bytes without the buffer having
    /// to be large beforehand, and a buffer that has not allocated yet ends
    /// up holding only what arrived (rounded up to [`INITIAL_SIZE`]).
    ///
    /// Returns the number of bytes read; `Ok(0)` means end of file.
    /// `EAGAIN` on a non-blocking fd is an error of kind
    /// [`io::ErrorKind::WouldBlock`]; `EINTR` is returned as
    /// [`io::ErrorKind::Interrupted`], not retried. If the buffer cannot
    /// grow to hold the overflow, the error has kind
    /// [`io::ErrorKind::OutOfMemory`] and those bytes are lost.
    pub fn read_fd<Fd: AsFd>(&mut self, fd: Fd) -> io::Result<usize> {
        if self.writable_bytes() >= READ_FD_EXTRA {
            // Room enough already: one read(2), no spare area needed.
            let n = rustix::io::read(fd, &mut self.buf[self.writer..])?;
            self.writer += n;
            return Ok(n);
        }
        let area = thread_read_area();
        let result = match area.try_borrow_mut() {
            Ok(mut area) => {
                if area.writable_bytes() < READ_FD_EXTRA {
                    area.ensure_writable(READ_FD_EXTRA);
                }
                let writer = area.writer;
                let result = self.read_fd_with(fd, &mut area.buf[writer..]);
                area.retrieve_all();
                if area.capacity() > MAX_AREA_CAPACITY {
                    *area = Buffer::new();
                }
                result
            }
            // The area is lent out: this is a read into the area itself
            // (edge-triggered reads until EAGAIN) or a re-entrant read. No
            // overflow then: one plain read into the writable region.
            Err(_) => {
                if self.writable_bytes() == 0 {
                    self.try_ensure_writable(INITIAL_SIZE)
                        .map_err(out_of_memory)?;
                }
                let n = rustix::io::read(fd, &mut self.buf[self.writer..])?;
                self.writer += n;
                Ok(n)
            }
        };
        result
    }

    fn read_fd_with<Fd: AsFd>(&mut self, fd: Fd, extra: &mut [u8]) -> io::Result<usize> {
        let writable = self.writable_bytes();
        let n = if writable == 0 {
            rustix::io::read(fd, &mut *extra)?
        } else if writable >= extra.len() {
            rustix::io::read(fd, &mut self.buf[self.writer..])?
        } else {
            let mut iov = [
                IoSliceMut::new(&mut self.buf[self.writer..]),
                IoSliceMut::new(&mut *extra),
            ];
            rustix::io::readv(fd, &mut iov)?
        };
        if n <= writable {
            self.writer += n;
        } else {
            self.writer = self.buf.len();
            self.try_append(&extra[..n - writable])
                .map_err(out_of_memory)?;
        }
        Ok(n)
    }

    /// Writes the readable bytes to `fd` with one `write(2)` and consumes
    /// what was written. Returns the number of bytes written; `Ok(0)`
    /// without a system call if the buffer is empty.
    ///
    /// For a socket that may be closed by the peer the caller should use
    /// `send` with `MSG_NOSIGNAL` (or ignore `SIGPIPE`); this method uses
    /// plain `write`. `EAGAIN` surfaces as [`io::ErrorKind::WouldBlock`].
    pub fn write_fd<Fd: AsFd>(&mut self, fd: Fd) -> io::Result<usize> {
        if self.is_empty() {
            return Ok(0);
        }
        let n = rustix::io::write(fd, self.peek())?;
        self.retrieve(n);
        Ok(n)
    }

    // ----- private helpers --------------------------------------------------

    /// Size to grow to when `needed` content bytes must fit.
    fn grow_len(&self, needed: usize) -> usize {
        CHEAP_PREPEND
            .saturating_add(needed.max(INITIAL_SIZE))
            .max(self.buf.len().saturating_mul(2))
    }

    /// Replaces the allocation with a new one of `new_len` bytes holding
    /// `prefix` then the readable bytes, starting at `CHEAP_PREPEND`.
    /// On error the buffer is unchanged.
    fn relocate(&mut self, new_len: usize, prefix: &[u8]) -> Result<(), TryReserveError> {
        let content = prefix.len() + self.readable_bytes();
        debug_assert!(new_len >= CHEAP_PREPEND + content);
        let mut v = Vec::new();
        v.try_reserve_exact(new_len)?;
        v.resize(CHEAP_PREPEND, 0);
        v.extend_from_slice(prefix);
        v.extend_from_slice(self.peek());
        v.resize(new_len, 0);
        self.buf = v;
        self.reader = CHEAP_PREPEND;
        self.writer = CHEAP_PREPEND + content;
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn make_space(&mut self, n: usize) -> Result<(), TryReserveError> {
        let readable = self.readable_bytes();
        let needed = readable.saturating_add(n);
        if self.buf.len() >= CHEAP_PREPEND.saturating_add(needed) {
            // Enough room if the readable bytes slide back to the front.
            self.buf
                .copy_within(self.reader..self.writer, CHEAP_PREPEND);
            self.reader = CHEAP_PREPEND;
            self.writer = CHEAP_PREPEND + readable;
            Ok(())
        } else {
            self.relocate(self.grow_len(needed), &[])
        }
    }

    #[cold]
    #[inline(never)]
    fn prepend_slow(&mut self, data: &[u8]) -> Result<(), TryReserveError> {
        let len = data.len();
        let readable = self.readable_bytes();
        let needed = len.saturating_add(readable);
        let total = self.buf.len();
        if total >= needed {
            // Slide the readable bytes right, keeping up to CHEAP_PREPEND
            // bytes of headroom in front of the new data.
            let head = (total - needed).min(CHEAP_PREPEND);
            self.buf.copy_within(self.reader..self.writer, head + len);
            self.buf[head..head + len].copy_from_slice(data);
            self.reader = head;
            self.writer = head + needed;
            Ok(())
        } else {
            self.relocate(self.grow_len(needed), data)
        }
    }
}

macro_rules! int_methods {
    ($($t:ty => $append:ident, $prepend:ident, $peek:ident, $read:ident;)*) => {
        impl Buffer {
            $(
                #[doc = concat!("Appends `x` as a big-endian (network byte order) `",
                    stringify!($t), "`. See [`append`](Self::append) for panics.")]
                #[inline]
                pub fn $append(&mut self, x: $t) {
                    self.append(&x.to_be_bytes());
                }

                #[doc = concat!("Prepends `x` as a big-endian (network byte order) `",
                    stringify!($t), "`. See [`prepend`](Self::prepend).")]
                #[inline]
                pub fn $prepend(&mut self, x: $t) {
                    self.prepend(&x.to_be_bytes());
                }

                #[doc = concat!("Decodes a big-endian `", stringify!($t),
                    "` from the front of the readable bytes without consuming it; \
                     `None` if fewer than `size_of::<", stringify!($t),
                    ">()` bytes are readable.")]
                #[inline]
                pub fn $peek(&self) -> Option<$t> {
                    self.peek().first_chunk().map(|b| <$t>::from_be_bytes(*b))
                }

                #[doc = concat!("Decodes and consumes a big-endian `", stringify!($t),
                    "`; `None` (consuming nothing) if not enough bytes are readable.")]
                #[inline]
                pub fn $read(&mut self) -> Option<$t> {
                    let x = self.$peek()?;
                    self.retrieve(size_of::<$t>());
                    Some(x)
                }
            )*
        }
    };
}

int_methods! {
    u8 => append_u8, prepend_u8, peek_u8, read_u8;
    u16 => append_u16, prepend_u16, peek_u16, read_u16;
    u32 => append_u32, prepend_u32, peek_u32, read_u32;
    u64 => append_u64, prepend_u64, peek_u64, read_u64;
    i8 => append_i8, prepend_i8, peek_i8, read_i8;
    i16 => append_i16, prepend_i16, peek_i16, read_i16;
    i32 => append_i32, prepend_i32, peek_i32, read_i32;
    i64 => append_i64, prepend_i64, peek_i64, read_i64;
}

impl Default for Buffer {
    /// Same as [`Buffer::new`]: allocates nothing.
    #[inline]
    fn default() -> Self {
        Buffer::new()
    }
}

impl Clone for Buffer {
    /// Copies only the readable bytes, into a tight allocation
    /// (`CHEAP_PREPEND + readable_bytes()`); an empty buffer clones to an
    /// unallocated one.
    fn clone(&self) -> Self {
        let mut out = Buffer::new();
        if !self.is_empty() {
            let len = CHEAP_PREPEND + self.readable_bytes();
            if let Err(e) = out.relocate(len, self.peek()) {
                grow_failed(e);
            }
        }
        out
    }
}

impl PartialEq for Buffer {
    /// Two buffers are equal when their readable bytes are equal; layout
    /// and capacity are ignored.
    fn eq(&self, other: &Self) -> bool {
        self.peek() == other.peek()
    }
}

impl Eq for Buffer {}

impl fmt::Debug for Buffer {
    /// Shows the region sizes only, never the content.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buffer")
            .field("prependable", &self.prependable_bytes())
            .field("readable", &self.readable_bytes())
            .field("writable", &self.writable_bytes())
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl From<&[u8]> for Buffer {
    /// Copies `data` into a new buffer (allocated as by the first
    /// [`append`](Buffer::append)).
    fn from(data: &[u8]) -> Self {
        let mut buf = Buffer::new();
        buf.append(data);
        buf
    }
}

impl From<&str> for Buffer {
    /// Copies the UTF-8 bytes of `s` into a new buffer.
    fn from(s: &str) -> Self {
        Buffer::from(s.as_bytes())
    }
}

impl From<Vec<u8>> for Buffer {
    /// Takes over the vector's allocation without copying: its bytes become
    /// the readable region and its spare capacity the writable region. The
    /// prependable region is empty, so a later [`prepend`](Buffer::prepend)
    /// moves the content once. An empty vector's allocation is dropped
    /// (the result allocates nothing).
    fn from(mut v: Vec<u8>) -> Self {
        if v.is_empty() {
            return Buffer::new();
        }
        let len = v.len();
        v.resize(v.capacity(), 0);
        Buffer {
            buf: v,
            reader: 0,
            writer: len,
        }
    }
}

impl io::Write for Buffer {
    /// Appends all of `data`; fails only with
    /// [`io::ErrorKind::OutOfMemory`] if the buffer cannot grow.
    #[inline]
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.try_append(data).map_err(out_of_memory)?;
        Ok(data.len())
    }

    #[inline]
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.try_append(data).map_err(out_of_memory)
    }

    /// Does nothing: a buffer has nowhere to flush to.
    #[inline]
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    use rustix::fd::OwnedFd;
    use rustix::pipe::{pipe_with, PipeFlags};

    fn check_invariants(b: &Buffer) {
        assert!(b.reader <= b.writer);
        assert!(b.writer <= b.buf.len());
        assert_eq!(
            b.prependable_bytes() + b.readable_bytes() + b.writable_bytes(),
            b.capacity()
        );
        assert_eq!(b.buf.len(), b.buf.capacity());
        if b.capacity() == 0 {
            assert_eq!((b.reader, b.writer), (0, 0));
        }
    }

    #[test]
    fn new_is_lazy() {
        let b = Buffer::new();
        assert_eq!(b.capacity(), 0);
        assert_eq!(b.buf.capacity(), 0);
        assert_eq!(b.readable_bytes(), 0);
        assert_eq!(b.writable_bytes(), 0);
        assert_eq!(b.prependable_bytes(), 0);
        assert!(b.is_empty());
        assert_eq!(Buffer::default().capacity(), 0);
        assert_eq!(Buffer::with_capacity(0).capacity(), 0);
        check_invariants(&b);
    }

    #[test]
    fn first_append_allocates_initial_size() {
        let mut b = Buffer::new();
        b.append(b"x");
        assert_eq!(b.capacity(), CHEAP_PREPEND + INITIAL_SIZE);
        assert_eq!(b.prependable_bytes(), CHEAP_PREPEND);
        assert_eq!(b.writable_bytes(), INITIAL_SIZE - 1);
        check_invariants(&b);

        let mut big = Buffer::new();
        big.append(&vec![7u8; 5000]);
        assert_eq!(big.capacity(), CHEAP_PREPEND + 5000);
        assert_eq!(big.writable_bytes(), 0);
        check_invariants(&big);
    }

    #[test]
    fn with_capacity_allocates_exactly() {
        let b = Buffer::with_capacity(100);
        assert_eq!(b.capacity(), CHEAP_PREPEND + 100);
        assert_eq!(b.writable_bytes(), 100);
        assert_eq!(b.prependable_bytes(), CHEAP_PREPEND);
        check_invariants(&b);
    }

    #[test]
    fn append_and_retrieve() {
        let mut b = Buffer::new();
        b.append(&[b'a'; 200]);
        assert_eq!(b.readable_bytes(), 200);
        assert_eq!(b.writable_bytes(), INITIAL_SIZE - 200);

        let s = b.retrieve_as_string(50);
        assert_eq!(s.len(), 50);
        assert_eq!(b.readable_bytes(), 150);
        assert_eq!(b.prependable_bytes(), CHEAP_PREPEND + 50);

        b.append(&[b'b'; 200]);
        assert_eq!(b.readable_bytes(), 350);
        assert_eq!(b.writable_bytes(), INITIAL_SIZE - 400);

        let all = b.retrieve_all_as_string();
        assert_eq!(all.len(), 350);
        assert_eq!(&all[..150], "a".repeat(150));
        assert_eq!(&all[150..], "b".repeat(200));
        assert_eq!(b.readable_bytes(), 0);
        assert_eq!(b.writable_bytes(), INITIAL_SIZE);
        assert_eq!(b.prependable_bytes(), CHEAP_PREPEND);
        check_invariants(&b);
    }

    #[test]
    fn retrieve_clamps() {
        let mut b = Buffer::from(&b"hello"[..]);
        b.retrieve(2);
        assert_eq!(b.peek(), b"llo");
        b.retrieve(100);
        assert!(b.is_empty());
        assert_eq!(b.prependable_bytes(), CHEAP_PREPEND);
        b.retrieve(1); // on empty: no-op
        assert!(b.is_empty());

        let mut e = Buffer::new();
        e.retrieve(10);
        e.retrieve_all();
        assert_eq!(e.capacity(), 0);
        assert_eq!(e.retrieve_as_vec(3), b"");
        assert_eq!(e.retrieve_all_as_vec(), b"");
        assert_eq!(e.retrieve_as_string(3), "");
        check_invariants(&e);

        let mut v = Buffer::from(&b"abcdef"[..]);
        assert_eq!(v.retrieve_as_vec(4), b"abcd");
        assert_eq!(v.retrieve_as_vec(99), b"ef");
        v.append(b"xyz");
        v.retrieve_until(1);
        assert_eq!(v.retrieve_all_as_vec(), b"yz");
    }

    #[test]
    fn retrieve_as_string_is_lossy() {
        let mut b = Buffer::from("héllo");
        // 'é' is two bytes; cutting after its first byte gives U+FFFD.
        assert_eq!(b.retrieve_as_string(2), "h\u{FFFD}");
        b.append(&[0xff, b'!']);
        assert_eq!(b.retrieve_all_as_string(), "\u{FFFD}llo\u{FFFD}!");
    }

    #[test]
    fn grow_and_make_space_moves_instead_of_growing() {
        let mut b = Buffer::new();
        b.append(&[b'y'; 400]);
        assert_eq!(b.capacity(), CHEAP_PREPEND + INITIAL_SIZE);
        b.retrieve(50);
        // writable 624, prependable 58: needs 1000 > 624 + 50 -> grow
        b.append(&[b'z'; 1000]);
        assert_eq!(b.readable_bytes(), 1350);
        assert_eq!(b.prependable_bytes(), CHEAP_PREPEND);
        assert!(b.capacity() >= CHEAP_PREPEND + 1350);
        assert_eq!(&b.peek()[..350], &[b'y'; 350][..]);
        assert_eq!(&b.peek()[350..], &[b'z'; 1000][..]);
        check_invariants(&b);

        // Compaction: allocation large enough once the front is reclaimed.
        let mut c = Buffer::new();
        c.append(&[b'y'; 800]);
        c.retrieve(500);
        let cap = c.capacity();
        assert_eq!(c.writable_bytes(), INITIAL_SIZE - 800);
        c.append(&[b'm'; 300]); // 224 writable + 500 freed in front
        assert_eq!(c.capacity(), cap, "must move, not grow");
        assert_eq!(c.prependable_bytes(), CHEAP_PREPEND);
        assert_eq!(c.readable_bytes(), 600);
        assert_eq!(&c.peek()[..300], &[b'y'; 300][..]);
        assert_eq!(&c.peek()[300..], &[b'm'; 300][..]);
        check_invariants(&c);
    }

    #[test]
    fn ensure_writable_and_has_written() {
        let mut b = Buffer::new();
        b.ensure_writable(10);
        assert!(b.writable_bytes() >= 10);
        b.writable_slice()[..4].copy_from_slice(b"abcd");
        b.has_written(4);
        assert_eq!(b.peek(), b"abcd");
        b.unwrite(1);
        assert_eq!(b.peek(), b"abc");
        b.unwrite(100); // clamps
        assert!(b.is_empty());
        let w = b.writable_bytes();
        b.has_written(usize::MAX); // clamps
        assert_eq!(b.readable_bytes(), w);
        assert_eq!(b.writable_bytes(), 0);
        check_invariants(&b);

        assert!(b.try_ensure_writable(usize::MAX).is_err());
        assert!(b.try_ensure_writable(isize::MAX as usize).is_err());
        assert_eq!(b.readable_bytes(), w, "failed growth leaves buffer intact");
        check_invariants(&b);

        // Unallocated buffer: has_written / unwrite are no-ops.
        let mut e = Buffer::new();
        e.has_written(5);
        e.unwrite(5);
        assert_eq!(e.capacity(), 0);
        assert!(e.writable_slice().is_empty());
    }

    #[test]
    fn peek_mut_edits_in_place() {
        let mut b = Buffer::from(&b"abc"[..]);
        b.peek_mut().make_ascii_uppercase();
        assert_eq!(b.peek(), b"ABC");
    }

    #[test]
    fn prepend_cheap_and_slow() {
        let mut b = Buffer::new();
        b.append(&[b'x'; 200]);
        b.prepend_i32(200);
        assert_eq!(b.readable_bytes(), 204);
        assert_eq!(b.prependable_bytes(), CHEAP_PREPEND - 4);
        assert_eq!(b.writable_bytes(), INITIAL_SIZE - 200);
        assert_eq!(b.read_i32(), Some(200));

        // More than the prependable space: slides within the allocation.
        let cap = b.capacity();
        b.prepend(&[b'h'; 20]);
        assert_eq!(b.capacity(), cap);
        assert_eq!(&b.peek()[..20], &[b'h'; 20][..]);
        assert_eq!(&b.peek()[20..], &[b'x'; 200][..]);
        check_invariants(&b);

        // Unallocated: allocates.
        let mut e = Buffer::new();
        e.prepend(b"head");
        assert_eq!(e.peek(), b"head");
        assert_eq!(e.capacity(), CHEAP_PREPEND + INITIAL_SIZE);
        check_invariants(&e);

        // Full allocation: grows.
        let mut f = Buffer::with_capacity(4);
        f.append(b"body");
        f.prepend(b"0123456789");
        assert_eq!(f.peek(), b"0123456789body");
        check_invariants(&f);

        // From<Vec>: zero prependable.
        let mut g = Buffer::from(b"tail".to_vec());
        assert_eq!(g.prependable_bytes(), 0);
        g.prepend_u8(b'>');
        assert_eq!(g.peek(), b">tail");
        check_invariants(&g);
    }

    #[test]
    fn network_byte_order() {
        let mut b = Buffer::new();
        b.append_u8(0x01);
        b.append_u16(0x0203);
        b.append_u32(0x0405_0607);
        b.append_u64(0x0809_0a0b_0c0d_0e0f);
        b.append_i8(-1);
        b.append_i16(-2);
        b.append_i32(-3);
        b.append_i64(-4);
        assert_eq!(
            &b.peek()[..15],
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
        );
        assert_eq!(b.peek_u8(), Some(1));
        assert_eq!(b.peek_u16(), Some(0x0102));
        assert_eq!(b.read_u8(), Some(1));
        assert_eq!(b.read_u16(), Some(0x0203));
        assert_eq!(b.peek_u32(), Some(0x0405_0607));
        assert_eq!(b.read_u32(), Some(0x0405_0607));
        assert_eq!(b.read_u64(), Some(0x0809_0a0b_0c0d_0e0f));
        assert_eq!(b.peek_i8(), Some(-1));
        assert_eq!(b.read_i8(), Some(-1));
        assert_eq!(b.read_i16(), Some(-2));
        assert_eq!(b.peek_i32(), Some(-3));
        assert_eq!(b.read_i32(), Some(-3));
        assert_eq!(b.peek_i64(), Some(-4));
        assert_eq!(b.read_i64(), Some(-4));
        assert!(b.is_empty());

        // Not enough bytes: None, nothing consumed.
        b.append(&[1, 2, 3]);
        assert_eq!(b.peek_u32(), None);
        assert_eq!(b.read_u32(), None);
        assert_eq!(b.read_i64(), None);
        assert_eq!(b.readable_bytes(), 3);
        assert_eq!(b.read_u16(), Some(0x0102));
        assert_eq!(b.read_u16(), None);
        assert_eq!(b.read_u8(), Some(3));
        assert_eq!(b.read_u8(), None);
        assert_eq!(Buffer::new().peek_u64(), None);

        let mut p = Buffer::new();
        p.append(b"x");
        p.prepend_u16(0xabcd);
        p.prepend_u64(1);
        p.prepend_i8(-1);
        p.prepend_i16(-1);
        p.prepend_i32(-1);
        p.prepend_i64(-1);
        p.prepend_u32(7);
        assert_eq!(p.read_u32(), Some(7));
        assert_eq!(p.read_i64(), Some(-1));
        assert_eq!(p.read_i32(), Some(-1));
        assert_eq!(p.read_i16(), Some(-1));
        assert_eq!(p.read_i8(), Some(-1));
        assert_eq!(p.read_u64(), Some(1));
        assert_eq!(p.read_u16(), Some(0xabcd));
        assert_eq!(p.peek(), b"x");
        check_invariants(&p);
    }

    #[test]
    fn find_crlf_and_eol() {
        let mut b = Buffer::new();
        assert_eq!(b.find_crlf(), None);
        assert_eq!(b.find_eol(), None);
        assert_eq!(b.find_crlf_from(0), None);
        assert_eq!(b.find_crlf_from(5), None);
        b.append(b"ab\rc\r\nde\nf\r\n");
        assert_eq!(b.find_crlf(), Some(4));
        assert_eq!(b.find_crlf_from(4), Some(4));
        assert_eq!(b.find_crlf_from(5), Some(10));
        assert_eq!(b.find_crlf_from(11), None);
        assert_eq!(b.find_crlf_from(12), None);
        assert_eq!(b.find_crlf_from(100), None);
        assert_eq!(b.find_eol(), Some(5));
        assert_eq!(b.find_eol_from(6), Some(8));
        assert_eq!(b.find_eol_from(9), Some(11));
        assert_eq!(b.find_eol_from(12), None);
        assert_eq!(b.find_eol_from(13), None);

        // Indices are relative to peek(), not the allocation.
        b.retrieve(3);
        assert_eq!(b.find_crlf(), Some(1));
        // A trailing lone '\r' is not a CRLF.
        let t = Buffer::from(&b"abc\r"[..]);
        assert_eq!(t.find_crlf(), None);
        let u = Buffer::from(&b"\r\r\r\n"[..]);
        assert_eq!(u.find_crlf(), Some(2));
    }

    #[test]
    fn shrink_releases_memory() {
        let mut b = Buffer::new();
        b.append(&[1u8; 10_000]);
        b.retrieve(9_000);
        b.shrink(0);
        assert_eq!(b.capacity(), CHEAP_PREPEND + 1000);
        assert_eq!(b.peek(), &[1u8; 1000][..]);
        check_invariants(&b);

        b.shrink(24);
        assert_eq!(b.capacity(), CHEAP_PREPEND + 1000);
        b.retrieve(500);
        b.shrink(24);
        assert_eq!(b.capacity(), CHEAP_PREPEND + 500 + 24);
        assert_eq!(b.writable_bytes(), 24);
        check_invariants(&b);

        // Never grows.
        b.shrink(usize::MAX);
        assert_eq!(b.capacity(), CHEAP_PREPEND + 500 + 24);

        b.retrieve_all();
        b.shrink(0);
        assert_eq!(b.capacity(), 0);
        assert_eq!(b.buf.capacity(), 0);
        check_invariants(&b);

        // And it works again afterwards.
        b.append(b"again");
        assert_eq!(b.peek(), b"again");
        check_invariants(&b);
    }

    #[test]
    fn traits() {
        let mut b = Buffer::new();
        write!(b, "n={} ", 42).unwrap();
        b.write_all(b"end").unwrap();
        b.flush().unwrap();
        assert_eq!(b.peek(), b"n=42 end");

        let c = b.clone();
        assert_eq!(c, b);
        assert_eq!(c.capacity(), CHEAP_PREPEND + 8);
        assert_eq!(Buffer::new().clone().capacity(), 0);

        let dbg = format!("{b:?}");
        assert!(dbg.contains("readable: 8"), "{dbg}");
        assert!(!dbg.contains("n=42"), "{dbg}");

        let from_vec = Buffer::from(b"n=42 end".to_vec());
        assert_eq!(from_vec, b);
        assert_eq!(Buffer::from(Vec::with_capacity(100)).capacity(), 0);
        let mut v = Vec::with_capacity(64);
        v.extend_from_slice(b"ab");
        let mut fv = Buffer::from(v);
        assert_eq!(fv.writable_bytes(), fv.capacity() - 2);
        check_invariants(&fv);
        fv.retrieve_all();
        check_invariants(&fv);
        fv.append(&[0u8; 100]);
        check_invariants(&fv);

        fn assert_send<T: Send>() {}
        assert_send::<Buffer>();
    }

    fn nonblocking_pipe() -> (OwnedFd, OwnedFd) {
        pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC).unwrap()
    }

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    fn write_all_fd(fd: &OwnedFd, mut data: &[u8]) {
        while !data.is_empty() {
            let n = rustix::io::write(fd, data).unwrap();
            data = &data[n..];
        }
    }

    #[test]
    fn read_fd_small_and_eof() {
        let (r, w) = nonblocking_pipe();
        let mut b = Buffer::new();
        write_all_fd(&w, b"hello");
        assert_eq!(b.read_fd(&r).unwrap(), 5);
        assert_eq!(b.peek(), b"hello");
        // Memory stays tight for an unallocated buffer.
        assert_eq!(b.capacity(), CHEAP_PREPEND + INITIAL_SIZE);

        // Empty non-blocking pipe: WouldBlock.
        let err = b.read_fd(&r).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(b.peek(), b"hello");

        write_all_fd(&w, b" world");
        assert_eq!(b.read_fd(&r).unwrap(), 6);
        assert_eq!(b.peek(), b"hello world");

        drop(w);
        assert_eq!(b.read_fd(&r).unwrap(), 0);
        assert_eq!(b.peek(), b"hello world");
        check_invariants(&b);
    }

    #[test]
    fn read_fd_overflows_into_extra_area() {
        let (r, w) = nonblocking_pipe();
        // Let the pipe hold more than one read's worth, if the system
        // allows; otherwise a writer thread keeps it topped up.
        let big = rustix::pipe::fcntl_setpipe_size(&w, 1 << 20).is_ok();
        let total = 150 * 1024;
        let data = pattern(total);

        let mut writer = Some({
            let data = data.clone();
            std::thread::spawn(move || {
                let mut rest = &data[..];
                while !rest.is_empty() {
                    match rustix::io::write(&w, rest) {
                        Ok(n) => rest = &rest[n..],
                        Err(rustix::io::Errno::AGAIN) => std::thread::yield_now(),
                        Err(e) => panic!("{e}"),
                    }
                }
                // w dropped here: EOF for the reader.
            })
        });
        if big {
            writer.take().unwrap().join().unwrap();
        }

        let mut b = Buffer::with_capacity(100);
        let mut reads = Vec::new();
        loop {
            match b.read_fd(&r) {
                Ok(0) => break,
                Ok(n) => reads.push(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
            check_invariants(&b);
        }
        if let Some(writer) = writer {
            writer.join().unwrap();
        }
        assert_eq!(b.readable_bytes(), total);
        assert!(b.peek() == &data[..], "bytes differ");
        assert!(reads.len() >= 2, "> 64 KiB needs at least two reads");
        assert!(reads.iter().all(|&n| n <= READ_FD_EXTRA + b.capacity()));
        if big {
            // First read: 100 bytes of writable space + the 64 KiB area.
            assert_eq!(reads[0], 100 + READ_FD_EXTRA);
        }
    }

    #[test]
    fn read_fd_unallocated_large() {
        let (r, w) = nonblocking_pipe();
        if rustix::pipe::fcntl_setpipe_size(&w, 1 << 20).is_err() {
            return; // covered by read_fd_overflows_into_extra_area
        }
        let data = pattern(100 * 1024);
        write_all_fd(&w, &data);
        drop(w);
        let mut b = Buffer::new();
        assert_eq!(b.read_fd(&r).unwrap(), READ_FD_EXTRA);
        // Appended exactly what arrived: no slack beyond the prepend area.
        assert_eq!(b.capacity(), CHEAP_PREPEND + READ_FD_EXTRA);
        assert_eq!(b.read_fd(&r).unwrap(), 100 * 1024 - READ_FD_EXTRA);
        assert_eq!(b.read_fd(&r).unwrap(), 0);
        assert!(b.peek() == &data[..]);
        check_invariants(&b);
    }

    #[test]
    fn read_fd_large_writable_uses_plain_read() {
        let (r, w) = nonblocking_pipe();
        let data = pattern(3000);
        write_all_fd(&w, &data);
        let mut b = Buffer::with_capacity(READ_FD_EXTRA + 10);
        let cap = b.capacity();
        assert_eq!(b.read_fd(&r).unwrap(), 3000);
        assert_eq!(b.peek(), &data[..]);
        assert_eq!(b.capacity(), cap);
    }

    #[test]
    fn read_fd_bad_fd_is_error() {
        let (r, w) = nonblocking_pipe();
        // Reading from the write end fails with EBADF.
        let mut b = Buffer::new();
        assert!(b.read_fd(&w).is_err());
        assert!(b.is_empty());
        drop(r);
    }

    #[test]
    fn write_fd_writes_and_retrieves() {
        let (r, w) = nonblocking_pipe();
        let mut b = Buffer::new();
        assert_eq!(b.write_fd(&w).unwrap(), 0);
        b.append(b"ping");
        assert_eq!(b.write_fd(&w).unwrap(), 4);
        assert!(b.is_empty());
        let mut got = [0u8; 8];
        assert_eq!(rustix::io::read(&r, &mut got).unwrap(), 4);
        assert_eq!(&got[..4], b"ping");

        // Partial writes: fill the pipe, the rest stays in the buffer.
        let big = pattern(200 * 1024);
        let mut out = Buffer::from(&big[..]);
        let mut written = 0;
        loop {
            match out.write_fd(&w) {
                Ok(n) => written += n,
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
                    break;
                }
            }
            if out.is_empty() {
                break;
            }
        }
        assert_eq!(written + out.readable_bytes(), big.len());
        assert_eq!(out.peek(), &big[written..]);
        drop(r);
        // EPIPE (SIGPIPE is ignored by the Rust runtime) surfaces as an error.
        if !out.is_empty() {
            assert!(out.write_fd(&w).is_err());
        }
    }
}

//! `TcpConnection`: one established TCP connection, shared as `Arc`.

use crate::buffer::{Buffer, READ_FD_EXTRA};
use crate::callbacks::{ConnCallbacks, TcpConnectionPtr};
use crate::channel::{Channel, ChannelHandler};
use crate::event_loop::{EventLoop, LoopHandle};
use crate::output_queue::{send_range, FileRange, Flushed, OutputQueue};
use crate::poller::Token;
use crate::socket::{self, TcpInfo};
use rustix::fd::OwnedFd;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Output buffers larger than this are released once drained.
const KEEP_OUTPUT_CAPACITY: usize = 64 * 1024;
/// With edge triggering, bytes read per readiness event before the message
/// callback runs; the rest is read from the loop's local queue, after the
/// callbacks this batch queued (e.g. a high-water-mark callback that calls
/// `stop_read`), so a fast peer can neither grow the input without bound
/// nor starve the loop's other channels.
const EDGE_READ_BUDGET: usize = 1024 * 1024;

thread_local! {
    /// Per-thread input buffer lent to connections that hold no partial
    /// message, so an idle or request/response connection owns no input memory.
    static SCRATCH: RefCell<Buffer> = const { RefCell::new(Buffer::new()) };
    /// The connection whose message callback is running on this thread, so
    /// that its `send` calls (the echo pattern) skip the channel-table lookup.
    static ACTIVE: Cell<Option<Rc<ConnCore>>> = const { Cell::new(None) };
    /// Connections whose write-complete callback is due, run after the
    /// current batch of events (never inside the `send` that completed).
    static WRITE_COMPLETE: RefCell<Vec<Rc<ConnCore>>> = const { RefCell::new(Vec::new()) };
}

/// Runs the due write-complete callbacks. Queued as a closure that captures
/// nothing, so scheduling it allocates nothing.
fn run_write_complete() {
    let mut batch = WRITE_COMPLETE.with(|w| std::mem::take(&mut *w.borrow_mut()));
    for core in batch.drain(..) {
        if let Some(cb) = &core.callbacks.write_complete {
            cb(&core.conn);
        }
    }
    // Hand the (now empty) vector back so steady state allocates nothing,
    // unless the callbacks already queued more.
    WRITE_COMPLETE.with(|w| {
        let mut w = w.borrow_mut();
        if w.is_empty() {
            *w = batch;
        }
    });
}

/// How a read attempt ended.
enum ReadOutcome {
    Open,
    /// Edge-triggered: the read budget ran out with data possibly left.
    More,
    Eof,
    Failed(io::Error),
}

/// Where a connection is in its life.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum ConnectionState {
    /// Accepted or connected, not yet registered with its loop.
    Connecting = 0,
    /// Established: data flows both ways.
    Connected = 1,
    /// Closing: `shutdown`/`force_close` was asked, or the peer closed while output was pending.
    Disconnecting = 2,
    /// Closed: sends are dropped.
    Disconnected = 3,
}

impl ConnectionState {
    fn from_u8(v: u8) -> ConnectionState {
        match v {
            0 => ConnectionState::Connecting,
            1 => ConnectionState::Connected,
            2 => ConnectionState::Disconnecting,
            _ => ConnectionState::Disconnected,
        }
    }
}

/// One TCP connection (muduo's `TcpConnection`), shared as [`TcpConnectionPtr`].
///
/// Owned by the loop it was assigned to; every method here may be called
/// from any thread. Calls from other threads are queued to the loop with an
/// `Arc` of the connection, so the connection lives until they have run.
/// The socket closes when the last `Arc` is dropped, after the connection
/// has been taken out of its loop.
///
/// ```no_run
/// use muduo::{EventLoop, TcpServer};
/// # fn main() -> std::io::Result<()> {
/// let lp = EventLoop::new()?;
/// let mut server = TcpServer::new(&lp, "127.0.0.1:0".parse().unwrap(), "echo")?;
/// server.set_message_callback(|conn, buf, _when| {
///     conn.send(buf.peek());
///     buf.retrieve_all();
/// });
/// server.start()?;
/// lp.run()
/// # }
/// ```
pub struct TcpConnection {
    lp: LoopHandle,
    /// Shared by all connections of one server or client; the full name is
    /// built on first use, so an idle connection carries no name string.
    name_prefix: Arc<str>,
    name: std::sync::OnceLock<Box<str>>,
    id: u64,
    fd: OwnedFd,
    peer: SocketAddr,
    state: AtomicU8,
    token: AtomicU64,
    reading: AtomicBool,
    context: Mutex<Option<Box<dyn Any + Send>>>,
}

impl TcpConnection {
    pub(crate) fn new(
        lp: LoopHandle,
        name_prefix: Arc<str>,
        id: u64,
        fd: OwnedFd,
        peer: SocketAddr,
    ) -> TcpConnectionPtr {
        Arc::new(TcpConnection {
            lp,
            name_prefix,
            name: std::sync::OnceLock::new(),
            id,
            fd,
            peer,
            state: AtomicU8::new(ConnectionState::Connecting as u8),
            token: AtomicU64::new(0),
            reading: AtomicBool::new(true),
            context: Mutex::new(None),
        })
    }

    /// The connection's name: `server-ip:port#N` for accepted connections
    /// (built on first use).
    pub fn name(&self) -> &str {
        self.name
            .get_or_init(|| format!("{}#{}", self.name_prefix, self.id).into_boxed_str())
    }
    /// The connection's number within its server or client (the `N` of the name).
    pub fn id(&self) -> u64 {
        self.id
    }
    /// The loop that owns the connection.
    pub fn loop_handle(&self) -> &LoopHandle {
        &self.lp
    }
    /// Our address (read from the socket with `getsockname` when asked, so
    /// connections do not carry it; `0.0.0.0:0` if the socket cannot tell).
    pub fn local_addr(&self) -> SocketAddr {
        socket::local_addr(&self.fd).unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }
    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }
    /// The current state.
    pub fn state(&self) -> ConnectionState {
        ConnectionState::from_u8(self.state.load(Ordering::Acquire))
    }
    /// True while established.
    pub fn connected(&self) -> bool {
        self.state() == ConnectionState::Connected
    }
    /// True once closed.
    pub fn disconnected(&self) -> bool {
        self.state() == ConnectionState::Disconnected
    }
    /// True unless [`stop_read`](Self::stop_read) is in effect.
    pub fn is_reading(&self) -> bool {
        self.reading.load(Ordering::Acquire)
    }

    fn set_state(&self, s: ConnectionState) {
        self.state.store(s as u8, Ordering::Release);
    }

    /// Moves `from` -> `to` atomically; false if the state was not `from`.
    fn transition(&self, from: ConnectionState, to: ConnectionState) -> bool {
        self.state
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The in-loop part of this connection, when called on its loop thread.
    fn core(&self) -> Option<Rc<ConnCore>> {
        let active = ACTIVE.with(|a| {
            let core = a.take();
            let hit = core
                .as_ref()
                .filter(|c| std::ptr::eq(Arc::as_ptr(&c.conn), self))
                .cloned();
            a.set(core);
            hit
        });
        if active.is_some() {
            return active;
        }
        let token = Token(self.token.load(Ordering::Relaxed));
        let handler: Rc<dyn Any> = EventLoop::current_if(self.lp.id())?.handler(token)?;
        handler.downcast::<ConnCore>().ok()
    }

    /// Sends `data`. On the loop thread with nothing queued it is written at
    /// once and only what the kernel did not take is buffered; from another
    /// thread it is copied and queued to the loop. Sends on a connection that
    /// is not connected are dropped (logged at debug level).
    pub fn send(self: &Arc<Self>, data: &[u8]) {
        if !self.connected() {
            tracing::debug!(conn = %self.name(), len = data.len(), "send on a connection that is not connected; dropped");
            return;
        }
        if let Some(core) = self.core() {
            core.send_in_loop(data);
        } else if !self.lp.is_in_loop_thread() {
            self.send_vec(data.to_vec());
        }
    }

    /// Sends an owned vector; from another thread this moves it to the loop without copying.
    pub fn send_vec(self: &Arc<Self>, data: Vec<u8>) {
        if !self.connected() {
            return;
        }
        self.run_on_core(move |core| core.send_in_loop(&data));
    }

    /// Sends the readable bytes of `buf` and empties it.
    pub fn send_buffer(self: &Arc<Self>, buf: &mut Buffer) {
        if self.lp.is_in_loop_thread() {
            self.send(buf.peek());
            buf.retrieve_all();
        } else {
            self.send_vec(buf.retrieve_all_as_vec());
        }
    }

    /// Sends `len` bytes of `file` starting at `offset`, with `sendfile(2)`:
    /// the file's pages go from the page cache to the socket without being
    /// read into user memory. Ordered with `send` on the same connection:
    /// bytes queued before go first, bytes queued after go after. Continues
    /// on writable events without blocking the loop; write-complete and
    /// high-water-mark callbacks count the file's bytes. If the file turns
    /// out shorter than promised, the transfer ends with a logged error and
    /// the connection is closed (the peer was promised those bytes).
    /// The file is closed when its range is sent or the connection closes.
    /// Callable from any thread.
    pub fn send_file(self: &Arc<Self>, file: impl Into<Arc<File>>, offset: u64, len: u64) {
        if !self.connected() {
            return;
        }
        let range = FileRange {
            file: file.into(),
            offset,
            remaining: len,
        };
        self.run_on_core(move |core| core.send_file_in_loop(range));
    }

    /// Half-closes: once everything queued is written, sends FIN. Reading
    /// goes on until the peer closes too.
    pub fn shutdown(self: &Arc<Self>) {
        if self.transition(ConnectionState::Connected, ConnectionState::Disconnecting) {
            self.run_on_core(|core| core.shutdown_in_loop());
        }
    }

    /// Closes now, dropping queued output. The close runs from the loop's
    /// queue, never inside the caller's callback.
    pub fn force_close(self: &Arc<Self>) {
        if self.transition(ConnectionState::Connected, ConnectionState::Disconnecting)
            || self.state() == ConnectionState::Disconnecting
        {
            self.queue_on_core(|core| core.handle_close());
        }
    }

    /// Closes after `delay` unless the connection is gone by then. The timer
    /// holds only a weak reference.
    pub fn force_close_with_delay(self: &Arc<Self>, delay: Duration) {
        if matches!(
            self.state(),
            ConnectionState::Connected | ConnectionState::Disconnecting
        ) {
            let weak = Arc::downgrade(self);
            self.lp.run_after(delay, move || {
                if let Some(conn) = weak.upgrade() {
                    conn.force_close();
                }
            });
        }
    }

    /// Resumes reading after [`stop_read`](Self::stop_read).
    pub fn start_read(self: &Arc<Self>) {
        self.set_reading(true);
    }

    /// Stops reading from the socket (backpressure): the kernel buffers fill
    /// up and TCP flow control slows the peer down.
    pub fn stop_read(self: &Arc<Self>) {
        self.set_reading(false);
    }

    fn set_reading(self: &Arc<Self>, on: bool) {
        self.reading.store(on, Ordering::Release);
        self.run_on_core(|core| core.apply_reading());
    }

    /// Closes once queued output is written (used by `TcpServer::stop`).
    pub(crate) fn close_when_flushed(self: &Arc<Self>) {
        self.run_on_core(|core| core.close_when_flushed());
    }

    /// Runs `f` on the connection's loop-thread half: at once on the loop
    /// thread, else queued to the loop with an `Arc` of the connection.
    /// Does nothing once the connection has left its loop.
    fn run_on_core(self: &Arc<Self>, f: impl FnOnce(&ConnCore) + Send + 'static) {
        if self.lp.is_in_loop_thread() {
            if let Some(core) = self.core() {
                f(&core);
            }
        } else {
            self.queue_on_core(f);
        }
    }

    /// Like [`run_on_core`](Self::run_on_core), but always from the loop's
    /// queue, so never inside the caller's own callback.
    fn queue_on_core(self: &Arc<Self>, f: impl FnOnce(&ConnCore) + Send + 'static) {
        let conn = self.clone();
        self.lp.queue_in_loop(move || {
            if let Some(core) = conn.core() {
                f(&core);
            }
        });
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm).
    pub fn set_tcp_no_delay(&self, on: bool) -> io::Result<()> {
        socket::set_tcp_no_delay(&self.fd, on)
    }

    /// Sets `SO_KEEPALIVE`.
    pub fn set_keep_alive(&self, on: bool) -> io::Result<()> {
        socket::set_keep_alive(&self.fd, on)
    }

    /// The kernel's `TCP_INFO` for this connection.
    pub fn tcp_info(&self) -> io::Result<TcpInfo> {
        socket::tcp_info(&self.fd)
    }

    /// Stores a per-connection value, replacing any previous one.
    pub fn set_context<T: Any + Send>(&self, value: T) {
        *self.context.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(value));
    }

    /// Runs `f` on the context if it holds a `T`.
    pub fn with_context<T: Any + Send, R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let mut guard = self.context.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_mut().and_then(|b| b.downcast_mut::<T>()).map(f)
    }

    /// Removes and returns the context if it holds a `T`.
    pub fn take_context<T: Any + Send>(&self) -> Option<T> {
        let mut guard = self.context.lock().unwrap_or_else(|e| e.into_inner());
        match guard.take()?.downcast::<T>() {
            Ok(b) => Some(*b),
            Err(other) => {
                *guard = Some(other);
                None
            }
        }
    }

    /// Registers the connection with its loop (on that loop's thread) and
    /// announces it; muduo's `connectEstablished`.
    pub(crate) fn establish(conn: TcpConnectionPtr, callbacks: Arc<ConnCallbacks>) {
        let Some(lp) = EventLoop::current() else {
            return;
        };
        let core = Rc::new_cyclic(|me| ConnCore {
            me: me.clone(),
            conn: conn.clone(),
            channel: RefCell::new(None),
            input: RefCell::new(Buffer::new()),
            output: RefCell::new(OutputQueue::default()),
            callbacks,
            edge: lp.poller_kind().is_edge_triggered(),
            close_when_flushed: Cell::new(false),
            peer_closed: Cell::new(false),
        });
        let channel = match lp.register(&conn.fd, core.clone()) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(conn = %conn.name(), error = %e, "cannot register connection");
                conn.set_state(ConnectionState::Disconnected);
                core.notify_closed();
                return;
            }
        };
        conn.token.store(channel.token().0, Ordering::Relaxed);
        let registered = channel.enable_reading();
        *core.channel.borrow_mut() = Some(channel);
        if let Err(e) = registered {
            tracing::warn!(conn = %conn.name(), error = %e, "cannot watch connection");
            conn.set_state(ConnectionState::Disconnected);
            core.notify_closed();
            core.channel.borrow_mut().take();
            return;
        }
        conn.set_state(ConnectionState::Connected);
        if let Some(cb) = &core.callbacks.connection {
            cb(&conn);
        }
    }

    /// Closes a connection from its loop thread, as if the peer had gone
    /// (used when a server or client shuts down).
    pub(crate) fn destroy_in_loop(&self) {
        if let Some(core) = self.core() {
            core.handle_close();
        }
    }
}

impl fmt::Debug for TcpConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpConnection")
            .field("name", &self.name())
            .field("local", &self.local_addr())
            .field("peer", &self.peer)
            .field("state", &self.state())
            .finish()
    }
}

impl Drop for TcpConnection {
    fn drop(&mut self) {
        tracing::trace!(conn = %self.name(), "connection dropped, socket closed");
    }
}

/// The loop-thread half of a connection: buffers and channel. Lives in the
/// loop's channel table; reached from a [`TcpConnection`] by its token.
pub(crate) struct ConnCore {
    me: std::rc::Weak<ConnCore>,
    conn: TcpConnectionPtr,
    channel: RefCell<Option<Channel>>,
    input: RefCell<Buffer>,
    output: RefCell<OutputQueue>,
    callbacks: Arc<ConnCallbacks>,
    edge: bool,
    close_when_flushed: Cell<bool>,
    peer_closed: Cell<bool>,
}

impl ConnCore {
    fn is_writing(&self) -> bool {
        self.channel
            .borrow()
            .as_ref()
            .is_some_and(|c| c.is_writing())
    }

    fn with_channel(&self, f: impl FnOnce(&Channel) -> io::Result<()>) {
        if let Some(ch) = self.channel.borrow().as_ref() {
            if let Err(e) = f(ch) {
                tracing::debug!(conn = %self.conn.name(), error = %e, "channel update failed");
            }
        }
    }

    fn send_in_loop(&self, data: &[u8]) {
        let conn = &self.conn;
        if conn.state() == ConnectionState::Disconnected {
            tracing::debug!(conn = %conn.name(), "disconnected, give up writing");
            return;
        }
        let mut written = 0;
        if !self.is_writing() && self.output.borrow().is_empty() {
            match socket::send(&conn.fd, data) {
                Ok(n) => {
                    written = n;
                    if n == data.len() {
                        self.queue_write_complete();
                        return;
                    }
                }
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!(conn = %conn.name(), error = %e, "write failed");
                    self.close_later();
                    return;
                }
            }
        }
        let remaining = &data[written..];
        if !remaining.is_empty() {
            self.enqueue(remaining.len() as u64, |q| q.push_bytes(remaining));
        }
    }

    /// Queues output, firing the high-water-mark callback on a crossing and
    /// asking for writability.
    fn enqueue(&self, added: u64, push: impl FnOnce(&mut OutputQueue)) {
        let old = {
            let mut output = self.output.borrow_mut();
            let old = output.len();
            push(&mut output);
            old
        };
        let now_queued = old + added;
        let mark = self.callbacks.high_water_mark_bytes as u64;
        if old < mark && now_queued >= mark {
            if let (Some(cb), Some(lp)) = (&self.callbacks.high_water_mark, EventLoop::current()) {
                let (cb, conn) = (cb.clone(), self.conn.clone());
                let queued = now_queued.min(usize::MAX as u64) as usize;
                lp.queue_local(move || cb(&conn, queued));
            }
        }
        if !self.is_writing() {
            self.with_channel(|c| c.enable_writing());
        }
    }

    fn send_file_in_loop(&self, mut range: FileRange) {
        let conn = &self.conn;
        if conn.state() == ConnectionState::Disconnected || range.remaining == 0 {
            return;
        }
        if !self.is_writing() && self.output.borrow().is_empty() {
            loop {
                match send_range(&conn.fd, &mut range) {
                    Ok((n, want)) if range.remaining > 0 && n == want => continue,
                    Ok(_) => break,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        tracing::warn!(conn = %conn.name(), error = %e, "sendfile failed; closing");
                        self.close_later();
                        return;
                    }
                }
            }
            if range.remaining == 0 {
                self.queue_write_complete();
                return;
            }
        }
        let added = range.remaining;
        self.enqueue(added, |q| q.push_file(range));
    }

    fn queue_write_complete(&self) {
        if self.callbacks.write_complete.is_none() {
            return;
        }
        let Some(me) = self.me.upgrade() else { return };
        let first = WRITE_COMPLETE.with(|w| {
            let mut w = w.borrow_mut();
            w.push(me);
            w.len() == 1
        });
        if first {
            if let Some(lp) = EventLoop::current() {
                lp.queue_local(run_write_complete);
            }
        }
    }

    /// Closes from the loop's local queue: used where closing at once would
    /// run the user's disconnect callback inside their own send call.
    fn close_later(&self) {
        if let Some(lp) = EventLoop::current() {
            let conn = self.conn.clone();
            lp.queue_local(move || conn.destroy_in_loop());
        }
    }

    fn shutdown_in_loop(&self) {
        if !self.is_writing() {
            if let Err(e) = socket::shutdown_write(&self.conn.fd) {
                tracing::debug!(conn = %self.conn.name(), error = %e, "shutdown failed");
            }
        }
    }

    fn close_when_flushed(&self) {
        if self.output.borrow().is_empty() {
            self.handle_close();
        } else {
            self.close_when_flushed.set(true);
            self.conn
                .transition(ConnectionState::Connected, ConnectionState::Disconnecting);
            self.with_channel(|c| c.disable_reading());
        }
    }

    fn apply_reading(&self) {
        if self.conn.disconnected() || self.peer_closed.get() {
            return;
        }
        let want = self.conn.reading.load(Ordering::Acquire);
        self.with_channel(|c| {
            if want {
                c.enable_reading()
            } else {
                c.disable_reading()
            }
        });
    }

    /// The peer sent FIN. With output still queued, finish writing first
    /// (the peer may only have half-closed), then close.
    fn handle_peer_eof(&self) {
        if self.output.borrow().is_empty() || self.conn.disconnected() {
            self.handle_close();
        } else {
            self.peer_closed.set(true);
            self.conn
                .transition(ConnectionState::Connected, ConnectionState::Disconnecting);
            self.with_channel(|c| c.disable_reading());
        }
    }

    fn notify_closed(&self) {
        if let Some(cb) = &self.callbacks.connection {
            cb(&self.conn);
        }
        if let Some(cb) = &self.callbacks.close {
            cb(&self.conn);
        }
    }

    /// muduo's `handleClose` + `connectDestroyed`: mark closed, tell the
    /// user and the owner, leave the loop. Idempotent.
    fn handle_close(&self) {
        let conn = &self.conn;
        if conn.state() == ConnectionState::Disconnected {
            return;
        }
        conn.set_state(ConnectionState::Disconnected);
        self.with_channel(|c| c.disable_all());
        self.notify_closed();
        *self.input.borrow_mut() = Buffer::new();
        self.output.borrow_mut().clear();
        // Dropping the channel removes the slot that owns this core; the
        // caller holds another Rc until it returns.
        let channel = self.channel.borrow_mut().take();
        drop(channel);
    }

    /// Reads what is there and hands it to the message callback.
    fn read_and_dispatch(&self, buf: &mut Buffer, receive_time: Instant) -> ReadOutcome {
        let (got, outcome) = self.read_into(buf);
        if got > 0 {
            match &self.callbacks.message {
                Some(cb) => {
                    let outer = ACTIVE.with(|a| a.replace(self.me.upgrade()));
                    cb(&self.conn, buf, receive_time);
                    drop(ACTIVE.with(|a| a.replace(outer)));
                }
                None => buf.retrieve_all(),
            }
        }
        outcome
    }

    /// Reads once (level-triggered) or until `EAGAIN`, EOF or the read
    /// budget (edge-triggered). Returns (bytes read, how it ended).
    fn read_into(&self, buf: &mut Buffer) -> (usize, ReadOutcome) {
        let mut got = 0;
        loop {
            match buf.read_fd(&self.conn.fd) {
                Ok(0) => return (got, ReadOutcome::Eof),
                Ok(n) => {
                    got += n;
                    if !self.edge {
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

    /// Edge-triggered only: no new event will come for data already
    /// buffered in the kernel, so continue reading from the local queue,
    /// if the connection still wants to read by then.
    fn continue_reading_later(&self) {
        if let Some(lp) = EventLoop::current() {
            let conn = self.conn.clone();
            lp.queue_local(move || {
                if let Some(core) = conn.core() {
                    if core
                        .channel
                        .borrow()
                        .as_ref()
                        .is_some_and(|c| c.is_reading())
                    {
                        core.handle_read(Instant::now());
                    }
                }
            });
        }
    }
}

impl ChannelHandler for ConnCore {
    fn handle_read(&self, receive_time: Instant) {
        let has_own = self.input.borrow().capacity() != 0;
        let outcome = if has_own {
            // A partial message is pending: read into this connection's own buffer.
            let mut own = std::mem::take(&mut *self.input.borrow_mut());
            let outcome = self.read_and_dispatch(&mut own, receive_time);
            if !own.is_empty() && !self.conn.disconnected() {
                *self.input.borrow_mut() = own;
            }
            outcome
        } else {
            // The common case: read into the thread's scratch buffer in place
            // and keep only what the callback left unconsumed.
            SCRATCH.with(|cell| match cell.try_borrow_mut() {
                Ok(mut buf) => {
                    if buf.writable_bytes() < READ_FD_EXTRA {
                        buf.ensure_writable(READ_FD_EXTRA);
                    }
                    let outcome = self.read_and_dispatch(&mut buf, receive_time);
                    if !buf.is_empty() {
                        if !self.conn.disconnected() {
                            let mut own = Buffer::with_capacity(buf.readable_bytes());
                            own.append(buf.peek());
                            *self.input.borrow_mut() = own;
                        }
                        buf.retrieve_all();
                    }
                    outcome
                }
                // Only reachable if a callback re-enters reading on this
                // thread; use a private buffer then.
                Err(_) => {
                    let mut own = Buffer::new();
                    let outcome = self.read_and_dispatch(&mut own, receive_time);
                    if !own.is_empty() && !self.conn.disconnected() {
                        *self.input.borrow_mut() = own;
                    }
                    outcome
                }
            })
        };
        match outcome {
            ReadOutcome::Open => {}
            ReadOutcome::More => self.continue_reading_later(),
            ReadOutcome::Eof => self.handle_peer_eof(),
            ReadOutcome::Failed(e) => {
                tracing::debug!(conn = %self.conn.name(), error = %e, "read failed");
                self.handle_close();
            }
        }
    }

    fn handle_write(&self) {
        if !self.is_writing() {
            return;
        }
        let flushed = self.output.borrow_mut().flush(&self.conn.fd);
        match flushed {
            Ok(Flushed::Partly) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Ok(Flushed::All) => {
                self.output
                    .borrow_mut()
                    .release_if_large(KEEP_OUTPUT_CAPACITY);
                self.with_channel(|c| c.disable_writing());
                self.queue_write_complete();
                if self.peer_closed.get() || self.close_when_flushed.get() {
                    self.handle_close();
                } else if self.conn.state() == ConnectionState::Disconnecting {
                    self.shutdown_in_loop();
                }
            }
            Err(e) => {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    tracing::warn!(conn = %self.conn.name(), error = %e, "file transfer failed; closing");
                } else {
                    tracing::debug!(conn = %self.conn.name(), error = %e, "write failed");
                }
                self.handle_close();
            }
        }
    }

    fn handle_close(&self) {
        ConnCore::handle_close(self);
    }

    fn handle_error(&self) {
        let err = socket::take_error(&self.conn.fd);
        tracing::debug!(conn = %self.conn.name(), error = ?err, "socket error");
        ConnCore::handle_close(self);
    }
}

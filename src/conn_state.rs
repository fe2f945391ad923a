//! The loop-thread half of a connection: its state machine.
//!
//! [`ConnCore`] holds the buffers, the callbacks and the close logic, and
//! decides what happens on each event; the bytes move through its
//! transport ([`crate::transport`]): readiness events arrive through
//! [`ChannelHandler`], completions through [`CompletionHandler`]. The
//! public handle ([`TcpConnection`]) reaches a core by its channel token,
//! or directly while the core's message callback runs (the echo pattern).

use crate::buffer::{
    return_spare_buffer, spare_buffer_with, thread_read_area, Buffer, READ_FD_EXTRA,
};
use crate::callbacks::{
    ConnectionCallback, HighWaterMarkCallback, MessageCallback, TcpConnectionPtr,
    WriteCompleteCallback,
};
use crate::channel::{Channel, ChannelHandler};
use crate::event_loop::EventLoop;
use crate::inspect::counters::{ConnFigures, ConnStats};
use crate::output_queue::{FileRange, Flushed, OutputQueue};
use crate::socket;
use crate::tcp_connection::{ConnectionState, TcpConnection};
use crate::transport::completion::{self, Completion};
use crate::transport::{readiness, Io, ReadOutcome};
use crate::uring::{CompletionHandler, OpKind};
use rustix::fd::AsRawFd;
use std::cell::{Cell, RefCell};
use std::io;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Instant;

/// Output buffers larger than this are released once drained.
const KEEP_OUTPUT_CAPACITY: usize = 64 * 1024;
/// `send_buffer` on io_uring hands over the buffer's memory from this
/// size on; smaller sends are copied (cheaper than trading buffers).
const SWAP_MIN: usize = 1024;

/// Internal: told when a connection has closed, so its owner forgets it.
pub(crate) type CloseCallback = Arc<dyn Fn(&TcpConnectionPtr) + Send + Sync>;

/// The callbacks of one server or client, shared by all its connections.
#[derive(Clone, Default)]
pub(crate) struct ConnCallbacks {
    pub(crate) connection: Option<ConnectionCallback>,
    pub(crate) message: Option<MessageCallback>,
    pub(crate) write_complete: Option<WriteCompleteCallback>,
    pub(crate) high_water_mark: Option<HighWaterMarkCallback>,
    pub(crate) high_water_mark_bytes: usize,
    pub(crate) close: Option<CloseCallback>,
}

thread_local! {
    /// The connection whose message callback is running on this thread, so
    /// that its `send` calls (the echo pattern) skip the channel-table lookup.
    static ACTIVE: Cell<Option<Rc<ConnCore>>> = const { Cell::new(None) };
    /// Connections whose write-complete callback is due, run after the
    /// current batch of events (never inside the `send` that completed).
    static WRITE_COMPLETE: RefCell<Vec<Rc<ConnCore>>> = const { RefCell::new(Vec::new()) };
}

/// The core of `conn` if its message callback is running on this thread.
#[inline]
pub(crate) fn active_core(conn: &TcpConnection) -> Option<Rc<ConnCore>> {
    ACTIVE.with(|a| {
        let core = a.take();
        let hit = core
            .as_ref()
            .filter(|c| std::ptr::eq(Arc::as_ptr(&c.conn), conn))
            .cloned();
        a.set(core);
        hit
    })
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

/// The loop-thread half of a connection. Lives in the loop's channel table
/// (and, on io_uring, in each operation it has in flight).
pub(crate) struct ConnCore {
    me: Weak<ConnCore>,
    pub(crate) conn: TcpConnectionPtr,
    channel: RefCell<Option<Channel>>,
    input: RefCell<Buffer>,
    output: RefCell<OutputQueue>,
    /// The thread's read area, lent to the message callback.
    area: Rc<RefCell<Buffer>>,
    callbacks: Arc<ConnCallbacks>,
    io: Io,
    /// Readiness: writability is asked for (mirrors the channel's interest,
    /// without borrowing through it on the hot path).
    writing: Cell<bool>,
    close_when_flushed: Cell<bool>,
    /// `shutdown` ran here while output was pending: half-close once it is
    /// written. Not the state: another thread's `shutdown` sets
    /// `Disconnecting` at once, before sends it queued earlier have run,
    /// and reading the state here would send FIN ahead of them.
    shutdown_when_flushed: Cell<bool>,
    peer_closed: Cell<bool>,
    /// Counters for the inspector (bytes, high-water crossings, life).
    stats: ConnStats,
}

/// The live connections of `lp` (its thread's loop) with their counters
/// and queued output, for the inspector.
pub(crate) fn live_connections(lp: &EventLoop) -> Vec<(TcpConnectionPtr, ConnFigures, u64)> {
    let cores = lp.handlers().into_iter().filter_map(|h| {
        let h: Rc<dyn std::any::Any> = h;
        h.downcast::<ConnCore>().ok()
    });
    cores
        .filter_map(|c| Some((c.conn.clone(), c.stats.figures()?, c.output.borrow().len())))
        .collect()
}

/// Registers `conn` with the calling thread's loop and announces it;
/// muduo's `connectEstablished`.
pub(crate) fn establish(conn: TcpConnectionPtr, callbacks: Arc<ConnCallbacks>) {
    let Some(lp) = EventLoop::current() else {
        return;
    };
    let kind = lp.poller_kind();
    let io = if kind.is_completion() {
        Io::Completion(Completion::new())
    } else {
        Io::Readiness {
            edge: kind.is_edge_triggered(),
        }
    };
    let core = Rc::new_cyclic(|me| ConnCore {
        me: me.clone(),
        conn: conn.clone(),
        channel: RefCell::new(None),
        input: RefCell::new(Buffer::new()),
        output: RefCell::new(OutputQueue::default()),
        area: thread_read_area(),
        callbacks,
        io,
        writing: Cell::new(false),
        close_when_flushed: Cell::new(false),
        shutdown_when_flushed: Cell::new(false),
        peer_closed: Cell::new(false),
        stats: ConnStats::open(),
    });
    let channel = match lp.register(core.clone()) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(conn = %conn.name(), error = %e, "cannot register connection");
            conn.set_state(ConnectionState::Disconnected);
            core.notify_closed();
            return;
        }
    };
    conn.set_token(channel.token());
    let registered = match &core.io {
        Io::Readiness { .. } => channel.enable_reading(),
        Io::Completion(c) => {
            c.start_recv(&channel, conn.socket().as_raw_fd(), core.clone());
            Ok(())
        }
    };
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

impl ConnCore {
    /// Changes the channel's interest. A failed change (an `epoll_ctl`
    /// error) closes the connection: otherwise queued output could wait
    /// forever for a writable event that was never asked for.
    fn with_channel(&self, f: impl FnOnce(&Channel) -> io::Result<()>) {
        let failed = match self.channel.borrow().as_ref() {
            Some(ch) => f(ch).err(),
            None => None,
        };
        if let Some(e) = failed {
            if !self.conn.disconnected() {
                tracing::warn!(conn = %self.conn.name(), error = %e, "cannot update the connection's poller registration; closing it");
                self.close_later();
            }
        }
    }

    fn set_writing(&self, on: bool) {
        if self.writing.get() != on {
            self.writing.set(on);
            self.with_channel(|c| {
                if on {
                    c.enable_writing()
                } else {
                    c.disable_writing()
                }
            });
        }
    }

    fn handler(&self) -> Option<Rc<dyn CompletionHandler>> {
        self.me.upgrade().map(|me| me as Rc<dyn CompletionHandler>)
    }

    fn raw_fd(&self) -> std::os::fd::RawFd {
        self.conn.socket().as_raw_fd()
    }

    /// True while output is queued or in flight.
    fn output_pending(&self) -> bool {
        self.writing.get()
            || !self.output.borrow().is_empty()
            || matches!(&self.io, Io::Completion(c) if c.sending())
    }

    pub(crate) fn send_in_loop(&self, data: &[u8]) {
        let conn = &self.conn;
        if conn.state() == ConnectionState::Disconnected {
            tracing::debug!(conn = %conn.name(), "disconnected, give up writing");
            return;
        }
        self.send_connected(data);
    }

    /// [`send_in_loop`](Self::send_in_loop) for a caller that has just
    /// seen the connection connected, on the loop thread (no second check).
    #[inline]
    pub(crate) fn send_connected(&self, data: &[u8]) {
        let conn = &self.conn;
        let mut written = 0;
        if let Io::Completion(c) = &self.io {
            // Nothing queued or in flight, below the high-water mark: submit
            // straight from the (reused) head buffer, skipping the queue.
            let below_mark = (data.len() as u64) < self.callbacks.high_water_mark_bytes as u64;
            if !c.sending() && below_mark && self.output.borrow().is_empty() && !data.is_empty() {
                let mut buf = self.output.borrow_mut().take_head();
                buf.append(data);
                if let (Some(h), Some(ch)) = (self.handler(), self.channel.borrow().as_ref()) {
                    c.submit_send(ch, self.raw_fd(), buf, h);
                }
                return;
            }
        }
        if let Io::Readiness { .. } = self.io {
            if !self.writing.get() && self.output.borrow().is_empty() {
                match readiness::send(conn.socket(), data) {
                    Ok(n) => {
                        written = n;
                        self.stats.wrote(n);
                        if n == data.len() {
                            self.queue_write_complete();
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(conn = %conn.name(), error = %e, "write failed");
                        self.close_later();
                        return;
                    }
                }
            }
        }
        let remaining = &data[written..];
        if !remaining.is_empty() {
            self.enqueue(remaining.len() as u64, |q| q.push_bytes(remaining));
        }
    }

    /// [`send_connected`](Self::send_connected) for a whole buffer, which
    /// ends up empty. On io_uring the buffer's memory itself is submitted,
    /// or queued, instead of its bytes being copied (`buf` gets other
    /// memory in exchange), so a large echo is not copied in user space.
    #[inline]
    pub(crate) fn send_buffer_connected(&self, buf: &mut Buffer) {
        let len = buf.readable_bytes();
        let Io::Completion(c) = &self.io else {
            self.send_connected(buf.peek());
            buf.retrieve_all();
            return;
        };
        if len < SWAP_MIN {
            // Small: a copy costs less than trading buffers.
            self.send_connected(buf.peek());
            buf.retrieve_all();
            return;
        }
        let below_mark = (len as u64) < self.callbacks.high_water_mark_bytes as u64;
        if !c.sending() && below_mark && self.output.borrow().is_empty() {
            let mut owned = self.output.borrow_mut().take_head();
            owned.retrieve_all();
            std::mem::swap(&mut owned, buf);
            if let (Some(h), Some(ch)) = (self.handler(), self.channel.borrow().as_ref()) {
                c.submit_send(ch, self.raw_fd(), owned, h);
            }
            return;
        }
        self.enqueue(len as u64, |q| q.push_buffer(buf));
    }

    /// Queues output, firing the high-water-mark callback on a crossing,
    /// and gets it moving (asks for writability, or submits a send).
    fn enqueue(&self, added: u64, push: impl FnOnce(&mut OutputQueue)) {
        let in_flight = match &self.io {
            Io::Completion(c) => c.in_flight_bytes() as u64,
            Io::Readiness { .. } => 0,
        };
        let old = {
            let mut output = self.output.borrow_mut();
            let old = output.len();
            push(&mut output);
            old + in_flight
        };
        let now_queued = old + added;
        let mark = self.callbacks.high_water_mark_bytes as u64;
        if old < mark && now_queued >= mark {
            self.stats.high_water();
            if let (Some(cb), Some(lp)) = (&self.callbacks.high_water_mark, EventLoop::current()) {
                let (cb, conn) = (cb.clone(), self.conn.clone());
                let queued = now_queued.min(usize::MAX as u64) as usize;
                lp.queue_local(move || cb(&conn, queued));
            }
        }
        match &self.io {
            Io::Readiness { .. } => self.set_writing(true),
            Io::Completion(c) => self.submit_next(c),
        }
    }

    /// Completion: submits the next queued bytes unless a send is in flight.
    fn submit_next(&self, c: &Completion) {
        if c.sending() || self.conn.disconnected() {
            return;
        }
        let chunk = self.output.borrow_mut().take_chunk();
        match chunk {
            Ok(Some(buf)) => {
                let Some(h) = self.handler() else { return };
                if let Some(channel) = self.channel.borrow().as_ref() {
                    c.submit_send(channel, self.raw_fd(), buf, h);
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(conn = %self.conn.name(), error = %e, "file transfer failed; closing");
                self.close_later();
            }
        }
    }

    pub(crate) fn send_file_in_loop(&self, mut range: FileRange) {
        let conn = &self.conn;
        if conn.state() == ConnectionState::Disconnected || range.remaining == 0 {
            return;
        }
        if let Io::Readiness { .. } = self.io {
            if !self.writing.get() && self.output.borrow().is_empty() {
                let start = range.remaining;
                let sent = readiness::send_file(conn.socket(), &mut range);
                self.stats.wrote((start - range.remaining) as usize);
                if let Err(e) = sent {
                    tracing::warn!(conn = %conn.name(), error = %e, "sendfile failed; closing");
                    self.close_later();
                    return;
                }
                if range.remaining == 0 {
                    self.queue_write_complete();
                    return;
                }
            }
        }
        let added = range.remaining;
        self.enqueue(added, |q| q.push_file(range));
    }

    #[inline]
    fn queue_write_complete(&self) {
        if self.callbacks.write_complete.is_some() {
            self.queue_write_complete_slow();
        }
    }

    fn queue_write_complete_slow(&self) {
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

    pub(crate) fn shutdown_in_loop(&self) {
        if self.output_pending() {
            self.shutdown_when_flushed.set(true);
        } else if let Err(e) = socket::shutdown_write(self.conn.socket()) {
            tracing::debug!(conn = %self.conn.name(), error = %e, "shutdown failed");
        }
    }

    pub(crate) fn close_when_flushed(&self) {
        if !self.output_pending() {
            self.handle_close();
        } else {
            self.close_after_flush(&self.close_when_flushed);
        }
    }

    /// Output is still queued: sets `why` (a flag `on_flushed` closes on),
    /// stops reading and lets the queue drain before the close.
    fn close_after_flush(&self, why: &Cell<bool>) {
        why.set(true);
        self.conn
            .transition(ConnectionState::Connected, ConnectionState::Disconnecting);
        self.stop_reading();
    }

    fn stop_reading(&self) {
        match &self.io {
            Io::Readiness { .. } => self.with_channel(|c| c.disable_reading()),
            Io::Completion(c) => {
                if let Some(ch) = self.channel.borrow().as_ref() {
                    c.stop_recv(ch);
                }
                // An ENOBUFS fallback read may be pending too.
                self.with_channel(|c| c.disable_reading());
            }
        }
    }

    pub(crate) fn apply_reading(&self) {
        if self.conn.disconnected() || self.peer_closed.get() {
            return;
        }
        let want = self.conn.is_reading();
        match &self.io {
            Io::Readiness { .. } => self.with_channel(|c| {
                if want {
                    c.enable_reading()
                } else {
                    c.disable_reading()
                }
            }),
            Io::Completion(c) => {
                if !want {
                    return self.stop_reading();
                }
                self.rearm_recv(c);
                // Bytes that arrived while reading was stopped.
                if !self.input.borrow().is_empty() {
                    if let Some(lp) = EventLoop::current() {
                        let conn = self.conn.clone();
                        lp.queue_local(move || {
                            if let Some(core) = conn.core() {
                                if conn.is_reading() && !conn.disconnected() {
                                    core.dispatch_own_input(Instant::now());
                                }
                            }
                        });
                    }
                }
            }
        }
    }

    /// The peer sent FIN. With output still queued, finish writing first
    /// (the peer may only have half-closed), then close.
    fn handle_peer_eof(&self) {
        if !self.output_pending() || self.conn.disconnected() {
            self.handle_close();
        } else {
            self.close_after_flush(&self.peer_closed);
        }
    }

    fn notify_closed(&self) {
        self.stats.close();
        if let Some(cb) = &self.callbacks.connection {
            cb(&self.conn);
        }
        if let Some(cb) = &self.callbacks.close {
            cb(&self.conn);
        }
    }

    /// muduo's `handleClose` + `connectDestroyed`: mark closed, tell the
    /// user and the owner, leave the loop. Idempotent. On io_uring the
    /// operations in flight are cancelled here and keep this core (and so
    /// the socket and their buffers) alive until their final completions.
    pub(crate) fn handle_close(&self) {
        let conn = &self.conn;
        if conn.state() == ConnectionState::Disconnected {
            return;
        }
        conn.set_state(ConnectionState::Disconnected);
        match &self.io {
            Io::Readiness { .. } => {
                self.writing.set(false);
                self.with_channel(|c| c.disable_all());
            }
            Io::Completion(c) => {
                if c.sending() {
                    // On epoll the fd closes now and bytes the kernel has
                    // not taken are gone. Here the socket lives until the
                    // send's final completion, and CI once saw all 16 MiB
                    // of a force-closed connection arrive after the close
                    // (cause not proven: without MSG_WAITALL the kernel does
                    // not retry a short send). With the write side shut, no
                    // send can go on, and the FIN leaves as a close sends it.
                    let _ = socket::shutdown_write(self.conn.socket());
                }
                if let Some(ch) = self.channel.borrow().as_ref() {
                    c.cancel_all(ch);
                }
            }
        }
        self.notify_closed();
        return_spare_buffer(std::mem::take(&mut *self.input.borrow_mut()));
        self.output.borrow_mut().clear();
        // Dropping the channel removes the slot that owns this core; the
        // caller holds another Rc until it returns.
        let channel = self.channel.borrow_mut().take();
        drop(channel);
    }

    /// Hands `buf` to the message callback (with this core marked active,
    /// so `send` from the callback finds it without a lookup).
    #[inline]
    fn deliver(&self, buf: &mut Buffer, receive_time: Instant) {
        match &self.callbacks.message {
            Some(cb) => {
                let outer = ACTIVE.with(|a| a.replace(self.me.upgrade()));
                cb(&self.conn, buf, receive_time);
                drop(ACTIVE.with(|a| a.replace(outer)));
            }
            None => buf.retrieve_all(),
        }
    }

    /// Readiness: reads what is there and hands it to the message callback.
    fn read_and_dispatch(
        &self,
        buf: &mut Buffer,
        receive_time: Instant,
        edge: bool,
    ) -> ReadOutcome {
        let (got, outcome) = readiness::read(self.conn.socket(), buf, edge);
        if got > 0 {
            self.stats.read(got);
            self.deliver(buf, receive_time);
        }
        outcome
    }

    /// Runs the message callback on this connection's own input buffer
    /// (a partial message, or bytes that arrived by completion).
    fn dispatch_own_input(&self, receive_time: Instant) {
        let mut own = std::mem::take(&mut *self.input.borrow_mut());
        if !own.is_empty() {
            self.deliver(&mut own, receive_time);
        }
        if own.is_empty() || self.conn.disconnected() {
            return_spare_buffer(own);
        } else {
            *self.input.borrow_mut() = own;
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

    /// Completion: whether a receive should be in flight now.
    fn wants_recv(&self) -> bool {
        !self.peer_closed.get()
            && self.conn.is_reading()
            && self.conn.state() == ConnectionState::Connected
            && !self.close_when_flushed.get()
    }

    /// Arms the receive, unless the ENOBUFS fallback read is pending (it
    /// re-arms when done; two readers at once could reorder bytes).
    fn rearm_recv(&self, c: &Completion) {
        if let (Some(h), Some(ch)) = (self.handler(), self.channel.borrow().as_ref()) {
            if !ch.is_reading() {
                c.start_recv(ch, self.raw_fd(), h);
            }
        }
    }

    fn act_on_read(&self, outcome: ReadOutcome) {
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

    /// Everything queued has been written.
    fn on_flushed(&self) {
        self.output
            .borrow_mut()
            .release_if_large(KEEP_OUTPUT_CAPACITY);
        if let Io::Readiness { .. } = self.io {
            self.set_writing(false);
        }
        self.queue_write_complete();
        if self.peer_closed.get() || self.close_when_flushed.get() {
            self.handle_close();
        } else if self.shutdown_when_flushed.replace(false) {
            self.shutdown_in_loop();
        }
    }
}

impl ChannelHandler for ConnCore {
    /// The socket, owned by the connection this core holds an `Arc` of.
    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        rustix::fd::AsFd::as_fd(self.conn.socket())
    }
    fn handle_read(&self, receive_time: Instant) {
        // On io_uring this is the fallback read after a receive ran out of
        // ring buffers: one level-triggered read, then back to the receive.
        let edge = match self.io {
            Io::Readiness { edge } => edge,
            Io::Completion(_) => false,
        };
        let has_own = self.input.borrow().capacity() != 0;
        let outcome = if has_own {
            // A partial message is pending: read into this connection's own buffer.
            let mut own = std::mem::take(&mut *self.input.borrow_mut());
            let outcome = self.read_and_dispatch(&mut own, receive_time, edge);
            if own.is_empty() || self.conn.disconnected() {
                return_spare_buffer(own);
            } else {
                *self.input.borrow_mut() = own;
            }
            outcome
        } else {
            // The common case: read into the thread's read area in place and
            // keep only what the callback left unconsumed, in a private
            // buffer (from the thread's spares) until the message completes.
            match self.area.try_borrow_mut() {
                Ok(mut area) => {
                    if area.writable_bytes() < READ_FD_EXTRA {
                        area.ensure_writable(READ_FD_EXTRA);
                    }
                    let outcome = self.read_and_dispatch(&mut area, receive_time, edge);
                    if !area.is_empty() {
                        if !self.conn.disconnected() {
                            *self.input.borrow_mut() = spare_buffer_with(area.peek());
                        }
                        area.retrieve_all();
                    }
                    outcome
                }
                // Only reachable if a callback re-enters reading on this
                // thread; use a private buffer then.
                Err(_) => {
                    let mut own = Buffer::new();
                    let outcome = self.read_and_dispatch(&mut own, receive_time, edge);
                    if !own.is_empty() && !self.conn.disconnected() {
                        *self.input.borrow_mut() = own;
                    }
                    outcome
                }
            }
        };
        if !matches!(outcome, ReadOutcome::Open) {
            self.act_on_read(outcome);
        }
        if let Io::Completion(c) = &self.io {
            if !self.conn.disconnected() {
                self.with_channel(|ch| ch.disable_reading());
                if self.wants_recv() {
                    self.rearm_recv(c);
                }
            }
        }
    }

    fn handle_write(&self) {
        if !self.writing.get() {
            return;
        }
        let before = self.output.borrow().len();
        let flushed = readiness::flush(self.conn.socket(), &mut self.output.borrow_mut());
        self.stats.flushed(before, self.output.borrow().len());
        match flushed {
            Ok(None) | Ok(Some(Flushed::Partly)) => {}
            Ok(Some(Flushed::All)) => self.on_flushed(),
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
        let err = socket::take_error(self.conn.socket());
        tracing::debug!(conn = %self.conn.name(), error = ?err, "socket error");
        ConnCore::handle_close(self);
    }
}

impl CompletionHandler for ConnCore {
    fn on_recv(&self, data: &[u8]) {
        if self.conn.disconnected() {
            return;
        }
        self.stats.read(data.len());
        let mut input = self.input.borrow_mut();
        if input.capacity() == 0 {
            *input = spare_buffer_with(data);
        } else {
            input.append(data);
        }
    }

    fn on_complete(&self, op: OpKind, res: i32, more: bool, now: Instant) {
        let Io::Completion(c) = &self.io else { return };
        if op != OpKind::Recv {
            return;
        }
        if !more {
            c.recv_ended();
        }
        if self.conn.disconnected() {
            return;
        }
        let outcome = completion::recv_outcome(res);
        let eof = matches!(outcome, Some(ReadOutcome::Eof));
        match outcome {
            Some(ReadOutcome::Open) if self.conn.is_reading() && !self.peer_closed.get() => {
                self.dispatch_own_input(now);
            }
            Some(ReadOutcome::Open) => {} // kept until reading resumes
            Some(other) => self.act_on_read(other),
            None => {} // cancelled or out of ring buffers: re-armed below
        }
        if !more && !eof && self.wants_recv() {
            if res == -libc::ENOBUFS {
                // The ring ran dry: re-arming at once would fail the same
                // way until buffers come back, so read this connection once
                // through readiness (a level-triggered poll, then a plain
                // read in `handle_read`), which re-arms the receive after.
                self.with_channel(|ch| ch.enable_reading());
            } else {
                self.rearm_recv(c);
            }
        }
    }

    fn on_sent(&self, res: i32, mut buf: Buffer) {
        let Io::Completion(c) = &self.io else { return };
        c.send_ended();
        if self.conn.disconnected() {
            return;
        }
        if res > 0 {
            self.stats.wrote(res as usize);
        }
        if let Err(e) = completion::send_outcome(res, &mut buf) {
            tracing::debug!(conn = %self.conn.name(), error = %e, "send failed");
            self.handle_close();
            return;
        }
        if !buf.is_empty() {
            // A short send: the rest goes first, before anything queued since.
            if let (Some(h), Some(ch)) = (self.handler(), self.channel.borrow().as_ref()) {
                c.submit_send(ch, self.raw_fd(), buf, h);
            }
            return;
        }
        // Memory that came from an input buffer (see `send_buffer_connected`)
        // goes back to the spares, so the next receive does not allocate.
        if let Some(spare) = self.output.borrow_mut().reuse_head(buf) {
            return_spare_buffer(spare);
        }
        if self.output.borrow().is_empty() {
            self.on_flushed();
        } else {
            self.submit_next(c);
        }
    }
}

//! `TcpConnection`: one established TCP connection, shared as `Arc`.

use crate::buffer::Buffer;
use crate::conn_state::{self, active_core, ConnCallbacks, ConnCore};
use crate::event_loop::{EventLoop, LoopHandle};
use crate::output_queue::FileRange;
use crate::poller::Token;
use crate::socket::{self, TcpInfo};
use crate::sync::lock;
use rustix::fd::OwnedFd;
use std::any::Any;
use std::fmt;
use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The shared form of a connection (the public alias is
/// [`TcpConnectionPtr`](crate::TcpConnectionPtr)).
type TcpConnectionPtr = Arc<TcpConnection>;

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

/// One TCP connection (muduo's `TcpConnection`), shared as [`TcpConnectionPtr`](crate::TcpConnectionPtr).
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
    /// Operations queued to the loop for this connection and not yet run.
    /// While it is above zero, the loop thread queues its own operations
    /// behind them instead of running them at once, so a send made on the
    /// loop thread never overtakes one another thread made before it.
    queued: AtomicU32,
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
            queued: AtomicU32::new(0),
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

    pub(crate) fn set_state(&self, s: ConnectionState) {
        self.state.store(s as u8, Ordering::Release);
    }

    /// Moves `from` -> `to` atomically; false if the state was not `from`.
    pub(crate) fn transition(&self, from: ConnectionState, to: ConnectionState) -> bool {
        self.state
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The in-loop part of this connection, when called on its loop thread.
    pub(crate) fn core(&self) -> Option<Rc<ConnCore>> {
        active_core(self).or_else(|| self.core_from_loop())
    }

    /// [`core`](Self::core) when no message callback of this connection is
    /// running: looks the connection up in this thread's loop. Kept out of
    /// line so the hot check above stays small enough to inline.
    #[inline(never)]
    fn core_from_loop(&self) -> Option<Rc<ConnCore>> {
        let token = Token(self.token.load(Ordering::Relaxed));
        let handler: Rc<dyn Any> = EventLoop::current_if(self.lp.id())?.handler(token)?;
        handler.downcast::<ConnCore>().ok()
    }

    /// Sends `data`. On the loop thread with nothing queued it is written at
    /// once and only what the kernel did not take is buffered; from another
    /// thread it is copied and queued to the loop. Sends on a connection that
    /// is not connected are dropped (logged at debug level).
    ///
    /// Order: operations on one connection take effect in the order they
    /// were made, from whichever threads. A send (or `shutdown`) made on
    /// the loop thread after another thread's send was queued waits behind
    /// it, so the bytes reach the peer in that order.
    pub fn send(self: &Arc<Self>, data: &[u8]) {
        if !self.connected() {
            tracing::debug!(conn = %self.name(), len = data.len(), "send on a connection that is not connected; dropped");
            return;
        }
        if let Some(core) = self.core() {
            if self.queued.load(Ordering::Relaxed) == 0 {
                core.send_connected(data);
                return;
            }
        } else if self.lp.is_in_loop_thread() {
            return; // the connection has left its loop
        }
        self.send_vec(data.to_vec());
    }

    /// Sends an owned vector; from another thread this moves it to the loop without copying.
    pub fn send_vec(self: &Arc<Self>, data: Vec<u8>) {
        if !self.connected() {
            return;
        }
        self.run_on_core(move |core| core.send_in_loop(&data));
    }

    /// Sends the readable bytes of `buf` and empties it. On io_uring, when
    /// nothing else is queued, the buffer's memory itself goes to the
    /// kernel (`buf` gets other, empty memory), so the bytes are not copied.
    pub fn send_buffer(self: &Arc<Self>, buf: &mut Buffer) {
        if self.lp.is_in_loop_thread() {
            if self.connected() && self.queued.load(Ordering::Relaxed) == 0 {
                if let Some(core) = self.core() {
                    core.send_buffer_connected(buf);
                    return;
                }
            }
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
        if self.lp.is_in_loop_thread() && self.queued.load(Ordering::Relaxed) == 0 {
            if let Some(core) = self.core() {
                f(&core);
            }
        } else {
            self.queue_on_core(f);
        }
    }

    /// Like [`run_on_core`](Self::run_on_core), but always from the loop's
    /// queue, so never inside the caller's own callback. Counted in
    /// `queued` until it runs; the count is raised before the closure is
    /// queued, so a thread that made this call before the loop thread
    /// looks (ordered by the caller's own synchronisation) is seen.
    fn queue_on_core(self: &Arc<Self>, f: impl FnOnce(&ConnCore) + Send + 'static) {
        let conn = self.clone();
        self.queued.fetch_add(1, Ordering::Relaxed);
        self.lp.queue_in_loop(move || {
            conn.queued.fetch_sub(1, Ordering::Relaxed);
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
        *lock(&self.context) = Some(Box::new(value));
    }

    /// Runs `f` on the context if it holds a `T`.
    pub fn with_context<T: Any + Send, R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let mut guard = lock(&self.context);
        guard.as_mut().and_then(|b| b.downcast_mut::<T>()).map(f)
    }

    /// Removes and returns the context if it holds a `T`.
    pub fn take_context<T: Any + Send>(&self) -> Option<T> {
        let mut guard = lock(&self.context);
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
        conn_state::establish(conn, callbacks);
    }

    /// The socket (for the loop-thread half).
    pub(crate) fn socket(&self) -> &OwnedFd {
        &self.fd
    }

    /// Records the channel token the loop-thread half is registered under.
    pub(crate) fn set_token(&self, token: Token) {
        self.token.store(token.0, Ordering::Relaxed);
    }

    /// Closes a connection from its loop thread, as if the peer had gone
    /// (used when a server or client shuts down).
    pub(crate) fn destroy_in_loop(&self) {
        if let Some(core) = self.core() {
            core.handle_close();
        }
    }
}

/// The live connections of `lp` (its thread's loop) with their counters
/// and queued output, for the inspector.
pub(crate) fn live_connections(
    lp: &EventLoop,
) -> Vec<(TcpConnectionPtr, crate::inspect::counters::ConnFigures, u64)> {
    conn_state::live_connections(lp)
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

#[cfg(test)]
mod tests {
    use crate::{EventLoop, PollerKind, TcpServer};
    use std::io::Write;
    use std::sync::mpsc;
    use std::time::Duration;

    /// A failed registration change (here: the `enable_writing` that a
    /// large send needs) must close the connection, not leave its output
    /// queued forever.
    #[test]
    fn a_failed_poller_update_closes_the_connection() {
        for kind in [PollerKind::Epoll, PollerKind::EpollEdge, PollerKind::Poll] {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let lp = EventLoop::builder().poller(kind).build().unwrap();
                let mut server =
                    TcpServer::new(&lp, "127.0.0.1:0".parse().unwrap(), "fault").unwrap();
                let down = tx.clone();
                server.set_connection_callback(move |c| {
                    if !c.connected() {
                        let _ = down.send("closed");
                    }
                });
                server.set_message_callback(|c, buf, _| {
                    buf.retrieve_all();
                    crate::channel::fault::fail_next_interest_change();
                    c.send(&vec![7u8; 32 << 20]); // more than the socket takes
                });
                server.start().unwrap();
                let addr = server.local_addr();
                let handle = lp.handle();
                lp.run_after(Duration::from_secs(10), move || handle.quit());
                let client = std::thread::spawn(move || {
                    let mut s = std::net::TcpStream::connect(addr).unwrap();
                    s.write_all(b"go").unwrap();
                    std::thread::sleep(Duration::from_secs(11));
                });
                lp.run().unwrap();
                drop(server);
                let _ = tx.send("loop ended");
                drop(client);
            });
            assert_eq!(
                rx.recv_timeout(Duration::from_secs(20)).unwrap(),
                "closed",
                "{kind:?}: the connection stayed open with output queued"
            );
        }
    }
}

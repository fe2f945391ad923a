//! `TcpServer`: accepts on a base loop, serves on N I/O loops.

use crate::acceptor::Acceptor;
use crate::buffer::Buffer;
use crate::callbacks::{TcpConnectionPtr, DEFAULT_HIGH_WATER_MARK};
use crate::conn_state::ConnCallbacks;
use crate::event_loop::{EventLoop, LoopHandle};
use crate::event_loop_thread::ThreadInitCallback;
use crate::event_loop_thread_pool::EventLoopThreadPool;
use crate::poller::{PollerKind, Token};
use crate::socket;
use crate::sync::{lock, wait_timeout, RoundRobin};
use crate::tcp_connection::TcpConnection;
use rustix::fd::OwnedFd;
use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Options fixed when the listening socket is created.
///
/// Other settings (threads, callbacks) are made with setters before
/// [`TcpServer::start`]; setters called after `start` have no effect and log a warning.
#[derive(Clone, Debug, Default)]
pub struct TcpServerOptions {
    /// Sets `SO_REUSEPORT` before `bind`, so several servers (or processes)
    /// can listen on the same port and the kernel spreads connections.
    pub reuse_port: bool,
}

struct ServerInner {
    name: String,
    /// `name-ip:port`, the common part of connection names.
    conn_prefix: Arc<str>,
    base: LoopHandle,
    listen_addr: SocketAddr,
    listener: Mutex<Option<OwnedFd>>,
    started: AtomicBool,
    stopped: AtomicBool,
    /// The I/O loops; emptied by `stop` so no handle (and its eventfd) outlives them.
    loops: Mutex<Vec<LoopHandle>>,
    next_loop: RoundRobin,
    pool: Mutex<Option<EventLoopThreadPool>>,
    connections: Mutex<HashMap<u64, TcpConnectionPtr>>,
    emptied: Condvar,
    next_id: AtomicU64,
    acceptor: AtomicU64,
    callbacks: OnceLock<Arc<ConnCallbacks>>,
}

/// A TCP server (muduo's `TcpServer`): an acceptor on the base loop and
/// connections spread round-robin over `thread_num` I/O loops.
///
/// `set_thread_num(0)` (the default) serves everything on the base loop:
/// the single-reactor model. `set_thread_num(n)` starts n I/O threads: the
/// main/sub multi-reactor model. Configure callbacks and threads, then call
/// [`start`](Self::start) (idempotent, any thread) and run the base loop.
/// [`stop`](Self::stop), which muduo lacks, closes the listener, lets each
/// connection flush (bounded by [`set_stop_timeout`](Self::set_stop_timeout)),
/// closes them and joins the I/O threads; dropping the server stops it.
///
/// Creating one ignores `SIGPIPE` process-wide (see the crate docs, "Signals").
///
/// ```no_run
/// use muduo::{EventLoop, TcpServer};
/// # fn main() -> std::io::Result<()> {
/// let lp = EventLoop::new()?;
/// let mut server = TcpServer::new(&lp, "127.0.0.1:8000".parse().unwrap(), "EchoServer")?;
/// server.set_thread_num(4);
/// server.set_connection_callback(|conn| {
///     tracing::info!(peer = %conn.peer_addr(), up = conn.connected(), "connection");
/// });
/// server.set_message_callback(|conn, buf, _| conn.send_buffer(buf));
/// server.start()?;
/// lp.run()
/// # }
/// ```
pub struct TcpServer {
    inner: Arc<ServerInner>,
    thread_num: usize,
    poller: Option<PollerKind>,
    init: Option<ThreadInitCallback>,
    callbacks: ConnCallbacks,
    stop_timeout: Duration,
}

impl TcpServer {
    /// Creates a server bound to `addr` (not yet listening) on the base loop `lp`.
    /// Bind errors (address in use, permission) are returned here.
    pub fn new(lp: &LoopHandle, addr: SocketAddr, name: &str) -> io::Result<TcpServer> {
        Self::with_options(lp, addr, name, TcpServerOptions::default())
    }

    /// Like [`new`](Self::new) with options.
    pub fn with_options(
        lp: &LoopHandle,
        addr: SocketAddr,
        name: &str,
        opts: TcpServerOptions,
    ) -> io::Result<TcpServer> {
        let listener = socket::bind_listener(addr, opts.reuse_port)?;
        let listen_addr = socket::local_addr(&listener)?;
        Ok(TcpServer {
            inner: Arc::new(ServerInner {
                name: name.to_string(),
                conn_prefix: format!("{name}-{listen_addr}").into(),
                base: lp.clone(),
                listen_addr,
                listener: Mutex::new(Some(listener)),
                started: AtomicBool::new(false),
                stopped: AtomicBool::new(false),
                loops: Mutex::new(Vec::new()),
                next_loop: RoundRobin::default(),
                pool: Mutex::new(None),
                connections: Mutex::new(HashMap::new()),
                emptied: Condvar::new(),
                next_id: AtomicU64::new(1),
                acceptor: AtomicU64::new(0),
                callbacks: OnceLock::new(),
            }),
            thread_num: 0,
            poller: None,
            init: None,
            callbacks: ConnCallbacks {
                high_water_mark_bytes: DEFAULT_HIGH_WATER_MARK,
                ..Default::default()
            },
            stop_timeout: Duration::from_secs(5),
        })
    }

    /// The server's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }
    /// The address it is bound to (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.listen_addr
    }
    /// The base loop's handle.
    pub fn base_loop(&self) -> &LoopHandle {
        &self.inner.base
    }
    /// Number of live connections.
    pub fn connection_count(&self) -> usize {
        lock(&self.inner.connections).len()
    }
    /// The live connections.
    pub fn connections(&self) -> Vec<TcpConnectionPtr> {
        lock(&self.inner.connections).values().cloned().collect()
    }
    /// The I/O loops (the base loop alone with zero threads); empty before `start`.
    pub fn io_loops(&self) -> Vec<LoopHandle> {
        lock(&self.inner.loops).clone()
    }

    fn warn_if_started(&self, what: &str) {
        if self.inner.started.load(Ordering::Acquire) {
            tracing::warn!(server = %self.inner.name, "{what} called after start(): it has no effect");
        }
    }

    /// Number of I/O threads (before `start`): 0 = everything on the base loop.
    pub fn set_thread_num(&mut self, n: usize) {
        self.warn_if_started("set_thread_num");
        self.thread_num = n;
    }
    /// The poller of the I/O loops (default: the environment's choice).
    pub fn set_poller(&mut self, kind: PollerKind) {
        self.warn_if_started("set_poller");
        self.poller = Some(kind);
    }
    /// Called on each I/O loop's thread before it starts.
    pub fn set_thread_init_callback(&mut self, f: impl Fn(&EventLoop) + Send + Sync + 'static) {
        self.warn_if_started("set_thread_init_callback");
        self.init = Some(Arc::new(f));
    }
    /// Called when a connection goes up and when it goes down.
    pub fn set_connection_callback(
        &mut self,
        f: impl Fn(&TcpConnectionPtr) + Send + Sync + 'static,
    ) {
        self.warn_if_started("set_connection_callback");
        self.callbacks.connection = Some(Arc::new(f));
    }
    /// Called with each connection's input when data arrives.
    pub fn set_message_callback(
        &mut self,
        f: impl Fn(&TcpConnectionPtr, &mut Buffer, Instant) + Send + Sync + 'static,
    ) {
        self.warn_if_started("set_message_callback");
        self.callbacks.message = Some(Arc::new(f));
    }
    /// Called when a connection's output buffer has been fully written.
    pub fn set_write_complete_callback(
        &mut self,
        f: impl Fn(&TcpConnectionPtr) + Send + Sync + 'static,
    ) {
        self.warn_if_started("set_write_complete_callback");
        self.callbacks.write_complete = Some(Arc::new(f));
    }
    /// Called once each time a connection's queued output grows past `bytes`.
    pub fn set_high_water_mark_callback(
        &mut self,
        f: impl Fn(&TcpConnectionPtr, usize) + Send + Sync + 'static,
        bytes: usize,
    ) {
        self.warn_if_started("set_high_water_mark_callback");
        self.callbacks.high_water_mark = Some(Arc::new(f));
        self.callbacks.high_water_mark_bytes = bytes;
    }
    /// How long [`stop`](Self::stop) lets connections flush (default 5 s).
    pub fn set_stop_timeout(&mut self, d: Duration) {
        self.stop_timeout = d;
    }

    /// Starts the I/O threads and listening. Idempotent; callable from any thread.
    pub fn start(&self) -> io::Result<()> {
        let inner = &self.inner;
        if inner.stopped.load(Ordering::Acquire) {
            return Err(io::Error::other("TcpServer::start after stop"));
        }
        if inner.started.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let mut pool = EventLoopThreadPool::new(&inner.base, &inner.name);
        pool.set_thread_num(self.thread_num);
        if let Some(kind) = self.poller {
            pool.set_poller(kind);
        }
        pool.start(self.init.clone())?;
        *lock(&inner.loops) = pool.all_loops();
        *lock(&inner.pool) = Some(pool);

        let weak = Arc::downgrade(inner);
        let mut callbacks = self.callbacks.clone();
        callbacks.close = Some(Arc::new(move |conn: &TcpConnectionPtr| {
            if let Some(inner) = weak.upgrade() {
                inner.remove_connection(conn);
            }
        }));
        let _ = inner.callbacks.set(Arc::new(callbacks));

        let listener = lock(&inner.listener)
            .take()
            .ok_or_else(|| io::Error::other("listener already taken"))?;
        socket::listen(&listener)?;
        let server = inner.clone();
        inner.base.run_in_loop(move || {
            let Some(lp) = EventLoop::current() else { return };
            let on_new = {
                let server = server.clone();
                Box::new(move |fd: OwnedFd, peer: SocketAddr| server.new_connection(fd, peer))
            };
            match Acceptor::start(&lp, listener, on_new) {
                Ok(token) => server.acceptor.store(token.0, Ordering::Release),
                Err(e) => tracing::error!(server = %server.name, error = %e, "cannot register the listener"),
            }
        });
        tracing::debug!(server = %inner.name, addr = %inner.listen_addr, threads = self.thread_num, "server started");
        Ok(())
    }

    /// Stops the server: closes the listener first, lets every connection
    /// flush its queued output (up to the stop timeout) and closes it, then
    /// joins the I/O threads. Idempotent. Callable from any thread; called
    /// on one of the server's own I/O threads it cannot wait, so connections
    /// are closed without waiting for their output to drain.
    pub fn stop(&self) {
        let inner = &self.inner;
        if inner.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        lock(&inner.listener).take();
        if !inner.started.load(Ordering::Acquire) {
            return;
        }
        inner.close_acceptor();
        let on_io_thread = lock(&inner.loops).iter().any(|l| l.is_in_loop_thread());
        let conns: Vec<TcpConnectionPtr> = lock(&inner.connections).values().cloned().collect();
        if on_io_thread {
            for c in &conns {
                c.force_close();
            }
        } else {
            for c in &conns {
                c.close_when_flushed();
            }
            if !inner.wait_empty(self.stop_timeout) {
                tracing::warn!(server = %inner.name, left = self.connection_count(), "stop timeout: forcing connections closed");
                for c in lock(&inner.connections).values() {
                    c.force_close();
                }
                inner.wait_empty(Duration::from_secs(1));
            }
        }
        drop(conns);
        lock(&inner.loops).clear();
        let pool = lock(&inner.pool).take();
        if let Some(mut pool) = pool {
            pool.stop();
        }
        if !on_io_thread {
            lock(&inner.connections).clear();
        }
        tracing::debug!(server = %inner.name, "server stopped");
    }
}

impl ServerInner {
    fn new_connection(&self, fd: OwnedFd, peer: SocketAddr) {
        if self.stopped.load(Ordering::Acquire) {
            return;
        }
        let Some(callbacks) = self.callbacks.get() else {
            return;
        };
        let lp = {
            let loops = lock(&self.loops);
            if loops.is_empty() {
                return;
            }
            loops[self.next_loop.next(loops.len())].clone()
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = TcpConnection::new(lp.clone(), self.conn_prefix.clone(), id, fd, peer);
        lock(&self.connections).insert(id, conn.clone());
        let callbacks = callbacks.clone();
        lp.run_in_loop(move || TcpConnection::establish(conn, callbacks));
    }

    fn remove_connection(&self, conn: &TcpConnectionPtr) {
        let mut map = lock(&self.connections);
        map.remove(&conn.id());
        if map.is_empty() {
            self.emptied.notify_all();
        }
    }

    fn wait_empty(&self, timeout: Duration) -> bool {
        let deadline = crate::timer::deadline_after(Instant::now(), timeout);
        let mut map = lock(&self.connections);
        while !map.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            map = wait_timeout(&self.emptied, map, left);
        }
        true
    }

    /// Removes the acceptor from the base loop, waiting (bounded) when
    /// called from another thread so the port is free when `stop` returns.
    fn close_acceptor(self: &Arc<Self>) {
        let token = Token(self.acceptor.load(Ordering::Acquire));
        let close = move || {
            if let Some(lp) = EventLoop::current() {
                if let Some(h) = lp.handler(token) {
                    let h: Rc<dyn Any> = h;
                    if let Ok(acceptor) = h.downcast::<Acceptor>() {
                        acceptor.close();
                    }
                }
            }
        };
        if self.base.is_in_loop_thread() {
            close();
            return;
        }
        let (tx, rx) = crossbeam_channel::bounded::<()>(1);
        self.base.run_in_loop(move || {
            close();
            let _ = tx.send(());
        });
        // Err means the base loop is gone and dropped the closure (and with
        // it the acceptor); a timeout means the base loop is not running.
        let _ = rx.recv_timeout(Duration::from_secs(2));
    }
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for TcpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpServer")
            .field("name", &self.inner.name)
            .field("addr", &self.inner.listen_addr)
            .field("connections", &self.connection_count())
            .finish()
    }
}

//! `TcpClient`: one outgoing connection, with optional reconnection.

use crate::buffer::Buffer;
use crate::callbacks::{TcpConnectionPtr, DEFAULT_HIGH_WATER_MARK};
use crate::conn_state::ConnCallbacks;
use crate::connector::{ConnectConfig, Connector};
use crate::event_loop::{EventLoop, LoopHandle};
use crate::socket;
use crate::sync::lock;
use crate::tcp_connection::TcpConnection;
use rustix::fd::OwnedFd;
use std::any::Any;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

struct ClientInner {
    lp: LoopHandle,
    name: String,
    server: SocketAddr,
    callbacks: Mutex<ConnCallbacks>,
    retry: AtomicBool,
    active: AtomicBool,
    connector: AtomicU64,
    connection: Mutex<Option<TcpConnectionPtr>>,
    next_id: AtomicU64,
    connect_timeout: Mutex<Option<Duration>>,
    connect_failed: Mutex<Option<ConnectFailedCallback>>,
}

/// Called on the loop thread with the error of each failed connect attempt.
type ConnectFailedCallback = Arc<dyn Fn(&io::Error) + Send + Sync>;

/// A TCP client (muduo's `TcpClient`): connects to one server from a loop,
/// retrying with exponential backoff (0.5 s doubling to 30 s, each delay
/// randomised to 0.5-1.5x so many clients do not reconnect in lock-step)
/// while the server is unreachable, and, with
/// [`enable_retry`](Self::enable_retry), reconnecting after the connection
/// is lost. An optional [connect timeout](Self::set_connect_timeout) bounds
/// each attempt.
///
/// Every method may be called from any thread. Dropping the client at any
/// time (connecting, waiting to retry, connected, inside its own callbacks)
/// is safe: pending work holds only weak references, the connector stops,
/// and a live connection is closed.
///
/// Creating one ignores `SIGPIPE` process-wide (see the crate docs, "Signals").
///
/// ```no_run
/// use muduo::{EventLoop, TcpClient};
/// # fn main() -> std::io::Result<()> {
/// let lp = EventLoop::new()?;
/// let mut client = TcpClient::new(&lp, "127.0.0.1:8000".parse().unwrap(), "echo-client");
/// client.set_connection_callback(|conn| {
///     if conn.connected() {
///         conn.send(b"hello\n");
///     }
/// });
/// client.set_message_callback(|_conn, buf, _| print!("{}", buf.retrieve_all_as_string()));
/// client.connect();
/// lp.run()
/// # }
/// ```
pub struct TcpClient {
    inner: Arc<ClientInner>,
}

impl TcpClient {
    /// A client of `server` whose connection will live on `lp`. Nothing
    /// happens until [`connect`](Self::connect).
    pub fn new(lp: &LoopHandle, server: SocketAddr, name: &str) -> TcpClient {
        TcpClient {
            inner: Arc::new(ClientInner {
                lp: lp.clone(),
                name: name.to_string(),
                server,
                callbacks: Mutex::new(ConnCallbacks {
                    high_water_mark_bytes: DEFAULT_HIGH_WATER_MARK,
                    ..Default::default()
                }),
                retry: AtomicBool::new(false),
                active: AtomicBool::new(false),
                connector: AtomicU64::new(0),
                connection: Mutex::new(None),
                next_id: AtomicU64::new(1),
                connect_timeout: Mutex::new(None),
                connect_failed: Mutex::new(None),
            }),
        }
    }

    /// The client's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }
    /// The server's address.
    pub fn server_addr(&self) -> SocketAddr {
        self.inner.server
    }
    /// The loop the connection lives on.
    pub fn loop_handle(&self) -> &LoopHandle {
        &self.inner.lp
    }
    /// The current connection, if connected.
    pub fn connection(&self) -> Option<TcpConnectionPtr> {
        lock(&self.inner.connection).clone()
    }
    /// True when reconnection after a lost connection is on.
    pub fn retry(&self) -> bool {
        self.inner.retry.load(Ordering::Acquire)
    }
    /// Reconnect (with backoff) whenever the connection is lost.
    pub fn enable_retry(&self) {
        self.inner.retry.store(true, Ordering::Release);
    }

    /// Called when the connection goes up and when it goes down.
    pub fn set_connection_callback(
        &mut self,
        f: impl Fn(&TcpConnectionPtr) + Send + Sync + 'static,
    ) {
        lock(&self.inner.callbacks).connection = Some(Arc::new(f));
    }
    /// Called with the connection's input when data arrives.
    pub fn set_message_callback(
        &mut self,
        f: impl Fn(&TcpConnectionPtr, &mut Buffer, Instant) + Send + Sync + 'static,
    ) {
        lock(&self.inner.callbacks).message = Some(Arc::new(f));
    }
    /// Called when the output buffer has been fully written.
    pub fn set_write_complete_callback(
        &mut self,
        f: impl Fn(&TcpConnectionPtr) + Send + Sync + 'static,
    ) {
        lock(&self.inner.callbacks).write_complete = Some(Arc::new(f));
    }
    /// Called once each time queued output grows past `bytes`.
    pub fn set_high_water_mark_callback(
        &mut self,
        f: impl Fn(&TcpConnectionPtr, usize) + Send + Sync + 'static,
        bytes: usize,
    ) {
        let mut cbs = lock(&self.inner.callbacks);
        cbs.high_water_mark = Some(Arc::new(f));
        cbs.high_water_mark_bytes = bytes;
    }

    /// Gives up on a connect attempt still in progress after `timeout` (the
    /// server's SYN queue is full, the host does not answer) and retries
    /// with backoff. Default: none (the kernel gives up after its SYN
    /// retries, about two minutes). Takes effect for a connect started
    /// after the call. Any thread.
    pub fn set_connect_timeout(&self, timeout: Duration) {
        *lock(&self.inner.connect_timeout) = Some(timeout);
    }

    /// Called on the loop thread with the error of every failed connect
    /// attempt (refused, timed out, ...), before the retry is scheduled.
    /// Set before [`connect`](Self::connect). Any thread.
    pub fn set_connect_failed_callback(&self, f: impl Fn(&io::Error) + Send + Sync + 'static) {
        *lock(&self.inner.connect_failed) = Some(Arc::new(f));
    }

    /// Starts connecting (retrying with backoff while the server refuses).
    pub fn connect(&self) {
        self.inner.active.store(true, Ordering::Release);
        let inner = self.inner.clone();
        self.inner.lp.run_in_loop(move || {
            if let Some(c) = inner.connector() {
                c.start();
            }
        });
    }

    /// Half-closes the connection (it closes once the server closes too)
    /// and stops reconnecting.
    pub fn disconnect(&self) {
        self.inner.active.store(false, Ordering::Release);
        if let Some(conn) = self.connection() {
            conn.shutdown();
        }
    }

    /// Stops connecting (cancels a pending retry); a live connection stays.
    pub fn stop(&self) {
        self.inner.active.store(false, Ordering::Release);
        let inner = self.inner.clone();
        self.inner.lp.run_in_loop(move || inner.stop_connector());
    }
}

impl ClientInner {
    /// The loop's connector for this client, made on first use (loop thread only).
    fn connector(self: &Arc<Self>) -> Option<Rc<Connector>> {
        let lp = EventLoop::current()?;
        let key = self.connector.load(Ordering::Acquire);
        if key != 0 {
            let obj: Rc<dyn Any> = lp.object(key)?;
            return obj.downcast::<Connector>().ok();
        }
        let weak = Arc::downgrade(self);
        let config = ConnectConfig {
            timeout: *lock(&self.connect_timeout),
        };
        let failed = lock(&self.connect_failed).clone();
        let connector = Connector::new(
            self.server,
            config,
            Box::new(move |fd| {
                if let Some(inner) = weak.upgrade() {
                    inner.new_connection(fd);
                }
            }),
            Box::new(move |e| {
                if let Some(f) = &failed {
                    f(e);
                }
            }),
        );
        let key = lp.insert_object(connector.clone());
        self.connector.store(key, Ordering::Release);
        Some(connector)
    }

    fn stop_connector(self: &Arc<Self>) {
        let key = self.connector.load(Ordering::Acquire);
        if let Some(lp) = EventLoop::current() {
            if let Some(obj) = lp.object(key) {
                if let Ok(c) = obj.downcast::<Connector>() {
                    c.stop();
                }
            }
        }
    }

    fn new_connection(self: &Arc<Self>, fd: OwnedFd) {
        let peer = socket::peer_addr(&fd).unwrap_or(self.server);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let prefix: Arc<str> = format!("{}:{}", self.name, peer).into();
        let conn = TcpConnection::new(self.lp.clone(), prefix, id, fd, peer);
        let weak: Weak<ClientInner> = Arc::downgrade(self);
        let mut callbacks = lock(&self.callbacks).clone();
        callbacks.close = Some(Arc::new(move |conn: &TcpConnectionPtr| {
            if let Some(inner) = weak.upgrade() {
                inner.remove_connection(conn);
            }
        }));
        *lock(&self.connection) = Some(conn.clone());
        TcpConnection::establish(conn, Arc::new(callbacks));
    }

    fn remove_connection(self: &Arc<Self>, conn: &TcpConnectionPtr) {
        {
            let mut slot = lock(&self.connection);
            if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
                slot.take();
            }
        }
        if self.retry.load(Ordering::Acquire) && self.active.load(Ordering::Acquire) {
            tracing::debug!(client = %self.name, server = %self.server, "connection lost, reconnecting");
            if let Some(c) = self.connector() {
                c.restart();
            }
        }
    }
}

impl Drop for TcpClient {
    fn drop(&mut self) {
        self.inner.active.store(false, Ordering::Release);
        self.inner.retry.store(false, Ordering::Release);
        // The connector and the connection are read on the loop thread, not
        // here: a `connect` still queued creates the connector later, and a
        // connect completing on the loop right now stores its connection
        // after any look from this thread. Both run on the loop before this
        // closure or never.
        let inner = self.inner.clone();
        self.inner.lp.run_in_loop(move || {
            if let Some(lp) = EventLoop::current() {
                let key = inner.connector.load(Ordering::Acquire);
                if let Some(obj) = lp.remove_object(key) {
                    if let Ok(c) = obj.downcast::<Connector>() {
                        c.stop();
                    }
                }
            }
            let conn = lock(&inner.connection).take();
            if let Some(conn) = conn {
                conn.destroy_in_loop();
            }
        });
    }
}

impl fmt::Debug for TcpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpClient")
            .field("name", &self.inner.name)
            .field("server", &self.inner.server)
            .field("connected", &self.connection().is_some())
            .finish()
    }
}

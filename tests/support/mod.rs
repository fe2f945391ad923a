//! Helpers shared by the TCP integration tests: a server running on its own
//! base loop thread, blocking loopback clients, bounded waits, test data.
#![allow(dead_code)]

use muduo::{EventLoopThread, PollerKind, TcpServer, TcpServerOptions};
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long a blocking client read may wait before the test fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// A `TcpServer` whose base loop runs on an [`EventLoopThread`].
///
/// Dropping it stops the server first (while the base loop still runs, so
/// the listener and connections close cleanly), then quits the base loop.
pub struct TestServer {
    server: Option<TcpServer>,
    base: Option<EventLoopThread>,
}

impl TestServer {
    /// Binds `127.0.0.1:0`, lets `configure` set callbacks, starts the server.
    pub fn start(
        kind: PollerKind,
        threads: usize,
        name: &str,
        configure: impl FnOnce(&mut TcpServer),
    ) -> TestServer {
        Self::start_with(kind, threads, name, TcpServerOptions::default(), configure)
    }

    /// Like [`start`](Self::start) with listener options.
    pub fn start_with(
        kind: PollerKind,
        threads: usize,
        name: &str,
        opts: TcpServerOptions,
        configure: impl FnOnce(&mut TcpServer),
    ) -> TestServer {
        let base = EventLoopThread::start_with(&format!("{name}-base"), kind, None)
            .expect("start base loop thread");
        let mut server =
            TcpServer::with_options(base.handle(), "127.0.0.1:0".parse().unwrap(), name, opts)
                .expect("bind server");
        server.set_thread_num(threads);
        server.set_poller(kind);
        configure(&mut server);
        server.start().expect("start server");
        TestServer {
            server: Some(server),
            base: Some(base),
        }
    }

    /// A server created on an already running base loop (not started).
    pub fn unstarted(kind: PollerKind, name: &str) -> (EventLoopThread, TcpServer) {
        let base = EventLoopThread::start_with(&format!("{name}-base"), kind, None)
            .expect("start base loop thread");
        let mut server = TcpServer::new(base.handle(), "127.0.0.1:0".parse().unwrap(), name)
            .expect("bind server");
        server.set_poller(kind);
        (base, server)
    }

    pub fn server(&self) -> &TcpServer {
        self.server.as_ref().expect("server already taken")
    }

    pub fn addr(&self) -> SocketAddr {
        self.server().local_addr()
    }

    pub fn base(&self) -> &EventLoopThread {
        self.base.as_ref().expect("base loop already taken")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
            drop(s);
        }
        self.base.take();
    }
}

/// A blocking client connected to `addr`, with a read timeout.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Polls `cond` every 2 ms until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Reads exactly `n` bytes (fails on EOF or timeout).
pub fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    s.read_exact(&mut v)
        .unwrap_or_else(|e| panic!("reading {n} bytes: {e}"));
    v
}

/// Reads until EOF; returns everything read. Fails on timeout or error.
pub fn read_to_eof(s: &mut TcpStream) -> Vec<u8> {
    let mut v = Vec::new();
    s.read_to_end(&mut v)
        .unwrap_or_else(|e| panic!("reading to EOF after {} bytes: {e}", v.len()));
    v
}

/// What a read on a socket the peer closed returned.
#[derive(Debug, PartialEq, Eq)]
pub enum Closed {
    /// `read` returned 0.
    Eof,
    /// The peer reset the connection.
    Reset,
}

/// Reads (discarding data) until the peer closes; `None` on timeout.
pub fn wait_closed(s: &mut TcpStream, limit: Duration) -> Option<Closed> {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(Closed::Eof),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Some(Closed::Reset),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                return None
            }
            Err(e) => panic!("unexpected read error: {e}"),
        }
    }
}

/// Asserts that nothing arrives on `s` within `quiet` (no extra bytes, no EOF).
pub fn assert_silent(s: &mut TcpStream, quiet: Duration) {
    s.set_read_timeout(Some(quiet)).unwrap();
    let mut b = [0u8; 4096];
    match s.read(&mut b) {
        Ok(0) => panic!("unexpected EOF"),
        Ok(n) => panic!(
            "unexpected {n} extra bytes: {:?}",
            String::from_utf8_lossy(&b[..n])
        ),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut => {}
        Err(e) => panic!("unexpected read error: {e}"),
    }
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
}

/// Half-closes the client's write side.
pub fn shutdown_write(s: &TcpStream) {
    s.shutdown(Shutdown::Write).unwrap();
}

/// Deterministic pseudo-random bytes (xorshift64*), cheap even in debug builds.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Number of open fds of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

/// A blocking client whose `SO_RCVBUF` is fixed (set before connecting,
/// which also turns off receive-buffer autotuning).
pub fn connect_small_rcvbuf(addr: SocketAddr, rcvbuf: usize) -> TcpStream {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .unwrap();
    s.set_recv_buffer_size(rcvbuf).unwrap();
    s.connect(&addr.into()).expect("connect");
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

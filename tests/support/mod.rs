//! The one helper module of the integration tests (`mod support;`): the
//! backends to run on, bounded waits (`with_timeout`), a TCP server on its
//! own base loop thread (`TestServer`), blocking loopback clients and test
//! data; `support::http` for HTTP tests (`HttpTestServer`, a raw client) and
//! `support::example` for tests that run an example binary.
#![allow(dead_code)]

pub mod example;
pub mod http;
pub mod inspect;

use muduo::{EventLoopThread, PollerKind, TcpServer, TcpServerOptions};
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Every backend, so loop tests run against each: epoll level- and
/// edge-triggered, poll, and io_uring (the completion backend).
pub const POLLERS: [PollerKind; 4] = [
    PollerKind::Epoll,
    PollerKind::EpollEdge,
    PollerKind::Poll,
    PollerKind::Uring,
];

/// The backends this kernel can run: [`POLLERS`] without io_uring when it
/// is unavailable (old kernel, `kernel.io_uring_disabled`, seccomp), which
/// is printed once so a skipped backend is visible in the test output.
///
/// `MUDUO_TEST_POLLERS=uring,epoll` (names as `--poller` takes them) runs
/// only those: `scripts/asan-uring.sh` uses it to run the io_uring half of
/// the suite under AddressSanitizer.
pub fn pollers() -> Vec<PollerKind> {
    let only: Option<Vec<PollerKind>> = std::env::var("MUDUO_TEST_POLLERS").ok().map(|v| {
        v.split(',')
            .map(|name| {
                name.trim()
                    .parse()
                    .unwrap_or_else(|e| panic!("MUDUO_TEST_POLLERS: {e}"))
            })
            .collect()
    });
    POLLERS
        .into_iter()
        .filter(|k| only.as_ref().is_none_or(|o| o.contains(k)))
        .filter(|k| available(*k))
        .collect()
}

/// True if a loop with `kind` can be built here (io_uring may be missing).
pub fn available(kind: PollerKind) -> bool {
    static URING: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    if kind != PollerKind::Uring {
        return true;
    }
    let probe = URING.get_or_init(|| {
        // On a thread of its own: a thread may own only one loop.
        std::thread::spawn(|| {
            muduo::EventLoop::builder()
                .poller(PollerKind::Uring)
                .build()
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .join()
        .unwrap_or_else(|_| Err("probe panicked".into()))
    });
    match probe {
        Ok(()) => true,
        Err(e) => {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| eprintln!("SKIPPING the io_uring backend: {e}"));
            false
        }
    }
}

/// Runs `f` on a fresh thread and fails the test if it takes longer than `limit`.
pub fn with_timeout<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => {
            let _ = t.join();
            v
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match t.join() {
            Err(p) => std::panic::resume_unwind(p),
            Ok(()) => panic!("test thread ended without a result"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("test timed out after {limit:?}"),
    }
}

/// Serializes the tests of one binary that count process-wide resources
/// (open fds): tests run in parallel threads of one process.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    // The io_uring probe opens (and closes) fds once per process: let it
    // finish before any test takes an fd baseline.
    available(PollerKind::Uring);
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

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

/// More bytes than the kernel can hold for one loopback connection whose
/// receiver has a small fixed `SO_RCVBUF` (see [`connect_small_rcvbuf`]):
/// four times the send buffer's autotuning ceiling (the last field of
/// `net.ipv4.tcp_wmem`), and at least `floor`.
///
/// Tests that need output to stay queued in the library (a client that
/// does not read) size it with this, so a machine with larger buffers
/// cannot swallow it all.
pub fn more_than_kernel_buffers(floor: usize) -> usize {
    let wmem_max = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2)?.parse::<usize>().ok())
        .unwrap_or(4 << 20);
    floor.max(4 * wmem_max)
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

/// Returns once `lp` has run every closure queued on it before this call.
///
/// Work posted to a loop from another thread (a server's listener
/// registration by `TcpServer::start`, a connection's close) has been applied
/// when this returns: read baselines and states after it, never before.
pub fn loop_barrier(lp: &muduo::LoopHandle) {
    let (tx, rx) = std::sync::mpsc::channel();
    lp.run_in_loop(move || {
        let _ = tx.send(());
    });
    rx.recv_timeout(READ_TIMEOUT)
        .expect("the loop did not run a queued closure");
}

/// Sends the library's logs to the test's output when `RUST_LOG` is set
/// (e.g. `RUST_LOG=warn`), so a failing test shows what the loop logged.
pub fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

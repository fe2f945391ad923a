//! TcpServer: stop() with live connections (fds, threads), start/stop/drop
//! lifecycle, EMFILE handling (in a child process with a low fd limit),
//! SO_REUSEPORT, thread-init callbacks and round-robin loop assignment.
//!
//! Tests here run one at a time (a process-wide lock), because the fd
//! accounting looks at every fd of the process.

mod support;

use muduo::{
    EventLoop, EventLoopThread, PollerKind, TcpConnectionPtr, TcpServer, TcpServerOptions,
};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;
use support::with_timeout;
use support::{connect, open_fds, read_n, wait_closed, wait_until, Closed, TestServer};

const LIMIT: Duration = Duration::from_secs(90);
const WAIT: Duration = Duration::from_secs(10);
const MIB: usize = 1 << 20;

fn serial() -> MutexGuard<'static, ()> {
    // The io_uring probe opens (and closes) fds once per process: let it
    // finish before any test takes an fd baseline.
    support::available(PollerKind::Uring);
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn echo(s: &mut TcpServer) {
    s.set_message_callback(|c, buf, _| {
        c.send(buf.peek());
        buf.retrieve_all();
    });
}

/// What each open fd of this process points to (for failure messages).
fn fd_targets() -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| {
            let target = std::fs::read_link(e.path())
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            format!("{} -> {target}", e.file_name().to_string_lossy())
        })
        .collect()
}

fn ping(c: &mut TcpStream, msg: &[u8]) {
    c.write_all(msg).unwrap();
    assert_eq!(read_n(c, msg.len()), msg);
}

// ---------------------------------------------------------------------------
// stop() with 100 live connections

fn stop_with_live_connections(kind: PollerKind, threads: usize) {
    if !support::available(kind) {
        return;
    }
    let _g = serial();
    with_timeout(LIMIT, move || {
        const CLIENTS: usize = 100;
        const FLUSHED: usize = 10; // clients with 1 MiB still queued at stop()
        let base = EventLoopThread::start_with("stop-base", kind, None).unwrap();
        let fds_before = open_fds();

        let downs = Arc::new(AtomicUsize::new(0));
        let d2 = downs.clone();
        let (tx, rx) = mpsc::channel::<TcpConnectionPtr>();
        let mut server =
            TcpServer::new(base.handle(), "127.0.0.1:0".parse().unwrap(), "stop").unwrap();
        server.set_thread_num(threads);
        server.set_poller(kind);
        server.set_connection_callback(move |c| {
            if c.connected() {
                let _ = tx.send(c.clone());
            } else {
                d2.fetch_add(1, Ordering::SeqCst);
            }
        });
        echo(&mut server);
        server.start().unwrap();
        let addr = server.local_addr();

        let mut clients: Vec<TcpStream> = (0..CLIENTS).map(|_| connect(addr)).collect();
        assert!(
            wait_until(WAIT, || server.connection_count() == CLIENTS),
            "all {CLIENTS} connections accepted"
        );
        for (i, c) in clients.iter_mut().enumerate() {
            ping(c, format!("hello {i}").as_bytes());
        }
        // Queue 1 MiB for the first clients, who have not read it yet when
        // stop() is called: stop() must flush it before closing.
        let mut conns: Vec<TcpConnectionPtr> = (0..CLIENTS).map(|_| rx.recv().unwrap()).collect();
        conns.sort_by_key(|c| c.peer_addr().port());
        for c in &conns {
            let i = clients
                .iter()
                .position(|s| s.local_addr().unwrap() == c.peer_addr())
                .unwrap();
            if i < FLUSHED {
                c.send(&vec![i as u8; MIB]);
            }
        }
        drop(conns);

        let io_loops = server.io_loops();
        assert_eq!(io_loops.len(), threads.max(1));
        let readers: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(i, mut c)| {
                std::thread::spawn(move || {
                    // Start reading only once stop() is under way, so the
                    // queued output is still pending when it begins.
                    std::thread::sleep(Duration::from_millis(100));
                    let mut got = Vec::new();
                    c.set_read_timeout(Some(WAIT)).unwrap();
                    c.read_to_end(&mut got)
                        .unwrap_or_else(|e| panic!("client {i}: {e} after {} bytes", got.len()));
                    (i, got, c)
                })
            })
            .collect();

        server.stop();
        assert_eq!(
            server.connection_count(),
            0,
            "stop() returns with no connections"
        );
        assert_eq!(
            downs.load(Ordering::SeqCst),
            CLIENTS,
            "every disconnect was reported"
        );
        let mut clients = Vec::new();
        for r in readers {
            let (i, got, c) = r.join().expect("reader");
            if i < FLUSHED {
                assert!(
                    got.len() == MIB && got.iter().all(|&b| b == i as u8),
                    "client {i}: queued output flushed before the close ({} bytes)",
                    got.len()
                );
            } else {
                assert!(got.is_empty(), "client {i}: unexpected bytes");
            }
            clients.push(c); // every client has seen EOF
        }
        if threads > 0 {
            assert!(
                io_loops.iter().all(|l| !l.is_alive()),
                "stop() joined the I/O threads"
            );
        }
        drop(io_loops);
        assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
        drop(clients);
        // Every socket, the listener, the idle fd and the I/O loops' epoll
        // and timer fds are closed by stop(). The server itself still holds
        // a LoopHandle per (dead) I/O loop, and a handle owns its loop's
        // wakeup eventfd: at most one fd per I/O thread until it is dropped.
        assert!(
            wait_until(WAIT, || open_fds() <= fds_before + threads),
            "fds leaked after stop(): {} before, now {:#?}",
            fds_before,
            fd_targets()
        );
        server.stop(); // twice is fine
        drop(server);
        assert!(
            wait_until(WAIT, || open_fds() == fds_before),
            "fds leaked after drop: {} before, now {:#?}",
            fds_before,
            fd_targets()
        );
        drop(base);
    });
}

#[test]
fn stop_with_100_live_connections_4_threads() {
    stop_with_live_connections(PollerKind::Epoll, 4);
}

#[test]
fn stop_with_100_live_connections_single_loop_poll() {
    stop_with_live_connections(PollerKind::Poll, 0);
}

#[test]
fn stop_with_100_live_connections_epoll_et() {
    stop_with_live_connections(PollerKind::EpollEdge, 2);
}

#[test]
fn stop_with_100_live_connections_uring() {
    stop_with_live_connections(PollerKind::Uring, 2);
}

// ---------------------------------------------------------------------------
// lifecycle

#[test]
fn start_twice_stop_twice_start_after_stop() {
    let _g = serial();
    with_timeout(LIMIT, || {
        let (base, mut server) = TestServer::unstarted(PollerKind::Epoll, "life");
        server.set_thread_num(2);
        echo(&mut server);
        server.start().unwrap();
        server.start().unwrap(); // idempotent
        assert_eq!(
            server.io_loops().len(),
            2,
            "the second start() started nothing"
        );
        let mut c = connect(server.local_addr());
        ping(&mut c, b"twice");
        server.stop();
        assert_eq!(wait_closed(&mut c, WAIT), Some(Closed::Eof));
        server.stop(); // idempotent
        assert!(server.start().is_err(), "start() after stop() is refused");
        drop(server);
        drop(base);
    });
}

#[test]
fn dropping_a_started_server_stops_it() {
    let _g = serial();
    with_timeout(LIMIT, || {
        let (base, mut server) = TestServer::unstarted(PollerKind::Epoll, "dropped");
        server.set_thread_num(2);
        echo(&mut server);
        server.start().unwrap();
        let addr = server.local_addr();
        let mut c = connect(addr);
        ping(&mut c, b"x");
        let loops = server.io_loops();
        drop(server);
        assert_eq!(wait_closed(&mut c, WAIT), Some(Closed::Eof));
        assert!(loops.iter().all(|l| !l.is_alive()), "I/O threads joined");
        assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
        assert!(
            base.handle().is_alive(),
            "the base loop is not the server's"
        );
    });
}

#[test]
fn start_from_another_thread_and_from_the_base_loop() {
    let _g = serial();
    with_timeout(LIMIT, || {
        // From a plain thread.
        let (base, mut server) = TestServer::unstarted(PollerKind::Poll, "other");
        server.set_thread_num(1);
        echo(&mut server);
        let server = Arc::new(server);
        let s2 = server.clone();
        std::thread::spawn(move || s2.start().unwrap())
            .join()
            .unwrap();
        let mut c = connect(server.local_addr());
        ping(&mut c, b"from a thread");
        drop(c);
        drop(server);
        drop(base);

        // From the base loop's own thread.
        let (base, mut server) = TestServer::unstarted(PollerKind::EpollEdge, "inloop");
        server.set_thread_num(2);
        echo(&mut server);
        let server = Arc::new(server);
        let (tx, rx) = mpsc::channel();
        let s2 = server.clone();
        base.handle().run_in_loop(move || {
            tx.send(s2.start().is_ok()).unwrap();
            drop(s2);
        });
        assert!(rx.recv_timeout(WAIT).unwrap(), "start() on the base loop");
        let mut c = connect(server.local_addr());
        ping(&mut c, b"from the loop");
        drop(c);
        drop(server);
        drop(base);
    });
}

#[test]
fn stop_from_an_io_thread_callback() {
    let _g = serial();
    with_timeout(LIMIT, || {
        let (base, mut server) = TestServer::unstarted(PollerKind::Epoll, "selfstop");
        server.set_thread_num(2);
        let slot: Arc<OnceLock<Weak<TcpServer>>> = Arc::new(OnceLock::new());
        let s2 = slot.clone();
        server.set_message_callback(move |c, buf, _| {
            if buf.peek() == b"stop" {
                if let Some(server) = s2.get().and_then(|w| w.upgrade()) {
                    server.stop();
                }
            } else {
                c.send(buf.peek());
            }
            buf.retrieve_all();
        });
        let server = Arc::new(server);
        slot.set(Arc::downgrade(&server)).unwrap();
        server.start().unwrap();
        let addr = server.local_addr();
        let mut a = connect(addr);
        let mut b = connect(addr);
        ping(&mut a, b"a");
        ping(&mut b, b"b");
        a.write_all(b"stop").unwrap();
        assert_eq!(wait_closed(&mut a, WAIT), Some(Closed::Eof));
        assert_eq!(wait_closed(&mut b, WAIT), Some(Closed::Eof));
        assert!(wait_until(WAIT, || server.connection_count() == 0));
        let loops = server.io_loops();
        assert!(
            wait_until(WAIT, || loops.iter().all(|l| !l.is_alive())),
            "every I/O loop ends, also the one that called stop()"
        );
        assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
        drop(server);
        drop(base);
    });
}

// ---------------------------------------------------------------------------
// EMFILE

const CHILD_ENV: &str = "MUDUO_EMFILE_CHILD";
const CHILD_FD_LIMIT: u64 = 64;
const EMFILE_CLIENTS: usize = 200;

/// The server half of `emfile_server_keeps_running_and_recovers`, run in a
/// child process (this test binary re-executed) with RLIMIT_NOFILE lowered.
/// Prints `PORT n`, then answers commands on stdin: `count` (connections),
/// `fds` (open fds), `base` (does the base loop run a posted closure within
/// 3 s?) and `quit`. `CHILD_LOG=<filter>` turns on the library's logging.
#[test]
#[ignore = "helper process of emfile_server_keeps_running_and_recovers"]
fn emfile_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let hard = getrlimit(Resource::Nofile).maximum;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(CHILD_FD_LIMIT),
            maximum: hard,
        },
    )
    .expect("lower RLIMIT_NOFILE");
    if let Ok(f) = std::env::var("CHILD_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(f))
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .try_init();
    }
    let kind = std::env::var("CHILD_POLLER")
        .ok()
        .and_then(|k| PollerKind::parse(&k))
        .unwrap_or(PollerKind::Epoll);
    let server = TestServer::start(kind, 1, "emfile", echo);
    let mut out = std::io::stdout().lock();
    writeln!(out, "PORT {}", server.addr().port()).unwrap();
    out.flush().unwrap();
    for line in std::io::stdin().lock().lines() {
        match line.unwrap().trim() {
            "count" => {
                writeln!(out, "COUNT {}", server.server().connection_count()).unwrap();
                out.flush().unwrap();
            }
            "fds" => {
                writeln!(out, "FDS {}", support::open_fds()).unwrap();
                out.flush().unwrap();
            }
            "base" => {
                let (tx, rx) = mpsc::channel();
                server
                    .base()
                    .handle()
                    .run_in_loop(move || tx.send(()).unwrap());
                let ok = rx.recv_timeout(Duration::from_secs(3)).is_ok();
                writeln!(out, "BASE {}", if ok { "ok" } else { "stuck" }).unwrap();
                out.flush().unwrap();
            }
            "quit" => break,
            other => panic!("unknown command {other:?}"),
        }
    }
    drop(server);
    writeln!(out, "BYE").unwrap();
    out.flush().unwrap();
}

/// The child server process; killed and reaped on drop (also on panic).
struct ChildServer {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl ChildServer {
    fn spawn(kind: PollerKind) -> ChildServer {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "emfile_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .env("CHILD_POLLER", kind.name())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the child server");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        ChildServer {
            child,
            stdin,
            lines,
        }
    }

    /// What follows `prefix` on the next stdout line holding it (the
    /// harness's own output is skipped; its `test emfile_child ... ` may
    /// share the line).
    fn expect_line(&mut self, prefix: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(WAIT)
                .unwrap_or_else(|_| panic!("the child did not print {prefix:?}"));
            if let Some((_, rest)) = line.split_once(prefix) {
                return rest.trim().to_string();
            }
        }
    }

    fn ask(&mut self, command: &str, answer: &str) -> String {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        self.expect_line(answer)
    }

    fn count(&mut self) -> usize {
        self.ask("count", "COUNT ").parse().unwrap()
    }

    fn fds(&mut self) -> usize {
        self.ask("fds", "FDS ").parse().unwrap()
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What became of a client of the fd-starved server.
#[derive(Debug, PartialEq)]
enum Fate {
    Served,
    Closed,
}

fn fate(c: &mut TcpStream, msg: &[u8]) -> Fate {
    // A closed connection may already refuse the write (EPIPE/ECONNRESET).
    if c.write_all(msg).is_err() {
        return Fate::Closed;
    }
    c.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while got.len() < msg.len() {
        match c.read(&mut buf) {
            Ok(0) => return Fate::Closed,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Fate::Closed,
            Err(e) => panic!("client neither served nor closed (it hangs): {e}"),
        }
    }
    assert_eq!(got, msg);
    Fate::Served
}

#[test]
fn emfile_server_keeps_running_and_recovers() {
    emfile_keeps_running_and_recovers(PollerKind::Epoll);
}

#[test]
fn emfile_server_keeps_running_and_recovers_uring() {
    emfile_keeps_running_and_recovers(PollerKind::Uring);
}

fn emfile_keeps_running_and_recovers(kind: PollerKind) {
    if !support::available(kind) {
        return;
    }
    let _g = serial();
    with_timeout(LIMIT, move || {
        let mut child = ChildServer::spawn(kind);
        let port: u16 = child.expect_line("PORT ").parse().unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        // The listener is registered (with its idle fd) by a closure on the
        // base loop; once a later closure has run there, it has too.
        assert_eq!(child.ask("base", "BASE "), "ok");
        let child_fds = child.fds();

        // Far more connections than the child has fds for. The kernel
        // completes every handshake; the server accepts what it can and,
        // once out of fds, accepts and closes the rest (idle-fd trick).
        let mut clients: Vec<TcpStream> = (0..EMFILE_CLIENTS)
            .map(|_| TcpStream::connect(addr).expect("connect"))
            .collect();
        let fates: Vec<Fate> = clients
            .iter_mut()
            .enumerate()
            .map(|(i, c)| fate(c, format!("client {i}").as_bytes()))
            .collect();
        let served = fates.iter().filter(|f| **f == Fate::Served).count();
        let closed = fates.len() - served;
        println!(
            "EMFILE: limit {CHILD_FD_LIMIT} fds, {EMFILE_CLIENTS} clients: {served} served, {closed} closed by the server"
        );
        assert!(served > 0, "some clients are served");
        assert!(closed > 0, "the fd limit was reached");
        assert!(served < CHILD_FD_LIMIT as usize);
        assert!(child.alive(), "the server survives running out of fds");
        assert_eq!(
            child.count(),
            served,
            "the server holds exactly the served clients"
        );
        // Still at the fd limit, with nothing left to accept: the base loop
        // must not be stuck in the acceptor (it used to spin on EMFILE).
        assert_eq!(
            child.ask("base", "BASE "),
            "ok",
            "the base loop stays responsive while out of fds"
        );
        // The served ones are still served.
        for (c, f) in clients.iter_mut().zip(&fates) {
            if *f == Fate::Served {
                assert_eq!(fate(c, b"again"), Fate::Served);
            }
        }

        // Free the fds: the server serves new clients again.
        drop(clients);
        assert!(
            wait_until(WAIT, || child.count() == 0 && child.fds() == child_fds),
            "the server closes its side of every client and frees the fds \
             (connections {}, fds {} now, {child_fds} at the start)",
            child.count(),
            child.fds()
        );
        let mut fresh: Vec<TcpStream> = (0..20).map(|_| connect(addr)).collect();
        for (i, c) in fresh.iter_mut().enumerate() {
            assert_eq!(
                fate(c, format!("fresh {i}").as_bytes()),
                Fate::Served,
                "fresh client {i}"
            );
        }
        assert_eq!(child.count(), 20);
        assert_eq!(child.ask("base", "BASE "), "ok");
        drop(fresh);

        writeln!(child.stdin, "quit").unwrap();
        child.stdin.flush().unwrap();
        child.expect_line("BYE");
        assert!(
            wait_until(WAIT, || !child.alive()),
            "the child exits after quit"
        );
        assert!(child.child.wait().unwrap().success());
    });
}

// ---------------------------------------------------------------------------
// SO_REUSEPORT

#[test]
fn reuse_port_lets_two_servers_share_a_port() {
    let _g = serial();
    with_timeout(LIMIT, || {
        let opts = TcpServerOptions { reuse_port: true };
        let count = |tag: &'static str, hits: Arc<Mutex<Vec<&'static str>>>| {
            move |s: &mut TcpServer| {
                s.set_connection_callback(move |c| {
                    if c.connected() {
                        hits.lock().unwrap().push(tag);
                    }
                });
                s.set_message_callback(move |c, buf, _| {
                    c.send(tag.as_bytes());
                    buf.retrieve_all();
                });
            }
        };
        let hits = Arc::new(Mutex::new(Vec::new()));
        let a = TestServer::start_with(
            PollerKind::Epoll,
            1,
            "a",
            opts.clone(),
            count("a", hits.clone()),
        );
        let addr = a.addr();

        // Without SO_REUSEPORT the port is taken.
        let base = EventLoopThread::start("b-base", None).unwrap();
        let err = TcpServer::new(base.handle(), addr, "nope").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
        // With it, a second server binds and listens on the same port.
        let mut b = TcpServer::with_options(base.handle(), addr, "b", opts).unwrap();
        b.set_thread_num(1);
        count("b", hits.clone())(&mut b);
        b.start().unwrap();
        assert_eq!(b.local_addr(), addr);

        let mut answers = Vec::new();
        for _ in 0..32 {
            let mut c = connect(addr);
            c.write_all(b"?").unwrap();
            answers.push(String::from_utf8(read_n(&mut c, 1)).unwrap());
        }
        let by_a = answers.iter().filter(|s| *s == "a").count();
        let by_b = answers.iter().filter(|s| *s == "b").count();
        assert_eq!(by_a + by_b, 32);
        assert!(
            by_a > 0 && by_b > 0,
            "the kernel spreads connections over both listeners: a {by_a}, b {by_b}"
        );
        assert_eq!(hits.lock().unwrap().len(), 32);
        b.stop();
        drop(b);
        drop(base);
        drop(a);
    });
}

// ---------------------------------------------------------------------------
// thread init callback, round robin

#[test]
fn thread_init_once_per_io_thread_and_round_robin() {
    let _g = serial();
    with_timeout(LIMIT, || {
        let inits = Arc::new(Mutex::new(Vec::<(u64, String, bool)>::new()));
        let i2 = inits.clone();
        let (tx, rx) = mpsc::channel::<TcpConnectionPtr>();
        let server = TestServer::start(PollerKind::Epoll, 3, "rr", move |s| {
            s.set_thread_init_callback(move |lp: &EventLoop| {
                i2.lock().unwrap().push((
                    lp.id(),
                    std::thread::current().name().unwrap_or("").to_string(),
                    lp.is_in_loop_thread(),
                ));
            });
            s.set_connection_callback(move |c| {
                if c.connected() {
                    let _ = tx.send(c.clone());
                }
            });
        });
        let loops: Vec<u64> = server.server().io_loops().iter().map(|l| l.id()).collect();
        assert_eq!(loops.len(), 3);
        assert!(!loops.contains(&server.base().handle().id()));
        let mut seen = inits.lock().unwrap().clone();
        seen.sort();
        assert_eq!(seen.len(), 3, "one init call per I/O thread: {seen:?}");
        let mut ids: Vec<u64> = seen.iter().map(|s| s.0).collect();
        let mut expected = loops.clone();
        ids.sort();
        expected.sort();
        assert_eq!(ids, expected, "init ran for each I/O loop");
        assert!(
            seen.iter().all(|s| s.2),
            "init runs on the loop's own thread"
        );
        let mut names: Vec<&str> = seen.iter().map(|s| s.1.as_str()).collect();
        names.sort();
        assert_eq!(names, ["rr0", "rr1", "rr2"]);

        // Connections go round-robin, in io_loops() order.
        let mut clients = Vec::new();
        let mut assigned = Vec::new();
        for _ in 0..6 {
            clients.push(connect(server.addr()));
            let conn = rx.recv_timeout(WAIT).expect("connection up");
            assert!(conn.loop_handle().is_alive());
            assigned.push(conn.loop_handle().id());
        }
        let expected: Vec<u64> = (0..6).map(|i| loops[i % 3]).collect();
        assert_eq!(assigned, expected, "round robin over the I/O loops");
        assert_eq!(inits.lock().unwrap().len(), 3, "no more init calls");
    });
}

#[test]
fn thread_init_with_zero_threads_runs_on_the_base_loop() {
    let _g = serial();
    with_timeout(LIMIT, || {
        let (tx, rx) = mpsc::channel::<(u64, bool)>();
        let server = TestServer::start(PollerKind::Poll, 0, "single", move |s| {
            s.set_thread_init_callback(move |lp: &EventLoop| {
                let _ = tx.send((lp.id(), lp.is_in_loop_thread()));
            });
        });
        let (id, in_loop) = rx.recv_timeout(WAIT).expect("init called");
        assert_eq!(id, server.base().handle().id());
        assert!(in_loop);
        assert!(
            rx.recv_timeout(Duration::from_millis(100)).is_err(),
            "called once"
        );
        let loops = server.server().io_loops();
        assert_eq!(loops.len(), 1);
        assert_eq!(loops[0].id(), server.base().handle().id());
    });
}

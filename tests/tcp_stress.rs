//! Stress: 10,000 connections per backend, opened and closed with data in
//! flight both ways, closed from either side at random moments. Checks: no
//! panic, no lost byte on the connections that completed normally, no
//! connection left in the server, no fd leaked.

mod support;
use muduo::{EventLoopThread, PollerKind, TcpServer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use support::{serial, with_timeout};

const CONNECTIONS: usize = 10_000;
const CLIENT_THREADS: usize = 16;
const LIMIT: Duration = Duration::from_secs(240);
const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// First byte of a connection that asks the server to close it: `CLOSE_NOW`
/// right away, `CLOSE_AFTER` after echoing what it got.
const CLOSE_NOW: u8 = 0xfe;
const CLOSE_AFTER: u8 = 0xfd;
/// First byte of the sentinel connection, opened after every client is
/// done (see [`wait_all_accepted`]).
const SENTINEL: u8 = 0xfc;

const POOL: usize = 64 * 1024;

/// Random bytes below the close markers, made once (per-byte generation is
/// slow in debug builds).
fn pool() -> &'static [u8] {
    static POOL_BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    POOL_BYTES.get_or_init(|| {
        let mut rng = StdRng::seed_from_u64(42);
        (0..POOL).map(|_| rng.gen_range(0..0xf0u8)).collect()
    })
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[derive(Default)]
struct Tally {
    completed: AtomicUsize,
    client_aborted: AtomicUsize,
    server_closed: AtomicUsize,
}

/// One connection; returns normally unless a byte was lost or altered.
fn one(addr: SocketAddr, rng: &mut StdRng, tally: &Tally) {
    let mut s = match TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) => panic!("connect: {e}"),
    };
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let len = rng.gen_range(1..32 * 1024);
    let off = rng.gen_range(0..POOL - len);
    let mut data = pool()[off..off + len].to_vec();
    match rng.gen_range(0..10) {
        // Normal: send in random pieces, half-close, expect every byte back.
        0..=5 => {
            let mut sent = 0;
            while sent < data.len() {
                let n = rng.gen_range(1..=data.len() - sent);
                s.write_all(&data[sent..sent + n]).unwrap();
                sent += n;
            }
            s.shutdown(Shutdown::Write).unwrap();
            let mut got = Vec::with_capacity(data.len());
            s.read_to_end(&mut got)
                .unwrap_or_else(|e| panic!("read after {} of {} bytes: {e}", got.len(), len));
            assert!(
                got == data,
                "echo differs: {} of {} bytes back",
                got.len(),
                len
            );
            tally.completed.fetch_add(1, Ordering::Relaxed);
        }
        // The client goes away at a random moment, sometimes with a reset.
        6..=7 => {
            let cut = rng.gen_range(0..data.len());
            let _ = s.write_all(&data[..cut]);
            if rng.gen_bool(0.5) {
                let mut buf = vec![0u8; rng.gen_range(1..4096)];
                let _ = s.read(&mut buf);
            }
            if rng.gen_bool(0.5) {
                // SO_LINGER 0: close sends RST instead of FIN.
                let sock = socket2::SockRef::from(&s);
                let _ = sock.set_linger(Some(Duration::ZERO));
            }
            drop(s);
            tally.client_aborted.fetch_add(1, Ordering::Relaxed);
        }
        // The server closes: what comes back is a prefix of what was sent.
        _ => {
            data[0] = if rng.gen_bool(0.5) {
                CLOSE_NOW
            } else {
                CLOSE_AFTER
            };
            let _ = s.write_all(&data);
            let mut got = Vec::new();
            match s.read_to_end(&mut got) {
                Ok(_) => {}
                Err(e)
                    if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {}
                Err(e) => panic!("server-closed connection: {e}"),
            }
            assert!(
                data.starts_with(&got),
                "bytes altered before the server closed"
            );
            tally.server_closed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Returns once the server has accepted every connection the clients made.
///
/// A client can connect, finish and leave while its connection still waits
/// in the kernel's accept queue, so "no connection in the server" right
/// after the clients finish does not mean all were handled. The accept
/// queue is first in, first out: once the server has accepted (and heard
/// from) a sentinel connected after every client finished, every earlier
/// connection has been accepted (or was reset out of the queue) and is
/// counted. The sentinel is then closed like any other connection.
fn wait_all_accepted(addr: SocketAddr, heard: &mpsc::Receiver<()>) {
    let mut sentinel = TcpStream::connect(addr).expect("sentinel connect");
    sentinel.write_all(&[SENTINEL]).unwrap();
    heard
        .recv_timeout(Duration::from_secs(30))
        .expect("the server never read the sentinel");
    drop(sentinel);
}

fn stress(kind: PollerKind) {
    let _g = serial();
    with_timeout(LIMIT, move || {
        let base = EventLoopThread::start_with("stress", kind, None).unwrap();
        let mut server =
            TcpServer::new(base.handle(), "127.0.0.1:0".parse().unwrap(), "stress").unwrap();
        server.set_thread_num(2);
        server.set_poller(kind);
        let (sentinel_tx, sentinel_rx) = mpsc::channel::<()>();
        let sentinel_tx = std::sync::Mutex::new(sentinel_tx);
        server.set_message_callback(move |conn, buf, _| {
            // The first byte of a connection may ask for a close.
            let first = conn.with_context(|seen: &mut bool| std::mem::replace(seen, true));
            let ask = if first.is_none() {
                conn.set_context(true);
                buf.peek().first().copied()
            } else {
                None
            };
            match ask {
                Some(SENTINEL) => {
                    buf.retrieve_all();
                    let _ = sentinel_tx.lock().unwrap().send(());
                }
                Some(CLOSE_NOW) => {
                    buf.retrieve_all();
                    conn.force_close();
                }
                Some(CLOSE_AFTER) => {
                    conn.send_buffer(buf);
                    conn.shutdown();
                    conn.force_close_with_delay(Duration::from_millis(1));
                }
                _ => conn.send_buffer(buf),
            }
        });
        server.start().unwrap();
        let addr = server.local_addr();
        // Count fds only once the listener is registered on the base loop.
        let (tx, rx) = mpsc::channel();
        base.handle().run_in_loop(move || tx.send(()).unwrap());
        rx.recv().unwrap();
        let fds_before = open_fds();

        let tally = Arc::new(Tally::default());
        let started = Instant::now();
        let workers: Vec<_> = (0..CLIENT_THREADS)
            .map(|t| {
                let tally = tally.clone();
                std::thread::spawn(move || {
                    let mut rng = StdRng::seed_from_u64(0x5eed ^ t as u64);
                    for _ in 0..CONNECTIONS / CLIENT_THREADS {
                        one(addr, &mut rng, &tally);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("client thread");
        }
        wait_all_accepted(addr, &sentinel_rx);
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.connection_count() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        println!(
            "{kind:?}: {} connections in {:?}: {} completed, {} aborted by the client, {} closed by the server",
            CONNECTIONS,
            started.elapsed(),
            tally.completed.load(Ordering::Relaxed),
            tally.client_aborted.load(Ordering::Relaxed),
            tally.server_closed.load(Ordering::Relaxed)
        );
        assert_eq!(
            server.connection_count(),
            0,
            "connections left in the server"
        );
        assert!(tally.completed.load(Ordering::Relaxed) > CONNECTIONS / 2);
        let deadline = Instant::now() + Duration::from_secs(10);
        while open_fds() != fds_before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            open_fds(),
            fds_before,
            "{kind:?}: fds leaked: {:?}",
            std::fs::read_dir("/proc/self/fd")
                .unwrap()
                .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .collect::<Vec<_>>()
        );
        drop(server);
        drop(base);
    });
}

#[test]
fn ten_thousand_connections_on_every_backend() {
    for kind in support::pollers() {
        stress(kind);
    }
}

//! Echo integrity: 200 concurrent clients send random messages (1 B - 1 MiB,
//! written with random split points) to an echo server while reading the echo
//! back; every byte must come back, in order, on every poller and with 0, 1
//! and 4 I/O threads.
//!
//! Each client has a writer and a reader thread. The message bytes are slices
//! of one random pool; the writer tells the reader which slice it is about to
//! write, so the reader compares every received byte with what was sent
//! (exact comparison, stronger than a checksum) and checks the byte count at
//! EOF. After its last message the writer half-closes; the server then
//! flushes the echo and closes, so the reader ends on EOF.

mod support;

use muduo::PollerKind;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::with_timeout;
use support::{pattern, TestServer};

const LIMIT: Duration = Duration::from_secs(300);
const CLIENTS: usize = 200;
const MIB: usize = 1 << 20;
const MAX_MESSAGE: usize = MIB;
const MAX_MESSAGES: usize = 1000;
/// Messages are slices of this pool of random bytes.
const POOL_LEN: usize = 4 * MIB;
/// Every this many clients, one message is exactly 1 MiB.
const BIG_EVERY: usize = 25;

struct Plan {
    /// (offset into the pool, length) of each message, in order.
    messages: Vec<(usize, usize)>,
    bytes: u64,
    seed: u64,
}

/// Log-uniform in `lo..=hi`: skewed towards small values, reaching `hi`.
fn log_uniform(rng: &mut StdRng, lo: usize, hi: usize) -> usize {
    let (l, h) = ((lo as f64).ln(), ((hi + 1) as f64).ln());
    (rng.gen_range(l..h).exp() as usize).clamp(lo, hi)
}

fn message_size(rng: &mut StdRng) -> usize {
    match rng.gen_range(0..100) {
        0..=89 => log_uniform(rng, 1, 4096),
        90..=98 => log_uniform(rng, 4097, 64 * 1024),
        _ => log_uniform(rng, 64 * 1024 + 1, MAX_MESSAGE),
    }
}

/// The messages of every client. Each client sends 1-1000 messages
/// (log-uniform) of 1 B - 1 MiB (mostly small); when a client's messages
/// add up to more than `cap` bytes they are scaled down in proportion
/// (keeping their number), so the total volume stays bounded. Every
/// `BIG_EVERY`-th client also sends one message of exactly 1 MiB.
fn plans(seed: u64, clients: usize, cap: usize) -> Vec<Plan> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..clients)
        .map(|c| {
            let count = log_uniform(&mut rng, 1, MAX_MESSAGES);
            let mut sizes: Vec<usize> = (0..count).map(|_| message_size(&mut rng)).collect();
            let sum: usize = sizes.iter().sum();
            if sum > cap {
                for s in &mut sizes {
                    *s = (*s as u128 * cap as u128 / sum as u128).max(1) as usize;
                }
            }
            let mut messages: Vec<(usize, usize)> = sizes
                .into_iter()
                .map(|len| (rng.gen_range(0..=POOL_LEN - len), len))
                .collect();
            let mut bytes: usize = messages.iter().map(|m| m.1).sum();
            if c % BIG_EVERY == 0 {
                let at = rng.gen_range(0..=messages.len());
                messages.insert(at, (rng.gen_range(0..=POOL_LEN - MIB), MIB));
                bytes += MIB;
            }
            Plan {
                messages,
                bytes: bytes as u64,
                seed: rng.gen(),
            }
        })
        .collect()
}

/// Writes the plan's messages, each split at random points, then half-closes.
fn writer(
    mut s: TcpStream,
    pool: &'static [u8],
    plan: &Plan,
    tx: mpsc::Sender<(usize, usize)>,
) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(plan.seed);
    for &(off, len) in &plan.messages {
        // Tell the reader first: it may only see bytes it was told about.
        tx.send((off, len))
            .map_err(|_| "reader gone before the writer finished".to_string())?;
        let mut pos = 0;
        while pos < len {
            let chunk = log_uniform(&mut rng, 1, len - pos);
            s.write_all(&pool[off + pos..off + pos + chunk])
                .map_err(|e| format!("write: {e}"))?;
            pos += chunk;
        }
    }
    s.shutdown(Shutdown::Write)
        .map_err(|e| format!("shutdown: {e}"))
}

/// Reads the echo until EOF, comparing each byte with what was written.
fn reader(
    mut s: TcpStream,
    pool: &'static [u8],
    expected_bytes: u64,
    rx: mpsc::Receiver<(usize, usize)>,
    read_size: usize,
) -> Result<u64, String> {
    let mut buf = vec![0u8; read_size];
    let mut cur: (usize, usize) = (0, 0); // (pool offset, bytes left) of the message being received
    let mut got = 0u64;
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read after {got} bytes: {e}")),
        };
        let mut data = &buf[..n];
        while !data.is_empty() {
            if cur.1 == 0 {
                cur = rx.recv_timeout(Duration::from_secs(60)).map_err(|_| {
                    format!(
                        "{} bytes came back beyond the {got} that were sent",
                        data.len()
                    )
                })?;
            }
            let k = cur.1.min(data.len());
            if data[..k] != pool[cur.0..cur.0 + k] {
                let i = (0..k).find(|&i| data[i] != pool[cur.0 + i]).unwrap();
                return Err(format!("byte {} of the stream differs", got + i as u64));
            }
            got += k as u64;
            cur = (cur.0 + k, cur.1 - k);
            data = &data[k..];
        }
    }
    if cur.1 != 0 || rx.try_recv().is_ok() {
        return Err(format!(
            "EOF after {got} of {expected_bytes} bytes: data lost"
        ));
    }
    if got != expected_bytes {
        return Err(format!("got {got} bytes, sent {expected_bytes}"));
    }
    Ok(got)
}

fn pool() -> &'static [u8] {
    static POOL: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| pattern(0x5eed, POOL_LEN))
}

fn echo_integrity(kind: PollerKind, threads: usize, cap_per_client: usize) {
    if !support::available(kind) {
        return;
    }
    with_timeout(LIMIT, move || {
        let started = Instant::now();
        let seed = 0xEC40 + threads as u64 * 7 + kind as u64;
        let plans = plans(seed, CLIENTS, cap_per_client);
        let total: u64 = plans.iter().map(|p| p.bytes).sum();
        let messages: usize = plans.iter().map(|p| p.messages.len()).sum();
        let fewest = plans.iter().map(|p| p.messages.len()).min().unwrap();
        let most = plans.iter().map(|p| p.messages.len()).max().unwrap();
        let big = plans
            .iter()
            .flat_map(|p| &p.messages)
            .filter(|m| m.1 == MIB)
            .count();
        assert!(
            big >= CLIENTS / BIG_EVERY,
            "the plan must hold 1 MiB messages"
        );

        let server = TestServer::start(kind, threads, "echo", |s| {
            s.set_message_callback(|conn, buf, _| {
                conn.send(buf.peek());
                buf.retrieve_all();
            });
        });
        let addr: SocketAddr = server.addr();
        let pool = pool();

        let mut rng = StdRng::seed_from_u64(seed ^ 0xFF);
        let mut handles = Vec::new();
        for (i, plan) in plans.into_iter().enumerate() {
            let s = TcpStream::connect(addr).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
            let r = s.try_clone().unwrap();
            let (tx, rx) = mpsc::channel();
            let expected = plan.bytes;
            let read_size = log_uniform(&mut rng, 1, 256 * 1024);
            let w = std::thread::Builder::new()
                .name(format!("w{i}"))
                .stack_size(256 * 1024)
                .spawn(move || writer(s, pool, &plan, tx))
                .unwrap();
            let r = std::thread::Builder::new()
                .name(format!("r{i}"))
                .stack_size(256 * 1024)
                .spawn(move || reader(r, pool, expected, rx, read_size))
                .unwrap();
            handles.push((w, r));
        }
        let mut errors = Vec::new();
        let mut echoed = 0u64;
        for (i, (w, r)) in handles.into_iter().enumerate() {
            if let Err(e) = w.join().expect("writer panicked") {
                errors.push(format!("client {i} writer: {e}"));
            }
            match r.join().expect("reader panicked") {
                Ok(n) => echoed += n,
                Err(e) => errors.push(format!("client {i} reader: {e}")),
            }
        }
        assert!(
            errors.is_empty(),
            "{} clients failed: {errors:#?}",
            errors.len()
        );
        assert_eq!(echoed, total, "bytes echoed vs bytes sent");
        assert!(
            support::wait_until(Duration::from_secs(10), || server
                .server()
                .connection_count()
                == 0),
            "connections left open after every client half-closed and read EOF"
        );
        println!(
            "echo integrity {kind:?}, {threads} I/O threads: {CLIENTS} clients, {messages} messages \
             ({fewest}-{most} per client, {big} of 1 MiB), {total} bytes ({:.1} MiB) each way, \
             all echoed in order; {:.2?}",
            total as f64 / MIB as f64,
            started.elapsed()
        );
    });
}

/// Bytes per client before its 1 MiB message: the default configuration
/// carries the most traffic.
const CAP_DEFAULT: usize = 640 * 1024;
const CAP_OTHER: usize = 256 * 1024;

#[test]
fn echo_epoll_0_threads() {
    echo_integrity(PollerKind::Epoll, 0, CAP_DEFAULT);
}
#[test]
fn echo_epoll_1_thread() {
    echo_integrity(PollerKind::Epoll, 1, CAP_OTHER);
}
#[test]
fn echo_epoll_4_threads() {
    echo_integrity(PollerKind::Epoll, 4, CAP_DEFAULT);
}
#[test]
fn echo_epoll_et_0_threads() {
    echo_integrity(PollerKind::EpollEdge, 0, CAP_OTHER);
}
#[test]
fn echo_epoll_et_1_thread() {
    echo_integrity(PollerKind::EpollEdge, 1, CAP_OTHER);
}
#[test]
fn echo_epoll_et_4_threads() {
    echo_integrity(PollerKind::EpollEdge, 4, CAP_OTHER);
}
#[test]
fn echo_poll_0_threads() {
    echo_integrity(PollerKind::Poll, 0, CAP_OTHER);
}
#[test]
fn echo_poll_1_thread() {
    echo_integrity(PollerKind::Poll, 1, CAP_OTHER);
}
#[test]
fn echo_poll_4_threads() {
    echo_integrity(PollerKind::Poll, 4, CAP_OTHER);
}
#[test]
fn echo_uring_0_threads() {
    echo_integrity(PollerKind::Uring, 0, CAP_OTHER);
}
#[test]
fn echo_uring_1_thread() {
    echo_integrity(PollerKind::Uring, 1, CAP_OTHER);
}
#[test]
fn echo_uring_4_threads() {
    echo_integrity(PollerKind::Uring, 4, CAP_DEFAULT);
}

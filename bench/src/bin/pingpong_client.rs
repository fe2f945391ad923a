//! muduo's ping-pong throughput client, written on plain std threads and
//! epoll used directly through rustix (no async runtime, no muduo), so the
//! load generator is the same lean program whichever server it measures.
//!
//! Usage: `pingpong_client <addr:port> <threads> <block_bytes> <sessions> <seconds>`
//!
//! Each session connects (blocking connect, then `TCP_NODELAY` and
//! non-blocking), sends one block of `block_bytes`, then echoes back whatever
//! it receives. Sessions are spread round-robin over `threads` threads, each
//! with its own epoll set. All sessions connect before the clock starts; after
//! `seconds` every thread stops and the process prints one line:
//!
//! `RESULT bytes=B seconds=S mib_per_s=M msgs_per_s=N sessions=K connected=C errors=E`
//!
//! where messages = bytes / block_bytes. A watchdog ends the process (exit 3)
//! if connecting plus running takes longer than `seconds` + 23 s, so a hung
//! server can never hang the benchmark.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use muduo_bench::cli::{expect_positionals, positional};
use muduo_bench::conn::{Conn, ConnTable, Waiter};
use muduo_bench::sys;
use rustix::event::epoll::{self, CreateFlags, Event, EventFlags};

const USAGE: &str = "pingpong_client <addr:port> <threads> <block_bytes> <sessions> <seconds>";
/// Time allowed for connecting all sessions, on top of the run itself.
const CONNECT_BUDGET: Duration = Duration::from_secs(20);
/// Extra time after the run before the watchdog gives up.
const GRACE: Duration = Duration::from_secs(3);

#[derive(Default)]
struct Stats {
    bytes: u64,
    connected: usize,
    errors: usize,
}

struct Job {
    addr: SocketAddr,
    sessions: usize,
    block: usize,
    run_for: Duration,
}

fn main() {
    expect_positionals(USAGE, 5);
    let addr: SocketAddr = positional(USAGE, 0, "addr:port");
    let threads: usize = positional(USAGE, 1, "threads");
    let block: usize = positional(USAGE, 2, "block_bytes");
    let sessions: usize = positional(USAGE, 3, "sessions");
    let seconds: f64 = positional(USAGE, 4, "seconds");
    if threads == 0 || block == 0 || sessions == 0 || !(seconds > 0.0 && seconds < 1e6) {
        muduo_bench::cli::die(
            USAGE,
            "threads, block_bytes, sessions and seconds must be > 0",
        );
    }
    if let Err(e) = sys::raise_nofile_limit() {
        eprintln!("pingpong_client: cannot raise RLIMIT_NOFILE: {e}");
    }
    let run_for = Duration::from_secs_f64(seconds);
    let limit = CONNECT_BUDGET + run_for + GRACE;
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("pingpong_client: watchdog: no result after {limit:?}, giving up");
        std::process::exit(3);
    });

    let threads = threads.min(sessions);
    let barrier = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let job = Job {
                addr,
                sessions: sessions / threads + usize::from(t < sessions % threads),
                block,
                run_for,
            };
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || worker(job, &barrier))
        })
        .collect();
    barrier.wait();
    let mut total = Stats::default();
    for w in workers {
        match w.join() {
            Ok(Ok(s)) => {
                total.bytes += s.bytes;
                total.connected += s.connected;
                total.errors += s.errors;
            }
            Ok(Err(e)) => {
                eprintln!("pingpong_client: worker failed: {e}");
                total.errors += 1;
            }
            Err(_) => total.errors += 1,
        }
    }
    let mib = total.bytes as f64 / (1024.0 * 1024.0) / seconds;
    let msgs = (total.bytes / block as u64) as f64 / seconds;
    println!(
        "RESULT bytes={} seconds={seconds} mib_per_s={mib:.3} msgs_per_s={msgs:.1} sessions={sessions} connected={} errors={}",
        total.bytes, total.connected, total.errors
    );
}

/// One thread: connect its sessions, wait for everyone, then ping-pong until
/// its deadline.
fn worker(job: Job, barrier: &Barrier) -> std::io::Result<Stats> {
    let mut stats = Stats::default();
    let ep = epoll::create(CreateFlags::CLOEXEC);
    let mut conns: ConnTable<Conn> = ConnTable::default();
    if let Ok(ep) = &ep {
        for _ in 0..job.sessions {
            match sys::tcp_connect_nodelay(job.addr).and_then(|fd| Conn::register(ep, fd)) {
                Ok(conn) => {
                    stats.connected += 1;
                    conns.insert(conn.key(), conn);
                }
                Err(e) => {
                    if stats.errors == 0 {
                        eprintln!("pingpong_client: connect {}: {e}", job.addr);
                    }
                    stats.errors += 1;
                }
            }
        }
    }
    // Always reach the barrier, even after failures, so main never hangs.
    barrier.wait();
    let ep = ep?;
    let deadline = Instant::now() + job.run_for;
    let block = vec![b'p'; job.block];
    let mut dead = Vec::new();
    for conn in conns.values_mut() {
        if conn.send(&ep, &block).is_err() {
            dead.push(conn.key());
        }
    }
    for key in dead.drain(..) {
        conns.remove(key);
        stats.errors += 1;
    }
    run_until(&ep, &mut conns, deadline, &mut stats)?;
    Ok(stats)
}

/// The echo loop: every byte read is counted and written back.
fn run_until(
    ep: &OwnedFd,
    conns: &mut ConnTable<Conn>,
    deadline: Instant,
    stats: &mut Stats,
) -> std::io::Result<()> {
    let mut waiter = Waiter::default();
    let mut rbuf = vec![0u8; 64 * 1024];
    loop {
        let Some(events) = waiter.wait(ep, deadline)? else {
            return Ok(());
        };
        for &Event { flags, data } in events {
            let key = data.u64() as usize;
            let Some(conn) = conns.get_mut(key) else {
                continue;
            };
            let ok = if flags.contains(EventFlags::OUT) {
                conn.flush(ep).is_ok()
            } else {
                match conn.read(&mut rbuf) {
                    Ok(Some(0)) => true,
                    Ok(Some(got)) => {
                        stats.bytes += got as u64;
                        conn.send(ep, &rbuf[..got]).is_ok()
                    }
                    Ok(None) | Err(_) => false,
                }
            };
            if !ok {
                conns.remove(key);
                stats.errors += 1;
            }
        }
    }
}

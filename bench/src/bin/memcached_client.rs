//! A memcached text-protocol load generator (plain threads + epoll through
//! rustix, like the ping-pong client), for `muduo-bench memcached`.
//!
//! ```text
//! memcached_client run <addr:port> <threads> <conns> <seconds> <get_pct> <value_bytes> <depth> <keys>
//! memcached_client fill <addr:port> <items> <value_bytes>
//! ```
//!
//! `run`: 16-byte keys `key:NNNNNNNNNNNN` drawn uniformly from `keys`
//! (preloaded before the clock starts), `get_pct`% gets and the rest sets.
//! Each connection sends `depth` requests in one write and waits for all
//! their replies before the next batch (depth 1: plain request/response);
//! latency is per batch, from the write to its last reply. Every value read
//! back is checked (length and bytes). Prints one line:
//! `RESULT ops=N seconds=S ops_per_s=X p50_us=A p99_us=B hits=H misses=M
//! verify_failures=F connected=C errors=E`.
//!
//! `fill`: stores `items` keys with `noreply` in batches (each closed by the
//! `mn` no-op to keep in step), then prints `RESULT items=N`.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use muduo_bench::cli::{die, parse};
use muduo_bench::conn::{Conn, ConnTable, Waiter};
use muduo_bench::sys;
use rustix::event::epoll::{self, CreateFlags, Event, EventFlags};

const USAGE: &str = "memcached_client run <addr:port> <threads> <conns> <seconds> <get_pct> <value_bytes> <depth> <keys>\n       memcached_client fill <addr:port> <items> <value_bytes>";
/// Latency histogram: 1 us buckets up to this, the last one catches the rest.
const HIST_US: usize = 200_000;

fn key(i: u64) -> String {
    format!("key:{i:012}")
}

/// The value stored under key `i`: its bytes depend on the key, so a reply
/// with another key's value is caught.
fn value(i: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|j| b'a' + ((i as usize + j) % 26) as u8)
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = sys::raise_nofile_limit() {
        eprintln!("memcached_client: cannot raise RLIMIT_NOFILE: {e}");
    }
    match args.first().map(String::as_str) {
        Some("run") if args.len() == 9 => run(&args[1..]),
        Some("fill") if args.len() == 4 => fill(&args[1..]),
        _ => die(USAGE, "bad arguments"),
    }
}

fn fill(args: &[String]) {
    let addr: SocketAddr = parse(USAGE, "addr", &args[0]);
    let items: u64 = parse(USAGE, "items", &args[1]);
    let len: usize = parse(USAGE, "value_bytes", &args[2]);
    preload(addr, 0..items, len).unwrap_or_else(|e| {
        eprintln!("memcached_client: fill: {e}");
        std::process::exit(1)
    });
    println!("RESULT items={items}");
}

/// Stores keys `range` with `noreply`, 1000 per write, each batch closed by `mn`.
fn preload(addr: SocketAddr, range: std::ops::Range<u64>, len: usize) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut i = range.start;
    let mut buf = Vec::new();
    let mut reply = [0u8; 64];
    while i < range.end {
        buf.clear();
        let end = (i + 1000).min(range.end);
        for k in i..end {
            buf.extend_from_slice(format!("set {} 0 0 {len} noreply\r\n", key(k)).as_bytes());
            buf.extend_from_slice(&value(k, len));
            buf.extend_from_slice(b"\r\n");
        }
        buf.extend_from_slice(b"mn\r\n");
        s.write_all(&buf)?;
        let mut got = Vec::new();
        while !got.ends_with(b"MN\r\n") {
            let n = s.read(&mut reply)?;
            if n == 0 {
                return Err(std::io::Error::other("server closed during preload"));
            }
            got.extend_from_slice(&reply[..n]);
        }
        if got != b"MN\r\n" {
            return Err(std::io::Error::other(format!(
                "unexpected preload reply {:?}",
                String::from_utf8_lossy(&got)
            )));
        }
        i = end;
    }
    Ok(())
}

#[derive(Clone)]
struct Job {
    addr: SocketAddr,
    conns: usize,
    run_for: Duration,
    get_pct: u64,
    len: usize,
    depth: usize,
    keys: u64,
    seed: u64,
}

struct Stats {
    ops: u64,
    hits: u64,
    misses: u64,
    verify_failures: u64,
    connected: usize,
    errors: usize,
    hist: Vec<u64>,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            ops: 0,
            hits: 0,
            misses: 0,
            verify_failures: 0,
            connected: 0,
            errors: 0,
            hist: vec![0; HIST_US + 1],
        }
    }
    fn merge(&mut self, o: &Stats) {
        self.ops += o.ops;
        self.hits += o.hits;
        self.misses += o.misses;
        self.verify_failures += o.verify_failures;
        self.connected += o.connected;
        self.errors += o.errors;
        for (a, b) in self.hist.iter_mut().zip(&o.hist) {
            *a += b;
        }
    }
    fn percentile(&self, p: f64) -> usize {
        let total: u64 = self.hist.iter().sum();
        let want = ((total as f64) * p).ceil() as u64;
        let mut seen = 0;
        for (us, n) in self.hist.iter().enumerate() {
            seen += n;
            if seen >= want.max(1) {
                return us;
            }
        }
        HIST_US
    }
}

fn run(args: &[String]) {
    let addr: SocketAddr = parse(USAGE, "addr", &args[0]);
    let threads: usize = parse(USAGE, "threads", &args[1]);
    let conns: usize = parse(USAGE, "conns", &args[2]);
    let seconds: f64 = parse(USAGE, "seconds", &args[3]);
    let get_pct: u64 = parse(USAGE, "get_pct", &args[4]);
    let len: usize = parse(USAGE, "value_bytes", &args[5]);
    let depth: usize = parse(USAGE, "depth", &args[6]);
    let keys: u64 = parse(USAGE, "keys", &args[7]);
    if threads == 0 || conns == 0 || depth == 0 || keys == 0 || !(seconds > 0.0 && seconds < 1e6) {
        die(USAGE, "threads, conns, depth, keys and seconds must be > 0");
    }
    let run_for = Duration::from_secs_f64(seconds);
    let limit = Duration::from_secs(60) + run_for;
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("memcached_client: watchdog: no result after {limit:?}, giving up");
        std::process::exit(3);
    });
    if let Err(e) = preload(addr, 0..keys, len) {
        eprintln!("memcached_client: preload: {e}");
        std::process::exit(1);
    }
    let threads = threads.min(conns);
    let barrier = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let job = Job {
                addr,
                conns: conns / threads + usize::from(t < conns % threads),
                run_for,
                get_pct,
                len,
                depth,
                keys,
                seed: 0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1),
            };
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || worker(job, &barrier))
        })
        .collect();
    barrier.wait();
    let mut total = Stats::new();
    for w in workers {
        match w.join() {
            Ok(Ok(s)) => total.merge(&s),
            Ok(Err(e)) => {
                eprintln!("memcached_client: worker failed: {e}");
                total.errors += 1;
            }
            Err(_) => total.errors += 1,
        }
    }
    println!(
        "RESULT ops={} seconds={seconds} ops_per_s={:.1} p50_us={} p99_us={} hits={} misses={} verify_failures={} connected={} errors={}",
        total.ops,
        total.ops as f64 / seconds,
        total.percentile(0.50),
        total.percentile(0.99),
        total.hits,
        total.misses,
        total.verify_failures,
        total.connected,
        total.errors
    );
}

/// One connection's state: the replies it still expects, in order.
struct Session {
    conn: Conn,
    /// Key number of each outstanding get (`None` for a set).
    pending: std::collections::VecDeque<Option<u64>>,
    input: Vec<u8>,
    sent_at: Instant,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn worker(job: Job, barrier: &Barrier) -> std::io::Result<Stats> {
    let mut stats = Stats::new();
    let ep = epoll::create(CreateFlags::CLOEXEC);
    let mut sessions: ConnTable<Session> = ConnTable::default();
    if let Ok(ep) = &ep {
        for _ in 0..job.conns {
            match sys::tcp_connect_nodelay(job.addr).and_then(|fd| Conn::register(ep, fd)) {
                Ok(conn) => {
                    stats.connected += 1;
                    sessions.insert(
                        conn.key(),
                        Session {
                            conn,
                            pending: Default::default(),
                            input: Vec::new(),
                            sent_at: Instant::now(),
                        },
                    );
                }
                Err(e) => {
                    if stats.errors == 0 {
                        eprintln!("memcached_client: connect {}: {e}", job.addr);
                    }
                    stats.errors += 1;
                }
            }
        }
    }
    barrier.wait();
    let ep = ep?;
    let mut rng = Rng(job.seed);
    let values: Vec<Vec<u8>> = (0..26).map(|i| value(i, job.len)).collect();
    let mut out = Vec::new();
    let mut dead = Vec::new();
    for s in sessions.values_mut() {
        if send_batch(&ep, s, &job, &mut rng, &values, &mut out).is_err() {
            dead.push(s.conn.key());
        }
    }
    for k in dead {
        sessions.remove(k);
        stats.errors += 1;
    }
    let deadline = Instant::now() + job.run_for;
    let mut waiter = Waiter::default();
    let mut rbuf = vec![0u8; 256 * 1024];
    loop {
        let Some(events) = waiter.wait(&ep, deadline)? else {
            return Ok(stats);
        };
        for &Event { flags, data } in events {
            let k = data.u64() as usize;
            let Some(s) = sessions.get_mut(k) else {
                continue;
            };
            let ok = if flags.contains(EventFlags::OUT) {
                s.conn.flush(&ep).is_ok()
            } else {
                on_readable(
                    &ep, s, &job, &mut rng, &values, &mut out, &mut rbuf, &mut stats,
                )
            };
            if !ok {
                sessions.remove(k);
                stats.errors += 1;
            }
        }
    }
}

fn send_batch(
    ep: &OwnedFd,
    s: &mut Session,
    job: &Job,
    rng: &mut Rng,
    values: &[Vec<u8>],
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    out.clear();
    for _ in 0..job.depth {
        let r = rng.next();
        let k = (r >> 8) % job.keys;
        if r % 100 < job.get_pct {
            out.extend_from_slice(b"get ");
            out.extend_from_slice(key(k).as_bytes());
            out.extend_from_slice(b"\r\n");
            s.pending.push_back(Some(k));
        } else {
            out.extend_from_slice(format!("set {} 0 0 {}\r\n", key(k), job.len).as_bytes());
            out.extend_from_slice(&values[(k % 26) as usize]);
            out.extend_from_slice(b"\r\n");
            s.pending.push_back(None);
        }
    }
    s.sent_at = Instant::now();
    s.conn.send(ep, out)
}

#[allow(clippy::too_many_arguments)]
fn on_readable(
    ep: &OwnedFd,
    s: &mut Session,
    job: &Job,
    rng: &mut Rng,
    values: &[Vec<u8>],
    out: &mut Vec<u8>,
    rbuf: &mut [u8],
    stats: &mut Stats,
) -> bool {
    match s.conn.read(rbuf) {
        Ok(Some(0)) => return true,
        Ok(Some(n)) => s.input.extend_from_slice(&rbuf[..n]),
        Ok(None) | Err(_) => return false,
    }
    let mut pos = 0;
    while let Some(&expect) = s.pending.front() {
        let data = &s.input[pos..];
        let Some(nl) = data.windows(2).position(|w| w == b"\r\n") else {
            break;
        };
        let line = &data[..nl];
        let used = match expect {
            None => {
                if line != b"STORED" {
                    return false;
                }
                nl + 2
            }
            Some(k) if line == b"END" => {
                let _ = k;
                stats.misses += 1;
                nl + 2
            }
            Some(k) => {
                // VALUE <key> <flags> <bytes>\r\n<data>\r\nEND\r\n
                let Some(len) = line
                    .rsplit(|&b| b == b' ')
                    .next()
                    .and_then(|t| std::str::from_utf8(t).ok())
                    .and_then(|t| t.parse::<usize>().ok())
                else {
                    return false;
                };
                let need = nl + 2 + len + 2 + 5;
                if data.len() < need {
                    break;
                }
                let body = &data[nl + 2..nl + 2 + len];
                if !line.starts_with(b"VALUE ")
                    || line.get(6..22) != Some(key(k).as_bytes())
                    || body != values[(k % 26) as usize].as_slice()
                    || &data[nl + 2 + len..need] != b"\r\nEND\r\n"
                {
                    stats.verify_failures += 1;
                }
                stats.hits += 1;
                need
            }
        };
        pos += used;
        s.pending.pop_front();
        stats.ops += 1;
    }
    s.input.drain(..pos);
    if s.pending.is_empty() {
        let us = s.sent_at.elapsed().as_micros() as usize;
        stats.hist[us.min(HIST_US)] += 1;
        return send_batch(ep, s, job, rng, values, out).is_ok();
    }
    true
}

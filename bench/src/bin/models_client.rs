//! Closed-loop client of the models lab: each connection keeps exactly one
//! request in flight, so throughput and latency both come from one run.
//!
//! Usage: `models_client <addr:port> <sudoku|echo> <connections> <seconds> <threads>`
//!
//! * `echo`: a 16-byte message; the reply is complete when 16 bytes are back.
//! * `sudoku`: `id:puzzle\r\n` with muduo's sudoku protocol, cycling through
//!   well-known puzzles (easy to very hard); every answer must carry its id
//!   and be a valid grid that keeps the puzzle's givens.
//!
//! All connections are made before the clock starts. Prints one line:
//!
//! `RESULT requests=N seconds=S per_sec=R p50_us=A p99_us=B connected=C errors=E wrong=W`
//!
//! A watchdog exits with status 3 if the run overruns by 25 s.

// The puzzles and the checker are the sudoku example's own, so the client
// and the server can never disagree on what a right answer is.
#[path = "../../../examples/sudoku_server/puzzles.rs"]
mod puzzles;
#[path = "../../../examples/sudoku_server/solver.rs"]
mod solver;

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use muduo_bench::cli::{die, expect_positionals, positional};
use muduo_bench::conn::{Conn, ConnTable, Waiter};
use muduo_bench::sys;
use rustix::event::epoll::{self, CreateFlags, Event, EventFlags};

const USAGE: &str = "models_client <addr:port> <sudoku|echo> <connections> <seconds> <threads>";
const ECHO_LEN: usize = 16;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Workload {
    Echo,
    Sudoku,
}

/// One connection's request in flight.
struct Session {
    conn: Conn,
    index: usize,
    seq: usize,
    input: Vec<u8>,
    sent_at: Instant,
}

#[derive(Default)]
struct Stats {
    latencies_us: Vec<u32>,
    connected: usize,
    errors: usize,
    wrong: usize,
}

fn main() {
    expect_positionals(USAGE, 5);
    let addr: SocketAddr = positional(USAGE, 0, "addr:port");
    let workload = match positional::<String>(USAGE, 1, "workload").as_str() {
        "echo" => Workload::Echo,
        "sudoku" => Workload::Sudoku,
        other => die(USAGE, &format!("unknown workload {other:?}")),
    };
    let conns: usize = positional(USAGE, 2, "connections");
    let seconds: f64 = positional(USAGE, 3, "seconds");
    let threads: usize = positional(USAGE, 4, "threads");
    if conns == 0 || threads == 0 || !(seconds > 0.0 && seconds < 1e6) {
        die(USAGE, "connections, seconds and threads must be > 0");
    }
    sys::raise_nofile_limit().ok();
    let run_for = Duration::from_secs_f64(seconds);
    let limit = run_for + Duration::from_secs(25);
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("models_client: watchdog: no result after {limit:?}");
        std::process::exit(3);
    });
    let puzzles: Arc<Vec<(String, solver::Grid)>> = Arc::new(
        puzzles::SOLVABLE
            .iter()
            .map(|p| (p.to_string(), solver::parse(p.as_bytes()).expect("puzzle")))
            .collect(),
    );
    let threads = threads.min(conns);
    let barrier = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let share = conns / threads + usize::from(t < conns % threads);
            let (barrier, puzzles) = (barrier.clone(), puzzles.clone());
            std::thread::spawn(move || {
                worker(addr, workload, t, share, run_for, &barrier, &puzzles)
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    let mut total = Stats::default();
    for w in workers {
        match w.join() {
            Ok(mut s) => {
                total.latencies_us.append(&mut s.latencies_us);
                total.connected += s.connected;
                total.errors += s.errors;
                total.wrong += s.wrong;
            }
            Err(_) => total.errors += 1,
        }
    }
    let secs = started.elapsed().as_secs_f64().max(seconds);
    let lat = &mut total.latencies_us;
    lat.sort_unstable();
    let pct = |q: f64| {
        lat.get(((lat.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "RESULT requests={} seconds={secs:.3} per_sec={:.1} p50_us={} p99_us={} connected={} errors={} wrong={}",
        lat.len(),
        lat.len() as f64 / secs,
        pct(0.5),
        pct(0.99),
        total.connected,
        total.errors,
        total.wrong
    );
}

fn worker(
    addr: SocketAddr,
    workload: Workload,
    thread: usize,
    count: usize,
    run_for: Duration,
    barrier: &Barrier,
    puzzles: &[(String, solver::Grid)],
) -> Stats {
    let mut stats = Stats::default();
    let ep = epoll::create(CreateFlags::CLOEXEC);
    let mut sessions: ConnTable<Session> = ConnTable::default();
    if let Ok(ep) = &ep {
        for i in 0..count {
            match sys::tcp_connect_nodelay(addr).and_then(|fd| Conn::register(ep, fd)) {
                Ok(conn) => {
                    stats.connected += 1;
                    sessions.insert(
                        conn.key(),
                        Session {
                            conn,
                            index: thread * 100_000 + i,
                            seq: 0,
                            input: Vec::new(),
                            sent_at: Instant::now(),
                        },
                    );
                }
                Err(e) => {
                    if stats.errors == 0 {
                        eprintln!("models_client: connect {addr}: {e}");
                    }
                    stats.errors += 1;
                }
            }
        }
    }
    barrier.wait();
    let Ok(ep) = ep else {
        return stats;
    };
    let deadline = Instant::now() + run_for;
    let mut dead = Vec::new();
    for s in sessions.values_mut() {
        if send_request(&ep, s, workload, puzzles).is_err() {
            dead.push(s.conn.key());
        }
    }
    for key in dead {
        sessions.remove(key);
        stats.errors += 1;
    }
    run(&ep, &mut sessions, workload, puzzles, deadline, &mut stats);
    stats
}

fn request(s: &Session, workload: Workload, puzzles: &[(String, solver::Grid)]) -> Vec<u8> {
    match workload {
        Workload::Echo => format!("{:016}", s.seq % 10_000_000_000_000_000).into_bytes(),
        Workload::Sudoku => {
            let (p, _) = &puzzles[(s.index + s.seq) % puzzles.len()];
            format!("{}:{p}\r\n", s.seq).into_bytes()
        }
    }
}

fn send_request(
    ep: &OwnedFd,
    s: &mut Session,
    workload: Workload,
    puzzles: &[(String, solver::Grid)],
) -> std::io::Result<()> {
    let req = request(s, workload, puzzles);
    s.sent_at = Instant::now();
    s.conn.send(ep, &req)
}

/// The reply in `s.input` if complete: `Some(true)` right, `Some(false)` wrong.
fn take_reply(
    s: &mut Session,
    workload: Workload,
    puzzles: &[(String, solver::Grid)],
) -> Option<bool> {
    match workload {
        Workload::Echo => {
            if s.input.len() < ECHO_LEN {
                return None;
            }
            let ok = s.input[..ECHO_LEN] == request(s, workload, puzzles)[..];
            s.input.drain(..ECHO_LEN);
            Some(ok)
        }
        Workload::Sudoku => {
            let nl = s.input.iter().position(|&b| b == b'\n')?;
            let line: Vec<u8> = s.input.drain(..=nl).collect();
            let (_, grid) = &puzzles[(s.index + s.seq) % puzzles.len()];
            let prefix = format!("{}:", s.seq);
            let ok = line
                .strip_prefix(prefix.as_bytes())
                .and_then(|rest| rest.strip_suffix(b"\r\n"))
                .and_then(solver::parse)
                .is_some_and(|answer| solver::is_solution_of(grid, &answer));
            Some(ok)
        }
    }
}

fn run(
    ep: &OwnedFd,
    sessions: &mut ConnTable<Session>,
    workload: Workload,
    puzzles: &[(String, solver::Grid)],
    deadline: Instant,
    stats: &mut Stats,
) {
    let mut waiter = Waiter::default();
    let mut rbuf = vec![0u8; 64 * 1024];
    let mut live = sessions.values_mut().count();
    loop {
        if live == 0 {
            return;
        }
        let Ok(Some(events)) = waiter.wait(ep, deadline) else {
            return;
        };
        for &Event { flags, data } in events {
            let key = data.u64() as usize;
            let Some(s) = sessions.get_mut(key) else {
                continue;
            };
            let ok = if flags.contains(EventFlags::OUT) {
                s.conn.flush(ep).is_ok()
            } else {
                match s.conn.read(&mut rbuf) {
                    Ok(Some(got)) => {
                        s.input.extend_from_slice(&rbuf[..got]);
                        let mut ok = true;
                        while let Some(right) = take_reply(s, workload, puzzles) {
                            let us = s.sent_at.elapsed().as_micros().min(u32::MAX as u128);
                            stats.latencies_us.push(us as u32);
                            if !right {
                                stats.wrong += 1;
                            }
                            s.seq += 1;
                            if send_request(ep, s, workload, puzzles).is_err() {
                                ok = false;
                                break;
                            }
                        }
                        ok
                    }
                    Ok(None) | Err(_) => false,
                }
            };
            if !ok {
                sessions.remove(key);
                stats.errors += 1;
                live -= 1;
            }
        }
    }
}

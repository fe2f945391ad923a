//! Load test for `sudoku_server`: C connections, N puzzles in all, up to P
//! requests in flight per connection (pipelined); every answer is checked
//! (same id, in order, a valid grid that keeps the puzzle's givens, or
//! `NoSolution` exactly when the puzzle has none). Prints throughput and
//! latency percentiles; exits with status 1 on any wrong answer.
//!
//! ```text
//! cargo run --release --example sudoku_loadtest -- --addr 127.0.0.1:9981 --connections 10 --puzzles 10000 --pipeline 4
//! ```
//!
//! One thread per connection with blocking sockets keeps it short; it is a
//! checker first and a load generator second (the models lab in
//! `bench/` has an epoll client for many connections).

#[path = "common/args.rs"]
mod args;
#[path = "sudoku_server/puzzles.rs"]
mod puzzles;
#[path = "sudoku_server/solver.rs"]
mod solver;

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const USAGE: &str = "sudoku_loadtest: sends puzzles to sudoku_server and checks every answer

usage: sudoku_loadtest [--addr IP:PORT] [--connections C] [--puzzles N] [--pipeline P]
  --addr         server address (default 127.0.0.1:9981)
  --connections  concurrent connections, at most 2000 (default 1)
  --puzzles      puzzles to send in all (default 1000)
  --pipeline     requests in flight per connection (default 1)";

/// A puzzle and the answer it must get.
struct Case {
    puzzle: &'static str,
    grid: solver::Grid,
    solvable: bool,
}

fn main() {
    args::main_with("sudoku_loadtest", run);
}

fn run() -> io::Result<()> {
    args::init_logging();
    let args = args::Args::parse(USAGE);
    let addr: SocketAddr = args.get("addr", "127.0.0.1:9981".parse().unwrap());
    let conns: usize = args.get("connections", 1);
    let total: usize = args.get("puzzles", 1000);
    let pipeline: usize = args.get("pipeline", 1);
    if !(1..=2000).contains(&conns) || pipeline == 0 {
        return Err(io::Error::other(
            "--connections must be 1..=2000 and --pipeline at least 1",
        ));
    }
    let cases: Vec<Case> = puzzles::SOLVABLE
        .iter()
        .chain([&puzzles::UNSOLVABLE])
        .map(|p| {
            let grid = solver::parse(p.as_bytes()).expect("built-in puzzles parse");
            Case {
                puzzle: p,
                grid,
                solvable: solver::solve(&grid).is_some(),
            }
        })
        .collect();
    let cases: &'static [Case] = Box::leak(cases.into_boxed_slice());
    let started = Instant::now();
    let workers: Vec<_> = (0..conns)
        .map(|c| {
            let share = total / conns + usize::from(c < total % conns);
            std::thread::spawn(move || connection(addr, c, share, pipeline, cases))
        })
        .collect();
    let mut latencies = Vec::with_capacity(total);
    let mut failures = 0;
    for w in workers {
        match w.join() {
            Ok(Ok(mut l)) => latencies.append(&mut l),
            Ok(Err(e)) => {
                failures += 1;
                eprintln!("sudoku_loadtest: {e}");
            }
            Err(_) => failures += 1,
        }
    }
    let secs = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    println!(
        "RESULT answered={} failed_connections={failures} seconds={secs:.3} per_sec={:.1} p50_us={:.0} p99_us={:.0} max_us={:.0}",
        latencies.len(),
        latencies.len() as f64 / secs,
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
    if failures > 0 {
        return Err(io::Error::other(format!("{failures} connection(s) failed")));
    }
    Ok(())
}

/// Runs one connection: `count` puzzles, at most `pipeline` in flight.
/// Returns each request's latency; fails on the first wrong answer.
fn connection(
    addr: SocketAddr,
    index: usize,
    count: usize,
    pipeline: usize,
    cases: &[Case],
) -> io::Result<Vec<Duration>> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut in_flight: VecDeque<(usize, Instant)> = VecDeque::new();
    let mut latencies = Vec::with_capacity(count);
    let (mut sent, mut line, mut batch) = (0, String::new(), Vec::new());
    while latencies.len() < count {
        while sent < count && in_flight.len() < pipeline {
            let case = (index + sent) % cases.len();
            batch
                .extend_from_slice(format!("{index}-{sent}:{}\r\n", cases[case].puzzle).as_bytes());
            in_flight.push_back((case, Instant::now()));
            sent += 1;
        }
        writer.write_all(&batch)?;
        batch.clear();
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::other(format!(
                "connection {index}: server closed early"
            )));
        }
        let (case, at) = in_flight.pop_front().expect("an answer implies a request");
        let seq = latencies.len();
        check(&line, &format!("{index}-{seq}"), &cases[case]).map_err(|e| {
            io::Error::other(format!("connection {index}, request {seq}: {e}: {line:?}"))
        })?;
        latencies.push(at.elapsed());
    }
    Ok(latencies)
}

/// Checks one answer line against the request it must answer.
fn check(line: &str, id: &str, case: &Case) -> Result<(), String> {
    let body = line.strip_suffix("\r\n").ok_or("no CRLF")?;
    let answer = body
        .strip_prefix(id)
        .and_then(|rest| rest.strip_prefix(':'))
        .ok_or_else(|| format!("expected id {id}"))?;
    match (case.solvable, answer) {
        (false, "NoSolution") => Ok(()),
        (false, _) => Err("expected NoSolution".into()),
        (true, "NoSolution") => Err("a solvable puzzle got NoSolution".into()),
        (true, grid) => match solver::parse(grid.as_bytes()) {
            Some(g) if solver::is_solution_of(&case.grid, &g) => Ok(()),
            _ => Err("not a solution of the puzzle".into()),
        },
    }
}

//! The models lab (`muduo-bench models`): the seed's server models side by
//! side on one machine, and select vs poll vs epoll as idle connections
//! grow. Writes `MODELS.md` and `bench/results/models_*.png`.
//!
//! Part 1 runs a CPU-bound workload (sudoku puzzles) and an I/O-bound one
//! (16-byte echo) at 1-1000 connections against: one thread per connection,
//! a single reactor, a reactor with a worker pool, main/sub reactors, both,
//! and the io_uring (Proactor) backend where the example accepts
//! `--poller uring`. `models_client` keeps one request in flight per
//! connection and reports throughput and latency; the server's CPU comes
//! from `wait4`, its threads and RSS from `/proc/PID/status` while loaded.
//!
//! Part 2 holds N idle connections open (`c10k_client`, its own process)
//! while 100 ping-pong sessions run (`pingpong_client`), and measures the
//! server's CPU per echoed message (`/proc/PID/stat` across the active
//! phase) and its syscalls per message (`perf stat -e
//! raw_syscalls:sys_enter`, counted in the kernel) against N.

mod pollers;
mod reading;
mod servers;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::env::{Machine, Paths};
use super::process::{free_port, loopback, run_client, Server};
use super::{relative, Mode};
use pollers::{plot_pollers, pollers_table, run_pollers};
use reading::{reading_echo, reading_intro, reading_pollers, reading_sudoku, PUZZLE_COUNT};
use servers::{models_table, plot_models, run_models};

/// Sizes and run lengths for a mode.
struct Plan {
    conns: Vec<usize>,
    idle: Vec<usize>,
    /// Runs per cell of part 1 (medians).
    runs: usize,
    /// Runs per cell of part 2 (steadier: no scheduling between models).
    poll_runs: usize,
    secs: f64,
}

fn plan(mode: Mode) -> Plan {
    match mode {
        Mode::Smoke => Plan {
            conns: vec![10],
            idle: vec![100],
            runs: 1,
            poll_runs: 1,
            secs: 1.0,
        },
        Mode::Short => Plan {
            conns: vec![1, 10, 100, 1000],
            idle: vec![100, 500, 1000, 3000, 10000],
            runs: 3,
            poll_runs: 1,
            secs: 2.0,
        },
        Mode::Full => Plan {
            conns: vec![1, 10, 100, 1000],
            idle: vec![100, 500, 1000, 3000, 10000],
            runs: 3,
            poll_runs: 3,
            secs: 4.0,
        },
    }
}

/// Active ping-pong sessions in the poller part.
const ACTIVE: usize = 100;
/// Client threads of `models_client` and `pingpong_client`.
const CLIENT_THREADS: usize = 2;

/// The workloads of part 1.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Workload {
    Sudoku,
    Echo,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Sudoku => "sudoku",
            Workload::Echo => "echo",
        }
    }
}

/// One server of the lab: a program and its arguments (after `--addr`).
struct Model {
    /// Row label: the model's short name.
    name: &'static str,
    /// The seed's name for the model.
    seed: &'static str,
    program: PathBuf,
    args: Vec<String>,
}

impl Model {
    fn new(name: &'static str, seed: &'static str, dir: &Path, bin: &str, args: &[&str]) -> Model {
        Model {
            name,
            seed,
            program: dir.join(bin),
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn args(&self, port: u16) -> Vec<String> {
        let mut v = vec!["--addr".to_string(), format!("127.0.0.1:{port}")];
        v.extend(self.args.iter().cloned());
        v
    }

    fn shown(&self, paths: &Paths) -> String {
        format!(
            "{} --addr 127.0.0.1:PORT {}",
            relative(&self.program, paths),
            self.args.join(" ")
        )
    }
}

fn models(workload: Workload, paths: &Paths) -> Vec<Model> {
    let (ex, bin) = (&paths.examples, &paths.bins);
    match workload {
        Workload::Sudoku => vec![
            Model::new(
                "threads",
                "one thread per connection",
                ex,
                "sudoku_server",
                &["--model", "threads"],
            ),
            Model::new(
                "single",
                "single reactor",
                ex,
                "sudoku_server",
                &["--model", "single"],
            ),
            Model::new(
                "pool",
                "reactor + worker pool",
                ex,
                "sudoku_server",
                &["--model", "pool", "--threads", "2"],
            ),
            Model::new(
                "multi",
                "main/sub reactors",
                ex,
                "sudoku_server",
                &["--model", "multi", "--threads", "2"],
            ),
            Model::new(
                "multi-pool",
                "main/sub reactors + pool",
                ex,
                "sudoku_server",
                &["--model", "multi-pool", "--threads", "2", "--workers", "2"],
            ),
            Model::new(
                "proactor",
                "Proactor (io_uring), one loop",
                ex,
                "sudoku_server",
                &["--model", "single", "--poller", "uring"],
            ),
        ],
        Workload::Echo => vec![
            Model::new(
                "threads",
                "one thread per connection",
                bin,
                "threads_echo",
                &["--threads", "0"],
            ),
            Model::new(
                "single",
                "single reactor",
                ex,
                "pingpong_server",
                &["--threads", "0"],
            ),
            Model::new(
                "multi",
                "main/sub reactors",
                ex,
                "pingpong_server",
                &["--threads", "2"],
            ),
            Model::new(
                "proactor",
                "Proactor (io_uring), one loop",
                ex,
                "pingpong_server",
                &["--threads", "0", "--poller", "uring"],
            ),
        ],
    }
}

fn pollers(paths: &Paths) -> Vec<Model> {
    let (ex, bin) = (&paths.examples, &paths.bins);
    vec![
        Model::new(
            "select",
            "select(2)",
            bin,
            "select_echo",
            &["--threads", "0"],
        ),
        Model::new(
            "poll",
            "poll(2)",
            ex,
            "pingpong_server",
            &["--threads", "0", "--poller", "poll"],
        ),
        Model::new(
            "epoll",
            "epoll(7)",
            ex,
            "pingpong_server",
            &["--threads", "0", "--poller", "epoll"],
        ),
    ]
}

/// Starts `model` on a free port and waits until it accepts.
fn start(model: &Model, paths: &Paths) -> Result<(Server, u16), String> {
    let port = free_port().map_err(|e| format!("free port: {e}"))?;
    let mut server = Server::start(&model.program, &model.args(port), &paths.log)
        .map_err(|e| format!("spawn: {e}"))?;
    server.wait_ready(loopback(port), Duration::from_secs(5))?;
    Ok((server, port))
}

/// Whether `model` runs at all here (its binary exists and it accepts
/// connections with these flags); the reason when it does not.
fn probe(model: &Model, paths: &Paths) -> Result<(), String> {
    if !model.program.is_file() {
        return Err(format!(
            "`{}` is not built",
            relative(&model.program, paths)
        ));
    }
    let (server, _) = start(model, paths).map_err(|e| {
        // Run it once more in the foreground to quote its own error line.
        let said = free_port()
            .ok()
            .and_then(|port| {
                run_client(&model.program, &model.args(port), Duration::from_secs(5)).ok()
            })
            .map(|out| out.stderr)
            .filter(|s| !s.is_empty())
            .unwrap_or(e);
        format!("`{}` did not start: {said}", model.shown(paths))
    })?;
    server.stop();
    Ok(())
}

/// What the page collects besides its sections.
#[derive(Default)]
struct Page {
    commands: Vec<String>,
    notes: Vec<String>,
}

impl Page {
    fn command(&mut self, c: impl Into<String>) {
        let c = c.into();
        if !self.commands.contains(&c) {
            self.commands.push(c);
        }
    }

    fn note(&mut self, n: impl Into<String>) {
        let n = n.into();
        eprintln!("muduo-bench: note: {n}");
        if !self.notes.contains(&n) {
            self.notes.push(n);
        }
    }
}

/// Runs the lab and writes `MODELS.md`; returns its path. `notes` are the
/// build notes of the caller.
pub fn run(mode: Mode, paths: &Paths, notes: Vec<String>) -> Result<PathBuf, String> {
    let plan = plan(mode);
    let machine = Machine::read();
    let load_before = super::env::loadavg();
    let started = Instant::now();
    let mut page = Page {
        notes,
        ..Page::default()
    };
    page.command(format!(
        "{} 127.0.0.1:PORT <sudoku|echo> <connections> {} {CLIENT_THREADS}",
        relative(&paths.bins.join("models_client"), paths),
        plan.secs
    ));
    let sudoku = run_models(Workload::Sudoku, &plan, paths, &mut page);
    let echo = run_models(Workload::Echo, &plan, paths, &mut page);
    let polls = run_pollers(&plan, paths, &mut page);

    let mut md = String::new();
    let _ = write!(
        md,
        "# The seed's server models, measured\n\n\
         Generated by `cargo run --release -p muduo-bench -- models{}` ({} mode) on {}; the run took {:.0} s.\n\n\
         - CPU: {} ({} cores available)\n- Kernel: {}\n- Compiler: {}\n\
         - Load average (1 min) before / after: {} / {}\n\n\
         Every server is a separate process started fresh for each cell on a free loopback port. \
         Clients run on the same machine and share its {} cores with the server, so a server with more \
         threads than cores competes with its own load generator; the machine may also be shared with \
         other work (see the load average), so read ratios and trends rather than absolute figures.\n\n",
        mode.flag(), mode.name(), machine.date, started.elapsed().as_secs_f64(),
        machine.cpu, machine.cores, machine.kernel, machine.rustc, load_before, super::env::loadavg(), machine.cores,
    );
    md.push_str(&reading_intro());
    let _ = write!(
        md,
        "## 1. Server models\n\n`models_client` opens C connections ({CLIENT_THREADS} client threads, epoll), each with one \
         request in flight, for {} s per run ({} run(s) per cell, medians). *req/s* and latency are the \
         client's; *server CPU µs/req* is the server's whole-life user+system time (`wait4`) divided by the \
         requests answered (so it includes start-up and connection set-up); *threads* and *RSS* are the \
         peaks of `/proc/PID/status` while loaded.\n\n",
        plan.secs, plan.runs
    );
    let _ = write!(
        md,
        "### Sudoku (CPU-bound)\n\nEach request is one of {} well-known puzzles, from 2 µs to about 1.5 ms of \
         solving; every answer is checked by the client.\n\n{}\n{}\n{}\n",
        PUZZLE_COUNT,
        models_table(&sudoku),
        plot_models(Workload::Sudoku, &sudoku, paths, &mut page),
        reading_sudoku(&sudoku)
    );
    let _ = write!(
        md,
        "### Echo (I/O-bound)\n\n16-byte messages echoed back; a reactor + pool row would only add a \
         hand-off per message (there is no work to move off the loop), so echo compares thread per \
         connection, one reactor, main/sub reactors and the Proactor.\n\n{}\n{}\n{}\n",
        models_table(&echo),
        plot_models(Workload::Echo, &echo, paths, &mut page),
        reading_echo(&echo)
    );
    let _ = write!(
        md,
        "## 2. select vs poll vs epoll as connections grow\n\n`c10k_client` (its own process) holds N idle \
         connections while `pingpong_client` runs {ACTIVE} active ping-pong sessions (16-byte messages) for {} s. \
         Every server is single-threaded. *Server CPU µs/msg* is the server's CPU time across the active \
         phase (`/proc/PID/stat`, 10 ms ticks) per echoed message; *syscalls/msg* counts every syscall the \
         server made in that phase (`perf stat -e raw_syscalls:sys_enter`, counted in the kernel, so it \
         barely slows the server, unlike strace). select stops where N + {ACTIVE} connections no longer fit \
         below FD_SETSIZE (1024). {} run(s) per cell (medians).\n\n{}\n{}\n{}\n",
        plan.secs,
        plan.poll_runs,
        pollers_table(&polls),
        plot_pollers(&polls, paths, &mut page),
        reading_pollers(&polls)
    );
    md.push_str("## Commands\n\n```text\ncargo run --release -p muduo-bench -- models\n");
    for c in &page.commands {
        let _ = writeln!(md, "{c}");
    }
    md.push_str("```\n\n## Notes\n\n");
    md.push_str("- Connections are made before each run's clock starts; latency is measured from the request's send to the last byte of its answer.\n");
    for n in &page.notes {
        let _ = writeln!(md, "- {n}");
    }
    std::fs::create_dir_all(&paths.out)
        .map_err(|e| format!("cannot create {}: {e}", paths.out.display()))?;
    let path = paths.out.join("MODELS.md");
    std::fs::write(&path, md).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_cover_the_issue_sizes() {
        let p = plan(Mode::Short);
        assert_eq!(p.conns, vec![1, 10, 100, 1000]);
        assert!(p.idle.contains(&100) && p.idle.contains(&10000));
    }
}

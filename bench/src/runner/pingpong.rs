//! The ping-pong matrix: sessions x block sizes x stacks, each cell the
//! median of several runs, runs of a cell alternating between stacks
//! (A B C A B C ...) so slow drifts of a shared machine hit every stack alike.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::env::Paths;
use super::process::{free_port, loopback, run_client, Server};
use super::stats::{field, fmt, fmt_ratio, median, ratio};
use super::{plot, relative, Mode, Report, Stack};

/// Matrix dimensions and run lengths for a mode.
pub struct Plan {
    /// Concurrent sessions.
    pub sessions: Vec<usize>,
    /// Block (message) sizes in bytes.
    pub blocks: Vec<usize>,
    /// Runs per cell and stack.
    pub runs: usize,
    /// Seconds per run.
    pub secs: f64,
}

/// The plan for `mode`. Short mode keeps all session counts but only the
/// 16 B and 4 KiB blocks (the ones the project's CPU targets are stated
/// for), to fit in its time budget; full mode adds 16 KiB, 64 KiB and
/// 10000 sessions.
pub fn plan(mode: Mode) -> Plan {
    match mode {
        Mode::Smoke => Plan {
            sessions: vec![10],
            blocks: vec![16],
            runs: 1,
            secs: 1.0,
        },
        Mode::Short => Plan {
            sessions: vec![1, 10, 100, 1000],
            blocks: vec![16, 4096],
            runs: 3,
            secs: 2.0,
        },
        Mode::Full => Plan {
            sessions: vec![1, 10, 100, 1000, 10000],
            blocks: vec![16, 4096, 16384, 65536],
            runs: 3,
            secs: 4.0,
        },
    }
}

/// Every ping-pong stack: ours with 0/1/2 I/O threads, tokio with 2
/// workers, the bare epoll loop with 1 and 2 threads.
pub fn stacks(paths: &Paths) -> Vec<Stack> {
    let (ex, bin) = (&paths.examples, &paths.bins);
    vec![
        Stack::new("ours-t0", ex, "pingpong_server", 0, true),
        Stack::new("ours-t1", ex, "pingpong_server", 1, true),
        Stack::new("ours-t2", ex, "pingpong_server", 2, true),
        Stack::new("tokio-t2", bin, "tokio_pingpong", 2, false),
        Stack::new("epoll-t1", bin, "epoll_pingpong", 1, false),
        Stack::new("epoll-t2", bin, "epoll_pingpong", 2, false),
    ]
}

/// The peers one of our stacks is compared with: tokio-t2 always, and the
/// epoll loop with the same number of I/O threads (t0 and t1 both do all
/// I/O on one thread, so both compare with epoll-t1).
pub fn peers_for(ours: &Stack) -> [&'static str; 2] {
    [
        "tokio-t2",
        if ours.threads <= 1 {
            "epoll-t1"
        } else {
            "epoll-t2"
        },
    ]
}

/// Client threads: one per session up to the core count of the machine
/// this harness targets (2), the same for every stack.
pub fn client_threads(sessions: usize) -> usize {
    sessions.clamp(1, 2)
}

/// One run's figures.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Throughput in MiB/s.
    pub mib_s: f64,
    /// Messages (blocks) per second.
    pub msgs_s: f64,
    /// Server user CPU per message, µs.
    pub user_us_msg: f64,
    /// Server system CPU per message, µs.
    pub sys_us_msg: f64,
}

/// Medians over a cell's runs.
#[derive(Clone, Copy, Debug)]
pub struct Figures {
    /// Throughput in MiB/s.
    pub mib_s: f64,
    /// Messages (blocks) per second.
    pub msgs_s: f64,
    /// Server user CPU per message, µs.
    pub user: f64,
    /// Server system CPU per message, µs.
    pub sys: f64,
    /// Server user+system CPU per message, µs.
    pub total: f64,
}

/// Per-metric medians of `samples`.
pub fn figures(samples: &[Sample]) -> Figures {
    let m = |f: fn(&Sample) -> f64| median(&samples.iter().map(f).collect::<Vec<_>>());
    Figures {
        mib_s: m(|s| s.mib_s),
        msgs_s: m(|s| s.msgs_s),
        user: m(|s| s.user_us_msg),
        sys: m(|s| s.sys_us_msg),
        total: m(|s| s.user_us_msg + s.sys_us_msg),
    }
}

/// Starts `stack`, runs the client against it, stops and reaps it.
pub fn run_once(
    stack: &Stack,
    block: usize,
    sessions: usize,
    secs: f64,
    paths: &Paths,
) -> Result<Sample, String> {
    let port = free_port().map_err(|e| format!("free port: {e}"))?;
    let mut server = Server::start(&stack.program, &stack.args(port), &paths.log)
        .map_err(|e| format!("spawn: {e}"))?;
    server.wait_ready(loopback(port), Duration::from_secs(5))?;
    let args = client_args(port, block, sessions, secs);
    let client = run_client(
        &paths.bins.join("pingpong_client"),
        &args,
        Duration::from_secs_f64(secs + 40.0),
    );
    let usage = server.stop();
    let out = client.map_err(|e| format!("client: {e}"))?;
    let bytes = field(&out.stdout, "RESULT", "bytes").filter(|_| out.success);
    let Some(bytes) = bytes else {
        return Err(format!("client failed: {}", out.stderr));
    };
    let msgs = (bytes / block as f64).floor();
    if msgs < 1.0 {
        return Err("no message came back".into());
    }
    Ok(Sample {
        mib_s: bytes / (1024.0 * 1024.0) / secs,
        msgs_s: msgs / secs,
        user_us_msg: usage.user_us as f64 / msgs,
        sys_us_msg: usage.sys_us as f64 / msgs,
    })
}

/// The pingpong_client arguments for one run.
pub fn client_args(port: u16, block: usize, sessions: usize, secs: f64) -> Vec<String> {
    vec![
        format!("127.0.0.1:{port}"),
        client_threads(sessions).to_string(),
        block.to_string(),
        sessions.to_string(),
        secs.to_string(),
    ]
}

/// Samples by (block, sessions), then by stack name.
pub type Results = BTreeMap<(usize, usize), BTreeMap<String, Vec<Sample>>>;

/// Runs every cell of `plan` on every stack (stacks interleaved within a
/// cell, so drift hits them alike), logging each run under `[tag]` and
/// passing each sample to `each`; failed runs become report notes.
pub fn run_matrix(
    tag: &str,
    plan: &Plan,
    stacks: &[Stack],
    paths: &Paths,
    report: &mut Report,
    mut each: impl FnMut(usize, usize, &Stack, &Sample),
) -> Results {
    let total = plan.blocks.len() * plan.sessions.len() * plan.runs * stacks.len();
    eprintln!("[{tag}] {total} ping-pong runs of {} s planned", plan.secs);
    let mut results = Results::new();
    for &block in &plan.blocks {
        for &sessions in &plan.sessions {
            for run in 0..plan.runs {
                for stack in stacks {
                    match run_once(stack, block, sessions, plan.secs, paths) {
                        Ok(s) => {
                            eprintln!(
                                "[{tag}] block={block} sessions={sessions} run {}/{} {}: {:.0} msgs/s, {:.1} MiB/s, {:.3} us/msg",
                                run + 1,
                                plan.runs,
                                stack.name,
                                s.msgs_s,
                                s.mib_s,
                                s.user_us_msg + s.sys_us_msg
                            );
                            each(block, sessions, stack, &s);
                            results
                                .entry((block, sessions))
                                .or_default()
                                .entry(stack.name.clone())
                                .or_default()
                                .push(s);
                        }
                        Err(e) => report.note(format!(
                            "Ping-pong `{}` block {block} B, {sessions} sessions, run {}: {e}",
                            stack.name,
                            run + 1
                        )),
                    }
                }
            }
        }
    }
    results
}

/// Runs the matrix and adds its section, plots and raw CSV.
pub fn run(mode: Mode, paths: &Paths, report: &mut Report) {
    let plan = plan(mode);
    if mode == Mode::Short {
        report.note(
            "Short mode: ping-pong runs blocks 16 B and 4 KiB only (the blocks the targets name), \
             without 10000 sessions; `--full` adds 16 KiB, 64 KiB and 10000 sessions (and uses 4 s runs).",
        );
    }
    let stacks = report.available(stacks(paths), paths);
    for s in &stacks {
        report.command(s.shown(paths));
    }
    report.command(format!(
        "{} 127.0.0.1:PORT <min(sessions,2)> <block> <sessions> {}",
        relative(&paths.bins.join("pingpong_client"), paths),
        plan.secs
    ));
    let mut csv =
        String::from("block,sessions,stack,mib_per_s,msgs_per_s,user_us_per_msg,sys_us_per_msg\n");
    let results = run_matrix(
        "pingpong",
        &plan,
        &stacks,
        paths,
        report,
        |block, sessions, stack, s| {
            let _ = writeln!(
                csv,
                "{block},{sessions},{},{:.3},{:.1},{:.4},{:.4}",
                stack.name, s.mib_s, s.msgs_s, s.user_us_msg, s.sys_us_msg
            );
        },
    );
    let _ = std::fs::write(paths.results.join("pingpong_raw.csv"), csv);
    let section = render(&plan, &stacks, &results, paths, report);
    report.sections.push(section);
}

fn render(
    plan: &Plan,
    stacks: &[Stack],
    results: &Results,
    paths: &Paths,
    report: &mut Report,
) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## Ping-pong\n\nMedian of {} run(s) of {} s per cell; sessions {:?}, blocks {:?} B. \
         CPU is the server's user/system time over its whole life (wait4) divided by the messages \
         the client received back (bytes / block). Ratios are ours / peer: throughput above 1 and \
         CPU below 1 favour ours.\n",
        plan.runs, plan.secs, plan.sessions, plan.blocks
    );
    let get = |block, sessions, name: &str| {
        results
            .get(&(block, sessions))
            .and_then(|m| m.get(name))
            .filter(|v| !v.is_empty())
            .map(|v| figures(v))
    };
    for &block in &plan.blocks {
        let png = format!("pingpong_{block}.png");
        let series: Vec<(String, Vec<(f64, f64)>)> = stacks
            .iter()
            .map(|s| {
                let pts = plan
                    .sessions
                    .iter()
                    .filter_map(|&n| get(block, n, &s.name).map(|f| (n as f64, f.mib_s)))
                    .collect();
                (s.name.clone(), pts)
            })
            .collect();
        let title = format!("ping-pong, {block} B blocks: throughput vs sessions");
        let _ = writeln!(md, "### Block {block} B\n");
        match plot::throughput(&paths.results.join(&png), &title, &series) {
            Ok(()) => {
                let _ = writeln!(md, "![{title}](bench/results/{png})\n");
            }
            Err(e) => report.note(format!("Plot {png} failed: {e}")),
        }
        md.push_str("| sessions | stack | MiB/s | msgs/s | user µs/msg | sys µs/msg | total µs/msg |\n|---:|---|---:|---:|---:|---:|---:|\n");
        for &n in &plan.sessions {
            for s in stacks {
                if let Some(f) = get(block, n, &s.name) {
                    let _ = writeln!(
                        md,
                        "| {n} | {} | {} | {} | {} | {} | {} |",
                        s.name,
                        fmt(f.mib_s),
                        fmt(f.msgs_s),
                        fmt(f.user),
                        fmt(f.sys),
                        fmt(f.total)
                    );
                }
            }
        }
        md.push('\n');
        let mut ratios = String::new();
        for &n in &plan.sessions {
            for ours in stacks.iter().filter(|s| s.ours) {
                let Some(o) = get(block, n, &ours.name) else {
                    continue;
                };
                for peer in peers_for(ours) {
                    let Some(p) = get(block, n, peer) else {
                        continue;
                    };
                    let _ = writeln!(
                        ratios,
                        "| {n} | {} / {peer} | {} | {} | {} |",
                        ours.name,
                        fmt_ratio(ratio(o.mib_s, p.mib_s)),
                        fmt_ratio(ratio(o.user, p.user)),
                        fmt_ratio(ratio(o.total, p.total))
                    );
                }
            }
        }
        if ratios.is_empty() {
            md.push_str("Ratios: n/a (no result for our pingpong_server).\n\n");
        } else {
            md.push_str("| sessions | ours / peer | throughput | user CPU/msg | total CPU/msg |\n|---:|---|---:|---:|---:|\n");
            md.push_str(&ratios);
            md.push('\n');
        }
    }
    md
}

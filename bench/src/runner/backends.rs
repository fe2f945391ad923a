//! `muduo-bench backends`: our library on io_uring, epoll LT and epoll ET
//! against a bare io_uring loop, a bare epoll loop and tokio, with the same
//! ping-pong client in the same run (issue 10's benchmark), plus wrk
//! against the echo example on both backends.
//!
//! Every ping-pong server runs one I/O thread (ours: `--threads 1`, one I/O
//! loop beside the accepting main loop), so the client's two threads and
//! the server do not fight over more cores than the machine has. Figures:
//! msgs/s, MiB/s, server CPU per message from the whole-life rusage, and
//! syscalls per message from perf's tracepoints ([`super::backends_syscalls`]).
//! A stack whose binary rejects its flags (our `--poller uring` before the
//! io_uring backend lands) shows as "not available in this build"; the rest
//! still runs. The section owns its block of BENCHMARKS.md ([`BLOCK`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::backends_syscalls::{counted_run, perf_works};
use super::env::{ensure_tool, loadavg, Machine, Paths};
use super::http::{self, Load};
use super::pingpong::{self, Figures, Sample};
use super::process::{free_port, loopback, run_client, Server};
use super::stats::{field, fmt, fmt_ratio, ratio, targets_table, Target, TargetRow};
use super::syscalls::{traced_run, PerMessage};
use super::{plot, relative, Mode, Report, Stack};

/// Name of this section's block in BENCHMARKS.md.
pub const BLOCK: &str = "backends";

const THREADS: usize = 1;
const OURS_URING: &str = "ours-uring";
const OURS_LT: &str = "ours-epoll-lt";
const URING_BARE: &str = "uring-bare";
const EPOLL_BARE: &str = "epoll-bare";
/// Table order of the ping-pong stacks.
const STACK_ORDER: [&str; 6] = [
    OURS_URING,
    OURS_LT,
    "ours-epoll-et",
    URING_BARE,
    EPOLL_BARE,
    "tokio",
];

/// The ping-pong stacks, in table order.
pub fn stacks(paths: &Paths) -> Vec<Stack> {
    let (ex, bin, t) = (&paths.examples, &paths.bins, THREADS);
    vec![
        Stack::new(OURS_URING, ex, "pingpong_server", t, true).with_args(&["--poller", "uring"]),
        Stack::new(OURS_LT, ex, "pingpong_server", t, true).with_args(&["--poller", "epoll"]),
        Stack::new("ours-epoll-et", ex, "pingpong_server", t, true)
            .with_args(&["--poller", "epoll-et"]),
        Stack::new(URING_BARE, bin, "uring_pingpong", t, false),
        Stack::new(EPOLL_BARE, bin, "epoll_pingpong", t, false),
        Stack::new("tokio", bin, "tokio_pingpong", t, false),
    ]
}

/// The echo example on both backends, for wrk.
pub fn http_stacks(paths: &Paths) -> Vec<Stack> {
    let (ex, t) = (&paths.examples, http::SERVER_THREADS);
    vec![
        Stack::new("echo-uring", ex, "echo", t, true).with_args(&["--poller", "uring"]),
        Stack::new("echo-epoll", ex, "echo", t, true).with_args(&["--poller", "epoll"]),
    ]
}

/// Matrix, run lengths, and the cells whose syscalls are counted.
struct Plan {
    pingpong: pingpong::Plan,
    syscall_cells: Vec<(usize, usize)>,
}

fn plan(mode: Mode) -> Plan {
    match mode {
        Mode::Smoke => Plan {
            pingpong: pingpong::Plan {
                sessions: vec![10],
                blocks: vec![16],
                runs: 1,
                secs: 1.0,
            },
            syscall_cells: vec![(16, 10)],
        },
        Mode::Short | Mode::Full => Plan {
            pingpong: pingpong::Plan {
                sessions: vec![1, 10, 100, 1000],
                blocks: vec![16, 4096, 65536],
                runs: 3,
                secs: if mode == Mode::Full { 4.0 } else { 2.0 },
            },
            syscall_cells: vec![(16, 100), (4096, 100), (16, 1000)],
        },
    }
}

/// Starts `stack` once and checks that it accepts; the reason when not
/// (the last line it logged, e.g. its complaint about `--poller uring`).
fn probe(stack: &Stack, paths: &Paths) -> Result<(), String> {
    if !stack.program.is_file() {
        return Err(format!(
            "`{}` is not built",
            relative(&stack.program, paths)
        ));
    }
    // Its own log, not the shared one: the reason must be this server's.
    let log_path = paths.results.join("backends_probe.tmp");
    let _ = std::fs::remove_file(&log_path);
    let port = free_port().map_err(|e| format!("free port: {e}"))?;
    let mut server = Server::start(&stack.program, &stack.args(port), &log_path)
        .map_err(|e| format!("spawn: {e}"))?;
    let ready = server.wait_ready(loopback(port), Duration::from_secs(5));
    server.stop();
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = std::fs::remove_file(&log_path);
    let root = format!("{}/", paths.root.display());
    ready.map_err(|e| match log.lines().rev().find(|l| !l.trim().is_empty()) {
        Some(last) => format!("{e}: `{}`", last.trim().replace(&root, "")),
        None => e,
    })
}

type PingPong = BTreeMap<(usize, usize), BTreeMap<String, Vec<Sample>>>;
type Syscalls = BTreeMap<(usize, usize), BTreeMap<String, PerMessage>>;
type Http = BTreeMap<(Load, String), Vec<http::Sample>>;

/// Everything measured, for rendering.
struct Results {
    pingpong: PingPong,
    syscalls: Syscalls,
    syscall_tool: &'static str,
    http: Http,
    http_runs: (usize, u32),
    missing: BTreeMap<String, String>,
}

/// Runs the section and returns its Markdown block (self-contained: its
/// own header, commands and notes, since it is written apart from `all`).
pub fn run(
    mode: Mode,
    paths: &Paths,
    report: &mut Report,
    machine: &Machine,
    load_before: &str,
    started: Instant,
) -> String {
    let plan = plan(mode);
    let mut missing = BTreeMap::new();
    let mut available = |list: Vec<Stack>, report: &mut Report| -> Vec<Stack> {
        list.into_iter()
            .filter(|s| match probe(s, paths) {
                Ok(()) => true,
                Err(e) => {
                    report.note(format!("`{}` is not available in this build: {e}", s.name));
                    missing.insert(s.name.clone(), e);
                    false
                }
            })
            .collect()
    };
    let pp = available(stacks(paths), report);
    let echo = available(http_stacks(paths), report);
    for s in stacks(paths).iter().chain(http_stacks(paths).iter()) {
        report.command(s.shown(paths));
    }
    let client = paths.bins.join("pingpong_client");
    report.command(format!(
        "{} 127.0.0.1:PORT <min(sessions,2)> <block> <sessions> {}",
        relative(&client, paths),
        plan.pingpong.secs
    ));
    let pingpong = pingpong::run_matrix(
        "backends",
        &plan.pingpong,
        &pp,
        paths,
        report,
        |_, _, _, _| {},
    );
    let (syscalls, syscall_tool) = run_syscalls(&plan, &pp, paths, report);
    let http_runs = http::wrk_plan(mode);
    let http = run_http(mode, &echo, paths, report);
    let results = Results {
        pingpong,
        syscalls,
        syscall_tool,
        http,
        http_runs,
        missing,
    };
    let mut md = header(mode, machine, load_before, started, report);
    md.push_str(&render_pingpong(&plan, paths, &results, report));
    md.push_str(&render_syscalls(&plan, &results));
    md.push_str(&render_targets(&plan, &results));
    md.push_str(&render_http(&results));
    md.push_str("### Notes for this section\n\n");
    md.push_str(
        "- Other work may share the machine (the load averages above): figures are noisy; \
         compare stacks within one run, not across runs.\n",
    );
    for note in &report.notes {
        let _ = writeln!(md, "- {note}");
    }
    md
}

fn header(mode: Mode, m: &Machine, load_before: &str, started: Instant, report: &Report) -> String {
    let mut md = format!(
        "## Backends: epoll and io_uring\n\n\
         Generated by `cargo run --release -p muduo-bench -- backends{}` ({} mode) on {}; the run \
         took {:.0} s. CPU: {} ({} cores); kernel {}; {}; load average (1 min) before / after: \
         {load_before} / {}. This block is rewritten only by the `backends` subcommand.\n\n\
         Every ping-pong server runs one I/O thread (ours: `--threads 1`, one I/O loop beside the \
         accepting main loop; the bare loops and tokio: one thread), driven by the same \
         `pingpong_client` with two threads. CPU per message is the server's whole-life user and \
         system time (`wait4`) divided by the messages the client got back.\n\n```text\n",
        mode.flag(),
        mode.name(),
        m.date,
        started.elapsed().as_secs_f64(),
        m.cpu,
        m.cores,
        m.kernel,
        m.rustc,
        loadavg(),
    );
    for cmd in &report.commands {
        let _ = writeln!(md, "{cmd}");
    }
    md.push_str("```\n\n");
    md
}

fn run_syscalls(
    plan: &Plan,
    stacks: &[Stack],
    paths: &Paths,
    report: &mut Report,
) -> (Syscalls, &'static str) {
    let perf = perf_works();
    let tool = match &perf {
        Ok(()) => "perf",
        Err(e) => {
            if let Err(e2) = ensure_tool("strace", "strace") {
                report.note(format!("Syscalls not counted: {e}; {e2}"));
                return (Syscalls::new(), "none");
            }
            report.note(format!(
                "{e}: syscalls counted with `strace -c -f` instead, which slows epoll servers 5-14x \
                 and so distorts their count against io_uring's."
            ));
            "strace"
        }
    };
    if tool == "perf" {
        report.command(format!(
            "perf stat -x , -e {} -o FILE -p SERVER_PID   (attached after the server accepts, stopped with SIGINT)",
            super::backends_syscalls::events()
        ));
    } else {
        report.command("strace -c -f -o FILE -p SERVER_PID");
    }
    let file = paths.results.join("backends_syscalls.tmp");
    let client = paths.bins.join("pingpong_client");
    let mut out = Syscalls::new();
    for &(block, sessions) in &plan.syscall_cells {
        for stack in stacks {
            let drive = |port: u16| -> Result<f64, String> {
                let args = pingpong::client_args(port, block, sessions, plan.pingpong.secs);
                let out = run_client(
                    &client,
                    &args,
                    Duration::from_secs_f64(plan.pingpong.secs + 40.0),
                )
                .map_err(|e| e.to_string())?;
                let bytes = field(&out.stdout, "RESULT", "bytes")
                    .ok_or_else(|| format!("client failed: {}", out.stderr))?;
                Ok((bytes / block as f64).floor())
            };
            let result = if tool == "perf" {
                counted_run(stack, paths, &file, drive)
            } else {
                traced_run(stack, paths, &file, drive)
            };
            match result {
                Ok((counts, msgs)) if msgs >= 1.0 => {
                    let p = PerMessage::new(&counts, msgs);
                    eprintln!(
                        "[backends] syscalls {sessions} x {block} B {}: {:.3}/msg",
                        stack.name, p.per_msg
                    );
                    out.entry((block, sessions))
                        .or_default()
                        .insert(stack.name.clone(), p);
                }
                Ok(_) => report.note(format!(
                    "Syscalls {sessions} x {block} B `{}`: no message completed.",
                    stack.name
                )),
                Err(e) => report.note(format!(
                    "Syscalls {sessions} x {block} B `{}`: {e}",
                    stack.name
                )),
            }
        }
    }
    let _ = std::fs::remove_file(&file);
    (out, tool)
}

fn run_http(mode: Mode, stacks: &[Stack], paths: &Paths, report: &mut Report) -> Http {
    let mut out = Http::new();
    if stacks.is_empty() {
        return out;
    }
    if let Err(e) = ensure_tool("wrk", "wrk") {
        report.note(format!("HTTP: {e}"));
        return out;
    }
    let (runs, secs) = http::wrk_plan(mode);
    http::record_wrk_commands(report, secs);
    for load in [Load::KeepAlive, Load::Pipelined] {
        for run in 0..runs {
            for stack in stacks {
                match http::run_once(stack, load, secs, paths) {
                    Ok((w, u)) => {
                        eprintln!(
                            "[backends] http {} {}: {:.0} req/s",
                            load.name(),
                            stack.name,
                            w.req_s
                        );
                        out.entry((load, stack.name.clone()))
                            .or_default()
                            .push(http::Sample::new(&w, &u));
                    }
                    Err(e) => report.note(format!(
                        "HTTP `{}` {} run {}: {e}",
                        stack.name,
                        load.name(),
                        run + 1
                    )),
                }
            }
        }
    }
    out
}

fn get(results: &Results, block: usize, sessions: usize, name: &str) -> Option<Figures> {
    results
        .pingpong
        .get(&(block, sessions))
        .and_then(|m| m.get(name))
        .filter(|v| !v.is_empty())
        .map(|v| pingpong::figures(v))
}

fn render_pingpong(plan: &Plan, paths: &Paths, results: &Results, report: &mut Report) -> String {
    let names: Vec<String> = stacks(paths).into_iter().map(|s| s.name).collect();
    let mut md = format!(
        "### Ping-pong\n\nMedian of {} run(s) of {} s per cell.\n\n",
        plan.pingpong.runs, plan.pingpong.secs
    );
    let cpu_png = "backends_cpu.png";
    let panels: Vec<plot::BarPanel> = plan
        .pingpong
        .blocks
        .iter()
        .map(|&block| plot::BarPanel {
            title: format!("{block} B: server CPU per message"),
            y_desc: "µs/msg (user, then system)".into(),
            groups: plan
                .pingpong
                .sessions
                .iter()
                .map(|n| format!("{n} sess"))
                .collect(),
            series: names
                .iter()
                .filter(|n| !results.missing.contains_key(*n))
                .map(|n| {
                    let bars = plan
                        .pingpong
                        .sessions
                        .iter()
                        .map(|&s| {
                            get(results, block, s, n)
                                .map(|f| vec![f.user, f.sys])
                                .unwrap_or_default()
                        })
                        .collect();
                    (n.clone(), bars)
                })
                .collect(),
        })
        .collect();
    match plot::grouped_bars(&paths.results.join(cpu_png), &panels) {
        Ok(()) => {
            let _ = writeln!(md, "![server CPU per message](bench/results/{cpu_png})\n");
        }
        Err(e) => report.note(format!("Plot {cpu_png} failed: {e}")),
    }
    for &block in &plan.pingpong.blocks {
        let _ = writeln!(md, "#### Block {block} B\n");
        let png = format!("backends_{block}.png");
        let series: Vec<(String, Vec<(f64, f64)>)> = names
            .iter()
            .map(|n| {
                let pts = plan
                    .pingpong
                    .sessions
                    .iter()
                    .filter_map(|&s| get(results, block, s, n).map(|f| (s as f64, f.mib_s)))
                    .collect();
                (n.clone(), pts)
            })
            .collect();
        let title = format!("backends, {block} B blocks: throughput vs sessions");
        match plot::throughput(&paths.results.join(&png), &title, &series) {
            Ok(()) => {
                let _ = writeln!(md, "![{title}](bench/results/{png})\n");
            }
            Err(e) => report.note(format!("Plot {png} failed: {e}")),
        }
        md.push_str(
            "| sessions | stack | msgs/s | MiB/s | user µs/msg | sys µs/msg | total µs/msg |\n\
             |---:|---|---:|---:|---:|---:|---:|\n",
        );
        for &n in &plan.pingpong.sessions {
            for name in &names {
                if results.missing.contains_key(name) {
                    let _ = writeln!(md, "| {n} | {name} | not available in this build | | | | |");
                } else if let Some(f) = get(results, block, n, name) {
                    let _ = writeln!(
                        md,
                        "| {n} | {name} | {} | {} | {} | {} | {} |",
                        fmt(f.msgs_s),
                        fmt(f.mib_s),
                        fmt(f.user),
                        fmt(f.sys),
                        fmt(f.total)
                    );
                }
            }
        }
        md.push_str(
            "\nTotal CPU per message, ratios:\n\n\
             | sessions | uring-bare / epoll-bare | ours-uring / ours-epoll-lt | ours-uring / uring-bare | ours-epoll-lt / epoll-bare | ours-epoll-et / ours-epoll-lt | tokio / epoll-bare |\n\
             |---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for &n in &plan.pingpong.sessions {
            let total = |name: &str| get(results, block, n, name).map_or(f64::NAN, |f| f.total);
            let r = |a: &str, b: &str| fmt_ratio(ratio(total(a), total(b)));
            let _ = writeln!(
                md,
                "| {n} | {} | {} | {} | {} | {} | {} |",
                r(URING_BARE, EPOLL_BARE),
                r(OURS_URING, OURS_LT),
                r(OURS_URING, URING_BARE),
                r(OURS_LT, EPOLL_BARE),
                r("ours-epoll-et", OURS_LT),
                r("tokio", EPOLL_BARE)
            );
        }
        md.push('\n');
    }
    md
}

fn render_syscalls(plan: &Plan, results: &Results) -> String {
    let how = match results.syscall_tool {
        "perf" => "perf's syscall tracepoints (`raw_syscalls:sys_enter` for the total, `syscalls:sys_enter_NAME` for the breakdown; `other` is everything not named)",
        "strace" => "`strace -c -f` (perf was not usable; strace distorts epoll's counts)",
        _ => return "### Syscalls per message\n\nNot counted (see the notes).\n\n".into(),
    };
    let mut md = format!(
        "### Syscalls per message\n\nServer syscalls counted with {how}, attached once the server \
         accepts, over one {} s client run per cell; messages as in the ping-pong table.\n\n\
         | cell | stack | msgs | syscalls/msg | top syscalls per msg |\n|---|---|---:|---:|---|\n",
        plan.pingpong.secs
    );
    for (&(block, sessions), by_stack) in &results.syscalls {
        for (name, p) in STACK_ORDER
            .iter()
            .filter_map(|n| by_stack.get(*n).map(|p| (n, p)))
        {
            let _ = writeln!(
                md,
                "| {sessions} x {block} B | {name} | {} | {} | {} |",
                fmt(p.msgs),
                fmt(p.per_msg),
                p.top
            );
        }
    }
    md.push('\n');
    md
}

/// Issue 10's targets for our io_uring backend.
fn render_targets(plan: &Plan, results: &Results) -> String {
    let mut md = String::from("### Targets for `ours-uring` (issue 10)\n\n");
    if let Some(why) = results.missing.get(OURS_URING) {
        let _ = writeln!(
            md,
            "Not checked: `ours-uring` is not available in this build ({why}).\n"
        );
        return md;
    }
    let sys = |cell: &(usize, usize), name: &str| {
        results
            .syscalls
            .get(cell)
            .and_then(|m| m.get(name))
            .map_or(f64::NAN, |p| p.per_msg)
    };
    let total = |block, n, name: &str| get(results, block, n, name).map_or(f64::NAN, |f| f.total);
    let mut rows = Vec::new();
    for cell in &plan.syscall_cells {
        rows.push(TargetRow {
            context: format!("{} x {} B", cell.1, cell.0),
            metric: "syscalls/msg".into(),
            ours: sys(cell, OURS_URING),
            peer: sys(cell, OURS_LT),
            target: Target::AtMost(0.5),
        });
    }
    for &block in &plan.pingpong.blocks {
        for (n, goal) in [(100, 1.0), (1000, 0.95)] {
            if plan.pingpong.sessions.contains(&n) {
                rows.push(TargetRow {
                    context: format!("{n} x {block} B"),
                    metric: "total CPU µs/msg".into(),
                    ours: total(block, n, OURS_URING),
                    peer: total(block, n, OURS_LT),
                    target: Target::AtMost(goal),
                });
            }
        }
    }
    md.push_str(&targets_table("cell", OURS_URING, OURS_LT, &rows));
    md.push('\n');
    let rows: Vec<TargetRow> = plan
        .pingpong
        .blocks
        .iter()
        .filter(|_| plan.pingpong.sessions.contains(&1000))
        .map(|&block| TargetRow {
            context: format!("1000 x {block} B"),
            metric: "total CPU µs/msg".into(),
            ours: total(block, 1000, OURS_URING),
            peer: total(block, 1000, URING_BARE),
            target: Target::AtMost(1.1),
        })
        .collect();
    if !rows.is_empty() {
        md.push_str(&targets_table("cell", OURS_URING, URING_BARE, &rows));
        md.push('\n');
    }
    md
}

fn render_http(results: &Results) -> String {
    let (runs, secs) = results.http_runs;
    let mut md = format!(
        "### HTTP: the echo example on both backends\n\nwrk, 100 connections, 2 threads, {secs} s, \
         median of {runs} run(s); the server runs `--threads {}`.\n\n\
         | load | server | req/s | user µs/req | total µs/req | errors |\n|---|---|---:|---:|---:|---:|\n",
        http::SERVER_THREADS
    );
    let names = ["echo-uring", "echo-epoll"];
    for load in [Load::KeepAlive, Load::Pipelined] {
        for name in names {
            if results.missing.contains_key(name) {
                let _ = writeln!(
                    md,
                    "| {} | {name} | not available in this build | | | |",
                    load.name()
                );
            } else if let Some(f) = results
                .http
                .get(&(load, name.to_string()))
                .and_then(|v| http::figures(v))
            {
                let _ = writeln!(
                    md,
                    "| {} | {name} | {} | {} | {} | {:.0} |",
                    load.name(),
                    fmt(f.req_s),
                    fmt(f.user),
                    fmt(f.total),
                    f.errors
                );
            }
        }
    }
    md.push('\n');
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn stacks_pass_the_poller_flag() {
        let paths = Paths::discover(Some(std::env::temp_dir()));
        let s = stacks(&paths);
        assert_eq!(s[0].name, OURS_URING);
        assert_eq!(&s[0].args(1)[4..], ["--poller", "uring"]);
        assert!(s[0].shown(&paths).ends_with("--threads 1 --poller uring"));
        assert!(http_stacks(&paths)
            .iter()
            .all(|s| s.program.ends_with(Path::new("examples/echo"))));
    }
}

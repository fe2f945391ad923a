//! Syscalls per message / per request, counted by `strace -c`.
//!
//! strace attaches (`-p PID -f`, all threads) only once the server is
//! accepting and detaches (SIGINT) as soon as the client is done, so the
//! counts cover the steady state and not process startup or teardown. strace
//! slows the server down a lot, which changes timing (and so batching); the
//! counts show the shape of each stack's I/O path, not exact production
//! figures.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use rustix::process::Signal;

use super::env::{ensure_tool, Paths};
use super::http::{self, Load};
use super::observed::{observed_run, Observer};
use super::process::run_client;
use super::stats::{field, fmt};
use super::{pingpong, relative, Mode, Report, Stack};

/// Totals parsed from an `strace -c` summary.
#[derive(Debug, Default)]
pub struct Counts {
    /// All calls.
    pub total: f64,
    /// (syscall, calls), most frequent first.
    pub by_name: Vec<(String, f64)>,
}

/// Syscalls per message (or request) of one traced run.
#[derive(Clone, Debug)]
pub struct PerMessage {
    /// Messages or requests the client completed while traced.
    pub msgs: f64,
    /// All syscalls counted.
    pub total: f64,
    /// `total / msgs`.
    pub per_msg: f64,
    /// The four most frequent syscalls with their count per message, e.g.
    /// `writev 0.06, read 0.06`.
    pub top: String,
}

impl PerMessage {
    /// The figures of `counts` over `msgs` messages.
    pub fn new(counts: &Counts, msgs: f64) -> PerMessage {
        let top: Vec<String> = counts
            .by_name
            .iter()
            .take(4)
            .map(|(name, n)| format!("{name} {}", fmt(n / msgs)))
            .collect();
        PerMessage {
            msgs,
            total: counts.total,
            per_msg: counts.total / msgs,
            top: top.join(", "),
        }
    }
}

/// Parses the table `strace -c` writes.
pub fn parse_strace(text: &str) -> Option<Counts> {
    let mut counts = Counts::default();
    let mut seen_total = false;
    for line in text.lines() {
        let toks: Vec<&str> = line.split_whitespace().collect();
        if toks.len() < 5 || toks[0].parse::<f64>().is_err() {
            continue;
        }
        let calls: f64 = toks[3].parse().ok()?;
        let name = toks[toks.len() - 1];
        if name == "total" {
            counts.total = calls;
            seen_total = true;
        } else {
            counts.by_name.push((name.to_string(), calls));
        }
    }
    counts.by_name.sort_by(|a, b| b.1.total_cmp(&a.1));
    seen_total.then_some(counts)
}

/// True once every thread of `pid` has a tracer.
fn traced(_strace: i32, pid: i32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()
        .is_some_and(|tasks| {
            tasks.filter_map(Result::ok).all(|t| {
                std::fs::read_to_string(t.path().join("status"))
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .find(|l| l.starts_with("TracerPid:"))
                            .map(|l| l.trim_end().to_string())
                    })
                    .is_some_and(|l| !l.ends_with(":\t0") && !l.ends_with(" 0"))
            })
        })
}

/// Runs `client` (returning the number of messages) against `stack` with
/// strace attached; returns the syscall counts and the message count.
pub fn traced_run(
    stack: &Stack,
    paths: &Paths,
    file: &Path,
    client: impl FnOnce(u16) -> Result<f64, String>,
) -> Result<(Counts, f64), String> {
    let strace = Observer {
        program: "strace",
        args: &["-c", "-f"],
        attached: &traced,
        attach_timeout: Duration::from_secs(5),
        stop: &|strace| {
            strace.stop_with(Signal::INT);
        },
    };
    let (text, messages) = observed_run(stack, paths, file, &strace, client)?;
    let counts = parse_strace(&text).ok_or("strace summary not understood")?;
    Ok((counts, messages))
}

/// Runs the ping-pong and pipelined-HTTP strace measurements.
pub fn run(mode: Mode, paths: &Paths, report: &mut Report) {
    if let Err(e) = ensure_tool("strace", "strace") {
        report.note(format!("Syscalls: {e}"));
        return;
    }
    let file = paths.results.join("strace.tmp");
    report.command("strace -c -f -o FILE -p SERVER_PID   (attached after the server accepts, detached with SIGINT)");
    let mut pp_stacks = report.available(pingpong::stacks(paths), paths);
    let mut http_stacks = report.available(http::stacks(paths), paths);
    if mode == Mode::Smoke {
        pp_stacks.truncate(1);
        http_stacks.retain(|s| s.name == "epoll_http");
    }
    let client = paths.bins.join("pingpong_client");
    report.command(format!(
        "{} 127.0.0.1:PORT 1 16 10 1",
        relative(&client, paths)
    ));
    let mut md = String::from(
        "## Syscalls\n\nServer syscalls counted by `strace -c -f`, attached to the running server for one \
         client run: ping-pong with 10 sessions, 16 B blocks, 1 s, one client thread; HTTP with wrk \
         pipelined x16 (100 connections, 1 s). strace slows the server, so read these as the shape of the \
         I/O path rather than exact production counts.\n\n\
         | benchmark | server | msgs or reqs | syscalls | syscalls/msg | top syscalls per msg |\n|---|---|---:|---:|---:|---|\n",
    );
    for stack in &pp_stacks {
        let result = traced_run(stack, paths, &file, |port| {
            let args: Vec<String> = [
                format!("127.0.0.1:{port}"),
                "1".into(),
                "16".into(),
                "10".into(),
                "1".into(),
            ]
            .to_vec();
            let out =
                run_client(&client, &args, Duration::from_secs(40)).map_err(|e| e.to_string())?;
            let bytes = field(&out.stdout, "RESULT", "bytes")
                .ok_or_else(|| format!("client failed: {}", out.stderr))?;
            Ok((bytes / 16.0).floor())
        });
        row(&mut md, report, "ping-pong 16 B", stack, result);
    }
    let lua = paths.root.join("bench/lua/pipeline.lua");
    for stack in &http_stacks {
        let result = traced_run(stack, paths, &file, |port| {
            let out = run_client(
                Path::new("wrk"),
                &http::wrk_args(Load::Pipelined, port, 1, &lua),
                Duration::from_secs(30),
            )
            .map_err(|e| e.to_string())?;
            http::parse_wrk(&out.stdout)
                .map(|w| w.requests)
                .ok_or_else(|| format!("wrk failed: {}", out.stderr))
        });
        if let Ok((counts, reqs)) = &result {
            if *reqs >= 1.0 {
                report.shared.http_syscalls.insert(
                    (Load::Pipelined, stack.name.clone()),
                    PerMessage::new(counts, *reqs),
                );
            }
        }
        row(&mut md, report, "HTTP pipelined x16", stack, result);
    }
    let _ = std::fs::remove_file(&file);
    report.sections.push(md);
}

fn row(
    md: &mut String,
    report: &mut Report,
    bench: &str,
    stack: &Stack,
    result: Result<(Counts, f64), String>,
) {
    match result {
        Ok((counts, msgs)) if msgs >= 1.0 => {
            let p = PerMessage::new(&counts, msgs);
            eprintln!(
                "[syscalls] {bench} {}: {:.2} syscalls/msg",
                stack.name, p.per_msg
            );
            let _ = writeln!(
                md,
                "| {bench} | {} | {} | {} | {} | {} |",
                stack.name,
                fmt(msgs),
                fmt(p.total),
                fmt(p.per_msg),
                p.top
            );
        }
        Ok(_) => report.note(format!(
            "Syscalls {bench} `{}`: no message completed under strace.",
            stack.name
        )),
        Err(e) => report.note(format!("Syscalls {bench} `{}`: {e}", stack.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_strace_summary() {
        let text = "% time     seconds  usecs/call     calls    errors syscall\n\
                    ------ ----------- ----------- --------- --------- ----------------\n \
                    58.13    0.232408          11     20063           write\n \
                    0.00    0.000000           0        12         2 accept4\n\
                    ------ ----------- ----------- --------- --------- ----------------\n\
                    100.00    0.399780           9     20075         2 total\n";
        let c = parse_strace(text).unwrap();
        assert_eq!(c.total, 20075.0);
        assert_eq!(c.by_name[0], ("write".to_string(), 20063.0));
        assert_eq!(c.by_name[1], ("accept4".to_string(), 12.0));
    }
}

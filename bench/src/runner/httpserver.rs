//! HTTP server vs hyper: our real `http_server` example (httparse-based
//! parser, Date cache, keep-alive and pipelining rules) against the
//! `hyper_http` peer with the same handler semantics (`/` answers 200
//! `Hello, World!` with `Date`, `Server`, `Content-Type` and
//! `Content-Length`), both with `--threads 2`, under wrk keep-alive and
//! 16-deep pipelining. Reports requests/s, server CPU per request
//! (whole-life rusage), syscalls per request (strace, a separate run) and
//! the ratios ours / hyper against the targets.
//!
//! Under `all` the `http` and `syscalls` sections have already measured
//! both servers with the very same commands; their samples are reused
//! rather than measured twice, and only what is missing (strace under
//! keep-alive) is run here.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::env::{ensure_tool, Paths};
use super::http::{self, figures, Load, Sample};
use super::process::run_client;
use super::stats::{fmt, targets_table, Target, TargetRow};
use super::syscalls::{traced_run, PerMessage};
use super::{Mode, Report, Stack};

/// Our stack's name (as in the `http` section).
pub const OURS: &str = "ours-http_server";
/// The peer's name.
pub const HYPER: &str = "hyper_http";

/// Target for user CPU per request, ours / hyper.
pub const USER_TARGET: Target = Target::AtMost(0.5);
/// Target for total (user + system) CPU per request, ours / hyper.
pub const TOTAL_TARGET: Target = Target::AtMost(1.0);

/// The two stacks compared, taken from the `http` section's list.
pub fn stacks(paths: &Paths) -> Vec<Stack> {
    http::stacks(paths)
        .into_iter()
        .filter(|s| s.name == OURS || s.name == HYPER)
        .collect()
}

/// The targets table for `http_server` against hyper, one block of rows per
/// load; `None` when no load has figures for both.
pub fn targets_from(
    loads: &[Load],
    results: &BTreeMap<(Load, String), Vec<Sample>>,
    syscalls: Option<&BTreeMap<(Load, String), PerMessage>>,
) -> Option<String> {
    let get = |load: Load, name: &str| {
        results
            .get(&(load, name.to_string()))
            .and_then(|v| figures(v))
    };
    let sys = |load: Load, name: &str| {
        syscalls
            .and_then(|m| m.get(&(load, name.to_string())))
            .map_or(f64::NAN, |p| p.per_msg)
    };
    let mut rows = Vec::new();
    for &load in loads {
        let (Some(o), Some(h)) = (get(load, OURS), get(load, HYPER)) else {
            continue;
        };
        let mut row = |metric: &str, ours: f64, peer: f64, target: Target| {
            rows.push(TargetRow {
                context: load.name().into(),
                metric: metric.into(),
                ours,
                peer,
                target,
            })
        };
        row("requests/s", o.req_s, h.req_s, Target::None);
        row("user CPU µs/req", o.user, h.user, USER_TARGET);
        row("total CPU µs/req", o.total, h.total, TOTAL_TARGET);
        if syscalls.is_some() {
            row(
                "syscalls/req",
                sys(load, OURS),
                sys(load, HYPER),
                Target::None,
            );
        }
    }
    if rows.is_empty() {
        return None;
    }
    Some(format!(
        "#### Targets: `http_server` against hyper\n\n\
         Targets (same `--threads {}`, same response): **user CPU per request <= 0.5x hyper; total CPU \
         per request <= hyper** (user + system, whole-life rusage divided by completed requests).\n\n{}\n",
        http::SERVER_THREADS,
        targets_table("load", OURS, HYPER, &rows)
    ))
}

/// Runs (or reuses) the wrk and strace measurements and adds the section.
pub fn run(mode: Mode, paths: &Paths, report: &mut Report) {
    let title = "## HTTP server vs hyper\n\n";
    if let Err(e) = ensure_tool("wrk", "wrk") {
        report.note(format!("HTTP server vs hyper: {e}"));
        report.sections.push(format!(
            "{title}Skipped: `wrk` is not available (see Notes).\n"
        ));
        return;
    }
    let stacks = report.available(stacks(paths), paths);
    if stacks.is_empty() {
        report.sections.push(format!(
            "{title}Skipped: neither `http_server` nor `hyper_http` is built (see Notes).\n"
        ));
        return;
    }
    let loads = [Load::KeepAlive, Load::Pipelined];
    let (runs, secs) = http::wrk_plan(mode);
    for s in &stacks {
        report.command(s.shown(paths));
    }
    http::record_wrk_commands(report, secs);

    // wrk: reuse what the `http` section measured, run the rest (rounds
    // alternate between the two servers as everywhere else).
    let mut results: BTreeMap<(Load, String), Vec<Sample>> = BTreeMap::new();
    let mut reused = 0;
    for &load in &loads {
        for s in &stacks {
            let key = (load, s.name.clone());
            if let Some(cached) = report.shared.http.get(&key) {
                let take: Vec<Sample> = cached.iter().take(runs).copied().collect();
                reused += take.len();
                results.insert(key, take);
            }
        }
        for run in 0..runs {
            for stack in &stacks {
                let key = (load, stack.name.clone());
                if results.get(&key).map_or(0, Vec::len) > run {
                    continue;
                }
                match http::run_once(stack, load, secs, paths) {
                    Ok((w, u)) => {
                        let s = Sample::new(&w, &u);
                        eprintln!(
                            "[httpserver] {} run {}/{runs} {}: {:.0} req/s, {:.2} us/req",
                            load.name(),
                            run + 1,
                            stack.name,
                            s.req_s,
                            s.total_us_req
                        );
                        results.entry(key).or_default().push(s);
                    }
                    Err(e) => report.note(format!(
                        "HTTP server vs hyper `{}` {} run {}: {e}",
                        stack.name,
                        load.name(),
                        run + 1
                    )),
                }
            }
        }
    }

    // strace: reuse the `syscalls` section's pipelined counts, trace the rest.
    let mut sys: BTreeMap<(Load, String), PerMessage> = BTreeMap::new();
    let mut sys_reused = 0;
    match ensure_tool("strace", "strace") {
        Err(e) => report.note(format!("HTTP server vs hyper, syscalls: {e}")),
        Ok(()) => {
            report.command("strace -c -f -o FILE -p SERVER_PID   (attached after the server accepts, detached with SIGINT)");
            let file = paths.results.join("strace-httpserver.tmp");
            let lua = paths.root.join("bench/lua/pipeline.lua");
            for &load in &loads {
                for stack in &stacks {
                    let key = (load, stack.name.clone());
                    if let Some(p) = report.shared.http_syscalls.get(&key) {
                        sys.insert(key, p.clone());
                        sys_reused += 1;
                        continue;
                    }
                    let result = traced_run(stack, paths, &file, |port| {
                        let out = run_client(
                            Path::new("wrk"),
                            &http::wrk_args(load, port, 1, &lua),
                            Duration::from_secs(30),
                        )
                        .map_err(|e| e.to_string())?;
                        http::parse_wrk(&out.stdout)
                            .map(|w| w.requests)
                            .ok_or_else(|| format!("wrk failed: {}", out.stderr))
                    });
                    match result {
                        Ok((counts, reqs)) if reqs >= 1.0 => {
                            let p = PerMessage::new(&counts, reqs);
                            eprintln!(
                                "[httpserver] strace {} {}: {:.2} syscalls/req",
                                load.name(),
                                stack.name,
                                p.per_msg
                            );
                            sys.insert(key, p);
                        }
                        Ok(_) => report.note(format!(
                            "HTTP server vs hyper, syscalls {} `{}`: no request completed under strace.",
                            load.name(),
                            stack.name
                        )),
                        Err(e) => report.note(format!(
                            "HTTP server vs hyper, syscalls {} `{}`: {e}",
                            load.name(),
                            stack.name
                        )),
                    }
                }
            }
            let _ = std::fs::remove_file(&file);
        }
    }

    let mut md = format!(
        "{title}Our `http_server` example (`muduo::http::HttpServer`) against the `hyper_http` peer, both \
         with `--threads {}` and the same handler semantics: `GET /` answers 200 `Hello, World!` with \
         `Date`, `Server`, `Content-Type: text/plain` and `Content-Length`. wrk, 100 connections, 2 \
         threads, {secs} s per run, keep-alive and pipelined x16 (`bench/lua/pipeline.lua`); median of \
         {runs} run(s), runs alternating between the servers. CPU is the server's whole-life user \
         (+system) time from `wait4` divided by the requests wrk completed. Syscalls per request come \
         from a separate 1 s wrk run with `strace -c -f` attached (strace slows the server: read them as \
         the shape of the I/O path).\n\n",
        http::SERVER_THREADS
    );
    if reused > 0 || sys_reused > 0 {
        let _ = writeln!(
            md,
            "Reused from the sections above (same commands, not measured twice): {reused} wrk run(s) \
             from \"HTTP\" and {sys_reused} strace count(s) from \"Syscalls\".\n"
        );
    }
    md.push_str(
        "| load | server | req/s | user µs/req | total µs/req | syscalls/req | top syscalls per req | errors |\n\
         |---|---|---:|---:|---:|---:|---|---:|\n",
    );
    for &load in &loads {
        for s in &stacks {
            let key = (load, s.name.clone());
            let Some(f) = results.get(&key).and_then(|v| figures(v)) else {
                continue;
            };
            let (per, top) = sys
                .get(&key)
                .map_or((f64::NAN, String::new()), |p| (p.per_msg, p.top.clone()));
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {top} | {:.0} |",
                load.name(),
                s.name,
                fmt(f.req_s),
                fmt(f.user),
                fmt(f.total),
                fmt(per),
                f.errors
            );
        }
    }
    md.push('\n');
    match targets_from(&loads, &results, Some(&sys)) {
        Some(t) => md.push_str(&t),
        None => md.push_str(
            "Targets: n/a (no result for both `http_server` and `hyper_http`; see Notes).\n\n",
        ),
    }
    report.sections.push(md);
}

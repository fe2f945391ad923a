//! HTTP section: wrk against our `echo` and `http_server` and the peer HTTP
//! servers, keep-alive and 16-deep pipelined (bench/lua/pipeline.lua).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::env::{ensure_tool, Paths};
use super::process::{free_port, loopback, run_client, Server, Usage};
use super::stats::{fmt, fmt_ratio, median, ratio};
use super::{httpserver, Mode, Report, Stack};

/// Threads for every HTTP server (ours and peers alike).
pub const SERVER_THREADS: usize = 2;

/// The HTTP stacks: our two examples and the three peers.
pub fn stacks(paths: &Paths) -> Vec<Stack> {
    let (ex, bin, t) = (&paths.examples, &paths.bins, SERVER_THREADS);
    vec![
        Stack::new("ours-echo", ex, "echo", t, true),
        Stack::new("ours-http_server", ex, "http_server", t, true),
        Stack::new("tokio_http", bin, "tokio_http", t, false),
        Stack::new("epoll_http", bin, "epoll_http", t, false),
        Stack::new("hyper_http", bin, "hyper_http", t, false),
    ]
}

/// Keep-alive (one request in flight per connection) or pipelined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Load {
    /// Plain wrk, keep-alive.
    KeepAlive,
    /// wrk with bench/lua/pipeline.lua: 16 requests per write.
    Pipelined,
}

impl Load {
    /// Label in tables.
    pub fn name(self) -> &'static str {
        match self {
            Load::KeepAlive => "keep-alive",
            Load::Pipelined => "pipelined x16",
        }
    }
}

/// The wrk arguments for `load` against `port` for `secs` seconds.
pub fn wrk_args(load: Load, port: u16, secs: u32, lua: &Path) -> Vec<String> {
    let lua = (load == Load::Pipelined).then_some(lua);
    wrk_url_args(100, secs, &format!("http://127.0.0.1:{port}/"), lua)
}

/// wrk with `conns` connections on 2 threads for `secs` seconds against
/// `url`, optionally with a Lua script.
pub fn wrk_url_args(conns: usize, secs: u32, url: &str, lua: Option<&Path>) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "-c".into(),
        conns.to_string(),
        "-t".into(),
        "2".into(),
        "-d".into(),
        format!("{secs}s"),
    ];
    if let Some(lua) = lua {
        args.push("-s".into());
        args.push(lua.display().to_string());
    }
    args.push(url.to_string());
    args
}

/// What wrk reported.
#[derive(Clone, Copy, Debug)]
pub struct WrkResult {
    /// Completed requests (responses parsed).
    pub requests: f64,
    /// `Requests/sec`.
    pub req_s: f64,
    /// Socket errors plus non-2xx/3xx responses.
    pub errors: f64,
}

/// Parses wrk's text summary.
pub fn parse_wrk(text: &str) -> Option<WrkResult> {
    let mut requests = None;
    let mut req_s = None;
    let mut errors = 0.0;
    for line in text.lines().map(str::trim) {
        if let Some((n, _)) = line.split_once(" requests in ") {
            requests = n.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("Requests/sec:") {
            req_s = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            errors += v
                .split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<f64>().ok())
                .sum::<f64>();
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            errors += v.trim().parse::<f64>().unwrap_or(0.0);
        }
    }
    Some(WrkResult {
        requests: requests?,
        req_s: req_s?,
        errors,
    })
}

/// Starts `stack`, runs wrk, stops and reaps the server.
pub fn run_once(
    stack: &Stack,
    load: Load,
    secs: u32,
    paths: &Paths,
) -> Result<(WrkResult, Usage), String> {
    let port = free_port().map_err(|e| format!("free port: {e}"))?;
    let mut server = Server::start(&stack.program, &stack.args(port), &paths.log)
        .map_err(|e| format!("spawn: {e}"))?;
    server.wait_ready(loopback(port), Duration::from_secs(5))?;
    let lua = paths.root.join("bench/lua/pipeline.lua");
    let out = run_client(
        Path::new("wrk"),
        &wrk_args(load, port, secs, &lua),
        Duration::from_secs(u64::from(secs) + 20),
    );
    let usage = server.stop();
    let out = out.map_err(|e| format!("wrk: {e}"))?;
    let parsed = parse_wrk(&out.stdout)
        .ok_or_else(|| format!("wrk output not understood: {}", out.stderr))?;
    if parsed.requests < 1.0 {
        return Err("no request completed".into());
    }
    Ok((parsed, usage))
}

/// One wrk run's figures.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Requests per second (wrk).
    pub req_s: f64,
    /// Server user CPU per completed request, µs.
    pub user_us_req: f64,
    /// Server user+system CPU per completed request, µs.
    pub total_us_req: f64,
    /// Socket errors plus non-2xx/3xx responses.
    pub errors: f64,
}

impl Sample {
    /// The figures of a run that completed `w.requests` requests while the
    /// server used `u`.
    pub fn new(w: &WrkResult, u: &Usage) -> Sample {
        Sample {
            req_s: w.req_s,
            user_us_req: u.user_us as f64 / w.requests,
            total_us_req: u.total_us() as f64 / w.requests,
            errors: w.errors,
        }
    }
}

/// Medians over a cell's runs.
#[derive(Clone, Copy, Debug)]
pub struct Figures {
    /// Requests per second.
    pub req_s: f64,
    /// Server user CPU per request, µs.
    pub user: f64,
    /// Server user+system CPU per request, µs.
    pub total: f64,
    /// Errors per run.
    pub errors: f64,
}

/// Per-metric medians of `samples`; `None` when there are none.
pub fn figures(samples: &[Sample]) -> Option<Figures> {
    if samples.is_empty() {
        return None;
    }
    let m = |f: fn(&Sample) -> f64| median(&samples.iter().map(f).collect::<Vec<_>>());
    Some(Figures {
        req_s: m(|s| s.req_s),
        user: m(|s| s.user_us_req),
        total: m(|s| s.total_us_req),
        errors: m(|s| s.errors),
    })
}

/// Runs every load against every stack (alternating stacks within each
/// round) and adds the section.
/// Runs per cell and seconds per wrk run. Shared with the `httpserver`
/// section, which reuses these runs and so must follow the same plan.
pub fn wrk_plan(mode: Mode) -> (usize, u32) {
    match mode {
        Mode::Smoke => (1, 1),
        Mode::Short | Mode::Full => (3, 3),
    }
}

/// Records the two wrk command lines both HTTP sections run.
pub fn record_wrk_commands(report: &mut Report, secs: u32) {
    report.command(format!("wrk -c 100 -t 2 -d {secs}s http://127.0.0.1:PORT/"));
    report.command(format!(
        "wrk -c 100 -t 2 -d {secs}s -s bench/lua/pipeline.lua http://127.0.0.1:PORT/"
    ));
}

pub fn run(mode: Mode, paths: &Paths, report: &mut Report) {
    if let Err(e) = ensure_tool("wrk", "wrk") {
        report.note(format!("HTTP: {e}"));
        return;
    }
    let loads = match mode {
        Mode::Smoke => vec![Load::Pipelined],
        Mode::Short | Mode::Full => vec![Load::KeepAlive, Load::Pipelined],
    };
    let (runs, secs) = wrk_plan(mode);
    let stacks = report.available(stacks(paths), paths);
    for s in &stacks {
        report.command(s.shown(paths));
    }
    record_wrk_commands(report, secs);
    let mut results: BTreeMap<(Load, String), Vec<Sample>> = BTreeMap::new();
    for &load in &loads {
        for run in 0..runs {
            for stack in &stacks {
                match run_once(stack, load, secs, paths) {
                    Ok((w, u)) => {
                        let s = Sample::new(&w, &u);
                        eprintln!(
                            "[http] {} run {}/{runs} {}: {:.0} req/s",
                            load.name(),
                            run + 1,
                            stack.name,
                            s.req_s
                        );
                        results
                            .entry((load, stack.name.clone()))
                            .or_default()
                            .push(s);
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
    let mut md = render(&loads, runs, secs, &stacks, &results);
    let targets = httpserver::targets_from(&loads, &results, None);
    if report.shared.http_targets_elsewhere {
        md.push_str(
            "The targets for `ours-http_server` against `hyper_http` are checked in the section \
             \"HTTP server vs hyper\" below, from these same runs.\n\n",
        );
    } else if let Some(t) = targets {
        md.push_str(&t);
    }
    report.sections.push(md);
    for (key, samples) in results {
        report.shared.http.entry(key).or_default().extend(samples);
    }
}

fn render(
    loads: &[Load],
    runs: usize,
    secs: u32,
    stacks: &[Stack],
    results: &BTreeMap<(Load, String), Vec<Sample>>,
) -> String {
    let mut md = format!(
        "## HTTP\n\nwrk, 100 connections, 2 threads, {secs} s; median of {runs} run(s). Every server runs with \
         `--threads {SERVER_THREADS}`. CPU is the server's whole-life user (+system) time divided by the \
         requests wrk completed. Ratios are ours / peer.\n\n"
    );
    let get = |load: Load, name: &str| {
        results
            .get(&(load, name.to_string()))
            .and_then(|v| figures(v))
            .map(|f| (f.req_s, f.user, f.total, f.errors))
    };
    for &load in loads {
        let _ = writeln!(md, "### {}\n\n| server | req/s | user µs/req | total µs/req | errors |\n|---|---:|---:|---:|---:|", load.name());
        for s in stacks {
            if let Some((rps, user, total, errors)) = get(load, &s.name) {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {errors:.0} |",
                    s.name,
                    fmt(rps),
                    fmt(user),
                    fmt(total)
                );
            }
        }
        md.push('\n');
        let mut ratios = String::new();
        for ours in stacks.iter().filter(|s| s.ours) {
            let Some(o) = get(load, &ours.name) else {
                continue;
            };
            for peer in stacks.iter().filter(|s| !s.ours) {
                let Some(p) = get(load, &peer.name) else {
                    continue;
                };
                let _ = writeln!(
                    ratios,
                    "| {} / {} | {} | {} | {} |",
                    ours.name,
                    peer.name,
                    fmt_ratio(ratio(o.0, p.0)),
                    fmt_ratio(ratio(o.1, p.1)),
                    fmt_ratio(ratio(o.2, p.2))
                );
            }
        }
        if ratios.is_empty() {
            md.push_str("Ratios: n/a (no result for our echo/http_server).\n\n");
        } else {
            md.push_str(
                "| ours / peer | req/s | user CPU/req | total CPU/req |\n|---|---:|---:|---:|\n",
            );
            md.push_str(&ratios);
            md.push('\n');
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_summary() {
        let text = "Running 3s test @ http://127.0.0.1:1/\n  2 threads and 100 connections\n  \
                    123456 requests in 3.00s, 10.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n\
                    Requests/sec:  41152.00\nTransfer/sec:      3.33MB\n";
        let r = parse_wrk(text).unwrap();
        assert_eq!(r.requests, 123456.0);
        assert_eq!(r.req_s, 41152.0);
        assert_eq!(r.errors, 3.0);
    }
}

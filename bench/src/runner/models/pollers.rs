//! Part 2: select vs poll vs epoll as idle connections grow.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use rustix::process::Signal;

use super::super::env::Paths;
use super::super::plot;
use super::super::process::{
    fd_count, proc_cpu_us, run_client, start_interactive, Interactive, Server,
};
use super::super::relative;
use super::super::stats::{field, fmt, median};
use super::{pollers, probe, start, Model, Page, Plan, ACTIVE, CLIENT_THREADS};

/// Part 2 figures of one run.
#[derive(Clone, Copy)]
pub(super) struct PollCell {
    pub(super) held: f64,
    pub(super) msgs_per_s: f64,
    pub(super) cpu_us: f64,
    pub(super) syscalls: f64,
}

pub(super) fn perf_available() -> bool {
    std::process::Command::new("perf")
        .args([
            "stat",
            "-e",
            "raw_syscalls:sys_enter",
            "-x",
            ",",
            "--",
            "true",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub(super) fn run_poll_cell(
    model: &Model,
    idle: usize,
    secs: f64,
    perf: bool,
    paths: &Paths,
) -> Result<PollCell, String> {
    let (server, port) = start(model, paths)?;
    let pid = server.pid();
    // Let the readiness probe's connection close before counting fds.
    std::thread::sleep(Duration::from_millis(200));
    let fds_before = fd_count(pid).ok_or("cannot count server fds")?;
    let args = vec![format!("127.0.0.1:{port}"), idle.to_string(), "600".into()];
    let idle_client = start_interactive(&paths.bins.join("c10k_client"), &args, &paths.log)
        .map_err(|e| format!("c10k_client: {e}"))?;
    let limit = Instant::now() + Duration::from_secs(90);
    let mut ready = false;
    while !ready && Instant::now() < limit {
        match idle_client.lines.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => ready = line == "READY",
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let stop_idle = |mut c: Interactive| {
        let _ = c.child.kill();
        let _ = c.child.wait();
    };
    if !ready {
        stop_idle(idle_client);
        return Err("c10k_client never became READY".into());
    }
    // Wait until the server has accepted them all (fd count), at most 30 s.
    let accept_limit = Instant::now() + Duration::from_secs(30);
    while fd_count(pid).unwrap_or(0) < fds_before + idle && Instant::now() < accept_limit {
        std::thread::sleep(Duration::from_millis(20));
    }
    let held = fd_count(pid).unwrap_or(0).saturating_sub(fds_before) as f64;
    let perf_file = paths.results.join("models_perf.tmp");
    let mut perf_proc = if perf {
        let args: Vec<String> = ["stat", "-e", "raw_syscalls:sys_enter", "-x", ",", "-o"]
            .iter()
            .map(|s| s.to_string())
            .chain([
                perf_file.display().to_string(),
                "-p".into(),
                pid.to_string(),
            ])
            .collect();
        let p = Server::start(Path::new("perf"), &args, &paths.log).ok();
        // perf attaches in a few milliseconds; give it margin.
        std::thread::sleep(Duration::from_millis(300));
        p
    } else {
        None
    };
    let cpu_before = proc_cpu_us(pid).ok_or("cannot read server CPU")?;
    let pp_args = vec![
        format!("127.0.0.1:{port}"),
        CLIENT_THREADS.to_string(),
        "16".into(),
        ACTIVE.to_string(),
        secs.to_string(),
    ];
    let out = run_client(
        &paths.bins.join("pingpong_client"),
        &pp_args,
        Duration::from_secs_f64(secs + 40.0),
    );
    let cpu_after = proc_cpu_us(pid).ok_or("cannot read server CPU")?;
    let syscalls = perf_proc.as_mut().and_then(|p| {
        p.stop_with(Signal::INT);
        let text = std::fs::read_to_string(&perf_file).ok()?;
        let _ = std::fs::remove_file(&perf_file);
        parse_perf(&text)
    });
    stop_idle(idle_client);
    server.stop();
    let out = out.map_err(|e| format!("pingpong_client: {e}"))?;
    let bytes = field(&out.stdout, "RESULT", "bytes")
        .ok_or_else(|| format!("pingpong_client failed: {}", out.stderr))?;
    let msgs = (bytes / 16.0).floor();
    if msgs < 1.0 {
        return Err("no message came back".into());
    }
    Ok(PollCell {
        held,
        msgs_per_s: msgs / secs,
        cpu_us: (cpu_after.total_us() - cpu_before.total_us()) as f64 / msgs,
        syscalls: syscalls.map_or(f64::NAN, |n| n / msgs),
    })
}

/// The count from `perf stat -x,` output (`COUNT,,raw_syscalls:sys_enter,...`).
pub(super) fn parse_perf(text: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.contains("raw_syscalls:sys_enter"))
        .and_then(|l| l.split(',').next())
        .and_then(|n| n.trim().parse().ok())
}

pub(super) type PollResults = Vec<(&'static str, Vec<(usize, Result<PollCell, String>)>)>;

pub(super) fn run_pollers(plan: &Plan, paths: &Paths, page: &mut Page) -> PollResults {
    let perf = perf_available();
    if !perf {
        page.note("`perf` is missing or may not trace syscalls here: syscalls per message are n/a (apt-get install linux-perf, run as root).");
    }
    page.command(format!(
        "{} 127.0.0.1:PORT N 600   (N idle connections)",
        relative(&paths.bins.join("c10k_client"), paths)
    ));
    page.command(format!(
        "{} 127.0.0.1:PORT {CLIENT_THREADS} 16 {ACTIVE} {}   (the active sessions)",
        relative(&paths.bins.join("pingpong_client"), paths),
        plan.secs
    ));
    page.command(
        "perf stat -e raw_syscalls:sys_enter -x , -p SERVER_PID   (attached for the active phase)",
    );
    let mut results = PollResults::new();
    for model in pollers(paths) {
        page.command(model.shown(paths));
        let mut row = Vec::new();
        if let Err(e) = probe(&model, paths) {
            page.note(format!("poller `{}` not available: {e}", model.name));
            results.push((
                model.name,
                plan.idle
                    .iter()
                    .map(|&n| (n, Err("not available".into())))
                    .collect(),
            ));
            continue;
        }
        for &idle in &plan.idle {
            // select(2) cannot watch fds >= FD_SETSIZE: the idle and active
            // connections, the listener and stdio must all fit below 1024.
            if model.name == "select" && idle + ACTIVE + 8 > libc::FD_SETSIZE {
                row.push((
                    idle,
                    Err(format!("n/a: over FD_SETSIZE ({})", libc::FD_SETSIZE)),
                ));
                continue;
            }
            let mut cells = Vec::new();
            let mut last_err = String::new();
            for _ in 0..plan.poll_runs {
                match run_poll_cell(&model, idle, plan.secs, perf, paths) {
                    Ok(c) => cells.push(c),
                    Err(e) => last_err = e,
                }
            }
            if cells.is_empty() {
                page.note(format!(
                    "poller `{}` with {idle} idle connections: {last_err}",
                    model.name
                ));
                row.push((idle, Err(last_err)));
                continue;
            }
            let m = |f: fn(&PollCell) -> f64| median(&cells.iter().map(f).collect::<Vec<_>>());
            let c = PollCell {
                held: m(|c| c.held),
                msgs_per_s: m(|c| c.msgs_per_s),
                cpu_us: m(|c| c.cpu_us),
                syscalls: m(|c| c.syscalls),
            };
            eprintln!(
                "[models] poller {} idle={idle}: {:.0} msg/s, {:.2} us/msg, {:.2} syscalls/msg",
                model.name, c.msgs_per_s, c.cpu_us, c.syscalls
            );
            row.push((idle, Ok(c)));
        }
        results.push((model.name, row));
    }
    results
}

pub(super) fn pollers_table(results: &PollResults) -> String {
    let mut md = String::from(
        "| idle conns | server | conns held | echoed msgs/s | server CPU µs/msg | syscalls/msg |\n|---:|---|---:|---:|---:|---:|\n",
    );
    let idles: Vec<usize> = results
        .first()
        .map(|(_, r)| r.iter().map(|(n, _)| *n).collect())
        .unwrap_or_default();
    for idle in idles {
        for (name, row) in results {
            match row.iter().find(|(n, _)| *n == idle).map(|(_, c)| c) {
                Some(Ok(c)) => {
                    let _ = writeln!(
                        md,
                        "| {idle} | {name} | {} | {} | {} | {} |",
                        c.held,
                        fmt(c.msgs_per_s),
                        fmt(c.cpu_us),
                        fmt(c.syscalls)
                    );
                }
                Some(Err(e)) => {
                    let _ = writeln!(md, "| {idle} | {name} | {e} | | | |");
                }
                None => {}
            }
        }
    }
    md
}

pub(super) fn plot_pollers(results: &PollResults, paths: &Paths, page: &mut Page) -> String {
    let pick = |f: fn(&PollCell) -> f64| -> Vec<(String, Vec<(f64, f64)>)> {
        results
            .iter()
            .map(|(name, row)| {
                let pts = row
                    .iter()
                    .filter_map(|(n, c)| c.as_ref().ok().map(|c| (*n as f64, f(c))))
                    .collect();
                (name.to_string(), pts)
            })
            .collect()
    };
    let mut md = String::new();
    for (file, title, y_desc, data) in [
        (
            "models_pollers_cpu.png",
            "server CPU per echoed message against idle connections",
            "µs per message",
            pick(|c| c.cpu_us),
        ),
        (
            "models_pollers_syscalls.png",
            "syscalls per echoed message against idle connections",
            "syscalls per message",
            pick(|c| c.syscalls),
        ),
    ] {
        let axes = plot::Axes {
            title,
            x_desc: "idle connections (log scale)",
            y_desc,
            log_y: false,
        };
        match plot::lines(&paths.results.join(file), &axes, &data) {
            Ok(()) => {
                let _ = write!(md, "![{title}](bench/results/{file}) ");
            }
            Err(e) => page.note(format!("plot {file}: {e}")),
        }
    }
    md.push('\n');
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_perf_csv() {
        let text = "# started on Thu Dec  3 10:00:00 2026\n\n123456,,raw_syscalls:sys_enter,2000000,100.00,,\n";
        assert_eq!(parse_perf(text), Some(123456.0));
        assert_eq!(parse_perf("<not counted>,,raw_syscalls:sys_enter"), None);
    }
}

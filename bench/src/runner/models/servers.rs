//! Part 1: the seed's server models under a CPU-bound and an I/O-bound load.

use std::fmt::Write as _;
use std::time::Duration;

use super::super::env::Paths;
use super::super::plot;
use super::super::process::{proc_status_kib, run_client};
use super::super::stats::{field, fmt, median};
use super::{models, probe, start, Model, Page, Plan, Workload, CLIENT_THREADS};

/// Part 1 figures of one run.
#[derive(Clone, Copy, Default)]
pub(super) struct Cell {
    pub(super) per_sec: f64,
    pub(super) p50_us: f64,
    pub(super) p99_us: f64,
    pub(super) cpu_us: f64,
    pub(super) threads: f64,
    pub(super) rss_kib: f64,
    pub(super) wrong: f64,
}

impl Cell {
    /// Cores the server kept busy: CPU per request times requests per second.
    pub(super) fn cores(&self) -> f64 {
        self.cpu_us * self.per_sec / 1e6
    }
}

pub(super) fn run_cell(
    model: &Model,
    workload: Workload,
    conns: usize,
    secs: f64,
    paths: &Paths,
) -> Result<Cell, String> {
    let (server, port) = start(model, paths)?;
    let pid = server.pid();
    let client = paths.bins.join("models_client");
    let args: Vec<String> = vec![
        format!("127.0.0.1:{port}"),
        workload.name().into(),
        conns.to_string(),
        secs.to_string(),
        CLIENT_THREADS.to_string(),
    ];
    let handle = std::thread::spawn(move || {
        run_client(&client, &args, Duration::from_secs_f64(secs + 60.0))
    });
    // Peak threads and RSS while the client runs.
    let (mut threads, mut rss) = (0u64, 0u64);
    while !handle.is_finished() {
        threads = threads.max(proc_status_kib(pid, "Threads").unwrap_or(0));
        rss = rss.max(proc_status_kib(pid, "VmRSS").unwrap_or(0));
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = handle
        .join()
        .map_err(|_| "client thread panicked".to_string())?
        .map_err(|e| format!("client: {e}"))?;
    let usage = server.stop();
    let get = |k| field(&out.stdout, "RESULT", k);
    let requests = get("requests")
        .filter(|_| out.success)
        .ok_or_else(|| format!("client failed: {}", out.stderr))?;
    if requests < 1.0 {
        return Err("no request was answered".into());
    }
    Ok(Cell {
        per_sec: get("per_sec").unwrap_or(f64::NAN),
        p50_us: get("p50_us").unwrap_or(f64::NAN),
        p99_us: get("p99_us").unwrap_or(f64::NAN),
        cpu_us: usage.total_us() as f64 / requests,
        threads: threads as f64,
        rss_kib: rss as f64,
        wrong: get("wrong").unwrap_or(0.0) + get("errors").unwrap_or(0.0),
    })
}

pub(super) fn median_cell(cells: &[Cell]) -> Cell {
    let m = |f: fn(&Cell) -> f64| median(&cells.iter().map(f).collect::<Vec<_>>());
    Cell {
        per_sec: m(|c| c.per_sec),
        p50_us: m(|c| c.p50_us),
        p99_us: m(|c| c.p99_us),
        cpu_us: m(|c| c.cpu_us),
        threads: m(|c| c.threads),
        rss_kib: m(|c| c.rss_kib),
        wrong: cells.iter().map(|c| c.wrong).sum(),
    }
}

/// Part 1 results: (model name, seed name, per connection count a cell or why not).
pub(super) type Results = Vec<(
    &'static str,
    &'static str,
    Vec<(usize, Result<Cell, String>)>,
)>;

pub(super) fn run_models(
    workload: Workload,
    plan: &Plan,
    paths: &Paths,
    page: &mut Page,
) -> Results {
    let w = workload.name();
    let mut available = Vec::new();
    for model in models(workload, paths) {
        page.command(model.shown(paths));
        match probe(&model, paths) {
            Ok(()) => available.push(model),
            Err(e) => page.note(format!("{w} `{}` not available: {e}", model.name)),
        }
    }
    // Runs alternate between models (A B C A B C ...) so that the shared
    // machine's drifts hit every model alike.
    let mut samples: Vec<Vec<Vec<Cell>>> =
        vec![vec![Vec::new(); plan.conns.len()]; available.len()];
    let mut errors: Vec<Vec<String>> = vec![vec![String::new(); plan.conns.len()]; available.len()];
    for (k, &conns) in plan.conns.iter().enumerate() {
        for _ in 0..plan.runs {
            for (m, model) in available.iter().enumerate() {
                match run_cell(model, workload, conns, plan.secs, paths) {
                    Ok(c) => samples[m][k].push(c),
                    Err(e) => errors[m][k] = e,
                }
            }
        }
    }
    let mut results = Results::new();
    for model in models(workload, paths) {
        let Some(m) = available.iter().position(|a| a.name == model.name) else {
            let row = plan
                .conns
                .iter()
                .map(|&c| (c, Err("not available".into())))
                .collect();
            results.push((model.name, model.seed, row));
            continue;
        };
        let mut row = Vec::new();
        for (k, &conns) in plan.conns.iter().enumerate() {
            let cell = if samples[m][k].is_empty() {
                let e = std::mem::take(&mut errors[m][k]);
                page.note(format!("{w} `{}` at {conns} connections: {e}", model.name));
                Err(e)
            } else {
                let c = median_cell(&samples[m][k]);
                eprintln!(
                    "[models] {w} {} c={conns}: {:.0} req/s p99 {:.0} us cpu {:.1} us/req threads {} rss {} KiB",
                    model.name, c.per_sec, c.p99_us, c.cpu_us, c.threads, c.rss_kib
                );
                if c.wrong > 0.0 {
                    page.note(format!(
                        "{w} `{}` at {conns} connections: {} wrong answers or connection errors",
                        model.name, c.wrong
                    ));
                }
                Ok(c)
            };
            row.push((conns, cell));
        }
        results.push((model.name, model.seed, row));
    }
    results
}

pub(super) fn models_table(results: &Results) -> String {
    let mut md = String::from(
        "| model | seed's name | conns | req/s | p50 µs | p99 µs | server CPU µs/req | server cores used | threads | RSS MiB |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (name, seed, row) in results {
        for (conns, cell) in row {
            match cell {
                Ok(c) => {
                    let _ = writeln!(
                        md,
                        "| {name} | {seed} | {conns} | {} | {} | {} | {} | {} | {} | {} |",
                        fmt(c.per_sec),
                        fmt(c.p50_us),
                        fmt(c.p99_us),
                        fmt(c.cpu_us),
                        fmt(c.cores()),
                        c.threads,
                        fmt(c.rss_kib / 1024.0)
                    );
                }
                Err(e) => {
                    let _ = writeln!(md, "| {name} | {seed} | {conns} | {e} | | | | | | |");
                }
            }
        }
    }
    md
}

pub(super) fn series(results: &Results, f: fn(&Cell) -> f64) -> Vec<(String, Vec<(f64, f64)>)> {
    results
        .iter()
        .map(|(name, _, row)| {
            let pts = row
                .iter()
                .filter_map(|(c, cell)| cell.as_ref().ok().map(|cell| (*c as f64, f(cell))))
                .collect();
            (name.to_string(), pts)
        })
        .collect()
}

pub(super) fn plot_models(
    workload: Workload,
    results: &Results,
    paths: &Paths,
    page: &mut Page,
) -> String {
    let mut md = String::new();
    let w = workload.name();
    let charts = [
        (
            "throughput",
            "requests/s",
            false,
            series(results, |c| c.per_sec),
        ),
        (
            "p99",
            "p99 latency (µs, log scale)",
            true,
            series(results, |c| c.p99_us),
        ),
    ];
    for (what, y_desc, log_y, data) in charts {
        let file = format!("models_{w}_{what}.png");
        let axes = plot::Axes {
            title: &format!("{w}: {what} against connections"),
            x_desc: "connections (log scale)",
            y_desc,
            log_y,
        };
        match plot::lines(&paths.results.join(&file), &axes, &data) {
            Ok(()) => {
                let _ = write!(md, "![{w} {what}](bench/results/{file}) ");
            }
            Err(e) => page.note(format!("plot {file}: {e}")),
        }
    }
    md.push('\n');
    md
}

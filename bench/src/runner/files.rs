//! Files: the seed's three ways of sending a file, then static files
//! against nginx.
//!
//! **Transfer modes.** Our `filetransfer` example sends a whole file to
//! every client that connects, then closes; `--mode read-write` (read 64 KiB
//! into user memory, send it), `mmap-write` (send slices of a mapping) or
//! `sendfile`. The file (1 GiB by default) is written once into a scratch
//! directory under the system temp dir, synced and read back so that it
//! sits in the page cache, and deleted at the end. `file_client` opens N
//! connections at once and reads each to EOF; throughput is what it
//! received over its wall time, and the server's whole-life user and
//! system CPU (wait4) is divided by the GiB delivered (N x file size). The
//! server is waited for through `/proc/net/tcp` rather than with a probe
//! connection, which would make it start sending the file.
//!
//! **Static files.** Our `http_server --root DIR` (serving `/files/...`
//! with sendfile) against nginx with `sendfile on`, both on 2 threads/
//! workers, under wrk: a 1 MiB file with 16 connections and a 100 MiB file
//! with 4. nginx runs as a child process in the foreground (`daemon off`)
//! with `master_process on` and `worker_processes 2`. Its workers are the
//! master's children and the master reaps them before it exits on SIGTERM;
//! `wait4` on the master then returns the CPU of master plus workers
//! (RUSAGE_BOTH semantics of a reaped child). Every run checks this: the
//! workers' CPU read from /proc just before the stop must be contained in
//! what `wait4` reports, or the run is flagged in the notes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::env::{ensure_tool, Paths};
use super::http::{self, figures, Sample};
use super::process::{children, free_port, loopback, proc_cpu_us, run_client, Server, Usage};
use super::stats::{field, fmt, median, targets_table, Target, TargetRow};
use super::{plot, relative, Mode, Options, Report, Stack};

/// The transfer modes of the `filetransfer` example, in run order.
pub const MODES: [&str; 3] = ["read-write", "mmap-write", "sendfile"];

/// `--threads` for our servers; nginx gets as many workers.
pub const THREADS: usize = 2;

const MIB: u64 = 1 << 20;
const GIB: f64 = (1u64 << 30) as f64;

/// What to run for a mode.
pub struct Plan {
    /// Concurrent clients of the transfer runs.
    pub clients: Vec<usize>,
    /// Runs per (clients, mode) cell.
    pub runs: usize,
    /// Size of the transferred file, MiB.
    pub size_mib: u64,
    /// Runs per (file, server) cell of the static-file comparison.
    pub wrk_runs: usize,
    /// Seconds per wrk run.
    pub wrk_secs: u32,
}

/// The plan for `mode`; `--file-size-mib` overrides the file size.
pub fn plan(mode: Mode, opts: &Options) -> Plan {
    let (clients, runs, size_mib, wrk_runs, wrk_secs) = match mode {
        Mode::Smoke => (vec![4], 1, 64, 1, 1),
        Mode::Short => (vec![1, 4, 16], 3, 1024, 3, 2),
        Mode::Full => (vec![1, 4, 16], 5, 1024, 3, 4),
    };
    Plan {
        clients,
        runs,
        size_mib: opts.file_size_mib.unwrap_or(size_mib).max(1),
        wrk_runs,
        wrk_secs,
    }
}

/// A scratch directory for the test files, removed (with everything in
/// it) when dropped, whatever happened in between.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn create() -> io::Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("muduo-bench-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("root"))?;
        // nginx workers drop root privileges (user nobody): the tree must be
        // readable by everyone.
        for d in [&dir, &dir.join("root")] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))?;
        }
        Ok(Scratch { dir })
    }

    fn root(&self) -> PathBuf {
        self.dir.join("root")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes `bytes` of non-repeating data to `path`, syncs it (so background
/// writeback does not run during the measurements) and reads it back once
/// so that it is in the page cache.
fn make_file(path: &Path, bytes: u64) -> io::Result<()> {
    let mut chunk = vec![0u8; MIB as usize];
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for b in chunk.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let mut f = File::create(path)?;
    let mut left = bytes;
    let mut i = 0u64;
    while left > 0 {
        chunk[..8].copy_from_slice(&i.to_le_bytes());
        let n = left.min(MIB) as usize;
        f.write_all(&chunk[..n])?;
        left -= n as u64;
        i += 1;
    }
    f.sync_all()?;
    drop(f);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))?;
    let mut f = File::open(path)?;
    while f.read(&mut chunk)? > 0 {}
    Ok(())
}

/// One transfer run's figures.
#[derive(Clone, Copy, Debug)]
struct Transfer {
    mib_s: f64,
    user_s_gib: f64,
    sys_s_gib: f64,
}

/// Medians of a (clients, mode) cell.
#[derive(Clone, Copy, Debug)]
struct TransferFigures {
    mib_s: f64,
    user: f64,
    sys: f64,
    total: f64,
}

fn transfer_figures(v: &[Transfer]) -> Option<TransferFigures> {
    if v.is_empty() {
        return None;
    }
    let m = |f: fn(&Transfer) -> f64| median(&v.iter().map(f).collect::<Vec<_>>());
    Some(TransferFigures {
        mib_s: m(|s| s.mib_s),
        user: m(|s| s.user_s_gib),
        sys: m(|s| s.sys_s_gib),
        total: m(|s| s.user_s_gib + s.sys_s_gib),
    })
}

/// Starts `filetransfer --mode mode`, lets `clients` clients drain it,
/// stops and reaps it.
fn transfer_once(
    server_bin: &Path,
    file: &Path,
    size: u64,
    mode: &str,
    clients: usize,
    paths: &Paths,
) -> Result<Transfer, String> {
    let port = free_port().map_err(|e| format!("free port: {e}"))?;
    let args: Vec<String> = vec![
        "--addr".into(),
        format!("127.0.0.1:{port}"),
        "--file".into(),
        file.display().to_string(),
        "--mode".into(),
        mode.into(),
        "--threads".into(),
        THREADS.to_string(),
    ];
    let mut server =
        Server::start(server_bin, &args, &paths.log).map_err(|e| format!("spawn: {e}"))?;
    server.wait_listening(port, Duration::from_secs(5))?;
    let client_args = vec![
        format!("127.0.0.1:{port}"),
        clients.to_string(),
        "--expect".into(),
        size.to_string(),
    ];
    // Generous: 20 MiB/s would be very slow even on a busy machine.
    let total = size * clients as u64;
    let timeout = Duration::from_secs(60 + total / (20 * MIB));
    let out = run_client(&paths.bins.join("file_client"), &client_args, timeout);
    let usage = server.stop();
    let out = out.map_err(|e| format!("file_client: {e}"))?;
    if !out.success {
        return Err(format!("file_client failed: {}", out.stderr));
    }
    let bytes = field(&out.stdout, "RESULT", "bytes").ok_or("no RESULT line")?;
    let secs = field(&out.stdout, "RESULT", "secs").ok_or("no RESULT line")?;
    if bytes < 1.0 || secs <= 0.0 {
        return Err("nothing transferred".into());
    }
    let gib = bytes / GIB;
    Ok(Transfer {
        mib_s: bytes / MIB as f64 / secs,
        user_s_gib: usage.user_us as f64 / 1e6 / gib,
        sys_s_gib: usage.sys_us as f64 / 1e6 / gib,
    })
}

/// A file of the static-file comparison.
struct StaticFile {
    /// File name in the served directory.
    name: String,
    /// Size in MiB.
    mib: u64,
    /// wrk connections.
    conns: usize,
}

/// A static-file server.
enum StaticKind {
    /// Our `http_server --root DIR` (files under `/files/`).
    Ours(PathBuf),
    /// nginx (files under `/`).
    Nginx(PathBuf),
}

struct StaticStack {
    name: &'static str,
    kind: StaticKind,
}

/// The nginx binary: on PATH, or in an sbin directory that may not be on it.
fn find_nginx() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
}

/// The nginx configuration for one run: foreground, master plus `THREADS`
/// workers, sendfile, no access log, everything it writes inside `dir`.
fn nginx_conf(nginx: &Path, dir: &Path, root: &Path, port: u16) -> String {
    // Temp-path directives exist only for compiled-in modules.
    let built = Command::new(nginx)
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .unwrap_or_default();
    let d = dir.display();
    let mut temps = format!("    client_body_temp_path {d}/body;\n");
    for m in ["proxy", "fastcgi", "uwsgi", "scgi"] {
        if !built.contains(&format!("--without-http_{m}_module")) {
            let _ = writeln!(temps, "    {m}_temp_path {d}/{m};");
        }
    }
    format!(
        "# Written by muduo-bench for the static-file comparison.\n\
         daemon off;\n\
         master_process on;\n\
         worker_processes {THREADS};\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\n\
         events {{\n    worker_connections 1024;\n}}\n\
         http {{\n\
         \x20   access_log off;\n\
         \x20   sendfile on;\n\
         \x20   keepalive_requests 1000000;\n\
         \x20   default_type application/octet-stream;\n\
         {temps}\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{port};\n\
         \x20       root {};\n\
         \x20   }}\n\
         }}\n",
        root.display()
    )
}

/// Whether nginx's whole-life rusage (wait4 on the master) covered its
/// workers: CPU seen in /proc just before the stop vs what wait4 returned.
#[derive(Clone, Copy, Debug)]
struct ReapCheck {
    seen_us: u64,
    reaped_us: u64,
}

impl ReapCheck {
    /// wait4 must report at least what /proc showed, less the rounding of
    /// clock ticks (10 ms per process and field).
    fn ok(&self) -> bool {
        self.reaped_us + 60_000 >= self.seen_us
    }
}

/// Starts `stack`, runs wrk for `file`, stops and reaps the server.
fn static_once(
    stack: &StaticStack,
    scratch: &Scratch,
    file: &StaticFile,
    secs: u32,
    paths: &Paths,
) -> Result<(Sample, Option<ReapCheck>), String> {
    let port = free_port().map_err(|e| format!("free port: {e}"))?;
    let root = scratch.root();
    let (mut server, url) = match &stack.kind {
        StaticKind::Ours(bin) => {
            let args: Vec<String> = vec![
                "--addr".into(),
                format!("127.0.0.1:{port}"),
                "--threads".into(),
                THREADS.to_string(),
                "--root".into(),
                root.display().to_string(),
            ];
            let s = Server::start(bin, &args, &paths.log).map_err(|e| format!("spawn: {e}"))?;
            (s, format!("http://127.0.0.1:{port}/files/{}", file.name))
        }
        StaticKind::Nginx(bin) => {
            let dir = scratch.dir.join("nginx");
            std::fs::create_dir_all(&dir).map_err(|e| format!("nginx dir: {e}"))?;
            let conf = dir.join("nginx.conf");
            std::fs::write(&conf, nginx_conf(bin, &dir, &root, port))
                .map_err(|e| format!("nginx.conf: {e}"))?;
            let args: Vec<String> = vec![
                "-c".into(),
                conf.display().to_string(),
                "-p".into(),
                format!("{}/", dir.display()),
                "-e".into(),
                dir.join("error.log").display().to_string(),
            ];
            let s = Server::start(bin, &args, &paths.log).map_err(|e| format!("spawn: {e}"))?;
            (s, format!("http://127.0.0.1:{port}/{}", file.name))
        }
    };
    let nginx = matches!(stack.kind, StaticKind::Nginx(_));
    if let Err(e) = server.wait_ready(loopback(port), Duration::from_secs(5)) {
        if nginx {
            let log =
                std::fs::read_to_string(scratch.dir.join("nginx/error.log")).unwrap_or_default();
            let last = log.lines().last().unwrap_or("(empty error.log)");
            return Err(format!("{e}; nginx error.log: {last}"));
        }
        return Err(e);
    }
    if nginx {
        // The master listens before it forks: wait for the workers too.
        let limit = Instant::now() + Duration::from_secs(5);
        while children(server.pid()).len() < THREADS {
            if Instant::now() >= limit {
                return Err(format!("nginx did not start {THREADS} workers"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let out = run_client(
        Path::new("wrk"),
        &http::wrk_url_args(file.conns, secs, &url, None),
        Duration::from_secs(u64::from(secs) + 30),
    );
    let workers = if nginx {
        children(server.pid())
    } else {
        Vec::new()
    };
    let seen = nginx.then(|| {
        std::iter::once(server.pid())
            .chain(workers.iter().copied())
            .filter_map(proc_cpu_us)
            .map(|u: Usage| u.total_us())
            .sum::<u64>()
    });
    let usage = server.stop();
    // Normally the master has reaped its workers by now; if it had to be
    // killed, make sure none of them outlives the run.
    for pid in workers {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "nginx" {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
    let check = seen.map(|seen_us| ReapCheck {
        seen_us,
        reaped_us: usage.total_us(),
    });
    let out = out.map_err(|e| format!("wrk: {e}"))?;
    let w = http::parse_wrk(&out.stdout)
        .ok_or_else(|| format!("wrk output not understood: {}", out.stderr))?;
    if w.requests < 1.0 {
        return Err("no request completed".into());
    }
    Ok((Sample::new(&w, &usage), check))
}

/// Runs both parts and adds their sections.
pub fn run(mode: Mode, opts: &Options, paths: &Paths, report: &mut Report) {
    let plan = plan(mode, opts);
    let size = plan.size_mib * MIB;

    // What can run.
    let transfer_stack = report
        .available(
            vec![Stack::new(
                "filetransfer",
                &paths.examples,
                "filetransfer",
                THREADS,
                true,
            )],
            paths,
        )
        .pop();
    let client = paths.bins.join("file_client");
    let transfer_ok = transfer_stack.is_some() && {
        let ok = client.is_file();
        if !ok {
            report.note(format!(
                "File transfer skipped: `{}` does not exist.",
                relative(&client, paths)
            ));
        }
        ok
    };
    let wrk = ensure_tool("wrk", "wrk");
    if let Err(e) = &wrk {
        report.note(format!("Static files: {e}"));
    }
    let mut static_stacks = Vec::new();
    if wrk.is_ok() {
        if let Some(s) = report
            .available(
                vec![Stack::new(
                    "ours-http_server",
                    &paths.examples,
                    "http_server",
                    THREADS,
                    true,
                )],
                paths,
            )
            .pop()
        {
            static_stacks.push(StaticStack {
                name: "ours-http_server",
                kind: StaticKind::Ours(s.program),
            });
        }
        let nginx = find_nginx().or_else(|| match ensure_tool("nginx", "nginx") {
            Ok(()) => find_nginx(),
            Err(e) => {
                report.note(format!("Static files: {e}"));
                None
            }
        });
        match nginx {
            Some(bin) => static_stacks.push(StaticStack {
                name: "nginx",
                kind: StaticKind::Nginx(bin),
            }),
            None => report.note(
                "Static files: nginx is not available, so the comparison with nginx is skipped.",
            ),
        }
    }

    let scratch = if transfer_ok || !static_stacks.is_empty() {
        match Scratch::create() {
            Ok(s) => Some(s),
            Err(e) => {
                report.note(format!("Files: cannot create a scratch directory: {e}"));
                None
            }
        }
    } else {
        None
    };

    // Part 1: transfer modes.
    let mut md = format!(
        "## File transfer\n\nOur `filetransfer` example sends a {} MiB file (written once into a scratch \
         directory, synced and read back so that it sits in the page cache) to every client that connects, \
         then closes; `--threads {THREADS}`. `file_client` opens N connections at once and reads each to \
         EOF (1 MiB reads, data discarded, byte count checked). Throughput is the bytes received over the \
         client's wall time; CPU is the server's whole-life user / system time (`wait4`) divided by the GiB \
         delivered (N x file size). Median of {} run(s) per cell, runs alternating between the modes.\n\n",
        plan.size_mib, plan.runs
    );
    let mut transfers: BTreeMap<(usize, &str), Vec<Transfer>> = BTreeMap::new();
    let file = scratch
        .as_ref()
        .map(|s| s.dir.join(format!("transfer-{}m.bin", plan.size_mib)));
    let transfer_bin = transfer_stack.as_ref().map(|s| s.program.clone());
    match (transfer_ok, &file, &transfer_bin) {
        (true, Some(file), Some(bin)) => {
            eprintln!("[files] writing a {} MiB file", plan.size_mib);
            if let Err(e) = make_file(file, size) {
                report.note(format!(
                    "File transfer skipped: cannot write {}: {e}",
                    file.display()
                ));
            } else {
                report.command(format!(
                    "{} --addr 127.0.0.1:PORT --file FILE --mode <read-write|mmap-write|sendfile> --threads {THREADS}",
                    relative(bin, paths)
                ));
                report.command(format!(
                    "{} 127.0.0.1:PORT <clients> --expect {size}",
                    relative(&client, paths)
                ));
                for &n in &plan.clients {
                    for run in 0..plan.runs {
                        for mode in MODES {
                            match transfer_once(bin, file, size, mode, n, paths) {
                                Ok(t) => {
                                    eprintln!(
                                        "[files] {mode} clients={n} run {}/{}: {:.0} MiB/s, {:.3} + {:.3} s/GiB",
                                        run + 1,
                                        plan.runs,
                                        t.mib_s,
                                        t.user_s_gib,
                                        t.sys_s_gib
                                    );
                                    transfers.entry((n, mode)).or_default().push(t);
                                }
                                Err(e) => report.note(format!(
                                    "File transfer {mode}, {n} client(s), run {}: {e}",
                                    run + 1
                                )),
                            }
                        }
                    }
                }
            }
            let _ = std::fs::remove_file(file);
        }
        _ => md.push_str(
            "Skipped: the `filetransfer` example or `file_client` is missing (see Notes).\n\n",
        ),
    }
    if !transfers.is_empty() {
        render_transfers(&mut md, &plan, &transfers, paths, report);
    }
    report.sections.push(md);

    // Part 2: static files against nginx.
    let mut md = String::from("## Static files vs nginx\n\n");
    match &scratch {
        Some(scratch) if !static_stacks.is_empty() => {
            let big = plan.size_mib.min(100);
            let files = [
                StaticFile {
                    name: "f1m".into(),
                    mib: 1,
                    conns: 16,
                },
                StaticFile {
                    name: format!("f{big}m"),
                    mib: big,
                    conns: 4,
                },
            ];
            let mut written = true;
            for f in &files {
                if let Err(e) = make_file(&scratch.root().join(&f.name), f.mib * MIB) {
                    report.note(format!(
                        "Static files skipped: cannot write {}: {e}",
                        f.name
                    ));
                    written = false;
                }
            }
            if written {
                static_section(
                    &mut md,
                    &plan,
                    &static_stacks,
                    scratch,
                    &files,
                    paths,
                    report,
                );
            }
        }
        _ => md.push_str(
            "Skipped: `wrk`, or both our `http_server` and nginx, are missing (see Notes).\n\n",
        ),
    }
    report.sections.push(md);
    drop(scratch);
}

fn render_transfers(
    md: &mut String,
    plan: &Plan,
    transfers: &BTreeMap<(usize, &str), Vec<Transfer>>,
    paths: &Paths,
    report: &mut Report,
) {
    let get = |n: usize, mode: &str| transfers.get(&(n, mode)).and_then(|v| transfer_figures(v));
    let png = "files.png";
    let groups: Vec<String> = plan
        .clients
        .iter()
        .map(|n| format!("{n} client{}", if *n == 1 { "" } else { "s" }))
        .collect();
    let series = |f: fn(&TransferFigures) -> Vec<f64>| -> Vec<(String, Vec<Vec<f64>>)> {
        MODES
            .iter()
            .map(|m| {
                let bars = plan
                    .clients
                    .iter()
                    .map(|&n| get(n, m).map(|x| f(&x)).unwrap_or_default())
                    .collect();
                (m.to_string(), bars)
            })
            .collect()
    };
    let panels = [
        plot::BarPanel {
            title: format!("{} MiB file: throughput", plan.size_mib),
            y_desc: "MiB/s".into(),
            groups: groups.clone(),
            series: series(|x| vec![x.mib_s]),
        },
        plot::BarPanel {
            title: "server CPU per GiB (dark: system, light: user)".into(),
            y_desc: "CPU s/GiB".into(),
            groups,
            series: series(|x| vec![x.sys, x.user]),
        },
    ];
    match plot::grouped_bars(&paths.results.join(png), &panels) {
        Ok(()) => {
            let _ = writeln!(
                md,
                "![file transfer: throughput and server CPU per GiB by clients and mode](bench/results/{png})\n"
            );
        }
        Err(e) => report.note(format!("Plot {png} failed: {e}")),
    }
    md.push_str(
        "| clients | mode | MiB/s | user s/GiB | sys s/GiB | total s/GiB |\n|---:|---|---:|---:|---:|---:|\n",
    );
    for &n in &plan.clients {
        for mode in MODES {
            if let Some(f) = get(n, mode) {
                let _ = writeln!(
                    md,
                    "| {n} | {mode} | {} | {} | {} | {} |",
                    fmt(f.mib_s),
                    fmt(f.user),
                    fmt(f.sys),
                    fmt(f.total)
                );
            }
        }
    }
    md.push('\n');
    let mut rows = Vec::new();
    for &n in &plan.clients {
        let (Some(s), Some(r)) = (get(n, "sendfile"), get(n, "read-write")) else {
            continue;
        };
        let context = n.to_string();
        rows.push(TargetRow {
            context: context.clone(),
            metric: "MiB/s".into(),
            ours: s.mib_s,
            peer: r.mib_s,
            target: Target::None,
        });
        rows.push(TargetRow {
            context,
            metric: "server CPU s/GiB (user + sys)".into(),
            ours: s.total,
            peer: r.total,
            target: Target::AtMost(0.5),
        });
    }
    if rows.is_empty() {
        md.push_str("Target: n/a (no result for both sendfile and read-write).\n\n");
    } else {
        let _ = writeln!(
            md,
            "Target: **sendfile uses at most half the server CPU per GiB of read-write**.\n\n{}",
            targets_table("clients", "sendfile", "read-write", &rows)
        );
    }
}

fn static_section(
    md: &mut String,
    plan: &Plan,
    stacks: &[StaticStack],
    scratch: &Scratch,
    files: &[StaticFile],
    paths: &Paths,
    report: &mut Report,
) {
    let secs = plan.wrk_secs;
    for s in stacks {
        match &s.kind {
            StaticKind::Ours(bin) => report.command(format!(
                "{} --addr 127.0.0.1:PORT --threads {THREADS} --root DIR   (GET /files/NAME)",
                relative(bin, paths)
            )),
            StaticKind::Nginx(bin) => report.command(format!(
                "{} -c DIR/nginx/nginx.conf -p DIR/nginx/ -e DIR/nginx/error.log   (GET /NAME; daemon off, master_process on, worker_processes {THREADS})",
                bin.display()
            )),
        }
    }
    for f in files {
        report.command(format!(
            "wrk -c {} -t 2 -d {secs}s http://127.0.0.1:PORT/[files/]{}",
            f.conns, f.name
        ));
    }
    let mut results: BTreeMap<(String, &str), Vec<Sample>> = BTreeMap::new();
    let mut checks: Vec<ReapCheck> = Vec::new();
    for f in files {
        for run in 0..plan.wrk_runs {
            for s in stacks {
                match static_once(s, scratch, f, secs, paths) {
                    Ok((sample, check)) => {
                        eprintln!(
                            "[files] static {} run {}/{} {}: {:.0} req/s, {:.1} us/req",
                            f.name,
                            run + 1,
                            plan.wrk_runs,
                            s.name,
                            sample.req_s,
                            sample.total_us_req
                        );
                        if let Some(c) = check {
                            if !c.ok() {
                                report.note(format!(
                                    "Static files {} run {}: nginx's wait4 rusage ({} ms) is below the CPU its \
                                     processes had used before the stop ({} ms): workers may not have been reaped \
                                     by the master, so nginx's CPU figures are too low.",
                                    f.name,
                                    run + 1,
                                    c.reaped_us / 1000,
                                    c.seen_us / 1000
                                ));
                            }
                            checks.push(c);
                        }
                        results
                            .entry((f.name.clone(), s.name))
                            .or_default()
                            .push(sample);
                    }
                    Err(e) => report.note(format!(
                        "Static files `{}` {} run {}: {e}",
                        s.name,
                        f.name,
                        run + 1
                    )),
                }
            }
        }
    }
    let nginx_note = if checks.is_empty() {
        String::new()
    } else if checks.iter().all(ReapCheck::ok) {
        format!(
            " Checked in all {} nginx run(s): the CPU of master and workers read from /proc just before \
             the stop is contained in the master's `wait4` figures.",
            checks.len()
        )
    } else {
        " **In some runs nginx's `wait4` figures did not cover its workers (see Notes).**".into()
    };
    let _ = writeln!(
        md,
        "Our `http_server --threads {THREADS} --root DIR` (files under `/files/`, sent with sendfile) against \
         nginx {} with `sendfile on`, `access_log off`, `keepalive_requests 1000000` (so that neither \
         server closes keep-alive connections during a run), `daemon off`, `master_process on` and \
         `worker_processes {THREADS}` to match our {THREADS} I/O threads. nginx runs as a child of the \
         runner; on SIGTERM its master stops the workers and reaps them before it exits, so `wait4` on \
         the master returns the CPU of master and workers together (a reaped child's rusage includes the \
         children it reaped).{nginx_note} wrk with 2 threads, {secs} s per run, median of {} run(s), \
         runs alternating between the servers. CPU per request is whole-life server CPU divided by \
         the requests wrk completed; MiB/s is requests/s x file size.\n",
        nginx_version().unwrap_or_default(),
        plan.wrk_runs
    );
    md.push_str(
        "| file | wrk conns | server | req/s | MiB/s | user µs/req | total µs/req | errors |\n\
         |---|---:|---|---:|---:|---:|---:|---:|\n",
    );
    let get = |file: &str, name: &str| {
        results
            .get(&(file.to_string(), name))
            .and_then(|v| figures(v))
    };
    for f in files {
        for s in stacks {
            if let Some(x) = get(&f.name, s.name) {
                let _ = writeln!(
                    md,
                    "| {} MiB | {} | {} | {} | {} | {} | {} | {:.0} |",
                    f.mib,
                    f.conns,
                    s.name,
                    fmt(x.req_s),
                    fmt(x.req_s * f.mib as f64),
                    fmt(x.user),
                    fmt(x.total),
                    x.errors
                );
            }
        }
    }
    md.push('\n');
    let mut rows = Vec::new();
    for f in files {
        let (Some(o), Some(n)) = (get(&f.name, "ours-http_server"), get(&f.name, "nginx")) else {
            continue;
        };
        let context = format!("{} MiB", f.mib);
        for (metric, ours, peer, target) in [
            ("requests/s", o.req_s, n.req_s, Target::AtLeast(1.0)),
            ("user CPU µs/req", o.user, n.user, Target::None),
            ("total CPU µs/req", o.total, n.total, Target::AtMost(1.0)),
        ] {
            rows.push(TargetRow {
                context: context.clone(),
                metric: metric.into(),
                ours,
                peer,
                target,
            });
        }
    }
    if rows.is_empty() {
        md.push_str(
            "Targets: n/a (no result for both our `http_server` and nginx; see Notes).\n\n",
        );
    } else {
        let _ = writeln!(
            md,
            "Target: **at least match nginx's requests/s and CPU per request** (requests/s >= 1.0x, \
             total CPU per request <= 1.0x; user CPU is shown for reference).\n\n{}",
            targets_table("file", "ours-http_server", "nginx", &rows)
        );
    }
}

/// `nginx/1.22.1` from `nginx -v`, in parentheses, if it runs.
fn nginx_version() -> Option<String> {
    let bin = find_nginx()?;
    let out = Command::new(bin).arg("-v").output().ok()?;
    let text = String::from_utf8_lossy(&out.stderr);
    let v = text.trim().rsplit(' ').next()?.to_string();
    Some(format!("(`{v}`)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke_plan_is_small_and_size_overridable() {
        let p = plan(Mode::Smoke, &Options::default());
        assert_eq!(p.size_mib, 64);
        let p = plan(
            Mode::Short,
            &Options {
                file_size_mib: Some(8),
            },
        );
        assert_eq!((p.size_mib, p.clients.as_slice()), (8, &[1, 4, 16][..]));
    }

    #[test]
    fn nginx_conf_is_self_contained() {
        let conf = nginx_conf(
            Path::new("/nonexistent/nginx"),
            Path::new("/tmp/x"),
            Path::new("/tmp/x/root"),
            8080,
        );
        for want in [
            "daemon off;",
            "master_process on;",
            "worker_processes 2;",
            "pid /tmp/x/nginx.pid;",
            "sendfile on;",
            "access_log off;",
            "listen 127.0.0.1:8080;",
            "root /tmp/x/root;",
            "client_body_temp_path /tmp/x/body;",
        ] {
            assert!(conf.contains(want), "{want} missing from\n{conf}");
        }
    }

    #[test]
    fn makes_an_exact_file() {
        let dir = Scratch::create().unwrap();
        let path = dir.root().join("f");
        make_file(&path, 3 * MIB + 5).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 3 * MIB + 5);
    }
}

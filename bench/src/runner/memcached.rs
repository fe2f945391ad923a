//! Our `memcached` example against memcached itself (from apt), same
//! number of threads, same client (`memcached_client`): throughput, server
//! CPU per operation (whole-life rusage from `wait4`), p99 latency, RSS per
//! million stored 32-byte items, and `memcaslap -v` verification.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::env::{ensure_tool, Paths};
use super::process::{free_port, loopback, proc_status_kib, run_client, Server};
use super::stats::{field, fmt, fmt_ratio, median, ratio};
use super::{relative, Mode, Report};

const THREADS: usize = 2;
const KEYS: u64 = 10_000;

/// One server: ours or memcached, with memcached's flags.
struct Peer {
    name: &'static str,
    program: PathBuf,
    ours: bool,
}

impl Peer {
    fn args(&self, port: u16) -> Vec<String> {
        let mut a: Vec<String> = [
            "-p",
            &port.to_string(),
            "-l",
            "127.0.0.1",
            "-t",
            &THREADS.to_string(),
            "-m",
            "1024",
            "-c",
            "4096",
            "-U",
            "0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if !self.ours && rustix::process::geteuid().is_root() {
            a.extend(["-u".to_string(), "root".to_string()]);
        }
        a
    }

    fn start(&self, paths: &Paths) -> Result<(Server, u16), String> {
        let port = free_port().map_err(|e| format!("free port: {e}"))?;
        let mut server = Server::start(&self.program, &self.args(port), &paths.log)
            .map_err(|e| format!("spawn {}: {e}", self.name))?;
        server.wait_ready(loopback(port), Duration::from_secs(10))?;
        Ok((server, port))
    }
}

/// One cell of the matrix.
#[derive(Clone, Copy)]
struct Cell {
    get_pct: u64,
    value: usize,
    conns: usize,
    depth: usize,
}

impl Cell {
    fn label(&self) -> String {
        format!(
            "| {} | {} B | {} | {} |",
            if self.get_pct >= 50 {
                "get 90/10"
            } else {
                "set 90/10"
            },
            self.value,
            self.conns,
            if self.depth == 1 {
                "no".to_string()
            } else {
                self.depth.to_string()
            }
        )
    }
}

#[derive(Default, Clone, Copy)]
struct Sample {
    ops_per_s: f64,
    cpu_us_per_op: f64,
    p99_us: f64,
    verify_failures: f64,
}

fn client(paths: &Paths) -> PathBuf {
    paths.bins.join("memcached_client")
}

fn run_cell(peer: &Peer, cell: Cell, secs: f64, paths: &Paths) -> Result<Sample, String> {
    let (mut server, port) = peer.start(paths)?;
    let args: Vec<String> = vec![
        "run".into(),
        format!("127.0.0.1:{port}"),
        THREADS.to_string(),
        cell.conns.to_string(),
        secs.to_string(),
        cell.get_pct.to_string(),
        cell.value.to_string(),
        cell.depth.to_string(),
        KEYS.to_string(),
    ];
    let out = run_client(&client(paths), &args, Duration::from_secs_f64(secs + 90.0));
    let usage = server.stop_with(rustix::process::Signal::TERM);
    let out = out.map_err(|e| format!("client: {e}"))?;
    if !out.success {
        return Err(format!("client failed: {}", out.stderr));
    }
    let get = |k| field(&out.stdout, "RESULT", k).unwrap_or(f64::NAN);
    let ops = get("ops");
    if get("errors") > 0.0 {
        return Err(format!("client errors: {}", out.stdout.trim()));
    }
    Ok(Sample {
        ops_per_s: get("ops_per_s"),
        cpu_us_per_op: usage.total_us() as f64 / ops,
        p99_us: get("p99_us"),
        verify_failures: get("verify_failures"),
    })
}

/// VmRSS growth (KiB) while one million 32-byte items are stored.
fn rss_per_million(peer: &Peer, items: u64, paths: &Paths) -> Result<f64, String> {
    let (server, port) = peer.start(paths)?;
    std::thread::sleep(Duration::from_millis(200));
    let before = proc_status_kib(server.pid(), "VmRSS").ok_or("no VmRSS")?;
    let args = vec![
        "fill".into(),
        format!("127.0.0.1:{port}"),
        items.to_string(),
        "32".into(),
    ];
    let out = run_client(&client(paths), &args, Duration::from_secs(300));
    let after = proc_status_kib(server.pid(), "VmRSS").unwrap_or(0);
    server.stop();
    let out = out.map_err(|e| format!("client: {e}"))?;
    if !out.success {
        return Err(format!("fill failed: {}", out.stderr));
    }
    Ok((after as f64 - before as f64) * 1_000_000.0 / items as f64)
}

/// `memcaslap -v 0.1`: (verify_failed, get_misses, ops) against one server.
fn memcaslap_verify(peer: &Peer, paths: &Paths) -> Result<(f64, f64, f64), String> {
    let (server, port) = peer.start(paths)?;
    let args: Vec<String> = [
        "-s",
        &format!("127.0.0.1:{port}"),
        "-t",
        "3s",
        "-v",
        "0.1",
        "-T",
        "2",
        "-c",
        "32",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = run_client(Path::new("memcaslap"), &args, Duration::from_secs(60));
    server.stop();
    let out = out.map_err(|e| format!("memcaslap: {e}"))?;
    let find = |k: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(k))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    let ops = out
        .stdout
        .lines()
        .find_map(|l| l.split("Ops: ").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok());
    match (find("verify_failed:"), find("get_misses:"), ops) {
        (Some(f), Some(m), Some(o)) => Ok((f, m, o)),
        _ => Err(format!(
            "unexpected memcaslap output: {}",
            out.stdout.trim()
        )),
    }
}

/// Runs the section.
pub fn run(mode: Mode, paths: &Paths, report: &mut Report) {
    if let Err(e) = ensure_tool("memcached", "memcached") {
        report.note(format!("memcached section: {e}"));
        return;
    }
    let peers = [
        Peer {
            name: "memcached",
            program: PathBuf::from("memcached"),
            ours: false,
        },
        Peer {
            name: "ours",
            program: paths.examples.join("memcached"),
            ours: true,
        },
    ];
    if !peers[1].program.is_file() {
        report.note("memcached section skipped: examples/memcached is not built.");
        return;
    }
    let (secs, runs) = match mode {
        Mode::Smoke => (1.0, 1),
        Mode::Short => (2.0, 1),
        Mode::Full => (4.0, 3),
    };
    let mut cells = Vec::new();
    for get_pct in [90, 10] {
        for value in [32, 4096] {
            for conns in [50, 500] {
                for depth in [1, 16] {
                    cells.push(Cell {
                        get_pct,
                        value,
                        conns,
                        depth,
                    });
                }
            }
        }
    }
    if mode == Mode::Smoke {
        cells.truncate(1);
    }
    report.command(format!(
        "{} run 127.0.0.1:PORT {THREADS} CONNS {secs} GET_PCT VALUE_BYTES DEPTH {KEYS}",
        relative(&client(paths), paths)
    ));
    report.command(format!(
        "memcached -p PORT -l 127.0.0.1 -t {THREADS} -m 1024 -c 4096 -U 0   # and {} with the same flags",
        relative(&peers[1].program, paths)
    ));
    let mut md = format!(
        "## memcached\n\nOur `memcached` example against memcached {} (Debian), both with `-t {THREADS}`, \
         driven by `memcached_client` ({THREADS} threads, epoll): 16-byte keys drawn uniformly from {KEYS} \
         preloaded ones, 90/10 or 10/90 get/set mixes, depth 16 = 16 requests per write per connection \
         (latency per batch). Server CPU is the whole-life rusage from `wait4`, divided by the operations. \
         Every value read back is checked; verify failures: {{VF}}. Ratios are ours / memcached \
         (throughput: higher is better; CPU and p99: lower is better). {runs} run(s) of {secs} s per cell, median.\n\n\
         | mix | value | conns | pipelined | memcached ops/s | ours ops/s | ratio | memcached CPU us/op | ours CPU us/op | ratio | memcached p99 us | ours p99 us | ratio |\n\
         |---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        memcached_version()
    );
    let mut verify_failures = 0.0;
    for cell in &cells {
        let mut med = Vec::new();
        for peer in &peers {
            let mut samples = Vec::new();
            for _ in 0..runs {
                match run_cell(peer, *cell, secs, paths) {
                    Ok(s) => samples.push(s),
                    Err(e) => report.note(format!(
                        "memcached cell {} `{}`: {e}",
                        cell.label(),
                        peer.name
                    )),
                }
            }
            let m = |f: fn(&Sample) -> f64| median(&samples.iter().map(f).collect::<Vec<_>>());
            verify_failures += samples.iter().map(|s| s.verify_failures).sum::<f64>();
            med.push(Sample {
                ops_per_s: m(|s| s.ops_per_s),
                cpu_us_per_op: m(|s| s.cpu_us_per_op),
                p99_us: m(|s| s.p99_us),
                verify_failures: 0.0,
            });
        }
        let (r, o) = (med[0], med[1]);
        eprintln!(
            "[memcached] {}: memcached {:.0} ops/s, ours {:.0} ops/s",
            cell.label(),
            r.ops_per_s,
            o.ops_per_s
        );
        let _ = writeln!(
            md,
            "{} {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell.label(),
            fmt(r.ops_per_s),
            fmt(o.ops_per_s),
            fmt_ratio(ratio(o.ops_per_s, r.ops_per_s)),
            fmt(r.cpu_us_per_op),
            fmt(o.cpu_us_per_op),
            fmt_ratio(ratio(o.cpu_us_per_op, r.cpu_us_per_op)),
            fmt(r.p99_us),
            fmt(o.p99_us),
            fmt_ratio(ratio(o.p99_us, r.p99_us)),
        );
    }
    md = md.replace("{VF}", &format!("{verify_failures}"));

    let items: u64 = if mode == Mode::Smoke {
        100_000
    } else {
        1_000_000
    };
    md.push_str(&format!(
        "\nMemory: VmRSS growth while {items} items (16-byte keys, 32-byte values) are stored with \
         `memcached_client fill` into a fresh server (`-m 1024`), scaled to one million items.\n\n\
         | server | RSS per million 32 B items (MiB) |\n|---|---:|\n"
    ));
    let mut rss = Vec::new();
    for peer in &peers {
        match rss_per_million(peer, items, paths) {
            Ok(kib) => {
                rss.push(kib);
                let _ = writeln!(md, "| {} | {} |", peer.name, fmt(kib / 1024.0));
            }
            Err(e) => report.note(format!("memcached RSS `{}`: {e}", peer.name)),
        }
    }
    if rss.len() == 2 {
        let _ = writeln!(
            md,
            "| ratio ours / memcached | {} |",
            fmt_ratio(ratio(rss[1], rss[0]))
        );
    }

    if ensure_tool("memcaslap", "libmemcached-tools").is_ok() {
        md.push_str(
            "\n`memcaslap -s 127.0.0.1:PORT -t 3s -v 0.1 -T 2 -c 32` (libmemcached-tools; 10% of gets verified):\n\n\
             | server | ops | get misses | verify failures |\n|---|---:|---:|---:|\n",
        );
        for peer in &peers {
            match memcaslap_verify(peer, paths) {
                Ok((failed, misses, ops)) => {
                    let _ = writeln!(md, "| {} | {ops} | {misses} | {failed} |", peer.name);
                }
                Err(e) => report.note(format!("memcaslap `{}`: {e}", peer.name)),
            }
        }
    }
    report.sections.push(md);
}

fn memcached_version() -> String {
    std::process::Command::new("memcached")
        .arg("-V")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

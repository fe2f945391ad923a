//! C10K: memory per idle connection and time to accept 10000 connections,
//! then a check that every connection still echoes.
//!
//! The server's RSS is read from /proc before the client starts and again
//! once the server holds every connection (its open-descriptor count has
//! grown by the number the client opened); the difference divided by the
//! connection count is the per-connection cost of the stack.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use super::env::Paths;
use super::process::{fd_count, free_port, loopback, proc_status_kib, start_interactive, Server};
use super::stats::{field, fmt};
use super::{relative, Mode, Report, Stack};

/// The stacks compared: ours with 2 I/O threads, tokio and epoll with 2.
pub fn stacks(paths: &Paths) -> Vec<Stack> {
    vec![
        Stack::new("ours-t2", &paths.examples, "pingpong_server", 2, true),
        Stack::new("tokio-t2", &paths.bins, "tokio_pingpong", 2, false),
        Stack::new("epoll-t2", &paths.bins, "epoll_pingpong", 2, false),
    ]
}

/// One stack's C10K figures.
struct Row {
    rss_before_kib: u64,
    rss_after_kib: u64,
    connected: f64,
    connect_secs: f64,
    accept_secs: Option<f64>,
    echo_ok: f64,
    echo_failed: f64,
}

fn run_once(stack: &Stack, conns: usize, paths: &Paths) -> Result<Row, String> {
    let port = free_port().map_err(|e| format!("free port: {e}"))?;
    let mut server = Server::start(&stack.program, &stack.args(port), &paths.log)
        .map_err(|e| format!("spawn: {e}"))?;
    server.wait_ready(loopback(port), Duration::from_secs(5))?;
    // Let the readiness probe's connection close and the server settle.
    std::thread::sleep(Duration::from_millis(200));
    let pid = server.pid();
    let rss_before_kib = proc_status_kib(pid, "VmRSS").ok_or("cannot read server VmRSS")?;
    let fds_before = fd_count(pid).ok_or("cannot count server fds")?;
    let args = vec![format!("127.0.0.1:{port}"), conns.to_string(), "120".into()];
    let started = Instant::now();
    let mut client = start_interactive(&paths.bins.join("c10k_client"), &args, &paths.log)
        .map_err(|e| format!("client: {e}"))?;
    let mut connected = None;
    let mut accept_secs = None;
    let mut ready = false;
    let limit = started + Duration::from_secs(90);
    // Until READY: watch the server's descriptor count to time accept-all.
    while !ready && Instant::now() < limit {
        match client.lines.recv_timeout(Duration::from_millis(20)) {
            Ok(line) if line.starts_with("CONNECTED") => {
                connected = field(&line, "CONNECTED", "ok")
            }
            Ok(line) => ready = line == "READY",
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if accept_secs.is_none() && fd_count(pid).unwrap_or(0) >= fds_before + conns {
            accept_secs = Some(started.elapsed().as_secs_f64());
        }
    }
    let connected = connected
        .filter(|_| ready)
        .ok_or("client never became READY")?;
    let target = fds_before + connected as usize;
    while accept_secs.is_none() && Instant::now() < started + Duration::from_secs(100) {
        if fd_count(pid).unwrap_or(0) >= target {
            accept_secs = Some(started.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let rss_after_kib = proc_status_kib(pid, "VmRSS").unwrap_or(0);
    // Release the client: a line on stdin, then wait for its RESULT.
    if let Some(mut stdin) = client.stdin.take() {
        let _ = stdin.write_all(b"go\n");
    }
    let mut result = None;
    while result.is_none() {
        match client.lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.starts_with("RESULT") => result = Some(line),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let _ = client.child.kill();
    let _ = client.child.wait();
    server.stop();
    let result = result.ok_or("client printed no RESULT")?;
    let get = |k| field(&result, "RESULT", k).unwrap_or(f64::NAN);
    Ok(Row {
        rss_before_kib,
        rss_after_kib,
        connected,
        connect_secs: get("connect_secs"),
        accept_secs,
        echo_ok: get("echo_ok"),
        echo_failed: get("echo_failed"),
    })
}

/// Runs C10K against each stack and adds the section.
pub fn run(mode: Mode, paths: &Paths, report: &mut Report) {
    let conns = if mode == Mode::Smoke { 500 } else { 10000 };
    let stacks = report.available(stacks(paths), paths);
    report.command(format!(
        "{} 127.0.0.1:PORT {conns} 120",
        relative(&paths.bins.join("c10k_client"), paths)
    ));
    let mut md = format!(
        "## C10K\n\n`c10k_client` opens {conns} idle connections (non-blocking connects in batches of 256), \
         then each sends one 16-byte message that must come back. RSS is the server's VmRSS before the \
         client starts and once the server holds every connection. *Accept all* is the time from starting \
         the client until the server's descriptor count has grown by the number of connections.\n\n\
         | server | RSS before (KiB) | RSS with conns (KiB) | bytes/conn | connected | client connect s | accept all s | echo ok | echo failed |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for stack in &stacks {
        match run_once(stack, conns, paths) {
            Ok(r) => {
                let per_conn = (r.rss_after_kib as f64 - r.rss_before_kib as f64) * 1024.0
                    / r.connected.max(1.0);
                eprintln!(
                    "[c10k] {}: {:.0} bytes/conn, echo ok {}",
                    stack.name, per_conn, r.echo_ok
                );
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    stack.name,
                    r.rss_before_kib,
                    r.rss_after_kib,
                    fmt(per_conn),
                    r.connected,
                    fmt(r.connect_secs),
                    r.accept_secs.map_or("timeout".into(), fmt),
                    r.echo_ok,
                    r.echo_failed
                );
            }
            Err(e) => report.note(format!("C10K `{}`: {e}", stack.name)),
        }
    }
    report.sections.push(md);
}

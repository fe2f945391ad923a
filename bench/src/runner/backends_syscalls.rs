//! Syscalls per message for the backends section, counted with perf's
//! syscall tracepoints (`perf stat -e 'syscalls:sys_enter_*' -p PID`).
//!
//! strace stops the traced thread on every syscall, which slows an epoll
//! server 5-14x and changes its batching (fewer events per `epoll_wait`),
//! so it overstates epoll's count against io_uring's. Tracepoint counters
//! run in the kernel and leave the timing nearly alone. strace is the
//! fallback where perf cannot open the tracepoints, with a note.
//!
//! `raw_syscalls:sys_enter` counts every syscall; the named tracepoints
//! break the total down for the syscalls a network server makes. Not all
//! ~360 `syscalls:sys_enter_*` tracepoints: perf then needs several seconds
//! per run just to close its counters.

use std::path::Path;
use std::time::Duration;

use rustix::process::Signal;

use super::env::Paths;
use super::observed::{observed_run, Observer};
use super::process::fd_count;
use super::syscalls::Counts;
use super::Stack;

/// Syscalls broken down by name (the total comes from `raw_syscalls`).
const NAMED: &[&str] = &[
    "read",
    "write",
    "readv",
    "writev",
    "recvfrom",
    "sendto",
    "recvmsg",
    "sendmsg",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_ctl",
    "io_uring_enter",
    "accept",
    "accept4",
    "close",
    "setsockopt",
    "futex",
    "poll",
    "ppoll",
    "splice",
    "sendfile64",
    "sched_yield",
    "mmap",
    "munmap",
    "madvise",
    "brk",
    "shutdown",
];
const TOTAL: &str = "raw_syscalls:sys_enter";

/// The `-e` argument: the total and the named tracepoints.
pub fn events() -> String {
    let mut events = String::from(TOTAL);
    for name in NAMED {
        events.push_str(",syscalls:sys_enter_");
        events.push_str(name);
    }
    events
}

/// Whether perf can count syscall tracepoints here; the reason when not.
pub fn perf_works() -> Result<(), String> {
    let out = std::process::Command::new("perf")
        .args([
            "stat",
            "-x",
            ",",
            "-e",
            "syscalls:sys_enter_getpid",
            "--",
            "true",
        ])
        .output()
        .map_err(|e| format!("perf: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(format!(
            "perf cannot count syscall tracepoints: {}",
            err.lines().next().unwrap_or("unknown error")
        ))
    }
}

/// Parses `perf stat -x ,` output (`count,unit,event,...` per line): the
/// total from `raw_syscalls:sys_enter`, the rest by name; syscalls outside
/// the named list show as `other`.
pub fn parse_perf(text: &str) -> Option<Counts> {
    let mut counts = Counts::default();
    let mut total = None;
    for line in text.lines() {
        let mut cols = line.split(',');
        let (Some(count), Some(_unit), Some(event)) = (cols.next(), cols.next(), cols.next())
        else {
            continue;
        };
        // `<not counted>` / `<not supported>` count as nothing.
        let n = count.trim().parse::<f64>().unwrap_or(0.0);
        if event == TOTAL {
            total = Some(n);
        } else if let Some(name) = event.strip_prefix("syscalls:sys_enter_") {
            if n > 0.0 {
                counts.by_name.push((name.to_string(), n));
            }
        }
    }
    counts.total = total?;
    let named: f64 = counts.by_name.iter().map(|(_, n)| n).sum();
    if counts.total > named {
        counts.by_name.push(("other".into(), counts.total - named));
    }
    counts.by_name.sort_by(|a, b| b.1.total_cmp(&a.1));
    Some(counts)
}

/// True once perf has opened one counter per tracepoint and thread of
/// `target` (its fd count), so that no message goes uncounted.
fn attached(perf: i32, target: i32) -> bool {
    let Ok(threads) = std::fs::read_dir(format!("/proc/{target}/task")).map(|d| d.count()) else {
        return false;
    };
    let ready = fd_count(perf).is_some_and(|n| n >= (NAMED.len() + 1) * threads);
    if ready {
        // Counters are enabled right after they are all open.
        std::thread::sleep(Duration::from_millis(200));
    }
    ready
}

/// Runs `client` (returning the number of messages) against `stack` with
/// perf counting the server's syscalls; returns the counts and messages.
pub fn counted_run(
    stack: &Stack,
    paths: &Paths,
    file: &Path,
    client: impl FnOnce(u16) -> Result<f64, String>,
) -> Result<(Counts, f64), String> {
    let events = events();
    let perf = Observer {
        program: "perf",
        args: &["stat", "-x", ",", "-e", &events],
        attached: &attached,
        attach_timeout: Duration::from_secs(20),
        // perf writes its counts on SIGINT; closing its counters takes a while.
        stop: &|perf| {
            perf.stop_within(Signal::INT, Duration::from_secs(20));
        },
    };
    let (text, messages) = observed_run(stack, paths, file, &perf, client)?;
    let counts = parse_perf(&text).ok_or("perf output not understood")?;
    Ok((counts, messages))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_perf_csv() {
        let text = "# started on Thu Dec  3 10:21:39 2026\n\n\
                    17760,,raw_syscalls:sys_enter,909575925,100.00,,\n\
                    0,,syscalls:sys_enter_read,909575925,100.00,,\n\
                    100,,syscalls:sys_enter_close,909575925,100.00,,\n\
                    17650,,syscalls:sys_enter_io_uring_enter,909575925,100.00,,\n\
                    <not counted>,,syscalls:sys_enter_write,0,0.00,,\n";
        let c = parse_perf(text).unwrap();
        assert_eq!(c.total, 17760.0);
        assert_eq!(c.by_name[0], ("io_uring_enter".to_string(), 17650.0));
        assert_eq!(c.by_name[1], ("close".to_string(), 100.0));
        assert_eq!(c.by_name[2], ("other".to_string(), 10.0));
        assert!(events().starts_with("raw_syscalls:sys_enter,syscalls:sys_enter_read,"));
        assert!(parse_perf("nothing here\n").is_none());
    }
}

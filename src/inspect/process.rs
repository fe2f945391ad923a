//! Process figures read from `/proc/self`, as muduo's Inspector shows them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The process at one moment.
#[derive(Clone, Debug, Default)]
pub struct ProcessSnapshot {
    /// Process id.
    pub pid: u32,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// Threads.
    pub threads: u64,
    /// User CPU time since start.
    pub cpu_user: Duration,
    /// System CPU time since start.
    pub cpu_system: Duration,
    /// Time since the process started.
    pub uptime: Duration,
    /// Process start, seconds since the Unix epoch.
    pub start_time_unix: f64,
}

impl ProcessSnapshot {
    /// Reads the calling process's figures; fields that cannot be read stay 0.
    pub fn read() -> ProcessSnapshot {
        let mut p = ProcessSnapshot {
            pid: std::process::id(),
            ..Default::default()
        };
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            for line in status.lines() {
                if let Some(v) = line.strip_prefix("VmRSS:") {
                    p.rss_bytes = first_number(v) * 1024;
                } else if let Some(v) = line.strip_prefix("Threads:") {
                    p.threads = first_number(v);
                }
            }
        }
        p.open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
        let ticks = rustix::param::clock_ticks_per_second().max(1);
        let ticks_to = |t: u64| Duration::from_nanos(t.saturating_mul(1_000_000_000 / ticks));
        if let Some(f) = stat_fields() {
            // Fields after the command name, numbered as in proc(5) minus 3:
            // utime is field 14, stime 15, starttime 22.
            let field = |n: usize| {
                f.get(n - 3)
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            p.cpu_user = ticks_to(field(14));
            p.cpu_system = ticks_to(field(15));
            let started_after_boot = ticks_to(field(22));
            if let Some(boot_uptime) = system_uptime() {
                p.uptime = boot_uptime.saturating_sub(started_after_boot);
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                p.start_time_unix = now.saturating_sub(p.uptime).as_secs_f64();
            }
        }
        p
    }
}

fn first_number(s: &str) -> u64 {
    s.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// `/proc/self/stat` split after the command name (which may hold spaces).
fn stat_fields() -> Option<Vec<String>> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

fn system_uptime() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/uptime").ok()?;
    let secs: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let p = ProcessSnapshot::read();
        assert!(p.rss_bytes > 0);
        assert!(p.open_fds >= 3);
        assert!(p.threads >= 1);
        assert!(p.start_time_unix > 1.0e9);
    }
}

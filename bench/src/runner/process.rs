//! Child processes of the runner: servers measured by `wait4`, clients run
//! with a hard timeout.
//!
//! A server's CPU cost is read the only way that needs no cooperation from
//! the server: the kernel's rusage for the whole process, returned by
//! `wait4` when the runner reaps it. That is why servers are started fresh
//! for every run and always reaped here (never through `std`'s `Child::wait`,
//! which would discard the rusage).

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};

/// Whole-life CPU time of a reaped process, in microseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// User-mode CPU time.
    pub user_us: u64,
    /// Kernel-mode CPU time.
    pub sys_us: u64,
}

impl Usage {
    /// User plus system time.
    pub fn total_us(&self) -> u64 {
        self.user_us + self.sys_us
    }
}

/// Picks a free loopback port by binding port 0 and closing the socket.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The loopback address for `port`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A running server (or a wrapper such as `strace` around it).
pub struct Server {
    pid: i32,
    _child: Child,
    reaped: Option<Usage>,
}

impl Server {
    /// Starts `program args...`, stdout discarded, stderr appended to `log`.
    pub fn start(program: &Path, args: &[String], log: &Path) -> io::Result<Server> {
        let log = OpenOptions::new().create(true).append(true).open(log)?;
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        Ok(Server {
            pid: child.id() as i32,
            _child: child,
            reaped: None,
        })
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Waits until `addr` accepts a TCP connection. Fails if the process
    /// exits first or `timeout` passes.
    pub fn wait_ready(&mut self, addr: SocketAddr, timeout: Duration) -> Result<(), String> {
        let limit = Instant::now() + timeout;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if let Some(usage) = wait4(self.pid, true) {
                self.reaped = Some(usage);
                return Err("server exited before accepting".into());
            }
            if Instant::now() >= limit {
                return Err(format!(
                    "server did not accept on {addr} within {timeout:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until something listens on TCP `port` (read from
    /// `/proc/net/tcp{,6}`), without connecting: for servers that act on
    /// every connection, such as the file-transfer example, which would
    /// start sending a file to a readiness probe. Fails if the process
    /// exits first or `timeout` passes.
    pub fn wait_listening(&mut self, port: u16, timeout: Duration) -> Result<(), String> {
        let limit = Instant::now() + timeout;
        loop {
            if is_listening(port) {
                return Ok(());
            }
            if let Some(usage) = wait4(self.pid, true) {
                self.reaped = Some(usage);
                return Err("server exited before listening".into());
            }
            if Instant::now() >= limit {
                return Err(format!(
                    "nothing listened on port {port} within {timeout:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server: SIGTERM, SIGKILL after 2 s, then reaps it and
    /// returns its whole-life CPU usage.
    pub fn stop(mut self) -> Usage {
        self.stop_with(Signal::TERM)
    }

    /// Like [`Server::stop`] but starting with `first` (e.g. SIGINT for
    /// `strace`, which then detaches and writes its summary).
    pub fn stop_with(&mut self, first: Signal) -> Usage {
        self.stop_within(first, Duration::from_secs(2))
    }

    /// Like [`Server::stop_with`], waiting up to `grace` before SIGKILL
    /// (perf needs seconds to close its counters and write its summary).
    pub fn stop_within(&mut self, first: Signal, grace: Duration) -> Usage {
        if let Some(usage) = self.reaped {
            return usage;
        }
        let pid = Pid::from_raw(self.pid).expect("child pid is positive");
        let _ = kill_process(pid, first);
        let limit = Instant::now() + grace;
        while Instant::now() < limit {
            if let Some(usage) = wait4(self.pid, true) {
                self.reaped = Some(usage);
                return usage;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = kill_process(pid, Signal::KILL);
        let usage = wait4(self.pid, false).unwrap_or_default();
        self.reaped = Some(usage);
        usage
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Never leave a server behind, even on an early return.
        if self.reaped.is_none() {
            self.stop_with(Signal::KILL);
        }
    }
}

/// True if a TCP socket is in LISTEN state on `port` (any address).
pub fn is_listening(port: u16) -> bool {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .any(|file| std::fs::read_to_string(file).is_ok_and(|text| listening_in(&text, port)))
}

/// Whether the `/proc/net/tcp` table `text` has a LISTEN (`0A`) socket on
/// `port`.
fn listening_in(text: &str, port: u16) -> bool {
    text.lines().skip(1).any(|line| {
        let mut cols = line.split_whitespace();
        let local = cols.nth(1);
        let state = cols.nth(1);
        state == Some("0A")
            && local
                .and_then(|l| l.rsplit_once(':'))
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
                == Some(port)
    })
}

/// The child processes of `pid` (from `/proc/PID/task/*/children`).
pub fn children(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// CPU time used so far by the live process `pid` (all its threads, not
/// its children), in microseconds, from `/proc/PID/stat`.
pub fn proc_cpu_us(pid: i32) -> Option<Usage> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are
    // fields 14 and 15 of the whole line, 12 and 13 after the name.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    let hz = rustix::param::clock_ticks_per_second();
    let us = |t: u64| t * 1_000_000 / hz;
    Some(Usage {
        user_us: us(ticks(11)?),
        sys_us: us(ticks(12)?),
    })
}

/// Reaps `pid` with `wait4`, returning its rusage; `None` if it is still
/// running (`nohang`) or cannot be waited for. The kernel's figures cover
/// the process and every descendant it reaped itself (RUSAGE_BOTH), which
/// is what makes a forking server such as nginx measurable as a whole.
fn wait4(pid: i32, nohang: bool) -> Option<Usage> {
    let mut status = 0;
    // SAFETY: `rusage` is plain old data; all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let flags = if nohang { libc::WNOHANG } else { 0 };
    loop {
        // SAFETY: wait4 on our own child; both out-pointers are valid,
        // exclusive and live for the duration of the call.
        let r = unsafe { libc::wait4(pid, &mut status, flags, &mut ru) };
        if r == pid {
            let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
            return Some(Usage {
                user_us: us(ru.ru_utime),
                sys_us: us(ru.ru_stime),
            });
        }
        if r == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return None;
    }
}

/// What a finished client printed.
pub struct ClientOutput {
    /// Everything on stdout.
    pub stdout: String,
    /// The last lines of stderr (for error messages).
    pub stderr: String,
    /// Whether it exited with status 0 before the timeout.
    pub success: bool,
}

/// Runs a client to completion, killing it after `timeout`.
pub fn run_client(program: &Path, args: &[String], timeout: Duration) -> io::Result<ClientOutput> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let out = slurp(child.stdout.take());
    let err = slurp(child.stderr.take());
    let limit = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stderr = err.join().unwrap_or_default();
    let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
    Ok(ClientOutput {
        stdout: out.join().unwrap_or_default(),
        stderr: tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
        success: status.is_some_and(|s| s.success()),
    })
}

fn slurp<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

/// A client driven line by line (the C10K client): stdout lines arrive on a
/// channel, stdin stays open for a release line.
pub struct Interactive {
    /// The child process.
    pub child: Child,
    /// Its stdin, dropped (closed) to release it.
    pub stdin: Option<ChildStdin>,
    /// Its stdout, one line per message.
    pub lines: Receiver<String>,
}

/// Starts `program args...` with piped stdin/stdout and stderr to `log`.
pub fn start_interactive(program: &Path, args: &[String], log: &Path) -> io::Result<Interactive> {
    let log: File = OpenOptions::new().create(true).append(true).open(log)?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        if let Some(stdout) = stdout {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        }
    });
    Ok(Interactive {
        child,
        stdin,
        lines,
    })
}

/// Reads a `/proc/PID/status` field such as `VmRSS`, in KiB.
pub fn proc_status_kib(pid: i32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Number of open file descriptors of `pid`.
pub fn fd_count(pid: i32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_listening_ports() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
                    0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1\n   \
                    1: 0100007F:1F91 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 2\n";
        assert!(listening_in(text, 0x1F90));
        assert!(!listening_in(text, 0x1F91));
        assert!(!listening_in(text, 80));
    }

    #[test]
    fn reads_own_cpu_time() {
        let u = proc_cpu_us(std::process::id() as i32);
        assert!(u.is_some());
    }
}

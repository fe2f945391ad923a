//! Runs a real example binary (built by `cargo test` / `cargo build
//! --examples` for the same profile) and finds the address it listens on.
//!
//! Convention for every server example: it logs one line containing
//! `listening` and `addr=IP:PORT` on stderr once its listener is bound, so a
//! test can start it on `127.0.0.1:0` and learn the port without a race.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long an example may take to log its listening address.
pub const START_LIMIT: Duration = Duration::from_secs(30);

/// A running example; killed and reaped on drop, also when a test panics.
pub struct Example {
    /// The child process.
    pub child: Child,
    /// The address from its `listening ... addr=` log line.
    pub addr: SocketAddr,
    /// Every later stderr line (colour codes stripped), for tests that wait
    /// on a log line.
    pub lines: mpsc::Receiver<String>,
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Example {
    /// Starts `examples/<name>` with `args` and waits for its listening line.
    pub fn start(name: &str, args: &[&str]) -> Example {
        Self::start_with(name, args, &[])
    }

    /// Like [`start`](Self::start) with extra environment variables.
    pub fn start_with(name: &str, args: &[&str], env: &[(&str, &str)]) -> Example {
        let mut cmd = Command::new(example_path(name));
        cmd.args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn example {name}: {e}"));
        let lines = drain_lines(child.stderr.take().unwrap());
        let mut example = Example {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            lines,
        };
        example.addr = example
            .wait_for_line(START_LIMIT, |l| {
                l.contains("listening") && l.contains("addr=")
            })
            .and_then(|l| {
                l.split_whitespace()
                    .find_map(|kv| kv.strip_prefix("addr="))
                    .and_then(|a| a.trim_matches(|c| c == '"' || c == ',').parse().ok())
            })
            .unwrap_or_else(|| panic!("example {name} did not log `listening ... addr=`"));
        example
    }

    /// Waits up to `limit` for a stderr line matching `pred`; returns it.
    pub fn wait_for_line(
        &mut self,
        limit: Duration,
        mut pred: impl FnMut(&str) -> bool,
    ) -> Option<String> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if pred(&l) => return Some(l),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }
}

/// Forwards a child's output lines (ANSI stripped) for its whole life, so
/// its logging never blocks on a full pipe.
pub fn drain_lines(out: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(strip_ansi(&line));
        }
    });
    rx
}

/// The path of `examples/<name>` next to this test binary
/// (`target/<profile>/deps/<test>` -> `target/<profile>/examples/<name>`).
pub fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary is not in target/<profile>/deps");
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.is_file(),
        "the {name} example is not built at {}: run `cargo build --examples` \
         (same profile as the tests) first",
        path.display()
    );
    path
}

/// Removes CSI escape sequences (terminal colours) from a log line.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if ('@'..='~').contains(&d) && d != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

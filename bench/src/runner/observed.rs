//! One client run against a server with a counting tool attached (strace
//! for `syscalls`, perf for `backends_syscalls`): start the server, attach
//! the tool, wait until it really counts, drive the client, stop the tool
//! so it writes its file, stop the server.

use std::path::Path;
use std::time::Duration;

use super::env::Paths;
use super::process::{free_port, loopback, Server};
use super::Stack;

/// The tool to attach, for [`observed_run`].
pub struct Observer<'a> {
    /// The program (`strace`, `perf`).
    pub program: &'a str,
    /// Its arguments before `-o FILE -p PID`, which are appended.
    pub args: &'a [&'a str],
    /// True once the tool (first pid) counts every thread of the server
    /// (second pid); polled by the function itself, bounded by its own wait.
    pub attached: &'a dyn Fn(i32, i32) -> bool,
    /// How long to wait for `attached`.
    pub attach_timeout: Duration,
    /// How to stop the tool so it writes its counts.
    pub stop: &'a dyn Fn(&mut Server),
}

/// Runs `client` (returning the number of messages) against `stack` with
/// `observer` attached; returns what the tool wrote to `file` and the
/// message count.
pub fn observed_run(
    stack: &Stack,
    paths: &Paths,
    file: &Path,
    observer: &Observer<'_>,
    client: impl FnOnce(u16) -> Result<f64, String>,
) -> Result<(String, f64), String> {
    let port = free_port().map_err(|e| format!("free port: {e}"))?;
    let mut server = Server::start(&stack.program, &stack.args(port), &paths.log)
        .map_err(|e| format!("spawn: {e}"))?;
    server.wait_ready(loopback(port), Duration::from_secs(5))?;
    let mut args: Vec<String> = observer.args.iter().map(|s| s.to_string()).collect();
    args.extend([
        "-o".to_string(),
        file.display().to_string(),
        "-p".to_string(),
        server.pid().to_string(),
    ]);
    let name = observer.program;
    let mut tool =
        Server::start(Path::new(name), &args, &paths.log).map_err(|e| format!("{name}: {e}"))?;
    let limit = std::time::Instant::now() + observer.attach_timeout;
    while !(observer.attached)(tool.pid(), server.pid()) {
        if std::time::Instant::now() >= limit {
            return Err(format!("{name} did not attach"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let messages = client(port);
    (observer.stop)(&mut tool);
    server.stop();
    let messages = messages?;
    let text = std::fs::read_to_string(file).map_err(|e| format!("{name} output: {e}"))?;
    Ok((text, messages))
}

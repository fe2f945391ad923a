//! Where things are, building them, external tools, and machine facts for
//! the report header.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Locations of the workspace, the binaries and the outputs.
#[derive(Clone, Debug)]
pub struct Paths {
    /// Workspace root (parent of `bench/`).
    pub root: PathBuf,
    /// `target/release`: the harness's own binaries.
    pub bins: PathBuf,
    /// `target/release/examples`: our servers.
    pub examples: PathBuf,
    /// Where `BENCHMARKS.md` goes.
    pub out: PathBuf,
    /// `<out>/bench/results`: plots and raw CSV.
    pub results: PathBuf,
    /// Server and client stderr, appended (outside the results).
    pub log: PathBuf,
}

impl Paths {
    /// Derives every path from the crate location (compile time) and the
    /// running executable (which lives in `target/release`).
    pub fn discover(out: Option<PathBuf>) -> Paths {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("bench/ has a parent")
            .to_path_buf();
        let bins = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| root.join("target/release"));
        let out = out.unwrap_or_else(|| root.clone());
        Paths {
            examples: bins.join("examples"),
            results: out.join("bench/results"),
            log: std::env::temp_dir().join("muduo-bench.log"),
            bins,
            root,
            out,
        }
    }
}

/// Builds our examples (failure tolerated: they may not exist yet) and all
/// harness binaries (failure is fatal). Returns notes for the report.
pub fn build(paths: &Paths) -> Result<Vec<String>, String> {
    let mut notes = Vec::new();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let examples = Command::new(&cargo)
        .args(["build", "--release", "--examples", "-p", "muduo"])
        .current_dir(&paths.root)
        .status();
    if !examples.is_ok_and(|s| s.success()) {
        notes.push("`cargo build --release --examples -p muduo` failed; our servers that did not build are skipped.".into());
        eprintln!("muduo-bench: building our examples failed; continuing with whatever exists");
    }
    let harness = Command::new(&cargo)
        .args(["build", "--release", "-p", "muduo-bench"])
        .current_dir(&paths.root)
        .status();
    if !harness.is_ok_and(|s| s.success()) {
        return Err("`cargo build --release -p muduo-bench` failed".into());
    }
    Ok(notes)
}

/// True if `tool` runs (`tool --version` or `-v` exits at all).
fn have(tool: &str) -> bool {
    let probe = |flag: &str| {
        Command::new(tool)
            .arg(flag)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    probe("--version") || probe("-v")
}

/// Makes sure the Debian package `package` providing `tool` is installed,
/// trying `apt-get install -y` (and `apt-get update` once if that fails).
/// Returns a clear error when the tool stays unavailable.
pub fn ensure_tool(tool: &str, package: &str) -> Result<(), String> {
    if have(tool) {
        return Ok(());
    }
    eprintln!("muduo-bench: `{tool}` not found, trying `apt-get install -y {package}`");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let updated = || {
        Command::new("apt-get")
            .arg("update")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if (install() || (updated() && install())) && have(tool) {
        return Ok(());
    }
    Err(format!(
        "`{tool}` is missing and `apt-get install -y {package}` failed (run it as root, or install {package} by hand); this section is skipped"
    ))
}

/// Facts about the machine for the report header.
pub struct Machine {
    /// `model name` from /proc/cpuinfo.
    pub cpu: String,
    /// `uname -r`.
    pub kernel: String,
    /// Logical CPUs available.
    pub cores: usize,
    /// `rustc -V`.
    pub rustc: String,
    /// UTC date and time.
    pub date: String,
}

impl Machine {
    /// Reads the facts from /proc and a few commands.
    pub fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        Machine {
            cpu,
            kernel,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            rustc: command_line("rustc", &["-V"]),
            date: command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        }
    }
}

/// First line of a command's stdout, or `unknown`.
fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// The 1-minute load average, to show how busy the shared machine was.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

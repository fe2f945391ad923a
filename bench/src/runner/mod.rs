//! The benchmark runner behind `muduo-bench all`: starts every server as a
//! child process, drives it with a client, reaps it for its CPU time, and
//! writes `BENCHMARKS.md` plus plots.
//!
//! Sections: [`pingpong`] (throughput and CPU per message), [`http`] (wrk),
//! [`syscalls`] (strace counts per message/request), [`httpserver`] (our
//! `http_server` against hyper, with targets), [`c10k`] (memory per idle
//! connection), [`files`] (file transfer modes, static files against
//! nginx) and [`memcached`] (our memcached example against memcached).
//! Run on their own: [`backends`] (our epoll and io_uring backends against
//! bare loops and tokio, with [`backends_syscalls`] counting syscalls
//! through perf) and [`models`] (the models lab, which writes its own page,
//! `MODELS.md`). [`report`] assembles the Markdown, [`plot`] the PNGs.

pub mod backends;
pub mod backends_syscalls;
pub mod c10k;
pub mod env;
pub mod files;
pub mod http;
pub mod httpserver;
pub mod memcached;
pub mod models;
pub mod observed;
pub mod pingpong;
pub mod plot;
pub mod process;
pub mod report;
pub mod stats;
pub mod syscalls;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use env::Paths;

/// How much to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One cell per section, one 1 s run each: proves the plumbing works.
    Smoke,
    /// The default: a reduced matrix, 3 runs of 2 s, under 10 minutes.
    Short,
    /// Everything, 3 runs of 4 s per cell.
    Full,
}

impl Mode {
    /// Name used in the report.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Smoke => "smoke",
            Mode::Short => "short",
            Mode::Full => "full",
        }
    }

    /// The command-line flag selecting the mode (with a leading space), or
    /// nothing for the default.
    pub fn flag(self) -> &'static str {
        match self {
            Mode::Smoke => " --smoke",
            Mode::Short => "",
            Mode::Full => " --full",
        }
    }
}

/// One server configuration: a binary plus its `--threads`.
#[derive(Clone, Debug)]
pub struct Stack {
    /// Label in tables and plots, e.g. `ours-t2`, `epoll-t1`.
    pub name: String,
    /// The executable.
    pub program: PathBuf,
    /// Value passed as `--threads`.
    pub threads: usize,
    /// True for muduo-rs's own examples.
    pub ours: bool,
    /// Arguments after `--threads N`, e.g. `--poller uring`.
    pub extra: Vec<String>,
}

impl Stack {
    /// A stack named `name` running `dir/binary --threads threads`.
    pub fn new(name: &str, dir: &Path, binary: &str, threads: usize, ours: bool) -> Stack {
        Stack {
            name: name.to_string(),
            program: dir.join(binary),
            threads,
            ours,
            extra: Vec::new(),
        }
    }

    /// The same stack with `args` appended to its command line.
    pub fn with_args(mut self, args: &[&str]) -> Stack {
        self.extra.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// The server's arguments for `port`.
    pub fn args(&self, port: u16) -> Vec<String> {
        let mut args = vec![
            "--addr".into(),
            format!("127.0.0.1:{port}"),
            "--threads".into(),
            self.threads.to_string(),
        ];
        args.extend(self.extra.iter().cloned());
        args
    }

    /// The command line as shown in the report (path relative to the
    /// workspace, port as `PORT`).
    pub fn shown(&self, paths: &Paths) -> String {
        let mut shown = format!(
            "{} --addr 127.0.0.1:PORT --threads {}",
            relative(&self.program, paths),
            self.threads
        );
        for arg in &self.extra {
            shown.push(' ');
            shown.push_str(arg);
        }
        shown
    }
}

/// `path` relative to the workspace root when it is inside it.
pub fn relative(path: &Path, paths: &Paths) -> String {
    path.strip_prefix(&paths.root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Measurements one section leaves for a later one, so that `all` does not
/// run the same cell twice (the `httpserver` section reuses what `http` and
/// `syscalls` measured for `http_server` and `hyper_http`).
#[derive(Default)]
pub struct Shared {
    /// wrk samples by (load, stack name), left by the `http` section.
    pub http: BTreeMap<(http::Load, String), Vec<http::Sample>>,
    /// strace figures by (load, stack name), left by the `syscalls` section.
    pub http_syscalls: BTreeMap<(http::Load, String), syscalls::PerMessage>,
    /// Set when the `httpserver` section runs after `http`: `http` then
    /// leaves the http_server-vs-hyper targets table to it.
    pub http_targets_elsewhere: bool,
}

/// Everything a run produces for the report.
#[derive(Default)]
pub struct Report {
    /// Markdown sections, in order.
    pub sections: Vec<String>,
    /// Skips, failures and caveats, shown in a "Notes" list.
    pub notes: Vec<String>,
    /// Exact command lines used, shown under "Commands".
    pub commands: Vec<String>,
    /// Measurements shared between sections.
    pub shared: Shared,
}

impl Report {
    /// Adds a note once (the same skip is reported by several sections).
    pub fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        if !self.notes.contains(&note) {
            eprintln!("muduo-bench: note: {note}");
            self.notes.push(note);
        }
    }

    /// Records a command template once.
    pub fn command(&mut self, cmd: impl Into<String>) {
        let cmd = cmd.into();
        if !self.commands.contains(&cmd) {
            self.commands.push(cmd);
        }
    }

    /// Keeps the stacks whose binary exists; notes the others as skipped.
    pub fn available(&mut self, stacks: Vec<Stack>, paths: &Paths) -> Vec<Stack> {
        stacks
            .into_iter()
            .filter(|s| {
                let ok = s.program.is_file();
                if !ok {
                    self.note(format!(
                        "Skipped `{}`: `{}` does not exist (not written or not built yet).",
                        s.name,
                        relative(&s.program, paths)
                    ));
                }
                ok
            })
            .collect()
    }
}

/// Which sections to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// Every section.
    All,
    /// Ping-pong matrix only.
    PingPong,
    /// wrk only.
    Http,
    /// strace only.
    Syscalls,
    /// Our `http_server` against `hyper_http` only.
    HttpServer,
    /// C10K only.
    C10k,
    /// File transfer modes and static files against nginx only.
    Files,
    /// Our memcached example against memcached only.
    Memcached,
    /// The models lab: writes `MODELS.md` instead of `BENCHMARKS.md`.
    Models,
    /// Our epoll and io_uring backends against bare epoll, bare io_uring
    /// and tokio. Not part of `all` (it takes about as long as `all`
    /// itself); it updates only its own block of `BENCHMARKS.md`.
    Backends,
}

impl Section {
    /// The subcommand naming the section.
    pub fn name(self) -> &'static str {
        match self {
            Section::All => "all",
            Section::PingPong => "pingpong",
            Section::Http => "http",
            Section::Syscalls => "syscalls",
            Section::HttpServer => "httpserver",
            Section::C10k => "c10k",
            Section::Files => "files",
            Section::Memcached => "memcached",
            Section::Models => "models",
            Section::Backends => "backends",
        }
    }
}

/// Options beyond the mode.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Size of the file-transfer file in MiB (default: 1024, 64 in smoke
    /// mode); the big static file is the smaller of this and 100 MiB.
    pub file_size_mib: Option<u64>,
}

/// Runs the requested sections and writes the report; returns its path.
pub fn run(
    section: Section,
    mode: Mode,
    opts: &Options,
    paths: &Paths,
    build: bool,
) -> Result<PathBuf, String> {
    let mut report = Report::default();
    if build {
        for note in env::build(paths)? {
            report.note(note);
        }
    }
    std::fs::create_dir_all(&paths.results)
        .map_err(|e| format!("cannot create {}: {e}", paths.results.display()))?;
    if let Err(e) = process::free_port() {
        return Err(format!("cannot bind 127.0.0.1:0: {e}"));
    }
    if let Err(e) = crate::sys::raise_nofile_limit() {
        report.note(format!("Could not raise RLIMIT_NOFILE: {e}."));
    }
    if section == Section::Models {
        return models::run(mode, paths, std::mem::take(&mut report.notes));
    }
    let machine = env::Machine::read();
    let load_before = env::loadavg();
    let started = std::time::Instant::now();
    if section == Section::Backends {
        let block = backends::run(mode, paths, &mut report, &machine, &load_before, started);
        return report::write_block(paths, backends::BLOCK, &block);
    }
    let wants = |s: Section| section == Section::All || section == s;
    if wants(Section::PingPong) {
        pingpong::run(mode, paths, &mut report);
    }
    report.shared.http_targets_elsewhere = wants(Section::HttpServer);
    if wants(Section::Http) {
        http::run(mode, paths, &mut report);
    }
    if wants(Section::Syscalls) {
        syscalls::run(mode, paths, &mut report);
    }
    if wants(Section::HttpServer) {
        httpserver::run(mode, paths, &mut report);
    }
    if wants(Section::C10k) {
        c10k::run(mode, paths, &mut report);
    }
    if wants(Section::Files) {
        files::run(mode, opts, paths, &mut report);
    }
    if wants(Section::Memcached) {
        memcached::run(mode, paths, &mut report);
    }
    let mut invocation = format!("{}{}", section.name(), mode.flag());
    if let Some(mib) = opts.file_size_mib {
        invocation.push_str(&format!(" --file-size-mib {mib}"));
    }
    let header = report::Header {
        invocation,
        machine,
        mode,
        load_before,
        load_after: env::loadavg(),
        elapsed: started.elapsed(),
    };
    report::write(paths, &header, &report)
}

//! `muduo-bench`: the benchmark runner.
//!
//! `cargo run --release -p muduo-bench -- all [--full] [--out DIR]`
//!
//! Builds our examples and the harness, then runs the ping-pong matrix, wrk,
//! strace, http_server-vs-hyper, C10K and file sections against our servers
//! and the peers, and writes `BENCHMARKS.md` (default: the workspace root)
//! plus plots under `bench/results/`. A single section can be run by naming
//! it instead of `all`. `--file-size-mib N` shrinks (or grows) the file of
//! the file-transfer runs. Run on their own (not part of `all`): `models`
//! runs the models lab and writes `MODELS.md`; `backends` compares our epoll
//! and io_uring backends with bare epoll, bare io_uring and tokio, and
//! rewrites only its own block of `BENCHMARKS.md`. Hidden flags: `--smoke`
//! (one cell per section, 1 s runs: a plumbing check) and `--no-build`
//! (skip the two cargo builds).

use std::path::PathBuf;

use muduo_bench::runner::{self, env::Paths, Mode, Options, Section};

const USAGE: &str = "muduo-bench <all|pingpong|http|syscalls|httpserver|c10k|files|memcached|models|backends> [--full|--smoke] [--no-build] [--out DIR] [--file-size-mib N]

Runs one benchmark section side by side against its peers and writes the
report (BENCHMARKS.md, or MODELS.md for `models`) into --out (default: the
workspace root). Short runs by default; --full for the published figures,
--smoke for a quick check that everything starts.";

fn main() {
    let mut section = None;
    let mut mode = Mode::Short;
    let mut out = None;
    let mut build = true;
    let mut opts = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "all" => section = Some(Section::All),
            "pingpong" => section = Some(Section::PingPong),
            "http" => section = Some(Section::Http),
            "syscalls" => section = Some(Section::Syscalls),
            "httpserver" => section = Some(Section::HttpServer),
            "c10k" => section = Some(Section::C10k),
            "files" => section = Some(Section::Files),
            "memcached" => section = Some(Section::Memcached),
            "models" => section = Some(Section::Models),
            "backends" => section = Some(Section::Backends),
            "-h" | "--help" => {
                println!("usage: {USAGE}");
                return;
            }
            "--full" => mode = Mode::Full,
            "--smoke" => mode = Mode::Smoke,
            "--no-build" => build = false,
            "--out" => {
                let dir = args
                    .next()
                    .unwrap_or_else(|| muduo_bench::cli::die(USAGE, "--out needs a directory"));
                out = Some(PathBuf::from(dir));
            }
            "--file-size-mib" => {
                let n = args.next().unwrap_or_else(|| {
                    muduo_bench::cli::die(USAGE, "--file-size-mib needs a number")
                });
                let mib: u64 = muduo_bench::cli::parse(USAGE, "--file-size-mib", &n);
                if mib == 0 {
                    muduo_bench::cli::die(USAGE, "--file-size-mib must be at least 1");
                }
                opts.file_size_mib = Some(mib);
            }
            _ => muduo_bench::cli::die(USAGE, &format!("unknown argument {arg}")),
        }
    }
    let Some(section) = section else {
        muduo_bench::cli::die(USAGE, "name a section, e.g. `all`")
    };
    let paths = Paths::discover(out);
    match runner::run(section, mode, &opts, &paths, build) {
        Ok(path) => println!("muduo-bench: wrote {}", path.display()),
        Err(e) => {
            eprintln!("muduo-bench: {e}");
            std::process::exit(1);
        }
    }
}

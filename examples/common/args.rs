//! A tiny `--flag value` parser shared by the examples (no CLI crate needed).
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::IsTerminal;
use std::str::FromStr;
use std::time::Duration;

/// Help for `--poller`, which every example accepts (see [`Args::parse`]).
const POLLER_HELP: &str =
    "  --poller KIND           I/O backend: epoll (default), epoll-et, poll, uring, auto
                          (MUDUO_BACKEND=KIND does the same)";

/// Parsed `--name value` pairs and bare `--switch`es.
pub struct Args {
    values: HashMap<String, String>,
    program: String,
}

impl Args {
    /// Parses the process arguments; prints `usage` and exits on `--help`
    /// (status 0) or on anything that is not `--name [value]` with a name
    /// that `usage` mentions (status 1).
    ///
    /// Every example also takes `--poller KIND` (epoll, epoll-et, poll,
    /// uring, auto): it is checked here and exported as `MUDUO_BACKEND`, so
    /// every loop the example creates without an explicit choice uses it.
    /// Call this first in `main`, before any thread is started.
    pub fn parse(usage: &str) -> Args {
        let mut it = std::env::args();
        let program = it
            .next()
            .map(|p| {
                let name = std::path::Path::new(&p)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned());
                name.unwrap_or(p)
            })
            .unwrap_or_default();
        let mut values = HashMap::new();
        let mut known = known_flags(usage);
        known.push("poller");
        let rest: Vec<String> = it.collect();
        let mut i = 0;
        while i < rest.len() {
            let a = &rest[i];
            if a == "--help" || a == "-h" {
                // Not println!: `example --help | head` closes the pipe early,
                // which must not panic.
                use std::io::Write;
                let mut out = std::io::stdout();
                let _ = writeln!(out, "{usage}");
                if !usage.contains("--poller") {
                    let _ = writeln!(out, "{POLLER_HELP}");
                }
                std::process::exit(0);
            }
            let Some(name) = a.strip_prefix("--") else {
                eprintln!("{program}: unexpected argument {a:?} (see --help)");
                std::process::exit(1);
            };
            let key = name.split_once('=').map_or(name, |(k, _)| k);
            if !known.contains(&key) {
                eprintln!("{program}: unknown option --{key} (see --help)");
                std::process::exit(1);
            }
            if let Some((k, v)) = name.split_once('=') {
                values.insert(k.to_string(), v.to_string());
                i += 1;
            } else if i + 1 < rest.len() && !rest[i + 1].starts_with("--") {
                values.insert(name.to_string(), rest[i + 1].clone());
                i += 2;
            } else {
                values.insert(name.to_string(), String::new());
                i += 1;
            }
        }
        let args = Args { values, program };
        if let Some(kind) = args.values.get("poller") {
            if muduo::PollerKind::parse(kind).is_none() {
                args.fail(
                    "poller",
                    kind,
                    "expected epoll, epoll-et, poll, uring or auto",
                );
            }
            // Single-threaded still (see above), so changing the environment
            // cannot race a reader.
            std::env::set_var("MUDUO_BACKEND", kind);
        }
        args
    }

    /// The value of `--name`, parsed, or `default`; exits with a clear message on a bad value.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> T
    where
        T::Err: std::fmt::Display,
    {
        match self.values.get(name) {
            None => default,
            Some(v) => v.parse().unwrap_or_else(|e| self.fail(name, v, e)),
        }
    }

    /// `--name SECS` as a `Duration` (fractions allowed), or `default`.
    /// Negative, NaN and values too large for a `Duration` (about 5.8e11
    /// years) exit with a one-line error; the largest valid values are
    /// accepted and in practice mean "never".
    pub fn get_secs(&self, name: &str, default: Duration) -> Duration {
        match self.values.get(name) {
            None => default,
            Some(v) => {
                let secs: f64 = v.parse().unwrap_or_else(|e| self.fail(name, v, e));
                Duration::try_from_secs_f64(secs).unwrap_or_else(|_| {
                    self.fail(
                        name,
                        v,
                        "expected seconds between 0 and 1.8e19 (a number, not negative)",
                    )
                })
            }
        }
    }

    /// Prints `program: invalid value ... for --name: why` and exits with status 1.
    pub fn fail(&self, name: &str, value: &str, why: impl std::fmt::Display) -> ! {
        eprintln!(
            "{}: invalid value {value:?} for --{name}: {why}",
            self.program
        );
        std::process::exit(1);
    }

    /// True when `--name` was given.
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
}

/// Every `--name` that appears in a usage text.
fn known_flags(usage: &str) -> Vec<&str> {
    usage
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .filter_map(|w| w.strip_prefix("--"))
        .filter(|w| !w.is_empty())
        .collect()
}

/// Logs to stderr, at `info` unless `RUST_LOG` says otherwise. Colour only
/// when stderr is a terminal and `NO_COLOR` is not set, so logs redirected
/// to a file or a pipe carry no escape codes.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .try_init();
}

/// Runs an example's `run`, printing an error as one clear line (not
/// `Debug` output) and exiting with status 1.
pub fn main_with(name: &str, run: impl FnOnce() -> std::io::Result<()>) {
    if let Err(e) = run() {
        eprintln!("{name}: error: {e}");
        std::process::exit(1);
    }
}

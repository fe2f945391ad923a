//! A tiny `--flag value` parser shared by the examples (no CLI crate needed).
#![allow(dead_code)]

use std::collections::HashMap;
use std::str::FromStr;

/// Parsed `--name value` pairs and bare `--switch`es.
pub struct Args {
    values: HashMap<String, String>,
    program: String,
}

impl Args {
    /// Parses the process arguments; prints `usage` and exits on `--help`
    /// or on anything that is not `--name [value]`.
    pub fn parse(usage: &str) -> Args {
        let mut it = std::env::args();
        let program = it.next().unwrap_or_default();
        let mut values = HashMap::new();
        let rest: Vec<String> = it.collect();
        let mut i = 0;
        while i < rest.len() {
            let a = &rest[i];
            if a == "--help" || a == "-h" {
                println!("{usage}");
                std::process::exit(0);
            }
            let Some(name) = a.strip_prefix("--") else {
                eprintln!("unexpected argument {a:?}\n\n{usage}");
                std::process::exit(2);
            };
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
        Args { values, program }
    }

    /// The value of `--name`, parsed, or `default`; exits with a clear message on a bad value.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> T
    where
        T::Err: std::fmt::Display,
    {
        match self.values.get(name) {
            None => default,
            Some(v) => v.parse().unwrap_or_else(|e| {
                eprintln!("{}: invalid value {v:?} for --{name}: {e}", self.program);
                std::process::exit(2);
            }),
        }
    }

    /// True when `--name` was given.
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
}

/// Logs to stderr, at `info` unless `RUST_LOG` says otherwise.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
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

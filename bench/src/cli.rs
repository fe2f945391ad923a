//! Minimal, dependency-free argument parsing.
//!
//! Every peer server accepts exactly the flags of muduo-rs's examples
//! (`--addr IP:PORT --threads N`) so the runner can start any server with the
//! same command line; the clients take positional arguments like muduo's
//! original C++ clients.

use std::net::SocketAddr;
use std::str::FromStr;

/// Prints `msg` and the usage line to stderr, then exits with status 2.
pub fn die(usage: &str, msg: &str) -> ! {
    eprintln!("error: {msg}\nusage: {usage}");
    std::process::exit(2)
}

/// Flags shared by all servers: where to listen and how many I/O threads.
#[derive(Clone, Debug)]
pub struct ServerArgs {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Number of I/O threads; 0 means "single reactor" (one thread).
    pub threads: usize,
}

impl ServerArgs {
    /// Parses `--addr IP:PORT` (or `--addr=...`) and `--threads N` from the
    /// process arguments; exits with a usage message on anything else.
    pub fn from_env(program: &str) -> Self {
        let usage = format!("{program} --addr 127.0.0.1:PORT [--threads N]");
        let mut addr = None;
        let mut threads = 0;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) => (f.to_string(), Some(v.to_string())),
                None => (arg.clone(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .unwrap_or_else(|| die(&usage, &format!("{flag} needs a value")))
            };
            match flag.as_str() {
                "--addr" => addr = Some(parse(&usage, "--addr", &value())),
                "--threads" => threads = parse(&usage, "--threads", &value()),
                "-h" | "--help" => die(&usage, "help requested"),
                _ => die(&usage, &format!("unknown argument {arg}")),
            }
        }
        let addr = addr.unwrap_or_else(|| die(&usage, "--addr is required"));
        ServerArgs { addr, threads }
    }
}

/// Parses `text` as `T`, naming `what` in the error message.
pub fn parse<T: FromStr>(usage: &str, what: &str, text: &str) -> T {
    text.parse()
        .unwrap_or_else(|_| die(usage, &format!("invalid {what}: {text:?}")))
}

/// Parses the positional argument `index` (0-based, program name excluded).
pub fn positional<T: FromStr>(usage: &str, index: usize, what: &str) -> T {
    let text = std::env::args()
        .nth(index + 1)
        .unwrap_or_else(|| die(usage, &format!("missing <{what}>")));
    parse(usage, what, &text)
}

/// Exits with a usage message unless exactly `count` positionals were given.
pub fn expect_positionals(usage: &str, count: usize) {
    let given = std::env::args().count().saturating_sub(1);
    if given != count {
        die(usage, &format!("expected {count} arguments, got {given}"));
    }
}

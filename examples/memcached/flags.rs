//! memcached's own command-line flags (`-p 11211 -t 4 -m 64 ...`), which
//! the shared `--long` parser of the other examples does not handle.

use std::net::{IpAddr, SocketAddr};

pub const USAGE: &str = "memcached: a memcached text-protocol server on muduo-rs
(classic commands and the meta commands mg ms md ma me mn, as memcached 1.6.18)

usage: memcached [-p PORT] [-l ADDR] [-t THREADS] [-m MEGABYTES] [-c MAXCONNS] [-I SIZE] [-U 0]
  -p, --port=PORT            TCP port (default 11211; 0 picks a free port)
  -l, --listen=ADDR          interface to listen on (default 127.0.0.1)
  -t, --threads=THREADS      I/O threads (default 4)
  -m, --memory-limit=MB      item memory in megabytes (default 64)
  -c, --conn-limit=MAXCONNS  max simultaneous connections (default 1024)
  -I, --max-item-size=SIZE   max item size, k/m suffix allowed (default 1m)
  -U, --udp-port=PORT        accepted for compatibility; only 0 (no UDP)
  -v                         accepted and ignored (logging follows RUST_LOG)
      --poller=KIND          I/O backend: epoll (default), epoll-et, poll, uring, auto
  -h, --help                 this text";

/// The settings memcached's flags give.
#[derive(Clone, Debug)]
pub struct Settings {
    pub addr: SocketAddr,
    pub threads: usize,
    pub memory_limit: usize,
    pub max_conns: usize,
    pub item_size_max: usize,
    /// The I/O backend (`--poller`; default: `MUDUO_BACKEND`, else epoll).
    pub poller: muduo::PollerKind,
}

/// What the command line asked for.
pub enum Parsed {
    Run(Settings),
    Help,
}

/// Parses `args` (without the program name). Accepts `-p 1`, `-p1`,
/// `--port 1` and `--port=1`.
pub fn parse(args: &[String]) -> Result<Parsed, String> {
    let mut port: u16 = 11211;
    let mut ip: IpAddr = "127.0.0.1".parse().unwrap();
    let mut s = Settings {
        addr: "127.0.0.1:11211".parse().unwrap(),
        threads: 4,
        memory_limit: 64 << 20,
        max_conns: 1024,
        item_size_max: 1 << 20,
        poller: muduo::PollerKind::from_env(),
    };
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        let (name, inline) = split_flag(a)?;
        if matches!(name, "h" | "help") {
            return Ok(Parsed::Help);
        }
        if matches!(name, "v" | "vv" | "vvv" | "verbose") {
            continue;
        }
        let value = match inline {
            Some(v) => v.to_string(),
            None => {
                let v = args
                    .get(i)
                    .ok_or_else(|| format!("option {a} requires a value"))?;
                i += 1;
                v.clone()
            }
        };
        match name {
            "p" | "port" => port = number(name, &value)?,
            "l" | "listen" => {
                ip = value
                    .parse()
                    .map_err(|_| format!("invalid listen address {value:?}"))?
            }
            "t" | "threads" => {
                s.threads = number(name, &value)?;
                if s.threads == 0 {
                    return Err("number of threads must be greater than 0".into());
                }
            }
            "m" | "memory-limit" => {
                let mb: usize = number(name, &value)?;
                s.memory_limit = mb
                    .checked_mul(1 << 20)
                    .filter(|&b| b > 0)
                    .ok_or_else(|| format!("invalid memory limit {value:?}"))?;
            }
            "c" | "conn-limit" => {
                s.max_conns = number(name, &value)?;
                if s.max_conns == 0 {
                    return Err("maximum connections must be greater than 0".into());
                }
            }
            "I" | "max-item-size" => s.item_size_max = size(&value)?,
            "poller" => {
                s.poller = muduo::PollerKind::parse(&value).ok_or_else(|| {
                    format!("invalid value {value:?} for --poller: expected epoll, epoll-et, poll, uring or auto")
                })?
            }
            "U" | "udp-port" => {
                let udp: u16 = number(name, &value)?;
                if udp != 0 {
                    return Err("UDP is not supported: use -U 0".into());
                }
            }
            _ => return Err(format!("unknown option {a:?} (try -h)")),
        }
    }
    if s.item_size_max > s.memory_limit / 2 {
        return Err(format!(
            "cannot set item size limit higher than 1/2 of memory max ({} > {})",
            s.item_size_max,
            s.memory_limit / 2
        ));
    }
    s.addr = SocketAddr::new(ip, port);
    Ok(Parsed::Run(s))
}

/// `-p5` -> ("p", Some("5")), `--port=5` -> ("port", Some("5")), `-p` -> ("p", None).
fn split_flag(a: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(long) = a.strip_prefix("--") {
        return Ok(match long.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (long, None),
        });
    }
    let short = a
        .strip_prefix('-')
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("unexpected argument {a:?} (try -h)"))?;
    if short.starts_with('v') && short.bytes().all(|b| b == b'v') {
        return Ok((short, None));
    }
    let first = short.chars().next().map_or(0, char::len_utf8);
    let (k, rest) = short.split_at(first);
    Ok((k, (!rest.is_empty()).then_some(rest)))
}

fn number<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("invalid value {v:?} for -{name}"))
}

/// `1024`, `512k`, `1m` (memcached's -I syntax). Bounds as memcached's:
/// at least 1 KiB, at most 1 GiB.
fn size(v: &str) -> Result<usize, String> {
    let (digits, unit) = match v.as_bytes().last() {
        Some(b'k' | b'K') => (&v[..v.len() - 1], 1usize << 10),
        Some(b'm' | b'M') => (&v[..v.len() - 1], 1 << 20),
        _ => (v, 1),
    };
    let n: usize = number("I", digits)?;
    let n = n
        .checked_mul(unit)
        .ok_or_else(|| format!("invalid item size {v:?}"))?;
    if n < 1024 {
        return Err("item max size cannot be less than 1024 bytes".into());
    }
    if n > 1 << 30 {
        return Err("cannot set item size limit higher than 1 gigabyte".into());
    }
    Ok(n)
}

//! Differential test of `examples/memcached` against the real memcached
//! (`apt-get install memcached`; `.ci/run` installs it): the same bytes go
//! to both servers, and the replies must be the same bytes.
//!
//! Covered: a hand-written corpus of every command and error path, seeded
//! random command sequences, pipelined batches, and a sequence split at
//! every byte, and random malformed bytes. The meta commands `mg ms md ma
//! me` have their own corpus (every flag: `b` base64 keys, `O` opaque, `q`
//! quiet mode against errors, `k s t f c v h T N R u` on `mg`, `ms` modes
//! `MS ME MA MP MR` with `C`, `I`, `F`, `T`, `md` with `C q I T`, `ma` with
//! `N J D M t c v`, the win/stale flags `W X Z`, the item size limit and
//! every error string), appear in the random sequences mixed with the
//! classic commands, and have a sequence split at every byte. What
//! legitimately differs is normalized, each with its reason: the `VERSION`
//! line (ours names itself), `STAT` lines (pids, times, memory figures, slab
//! classes ours does not have), which are dropped before comparing, and
//! the `exp=` and `la=` seconds of `me` (each server counts them on its own
//! clock, whose ticks fall at different instants).
//!
//! Each case is followed by the meta no-op `mn` (reply `MN`), so a reply is
//! known to be complete without waiting for silence; cases that must close
//! the connection are read to EOF instead.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::example::Example;
use support::with_timeout;

const LIMIT: Duration = Duration::from_secs(240);
const SENTINEL: &[u8] = b"mn\r\n";
const SENTINEL_REPLY: &[u8] = b"MN\r\n";
const READ_LIMIT: Duration = Duration::from_secs(5);

/// The real memcached, killed on drop.
struct Real {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Real {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn memcached_installed() -> bool {
    Command::new("memcached")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Starts memcached on a free loopback port (found by binding port 0 and
/// releasing it; retried if someone else took it meanwhile).
fn start_real(extra: &[&str]) -> Real {
    assert!(
        memcached_installed(),
        "the differential test needs the real memcached: apt-get install memcached \
         (.ci/run installs it)"
    );
    let root = rustix::process::geteuid().is_root();
    for _ in 0..10 {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new("memcached");
        cmd.args([
            "-p",
            &port.to_string(),
            "-U",
            "0",
            "-l",
            "127.0.0.1",
            "-t",
            "2",
        ])
        // memcached's background LRU threads briefly hold references to
        // items; `incr` then takes its copy path instead of rewriting in
        // place, so whether "100" decr 95 reads "5" or "5  " would depend
        // on their timing. Without them its replies are deterministic.
        .args(["-o", "no_lru_crawler,no_lru_maintainer"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if root {
            cmd.args(["-u", "root"]);
        }
        let mut child = cmd.spawn().expect("spawn memcached");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break; // exited: the port was taken; try another
            }
            if TcpStream::connect(addr).is_ok() {
                return Real { child, addr };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("could not start memcached on a free port");
}

fn start_ours(extra: &[&str]) -> Example {
    let mut args = vec!["-p", "0", "-l", "127.0.0.1", "-t", "2"];
    args.extend_from_slice(extra);
    Example::start("memcached", &args)
}

struct Pair {
    real: Real,
    ours: Example,
    /// memcached's bytes_read minus ours that is not a difference (see
    /// `compare_counters`).
    read_offset: std::cell::Cell<i64>,
}

impl Pair {
    fn start() -> Pair {
        Pair {
            real: start_real(&[]),
            ours: start_ours(&[]),
            read_offset: std::cell::Cell::new(0),
        }
    }

    /// Compares the `stats` counters both servers kept over everything sent
    /// so far. Only counters whose meaning does not depend on memory layout
    /// or timing: `bytes` (item sizes), `bytes_written` (the VERSION line
    /// differs), `curr_items` (both drop dead items lazily, memcached per
    /// slab class and ours per shard, so after a flush or an expiry they
    /// hold different numbers of dead items for a while), connection counts
    /// and times are left out.
    /// With `dead_lookups`, also `get_expired` and `get_flushed`: lookups
    /// that found a dead item, which depend on which dead items each
    /// server already dropped (see `curr_items`); exact only for cases
    /// written so that no allocation can reach a dead item first.
    fn compare_counters(&self, what: &str, dead_lookups: bool) {
        // `stats reset` zeroes bytes_read, and the sentinel sent after the
        // case may be read before or after it: from there on the two may
        // differ by that sentinel's bytes, so the offset is recorded.
        let reset = what.contains("stats reset");
        const COUNTERS: &[&str] = &[
            "cmd_get",
            "cmd_set",
            "cmd_flush",
            "cmd_touch",
            "cmd_meta",
            "get_hits",
            "get_misses",
            "delete_misses",
            "delete_hits",
            "incr_misses",
            "incr_hits",
            "decr_misses",
            "decr_hits",
            "cas_misses",
            "cas_hits",
            "cas_badval",
            "touch_hits",
            "touch_misses",
            "store_too_large",
            "store_no_memory",
            "bytes_read",
            "total_items",
            "evictions",
        ];
        let stats = |addr| {
            let mut s = connect(addr);
            s.write_all(b"stats\r\n").unwrap();
            let (reply, _) = read_until(&mut s, |b| b.ends_with(b"END\r\n"));
            let text = String::from_utf8_lossy(&reply).to_string();
            let dead: &[&str] = if dead_lookups {
                &["get_expired", "get_flushed"]
            } else {
                &[]
            };
            COUNTERS
                .iter()
                .chain(dead)
                .map(|name| {
                    let value = text
                        .lines()
                        .find_map(|l| l.strip_prefix(&format!("STAT {name} ")))
                        .unwrap_or_else(|| panic!("{what}: no {name} in\n{text}"))
                        .to_string();
                    (*name, value)
                })
                .collect::<Vec<_>>()
        };
        // bytes_read counts this connection's `stats` line too, on both.
        let (real, mut ours) = (stats(self.real.addr), stats(self.ours.addr));
        let read = |v: &[(&str, String)]| -> i64 {
            v.iter()
                .find(|(n, _)| *n == "bytes_read")
                .unwrap()
                .1
                .parse()
                .unwrap()
        };
        if reset {
            self.read_offset.set(read(&real) - read(&ours));
        }
        let shifted = read(&ours) + self.read_offset.get();
        for (name, value) in ours.iter_mut() {
            if *name == "bytes_read" {
                *value = shifted.to_string();
            }
        }
        let differ: Vec<String> = real
            .iter()
            .zip(&ours)
            .filter(|(r, o)| r.1 != o.1)
            .map(|(r, o)| format!("{}: memcached {}, ours {}", r.0, r.1, o.1))
            .collect();
        assert!(
            differ.is_empty(),
            "{what}: stats counters differ:\n  {}",
            differ.join("\n  ")
        );
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s
}

/// Reads until `done(bytes so far)` or EOF; returns (bytes, eof).
fn read_until(s: &mut TcpStream, done: impl Fn(&[u8]) -> bool) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + READ_LIMIT;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    while !done(&got) {
        match s.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return (got, true),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if Instant::now() > deadline {
                    return (got, false);
                }
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    (got, false)
}

/// How a case ends.
#[derive(Clone, Copy, PartialEq)]
enum End {
    /// Followed by `mn`; read up to its `MN`.
    Sentinel,
    /// The server must close; read to EOF.
    Eof,
}

/// Sends `parts` (one write each, a short pause between them so the server
/// sees them in separate reads) on `s`, then reads the reply.
fn exchange(s: &mut TcpStream, parts: &[&[u8]], end: End) -> (Vec<u8>, bool) {
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        if s.write_all(p).is_err() {
            break; // the server closed; what it sent is still readable
        }
    }
    if end == End::Sentinel {
        let _ = s.write_all(SENTINEL);
        // A case may hold `mn` commands of its own, and a server may send
        // the replies up to one of them in a packet of their own: wait for
        // every `MN`, not the first.
        let want = mn_commands(&[&parts.concat(), SENTINEL].concat());
        read_until(s, |b| b.ends_with(SENTINEL_REPLY) && mn_replies(b) >= want)
    } else {
        read_until(s, |_| false)
    }
}

/// Complete request lines whose command is `mn` (a data block that
/// happens to read `mn` counts too; the read then waits for its deadline,
/// which only slows the case).
fn mn_commands(request: &[u8]) -> usize {
    let mut lines: Vec<&[u8]> = request.split(|&b| b == b'\n').collect();
    lines.pop(); // after the last '\n': not a complete line
    lines
        .iter()
        .filter(|l| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            l.split(|&b| b == b' ').find(|t| !t.is_empty()) == Some(b"mn".as_slice())
        })
        .count()
}

/// `MN` lines in a reply.
fn mn_replies(reply: &[u8]) -> usize {
    reply
        .split(|&b| b == b'\n')
        .filter(|l| *l == b"MN\r")
        .count()
}

/// Replaces what legitimately differs between the two servers.
fn normalize(reply: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(reply.len());
    let mut rest = reply;
    while !rest.is_empty() {
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(rest.len(), |p| p + 2);
        let line = &rest[..end];
        if line.starts_with(b"STAT ") {
            // `stats` figures (pid, times, memory, slab classes) are not
            // comparable; the END that closes the block still is.
        } else if line.starts_with(b"VERSION ") {
            // Ours says `1.6.18-muduo`: it follows 1.6.18 but is not it.
            out.extend_from_slice(b"VERSION <version>\r\n");
        } else if line.starts_with(b"ME ") {
            // Seconds since a time, on each server's own clock.
            out.extend_from_slice(&normalize_me(line));
        } else {
            out.extend_from_slice(line);
        }
        rest = &rest[end..];
    }
    out
}

/// `me`'s line with the numbers of `exp=` (unless -1) and `la=` replaced.
fn normalize_me(line: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(line);
    let words: Vec<String> = text
        .trim_end()
        .split(' ')
        .map(|w| {
            if w.starts_with("la=") {
                "la=<s>".to_string()
            } else if w.starts_with("exp=") && w != "exp=-1" {
                "exp=<s>".to_string()
            } else {
                w.to_string()
            }
        })
        .collect();
    format!("{}\r\n", words.join(" ")).into_bytes()
}

fn show(b: &[u8]) -> String {
    let s = format!("{:?}", String::from_utf8_lossy(b));
    if s.len() > 600 {
        format!("{}...({} bytes)", &s[..600], b.len())
    } else {
        s
    }
}

/// Runs one case on both servers (same connection kind) and compares.
fn compare(real: &mut TcpStream, ours: &mut TcpStream, parts: &[&[u8]], end: End, what: &str) {
    let (r, r_eof) = exchange(real, parts, end);
    let (o, o_eof) = exchange(ours, parts, end);
    let (rn, on) = (normalize(&r), normalize(&o));
    assert!(
        rn == on,
        "{what}: replies differ\n  request:   {}\n  memcached: {}\n  ours:      {}",
        show(&parts.concat()),
        show(&r),
        show(&o)
    );
    assert_eq!(
        r_eof,
        o_eof,
        "{what}: memcached {} the connection, ours {}\n  request: {}",
        if r_eof { "closed" } else { "kept" },
        if o_eof { "closed" } else { "kept" },
        show(&parts.concat())
    );
    if end == End::Eof {
        assert!(r_eof, "{what}: memcached did not close (bad case)");
    }
}

/// Cases that end with an open connection, run in order on one connection
/// per server (state carries over, as it would for a client).
fn corpus() -> Vec<Vec<u8>> {
    let long_key = "k".repeat(251);
    let key250 = "k".repeat(250);
    let mut v: Vec<Vec<u8>> = [
        // storage commands
        "set a 0 0 1\r\na\r\n",
        "get a\r\n",
        "gets a\r\n",
        "set a 5 0 3\r\nabc\r\nget a\r\n",
        "add a 0 0 1\r\nb\r\nadd b 1 0 1\r\nb\r\nget a b\r\n",
        "replace a 7 0 2\r\nxy\r\nreplace nx 0 0 1\r\nz\r\nget a nx\r\n",
        "append a 9 9 2\r\n12\r\nprepend a 0 0 2\r\n00\r\ngets a\r\n",
        "append nx 0 0 1\r\nz\r\nprepend nx 0 0 1\r\nz\r\n",
        "set e 0 0 0\r\n\r\nget e\r\n",
        "set bin 0 0 4\r\n\r\n\r\n\r\nget bin\r\n",
        "set a 0 0 1 noreply\r\nq\r\nget a\r\n",
        "set a 0 0 1 garbage\r\nq\r\nget a\r\n",
        "set a 0 0 noreply\r\n",
        // cas
        "gets a\r\n",
        "cas a 0 0 1 999999\r\nz\r\ncas nx 0 0 1 1\r\nz\r\n",
        "cas a 0 0 1\r\n",
        "cas a 0 0 1 x\r\nz\r\n",
        "cas a 0 0 1 -1\r\nz\r\n",
        "set c 0 0 1\r\n1\r\ngets c\r\n",
        // numbers: flags 32-bit truncation, exptime forms, lengths
        "set f 4294967295 0 1\r\n1\r\nget f\r\n",
        "set f 4294967296 0 1\r\n1\r\nget f\r\n",
        "set f -1 0 1\r\n1\r\nget f\r\n",
        "set f +5 0 1\r\n1\r\nget f\r\n",
        "set f 1x 0 1\r\n1\r\n",
        "set f 18446744073709551616 0 1\r\n1\r\n",
        "set t 0 -1 1\r\n1\r\nget t\r\n",
        "set t 0 2147483648 1\r\n1\r\nget t\r\n",
        "set t 0 -2147483649 1\r\n1\r\nget t\r\n",
        "set t 0 1000000000 1\r\n1\r\nget t\r\n",
        "set t 0 4000000000 1\r\n1\r\nget t\r\n",
        "set t 0 100000 1\r\n1\r\nget t\r\n",
        "set t 0 x 1\r\n1\r\n",
        "set t 0 0 -1\r\nabc\r\n",
        "set t 0 0 x\r\nabc\r\n",
        "set t 0 0 2147483647\r\n",
        "set t 0 0 1\r\nabc\r\n",
        "set t 0 0 1 noreply\r\nab\r\nget t\r\n",
        "set t 0 0 3\r\nab\r\n\r\n",
        // keys
        &format!("set {key250} 0 0 1\r\n1\r\nget {key250}\r\n"),
        &format!("set {long_key} 0 0 1\r\n1\r\n"),
        &format!("get {long_key}\r\n"),
        &format!("get a {long_key} a\r\n"),
        &format!("gets a {long_key}\r\n"),
        &format!("delete {long_key}\r\n"),
        &format!("incr {long_key} 1\r\n"),
        &format!("touch {long_key} 1\r\n"),
        "set a\tb 0 0 1\r\nx\r\nget a\tb\r\n",
        "set \x01\x02 0 0 1\r\nx\r\nget \x01\x02\r\n",
        "get a\x00b\r\n",
        "get  a   a  \r\n",
        "get a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a a\r\n",
        "get noreply\r\n",
        // delete
        "set d 0 0 1\r\n1\r\ndelete d\r\ndelete d\r\n",
        "delete a 0\r\ndelete a 1\r\ndelete a noreply\r\ndelete a 0 noreply\r\n",
        "delete a x y\r\ndelete\r\ndelete a b c d\r\ndelete a 0 x\r\n",
        // incr/decr
        "set n 0 0 3\r\n100\r\ndecr n 95\r\nget n\r\nincr n 1000\r\nget n\r\n",
        // No case makes memcached parse a stored value of 2^63 or more: its
        // safe_strtoull then looks for a '-' with strchr, past the value's
        // "\r\n" into whatever memory follows the item, so its answer
        // depends on that memory (seen: "non-numeric" one run in a few
        // hundred). Wrapping is covered by adding a large delta instead.
        "set n 0 0 1\r\n0\r\nincr n 18446744073709551615\r\nget n\r\ndelete n\r\n",
        "set n 0 0 1\r\n5\r\ndecr n 10\r\nincr n 18446744073709551615\r\ndelete n\r\n",
        "set n 0 0 2\r\n12\r\nincr n 18446744073709551615\r\nget n\r\n",
        "set n 0 0 1\r\n7\r\nincr n -1\r\nincr n x\r\nincr n 18446744073709551616\r\nincr n +1\r\nincr n 01\r\n",
        "set n 0 0 2\r\n 5\r\nincr n 1\r\nget n\r\n",
        "set n 0 0 4\r\n5 ab\r\nincr n 1\r\n",
        "set n 0 0 2\r\n-5\r\nincr n 1\r\n",
        "set n 0 0 3\r\nabc\r\nincr n 1\r\ndecr n 1\r\n",
        "set n 0 0 0\r\n\r\nincr n 1\r\n",
        "set n 7 0 1\r\n9\r\nincr n 1\r\ngets n\r\nincr n 5 noreply\r\nget n\r\n",
        "incr nx 1\r\ndecr nx 1\r\nincr\r\nincr n\r\nincr n 1 2 3\r\n",
        // touch, gat
        "set g 0 0 1\r\n1\r\ntouch g 100\r\ntouch nx 10\r\ntouch g\r\ntouch g x\r\n",
        "touch g 0 noreply\r\nget g\r\n",
        "gat 100 g\r\ngats 0 g nx\r\ngat\r\ngat 10\r\ngat x g\r\n",
        "gat -1 g\r\nget g\r\n",
        // verbosity, version, misc
        "verbosity\r\nverbosity x\r\nverbosity 1\r\nverbosity 1 noreply\r\nverbosity noreply\r\n",
        "verbosity 1 2\r\n",
        "version\r\nversion x\r\n",
        "\r\n",
        "\n",
        " \r\n",
        "g\r\n",
        "get\r\n",
        "GET a\r\n",
        "sets a\r\n",
        "bogus command here\r\n",
        "set a 0 0 1 2 3\r\n",
        "shutdown\r\n",
        "cache_memlimit\r\ncache_memlimit 7\r\ncache_memlimit 8\r\ncache_memlimit x\r\n",
        "cache_memlimit 1000000001\r\ncache_memlimit 64 noreply\r\ncache_memlimit 64 x\r\n",
        "cache_memlimit -1\r\ncache_memlimit 64\r\ncache_memlimit 64 1 2\r\n",
        "stats detail\r\nstats detail x\r\nstats bogus\r\nstats reset\r\n",
        // flush
        "set z 0 0 1\r\n1\r\nflush_all\r\nget z\r\n",
        "flush_all x\r\nflush_all 0\r\nflush_all noreply\r\nflush_all -1\r\nflush_all 1 2 3\r\n",
        "set z 0 0 1\r\n1\r\nflush_all 0 noreply\r\ngets z\r\nset z 0 0 1\r\n2\r\ngets z\r\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    // 23+ tokens: the tokenizer's limit.
    let many: String = (0..30).map(|i| format!(" k{i}")).collect();
    v.push(format!("set k5 0 0 1\r\n5\r\nget{many}\r\n").into_bytes());
    v.push(format!("set{many}\r\n").into_bytes());
    v.push(format!("delete{many}\r\n").into_bytes());
    // A long multiget line is fine.
    let long_get: String = (0..400).map(|i| format!(" key{i}")).collect();
    v.push(format!("get{long_get}\r\n").into_bytes());
    v.push(format!("get {}\r\n", "x".repeat(3000)).into_bytes());
    // Item size limit: the largest value that fits, one byte more, and
    // the data block of the refused one swallowed whatever it holds.
    for (key, flags, vlen) in [
        ("k", 0, 1_048_516usize),
        ("k", 0, 1_048_517),
        ("k", 1, 1_048_513),
    ] {
        let mut c = format!("set {key} {flags} 0 {vlen}\r\n").into_bytes();
        c.extend(std::iter::repeat_n(b'v', vlen));
        c.extend_from_slice(b"\r\nget nx\r\n");
        v.push(c);
    }
    let mut swallowed = b"set k 0 0 1048600\r\n".to_vec();
    swallowed.extend(std::iter::repeat_n(b'v', 1_048_600));
    swallowed.extend_from_slice(b"\r\nget k\r\n");
    v.push(swallowed);
    v
}

#[test]
fn corpus_matches_memcached() {
    with_timeout(LIMIT, || {
        let pair = Pair::start();
        let mut r = connect(pair.real.addr);
        let mut o = connect(pair.ours.addr);
        for (i, case) in corpus().iter().enumerate() {
            compare(
                &mut r,
                &mut o,
                &[case],
                End::Sentinel,
                &format!("corpus case {i}"),
            );
            pair.compare_counters(&format!("corpus case {i}: {}", show(case)), true);
        }
    });
}

/// Cases after which memcached closes the connection.
#[test]
fn closing_cases_match_memcached() {
    with_timeout(LIMIT, || {
        let pair = Pair::start();
        let mut cases: Vec<Vec<u8>> = vec![
            b"quit\r\n".to_vec(),
            b"get a\r\nquit\r\nget a\r\n".to_vec(),
            b"set q 0 0 1\r\nq\r\nquit\r\nget q\r\n".to_vec(),
            b"quit extra tokens\r\n".to_vec(),
        ];
        // More than 2048 bytes without a newline, not a multiget: closed.
        cases.push(vec![b'x'; 3000]);
        cases.push(format!("set a 0 0 1{}", " ".repeat(3000)).into_bytes());
        // Replies before the junk line: memcached writes them out after a
        // get, and after 21 commands in one read (then every 20); the rest
        // are dropped with the connection.
        cases.push([&b"get a\r\n"[..], &[b'x'; 3000]].concat());
        cases.push([&b"get a\r\nversion\r\n"[..], &[b'x'; 3000]].concat());
        for n in [20, 21, 45] {
            cases.push([b"version\r\n".repeat(n), vec![b'x'; 3000]].concat());
            cases.push([b"set a 0 0 1\r\na\r\n".repeat(n), vec![b'x'; 3000]].concat());
        }
        for (i, case) in cases.iter().enumerate() {
            let mut r = connect(pair.real.addr);
            let mut o = connect(pair.ours.addr);
            compare(
                &mut r,
                &mut o,
                &[case],
                End::Eof,
                &format!("closing case {i}"),
            );
        }
    });
}

/// The meta commands, run in order on one connection per server. A TTL is
/// checked (`t`) only in the write that set it, so that neither server's
/// clock can tick in between; `l` likewise.
fn meta_corpus() -> Vec<Vec<u8>> {
    let cases: &[&[u8]] = &[
        // An mg reply not yet written out keeps its item referenced, so a
        // pipelined decr/ma after it makes a new item (no space padding).
        b"set pin 0 0 3\r\n100\r\nmg pin v\r\ndecr pin 95\r\nget pin\r\n",
        b"set pin 0 0 3\r\n100\r\nmg pin s\r\nma pin MD D95 v\r\nmg pin v\r\n",
        b"set pin 0 0 3\r\n100\r\nmn\r\nmg pin s\r\nmn\r\ndecr pin 95\r\nget pin\r\n",
        b"mg\r\n",
        b"mg a\r\n",
        b"mg a v\r\n",
        b"set a 5 0 3\r\nabc\r\n",
        b"mg a\r\n",
        b"mg a v\r\n",
        b"mg a s v f t c k\r\n",
        b"mg a vv\r\n",
        b"mg a v v\r\n",
        b"mg a x\r\n",
        b"mg a h u\r\n",
        b"mg a h\r\n",
        b"mg a O123 k q\r\n",
        b"mg nx O123 k q\r\n",
        b"mg nx O123 k\r\n",
        b"mg nx s v\r\n",
        b"mg a Oabcdefghijabcdefghijabcdefghijabc\r\n",
        b"mg a Oabcdefghijabcdefghijabcdefghijab\r\n",
        b"mg a Oabcdefghijabcdefghijabcdefghija\r\n",
        b"mg nx Oabcdefghijabcdefghijabcdefghijabc\r\n",
        b"mg a T100 t\r\n",
        b"mg a t T100\r\n",
        b"mg a Tx\r\n",
        b"mg a T\r\n",
        b"mg a N\r\n",
        b"mg a 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\r\n",
        b"mg a v c f s k h u q O1\r\n",
        b"mg a v c f s t k h l u q O1 E\r\n",
        b"mg nv N30 s t v c\r\nmg nv N30 s t v c\r\nmg nv s t v c k\r\n",
        b"mg nv2 N0 t\r\n",
        b"mg nv3 N-1\r\n",
        b"mg nv2 t\r\n",
        b"mg nv3 t\r\n",
        b"mg a R30\r\n",
        b"mg a R300 k\r\n",
        b"mg a R300 k\r\n",
        b"mg a\t v\r\n",
        b"mg YWJj b v k\r\n",
        b"mg YWJj k v\r\n",
        b"ms YWJj 2 b\r\nxy\r\n",
        b"mg YWJj b v k\r\n",
        b"mg YWJj b b\r\n",
        b"mg Y b\r\n",
        b"mg YW b\r\n",
        b"mg YWJ b\r\n",
        b"mg YWJ= b k\r\n",
        b"mg YW== b k\r\n",
        b"mg YQ b k\r\n",
        b"mg YQ= b k\r\n",
        b"mg Y!Jj b k\r\n",
        b"mg ==== b k\r\n",
        b"mg YWJjZA== b k\r\n",
        b"mg YWJjZA==YWJj b k\r\n",
        b"mg abc= b k\r\n",
        b"mg Y!WJj b k\r\n",
        b"mg YW==YWJj b k\r\n",
        b"mg Y=Jj b k\r\n",
        b"mg YWJj\x01 b k\r\n",
        b"mg YW\x01== b k\r\n",
        b"mg Y-_Jj b k\r\n",
        b"mg YWJj+/== b k\r\n",
        b"mg YWJj+/8= b k\r\n",
        b"mg a v c f s t k h l u q O1 2 3 4 5 6 7\r\n",
        b"mg a v c f s t k h l u q O1 2 3 4 5 6 7 8\r\n",
        b"mg a 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25\r\n",
        b"mg a q x\r\n",
        b"mg a q v v\r\n",
        b"mg nx q Tx\r\n",
        b"mg a \x80\r\n",
        b"mg a \x7f\r\n",
        b"mg a ~\r\n",
        b"mg a O\r\n",
        b"mg nx O k\r\n",
        b"mg a P L\r\n",
        b"mg a F5 C1 M J D I E\r\n",
        b"mg nx C1 I x\r\n",
        b"mg a Cx\r\n",
        b"mg a Mxx\r\n",
        b"mg a Jx\r\n",
        b"mg a Dx\r\n",
        b"mg a Fx\r\n",
        b"mg a Fx Tx\r\n",
        b"mg a Tx Fx\r\n",
        b"mg a Tx Jx\r\n",
        b"mg YQ b Tx\r\n",
        b"mg YQ Tx b\r\n",
        b"mg a Fx q\r\n",
        b"mg nx Fx q\r\n",
        b"mg a N5 k\r\n",
        b"mg a N5 T5x\r\n",
        b"ms\r\n",
        b"ms a\r\n",
        b"ms a x\r\n",
        b"ms a -1\r\n",
        b"ms a 2\r\nab\r\n",
        b"ms a 2 T0 F7 c k O9\r\nab\r\n",
        b"mg a v f c\r\n",
        b"ms a 2 q\r\nab\r\n",
        b"ms a 2 q c k\r\nab\r\n",
        b"ms a 2 c k\r\nabc\r\n",
        b"ms a 2 x\r\nab\r\n",
        b"ms a 2 v\r\nab\r\n",
        b"ms a 2 s\r\nab\r\n",
        b"ms a 2 q q\r\nab\r\n",
        b"ms a 2 MX\r\nab\r\n",
        b"ms a 2 MS\r\nab\r\n",
        b"ms a 2 MEE\r\nab\r\n",
        b"ms a 2 M\r\nab\r\n",
        b"ms a 2 Mx\r\nab\r\n",
        b"ms a 2 Mx Oabcdefghijabcdefghijabcdefghijabc\r\nab\r\n",
        b"ms a 2 ME\r\nab\r\n",
        b"ms a 2 ME q\r\nab\r\n",
        b"ms new 2 ME q\r\nab\r\n",
        b"ms a 2 MA\r\ncd\r\n",
        b"ms a 2 MP\r\n01\r\n",
        b"mg a v\r\n",
        b"ms nx 2 MA\r\ncd\r\n",
        b"ms nx 2 MP\r\ncd\r\n",
        b"ms nx 2 MR\r\ncd\r\n",
        b"ms a 2 MR c\r\ncd\r\n",
        b"ms a 2 C1 c\r\ncd\r\n",
        b"mg a c\r\n",
        b"md\r\n",
        b"md a x\r\n",
        b"md a q q\r\n",
        b"md a Tx\r\n",
        b"md a Fx\r\n",
        b"md a Oabcdefghijabcdefghijabcdefghijabc\r\n",
        b"md nx\r\n",
        b"md nx q\r\n",
        b"md nx q k O5\r\n",
        b"md a C1\r\n",
        b"md a C1 q\r\n",
        b"mg a c\r\n",
        b"md a C18 q k O1\r\n",
        b"md a\r\n",
        b"ms s 3 T100\r\nold\r\nmg s c\r\nmd s I T30 k\r\nmg s v c t\r\nmg s v c t\r\nmd s I q\r\nmg s c\r\nms s 3 C1 I c\r\nnew\r\nmg s v c t\r\nms s 3 C25 I c\r\nnew\r\nms s 3 C1 I c\r\nnew\r\nmg s v c t\r\n",
        b"md s x\r\n",
        b"md s v\r\n",
        b"md s x k\r\n",
        b"md YWJj b k\r\n",
        b"md YWJ b k\r\n",
        b"md s b\r\n",
        b"ma\r\n",
        b"ma nx\r\n",
        b"ma nx q\r\n",
        b"ma nx q k O1\r\n",
        b"ma nx N0 J13 v\r\n",
        b"ma nx v\r\n",
        b"ma nx v t c k O1\r\n",
        b"ma nx MD D20 v\r\n",
        b"ma nx M- v\r\n",
        b"ma nx M+ v\r\n",
        b"ma nx MI v\r\n",
        b"ma nx Mx v\r\n",
        b"ma nx Dx v\r\n",
        b"ma nx Jx v\r\n",
        b"ma nx D-1 v\r\n",
        b"ma nx q v\r\n",
        b"ma nx C1 v\r\n",
        b"ma nx C28 v\r\n",
        b"ma nx2 C28 v\r\n",
        b"ma nx2 N10 v t\r\n",
        b"ma nx3 N0 q\r\n",
        b"ma nx3 N0 v q\r\n",
        b"ma nx3 T100 v t\r\n",
        b"ma a v\r\n",
        b"ma s v\r\n",
        b"ma ab q\r\n",
        b"ma a x\r\n",
        b"ma a v v\r\n",
        b"ma a Oabcdefghijabcdefghijabcdefghijabc\r\n",
        b"ma nx Oabcdefghijabcdefghijabcdefghijabc\r\n",
        b"set num 0 0 3\r\n100\r\n",
        b"ma num MD D95 v\r\nget num\r\n",
        b"ma num D18446744073709551615 v\r\n",
        b"ma num D18446744073709551616 v\r\n",
        b"me\r\n",
        b"me nx\r\n",
        b"me num\r\n",
        b"me num x\r\n",
        b"me num b\r\n",
        b"me YWJj b\r\n",
        b"me YWJj b x\r\n",
        b"ms e 1 T30\r\nx\r\nme e\r\n",
        b"me e bx\r\n",
        b"me e\tb\r\n",
        b"ms YWJj 1 b F3\r\nx\r\n",
        b"me YWJj b\r\n",
        b"me YWJj\r\n",
        b"me abc\r\n",
        b"ms a 2 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\r\nab\r\n",
        b"ms a 2 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\r\nab\r\n",
        b"md a 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18\r\n",
        b"ma a 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18\r\n",
        b"ms YWJj 2 b k c O1 q\r\nxy\r\n",
        b"ms YWJj 2 b k c O1\r\nxy\r\n",
        b"ms YWJ 2 b k\r\nxy\r\n",
        b"ms a 2 Tx\r\nxy\r\n",
        b"ms a 2 Oabcdefghijabcdefghijabcdefghijabc\r\nxy\r\n",
        b"ms a 2 F-1 k\r\nxy\r\n",
        b"ms a 2 F4294967296 k\r\nxy\r\n",
        b"mg a f\r\n",
        b"ms a 2 C0\r\nxy\r\n",
        b"ms a 2 ME C1\r\nxy\r\n",
        b"ms a 2 MA C1\r\nxy\r\n",
        b"ms a 2 MA C0\r\nzz\r\n",
        b"mg a c v\r\n",
        b"ms a 2 MP C55\r\nzz\r\n",
        b"ms a 2 MR C1\r\nzz\r\n",
        b"ms nx9 2 MR C1\r\nzz\r\n",
        b"ms nx9 2 C1\r\nzz\r\n",
        b"ms nx9 2 C1 q\r\nzz\r\n",
        b"ms nx9 2 MA q\r\nzz\r\n",
        b"ms nx9 2 I\r\nzz\r\n",
        b"mg nx9 v\r\n",
        b"ms a 2 C56 I\r\nzz\r\n",
        b"mg a v\r\n",
        b"md nx C1 q\r\n",
        b"ma nx7 t N30\r\n",
        b"mg nx8 t N30\r\n",
        b"mg a T30 Oabcdefghijabcdefghijabcdefghijabc\r\nmg a t\r\n",
        b"ma a t T30\r\n",
        b"set n 0 0 1\r\n5\r\nma n t T30 v\r\nma n t v\r\n",
        b"ma n C1 v\r\n",
        b"gets n\r\n",
        b"ma n C0 v\r\n",
        b"ma n q\r\n",
        b"ma n q O9\r\n",
        b"ma n D\r\n",
        b"ma n J\r\n",
        b"ma n N\r\n",
        b"mg a q q\r\n",
        b"md a I q q\r\n",
        b"ms kk 10 q\r\n0123456789\r\n",
        b"ms kk 2 q\r\n0123456789\r\n",
        b"mg \x80 v\r\n",
        b"ms \x80 1\r\nx\r\n",
        b"mg \x80 v\r\n",
        b"mg YQ== b k v h\r\n",
        b"mg a k b\r\n",
        b"ms YQ== 1 b\r\nZ\r\n",
        b"mg a k v\r\n",
        b"set a 0 0 1\r\nq\r\n",
        b"mg a k\r\n",
        b"mg a k b\r\n",
        b"mg nv4 N30 h\r\nmg nv4 h\r\nmg nv4 h u\r\nme nv4\r\n",
        b"set h 0 0 1\r\n1\r\nmg h h u\r\nmg h h l\r\n",
        b"touch h 10\r\nme h\r\n",
        b"set h 0 0 1\r\n1\r\n",
        b"incr h 1\r\n",
        b"mg h h\r\n",
        b"set h 0 0 1\r\n1\r\n",
        b"touch h 0\r\n",
        b"mg h h\r\n",
        b"set h 0 0 1\r\n1\r\n",
        b"gat 0 h\r\n",
        b"mg h h\r\n",
        b"set h 0 0 1\r\n1\r\n",
        b"ma h\r\n",
        b"mg h h\r\n",
        b"set h 0 0 1\r\n1\r\n",
        b"ms h 1 MA\r\n2\r\n",
        b"mg h h\r\n",
        b"md h I\r\nmg h h\r\n",
        b"mg nvv N30 v\r\nget nvv\r\n",
        b"ms nvv 1\r\nx\r\nmg nvv\r\n",
        b"set st 0 0 1\r\n1\r\nmd st I\r\nmg st\r\nmg st\r\nmd st I\r\nmg st c\r\ngets st\r\n",
        b"mg st R30\r\n",
        b"me a\r\nme st\r\nme h\r\n",
        b"mz a\r\n",
        b"mgg a\r\n",
        b"ms a 2 S2\r\nab\r\n",
        b"ms a  2  T0 \r\nab\r\n",
        b"ms a 2x\r\nab\r\n",
        b"mg a v q\r\nmg nx v q\r\nmg a k q\r\nmn\r\nmg nx q k\r\n",
        b"ms  \r\n",
        b"mg  \r\n",
        b"md  a \r\n",
        b"ma a  \r\n",
        b"mg a\x00 v\r\n",
        b"mg a v\x00 x\r\n",
        b"mg YWJj b\x00\r\n",
        // Not `ma` on that value afterwards (see the classic corpus's
        // incr cases on values of 2^63 or more).
        b"ma nx N0 J18446744073709551615 v\r\nmg nx v\r\nmd nx\r\n",
        b"ma nx9 N0 J1 D5 MD v\r\n",
        b"ma nx10 N0 J0 t c v k O1 b\r\n",
        b"ma YWJj N0 J5 b k v\r\n",
        b"me YWJj b\r\n",
        b"mg YWJj b k v\r\n",
        b"set spaced 0 0 3\r\n 12\r\nma spaced v\r\nma spaced v D100000\r\nget spaced\r\n",
        b"ms ttl 1 T-1\r\nx\r\nmg ttl\r\n",
        b"ms ttl 1 T0\r\nx\r\nmg ttl t\r\nmg ttl T-1\r\nmg ttl\r\n",
        b"ms mg 1 F4294967295\r\nx\r\nmg mg f\r\nme mg\r\n",
        b"ms big 1 MA\r\nx\r\n",
    ];
    let mut v: Vec<Vec<u8>> = cases.iter().map(|c| c.to_vec()).collect();
    let key250 = "k".repeat(250);
    let long_key = "k".repeat(251);
    for cmd in ["mg", "md", "ma", "me"] {
        v.push(format!("{cmd} {key250} k\r\n{cmd} {long_key} k\r\n").into_bytes());
    }
    v.push(format!("ms {key250} 1 k\r\nx\r\nmg {key250} v\r\n").into_bytes());
    v.push(format!("ms {long_key} 1 k\r\nx\r\n").into_bytes());
    // Base64 keys: 248 characters (186 bytes) fit, 252 are too long before
    // decoding, whatever they decode to.
    let b248 = "eHh4".repeat(62);
    let b252 = "eHh4".repeat(63);
    v.push(format!("ms {b248} 1 b k c\r\nx\r\nmg {b248} b k v\r\nme {b248} b\r\n").into_bytes());
    v.push(format!("mg {b252} b k\r\nms {b252} 1 b\r\nx\r\nmd {b252} b\r\n").into_bytes());
    // The item size limit, and the data block of a refused `ms` swallowed.
    for (flags, vlen) in [
        ("", 1_048_516usize),
        (" MA", 1_048_517),
        (" F1", 1_048_513),
        (" x", 8),
    ] {
        let mut c = format!("ms k {vlen}{flags}\r\n").into_bytes();
        c.extend(std::iter::repeat_n(b'v', vlen));
        c.extend_from_slice(b"\r\nmg k s v\r\n");
        v.push(c);
    }
    v
}

#[test]
fn meta_corpus_matches_memcached() {
    with_timeout(LIMIT, || {
        let pair = Pair::start();
        let mut r = connect(pair.real.addr);
        let mut o = connect(pair.ours.addr);
        for (i, case) in meta_corpus().iter().enumerate() {
            compare(
                &mut r,
                &mut o,
                &[case],
                End::Sentinel,
                &format!("meta corpus case {i}"),
            );
            pair.compare_counters(&format!("meta corpus case {i}: {}", show(case)), true);
        }
    });
}

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// One random command (valid most of the time, malformed sometimes).
fn random_command(rng: &mut Rng) -> Vec<u8> {
    let keys = ["a", "b", "c", "num", "k\tx", "e"];
    let key = rng.pick(&keys);
    let exptime = rng.pick(&[
        "0",
        "0",
        "0",
        "-1",
        "100000",
        "4000000000",
        "1000000000",
        "x",
    ]);
    let flags = rng.pick(&["0", "0", "1", "4294967295", "4294967296", "-1", "abc"]);
    let noreply = if rng.below(6) == 0 { " noreply" } else { "" };
    let value = match rng.below(5) {
        0 => String::new(),
        1 => rng.below(1000).to_string(),
        // Never a value of 2^63 or more, nor deltas that reach it: see the
        // classic corpus's incr cases.
        2 => (1u64 << 40).to_string(),
        3 => " 12".to_string(),
        _ => "v".repeat(rng.below(40) as usize),
    };
    match rng.below(18) {
        14..=17 => random_meta(rng, key, &value),
        0..=2 => {
            let cmd = rng.pick(&["set", "set", "add", "replace", "append", "prepend"]);
            // Sometimes the data block does not end in "\r\n": a bad data
            // chunk of the announced length, then an empty line (ERROR).
            let end = if rng.below(12) == 0 { "XY\r\n" } else { "\r\n" };
            let len = value.len();
            format!("{cmd} {key} {flags} {exptime} {len}{noreply}\r\n{value}{end}").into_bytes()
        }
        3 => {
            // CAS values line up on both servers, so a guess hits sometimes.
            let cas = rng.below(40);
            format!(
                "cas {key} {flags} 0 {} {cas}{noreply}\r\n{value}\r\n",
                value.len()
            )
            .into_bytes()
        }
        4..=5 => {
            let n = 1 + rng.below(4);
            let ks: Vec<&str> = (0..n).map(|_| rng.pick(&keys)).collect();
            let cmd = rng.pick(&["get", "gets", "get", "gets"]);
            format!("{cmd} {}\r\n", ks.join(" ")).into_bytes()
        }
        6 => {
            let cmd = rng.pick(&["gat", "gats"]);
            format!("{cmd} {exptime} {key}\r\n").into_bytes()
        }
        7 => format!("delete {key}{noreply}\r\n").into_bytes(),
        8..=9 => {
            let cmd = rng.pick(&["incr", "decr"]);
            let delta = rng.pick(&["1", "0", "5", "4294967296", "-1", "x", "100"]);
            format!("{cmd} {key} {delta}{noreply}\r\n").into_bytes()
        }
        10 => format!("touch {key} {exptime}{noreply}\r\n").into_bytes(),
        11 => rng
            .pick(&[
                "version\r\n",
                "verbosity 1\r\n",
                "bogus\r\n",
                "\r\n",
                "get\r\n",
                "set a\r\n",
            ])
            .as_bytes()
            .to_vec(),
        12 => {
            if rng.below(8) == 0 {
                b"flush_all\r\n".to_vec()
            } else {
                format!("get {key}\r\n").into_bytes()
            }
        }
        _ => format!("set num 0 0 {}\r\n{}\r\n", value.len(), value).into_bytes(),
    }
}

/// One random meta command. No `t`, `l` or `me`: they show seconds, and a
/// clock tick between two commands would fall differently on each server.
/// TTLs (0, 100, 200 s) and recache thresholds (30, 1000 s) are far apart,
/// so `R` wins or not whatever the tick.
fn random_meta(rng: &mut Rng, key: &str, value: &str) -> Vec<u8> {
    let cas = format!("C{}", rng.below(40));
    let (cmd, pool): (&str, Vec<&str>) = match rng.below(4) {
        0 => (
            "mg",
            vec![
                "v", "k", "s", "f", "c", "h", "q", "u", "O7", "T0", "T100", "N0", "N200", "R30",
                "R1000", "b",
            ],
        ),
        1 => (
            "ms",
            vec![
                "T0",
                "T100",
                "F5",
                "F4294967296",
                "c",
                "k",
                "q",
                "O1",
                "I",
                &cas,
                "ME",
                "MA",
                "MP",
                "MR",
                "MS",
                "MX",
                "b",
            ],
        ),
        2 => ("md", vec!["q", "k", "O2", "I", "T100", &cas, "x"]),
        _ => (
            "ma",
            vec![
                "v",
                "c",
                "q",
                "k",
                "N0",
                "N200",
                "J5",
                "D3",
                "D4294967296",
                "MD",
                "M-",
                "MI",
                "T100",
                &cas,
                "Dx",
            ],
        ),
    };
    let mut flags = String::new();
    for f in &pool {
        if rng.below(4) == 0 {
            flags.push(' ');
            flags.push_str(f);
        }
    }
    if rng.below(20) == 0 {
        // Now and then a repeated flag.
        flags.push_str(" q");
    }
    if cmd == "ms" {
        let end = if rng.below(12) == 0 { "XY\r\n" } else { "\r\n" };
        format!("ms {key} {}{flags}\r\n{value}{end}", value.len()).into_bytes()
    } else {
        format!("{cmd} {key}{flags}\r\n").into_bytes()
    }
}

#[test]
fn random_sequences_match_memcached() {
    with_timeout(LIMIT, || {
        let pair = Pair::start();
        let mut r = connect(pair.real.addr);
        let mut o = connect(pair.ours.addr);
        let mut rng = Rng(0x6d65_6d63_6163_6865);
        // One command at a time...
        for i in 0..1500 {
            let c = random_command(&mut rng);
            compare(
                &mut r,
                &mut o,
                &[&c],
                End::Sentinel,
                &format!("random command {i}"),
            );
            pair.compare_counters(&format!("random command {i}: {}", show(&c)), false);
        }
        // ...and pipelined batches in one write.
        for b in 0..60 {
            let batch: Vec<u8> = (0..1 + rng.below(40))
                .flat_map(|_| random_command(&mut rng))
                .collect();
            compare(
                &mut r,
                &mut o,
                &[&batch],
                End::Sentinel,
                &format!("pipelined batch {b}"),
            );
            pair.compare_counters(&format!("pipelined batch {b}: {}", show(&batch)), false);
        }
    });
}

#[test]
fn split_at_every_byte_matches_memcached() {
    with_timeout(LIMIT, || {
        let pair = Pair::start();
        let mut r = connect(pair.real.addr);
        let mut o = connect(pair.ours.addr);
        let seq: &[u8] = b"set s 3 0 5\r\nhello\r\nget s\r\nappend s 0 0 2 noreply\r\n!!\r\n\
                           gets s nx\r\nincr s 1\r\nset n 0 0 2\r\n10\r\nincr n 5\r\n\
                           delete s\r\nget s n\r\nbogus\r\n";
        for cut in 1..seq.len() {
            let (a, b) = seq.split_at(cut);
            compare(
                &mut r,
                &mut o,
                &[a, b],
                End::Sentinel,
                &format!("split at byte {cut}"),
            );
        }
        // And one byte per write.
        let bytes: Vec<&[u8]> = seq.chunks(1).collect();
        compare(&mut r, &mut o, &bytes, End::Sentinel, "one byte per write");
        let meta: &[u8] = b"ms m 5 F3 T0 c k\r\nhello\r\nmg m v f s c k O1\r\n\
                            ms m 2 MA q\r\n!!\r\nmg nx q k\r\nma n N0 J9 v\r\n\
                            md m I q\r\nmg m v c\r\nms m 1 x\r\nz\r\nmd m C1\r\nmd m\r\n";
        for cut in 1..meta.len() {
            let (a, b) = meta.split_at(cut);
            compare(
                &mut r,
                &mut o,
                &[a, b],
                End::Sentinel,
                &format!("meta split at byte {cut}"),
            );
        }
        let bytes: Vec<&[u8]> = meta.chunks(1).collect();
        compare(
            &mut r,
            &mut o,
            &bytes,
            End::Sentinel,
            "meta one byte per write",
        );
    });
}

/// A piece of a random, mostly malformed request.
fn garbage(rng: &mut Rng) -> Vec<u8> {
    let pieces = [
        "set",
        "get",
        "gets",
        "add",
        "cas",
        "incr",
        "decr",
        "delete",
        "touch",
        "gat",
        "gats",
        "append",
        "prepend",
        "replace",
        "flush_all",
        "verbosity",
        "version",
        "stats",
        "mn",
        "mg",
        "ms",
        "md",
        "ma",
        "me",
        " v",
        " q",
        " b",
        " k",
        " O1",
        " N0",
        " T1",
        " C1",
        " MA",
        " I",
        "noreply",
        " ",
        " ",
        " ",
        "  ",
        "\r\n",
        "\r\n",
        "\n",
        "\r",
        "\t",
        "\0",
        "0",
        "1",
        "5",
        "-1",
        "18446744073709551616",
        "4294967296",
        "abc",
        "k",
        "key",
        "\x7f",
        "\u{e9}",
    ];
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(12) {
        match rng.below(24) {
            0 => out.extend(std::iter::repeat_n(b'x', rng.below(300) as usize)),
            1 => out.extend(std::iter::repeat_n(b' ', rng.below(2200) as usize)),
            2 => {
                let n = rng.below(8);
                out.extend_from_slice(format!("set k 0 0 {n}\r\n").as_bytes());
            }
            3 => out.extend_from_slice(format!("get k{}\r\n", rng.below(3)).as_bytes()),
            _ => out.extend_from_slice(rng.pick(&pieces).as_bytes()),
        }
    }
    out
}

/// Random mostly-malformed bytes, each case on a fresh connection whose
/// write side is then shut: both servers answer what they can, then close
/// (memcached closes on EOF whatever state it is in), so every case ends
/// deterministically, however incomplete its last command.
#[test]
fn random_garbage_matches_memcached() {
    with_timeout(LIMIT, || {
        let pair = Pair::start();
        let mut rng = Rng(0x6761_7262_6167_6521);
        let cases = 3000;
        let mut answered = 0;
        for i in 0..cases {
            let case = garbage(&mut rng);
            let mut got = Vec::new();
            for addr in [pair.real.addr, pair.ours.addr] {
                let mut s = connect(addr);
                let _ = s.write_all(&case);
                let _ = s.shutdown(std::net::Shutdown::Write);
                let (reply, eof) = read_until(&mut s, |_| false);
                assert!(eof, "garbage case {i}: no EOF after {}", show(&case));
                got.push(normalize(&reply));
            }
            assert!(
                got[0] == got[1],
                "garbage case {i}: replies differ\n  request:   {}\n  memcached: {}\n  ours:      {}",
                show(&case),
                show(&got[0]),
                show(&got[1])
            );
            answered += usize::from(!got[0].is_empty());
        }
        // Guard against a vacuous pass (say, both servers closing at once).
        assert!(
            answered > cases / 3,
            "only {answered} of {cases} cases got a reply"
        );
        eprintln!("{answered} of {cases} garbage cases got a reply");
    });
}

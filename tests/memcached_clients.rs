//! `examples/memcached` with clients people use: libmemcached's
//! `memccapable` (its ASCII protocol tests) and Python's `pymemcache`; and
//! the `-c` connection cap with memcached's reply. `.ci/run` installs
//! `libmemcached-tools` and `pymemcache`; without them these tests fail
//! with a message saying so.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;
use support::example::Example;
use support::with_timeout;

const LIMIT: Duration = Duration::from_secs(120);

fn start(extra: &[&str]) -> Example {
    let mut args = vec!["-p", "0", "-l", "127.0.0.1", "-t", "2"];
    args.extend_from_slice(extra);
    Example::start("memcached", &args)
}

#[test]
fn memccapable_ascii_tests_pass() {
    with_timeout(LIMIT, || {
        let server = start(&[]);
        let out = Command::new("memccapable")
            .args(["-a", "-t", "10", "-h", "127.0.0.1"])
            .args(["-p", &server.addr.port().to_string()])
            .output()
            .unwrap_or_else(|e| {
                panic!("memccapable not runnable ({e}): apt-get install libmemcached-tools")
            });
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        let results: Vec<&str> = text.lines().filter(|l| l.starts_with("ascii ")).collect();
        // libmemcached 1.1's memccapable has 27 ASCII tests.
        assert!(
            results.len() >= 27,
            "memccapable ran too few tests:\n{text}"
        );
        let failed: Vec<&&str> = results.iter().filter(|l| !l.ends_with("[pass]")).collect();
        assert!(
            failed.is_empty(),
            "memccapable failures: {failed:?}\n{text}"
        );
        assert!(
            out.status.success(),
            "memccapable exit status {:?}\n{text}",
            out.status
        );
    });
}

const PYMEMCACHE_SCRIPT: &str = r#"
import sys
from pymemcache.client.base import Client
c = Client(("127.0.0.1", int(sys.argv[1])), connect_timeout=10, timeout=10)
assert c.set("k", b"v1") is True
assert c.get("k") == b"v1"
assert c.get("missing") is None
value, cas = c.gets("k")
assert value == b"v1"
assert c.cas("k", b"v2", cas, noreply=False) is True
assert c.cas("k", b"v3", cas, noreply=False) is False
assert c.get("k") == b"v2"
assert c.set("n", b"10") is True
assert c.incr("n", 5) == 15
assert c.decr("n", 20) == 0
assert c.incr("n", 2**64 - 1) == 2**64 - 1
assert c.incr("n", 1) == 0
assert c.incr("nope", 1) is None
assert c.add("k", b"x", noreply=False) is False
assert c.replace("k", b"v4", noreply=False) is True
assert c.append("k", b"!", noreply=False) is True
assert c.prepend("k", b"<", noreply=False) is True
assert c.get("k") == b"<v4!"
assert c.delete("k", noreply=False) is True
assert c.delete("k", noreply=False) is False
many = {"key%d" % i: ("value%d" % i).encode() for i in range(200)}
assert c.set_many(many, noreply=False) == []
assert c.get_many(list(many) + ["absent"]) == many
big = bytes(range(256)) * 4000
assert c.set("big", big, noreply=False) is True
assert c.get("big") == big
# noreply: nothing comes back, and the next reply is still in step.
for i in range(100):
    c.set("nr%d" % i, b"x", noreply=True)
c.delete("nr0", noreply=True)
assert c.get("nr0") is None
assert c.get("nr99") == b"x"
assert c.touch("nr99", 100, noreply=False) is True
assert c.get("nr99") == b"x"
assert c.flush_all(noreply=False) is True
assert c.get("nr99") is None
stats = c.stats()
# As memcached, flush_all is lazy: the flushed item is dropped (and counted)
# when looked up.
flushed = stats[b"get_flushed"] if b"get_flushed" in stats else stats["get_flushed"]
assert flushed == 1, stats
print("pymemcache ok")
"#;

#[test]
fn pymemcache_client_works() {
    with_timeout(LIMIT, || {
        let server = start(&[]);
        let probe = Command::new("python3")
            .args(["-c", "import pymemcache"])
            .output()
            .expect("python3 not runnable: apt-get install python3");
        assert!(
            probe.status.success(),
            "pymemcache is not installed: pip install pymemcache ({})",
            String::from_utf8_lossy(&probe.stderr)
        );
        let out = Command::new("python3")
            .args(["-c", PYMEMCACHE_SCRIPT, &server.addr.port().to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("pymemcache ok"),
            "pymemcache script failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

fn roundtrip(s: &mut TcpStream, req: &[u8], until: &[u8]) -> Vec<u8> {
    s.write_all(req).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(until) {
        let n = s.read(&mut buf).expect("read reply");
        assert!(n > 0, "EOF after {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    got
}

#[test]
fn connections_over_the_cap_get_memcacheds_error() {
    with_timeout(LIMIT, || {
        let server = start(&["-c", "2"]);
        let mut kept = Vec::new();
        for _ in 0..2 {
            let mut s = TcpStream::connect(server.addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            // A reply proves the server has counted this connection.
            roundtrip(&mut s, b"mn\r\n", b"MN\r\n");
            kept.push(s);
        }
        let mut third = TcpStream::connect(server.addr).unwrap();
        third
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut got = Vec::new();
        let _ = third.read_to_end(&mut got);
        assert_eq!(got, b"ERROR Too many open connections\r\n");
        // Closing one frees a slot.
        drop(kept.pop());
        let ok = (0..500).any(|_| {
            let mut s = TcpStream::connect(server.addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            s.write_all(b"mn\r\n").unwrap();
            let mut b = [0u8; 64];
            let n = s.read(&mut b).unwrap_or(0);
            if &b[..n] == b"MN\r\n" {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
            false
        });
        assert!(ok, "a slot freed by a closed connection was not reused");
        let stats = roundtrip(&mut kept[0], b"stats\r\n", b"END\r\n");
        let stats = String::from_utf8_lossy(&stats);
        assert!(stats.contains("STAT max_connections 2\r\n"), "{stats}");
        assert!(
            !stats.contains("STAT rejected_connections 0\r\n"),
            "{stats}"
        );
    });
}

#[test]
fn stats_counts_what_happened() {
    with_timeout(LIMIT, || {
        let server = start(&["-m", "16"]);
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        roundtrip(
            &mut s,
            b"set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\nget a b c\r\nincr a 1\r\ndelete b\r\nmn\r\n",
            b"MN\r\n",
        );
        let stats = roundtrip(&mut s, b"stats\r\n", b"END\r\n");
        let stats = String::from_utf8_lossy(&stats);
        for line in [
            "STAT curr_items 1\r\n",
            "STAT total_items 2\r\n",
            "STAT cmd_get 3\r\n",
            "STAT get_hits 2\r\n",
            "STAT get_misses 1\r\n",
            "STAT cmd_set 2\r\n",
            "STAT incr_hits 1\r\n",
            "STAT delete_hits 1\r\n",
            "STAT curr_connections 1\r\n",
            "STAT limit_maxbytes 16777216\r\n",
            "STAT threads 2\r\n",
            "STAT evictions 0\r\n",
        ] {
            assert!(stats.contains(line), "missing {line:?} in\n{stats}");
        }
        assert_eq!(roundtrip(&mut s, b"stats reset\r\n", b"\r\n"), b"RESET\r\n");
        let stats = roundtrip(&mut s, b"stats\r\n", b"END\r\n");
        assert!(String::from_utf8_lossy(&stats).contains("STAT cmd_get 0\r\n"));
    });
}

#[test]
fn bad_flags_and_bind_failures_exit_1_with_one_line() {
    with_timeout(LIMIT, || {
        let bin = support::example::example_path("memcached");
        let help = Command::new(&bin).arg("-h").output().unwrap();
        assert!(help.status.success());
        assert!(String::from_utf8_lossy(&help.stdout).contains("-m, --memory-limit"));
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port().to_string();
        for args in [
            vec!["-p", "notaport"],
            vec!["-t", "0"],
            vec!["-m", "1"], // -I 1m is more than half of -m, as memcached refuses
            vec!["-I", "12"],
            vec!["-U", "11211"],
            vec!["-z"],
            vec!["-\u{e9}"],
            vec!["--port=\u{e9}"],
            vec!["-p"],
            vec!["-l", "127.0.0.1", "-p", &port],
        ] {
            let out = Command::new(&bin)
                .args(&args)
                .env("RUST_LOG", "off")
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
            assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
            assert!(err.starts_with("memcached: "), "{args:?}: {err}");
        }
    });
}

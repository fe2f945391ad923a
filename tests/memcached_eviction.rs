//! `-m` is a hard limit on item memory: `examples/memcached -m 1` keeps the
//! most recently stored items, evicts the oldest, counts them in `stats`,
//! and the process's RSS stays bounded however much is written.
//! (`-I 64k`: like memcached, the item size limit may be at most half of `-m`.)

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use support::example::Example;
use support::with_timeout;

const LIMIT: Duration = Duration::from_secs(180);
const VALUE: usize = 1000;

fn roundtrip(s: &mut TcpStream, req: &[u8], until: &[u8]) -> Vec<u8> {
    s.write_all(req).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1 << 16];
    while !got.ends_with(until) {
        let n = s.read(&mut buf).expect("read reply");
        assert!(n > 0, "EOF");
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// Stores keys `from..to` with 1000-byte values, 100 per write.
fn fill(s: &mut TcpStream, from: usize, to: usize) {
    let value = vec![b'v'; VALUE];
    let mut i = from;
    while i < to {
        let end = (i + 100).min(to);
        let mut batch = Vec::new();
        for k in i..end {
            batch.extend_from_slice(format!("set key{k} 0 0 {VALUE} noreply\r\n").as_bytes());
            batch.extend_from_slice(&value);
            batch.extend_from_slice(b"\r\n");
        }
        batch.extend_from_slice(b"mn\r\n");
        assert_eq!(roundtrip(s, &batch, b"MN\r\n"), b"MN\r\n");
        i = end;
    }
}

fn present(s: &mut TcpStream, k: usize) -> bool {
    let reply = roundtrip(s, format!("get key{k}\r\n").as_bytes(), b"END\r\n");
    reply.starts_with(b"VALUE")
}

fn stat(stats: &str, name: &str) -> u64 {
    stats
        .lines()
        .find_map(|l| l.strip_prefix(&format!("STAT {name} ")))
        .unwrap_or_else(|| panic!("no {name} in {stats}"))
        .trim()
        .parse()
        .unwrap()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

#[test]
fn oldest_items_are_evicted_under_the_memory_limit() {
    with_timeout(LIMIT, || {
        let server = Example::start(
            "memcached",
            &[
                "-p",
                "0",
                "-l",
                "127.0.0.1",
                "-t",
                "2",
                "-m",
                "1",
                "-I",
                "64k",
            ],
        );
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        // About 3x what 1 MiB holds.
        let n = 3000;
        fill(&mut s, 0, n);
        let stats =
            String::from_utf8_lossy(&roundtrip(&mut s, b"stats\r\n", b"END\r\n")).to_string();
        let items = stat(&stats, "curr_items");
        assert!(stat(&stats, "evictions") > 0, "{stats}");
        assert_eq!(stat(&stats, "evictions") + items, n as u64, "{stats}");
        assert!(stat(&stats, "bytes") <= 1 << 20, "{stats}");
        // 1000-byte values: at least 70% of 1 MiB holds data, so no more
        // than ~30% goes to overhead.
        assert!(items >= 700, "only {items} items of {VALUE} bytes in 1 MiB");
        // The oldest are gone, the newest are all there. (The LRU is per
        // shard, so the boundary is blurred by a few hundred keys.)
        for k in 0..1000 {
            assert!(!present(&mut s, k), "old key{k} was not evicted");
        }
        for k in n - 400..n {
            assert!(present(&mut s, k), "recent key{k} was evicted");
        }
        let before = rss_kib(server.child.id());
        // Write ~30x the limit more: RSS must not follow.
        fill(&mut s, n, n + 30_000);
        let after = rss_kib(server.child.id());
        let stats =
            String::from_utf8_lossy(&roundtrip(&mut s, b"stats\r\n", b"END\r\n")).to_string();
        assert!(stat(&stats, "bytes") <= 1 << 20, "{stats}");
        assert!(
            after < before + 16 * 1024,
            "RSS grew from {before} KiB to {after} KiB while writing 30 MB into -m 1"
        );
    });
}

#[test]
fn reading_an_item_protects_it_from_eviction() {
    with_timeout(LIMIT, || {
        // One shard (-m 1 -I 512k): the LRU order is exact.
        let server = Example::start(
            "memcached",
            &[
                "-p",
                "0",
                "-l",
                "127.0.0.1",
                "-t",
                "1",
                "-m",
                "1",
                "-I",
                "512k",
            ],
        );
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        fill(&mut s, 0, 500);
        assert!(
            present(&mut s, 0),
            "key0 evicted before the limit was reached"
        );
        // key0 is now the most recently used; the next 500 evict key1.. first.
        fill(&mut s, 500, 1000);
        assert!(present(&mut s, 0), "a recently read item was evicted");
        assert!(
            !present(&mut s, 1),
            "key1, the least recently used, was kept"
        );
    });
}

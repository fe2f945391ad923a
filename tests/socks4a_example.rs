//! Runs the real `examples/socks4a` and `examples/tcprelay` in front of the
//! real `examples/http_server`: curl through SOCKS4 and SOCKS4a, refusals,
//! and a 64 MiB download by a slow reader during which the relay's memory
//! must stay bounded (high-water-mark backpressure) and every byte arrive.
//!
//! Needs `curl` (installed by `.ci/run`) and the examples built for the same
//! profile (`cargo build --examples`).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::example::Example;
use support::with_timeout;
use support::{connect, connect_small_rcvbuf, pattern, wait_closed};

const LIMIT: Duration = Duration::from_secs(180);
const BIG: usize = 64 * 1024 * 1024;
/// How much the relay's RSS may grow while relaying `BIG` bytes to a slow reader.
const RSS_GROWTH_LIMIT: u64 = 32 * 1024 * 1024;

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("muduo-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn http_server(root: Option<&TempDir>) -> Example {
    // A long idle timeout: the example counts a slow download as idle time.
    let mut args = vec![
        "--addr",
        "127.0.0.1:0",
        "--threads",
        "1",
        "--idle-timeout",
        "600",
    ];
    if let Some(r) = root {
        args.extend(["--root", r.0.to_str().unwrap()]);
    }
    Example::start("http_server", &args)
}

fn socks4a(extra: &[&str]) -> Example {
    let mut args = vec!["--addr", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    Example::start("socks4a", &args)
}

fn curl(args: &[&str]) -> std::process::Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "60"])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run curl ({e}): install it (.ci/run does, with apt-get)")
        })
}

#[test]
fn curl_through_socks4a_and_socks4() {
    let http = http_server(None);
    let proxy = socks4a(&[]);
    let (p, port) = (proxy.addr.to_string(), http.addr.port());
    with_timeout(LIMIT, move || {
        // 4a: curl passes the host name and the proxy resolves it.
        let out = curl(&["--socks4a", &p, &format!("http://localhost:{port}/hello")]);
        assert!(
            out.status.success(),
            "curl --socks4a: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, b"hello, world!\n");
        // 4: curl resolves and sends the IPv4 address.
        let out = curl(&["--socks4", &p, &format!("http://127.0.0.1:{port}/hello")]);
        assert!(
            out.status.success(),
            "curl --socks4: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, b"hello, world!\n");
    });
}

/// Sends a SOCKS4 request for `dest` (or SOCKS4a for a host name) and
/// returns the reply code (0x5a granted, 0x5b refused).
fn socks_connect(s: &mut TcpStream, host: Option<&str>, dest: SocketAddr) -> u8 {
    let mut req = vec![4u8, 1];
    req.extend_from_slice(&dest.port().to_be_bytes());
    match (host, dest) {
        (Some(_), _) => req.extend_from_slice(&[0, 0, 0, 1]),
        (None, SocketAddr::V4(a)) => req.extend_from_slice(&a.ip().octets()),
        (None, SocketAddr::V6(_)) => panic!("SOCKS4 is IPv4 only"),
    }
    req.extend_from_slice(b"test\0");
    if let Some(h) = host {
        req.extend_from_slice(h.as_bytes());
        req.push(0);
    }
    s.write_all(&req).unwrap();
    let mut reply = [0u8; 8];
    s.read_exact(&mut reply).expect("SOCKS reply");
    assert_eq!(reply[0], 0, "reply version byte");
    reply[1]
}

#[test]
fn refusals_get_code_91() {
    // A long connect timeout: a refusal must be answered at once, well
    // within the client's 20 s read timeout.
    let proxy = socks4a(&["--connect-timeout", "60"]);
    let addr = proxy.addr;
    with_timeout(LIMIT, move || {
        // Nothing listens there: the connect is refused.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = closed.local_addr().unwrap();
        drop(closed);
        let mut s = connect(addr);
        assert_eq!(socks_connect(&mut s, None, dead), 0x5b);
        drop(s);
        // A name that cannot resolve (RFC 2606 reserves .invalid).
        let mut s = connect(addr);
        assert_eq!(
            socks_connect(&mut s, Some("no-such-host.invalid"), dead),
            0x5b
        );
        drop(s);
        // Not SOCKS 4: refused and closed.
        let mut s = connect(addr);
        s.write_all(b"\x05\x01\x00\x50\x7f\x00\x00\x01\x00")
            .unwrap();
        let mut reply = [0u8; 8];
        s.read_exact(&mut reply).unwrap();
        assert_eq!(reply[1], 0x5b);
        assert!(wait_closed(&mut s, Duration::from_secs(20)).is_some());
    });
}

/// A request that arrives a byte at a time is parsed once complete, and
/// bytes sent right behind it are relayed.
#[test]
fn request_split_across_reads() {
    let http = http_server(None);
    let proxy = socks4a(&[]);
    let (paddr, port) = (proxy.addr, http.addr.port());
    with_timeout(LIMIT, move || {
        let mut s = connect(paddr);
        let mut req = vec![4u8, 1];
        req.extend_from_slice(&port.to_be_bytes());
        req.extend_from_slice(b"\0\0\0\x07user\0localhost\0");
        for b in &req {
            s.write_all(std::slice::from_ref(b)).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        let mut reply = [0u8; 8];
        s.read_exact(&mut reply).unwrap();
        assert_eq!(reply[..2], [0, 0x5a]);
        s.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let got = support::read_to_eof(&mut s);
        assert!(
            got.ends_with(b"\r\n\r\nhello, world!\n"),
            "{}",
            String::from_utf8_lossy(&got)
        );
    });
}

fn rss_bytes(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line");
    kb * 1024
}

/// Samples `pid`'s RSS every 10 ms until the returned flag is set; the
/// thread returns the peak.
fn sample_rss(pid: u32) -> (Arc<AtomicBool>, std::thread::JoinHandle<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let t = std::thread::spawn(move || {
        let mut peak = 0;
        while !flag.load(Ordering::Acquire) {
            peak = peak.max(rss_bytes(pid));
            std::thread::sleep(Duration::from_millis(10));
        }
        peak.max(rss_bytes(pid))
    });
    (stop, t)
}

/// Requests `/files/big.bin` on `s` (already tied to the HTTP server) and
/// reads the body slowly, checking every byte.
fn slow_download(s: &mut TcpStream, want: &[u8]) {
    // Keep-alive: with `Connection: close` the HTTP example force-closes 5 s
    // after the response was queued, even if a slow reader is still reading.
    s.write_all(b"GET /files/big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut head = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let body_start = loop {
        let n = s.read(&mut chunk).expect("read response head");
        assert!(n > 0, "EOF in the response head");
        head.extend_from_slice(&chunk[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let text = String::from_utf8_lossy(&head[..body_start]).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 200"), "response: {text}");
    assert!(
        text.contains(&format!("content-length: {}", want.len())),
        "response: {text}"
    );
    let mut got = head.len() - body_start;
    assert_eq!(&head[body_start..], &want[..got]);
    // Let the fast side run ahead while we do not read at all...
    std::thread::sleep(Duration::from_millis(300));
    // ...then read about 16 KiB per millisecond at most.
    while got < want.len() {
        let left = (want.len() - got).min(chunk.len());
        let n = s.read(&mut chunk[..left]).expect("read body");
        assert!(n > 0, "EOF after {got} of {} body bytes", want.len());
        assert!(
            chunk[..n] == want[got..got + n],
            "body differs at byte {got}"
        );
        got += n;
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Serves a `BIG`-byte file from the HTTP example; returns it with its dir.
fn big_file() -> (TempDir, Vec<u8>) {
    let dir =
        TempDir::new(&format!("relay-{:?}", std::thread::current().id()).replace(['(', ')'], ""));
    let data = pattern(0x50c4, BIG);
    std::fs::write(dir.0.join("big.bin"), &data).unwrap();
    (dir, data)
}

fn assert_bounded(name: &str, pid: u32, download: impl FnOnce()) {
    let base = rss_bytes(pid);
    let (stop, sampler) = sample_rss(pid);
    download();
    stop.store(true, Ordering::Release);
    let peak = sampler.join().unwrap();
    let growth = peak.saturating_sub(base);
    eprintln!(
        "{name}: RSS {} KiB at start, peak {} KiB (+{} KiB) relaying {} MiB to a slow peer",
        base / 1024,
        peak / 1024,
        growth / 1024,
        BIG >> 20
    );
    assert!(
        growth < RSS_GROWTH_LIMIT,
        "{name} grew by {growth} bytes relaying {BIG} bytes to a slow peer: no backpressure?"
    );
}

#[test]
fn socks4a_slow_reader_download_stays_bounded() {
    let (dir, data) = big_file();
    let http = http_server(Some(&dir));
    let proxy = socks4a(&[]);
    let (paddr, haddr, pid) = (proxy.addr, http.addr, proxy.child.id());
    with_timeout(LIMIT, move || {
        assert_bounded("socks4a", pid, || {
            let mut s = connect_small_rcvbuf(paddr, 64 * 1024);
            assert_eq!(socks_connect(&mut s, Some("localhost"), haddr), 0x5a);
            slow_download(&mut s, &data);
        });
    });
}

#[test]
fn tcprelay_slow_reader_download_stays_bounded() {
    let (dir, data) = big_file();
    let http = http_server(Some(&dir));
    let to = http.addr.to_string();
    let relay = Example::start("tcprelay", &["--listen", "127.0.0.1:0", "--to", &to]);
    let (raddr, pid) = (relay.addr, relay.child.id());
    with_timeout(LIMIT, move || {
        // A small request through the relay first, answered intact.
        let mut s = connect(raddr);
        s.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let reply = support::read_to_eof(&mut s);
        assert!(
            reply.ends_with(b"\r\n\r\nhello, world!\n"),
            "{}",
            String::from_utf8_lossy(&reply)
        );
        assert_bounded("tcprelay", pid, || {
            let mut s = connect_small_rcvbuf(raddr, 64 * 1024);
            slow_download(&mut s, &data);
        });
    });
}

/// The other direction: a client uploads `BIG` bytes through the relay to a
/// server that reads slowly; the relay stops reading the client instead of
/// buffering the upload.
#[test]
fn tcprelay_upload_to_a_slow_server_stays_bounded() {
    let listener =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    listener.set_recv_buffer_size(64 * 1024).unwrap(); // inherited by the accepted socket
    listener
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    listener.listen(8).unwrap();
    let listener: std::net::TcpListener = listener.into();
    let to = listener.local_addr().unwrap().to_string();
    let relay = Example::start("tcprelay", &["--listen", "127.0.0.1:0", "--to", &to]);
    let (raddr, pid) = (relay.addr, relay.child.id());
    with_timeout(LIMIT, move || {
        let data = Arc::new(pattern(0x1a9, BIG));
        let want = data.clone();
        let slow_server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            let mut chunk = [0u8; 16 * 1024];
            let mut got = 0;
            while got < want.len() {
                let n = s.read(&mut chunk).expect("server read");
                assert!(n > 0, "EOF after {got} of {} bytes", want.len());
                assert!(
                    chunk[..n] == want[got..got + n],
                    "upload differs at byte {got}"
                );
                got += n;
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        assert_bounded("tcprelay (upload)", pid, || {
            let mut c = connect(raddr);
            c.write_all(&data).expect("upload through the relay");
            slow_server.join().expect("slow server");
        });
    });
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Whichever side closes first, both connections of a tunnel close and the
/// relay holds no fd afterwards (no ownership cycle left behind).
#[test]
fn tunnels_close_from_either_side_without_leaking() {
    let http = http_server(None);
    let to = http.addr.to_string();
    let relay = Example::start("tcprelay", &["--listen", "127.0.0.1:0", "--to", &to]);
    let (raddr, pid) = (relay.addr, relay.child.id());
    with_timeout(LIMIT, move || {
        let base = fd_count(pid);
        for i in 0..40 {
            let mut s = connect(raddr);
            if i % 2 == 0 {
                // The server closes first.
                s.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    .unwrap();
                let reply = support::read_to_eof(&mut s);
                assert!(reply.ends_with(b"hello, world!\n"));
            } else {
                // The client closes first, after a keep-alive response.
                s.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                    .unwrap();
                let mut reply = Vec::new();
                let mut b = [0u8; 1024];
                while !reply.ends_with(b"hello, world!\n") {
                    let n = s.read(&mut b).unwrap();
                    assert!(n > 0, "EOF before the response ended");
                    reply.extend_from_slice(&b[..n]);
                }
            }
        }
        let settled = support::wait_until(Duration::from_secs(30), || fd_count(pid) <= base);
        assert!(
            settled,
            "relay has {} fds after all tunnels closed, {base} before",
            fd_count(pid)
        );
    });
}

/// A refused destination closes the client's connection at once (not after
/// the 60 s connect timeout, nor retrying forever).
#[test]
fn tcprelay_closes_when_the_destination_refuses() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap().to_string();
    drop(closed);
    let relay = Example::start(
        "tcprelay",
        &[
            "--listen",
            "127.0.0.1:0",
            "--to",
            &dead,
            "--connect-timeout",
            "60",
        ],
    );
    let raddr = relay.addr;
    with_timeout(LIMIT, move || {
        let mut s = connect(raddr);
        assert!(
            wait_closed(&mut s, Duration::from_secs(20)).is_some(),
            "the relay kept a client whose destination refused"
        );
    });
}

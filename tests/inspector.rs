//! The inspector: `/metrics` parsed by the official Prometheus parser with
//! exact byte counts moving (on the real echo example with `--inspect`),
//! and `/loops`, `/connections`, `/` on a library server.
//!
//! Needs `python3` with `prometheus_client` (installed by `.ci/run`), and
//! the examples built for the same profile (`cargo build --examples`).

mod support;
use support::inspect as inspect_util;

use inspect_util::{
    echo_with_inspector, example_with_inspector, get, parse_prometheus, scrape, sum, try_get,
    Sample,
};
use muduo::inspect::{gather, Detail, Inspector, LoopSnapshot};
use muduo::PollerKind;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use support::with_timeout;
use support::{connect, connect_small_rcvbuf, read_n, wait_until, TestServer};

const LIMIT: Duration = Duration::from_secs(90);

/// Sends `len` bytes (never starting with `GET `) and reads the echo back.
fn echo(s: &mut TcpStream, len: usize) {
    let data: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
    s.write_all(&data).unwrap();
    assert_eq!(read_n(s, len), data);
}

fn by_loop(samples: &[Sample], name: &str) -> Vec<(String, f64)> {
    samples
        .iter()
        .filter(|s| s.name == name)
        .map(|s| (s.labels["loop"].clone(), s.value))
        .collect()
}

#[test]
fn metrics_parse_and_count_exact_bytes_of_the_echo_example() {
    with_timeout(LIMIT, || {
        let (_ex, inspect) = echo_with_inspector("2");
        let before = scrape(inspect);
        // Three loops: main (acceptor) and two I/O loops, each with HELP/TYPE.
        assert_eq!(by_loop(&before, "muduo_loop_iterations_total").len(), 3);
        assert_eq!(sum(&before, "muduo_loop_bytes_read_total"), 0.0);
        assert_eq!(sum(&before, "muduo_loop_connections"), 0.0);
        assert!(before
            .iter()
            .any(|s| s.family == "muduo_loop_poll_wait_seconds"
                && s.kind == "histogram"
                && s.labels.get("le").is_some_and(|le| le == "+Inf")));
        assert!(sum(&before, "process_resident_memory_bytes") > 0.0);
        assert!(sum(&before, "process_open_fds") > 0.0);

        let mut conns: Vec<TcpStream> = (0..5).map(|_| connect(_ex.addr)).collect();
        let mut total = 0;
        for (i, c) in conns.iter_mut().enumerate() {
            let len = 1000 + 17 * i;
            echo(c, len);
            total += len;
        }
        // Every byte came back, so the loops have counted it: exact figures.
        let after = scrape(inspect);
        assert_eq!(sum(&after, "muduo_loop_bytes_read_total"), total as f64);
        assert_eq!(sum(&after, "muduo_loop_bytes_written_total"), total as f64);
        assert_eq!(sum(&after, "muduo_loop_connections"), 5.0);
        assert_eq!(sum(&after, "muduo_loop_connections_opened_total"), 5.0);
        assert!(sum(&after, "muduo_loop_messages_total") >= 5.0);
        let accepted = by_loop(&after, "muduo_loop_connections_accepted_total");
        assert!(
            accepted.contains(&("main".to_string(), 5.0)),
            "{accepted:?}"
        );
        // Round-robin: both I/O loops got connections.
        let open = by_loop(&after, "muduo_loop_connections");
        assert_eq!(open.iter().filter(|(_, v)| *v > 0.0).count(), 2, "{open:?}");

        // More bytes on one connection move the counters by exactly that much.
        echo(&mut conns[0], 12_345);
        total += 12_345;
        let moved = scrape(inspect);
        assert_eq!(sum(&moved, "muduo_loop_bytes_read_total"), total as f64);
        assert_eq!(sum(&moved, "muduo_loop_bytes_written_total"), total as f64);

        // Closed connections keep their bytes in the loop totals.
        conns.truncate(3);
        let mut last = Vec::new();
        let closed = wait_until(Duration::from_secs(20), || {
            last = scrape(inspect);
            sum(&last, "muduo_loop_connections_closed_total") == 2.0
        });
        assert!(closed, "the server did not count two closes");
        assert_eq!(sum(&last, "muduo_loop_connections"), 3.0);
        assert_eq!(sum(&last, "muduo_loop_bytes_read_total"), total as f64);
        assert_eq!(sum(&last, "muduo_loop_bytes_written_total"), total as f64);
        let polls = sum(&last, "muduo_loop_poll_wait_seconds_count");
        assert!(polls >= 3.0);
    });
}

#[test]
fn http_server_example_counts_exact_request_and_response_bytes() {
    with_timeout(LIMIT, || {
        let (ex, inspect) = example_with_inspector("http_server", "1");
        let req = b"GET /hello HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
        let mut c = connect(ex.addr);
        c.write_all(req).unwrap();
        let mut resp = Vec::new();
        c.read_to_end(&mut resp).unwrap();
        assert!(resp.starts_with(b"HTTP/1.1 200 OK"));
        assert!(resp.ends_with(b"hello, world!\n"));
        // The server closed after answering: wait until the loop counted it.
        let mut last = Vec::new();
        let closed = wait_until(Duration::from_secs(20), || {
            last = scrape(inspect);
            sum(&last, "muduo_loop_connections_closed_total") == 1.0
        });
        assert!(closed, "the close was not counted");
        assert_eq!(sum(&last, "muduo_loop_bytes_read_total"), req.len() as f64);
        assert_eq!(
            sum(&last, "muduo_loop_bytes_written_total"),
            resp.len() as f64
        );
        assert_eq!(sum(&last, "muduo_loop_connections"), 0.0);
    });
}

fn echo_server() -> TestServer {
    TestServer::start(PollerKind::Epoll, 2, "inspected", |s| {
        s.set_message_callback(|conn, buf, _| conn.send_buffer(buf));
    })
}

#[test]
fn loops_and_connections_json_and_html() {
    with_timeout(LIMIT, || {
        let server = echo_server();
        let inspector = Inspector::start("127.0.0.1:0".parse().unwrap()).unwrap();
        inspector.watch_server(server.server());
        assert_eq!(inspector.loops().len(), 3);
        let addr = inspector.local_addr();

        let mut c = connect(server.addr());
        echo(&mut c, 777);

        let loops = get(addr, "/loops", None);
        assert_eq!(loops.status, 200);
        assert_eq!(loops.header("content-type"), Some("application/json"));
        let v: serde_json::Value = serde_json::from_str(&loops.body).unwrap();
        let loops = v["loops"].as_array().unwrap();
        assert_eq!(loops.len(), 3);
        let read: u64 = loops
            .iter()
            .map(|l| l["bytes_read"].as_u64().unwrap())
            .sum();
        assert_eq!(read, 777);
        assert_eq!(
            loops
                .iter()
                .map(|l| l["accepted"].as_u64().unwrap())
                .sum::<u64>(),
            1
        );

        let conns = get(addr, "/connections?tcp_info=1", None);
        let v: serde_json::Value = serde_json::from_str(&conns.body).unwrap();
        assert_eq!(v["count"], 1);
        let conn = &v["connections"][0];
        assert_eq!(conn["bytes_in"], 777);
        assert_eq!(conn["bytes_out"], 777);
        assert_eq!(conn["peer"], c.local_addr().unwrap().to_string());
        assert!(conn["tcp_info"]["snd_cwnd"].as_u64().unwrap() > 0);

        let html = get(
            addr,
            "/connections",
            Some("text/html,application/xhtml+xml"),
        );
        assert!(html
            .header("content-type")
            .unwrap()
            .starts_with("text/html"));
        assert!(html.body.contains("<table id=\"connections\">"));
        assert!(html.body.contains(&c.local_addr().unwrap().to_string()));

        let page = get(addr, "/", None);
        assert_eq!(page.status, 200);
        assert!(page.body.contains("<table id=\"loops\">"));
        assert!(
            !page.body.contains("http://") && !page.body.contains("https://"),
            "no CDN assets"
        );
        let snap = get(addr, "/snapshot", None);
        let v: serde_json::Value = serde_json::from_str(&snap.body).unwrap();
        assert_eq!(v["totals"]["bytes_read"], 777);
        assert_eq!(v["totals"]["connections"], 1);
        assert!(v["process"]["rss_bytes"].as_u64().unwrap() > 0);
        assert_eq!(get(addr, "/nope", None).status, 404);
    });
}

#[test]
fn serves_on_loopback_only_unless_exposed_on_purpose() {
    let err = Inspector::start("0.0.0.0:0".parse().unwrap()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    // (Tests touch loopback only: the explicit variant is shown on loopback.)
    let exposed = Inspector::start_exposed("127.0.0.1:0".parse().unwrap()).unwrap();
    assert_ne!(exposed.local_addr().port(), 0);
    drop(exposed);
    let out = std::process::Command::new(support::example::example_path("echo"))
        .args(["--addr", "127.0.0.1:0", "--inspect", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--inspect-public"));
}

#[test]
fn output_queue_and_high_water_mark_are_counted_then_drained() {
    with_timeout(LIMIT, || {
        // More than the kernel can hold, so some of it stays queued.
        let sent = support::more_than_kernel_buffers(8 * 1024 * 1024);
        let server = TestServer::start(PollerKind::Epoll, 1, "flood", |s| {
            s.set_connection_callback(move |conn| {
                if conn.connected() {
                    conn.send_vec(vec![7u8; sent]);
                }
            });
            s.set_high_water_mark_callback(|_, _| {}, 64 * 1024);
        });
        let loops = server.server().io_loops();
        let snap = |d: Detail| -> Vec<LoopSnapshot> { gather(&loops, d, Duration::from_secs(5)) };
        let detail = Detail {
            connections: true,
            tcp_info: false,
        };
        let mut c = connect_small_rcvbuf(server.addr(), 16 * 1024);
        // The client does not read: the rest waits in the output queue.
        let mut last = Vec::new();
        assert!(wait_until(Duration::from_secs(20), || {
            last = snap(detail);
            last[0].high_water_events == 1 && last[0].output_queued > 0
        }));
        let conn = &last[0].connections[0];
        assert_eq!(conn.high_water_events, 1);
        assert_eq!(conn.bytes_out + conn.output_queued, sent as u64);
        assert_eq!(last[0].bytes_written + last[0].output_queued, sent as u64);

        assert_eq!(read_n(&mut c, sent).len(), sent);
        assert!(wait_until(Duration::from_secs(20), || {
            last = snap(Detail::default());
            last[0].output_queued == 0
        }));
        assert_eq!(last[0].bytes_written, sent as u64);
        assert_eq!(last[0].high_water_events, 1);
    });
}

/// The fd limit that leaves process `pid` exactly `free` more fd numbers
/// (new fds take the lowest free numbers; inherited ones may sit far above).
fn limit_leaving(pid: u32, free: usize) -> usize {
    let open: std::collections::BTreeSet<usize> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    (0..).filter(|n| !open.contains(n)).nth(free - 1).unwrap() + 1
}

#[test]
fn accept_errors_count_emfile() {
    with_timeout(LIMIT, || {
        let (ex, inspect) = echo_with_inspector("1");
        let pid = ex.child.id();
        // Both acceptors register (and open their idle fd) on their loops
        // after the log lines: one round trip to each first.
        let mut warm = connect(ex.addr);
        echo(&mut warm, 1);
        drop(warm);
        scrape(inspect);
        // Leave the echo process about two free fds (`prlimit` from
        // util-linux changes a running process's limit).
        let limit = limit_leaving(pid, 2);
        let status = std::process::Command::new("prlimit")
            .arg(format!("--pid={pid}"))
            .arg(format!("--nofile={limit}:{limit}"))
            .status()
            .expect("prlimit (util-linux) is needed");
        assert!(status.success());
        let mut clients: Vec<TcpStream> = (0..12).map(|_| connect(ex.addr)).collect();
        // Served clients get their byte back; refused ones see the close.
        let mut served = 0;
        for c in &mut clients {
            c.write_all(b"x").unwrap();
            let mut b = [0u8; 1];
            if matches!(c.read(&mut b), Ok(1)) {
                served += 1;
            }
        }
        assert!(
            served < 12,
            "served {served} of 12: no accept ran out of fds"
        );
        drop(clients);
        // The inspector needs fds too: it answers once the server has
        // closed the served connections.
        let mut last = Vec::new();
        let counted = wait_until(Duration::from_secs(30), || {
            let Ok(got) = try_get(inspect, "/metrics", None) else {
                return false;
            };
            last = parse_prometheus(&got.body);
            sum(&last, "muduo_loop_connections_closed_total") == (served + 1) as f64
        });
        assert!(counted, "the closes were not counted: {last:?}");
        let errors = by_loop(&last, "muduo_loop_accept_errors_total");
        assert!(
            errors.iter().any(|(l, v)| l == "main" && *v >= 1.0),
            "{errors:?}"
        );
        assert_eq!(
            sum(&last, "muduo_loop_connections_accepted_total"),
            (served + 1) as f64
        );
    });
}

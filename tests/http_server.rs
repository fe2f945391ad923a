//! HttpServer end to end over loopback: raw `TcpStream` clients check the
//! exact bytes of responses, pipelining (one write and one byte per write),
//! request bodies (Content-Length, chunked with extensions and trailers),
//! 100-continue, keep-alive rules, every limit and protocol error (and that
//! the server keeps serving afterwards), slowloris and idle timeouts, the
//! worker pool, and a fuzz-style property over random and mutated requests.

mod support;
use support::http as http_util;

use http_util::{assert_serves, demo_handler, start_server, Client, End, Resp};
use muduo::http::{HttpLimits, HttpRequest, HttpResponse};
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestCaseError, TestRunner};
use std::io::{Read, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use support::with_timeout;

const LIMIT: Duration = Duration::from_secs(30);

fn req(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes()
}

// ---------------------------------------------------------------------------
// Basics

#[test]
fn get_root_and_connection_stays_open() {
    with_timeout(LIMIT, || {
        let srv = start_server(|_| {});
        let mut c = Client::connect(srv.addr);
        c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
        let r = c.response();
        assert_eq!(r.status_line, "HTTP/1.1 200 OK");
        assert_eq!(r.body, b"Hello, World!");
        assert_eq!(r.header("content-length"), Some("13"));
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert_eq!(r.header("server"), Some("muduo-rs"));
        let date = r.header("date").expect("Date header");
        assert!(
            date.ends_with(" GMT") && date.len() == 29,
            "Date not an IMF-fixdate: {date:?}"
        );
        assert_eq!(
            r.header("connection"),
            None,
            "HTTP/1.1 keep-alive is implicit"
        );
        // Exactly one response: nothing else arrives, the connection stays open.
        c.assert_open_for(Duration::from_millis(150), "after the first response");
        // A second request on the same socket.
        let r2 = c.request(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n");
        assert_eq!(r2.status, 200);
        assert_eq!(r2.body, b"hello, world!\n");
        let r3 = c.request(b"GET /nope HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(r3.status, 200);
        assert_eq!(r3.body, b"GET /nope");
    });
}

// ---------------------------------------------------------------------------
// Pipelining

/// 100 pipelined requests: mostly GET /n, every 7th a POST /n with a body.
fn pipelined_batch() -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut bytes = Vec::new();
    let mut want = Vec::new();
    for n in 0..100 {
        if n % 7 == 3 {
            let body = format!("body-{n}");
            bytes.extend_from_slice(
                format!(
                    "POST /{n} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
            want.push(format!("POST /{n}:{body}").into_bytes());
        } else {
            bytes.extend_from_slice(&req(&format!("/{n}")));
            want.push(format!("GET /{n}").into_bytes());
        }
    }
    (bytes, want)
}

fn read_n(c: &mut Client, n: usize) -> Vec<Resp> {
    (0..n).map(|_| c.response()).collect()
}

fn assert_in_order(resps: &[Resp], want: &[Vec<u8>], what: &str) {
    assert_eq!(resps.len(), want.len(), "{what}: response count");
    for (i, (r, w)) in resps.iter().zip(want).enumerate() {
        assert_eq!(r.status, 200, "{what}: response {i}");
        assert_eq!(
            r.body,
            *w,
            "{what}: response {i} out of order: {:?}",
            r.body_str()
        );
    }
}

#[test]
fn pipelined_100_requests_in_one_write() {
    with_timeout(LIMIT, || {
        let srv = start_server(|_| {});
        let (bytes, want) = pipelined_batch();
        let mut c = Client::connect(srv.addr);
        c.send(&bytes);
        let resps = read_n(&mut c, 100);
        assert_in_order(&resps, &want, "one write");
        c.assert_open_for(Duration::from_millis(100), "after 100 responses");
        // Still usable afterwards.
        assert_eq!(c.request(&req("/after")).body, b"GET /after");
    });
}

#[test]
fn pipelined_100_requests_one_byte_per_write() {
    with_timeout(LIMIT, || {
        let srv = start_server(|_| {});
        let (bytes, want) = pipelined_batch();
        let mut c = Client::connect(srv.addr); // TCP_NODELAY is set
        let started = Instant::now();
        for (i, b) in bytes.iter().enumerate() {
            c.stream.write_all(std::slice::from_ref(b)).unwrap();
            c.stream.flush().unwrap();
            if i % 64 == 63 {
                // Let the server read what is there, so reads really split.
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let resps = read_n(&mut c, 100);
        assert_in_order(&resps, &want, "one byte per write");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "byte-per-write run took {:?}",
            started.elapsed()
        );
        c.assert_open_for(Duration::from_millis(100), "after 100 responses");
    });
}

// ---------------------------------------------------------------------------
// Request bodies and 100-continue

#[test]
fn post_with_content_length() {
    with_timeout(LIMIT, || {
        let srv = start_server(|_| {});
        let mut c = Client::connect(srv.addr);
        let r =
            c.request(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"hello world");
        // Binary body split across writes, with bytes that look like HTTP.
        let body: Vec<u8> = (0..=255u8)
            .cycle()
            .take(3000)
            .chain(b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n".iter().copied())
            .collect();
        c.send(
            format!(
                "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        c.send(&body[..1000]);
        std::thread::sleep(Duration::from_millis(20));
        c.send(&body[1000..]);
        let r = c.response();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, body);
        // Content-Length: 0 is a complete request with an empty body.
        let r = c.request(b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
        assert_eq!((r.status, r.body.len()), (200, 0));
        c.assert_open_for(Duration::from_millis(50), "after the bodies");
    });
}

#[test]
fn chunked_upload_with_extensions_and_trailer() {
    with_timeout(LIMIT, || {
        let srv = start_server(|_| {});
        let mut c = Client::connect(srv.addr);
        let r = c.request(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
              5;name=value;flag\r\nhello\r\n\
              1 ; spaced=\"quoted\"\r\n \r\n\
              6\r\nworld!\r\n\
              0;last\r\n\
              X-Trailer: one\r\nChecksum: abc\r\n\
              \r\n",
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"hello world!");
        // Uppercase hex sizes, chunks split over writes, no trailer.
        let big: Vec<u8> = http_util::pseudo_random_bytes(0x1A2B, 7);
        c.send(b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1A2B\r\n");
        c.send(&big[..100]);
        std::thread::sleep(Duration::from_millis(20));
        c.send(&big[100..]);
        c.send(b"\r\n0\r\n\r\n");
        let r = c.response();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, big);
        // The connection is still in sync: a plain request follows.
        assert_eq!(c.request(&req("/next")).body, b"GET /next");
    });
}

#[test]
fn expect_100_continue() {
    with_timeout(LIMIT, || {
        let srv = start_server(|_| {});
        let mut c = Client::connect(srv.addr);
        c.send(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 12\r\n\r\n",
        );
        assert_eq!(
            c.read_exact_bytes(25),
            b"HTTP/1.1 100 Continue\r\n\r\n",
            "interim response"
        );
        // No final response before the body is sent.
        c.assert_open_for(Duration::from_millis(100), "waiting for the body");
        c.send(b"continued!!!");
        let r = c.response();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"continued!!!");

        // Chunked upload with 100-continue.
        c.send(
            b"POST /echo HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        assert_eq!(c.read_exact_bytes(25), b"HTTP/1.1 100 Continue\r\n\r\n");
        c.send(b"3\r\nabc\r\n0\r\n\r\n");
        assert_eq!(c.response().body, b"abc");

        // Body sent together with the head: no 100 Continue is needed.
        let r = c
            .request(b"POST /echo HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hi"[..]));

        // HTTP/1.0 has no 100-continue (RFC 9110 10.1.1): straight to the answer.
        c.send(b"POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
        c.assert_open_for(Duration::from_millis(100), "HTTP/1.0 expect");
        c.send(b"ok");
        let r = c.response();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
    });
}

// ---------------------------------------------------------------------------
// Keep-alive rules

#[test]
fn keep_alive_rules() {
    with_timeout(LIMIT, || {
        let srv = start_server(|_| {});

        // HTTP/1.1 + Connection: close -> answered with close, then closed.
        let mut c = Client::connect(srv.addr);
        let r = c.request(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"Hello, World!");
        assert_eq!(r.header("connection"), Some("close"));
        c.assert_closed("HTTP/1.1 Connection: close");

        // HTTP/1.0 without keep-alive -> closed after the response.
        let mut c = Client::connect(srv.addr);
        let r = c.request(b"GET /hello HTTP/1.0\r\n\r\n");
        assert_eq!(
            r.status_line, "HTTP/1.1 200 OK",
            "server answers with its own version"
        );
        assert_eq!(r.body, b"hello, world!\n");
        assert_eq!(r.header("connection"), Some("close"));
        c.assert_closed("HTTP/1.0 default");

        // HTTP/1.0 + Connection: keep-alive -> stays open, says keep-alive.
        let mut c = Client::connect(srv.addr);
        for i in 0..3 {
            let r = c.request(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
            assert_eq!(r.status, 200, "HTTP/1.0 keep-alive request {i}");
            assert_eq!(r.header("connection"), Some("keep-alive"));
        }
        c.assert_open_for(Duration::from_millis(100), "HTTP/1.0 keep-alive");
        // ... and a later HTTP/1.0 request without it closes.
        let r = c.request(b"GET / HTTP/1.0\r\n\r\n");
        assert_eq!(r.header("connection"), Some("close"));
        c.assert_closed("HTTP/1.0 after keep-alive");

        // HTTP/1.1 + Connection: keep-alive, close -> close wins.
        let mut c = Client::connect(srv.addr);
        let r = c.request(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Close\r\n\r\n");
        assert!(r.closes());
        c.assert_closed("keep-alive, close");

        // HTTP/1.2 is served as HTTP/1.1 (persistent).
        let mut c = Client::connect(srv.addr);
        let r = c.request(b"GET /v12 HTTP/1.2\r\nHost: t\r\n\r\n");
        assert_eq!(r.status_line, "HTTP/1.1 200 OK");
        assert_eq!(r.body, b"GET /v12");
        assert_eq!(r.header("connection"), None);
        let r = c.request(b"GET /again HTTP/1.9\r\nHost: t\r\n\r\n");
        assert_eq!(r.body, b"GET /again");
        c.assert_open_for(Duration::from_millis(100), "HTTP/1.2");

        // Pipelined requests after a Connection: close one are not answered.
        let mut c = Client::connect(srv.addr);
        c.send(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /c HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(c.response().body, b"GET /a");
        let r = c.response();
        assert_eq!(r.body, b"GET /b");
        assert!(r.closes());
        c.assert_closed("requests after Connection: close");
    });
}

// ---------------------------------------------------------------------------
// Limits and protocol errors

fn small_limits() -> HttpLimits {
    HttpLimits {
        max_header_bytes: 1024,
        max_uri_len: 256,
        max_body_bytes: 4096,
        max_headers: 20,
    }
}

/// Sends `bytes` on a fresh connection and checks the answer is `status`
/// with `Connection: close`, that the server then closes, that a
/// kept-alive bystander connection is unaffected and that a new client is
/// served.
fn check_error(addr: std::net::SocketAddr, what: &str, bytes: &[u8], status: u16) {
    let mut bystander = Client::connect(addr);
    assert_eq!(
        bystander.request(&req("/before")).status,
        200,
        "{what}: bystander"
    );

    let mut c = Client::connect(addr);
    // The server may close before it has read everything; ignore write errors.
    let _ = c.stream.write_all(bytes);
    let r = match c.try_response_within(Duration::from_secs(10), false) {
        Ok(r) => r,
        Err(e) => panic!("{what}: expected {status}, got {e:?}"),
    };
    assert_eq!(
        r.status,
        status,
        "{what}: wrong status ({}; body {:?})",
        r.status_line,
        r.body_str()
    );
    assert!(
        r.closes(),
        "{what}: error response without Connection: close"
    );
    assert!(r.header("date").is_some(), "{what}: no Date header");
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str()),
        "{what}"
    );
    c.assert_closed(what);

    let r = bystander.request(&req("/after"));
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"GET /after"[..]),
        "{what}: bystander after"
    );
    assert_serves(addr, what);
}

#[test]
fn malformed_request_lines_are_400() {
    with_timeout(LIMIT, || {
        let srv = start_server(|s| s.set_limits(small_limits()));
        let cases: &[(&str, &[u8])] = &[
            ("no version", b"GET /\r\n\r\n"),
            ("garbage", b"this is not http\r\n\r\n"),
            ("bad method byte", b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n"),
            ("double space", b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n"),
            ("lowercase version", b"GET / http/1.1\r\n\r\n"),
            ("junk after version", b"GET / HTTP/1.1 x\r\n\r\n"),
            (
                "control byte in target",
                b"GET /a\x01b HTTP/1.1\r\nHost: h\r\n\r\n",
            ),
            ("CR without LF", b"GET / HTTP/1.1\rX\r\n\r\n"),
            ("binary", b"\x00\x01\x02\x03\xff\xfe\r\n\r\n"),
        ];
        for (what, bytes) in cases {
            check_error(srv.addr, what, bytes, 400);
        }
    });
}

#[test]
fn malformed_headers_are_400() {
    with_timeout(LIMIT, || {
        let srv = start_server(|s| s.set_limits(small_limits()));
        let cases: &[(&str, &[u8])] = &[
            (
                "space in name",
                b"GET / HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n",
            ),
            (
                "no colon",
                b"GET / HTTP/1.1\r\nHost: h\r\nNoColonHere\r\n\r\n",
            ),
            (
                "space before colon",
                b"GET / HTTP/1.1\r\nHost: h\r\nHost : x\r\n\r\n",
            ),
            (
                "obs-fold",
                b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n folded\r\n\r\n",
            ),
            (
                "NUL in value",
                b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x00b\r\n\r\n",
            ),
            (
                "bad Content-Length",
                b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n",
            ),
            (
                "negative Content-Length",
                b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
            ),
        ];
        for (what, bytes) in cases {
            check_error(srv.addr, what, bytes, 400);
        }
    });
}

#[test]
fn size_limits_431_414_413() {
    with_timeout(LIMIT, || {
        let srv = start_server(|s| s.set_limits(small_limits()));
        let big_header = format!(
            "GET / HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\n\r\n",
            "a".repeat(2000)
        );
        check_error(
            srv.addr,
            "header over 1024 bytes",
            big_header.as_bytes(),
            431,
        );
        let mut many = String::from("GET / HTTP/1.1\r\nHost: h\r\n");
        for i in 0..25 {
            many.push_str(&format!("X-{i}: v\r\n"));
        }
        many.push_str("\r\n");
        check_error(srv.addr, "more than 20 headers", many.as_bytes(), 431);
        // Exactly at the limits is fine.
        let mut c = Client::connect(srv.addr);
        let uri = format!("/{}", "u".repeat(255));
        let r = c.request(format!("GET {uri} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
        assert_eq!(r.status, 200, "URI of exactly max_uri_len");
        let long_uri = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "u".repeat(300));
        check_error(srv.addr, "URI over 256 bytes", long_uri.as_bytes(), 414);
        // A long URI is refused before the line ends.
        check_error(
            srv.addr,
            "URI still arriving",
            &long_uri.as_bytes()[..290],
            414,
        );

        let body_ok = "b".repeat(4096);
        let r = c.request(
            format!("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 4096\r\n\r\n{body_ok}")
                .as_bytes(),
        );
        assert_eq!(r.body.len(), 4096, "body of exactly max_body_bytes");
        check_error(
            srv.addr,
            "Content-Length over max_body_bytes",
            b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n\r\nabc",
            413,
        );
        check_error(
            srv.addr,
            "one chunk over max_body_bytes",
            b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1001\r\n",
            413,
        );
        let mut chunks =
            b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..2 {
            chunks.extend_from_slice(b"800\r\n");
            chunks.extend_from_slice(&[b'x'; 0x800]);
            chunks.extend_from_slice(b"\r\n");
        }
        chunks.extend_from_slice(b"1\r\n");
        check_error(srv.addr, "chunks summing over max_body_bytes", &chunks, 413);
    });
}

#[test]
fn framing_errors_400_and_501() {
    with_timeout(LIMIT, || {
        let srv = start_server(|s| s.set_limits(small_limits()));
        check_error(
            srv.addr,
            "Content-Length + Transfer-Encoding",
            b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            400,
        );
        check_error(
            srv.addr,
            "two different Content-Length values",
            b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            400,
        );
        check_error(
            srv.addr,
            "Content-Length list with different values",
            b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\nhello!",
            400,
        );
        // Identical repeated Content-Length values are accepted (RFC 9112 6.3).
        let mut c = Client::connect(srv.addr);
        let r = c
            .request(b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        // A coding we cannot decode before chunked: 501 (RFC 9112 6.1).
        check_error(
            srv.addr,
            "Transfer-Encoding: gzip, chunked",
            b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            501,
        );
        // `gzip` alone: an unknown transfer coding is 501 (the rule;
        // RFC 9112 6.1), checked before the framing rules.
        check_error(
            srv.addr,
            "Transfer-Encoding: gzip",
            b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
        );
        check_error(
            srv.addr,
            "bad chunk size",
            b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
        );
        check_error(
            srv.addr,
            "chunk data not followed by CRLF",
            b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
            400,
        );
        check_error(
            srv.addr,
            "Transfer-Encoding in HTTP/1.0",
            b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        );
    });
}

#[test]
fn other_http_versions_are_505() {
    with_timeout(LIMIT, || {
        let srv = start_server(|_| {});
        check_error(
            srv.addr,
            "HTTP/2 preface",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            505,
        );
        check_error(
            srv.addr,
            "HTTP/2.0",
            b"GET / HTTP/2.0\r\nHost: t\r\n\r\n",
            505,
        );
        check_error(
            srv.addr,
            "HTTP/3.0",
            b"GET / HTTP/3.0\r\nHost: t\r\n\r\n",
            505,
        );
        check_error(srv.addr, "HTTP/0.9", b"GET / HTTP/0.9\r\n\r\n", 505);
    });
}

#[test]
fn error_after_good_pipelined_requests() {
    with_timeout(LIMIT, || {
        let srv = start_server(|_| {});
        let mut c = Client::connect(srv.addr);
        c.send(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/2.0\r\n\r\nGET /3 HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(c.response().body, b"GET /1");
        assert_eq!(c.response().body, b"GET /2");
        let r = c.response();
        assert_eq!(r.status, 505);
        assert!(r.closes());
        c.assert_closed("after the 505");
        assert_serves(srv.addr, "pipelined error");
    });
}

// ---------------------------------------------------------------------------
// Timeouts

/// Sends `bytes` one per `gap` until the server closes (or `limit`
/// passes). Returns when the close was seen, measured from the first byte,
/// and what the server sent.
fn trickle_until_closed(
    c: &mut Client,
    bytes: &[u8],
    gap: Duration,
    limit: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < limit {
        if i < bytes.len() {
            if c.stream.write_all(&bytes[i..=i]).is_err() {
                return Some(start.elapsed());
            }
            i += 1;
        }
        c.stream.set_read_timeout(Some(gap)).unwrap();
        let mut b = [0u8; 1024];
        match c.stream.read(&mut b) {
            Ok(0) => return Some(start.elapsed()),
            Ok(n) => c.buf.extend_from_slice(&b[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(start.elapsed()), // reset
        }
    }
    None
}

#[test]
fn slowloris_is_closed_after_header_timeout() {
    with_timeout(LIMIT, || {
        let srv = start_server(|s| s.set_header_timeout(Duration::from_secs(1)));
        let mut c = Client::connect(srv.addr);
        let slow = format!(
            "GET / HTTP/1.1\r\nHost: h\r\nX-Slow: {}\r\n\r\n",
            "a".repeat(100)
        );
        let closed = trickle_until_closed(
            &mut c,
            slow.as_bytes(),
            Duration::from_millis(200),
            Duration::from_secs(5),
        );
        let at = closed.expect("slowloris client not closed within 5 s");
        assert!(
            at >= Duration::from_millis(800),
            "closed after {at:?}, before the 1 s header timeout"
        );
        assert!(
            c.buf.is_empty() || c.buf.starts_with(b"HTTP/1.1 408"),
            "unexpected bytes to a slow client: {:?}",
            String::from_utf8_lossy(&c.buf)
        );
        assert_serves(srv.addr, "slowloris");
    });
}

#[test]
fn slow_body_is_closed_after_header_timeout() {
    with_timeout(LIMIT, || {
        let srv = start_server(|s| s.set_header_timeout(Duration::from_secs(1)));
        let mut c = Client::connect(srv.addr);
        c.send(b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n");
        let closed = trickle_until_closed(
            &mut c,
            &[b'x'; 100],
            Duration::from_millis(200),
            Duration::from_secs(5),
        );
        let at = closed.expect("slow body not closed within 5 s");
        assert!(at >= Duration::from_millis(800), "closed after {at:?}");
        assert_serves(srv.addr, "slow body");
    });
}

#[test]
fn idle_keep_alive_connection_is_closed() {
    with_timeout(LIMIT, || {
        let srv = start_server(|s| s.set_idle_timeout(Duration::from_secs(1)));
        let mut c = Client::connect(srv.addr);
        assert_eq!(c.request(&req("/")).status, 200);
        let t = Instant::now();
        match c.wait_end(Duration::from_secs(5)) {
            End::Eof | End::Reset => {}
            other => panic!("idle connection not closed within 5 s: {other:?}"),
        }
        let at = t.elapsed();
        assert!(
            at >= Duration::from_millis(800),
            "idle close after only {at:?}"
        );

        // A connection that never sends anything is closed too.
        let mut c = Client::connect(srv.addr);
        let t = Instant::now();
        c.assert_closed("silent connection");
        assert!(t.elapsed() >= Duration::from_millis(800));
    });
}

#[test]
fn active_keep_alive_connection_stays_open() {
    with_timeout(LIMIT, || {
        let srv = start_server(|s| {
            s.set_idle_timeout(Duration::from_secs(2));
            s.set_header_timeout(Duration::from_secs(2));
        });
        let mut c = Client::connect(srv.addr);
        // Twelve requests 250 ms apart: together they outlast the idle
        // timeout several times, but no gap comes near it (a count of
        // requests, not a rate, so a loaded machine cannot fail it).
        for n in 0..12 {
            let r = c.request(&req(&format!("/tick{n}")));
            assert_eq!(r.body, format!("GET /tick{n}").into_bytes());
            assert!(!r.closes());
            std::thread::sleep(Duration::from_millis(250));
        }
        let r = c.request(&req("/last"));
        assert_eq!(r.body, b"GET /last", "connection dropped while active");
    });
}

// ---------------------------------------------------------------------------
// Worker pool

fn random_sleep_handler(req: &HttpRequest, resp: &mut HttpResponse) {
    use rand::Rng;
    let ms = rand::thread_rng().gen_range(0..=20);
    std::thread::sleep(Duration::from_millis(ms));
    demo_handler(req, resp);
}

#[test]
fn worker_pool_pipelined_in_order_while_others_served() {
    with_timeout(LIMIT, || {
        let srv = start_server(|s| {
            s.set_thread_num(0);
            s.set_worker_threads(2).unwrap();
            s.set_handler(random_sleep_handler);
        });
        let mut a = Client::connect(srv.addr);
        let mut bytes = Vec::new();
        let mut want = Vec::new();
        for n in 0..50 {
            bytes.extend_from_slice(&req(&format!("/{n}")));
            want.push(format!("GET /{n}").into_bytes());
        }
        a.send(&bytes);
        // Meanwhile another client is served on the same loop.
        let addr = srv.addr;
        let other = std::thread::spawn(move || {
            let mut b = Client::connect(addr);
            for i in 0..10 {
                let r = b.request(&req(&format!("/b{i}")));
                assert_eq!(r.body, format!("GET /b{i}").into_bytes());
            }
        });
        let resps = read_n(&mut a, 50);
        assert_in_order(&resps, &want, "worker pool");
        assert!(resps.iter().all(|r| r.header("date").is_some()));
        other.join().expect("second client");
        a.assert_open_for(Duration::from_millis(50), "after worker responses");
    });
}

#[test]
fn worker_pool_blocked_handler_does_not_block_loop() {
    with_timeout(LIMIT, || {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let g = gate.clone();
        let srv = start_server(move |s| {
            s.set_thread_num(0);
            s.set_worker_threads(2).unwrap();
            s.set_handler(move |req, resp| {
                if req.path() == "/0" {
                    let (m, cv) = &*g;
                    let open = m.lock().unwrap();
                    // Bounded, so a failing test cannot hang the pool.
                    let _ = cv
                        .wait_timeout_while(open, Duration::from_secs(10), |o| !*o)
                        .unwrap();
                }
                random_sleep_handler(req, resp);
            });
        });
        let mut a = Client::connect(srv.addr);
        let mut bytes = Vec::new();
        let mut want = Vec::new();
        for n in 0..50 {
            bytes.extend_from_slice(&req(&format!("/{n}")));
            want.push(format!("GET /{n}").into_bytes());
        }
        a.send(&bytes);
        // /0 is stuck in a worker; another client still gets a full answer
        // (read and written by the loop, handled by the other worker).
        let t = Instant::now();
        let mut b = Client::connect(srv.addr);
        let r = b.request(&req("/other"));
        assert_eq!(r.body, b"GET /other");
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "took {:?}",
            t.elapsed()
        );
        // The loop itself answers 100-continue at once.
        b.send(
            b"POST /echo HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
        );
        assert_eq!(b.read_exact_bytes(25), b"HTTP/1.1 100 Continue\r\n\r\n");
        b.send(b"ok");
        assert_eq!(b.response().body, b"ok");
        // A has nothing yet: later responses wait for /0 (in-order delivery).
        a.assert_open_for(Duration::from_millis(100), "while /0 is blocked");
        {
            let (m, cv) = &*gate;
            *m.lock().unwrap() = true;
            cv.notify_all();
        }
        let resps = read_n(&mut a, 50);
        assert_in_order(&resps, &want, "after the gate opened");
    });
}

#[test]
fn worker_pool_more_pipelined_requests_than_in_flight_cap() {
    // Regression: with more pipelined requests in one read than the
    // in-flight cap (32), the server paused reading and never parsed the
    // rest of what it had already read: the 33rd request hung until the
    // header timeout closed the connection.
    // Paused reading must resume under every poller (edge-triggered
    // epoll only reports data that arrives after re-arming).
    with_timeout(LIMIT, || {
        for kind in support::POLLERS {
            let srv = start_server(|s| {
                s.set_thread_num(1);
                s.set_poller(kind);
                s.set_worker_threads(2).unwrap();
            });
            let mut c = Client::connect(srv.addr);
            let mut bytes = Vec::new();
            for n in 0..200 {
                bytes.extend_from_slice(&req(&format!("/{n}")));
            }
            bytes.extend_from_slice(
                b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\ntail",
            );
            c.send(&bytes);
            for n in 0..200 {
                let r = c.response();
                assert_eq!(
                    r.body,
                    format!("GET /{n}").into_bytes(),
                    "{kind:?}: response {n}"
                );
            }
            assert_eq!(c.response().body, b"tail", "{kind:?}");
            assert_eq!(c.request(&req("/more")).body, b"GET /more", "{kind:?}");
        }
    });
}

#[test]
fn worker_pool_loop_output_stays_in_order() {
    // Regression: in worker mode, output made on the loop (an error
    // response, `100 Continue`) was written at once, ahead of responses
    // still at the workers; after an error those responses were dropped.
    with_timeout(LIMIT, || {
        let srv = start_server(|s| {
            s.set_thread_num(0);
            s.set_worker_threads(2).unwrap();
            s.set_handler(|req, resp| {
                std::thread::sleep(Duration::from_millis(30));
                demo_handler(req, resp);
            });
        });
        let mut c = Client::connect(srv.addr);
        c.send(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/2.0\r\n\r\n");
        assert_eq!(c.response().body, b"GET /1");
        assert_eq!(c.response().body, b"GET /2");
        let r = c.response();
        assert_eq!(r.status, 505);
        assert!(r.closes());
        c.assert_closed("error after worker responses");

        let mut c = Client::connect(srv.addr);
        c.send(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /echo HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
        let first = c.response();
        assert_eq!(
            (first.status, first.body.as_slice()),
            (200, &b"GET /1"[..]),
            "the 100 Continue for request 2 came before the response to request 1"
        );
        assert_eq!(c.read_exact_bytes(25), b"HTTP/1.1 100 Continue\r\n\r\n");
        c.send(b"ok");
        assert_eq!(c.response().body, b"ok");
        assert_serves(srv.addr, "worker-mode ordering");
    });
}

// ---------------------------------------------------------------------------
// Fuzz-style property: random and mutated requests

const CORPUS: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\n",
    b"GET /a?b=c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    b"GET /q HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    b"PUT /p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nX-A: 1\r\nX-A: 2\r\n\r\n",
];

#[derive(Clone, Debug)]
enum Mutation {
    Flip(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Delete(prop::sample::Index, usize),
    Duplicate(prop::sample::Index, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<prop::sample::Index>(), 1usize..8).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<prop::sample::Index>(), 1usize..16).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

fn apply(mut bytes: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        if bytes.is_empty() {
            break;
        }
        match m {
            Mutation::Flip(i, b) => {
                let at = i.index(bytes.len());
                bytes[at] = *b;
            }
            Mutation::Insert(i, b) => {
                let at = i.index(bytes.len() + 1);
                bytes.insert(at, *b);
            }
            Mutation::Delete(i, n) => {
                let at = i.index(bytes.len());
                let end = (at + n).min(bytes.len());
                bytes.drain(at..end);
            }
            Mutation::Duplicate(i, n) => {
                let at = i.index(bytes.len());
                let end = (at + n).min(bytes.len());
                let piece = bytes[at..end].to_vec();
                bytes.splice(end..end, piece);
            }
        }
    }
    bytes
}

fn fuzz_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Random bytes.
        prop::collection::vec(any::<u8>(), 0..200),
        // A plausible request line followed by random printable text.
        "[ -~\r\n]{0,120}".prop_map(|s| format!("GET /x HTTP/1.1\r\nHost: h\r\n{s}").into_bytes()),
        // 1-3 valid requests, then a few byte-level mutations.
        (
            prop::collection::vec(0..CORPUS.len(), 1..4),
            prop::collection::vec(mutation(), 0..4)
        )
            .prop_map(|(picks, muts)| {
                let joined: Vec<u8> = picks.iter().flat_map(|&i| CORPUS[i].to_vec()).collect();
                apply(joined, &muts)
            }),
    ]
}

/// Reads until the server closes; every byte received must belong to a
/// well-formed HTTP/1.1 response.
fn drain_responses(c: &mut Client) -> Result<Vec<Resp>, String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.try_response_within(left, false) {
            Ok(r) => out.push(r),
            Err(End::Eof) if c.buf.is_empty() => return Ok(out),
            Err(End::Eof) => {
                return Err(format!(
                    "EOF inside a response: {:?}",
                    String::from_utf8_lossy(&c.buf)
                ))
            }
            Err(End::Reset) => return Ok(out),
            Err(End::Timeout) => {
                return Err(format!(
                    "neither answered nor closed within 5 s (got {} responses, pending {:?})",
                    out.len(),
                    String::from_utf8_lossy(&c.buf)
                ))
            }
            Err(End::Garbage(e)) => return Err(format!("not an HTTP response: {e}")),
        }
    }
}

#[test]
fn fuzzed_requests_get_a_status_or_a_close() {
    with_timeout(Duration::from_secs(50), || {
        // Short timeouts so connections left waiting for more input (or idle
        // after complete requests) end quickly. Empty bodies: a mutated
        // request may turn into a HEAD.
        let srv = start_server(|s| {
            s.set_header_timeout(Duration::from_millis(200));
            s.set_idle_timeout(Duration::from_millis(200));
            s.set_limits(HttpLimits {
                max_header_bytes: 512,
                max_uri_len: 128,
                max_body_bytes: 256,
                max_headers: 16,
            });
            s.set_handler(|req, resp| {
                resp.add_header("X-Body-Len", req.body().len().to_string());
            });
        });
        let addr = srv.addr;
        let mut runner = TestRunner::new(PtConfig {
            cases: 32,
            max_shrink_iters: 32,
            failure_persistence: None,
            ..PtConfig::default()
        });
        let statuses = std::cell::RefCell::new(std::collections::BTreeMap::<u16, usize>::new());
        let result = runner.run(&fuzz_input(), |input| {
            let mut c = Client::connect(addr);
            let _ = c.stream.write_all(&input);
            let resps = drain_responses(&mut c).map_err(TestCaseError::fail)?;
            for (i, r) in resps.iter().enumerate() {
                prop_assert!(
                    matches!(r.status, 100 | 200 | 400 | 413 | 414 | 431 | 501 | 505),
                    "unexpected status {}",
                    r.status_line
                );
                // Only the last response may close the connection, and an
                // error response always does.
                if i + 1 < resps.len() {
                    prop_assert!(!r.closes(), "response {i} closes but more followed");
                }
                if r.status >= 400 {
                    prop_assert!(r.closes(), "error {} without Connection: close", r.status);
                }
            }
            for r in &resps {
                *statuses.borrow_mut().entry(r.status).or_default() += 1;
            }
            // A fresh client is still served.
            let mut fresh = Client::connect(addr);
            let r = fresh.request(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
            prop_assert_eq!(r.status, 200);
            prop_assert_eq!(r.header("x-body-len"), Some("0"));
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
        // The generator reached both the happy path and the error paths.
        let statuses = statuses.into_inner();
        assert!(statuses.contains_key(&200), "no 200 among {statuses:?}");
        assert!(statuses.contains_key(&400), "no 400 among {statuses:?}");
    });
}

// ---------------------------------------------------------------------------
// Send timeout (slow and stalled readers)

/// A client whose receive buffer is small and fixed, so a large response
/// fills it quickly when the client does not read.
fn small_rcvbuf_client(addr: std::net::SocketAddr) -> std::net::TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(16 * 1024).unwrap();
    s.connect(&addr.into()).unwrap();
    let s: std::net::TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

fn big_body_server(len: usize, send_timeout: Duration) -> http_util::HttpTestServer {
    start_server(move |s| {
        s.set_send_timeout(send_timeout);
        // Idle and header timeouts shorter than the transfer: a response
        // still being sent must not count as idle.
        s.set_idle_timeout(Duration::from_millis(500));
        s.set_header_timeout(Duration::from_millis(500));
        s.set_handler(move |_req, resp| {
            resp.set_body(vec![b'x'; len]);
        });
    })
}

#[test]
fn stalled_reader_is_closed_by_the_send_timeout() {
    with_timeout(LIMIT, || {
        let srv = big_body_server(32 << 20, Duration::from_secs(1));
        let mut c = small_rcvbuf_client(srv.addr);
        c.write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let t0 = Instant::now();
        // Read a little, then stop reading: the server's output stalls.
        let mut head = [0u8; 1024];
        c.read_exact(&mut head).unwrap();
        assert!(head.starts_with(b"HTTP/1.1 200 OK\r\n"));
        // Wait for the server to drop the connection (its socket's state).
        let closed = (0..2000).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            srv.server.tcp_server().connection_count() == 0
        });
        assert!(closed, "a stalled reader was never closed");
        assert!(
            t0.elapsed() >= Duration::from_secs(1),
            "closed before the send timeout: {:?}",
            t0.elapsed()
        );
    });
}

#[test]
fn slow_reader_that_keeps_reading_gets_everything() {
    with_timeout(LIMIT, || {
        const LEN: usize = 1 << 20;
        let srv = big_body_server(LEN, Duration::from_millis(800));
        let mut c = small_rcvbuf_client(srv.addr);
        c.write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        // 16 KiB every 25 ms: the transfer takes well over the send, idle
        // and header timeouts, but always makes progress.
        let mut got = Vec::new();
        let mut chunk = vec![0u8; 16 * 1024];
        let t0 = Instant::now();
        let body_len = |got: &[u8]| {
            got.windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map_or(0, |at| got.len() - at - 4)
        };
        while body_len(&got) < LEN {
            let n = c.read(&mut chunk).expect("read");
            assert!(n > 0, "closed after {} bytes", got.len());
            got.extend_from_slice(&chunk[..n]);
            std::thread::sleep(Duration::from_millis(25));
        }
        assert!(
            t0.elapsed() > Duration::from_millis(800),
            "transfer too fast to test"
        );
        let body_at = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert_eq!(got.len() - body_at, LEN);
        // The connection is still usable afterwards.
        c.write_all(b"GET /again HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).unwrap();
        assert!(rest.starts_with(b"HTTP/1.1 200 OK\r\n"));
    });
}

#[test]
fn closing_response_to_a_slow_reader_is_not_cut_off() {
    with_timeout(LIMIT, || {
        // Longer than the 5 s close grace period at this reading rate.
        const LEN: usize = 3 << 20;
        let srv = big_body_server(LEN, Duration::from_secs(5));
        let mut c = small_rcvbuf_client(srv.addr);
        c.write_all(b"GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        let mut chunk = vec![0u8; 32 * 1024];
        let t0 = Instant::now();
        loop {
            let n = c.read(&mut chunk).expect("read");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
            std::thread::sleep(Duration::from_millis(50));
        }
        let body_at = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert_eq!(got.len() - body_at, LEN, "cut off after {:?}", t0.elapsed());
    });
}

//! The real `examples/http_server` binary: method routing (case-sensitive
//! methods, 405 with `Allow`, 501 for unknown methods), flag values out of
//! range, and logs without terminal colour codes when not on a terminal.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::example::{example_path, Example};
use support::with_timeout;

const LIMIT: Duration = Duration::from_secs(60);

/// Sends one request with `Connection: close` and returns the whole response.
fn exchange(ex: &Example, head: &str) -> String {
    let mut c = TcpStream::connect(ex.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(head.as_bytes()).unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn status_line(resp: &str) -> &str {
    resp.lines().next().unwrap_or_default()
}

fn header<'a>(resp: &'a str, name: &str) -> Option<&'a str> {
    resp.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn routes_on_method_and_path() {
    with_timeout(LIMIT, || {
        // Every example takes --poller; `auto` is io_uring where the kernel
        // has it, else epoll.
        let ex = Example::start(
            "http_server",
            &[
                "--addr",
                "127.0.0.1:0",
                "--threads",
                "1",
                "--poller",
                "auto",
            ],
        );
        let get = |m: &str, p: &str| {
            exchange(
                &ex,
                &format!(
                    "{m} {p} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                ),
            )
        };
        let r = get("GET", "/");
        assert_eq!(status_line(&r), "HTTP/1.1 200 OK");
        assert!(r.ends_with("Hello, World!"));
        // Methods are case-sensitive (RFC 9110 §9.1): `get` is unknown.
        assert_eq!(
            status_line(&get("get", "/")),
            "HTTP/1.1 501 Not Implemented"
        );
        assert_eq!(
            status_line(&get("BREW", "/")),
            "HTTP/1.1 501 Not Implemented"
        );
        let r = get("DELETE", "/");
        assert_eq!(status_line(&r), "HTTP/1.1 405 Method Not Allowed");
        assert_eq!(header(&r, "allow"), Some("GET, HEAD, OPTIONS"));
        let r = get("GET", "/echo");
        assert_eq!(status_line(&r), "HTTP/1.1 405 Method Not Allowed");
        assert_eq!(header(&r, "allow"), Some("POST, PUT, OPTIONS"));
        let r = get("OPTIONS", "/hello");
        assert_eq!(status_line(&r), "HTTP/1.1 204 No Content");
        assert_eq!(header(&r, "allow"), Some("GET, HEAD, OPTIONS"));
        assert_eq!(status_line(&get("GET", "/nope")), "HTTP/1.1 404 Not Found");
        // Absolute-form targets route on their path; no Host is a 400.
        let r = exchange(
            &ex,
            "GET http://example.com/hello HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(status_line(&r), "HTTP/1.1 200 OK");
        assert!(r.ends_with("hello, world!\n"));
        let r = exchange(&ex, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert_eq!(status_line(&r), "HTTP/1.1 400 Bad Request");
    });
}

/// Runs the example with `args` and returns (exit status, stderr).
fn run_to_exit(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(example_path("http_server"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn out_of_range_flags_are_one_line_errors() {
    with_timeout(LIMIT, || {
        for bad in [
            &["--idle-timeout", "1e30"][..],
            &["--header-timeout", "-1"],
            &["--send-timeout", "NaN"],
            &["--idle-timeout", "soon"],
            &["--threads", "many"],
            &["--bogus"],
            &["--poller", "kqueue"],
        ] {
            let mut args = vec!["--addr", "127.0.0.1:0"];
            args.extend_from_slice(bad);
            let (code, err) = run_to_exit(&args);
            assert_eq!(code, Some(1), "{bad:?}: {err}");
            assert_eq!(
                err.trim().lines().count(),
                1,
                "{bad:?}: not one line: {err}"
            );
            assert!(!err.contains("panicked"), "{bad:?}: {err}");
            assert!(err.starts_with("http_server: "), "{bad:?}: {err}");
        }
    });
}

#[test]
fn largest_durations_are_accepted_as_never() {
    with_timeout(LIMIT, || {
        let ex = Example::start(
            "http_server",
            &[
                "--addr",
                "127.0.0.1:0",
                "--threads",
                "0",
                "--idle-timeout",
                "1.8e19",
                "--header-timeout",
                "0.05",
                "--send-timeout",
                "1.8e19",
            ],
        );
        // The header timeout fires first, then the loop looks at the idle
        // deadline (start + 1.8e19 s), which must saturate, not panic.
        let mut c = TcpStream::connect(ex.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = Vec::new();
        c.read_to_end(&mut out).unwrap();
        assert!(
            out.starts_with(b"HTTP/1.1 200 OK\r\n"),
            "{:?}",
            String::from_utf8_lossy(&out)
        );
    });
}

#[test]
fn logs_to_a_pipe_have_no_colour_codes() {
    with_timeout(LIMIT, || {
        // Not through `Example`, which sets NO_COLOR: the example must decide
        // by itself that a pipe is not a terminal.
        let mut child = Command::new(example_path("http_server"))
            .args(["--addr", "127.0.0.1:0", "--threads", "0"])
            .env_remove("NO_COLOR")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = child.stderr.take().unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("listening") {
            let n = err.read(&mut buf).unwrap();
            assert!(
                n > 0,
                "the example exited: {}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&buf[..n]);
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            !seen.contains(&0x1b),
            "escape codes in {:?}",
            String::from_utf8_lossy(&seen)
        );
    });
}

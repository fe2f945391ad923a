//! Runs the real `examples/echo` binary and checks its HTTP framing: one
//! response per `GET / HTTP/1.x` request however the request is split or
//! pipelined, keep-alive, and plain echo for everything else.
//!
//! The example must have been built for the same profile (`cargo test`
//! without `--test` builds examples; otherwise run `cargo build --examples`
//! first). The binary is looked up next to this test binary:
//! `target/<profile>/deps/<test>` -> `target/<profile>/examples/echo`.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;
use support::example::Example;
use support::with_timeout;
use support::{assert_silent, connect, read_n, read_to_eof};

const LIMIT: Duration = Duration::from_secs(60);
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World!";
const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: muduo-test\r\n\r\n";
/// How long to wait for bytes that must not come.
const QUIET: Duration = Duration::from_millis(200);

type EchoExample = Example;

/// Starts `examples/echo --addr 127.0.0.1:0` and reads the listening
/// address from its `EchoServer listening addr=...` log line.
fn start_example(threads: usize) -> EchoExample {
    Example::start(
        "echo",
        &["--addr", "127.0.0.1:0", "--threads", &threads.to_string()],
    )
}

fn assert_one_response(c: &mut TcpStream) {
    let got = read_n(c, RESPONSE.len());
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(RESPONSE)
    );
}

#[test]
fn one_get_gets_exactly_one_response() {
    with_timeout(LIMIT, || {
        let ex = start_example(2);
        let mut c = connect(ex.addr);
        c.write_all(GET).unwrap();
        assert_one_response(&mut c);
        assert_silent(&mut c, QUIET);
        // HTTP/1.0 with keep-alive gets the same answer and stays open.
        c.write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap();
        assert_one_response(&mut c);
        assert_silent(&mut c, QUIET);
    });
}

#[test]
fn http10_and_connection_close_are_answered_then_closed() {
    with_timeout(LIMIT, || {
        let ex = start_example(2);
        for req in [
            &b"GET / HTTP/1.0\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
            // Requests after the closing one are not answered.
            b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        ] {
            let mut c = connect(ex.addr);
            c.write_all(req).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&read_to_eof(&mut c)),
                String::from_utf8_lossy(RESPONSE)
            );
        }
    });
}

#[test]
fn sixteen_pipelined_gets_get_sixteen_responses_and_keep_alive() {
    with_timeout(LIMIT, || {
        let ex = start_example(0);
        let mut c = connect(ex.addr);
        c.write_all(&GET.repeat(16)).unwrap();
        let got = read_n(&mut c, RESPONSE.len() * 16);
        assert!(
            got == RESPONSE.repeat(16),
            "16 pipelined requests must get exactly 16 responses, got {:?}",
            String::from_utf8_lossy(&got)
        );
        assert_silent(&mut c, QUIET);
        // The connection is still open: another request on it is answered.
        c.write_all(GET).unwrap();
        assert_one_response(&mut c);
        assert_silent(&mut c, QUIET);
    });
}

#[test]
fn get_split_byte_by_byte_gets_one_response() {
    with_timeout(LIMIT, || {
        let ex = start_example(1);
        let mut c = connect(ex.addr); // TCP_NODELAY: every byte is its own segment
        for b in GET {
            c.write_all(std::slice::from_ref(b)).unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_one_response(&mut c);
        assert_silent(&mut c, QUIET);
    });
}

#[test]
fn plain_bytes_are_echoed() {
    with_timeout(LIMIT, || {
        let ex = start_example(2);
        let mut c = connect(ex.addr);
        c.write_all(b"hello, echo\n").unwrap();
        assert_eq!(read_n(&mut c, 12), b"hello, echo\n");
        let big = support::pattern(7, 256 * 1024);
        let mut w = c.try_clone().unwrap();
        let data = big.clone();
        let t = std::thread::spawn(move || w.write_all(&data).unwrap());
        let got = read_n(&mut c, big.len());
        t.join().unwrap();
        assert!(
            got == big,
            "256 KiB of plain bytes must come back unchanged"
        );
        assert_silent(&mut c, QUIET);
        // A request after plain data on a fresh connection is still answered.
        let mut c2 = connect(ex.addr);
        c2.write_all(GET).unwrap();
        assert_one_response(&mut c2);
    });
}

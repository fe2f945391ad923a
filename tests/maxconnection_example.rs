//! Runs the real `examples/maxconnection` binary with `--max 3`: three
//! clients are served, a fourth is closed at once and the refusal is
//! logged with its count; once one of the three has left (and the server
//! has logged it), a new client is served again.
//!
//! Needs the example built for the same profile (`cargo build --examples`).

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;
use support::example::Example;
use support::with_timeout;
use support::{connect, read_n, wait_closed};

const LIMIT: Duration = Duration::from_secs(90);
const WAIT: Duration = Duration::from_secs(20);

fn echo(c: &mut TcpStream, msg: &[u8]) {
    c.write_all(msg).expect("write");
    assert_eq!(read_n(c, msg.len()), msg);
}

#[test]
fn refuses_over_the_limit_and_serves_again_after_a_close() {
    with_timeout(LIMIT, || {
        let mut server = Example::start(
            "maxconnection",
            &["--addr", "127.0.0.1:0", "--max", "3", "--threads", "2"],
        );
        // An echo proves the server counted the connection (the connection
        // callback runs before any message callback).
        let mut served: Vec<TcpStream> = (0..3)
            .map(|i| {
                let mut c = connect(server.addr);
                echo(&mut c, format!("client {i}\n").as_bytes());
                c
            })
            .collect();

        let mut fourth = connect(server.addr);
        // Writing may fail once the server has closed; only the close matters.
        let _ = fourth.write_all(b"too many\n");
        assert!(
            wait_closed(&mut fourth, WAIT).is_some(),
            "the fourth connection was not closed"
        );
        let refused = server
            .wait_for_line(WAIT, |l| l.contains("WARN") && l.contains("refused=1"))
            .expect("no warn line for the refused connection");
        assert!(refused.contains("connection refused"), "{refused}");

        // The three are still served.
        for (i, c) in served.iter_mut().enumerate() {
            echo(c, format!("still here {i}\n").as_bytes());
        }

        // One leaves; wait until the server has seen it (the refused one
        // went down before, so the count reaches 2 only now).
        drop(served.pop());
        server
            .wait_for_line(WAIT, |l| {
                l.contains("connection down") && l.contains("connected=2")
            })
            .expect("the server did not log the close");
        let mut again = connect(server.addr);
        echo(&mut again, b"served again\n");
    });
}

#[test]
fn rejects_a_missing_limit() {
    let out = std::process::Command::new(support::example::example_path("maxconnection"))
        .args(["--addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max"));
}

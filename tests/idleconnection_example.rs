//! Runs the real `examples/idleconnection` binary with `--idle 2`, on both
//! variants (timing wheel and sorted list): an idle connection is closed
//! after the idle time (no earlier than N-1 s after its last message, the
//! wheel's granularity), while a connection that sends every 300 ms stays
//! open for 5 s.
//!
//! Needs the example built for the same profile (`cargo build --examples`).

mod support;

use std::io::Write;
use std::time::{Duration, Instant};
use support::example::Example;
use support::with_timeout;
use support::{connect, read_n, wait_closed};

const IDLE_SECS: u64 = 2;
const LIMIT: Duration = Duration::from_secs(90);

fn idle_and_active(variant: &'static str) {
    with_timeout(LIMIT, move || {
        let mut server = Example::start(
            "idleconnection",
            &[
                "--addr",
                "127.0.0.1:0",
                "--idle",
                &IDLE_SECS.to_string(),
                "--variant",
                variant,
                "--threads",
                "1",
            ],
        );
        let addr = server.addr;

        // The active client runs beside the idle one, for longer than the
        // idle time, each message echoed before the next.
        let active = std::thread::spawn(move || {
            let mut c = connect(addr);
            let start = Instant::now();
            let mut rounds = 0u32;
            while start.elapsed() < Duration::from_secs(5) {
                let msg = format!("ping {rounds}\n");
                c.write_all(msg.as_bytes()).expect("active client write");
                assert_eq!(read_n(&mut c, msg.len()), msg.as_bytes(), "echo");
                rounds += 1;
                std::thread::sleep(Duration::from_millis(300));
            }
            rounds
        });

        let mut idle = connect(addr);
        // Echoed bytes prove the server has the connection; the server's
        // last receive time is after `sent`.
        let sent = Instant::now();
        idle.write_all(b"hello\n").unwrap();
        assert_eq!(read_n(&mut idle, 6), b"hello\n");
        // Generous bound: a loaded machine may delay the tick.
        let closed = wait_closed(&mut idle, Duration::from_secs(20));
        let after = sent.elapsed();
        assert!(
            closed.is_some(),
            "{variant}: idle connection still open {after:?} after its last message"
        );
        assert!(
            after >= Duration::from_secs(IDLE_SECS - 1),
            "{variant}: idle connection closed too early, {after:?} after its last message"
        );
        assert!(
            server
                .wait_for_line(Duration::from_secs(10), |l| l
                    .contains("closing idle connection"))
                .is_some(),
            "{variant}: no `closing idle connection` log line"
        );

        let rounds = active.join().expect("active client stayed open");
        assert!(rounds >= 5, "{variant}: only {rounds} active rounds");
    });
}

#[test]
fn wheel_closes_idle_and_keeps_active() {
    idle_and_active("wheel");
}

#[test]
fn sorted_list_closes_idle_and_keeps_active() {
    idle_and_active("list");
}

#[test]
fn rejects_a_missing_idle_time() {
    let out = std::process::Command::new(support::example::example_path("idleconnection"))
        .args(["--addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--idle"));
}

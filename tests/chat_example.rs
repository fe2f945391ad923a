//! Runs the real `examples/chat_server` (each variant) with 50 plain
//! clients speaking the length-header framing, and pipes lines through the
//! real `examples/chat_client`.
//!
//! Build the examples first (`cargo build --examples`, same profile).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::Duration;
use support::example::{example_path, Example};
use support::with_timeout;
use support::{assert_silent, connect};

const CLIENTS: usize = 50;
const PER_CLIENT: usize = 20;
const LIMIT: Duration = Duration::from_secs(120);

fn send_msg(s: &mut TcpStream, msg: &str) {
    let mut frame = (msg.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(msg.as_bytes());
    s.write_all(&frame).unwrap();
}

fn recv_msg(s: &mut TcpStream) -> String {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("read a header");
    let mut msg = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut msg).expect("read a payload");
    String::from_utf8(msg).expect("utf-8 message")
}

/// Connects and waits until the server has this client in its set: the
/// server registers a connection before it reads from it, so once our own
/// `join` comes back we receive every later broadcast.
fn join(addr: SocketAddr, name: &str) -> TcpStream {
    let mut s = connect(addr);
    let me = format!("join {name}");
    send_msg(&mut s, &me);
    while recv_msg(&mut s) != me {}
    s
}

/// 50 clients each send `PER_CLIENT` messages once all have joined; every
/// client must get every message exactly once, in order per sender.
fn broadcast_reaches_everyone(variant: &str) {
    let server = Example::start(
        "chat_server",
        &[
            "--variant",
            variant,
            "--addr",
            "127.0.0.1:0",
            "--threads",
            "3",
        ],
    );
    let addr = server.addr;
    with_timeout(LIMIT, move || {
        let joined = Arc::new(Barrier::new(CLIENTS));
        let received = Arc::new(Barrier::new(CLIENTS));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let (joined, received) = (joined.clone(), received.clone());
                std::thread::spawn(move || {
                    let mut s = join(addr, &i.to_string());
                    joined.wait();
                    for k in 0..PER_CLIENT {
                        send_msg(&mut s, &format!("{i} {k}"));
                    }
                    let mut next = [0usize; CLIENTS];
                    let mut got = 0;
                    while got < CLIENTS * PER_CLIENT {
                        let msg = recv_msg(&mut s);
                        if msg.starts_with("join ") {
                            continue; // a later joiner's hello, sent before the barrier
                        }
                        let (from, k) = msg.split_once(' ').expect("`sender seq`");
                        let (from, k): (usize, usize) = (from.parse().unwrap(), k.parse().unwrap());
                        assert_eq!(
                            k, next[from],
                            "client {i}: message {k} from {from} out of order or repeated"
                        );
                        next[from] += 1;
                        got += 1;
                    }
                    received.wait();
                    if i == 0 {
                        send_msg(&mut s, "end");
                    }
                    // Nothing but the end marker may follow: no duplicates.
                    assert_eq!(recv_msg(&mut s), "end", "client {i}: extra message");
                })
            })
            .collect();
        for c in clients {
            c.join().expect("client thread");
        }
    });
}

#[test]
fn single_loop_broadcast() {
    broadcast_reaches_everyone("single");
}

#[test]
fn mutex_broadcast() {
    broadcast_reaches_everyone("mutex");
}

#[test]
fn copy_on_write_broadcast() {
    broadcast_reaches_everyone("cow");
}

#[test]
fn per_loop_broadcast() {
    broadcast_reaches_everyone("per-loop");
}

/// Lines piped into the real chat_client come back to it from the server
/// (printed as `<<< line`) and reach another client; at end of input the
/// client exits with status 0.
#[test]
fn chat_client_sends_stdin_lines_and_prints_broadcasts() {
    let server = Example::start("chat_server", &["--addr", "127.0.0.1:0", "--threads", "2"]);
    let addr = server.addr;
    with_timeout(LIMIT, move || {
        let mut watcher = join(addr, "watcher");
        let mut child = Command::new(example_path("chat_client"))
            .args(["--addr", &addr.to_string()])
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chat_client");
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let lines = ["hello, chat", "second line", "ünïcode ✓"];
        for l in lines {
            writeln!(stdin, "{l}").unwrap();
        }
        stdin.flush().unwrap();
        for l in lines {
            let mut got = String::new();
            stdout.read_line(&mut got).expect("read chat_client output");
            assert_eq!(got, format!("<<< {l}\n"));
            assert_eq!(recv_msg(&mut watcher), l);
        }
        drop(stdin); // end of input: the client half-closes and exits
        let status = child.wait().expect("wait chat_client");
        assert!(status.success(), "chat_client exited with {status}");
        assert_silent(&mut watcher, Duration::from_millis(200));
    });
}

/// A peer announcing a message over the 64 KiB limit is disconnected.
#[test]
fn over_limit_message_closes_the_connection() {
    let server = Example::start("chat_server", &["--addr", "127.0.0.1:0"]);
    let addr = server.addr;
    with_timeout(LIMIT, move || {
        let mut s = join(addr, "liar");
        s.write_all(&(64 * 1024 + 1u32).to_be_bytes()).unwrap();
        assert!(support::wait_closed(&mut s, Duration::from_secs(20)).is_some());
    });
}

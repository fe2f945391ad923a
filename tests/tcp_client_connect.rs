//! TcpClient connect robustness (muduo #158, #177, PR #172): a connect
//! timeout for attempts the server never answers, a callback per failed
//! attempt, and randomised retry delays so clients do not reconnect in
//! lock-step.

mod support;

use muduo::{EventLoopThread, TcpClient};
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::with_timeout;

const LIMIT: Duration = Duration::from_secs(60);

/// A listener whose accept queue is full: further SYNs are dropped by the
/// kernel, so a connect to it stays in progress (loopback only).
fn full_listener() -> (socket2::Socket, Vec<TcpStream>, SocketAddr) {
    let l = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    l.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    l.listen(0).unwrap();
    let addr = l.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => fillers.push(s),
            Err(_) => return (l, fillers, addr), // the queue is full now
        }
    }
    panic!("the accept queue never filled");
}

#[test]
fn connect_timeout_fails_the_attempt_and_retries() {
    with_timeout(LIMIT, || {
        let (_listener, _fillers, addr) = full_listener();
        let lp = EventLoopThread::start("cto", None).unwrap();
        let mut client = TcpClient::new(lp.handle(), addr, "cto");
        client.set_connect_timeout(Duration::from_millis(300));
        let (tx, rx) = mpsc::channel();
        client.set_connect_failed_callback(move |e| {
            let _ = tx.send((Instant::now(), e.kind()));
        });
        client.set_connection_callback(|conn| {
            assert!(!conn.connected(), "connected to a full accept queue");
        });
        let t0 = Instant::now();
        client.connect();
        let (at, kind) = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("no timeout");
        assert_eq!(kind, ErrorKind::TimedOut);
        assert!(
            at - t0 >= Duration::from_millis(290),
            "timed out early: {:?}",
            at - t0
        );
        // It retries (after the jittered backoff) and times out again.
        let (_, kind) = rx.recv_timeout(Duration::from_secs(20)).expect("no retry");
        assert_eq!(kind, ErrorKind::TimedOut);
        client.stop();
    });
}

#[test]
fn retry_delays_are_jittered() {
    with_timeout(LIMIT, || {
        // Nothing listens here: every attempt is refused at once.
        let dead = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let lp = EventLoopThread::start("jitter", None).unwrap();
        const CLIENTS: usize = 8;
        let (tx, rx) = mpsc::channel();
        let clients: Vec<TcpClient> = (0..CLIENTS)
            .map(|i| {
                let c = TcpClient::new(lp.handle(), dead, "jitter");
                let tx = tx.clone();
                c.set_connect_failed_callback(move |e| {
                    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
                    let _ = tx.send((i, Instant::now()));
                });
                c.connect();
                c
            })
            .collect();
        let mut firsts = [None; CLIENTS];
        let mut gaps = Vec::new();
        while gaps.len() < CLIENTS {
            let (i, at) = rx
                .recv_timeout(Duration::from_secs(20))
                .expect("attempts stopped");
            match firsts[i] {
                None => firsts[i] = Some(at),
                Some(first) if gaps.len() < CLIENTS => {
                    gaps.push(at - first);
                    firsts[i] = Some(at + Duration::from_secs(3600)); // count once
                }
                Some(_) => {}
            }
        }
        drop(clients);
        // Nominal first delay 0.5 s, jittered to [0.25, 0.75) s.
        for g in &gaps {
            assert!(*g >= Duration::from_millis(245), "retry too early: {g:?}");
        }
        let spread = *gaps.iter().max().unwrap() - *gaps.iter().min().unwrap();
        assert!(
            spread >= Duration::from_millis(20),
            "{CLIENTS} clients retried in lock-step: {gaps:?}"
        );
    });
}

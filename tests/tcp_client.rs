//! TcpClient: retry until the server starts, reconnect after it restarts,
//! and dropping the client at any time is safe.

mod support;
use muduo::{EventLoopThread, TcpClient, TcpServer};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use support::loop_barrier;
use support::{serial, with_timeout};

const LIMIT: Duration = Duration::from_secs(60);

/// A loopback port that is free right now (bound then released).
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn echo_server(lp: &muduo::LoopHandle, addr: SocketAddr) -> TcpServer {
    let mut server = TcpServer::new(lp, addr, "echo").unwrap();
    server.set_message_callback(|conn, buf, _| conn.send_buffer(buf));
    server.start().unwrap();
    server
}

#[test]
fn connects_once_a_late_server_starts_then_reconnects_after_restart() {
    for kind in support::pollers() {
        let _serial = serial();
        with_timeout(LIMIT, move || {
            let server_loop = EventLoopThread::start_with("srv", kind, None).unwrap();
            let client_loop = EventLoopThread::start_with("cli", kind, None).unwrap();
            let addr = free_port();
            let ups = Arc::new(AtomicUsize::new(0));
            let (tx, rx) = mpsc::channel::<Vec<u8>>();
            let mut client = TcpClient::new(client_loop.handle(), addr, "client");
            client.enable_retry();
            let u = ups.clone();
            client.set_connection_callback(move |conn| {
                if conn.connected() {
                    u.fetch_add(1, Ordering::SeqCst);
                    conn.send(b"ping");
                }
            });
            client.set_message_callback(move |_conn, buf, _| {
                let _ = tx.send(buf.retrieve_all_as_vec());
            });
            client.connect(); // nothing listens yet: refused, retried after 0.5 s, 1 s, ...
            std::thread::sleep(Duration::from_millis(200));
            assert!(client.connection().is_none());

            let server = echo_server(server_loop.handle(), addr);
            assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), b"ping");
            assert_eq!(ups.load(Ordering::SeqCst), 1);
            assert!(client.connection().unwrap().connected());

            // Restart the server on the same port: the client notices the close
            // and reconnects by itself.
            server.stop();
            drop(server);
            let server = echo_server(server_loop.handle(), addr);
            assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), b"ping");
            assert_eq!(ups.load(Ordering::SeqCst), 2);
            drop(client);
            server.stop();
        });
    }
}

#[test]
fn without_retry_a_lost_connection_stays_lost() {
    for kind in support::pollers() {
        let _serial = serial();
        with_timeout(LIMIT, move || {
            let lp = EventLoopThread::start_with("one", kind, None).unwrap();
            let mut server =
                TcpServer::new(lp.handle(), "127.0.0.1:0".parse().unwrap(), "s").unwrap();
            let (stx, srx) = mpsc::channel();
            server.set_connection_callback(move |conn| {
                if conn.connected() {
                    let _ = stx.send(conn.clone());
                }
            });
            server.start().unwrap();
            let (tx, rx) = mpsc::channel();
            let mut client = TcpClient::new(lp.handle(), server.local_addr(), "c");
            client.set_connection_callback(move |conn| {
                let _ = tx.send(conn.connected());
            });
            client.connect();
            assert!(rx.recv_timeout(Duration::from_secs(5)).unwrap());
            let name = client.connection().unwrap().name().to_string();
            assert!(name.starts_with("c:127.0.0.1:"), "{name}");
            // The client's connect can complete before the server's loop has
            // accepted: close the connection the server reports, not whatever
            // `server.connections()` holds at this instant. The handle is
            // dropped at once: the socket closes with its last handle.
            srx.recv_timeout(Duration::from_secs(5))
                .unwrap()
                .force_close();
            assert!(!rx.recv_timeout(Duration::from_secs(5)).unwrap());
            assert!(
                rx.recv_timeout(Duration::from_millis(1500)).is_err(),
                "reconnected without enable_retry"
            );
            assert!(client.connection().is_none());
        });
    }
}

#[test]
fn disconnect_half_closes_and_the_server_sees_it() {
    for kind in support::pollers() {
        let _serial = serial();
        with_timeout(LIMIT, move || {
            let lp = EventLoopThread::start_with("dc", kind, None).unwrap();
            let mut server =
                TcpServer::new(lp.handle(), "127.0.0.1:0".parse().unwrap(), "s").unwrap();
            let (tx, rx) = mpsc::channel();
            server.set_connection_callback(move |conn| {
                let _ = tx.send(conn.connected());
            });
            server.start().unwrap();
            let (ctx, crx) = mpsc::channel();
            let mut client = TcpClient::new(lp.handle(), server.local_addr(), "c");
            client.set_connection_callback(move |conn| {
                let _ = ctx.send(conn.connected());
            });
            client.connect();
            assert!(crx.recv_timeout(Duration::from_secs(5)).unwrap());
            assert!(rx.recv_timeout(Duration::from_secs(5)).unwrap());
            client.disconnect();
            assert!(
                !rx.recv_timeout(Duration::from_secs(5)).unwrap(),
                "server should see the close"
            );
            assert!(
                !crx.recv_timeout(Duration::from_secs(5)).unwrap(),
                "client closes once the server closes"
            );
        });
    }
}

#[test]
fn dropping_clients_at_any_moment_is_safe_and_leaks_nothing() {
    for kind in support::pollers() {
        let _serial = serial();
        with_timeout(LIMIT, move || {
            let lp = EventLoopThread::start_with("drops", kind, None).unwrap();
            let server = echo_server(lp.handle(), "127.0.0.1:0".parse().unwrap());
            let dead = free_port();
            let fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
            // start() registers the listener (and opens the acceptor's spare fd)
            // on the loop thread: count only after the loop has done it.
            loop_barrier(lp.handle());
            let before = fds();
            for i in 0..200 {
                let target = if i % 2 == 0 {
                    server.local_addr()
                } else {
                    dead
                };
                let mut c = TcpClient::new(lp.handle(), target, "d");
                c.enable_retry();
                c.set_connection_callback(|conn| {
                    if conn.connected() {
                        conn.send(b"x");
                    }
                });
                c.connect();
                // Drop right away, a little later, or from the loop thread itself.
                match i % 3 {
                    0 => drop(c),
                    1 => {
                        std::thread::sleep(Duration::from_millis(1));
                        drop(c);
                    }
                    _ => lp.handle().run_in_loop(move || drop(c)),
                }
            }
            // Let pending retries fire into the void.
            std::thread::sleep(Duration::from_millis(700));
            let (tx, rx) = mpsc::channel();
            lp.handle().run_in_loop(move || tx.send(()).unwrap());
            rx.recv().unwrap();
            let mut after = fds();
            for _ in 0..100 {
                if after <= before && server.connection_count() == 0 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
                after = fds();
            }
            assert_eq!(server.connection_count(), 0);
            assert!(after <= before, "fds leaked: {before} -> {after}");
        });
    }
}

/// A client dropped while its `connect` is still queued behind other work
/// on the loop: the drop must stop the connector that `connect` creates
/// when it finally runs, not leave it retrying (and opening sockets) for
/// ever in the loop's object table.
#[test]
fn a_client_dropped_before_its_connect_ran_stops_retrying() {
    for kind in support::pollers() {
        let _serial = serial();
        with_timeout(LIMIT, move || {
            let lp = EventLoopThread::start_with("orphan", kind, None).unwrap();
            let dead = free_port();
            // Hold the loop, so connect() and the drop both queue up before
            // the loop has made the connector.
            let (release_tx, release_rx) = mpsc::channel::<()>();
            let (held_tx, held_rx) = mpsc::channel();
            lp.handle().run_in_loop(move || {
                held_tx.send(()).unwrap();
                let _ = release_rx.recv();
            });
            held_rx.recv().unwrap();
            let (tx, rx) = mpsc::channel();
            let client = TcpClient::new(lp.handle(), dead, "orphan");
            client.set_connect_failed_callback(move |_| {
                let _ = tx.send(());
            });
            client.connect();
            drop(client);
            release_tx.send(()).unwrap();
            loop_barrier(lp.handle());
            // The first attempt may have failed before the drop ran; after
            // it, nothing: a stopped connector is dropped with its callback
            // (the channel disconnects), a leaked one retries within 0.75 s.
            while rx.try_recv().is_ok() {}
            match rx.recv_timeout(Duration::from_secs(3)) {
                Err(mpsc::RecvTimeoutError::Disconnected) => {}
                Ok(()) => panic!("{kind:?}: a dropped client kept retrying"),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("{kind:?}: the dropped client's connector is still alive")
                }
            }
        });
    }
}

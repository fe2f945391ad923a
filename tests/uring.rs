//! io_uring-specific behaviour the shared suites cannot provoke.

mod support;
use muduo::{EventLoopThread, PollerKind, TcpServer};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;
use support::with_timeout;

const LIMIT: Duration = Duration::from_secs(60);

/// More connections have data ready at once than the loop has receive
/// buffers: the kernel ends some multishot receives with ENOBUFS. They
/// must be re-armed and every byte still echoed. (The only test in this
/// binary, so setting the environment races with nothing.)
#[test]
fn more_ready_connections_than_ring_buffers_lose_nothing() {
    if !support::available(PollerKind::Uring) {
        return;
    }
    std::env::set_var("MUDUO_URING_RECV_BUFFERS", "4");
    with_timeout(LIMIT, || {
        const CONNS: usize = 200;
        let lp = EventLoopThread::start_with("enobufs", PollerKind::Uring, None).unwrap();
        let mut server =
            TcpServer::new(lp.handle(), "127.0.0.1:0".parse().unwrap(), "enobufs").unwrap();
        server.set_message_callback(|c, buf, _| c.send_buffer(buf));
        server.start().unwrap();
        let mut clients: Vec<TcpStream> = (0..CONNS)
            .map(|_| TcpStream::connect(server.local_addr()).unwrap())
            .collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while server.connection_count() < CONNS && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(server.connection_count(), CONNS);
        // Hold the loop while every client writes, so all the data is
        // waiting when the loop next enters the kernel.
        let (held, release) = (mpsc::channel(), mpsc::channel::<()>());
        let (held_tx, held_rx) = held;
        let (release_tx, release_rx) = release;
        lp.handle().run_in_loop(move || {
            held_tx.send(()).unwrap();
            let _ = release_rx.recv_timeout(Duration::from_secs(20));
        });
        held_rx.recv().unwrap();
        for (i, c) in clients.iter_mut().enumerate() {
            c.write_all(format!("message {i:05}").as_bytes()).unwrap();
        }
        release_tx.send(()).unwrap();
        for (i, c) in clients.iter_mut().enumerate() {
            c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let want = format!("message {i:05}");
            let mut got = vec![0u8; want.len()];
            c.read_exact(&mut got)
                .unwrap_or_else(|e| panic!("connection {i}: {e}"));
            assert_eq!(got, want.as_bytes(), "connection {i}");
        }
    });
}

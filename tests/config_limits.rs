//! Durations too large to add to an `Instant` (`Duration::MAX` and the
//! like) are accepted everywhere a user can pass one and mean "never": no
//! overflow panic on the loop thread, in `stop()` or in `Drop`.

mod support;

use muduo::http::HttpServer;
use muduo::{EventLoopThread, TcpServer};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use support::loop_barrier;
use support::with_timeout;

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn http_timeouts_of_duration_max_mean_never() {
    with_timeout(LIMIT, || {
        let lp = EventLoopThread::start("cfg-http", None).unwrap();
        let mut server =
            HttpServer::new(lp.handle(), "127.0.0.1:0".parse().unwrap(), "cfg").unwrap();
        server.set_thread_num(0);
        // A short header timeout makes the connection's timer fire soon;
        // when it does, the idle deadline (start + MAX) must not overflow.
        server.set_header_timeout(Duration::from_millis(20));
        server.set_idle_timeout(Duration::MAX);
        server.set_send_timeout(Duration::MAX);
        server.set_handler(|_req, resp| {
            resp.set_body("ok");
        });
        server.start().unwrap();
        let mut c = TcpStream::connect(server.local_addr()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let mut buf = [0u8; 256];
        let n = c.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK"));
        // Let the timer fire (20 ms header timeout, then the idle check).
        std::thread::sleep(Duration::from_millis(100));
        loop_barrier(lp.handle());
        c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = Vec::new();
        c.read_to_end(&mut out).unwrap();
        assert!(out.starts_with(b"HTTP/1.1 200 OK"), "the loop thread died");
        // The same with the header timeout at MAX too.
        server.stop();
    });
}

#[test]
fn tcp_server_stop_timeout_of_duration_max() {
    with_timeout(LIMIT, || {
        let lp = EventLoopThread::start("cfg-tcp", None).unwrap();
        {
            let mut server =
                TcpServer::new(lp.handle(), "127.0.0.1:0".parse().unwrap(), "cfg").unwrap();
            server.set_thread_num(1);
            server.set_stop_timeout(Duration::MAX);
            server.set_message_callback(|conn, buf, _| conn.send_buffer(buf));
            server.start().unwrap();
            let mut c = TcpStream::connect(server.local_addr()).unwrap();
            c.write_all(b"x").unwrap();
            let mut b = [0u8; 1];
            c.read_exact(&mut b).unwrap();
            drop(c);
            // The client is gone, so stop() returns once the server has
            // seen the close; computing its deadline must not overflow.
            server.stop();
        }
        {
            // And from Drop, without an explicit stop().
            let mut server =
                TcpServer::new(lp.handle(), "127.0.0.1:0".parse().unwrap(), "cfg2").unwrap();
            server.set_stop_timeout(Duration::MAX);
            server.start().unwrap();
        }
        loop_barrier(lp.handle());
    });
}

#[test]
fn timers_with_huge_intervals_do_not_overflow() {
    with_timeout(LIMIT, || {
        let lp = EventLoopThread::start("cfg-timer", None).unwrap();
        let h = lp.handle().clone();
        let id1 = h.run_every(Duration::MAX, || {});
        let id2 = h.run_after(Duration::MAX, || {});
        let id3 = h.run_every(Duration::from_secs(u64::MAX / 2), || {});
        loop_barrier(&h);
        h.cancel(id1);
        h.cancel(id2);
        h.cancel(id3);
        loop_barrier(&h);
    });
}

//! The seed's EchoServer: echoes every byte, but answers `GET / HTTP/1.x`
//! requests with `Hello, World!`.
//!
//! Unlike the seed's clone, HTTP requests are framed: a request is answered
//! once its header section (up to the blank line) has arrived, however it
//! was split across reads; several pipelined requests in one read get one
//! answer each, written together; the connection stays open (keep-alive).
//! HTTP/1.0 requests without `Connection: keep-alive`, and requests with
//! `Connection: close`, are answered and then the connection is closed.
//! A client that sends without reading is throttled: once 4 MiB of echo are
//! queued for it the server stops reading from it until they are written.
//!
//! ```text
//! cargo run --release --example echo -- [--addr 127.0.0.1:8000] [--threads 4] [--poller epoll|epoll-et|poll|uring|auto]
//! ```

#[path = "common/args.rs"]
mod args;
#[path = "common/http_framing.rs"]
mod http_framing;
#[path = "common/inspect.rs"]
mod inspect;

use http_framing::{header_end, wants_close, PREFIX};

use muduo::{Buffer, EventLoop, PollerKind, TcpConnectionPtr, TcpServer};
use std::cell::RefCell;
use std::net::SocketAddr;

const USAGE: &str = "echo: TCP echo server that answers `GET / HTTP/1.x` with Hello, World!

usage: echo [--addr IP:PORT] [--threads N] [--poller epoll|epoll-et|poll|uring|auto]
  --addr     listen address (default 127.0.0.1:8000)
  --threads  I/O threads; 0 serves everything on the main loop (default 4)
  --poller   backend (default epoll; MUDUO_BACKEND=epoll|poll|uring|auto or MUDUO_USE_POLL=1 choose too)";

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World!";
const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
/// Echo output queued for one client before we stop reading from it.
const HIGH_WATER_MARK: usize = 4 * 1024 * 1024;
/// A header section that has not ended after this many bytes is refused.
const MAX_HEADER: usize = 8 * 1024;

thread_local! {
    /// Responses of one batch of pipelined requests, sent with one write.
    static OUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn on_message(conn: &TcpConnectionPtr, buf: &mut Buffer) {
    OUT.with(|out| {
        let mut out = out.borrow_mut();
        out.clear();
        let mut close = false;
        while !buf.is_empty() {
            let data = buf.peek();
            if data.len() < PREFIX.len() && PREFIX.starts_with(data) {
                break; // maybe the start of a request: wait for the rest
            }
            if !data.starts_with(PREFIX) {
                // Plain echo: straight from the input buffer, unless HTTP
                // responses of this batch must go out first.
                if out.is_empty() {
                    conn.send(data);
                } else {
                    out.extend_from_slice(data);
                }
                buf.retrieve_all();
                break;
            }
            match header_end(data) {
                Some(end) => {
                    out.extend_from_slice(RESPONSE);
                    close = wants_close(&data[..end]);
                    buf.retrieve(end);
                    if close {
                        buf.retrieve_all(); // nothing after this request is read
                        break;
                    }
                }
                None if data.len() > MAX_HEADER => {
                    out.extend_from_slice(BAD_REQUEST);
                    buf.retrieve_all();
                    close = true;
                    break;
                }
                None => break, // the header section is not complete yet
            }
        }
        if !out.is_empty() {
            conn.send(&out);
        }
        if close {
            conn.shutdown();
        }
    });
}

fn main() {
    args::main_with("echo", run);
}

fn run() -> std::io::Result<()> {
    args::init_logging();
    let args = args::Args::parse(&format!("{USAGE}\n{}", inspect::USAGE));
    let addr: SocketAddr = args.get("addr", "127.0.0.1:8000".parse().unwrap());
    let threads: usize = args.get("threads", 4);
    let poller: PollerKind = args.get("poller", PollerKind::from_env());

    let lp = EventLoop::builder().poller(poller).name("main").build()?;
    let mut server = TcpServer::new(&lp, addr, "EchoServer")?;
    server.set_thread_num(threads);
    server.set_poller(poller);
    server.set_connection_callback(|conn| {
        if conn.connected() {
            tracing::info!("Connection Up : {}", conn.peer_addr());
        } else {
            tracing::info!(
                "Connection closed [{} -> {}]",
                conn.local_addr(),
                conn.peer_addr()
            );
        }
    });
    server.set_message_callback(|conn, buf, _when| on_message(conn, buf));
    // Backpressure for clients that send without reading: stop reading once
    // 4 MiB of echo are queued for them, resume when it has been written.
    server.set_high_water_mark_callback(|conn, _queued| conn.stop_read(), HIGH_WATER_MARK);
    server.set_write_complete_callback(|conn| {
        if !conn.is_reading() {
            conn.start_read();
        }
    });
    server.start()?;
    tracing::info!(addr = %server.local_addr(), threads, poller = ?poller, "EchoServer listening");
    let _inspector = inspect::attach(&args, &server)?;
    lp.run()
}

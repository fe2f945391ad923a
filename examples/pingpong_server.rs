//! muduo's ping-pong server: echoes everything, with `TCP_NODELAY`.
//! Used by the benchmark harness (`bench/`) beside tokio and a bare epoll loop.
//!
//! ```text
//! cargo run --release --example pingpong_server -- [--addr 127.0.0.1:8001] [--threads 0] [--poller epoll]
//! ```

#[path = "common/args.rs"]
mod args;

use muduo::{EventLoop, PollerKind, TcpServer};
use std::net::SocketAddr;

const USAGE: &str = "pingpong_server: echo server for throughput benchmarks

usage: pingpong_server [--addr IP:PORT] [--threads N] [--poller epoll|epoll-et|poll|uring|auto]
  --addr     listen address (default 127.0.0.1:8001)
  --threads  I/O threads; 0 serves everything on the main loop (default 0)";

fn main() {
    args::main_with("pingpong_server", run);
}

fn run() -> std::io::Result<()> {
    args::init_logging();
    let args = args::Args::parse(USAGE);
    let addr: SocketAddr = args.get("addr", "127.0.0.1:8001".parse().unwrap());
    let threads: usize = args.get("threads", 0);
    let poller: PollerKind = args.get("poller", PollerKind::from_env());

    let lp = EventLoop::builder().poller(poller).build()?;
    let mut server = TcpServer::new(&lp, addr, "PingPong")?;
    server.set_thread_num(threads);
    server.set_poller(poller);
    server.set_connection_callback(|conn| {
        if conn.connected() {
            let _ = conn.set_tcp_no_delay(true);
        }
    });
    // muduo's `conn->send(buf)`: on io_uring the buffer's memory itself is
    // submitted when nothing else is queued.
    server.set_message_callback(|conn, buf, _| conn.send_buffer(buf));
    server.start()?;
    tracing::info!(addr = %server.local_addr(), threads, "pingpong server listening");
    lp.run()
}

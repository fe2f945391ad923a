//! muduo's maxconnection example: an echo server that serves at most
//! `--max` connections at once. A connection over the limit is accepted
//! and closed at once (muduo's choice: the kernel has already completed
//! the handshake, and closing tells the client right away, where not
//! accepting would leave it waiting in the backlog). Refusals are counted
//! and logged at warn level with the count.
//!
//! ```text
//! cargo run --example maxconnection -- --max 100 [--addr 127.0.0.1:2007] [--threads 0]
//! ```

#[path = "common/args.rs"]
mod args;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use muduo::{EventLoop, PollerKind, TcpConnectionPtr, TcpServer};

const USAGE: &str = "maxconnection: echo server with a connection limit

usage: maxconnection --max N [--addr IP:PORT] [--threads N] [--poller epoll|epoll-et|poll]
  --max      connections served at once (required, at least 1); more are closed at once
  --addr     listen address (default 127.0.0.1:2007)
  --threads  I/O threads; 0 serves everything on the main loop (default 0)
  --poller   readiness backend (default epoll)";

/// Connections up (refused ones included until they are down) and refusals.
#[derive(Default)]
struct Counts {
    connected: AtomicUsize,
    refused: AtomicUsize,
}

fn on_connection(conn: &TcpConnectionPtr, counts: &Counts, max: usize) {
    if conn.connected() {
        // Counted first, checked after: two loops accepting at once cannot
        // both slip under the limit.
        let connected = counts.connected.fetch_add(1, Ordering::AcqRel) + 1;
        if connected > max {
            let refused = counts.refused.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(peer = %conn.peer_addr(), connected, max, refused, "connection refused: over the limit");
            conn.force_close();
        } else {
            tracing::info!(peer = %conn.peer_addr(), connected, "connection up");
        }
    } else {
        let connected = counts.connected.fetch_sub(1, Ordering::AcqRel) - 1;
        tracing::info!(peer = %conn.peer_addr(), connected, "connection down");
    }
}

fn main() {
    args::main_with("maxconnection", run);
}

fn run() -> std::io::Result<()> {
    args::init_logging();
    let args = args::Args::parse(USAGE);
    let max: usize = args.get("max", 0);
    if max == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "--max N is required and must be at least 1 (see --help)",
        ));
    }
    let addr: SocketAddr = args.get("addr", "127.0.0.1:2007".parse().unwrap());
    let threads: usize = args.get("threads", 0);
    let poller: PollerKind = args.get("poller", PollerKind::from_env());

    let lp = EventLoop::builder().poller(poller).build()?;
    let mut server = TcpServer::new(&lp, addr, "MaxConnection")?;
    server.set_thread_num(threads);
    server.set_poller(poller);
    let counts = Arc::new(Counts::default());
    server.set_connection_callback(move |conn| on_connection(conn, &counts, max));
    server.set_message_callback(|conn, buf, _| {
        conn.send(buf.peek());
        buf.retrieve_all();
    });
    server.start()?;
    tracing::info!(addr = %server.local_addr(), max, threads, "maxconnection listening");
    lp.run()
}

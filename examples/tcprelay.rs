//! muduo's `tcprelay` (`examples/socks4a/tcprelay.cc`): every accepted
//! connection is tied to a new connection to `--to`, bytes flow both ways,
//! with high-water-mark backpressure in each direction (see
//! `examples/common/relay.rs`).
//!
//! ```text
//! cargo run --example tcprelay -- --listen 127.0.0.1:2000 --to 127.0.0.1:8000
//! ```

#[path = "common/args.rs"]
mod args;
#[path = "common/relay.rs"]
mod relay;

use muduo::{EventLoop, TcpServer};
use std::net::SocketAddr;
use std::sync::Arc;

const USAGE: &str = "tcprelay: relays every connection to a fixed destination

usage: tcprelay --to IP:PORT [--listen IP:PORT] [--threads N] [--high-water-mark BYTES] [--connect-timeout SECS]
  --to               where to relay (required)
  --listen           listen address (default 127.0.0.1:2000)
  --threads          I/O threads (default 0: one loop)
  --high-water-mark  output queued on one side before the other side is paused (default 1048576)
  --connect-timeout  seconds allowed to connect to --to (default 10)";

fn main() {
    args::main_with("tcprelay", run);
}

fn run() -> std::io::Result<()> {
    args::init_logging();
    let args = args::Args::parse(USAGE);
    if !args.has("to") {
        return Err(std::io::Error::other(
            "--to IP:PORT is required (see --help)",
        ));
    }
    let to: SocketAddr = args.get("to", "127.0.0.1:0".parse().unwrap());
    let listen: SocketAddr = args.get("listen", "127.0.0.1:2000".parse().unwrap());
    let threads: usize = args.get("threads", 0);
    let opts = relay::Options::new(
        args.get("high-water-mark", 1024 * 1024usize),
        args.get("connect-timeout", 10.0f64),
    )?;

    let lp = EventLoop::new()?;
    let mut server = TcpServer::new(&lp, listen, "TcpRelay")?;
    server.set_thread_num(threads);
    relay::install(&mut server, &opts);
    server.set_connection_callback(move |conn| {
        if conn.connected() {
            let _ = conn.set_tcp_no_delay(true);
            relay::open(
                conn,
                to,
                &opts,
                Vec::new(),
                Arc::new(|down, ok| {
                    if !ok {
                        down.force_close();
                    }
                }),
            );
        } else {
            relay::down_closed(conn);
        }
    });
    server.set_message_callback(|conn, buf, _| {
        relay::forward(conn, buf);
    });
    server.start()?;
    tracing::info!(addr = %server.local_addr(), to = %to, threads, "tcprelay listening");
    lp.run()
}

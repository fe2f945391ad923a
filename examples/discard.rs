//! muduo's discard server (RFC 863): reads and throws away everything.
//!
//! ```text
//! cargo run --example discard -- [--addr 127.0.0.1:2009] [--threads 0]
//! ```

#[path = "common/args.rs"]
mod args;

use muduo::{EventLoop, TcpServer};
use std::net::SocketAddr;

const USAGE: &str = "discard: reads and discards everything (RFC 863)

usage: discard [--addr IP:PORT] [--threads N]";

fn main() {
    args::main_with("discard", run);
}

fn run() -> std::io::Result<()> {
    args::init_logging();
    let args = args::Args::parse(USAGE);
    let addr: SocketAddr = args.get("addr", "127.0.0.1:2009".parse().unwrap());
    let lp = EventLoop::new()?;
    let mut server = TcpServer::new(&lp, addr, "DiscardServer")?;
    server.set_thread_num(args.get("threads", 0));
    server.set_connection_callback(|conn| {
        tracing::info!(peer = %conn.peer_addr(), up = conn.connected(), "discard connection");
    });
    server.set_message_callback(|conn, buf, when| {
        tracing::debug!(
            conn = conn.name(),
            bytes = buf.readable_bytes(),
            ?when,
            "discarded"
        );
        buf.retrieve_all();
    });
    server.start()?;
    tracing::info!(addr = %server.local_addr(), "discard server listening");
    lp.run()
}

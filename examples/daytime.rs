//! muduo's daytime server (RFC 867): sends the time, then closes.
//!
//! ```text
//! cargo run --example daytime -- [--addr 127.0.0.1:2013]
//! ```

#[path = "common/args.rs"]
mod args;

use muduo::{EventLoop, TcpServer};
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

const USAGE: &str = "daytime: sends the current time and closes (RFC 867)

usage: daytime [--addr IP:PORT]";

fn main() {
    args::main_with("daytime", run);
}

fn run() -> std::io::Result<()> {
    args::init_logging();
    let args = args::Args::parse(USAGE);
    let addr: SocketAddr = args.get("addr", "127.0.0.1:2013".parse().unwrap());
    let lp = EventLoop::new()?;
    let mut server = TcpServer::new(&lp, addr, "DaytimeServer")?;
    server.set_connection_callback(|conn| {
        if conn.connected() {
            let secs = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            conn.send(format!("{secs} seconds since the Unix epoch (UTC)\n").as_bytes());
            conn.shutdown();
        }
    });
    server.start()?;
    tracing::info!(addr = %server.local_addr(), "daytime server listening");
    lp.run()
}

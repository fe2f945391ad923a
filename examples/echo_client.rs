//! An echo client on `TcpClient`: sends each line of stdin to the server
//! and prints what comes back. Reconnects if the server restarts.
//!
//! ```text
//! cargo run --example echo -- &
//! cargo run --example echo_client -- [--addr 127.0.0.1:8000]
//! ```

#[path = "common/args.rs"]
mod args;

use muduo::{EventLoopThread, TcpClient};
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::sync::mpsc;

const USAGE: &str = "echo_client: sends stdin lines to an echo server, prints the replies

usage: echo_client [--addr IP:PORT]";

fn main() {
    args::main_with("echo_client", run);
}

fn run() -> std::io::Result<()> {
    args::init_logging();
    let args = args::Args::parse(USAGE);
    let addr: SocketAddr = args.get("addr", "127.0.0.1:8000".parse().unwrap());
    // The loop runs on its own thread; this thread reads stdin and sends.
    let io = EventLoopThread::start("client-io", None)?;
    let mut client = TcpClient::new(io.handle(), addr, "EchoClient");
    client.enable_retry();
    let (up_tx, up_rx) = mpsc::channel();
    client.set_connection_callback(move |conn| {
        tracing::info!(peer = %conn.peer_addr(), up = conn.connected(), "echo client connection");
        let _ = up_tx.send(conn.connected());
    });
    client.set_message_callback(|_conn, buf, _| {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(buf.peek());
        let _ = out.flush();
        buf.retrieve_all();
    });
    client.connect();
    if !up_rx.recv().unwrap_or(false) {
        return Err(std::io::Error::other("could not connect"));
    }
    for line in std::io::stdin().lock().lines() {
        let mut line = line?;
        line.push('\n');
        match client.connection() {
            Some(conn) => conn.send(line.as_bytes()),
            None => eprintln!("not connected; line dropped"),
        }
    }
    // stdin closed: half-close and let the replies drain before exiting.
    client.disconnect();
    let _ = up_rx.recv_timeout(std::time::Duration::from_secs(2));
    Ok(())
}

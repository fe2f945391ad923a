//! muduo's chargen server (RFC 864): streams characters as fast as the
//! client reads them.
//!
//! Flow control is the write-complete callback: a new chunk is queued only
//! when the previous one has been handed to the kernel, so a slow client
//! never makes the server buffer without bound. A timer reports throughput.
//!
//! ```text
//! cargo run --release --example chargen -- [--addr 127.0.0.1:2019] [--threads 0]
//! ```

#[path = "common/args.rs"]
mod args;

use muduo::{EventLoop, TcpServer};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const USAGE: &str = "chargen: streams RFC 864 character lines to every client

usage: chargen [--addr IP:PORT] [--threads N]";

/// 94 lines of 72 printable characters, each shifted by one (RFC 864).
fn pattern() -> Arc<Vec<u8>> {
    let chars: Vec<u8> = (33u8..127).collect();
    let mut msg = Vec::with_capacity(94 * 74);
    for i in 0..chars.len() {
        for j in 0..72 {
            msg.push(chars[(i + j) % chars.len()]);
        }
        msg.extend_from_slice(b"\r\n");
    }
    Arc::new(msg)
}

fn main() {
    args::main_with("chargen", run);
}

fn run() -> std::io::Result<()> {
    args::init_logging();
    let args = args::Args::parse(USAGE);
    let addr: SocketAddr = args.get("addr", "127.0.0.1:2019".parse().unwrap());
    let lp = EventLoop::new()?;
    let mut server = TcpServer::new(&lp, addr, "ChargenServer")?;
    server.set_thread_num(args.get("threads", 0));
    let msg = pattern();
    let sent = Arc::new(AtomicU64::new(0));
    let (m, s) = (msg.clone(), sent.clone());
    server.set_connection_callback(move |conn| {
        tracing::info!(peer = %conn.peer_addr(), up = conn.connected(), "chargen connection");
        if conn.connected() {
            let _ = conn.set_tcp_no_delay(true);
            conn.send(&m);
            s.fetch_add(m.len() as u64, Ordering::Relaxed);
        }
    });
    server.set_message_callback(|_conn, buf, _| buf.retrieve_all());
    let (m, s) = (msg.clone(), sent.clone());
    server.set_write_complete_callback(move |conn| {
        conn.send(&m);
        s.fetch_add(m.len() as u64, Ordering::Relaxed);
    });
    server.start()?;
    let mut last = Instant::now();
    lp.run_every(Duration::from_secs(3), move || {
        let bytes = sent.swap(0, Ordering::Relaxed);
        let secs = last.elapsed().as_secs_f64();
        last = Instant::now();
        tracing::info!("{:.3} MiB/s", bytes as f64 / secs / (1024.0 * 1024.0));
    });
    tracing::info!(addr = %server.local_addr(), "chargen server listening");
    lp.run()
}

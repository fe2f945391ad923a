//! Peer HTTP server on plain tokio: the same framing as `epoll_http` (answer
//! each `\r\n\r\n`-terminated request with the fixed response, one
//! `write_all` per batch of pipelined requests, keep-alive always), one task
//! per connection on a multi-thread runtime with `max(1, --threads)` workers.
//!
//! Usage: `tokio_http --addr 127.0.0.1:PORT --threads N`

use muduo_bench::cli::ServerArgs;
use muduo_bench::http::Framer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn serve_conn(mut stream: TcpStream) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut out = Vec::with_capacity(16 * 1024);
    let mut framer = Framer::default();
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        out.clear();
        if !framer.feed(&buf[..n], &mut out) {
            return;
        }
        if !out.is_empty() && stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

fn main() {
    let args = ServerArgs::from_env("tokio_http");
    muduo_bench::tokio_server::serve("tokio_http", &args, serve_conn)
}

//! Peer ping-pong server on tokio: multi-thread runtime with
//! `worker_threads = max(1, --threads)`, one task per connection running a
//! read/write loop on one reused 64 KiB buffer, `TCP_NODELAY` set.
//!
//! Usage: `tokio_pingpong --addr 127.0.0.1:PORT --threads N`

use muduo_bench::cli::ServerArgs;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn echo(mut stream: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn main() {
    let args = ServerArgs::from_env("tokio_pingpong");
    muduo_bench::tokio_server::serve("tokio_pingpong", &args, echo)
}

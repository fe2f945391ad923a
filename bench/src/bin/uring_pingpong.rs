//! Peer ping-pong server: a bare io_uring loop (multishot accept, multishot
//! recv from a provided buffer ring, send straight from the ring buffer)
//! that echoes every byte. See `muduo_bench::uring_server` for the design
//! and the threading model (N threads, each with its own ring and
//! `SO_REUSEPORT` listener).
//!
//! Usage: `uring_pingpong --addr 127.0.0.1:PORT --threads N`

use muduo_bench::cli::ServerArgs;

fn main() {
    let args = ServerArgs::from_env("uring_pingpong");
    muduo_bench::uring_server::serve("uring_pingpong", &args)
}

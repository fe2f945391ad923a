//! Peer ping-pong server: a bare level-triggered epoll loop on rustix that
//! echoes every byte (see `muduo_bench::epoll_server` for the threading
//! model: N threads, each with its own epoll and `SO_REUSEPORT` listener).
//!
//! Usage: `epoll_pingpong --addr 127.0.0.1:PORT --threads N`

use muduo_bench::cli::ServerArgs;
use muduo_bench::epoll_server::{serve, Protocol};

/// Echo: the reply is the input itself, written straight from the shared
/// read buffer (no copy unless the kernel takes only part of it).
#[derive(Default)]
struct Echo;

impl Protocol for Echo {
    fn on_read<'a>(&'a mut self, input: &'a [u8], _: &'a mut Vec<u8>) -> Option<&'a [u8]> {
        Some(input)
    }
}

fn main() {
    let args = ServerArgs::from_env("epoll_pingpong");
    serve::<Echo>("epoll_pingpong", &args)
}

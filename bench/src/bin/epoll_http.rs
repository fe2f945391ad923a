//! Peer HTTP server: the bare epoll loop of `muduo_bench::epoll_server`
//! answering every `\r\n\r\n`-terminated request with the fixed
//! `Hello, World!` response; keep-alive always, pipelined requests read
//! together are answered with one write.
//!
//! Usage: `epoll_http --addr 127.0.0.1:PORT --threads N`

use muduo_bench::cli::ServerArgs;
use muduo_bench::epoll_server::{serve, Protocol};
use muduo_bench::http::Framer;

#[derive(Default)]
struct FixedHttp {
    framer: Framer,
}

impl Protocol for FixedHttp {
    fn on_read<'a>(&'a mut self, input: &'a [u8], scratch: &'a mut Vec<u8>) -> Option<&'a [u8]> {
        self.framer.feed(input, scratch).then_some(&scratch[..])
    }
}

fn main() {
    let args = ServerArgs::from_env("epoll_http");
    serve::<FixedHttp>("epoll_http", &args)
}

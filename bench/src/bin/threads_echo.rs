//! Peer echo server for the models lab: one thread per connection with
//! blocking `std::net` I/O, the seed's first model (多线程模型). No event loop:
//! every connection costs a thread, a stack and a context switch per message.
//!
//! Usage: `threads_echo --addr 127.0.0.1:PORT [--threads N]` (`--threads`
//! is accepted for a uniform command line and ignored).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use muduo_bench::cli::ServerArgs;
use muduo_bench::sys;

fn main() {
    let args = ServerArgs::from_env("threads_echo");
    sys::raise_nofile_limit().ok();
    let listener = sys::tcp_listener(args.addr, false, false)
        .map(TcpListener::from)
        .unwrap_or_else(|e| {
            eprintln!("threads_echo: cannot listen on {}: {e}", args.addr);
            std::process::exit(1)
        });
    eprintln!("threads_echo: listening on {}", args.addr);
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                // A small stack: an echo loop needs little, and 1000
                // connections should measure threads, not 2 MiB stacks.
                let spawned = std::thread::Builder::new()
                    .stack_size(64 * 1024)
                    .spawn(move || echo(stream));
                if let Err(e) = spawned {
                    eprintln!("threads_echo: cannot spawn: {e}");
                }
            }
            Err(e) => {
                eprintln!("threads_echo: accept: {e}");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}

fn echo(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

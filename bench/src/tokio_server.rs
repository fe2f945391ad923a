//! Runtime and accept loop shared by the tokio peers (`tokio_pingpong`,
//! `tokio_http`, `hyper_http`).
//!
//! A multi-thread runtime with `worker_threads = max(1, --threads)`; the
//! accept loop itself is a task on those workers (not on the main thread), so
//! the process uses exactly the requested number of busy threads. The
//! listener comes from [`crate::sys`], identical to the epoll peers'.

use std::future::Future;

use tokio::net::TcpStream;

use crate::cli::ServerArgs;
use crate::sys;

/// Serves forever: accepts connections, sets `TCP_NODELAY`, and spawns
/// `handler(stream)` as one task per connection.
pub fn serve<F, Fut>(name: &'static str, args: &ServerArgs, handler: F) -> !
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    sys::raise_nofile_limit().ok();
    let workers = args.threads.max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_io()
        .build()
        .unwrap_or_else(|e| fail(name, &format!("runtime: {e}")));
    let std_listener = sys::std_listener(args.addr, false)
        .unwrap_or_else(|e| fail(name, &format!("cannot listen on {}: {e}", args.addr)));
    eprintln!(
        "{name}: listening on {} with {workers} worker(s)",
        args.addr
    );
    let accept_loop = async move {
        let listener = tokio::net::TcpListener::from_std(std_listener)
            .unwrap_or_else(|e| fail(name, &format!("listener: {e}")));
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(handler(stream));
                }
                // EMFILE and friends: report, back off briefly, go on.
                Err(e) => {
                    eprintln!("{name}: accept: {e}");
                    tokio::task::yield_now().await;
                }
            }
        }
    };
    let _ = runtime.block_on(runtime.spawn(accept_loop));
    std::process::exit(1)
}

fn fail(name: &str, msg: &str) -> ! {
    eprintln!("{name}: {msg}");
    std::process::exit(1)
}

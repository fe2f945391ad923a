//! muduo's sudoku server: one protocol, the seed's five server models.
//!
//! ```text
//! cargo run --release --example sudoku_server -- --model pool --threads 2
//! printf '1:53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79\r\n' | nc 127.0.0.1 9981
//! ```
//!
//! | `--model`    | who reads                 | who solves                     |
//! |--------------|---------------------------|--------------------------------|
//! | `threads`    | one thread per connection (blocking `std::net`, no library) | the same thread |
//! | `single`     | one reactor               | the reactor, inside the loop   |
//! | `pool`       | one reactor               | a `ThreadPool` of N workers    |
//! | `multi`      | main reactor + N sub-reactors | each sub-reactor, in its loop |
//! | `multi-pool` | main reactor + N sub-reactors | a `ThreadPool` of N workers |
//!
//! Answers on one connection always come back in request order; with a
//! pool, [`ordered::Ordered`] puts them back in order.

#[path = "../common/args.rs"]
mod args;
mod blocking;
mod ordered;
mod protocol;
mod solver;

use muduo::{Buffer, EventLoop, PollerKind, TcpConnectionPtr, TcpServer, ThreadPool};
use ordered::Ordered;
use std::net::{SocketAddr, TcpListener};
use std::str::FromStr;
use std::sync::Arc;

const USAGE: &str = "sudoku_server: solves sudoku puzzles, muduo's protocol ([id:]81cells\\r\\n)

usage: sudoku_server [--model M] [--addr IP:PORT] [--threads N] [--workers W] [--poller P]
  --model    threads | single | pool | multi | multi-pool (default single)
  --addr     listen address (default 127.0.0.1:9981)
  --threads  pool: worker threads; multi, multi-pool: I/O threads (default 2)
  --workers  multi-pool: worker threads (default: --threads)
  --poller   epoll | epoll-et | poll, or uring where the library has it (reactor models; default epoll)";

/// The seed's server models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Model {
    Threads,
    Single,
    Pool,
    Multi,
    MultiPool,
}

impl Model {
    fn name(self) -> &'static str {
        match self {
            Model::Threads => "threads",
            Model::Single => "single",
            Model::Pool => "pool",
            Model::Multi => "multi",
            Model::MultiPool => "multi-pool",
        }
    }
}

impl FromStr for Model {
    type Err = String;
    fn from_str(s: &str) -> Result<Model, String> {
        Ok(match s {
            "threads" => Model::Threads,
            "single" => Model::Single,
            "pool" => Model::Pool,
            "multi" => Model::Multi,
            "multi-pool" => Model::MultiPool,
            _ => return Err("expected threads, single, pool, multi or multi-pool".into()),
        })
    }
}

fn main() {
    args::main_with("sudoku_server", run);
}

fn run() -> std::io::Result<()> {
    args::init_logging();
    let args = args::Args::parse(USAGE);
    let model: Model = args.get("model", Model::Single);
    let addr: SocketAddr = args.get("addr", "127.0.0.1:9981".parse().unwrap());
    let threads: usize = args.get("threads", 2);
    let workers: usize = args.get("workers", threads);
    let poller: PollerKind = args.get("poller", PollerKind::from_env());

    if model == Model::Threads {
        let listener = listen_blocking(addr)?;
        tracing::info!(addr = %listener.local_addr()?, model = "threads", "sudoku server listening");
        return blocking::serve(listener);
    }
    let io_threads = match model {
        Model::Multi | Model::MultiPool => threads,
        _ => 0,
    };
    let pool = match model {
        Model::Pool => Some(Arc::new(ThreadPool::new("solver", threads, None)?)),
        Model::MultiPool => Some(Arc::new(ThreadPool::new("solver", workers, None)?)),
        _ => None,
    };
    let lp = EventLoop::builder().poller(poller).build()?;
    let mut server = TcpServer::new(&lp, addr, "SudokuServer")?;
    server.set_thread_num(io_threads);
    server.set_poller(poller);
    server.set_connection_callback(|conn| {
        if conn.connected() {
            let _ = conn.set_tcp_no_delay(true);
            conn.set_context(Arc::new(Ordered::default()));
        }
    });
    server.set_message_callback(move |conn, buf, _| on_message(conn, buf, pool.as_deref()));
    server.start()?;
    tracing::info!(addr = %server.local_addr(), model = %model.name(), io_threads, "sudoku server listening");
    lp.run()
}

/// A blocking listener with the same backlog as the library's.
fn listen_blocking(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// Runs on the connection's loop thread for every read.
fn on_message(conn: &TcpConnectionPtr, buf: &mut Buffer, pool: Option<&ThreadPool>) {
    let Some(order) = conn.with_context(|o: &mut Arc<Ordered>| o.clone()) else {
        buf.retrieve_all();
        return;
    };
    if order.is_closing() {
        buf.retrieve_all();
        return;
    }
    let Some(pool) = pool else {
        // Solve right here, in the loop: one send for the whole read.
        let mut out = Vec::new();
        let (used, close) = protocol::answer_all(buf.peek(), &mut out);
        buf.retrieve(used);
        if !out.is_empty() {
            conn.send(&out);
        }
        if close {
            order.set_closing();
            conn.shutdown();
        }
        return;
    };
    loop {
        let error = match protocol::frame(buf.peek()) {
            protocol::Frame::Incomplete => {
                order.pause_if_full(conn);
                return;
            }
            protocol::Frame::TooLong => protocol::TOO_LONG,
            protocol::Frame::Line { len, consumed } => {
                let req = protocol::parse(&buf.peek()[..len]);
                buf.retrieve(consumed);
                match req {
                    Some(req) => {
                        let (conn2, order2, seq) = (conn.clone(), order.clone(), order.next());
                        let job = move || {
                            let mut out = Vec::with_capacity(req.id.len() + 96);
                            protocol::answer(&req, &mut out);
                            order2.complete(&conn2, seq, out, false);
                        };
                        if pool.execute(job).is_err() {
                            // Only while the process shuts down.
                            conn.force_close();
                            return;
                        }
                        continue;
                    }
                    None => protocol::BAD_REQUEST,
                }
            }
        };
        // The error answer goes out after every earlier answer, then close.
        order.set_closing();
        order.complete(conn, order.next(), error.to_vec(), true);
        buf.retrieve_all();
        return;
    }
}

//! muduo's chat server (`examples/asio/chat`): every message a client sends
//! is broadcast to every connected client, itself included. Messages are
//! framed with [`LengthHeaderCodec`] (4-byte network-order length), muduo's
//! wire format, so muduo's `chat_client` talks to this server too.
//!
//! The four variants are muduo's four ways to share the connection set
//! between I/O threads:
//!
//! * `single`: one loop, a plain set (muduo's `server.cc`);
//! * `mutex`: N loops, one set behind a `Mutex` held for the whole
//!   broadcast (`server_threaded.cc`);
//! * `cow`: copy-on-write: the set is an `Arc` swapped under a short lock;
//!   a broadcast clones the `Arc` and sends without the lock, a join or
//!   leave copies the set only if a broadcast still holds the old one
//!   (`server_threaded_efficient.cc`);
//! * `per-loop`: each loop keeps its own (thread-local) set; a broadcast is
//!   posted to every loop with `run_in_loop`, which sends to its own
//!   clients (`server_threaded_highperformance.cc`).
//!
//! ```text
//! cargo run --example chat_server -- --variant cow --addr 127.0.0.1:9981 --threads 4
//! ```

#[path = "common/args.rs"]
mod args;

use muduo::codec::LengthHeaderCodec;
use muduo::{Buffer, EventLoop, LoopHandle, TcpConnectionPtr, TcpServer};
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

const USAGE: &str = "chat_server: broadcasts every length-framed message to every client

usage: chat_server [--variant single|mutex|cow|per-loop] [--addr IP:PORT] [--threads N]
  --variant  how the connection set is shared between threads (default per-loop)
  --addr     listen address (default 127.0.0.1:9981)
  --threads  I/O threads (default 4; the single variant always uses 0)";

const CODEC: LengthHeaderCodec = LengthHeaderCodec::new();

/// Connections by their number within the server.
type ConnSet = HashMap<u64, TcpConnectionPtr>;

#[derive(Clone, Copy, Debug)]
enum Variant {
    Single,
    Mutex,
    Cow,
    PerLoop,
}

impl FromStr for Variant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "single" => Ok(Variant::Single),
            "mutex" => Ok(Variant::Mutex),
            "cow" => Ok(Variant::Cow),
            "per-loop" => Ok(Variant::PerLoop),
            _ => Err("expected single, mutex, cow or per-loop".into()),
        }
    }
}

thread_local! {
    /// The clients of this thread's loop (variants `single` and `per-loop`).
    static LOCAL: RefCell<ConnSet> = RefCell::new(HashMap::new());
}

/// Adds or removes `conn` in a set, as its connection callback reports.
fn track(set: &mut ConnSet, conn: &TcpConnectionPtr) {
    if conn.connected() {
        set.insert(conn.id(), conn.clone());
    } else {
        set.remove(&conn.id());
    }
}

fn send_to_all<'a>(conns: impl Iterator<Item = &'a TcpConnectionPtr>, frame: &[u8]) {
    for c in conns {
        c.send(frame);
    }
}

fn send_to_local(frame: &[u8]) {
    LOCAL.with(|set| send_to_all(set.borrow().values(), frame));
}

/// The message callback of every variant: frames each message once and
/// hands the same bytes to `broadcast`.
fn on_message(
    broadcast: impl Fn(&[u8]) + Send + Sync + 'static,
) -> impl Fn(&TcpConnectionPtr, &mut Buffer, Instant) + Send + Sync + 'static {
    move |conn, buf, _| {
        CODEC.on_message(conn, buf, |_, msg| {
            if let Ok(frame) = CODEC.encode(msg) {
                broadcast(frame.peek());
            }
        })
    }
}

/// Sets the callbacks of one variant; `loops` is filled after `start`.
fn configure(server: &mut TcpServer, variant: Variant, loops: Arc<OnceLock<Vec<LoopHandle>>>) {
    match variant {
        Variant::Single => {
            server.set_connection_callback(|conn| LOCAL.with(|s| track(&mut s.borrow_mut(), conn)));
            server.set_message_callback(on_message(send_to_local));
        }
        Variant::Mutex => {
            let set = Arc::new(Mutex::new(ConnSet::new()));
            let s = set.clone();
            server.set_connection_callback(move |conn| track(&mut lock(&s), conn));
            server.set_message_callback(on_message(move |frame: &[u8]| {
                send_to_all(lock(&set).values(), frame)
            }));
        }
        Variant::Cow => {
            let set = Arc::new(Mutex::new(Arc::new(ConnSet::new())));
            let s = set.clone();
            server.set_connection_callback(move |conn| {
                // Copies the set only while a broadcast still reads the old one.
                track(Arc::make_mut(&mut lock(&s)), conn)
            });
            server.set_message_callback(on_message(move |frame: &[u8]| {
                let snapshot = lock(&set).clone();
                send_to_all(snapshot.values(), frame)
            }));
        }
        Variant::PerLoop => {
            server.set_connection_callback(|conn| LOCAL.with(|s| track(&mut s.borrow_mut(), conn)));
            server.set_message_callback(on_message(move |frame: &[u8]| {
                let frame: Arc<[u8]> = frame.into();
                for lp in loops.get().into_iter().flatten() {
                    let frame = frame.clone();
                    lp.run_in_loop(move || send_to_local(&frame));
                }
            }));
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn main() {
    args::main_with("chat_server", run);
}

fn run() -> std::io::Result<()> {
    args::init_logging();
    let args = args::Args::parse(USAGE);
    let variant: Variant = args.get("variant", Variant::PerLoop);
    let addr: SocketAddr = args.get("addr", "127.0.0.1:9981".parse().unwrap());
    let threads = match variant {
        Variant::Single => 0,
        _ => args.get("threads", 4usize),
    };

    let lp = EventLoop::new()?;
    let mut server = TcpServer::new(&lp, addr, "ChatServer")?;
    server.set_thread_num(threads);
    let loops = Arc::new(OnceLock::new());
    configure(&mut server, variant, loops.clone());
    server.start()?;
    // Connections are accepted only once `lp.run()` polls, so the loop list
    // is in place before any message can be broadcast.
    let _ = loops.set(server.io_loops());
    tracing::info!(addr = %server.local_addr(), ?variant, threads, "chat server listening");
    lp.run()
}

//! A memcached server speaking memcached 1.6's text protocol, on muduo's
//! `TcpServer` (muduo ships one too, as its proof that the library carries
//! a real protocol). Replies are byte for byte memcached 1.6.18's; the
//! differential test in `tests/memcached_differential.rs` holds it to that.
//!
//! ```text
//! cargo run --release --example memcached -- -p 11211 -t 4 -m 64
//! ```
//!
//! The meta commands `mg ms md ma me mn` are there too, with every flag
//! 1.6.18 knows (base64 keys, opaque, quiet mode, vivify-on-miss and the
//! recache/stale flags `W X Z`). `me` reports the slab class memcached
//! would use for the item's size; ours has no slabs.
//!
//! The `stats` counters follow memcached's rules too (which commands count
//! as gets, touches, misses; `bytes_read` as bytes arrive; `get_expired`
//! and `get_flushed` for every command's lookup; `flush_all` is lazy), and
//! the differential test compares them after every case.
//!
//! Not memcached: the binary protocol, UDP, SASL, `stats` sub-reports about
//! slab classes (`items`, `slabs`, `sizes`, `conns` answer an empty `END`),
//! and the maintenance commands (`slabs`, `lru`, `lru_crawler`, `watch`).
//! There is no LRU crawler: dead items go when looked up or when an
//! insert finds them at the LRU tail, so `curr_items` after a flush or an
//! expiry falls later than memcached's. The LRU is exact per shard
//! (memcached's is segmented per slab class), and `-c` counts client
//! connections only (memcached also counts its own descriptors).
//!
//! Modules: [`flags`] (memcached's `-p -l -t -m -c -I -U`), [`protocol`]
//! (lines, tokens, C-style numbers), [`commands`] (one command, its reply),
//! [`meta`] (the meta commands), [`pins`] (items a queued reply still
//! references), [`store`] (shards, LRU, memory limit),
//! [`stats`] and [`report`] (`stats`), [`conn`] (batches of pipelined
//! commands per read).

#[path = "../common/args.rs"]
mod args;
mod commands;
mod conn;
mod flags;
mod meta;
mod pins;
mod protocol;
mod report;
mod stats;
mod store;

use muduo::{EventLoop, TcpServer};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// The version this server's replies follow; `version` and `stats` say
/// which server it really is.
pub const VERSION: &str = "1.6.18-muduo";
pub const VERSION_LINE: &str = "VERSION 1.6.18-muduo";

/// Replies queued for one client before we stop reading from it.
const HIGH_WATER_MARK: usize = 4 << 20;

/// memcached's reply to a connection over `-c`, written before closing it.
const TOO_MANY_CONNECTIONS: &[u8] = b"ERROR Too many open connections\r\n";

/// Connection counts for `stats` and `-c`.
#[derive(Default)]
pub struct Conns {
    pub curr: AtomicU64,
    pub total: AtomicU64,
    pub rejected: AtomicU64,
}

/// Everything the I/O threads share.
pub struct Server {
    pub store: store::Store,
    pub stats: stats::Registry,
    pub conns: Conns,
    pub max_conns: usize,
    pub threads: usize,
    pub addr: SocketAddr,
}

fn main() {
    args::main_with("memcached", run);
}

fn run() -> std::io::Result<()> {
    args::init_logging();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let settings = match flags::parse(&argv) {
        Ok(flags::Parsed::Run(s)) => s,
        Ok(flags::Parsed::Help) => {
            println!("{}", flags::USAGE);
            return Ok(());
        }
        Err(e) => {
            eprintln!("memcached: {e}");
            std::process::exit(1);
        }
    };

    let lp = EventLoop::builder()
        .name("main")
        .poller(settings.poller)
        .build()?;
    let mut server = TcpServer::new(&lp, settings.addr, "memcached")?;
    let srv = Arc::new(Server {
        store: store::Store::new(settings.memory_limit, settings.item_size_max),
        stats: stats::Registry::default(),
        conns: Conns::default(),
        max_conns: settings.max_conns,
        threads: settings.threads,
        addr: server.local_addr(),
    });
    server.set_thread_num(settings.threads);
    server.set_poller(settings.poller);
    let s = srv.clone();
    server.set_connection_callback(move |conn| {
        if conn.connected() {
            if s.conns.curr.load(Relaxed) >= s.max_conns as u64 {
                s.conns.rejected.fetch_add(1, Relaxed);
                conn.send(TOO_MANY_CONNECTIONS);
                conn.force_close();
                return;
            }
            s.conns.curr.fetch_add(1, Relaxed);
            s.conns.total.fetch_add(1, Relaxed);
            let _ = conn.set_tcp_no_delay(true);
            conn.set_context(conn::ConnState::default());
        } else if conn.take_context::<conn::ConnState>().is_some() {
            s.conns.curr.fetch_sub(1, Relaxed);
        }
    });
    let s = srv.clone();
    server.set_message_callback(move |conn, buf, _| conn::on_message(&s, conn, buf));
    // A client that pipelines gets without reading its replies: stop reading
    // from it once 4 MiB of replies are queued (memcached likewise stops
    // parsing while it cannot write), resume once they are written.
    server.set_high_water_mark_callback(|conn, _queued| conn.stop_read(), HIGH_WATER_MARK);
    server.set_write_complete_callback(|conn| {
        if !conn.is_reading() {
            conn.start_read();
        }
    });
    server.start()?;
    tracing::info!(
        addr = %server.local_addr(),
        threads = settings.threads,
        memory_limit = settings.memory_limit,
        shards = srv.store.shard_count(),
        "memcached listening"
    );
    lp.run()
}

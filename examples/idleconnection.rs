//! muduo's idleconnection example: an echo server that closes connections
//! which sent nothing for `--idle` seconds.
//!
//! Two ways to find the idle ones, both run once a second on each I/O loop:
//!
//! * `wheel`, muduo's timing wheel: a circular buffer of N buckets, each a
//!   set of shared entries. An entry closes its connection when the last
//!   bucket holding it lets go. Every tick a new empty bucket enters at the
//!   back and the oldest falls off the front; a message puts the
//!   connection's entry into the newest bucket. A connection therefore
//!   closes N-1 to N seconds after its last message, with O(1) work per
//!   message and no timer per connection.
//! * `list`: connections ordered by last receive time; each tick closes
//!   those at the front that have been idle N seconds or more, and stops at
//!   the first that has not.
//!
//! Each I/O loop keeps its own wheel or list in a thread-local created by
//! the thread init callback: a connection lives on one loop, so nothing is
//! shared between threads and no lock is taken per message.
//!
//! ```text
//! cargo run --example idleconnection -- --idle 8 [--addr 127.0.0.1:2007] [--threads 0] [--variant wheel|list]
//! ```

#[path = "common/args.rs"]
mod args;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use muduo::{EventLoop, PollerKind, TcpConnection, TcpConnectionPtr, TcpServer};

const USAGE: &str = "idleconnection: echo server that closes idle connections

usage: idleconnection --idle SECS [--addr IP:PORT] [--threads N] [--variant wheel|list] [--poller epoll|epoll-et|poll]
  --idle     close a connection after SECS seconds without input (required, at least 1)
  --addr     listen address (default 127.0.0.1:2007)
  --threads  I/O threads; 0 serves everything on the main loop (default 0)
  --variant  wheel: muduo's timing wheel (default); list: a list sorted by last receive time
  --poller   readiness backend (default epoll)";

const TICK: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug)]
enum Variant {
    Wheel,
    List,
}

impl std::str::FromStr for Variant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "wheel" => Ok(Variant::Wheel),
            "list" => Ok(Variant::List),
            _ => Err(format!("unknown variant {s:?}: expected wheel or list")),
        }
    }
}

/// muduo's `Entry`: closes its connection when the last reference goes.
struct Entry {
    conn: Weak<TcpConnection>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.upgrade().filter(|c| c.connected()) {
            tracing::info!(conn = conn.name(), "closing idle connection");
            conn.force_close();
        }
    }
}

/// A bucket's element: an entry compared by identity, so a connection that
/// sends many messages within one tick sits in the newest bucket once.
struct Shared(Arc<Entry>);

impl PartialEq for Shared {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for Shared {}
impl Hash for Shared {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.0).hash(state);
    }
}

type Bucket = HashSet<Shared>;

struct Wheel {
    buckets: VecDeque<Bucket>,
}

impl Wheel {
    fn new(size: usize) -> Wheel {
        Wheel {
            buckets: (0..size).map(|_| Bucket::new()).collect(),
        }
    }

    /// Advances one tick; returns the bucket that fell off, for the caller
    /// to drop once it no longer borrows the wheel (dropping it may close
    /// connections, whose callbacks come back here).
    fn tick(&mut self) -> Option<Bucket> {
        self.buckets.push_back(Bucket::new());
        self.buckets.pop_front()
    }

    fn touch(&mut self, entry: Arc<Entry>) {
        if let Some(newest) = self.buckets.back_mut() {
            newest.insert(Shared(entry));
        }
    }
}

/// The list variant: connections by (last receive time, connection id).
struct IdleList {
    by_time: BTreeMap<(Instant, u64), Weak<TcpConnection>>,
    idle: Duration,
}

/// A connection's position in the [`IdleList`], kept in its context.
struct LastSeen(Instant);

impl IdleList {
    fn touch(&mut self, conn: &TcpConnectionPtr, now: Instant) {
        self.remove(conn);
        self.by_time.insert((now, conn.id()), Arc::downgrade(conn));
        conn.set_context(LastSeen(now));
    }

    fn remove(&mut self, conn: &TcpConnectionPtr) {
        if let Some(last) = conn.with_context(|l: &mut LastSeen| l.0) {
            self.by_time.remove(&(last, conn.id()));
        }
    }

    /// Takes the connections idle for `idle` or more out of the list.
    fn expire(&mut self, now: Instant) -> Vec<TcpConnectionPtr> {
        let mut expired = Vec::new();
        while let Some(entry) = self.by_time.first_entry() {
            if now.saturating_duration_since(entry.key().0) < self.idle {
                break;
            }
            if let Some(conn) = entry.remove().upgrade() {
                expired.push(conn);
            }
        }
        expired
    }
}

enum Tracker {
    Wheel(Wheel),
    List(IdleList),
}

thread_local! {
    /// This I/O loop's tracker (set by the thread init callback).
    static TRACKER: RefCell<Option<Tracker>> = const { RefCell::new(None) };
}

fn with_tracker<R>(f: impl FnOnce(&mut Tracker) -> R) -> Option<R> {
    TRACKER.with(|t| t.borrow_mut().as_mut().map(f))
}

/// Runs on each I/O loop's thread before it starts.
fn install(lp: &EventLoop, variant: Variant, idle: u64) {
    let tracker = match variant {
        Variant::Wheel => Tracker::Wheel(Wheel::new(idle as usize)),
        Variant::List => Tracker::List(IdleList {
            by_time: BTreeMap::new(),
            idle: Duration::from_secs(idle),
        }),
    };
    TRACKER.with(|t| *t.borrow_mut() = Some(tracker));
    lp.run_every_local(TICK, on_tick);
}

fn on_tick() {
    // Closing happens after the tracker is released (see `Wheel::tick`).
    let fallen = with_tracker(|t| match t {
        Tracker::Wheel(w) => (w.tick(), Vec::new()),
        Tracker::List(l) => (None, l.expire(Instant::now())),
    });
    if let Some((bucket, expired)) = fallen {
        drop(bucket);
        for conn in expired {
            tracing::info!(conn = conn.name(), "closing idle connection");
            conn.force_close();
        }
    }
}

fn on_connection(conn: &TcpConnectionPtr) {
    if conn.connected() {
        with_tracker(|t| match t {
            Tracker::Wheel(w) => {
                let entry = Arc::new(Entry {
                    conn: Arc::downgrade(conn),
                });
                conn.set_context(Arc::downgrade(&entry));
                w.touch(entry);
            }
            Tracker::List(l) => l.touch(conn, Instant::now()),
        });
    } else {
        // A wheel entry just falls off later; a list entry goes now.
        with_tracker(|t| {
            if let Tracker::List(l) = t {
                l.remove(conn);
            }
        });
    }
}

fn on_message(conn: &TcpConnectionPtr, buf: &mut muduo::Buffer, at: Instant) {
    conn.send(buf.peek());
    buf.retrieve_all();
    with_tracker(|t| match t {
        Tracker::Wheel(w) => {
            if let Some(entry) = conn
                .with_context(|e: &mut Weak<Entry>| e.upgrade())
                .flatten()
            {
                w.touch(entry);
            }
        }
        Tracker::List(l) => l.touch(conn, at),
    });
}

fn main() {
    args::main_with("idleconnection", run);
}

fn run() -> std::io::Result<()> {
    args::init_logging();
    let args = args::Args::parse(USAGE);
    let idle: u64 = args.get("idle", 0);
    if idle == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "--idle SECS is required and must be at least 1 (see --help)",
        ));
    }
    let addr: SocketAddr = args.get("addr", "127.0.0.1:2007".parse().unwrap());
    let threads: usize = args.get("threads", 0);
    let variant: Variant = args.get("variant", Variant::Wheel);
    let poller: PollerKind = args.get("poller", PollerKind::from_env());

    let lp = EventLoop::builder().poller(poller).build()?;
    let mut server = TcpServer::new(&lp, addr, "IdleConnection")?;
    server.set_thread_num(threads);
    server.set_poller(poller);
    server.set_thread_init_callback(move |lp| install(lp, variant, idle));
    server.set_connection_callback(on_connection);
    server.set_message_callback(on_message);
    server.start()?;
    tracing::info!(addr = %server.local_addr(), idle, variant = ?variant, threads, "idleconnection listening");
    lp.run()
}

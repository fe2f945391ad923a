//! muduo's pub/sub hub (`examples/hub/hub.cc`): clients subscribe to
//! topics, publish to topics, and the hub forwards each publication to the
//! topic's subscribers. A new subscriber first gets the topic's last
//! content. Protocol: `examples/common/hub_codec.rs`.
//!
//! With `--threads N` connections live on N loops and share one topic table
//! behind a `Mutex`; a publication is sent to every subscriber while the
//! lock is held, so all subscribers see a topic's publications in the same
//! order. A malformed command gets an `error ...` line and the connection
//! is closed.
//!
//! ```text
//! cargo run --example hub -- --addr 127.0.0.1:9988 --threads 2
//! ```

#[path = "common/args.rs"]
mod args;
#[path = "common/hub_codec.rs"]
mod hub_codec;

use hub_codec::Command;
use muduo::{EventLoop, TcpConnectionPtr, TcpServer};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

const USAGE: &str = "hub: a pub/sub hub (sub TOPIC / unsub TOPIC / pub TOPIC + CONTENT, CRLF lines)

usage: hub [--addr IP:PORT] [--threads N]
  --addr     listen address (default 127.0.0.1:9988)
  --threads  I/O threads (default 0: one loop)";

#[derive(Default)]
struct Topic {
    /// The last publication, sent to each new subscriber.
    last: Option<Vec<u8>>,
    audience: HashMap<u64, TcpConnectionPtr>,
}

#[derive(Default)]
struct Hub {
    topics: Mutex<HashMap<String, Topic>>,
}

/// A connection's context: the topics it subscribed to, to leave them on close.
#[derive(Default)]
struct Subscriptions(HashSet<String>);

impl Hub {
    fn topics(&self) -> std::sync::MutexGuard<'_, HashMap<String, Topic>> {
        self.topics.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn subscribe(&self, conn: &TcpConnectionPtr, topic: String) {
        conn.with_context(|s: &mut Subscriptions| s.0.insert(topic.clone()));
        let mut topics = self.topics();
        let t = topics.entry(topic).or_default();
        t.audience.insert(conn.id(), conn.clone());
        if let Some(last) = &t.last {
            conn.send(last);
        }
    }

    fn unsubscribe(&self, conn: &TcpConnectionPtr, topic: &str) {
        conn.with_context(|s: &mut Subscriptions| s.0.remove(topic));
        if let Some(t) = self.topics().get_mut(topic) {
            t.audience.remove(&conn.id());
        }
    }

    fn publish(&self, topic: String, content: &str) {
        let msg = hub_codec::pub_message(&topic, content);
        let mut topics = self.topics();
        let t = topics.entry(topic).or_default();
        for c in t.audience.values() {
            c.send(&msg);
        }
        t.last = Some(msg);
    }

    fn on_connection(&self, conn: &TcpConnectionPtr) {
        if conn.connected() {
            conn.set_context(Subscriptions::default());
        } else if let Some(subs) = conn.take_context::<Subscriptions>() {
            for topic in subs.0 {
                self.unsubscribe(conn, &topic);
            }
        }
    }

    fn on_message(&self, conn: &TcpConnectionPtr, buf: &mut muduo::Buffer) {
        loop {
            match hub_codec::parse(buf) {
                Ok(None) => return,
                Ok(Some(Command::Sub(topic))) => self.subscribe(conn, topic),
                Ok(Some(Command::Unsub(topic))) => self.unsubscribe(conn, &topic),
                Ok(Some(Command::Pub(topic, content))) => self.publish(topic, &content),
                Err(why) => {
                    tracing::warn!(peer = %conn.peer_addr(), why, "bad command; closing");
                    conn.send(format!("error {why}\r\n").as_bytes());
                    buf.retrieve_all();
                    conn.shutdown();
                    return;
                }
            }
        }
    }
}

fn main() {
    args::main_with("hub", run);
}

fn run() -> std::io::Result<()> {
    args::init_logging();
    let args = args::Args::parse(USAGE);
    let addr: SocketAddr = args.get("addr", "127.0.0.1:9988".parse().unwrap());
    let threads: usize = args.get("threads", 0);

    let hub = Arc::new(Hub::default());
    let lp = EventLoop::new()?;
    let mut server = TcpServer::new(&lp, addr, "PubSubHub")?;
    server.set_thread_num(threads);
    let h = hub.clone();
    server.set_connection_callback(move |conn| h.on_connection(conn));
    server.set_message_callback(move |conn, buf, _| hub.on_message(conn, buf));
    server.start()?;
    tracing::info!(addr = %server.local_addr(), threads, "hub listening");
    lp.run()
}

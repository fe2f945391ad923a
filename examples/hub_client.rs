//! A client of the `hub` example (muduo's `examples/hub/sub.cc` and
//! `pub.cc` in one): subscribe and print each publication as
//! `TOPIC: CONTENT`, or publish one message and exit.
//!
//! ```text
//! cargo run --example hub_client -- --addr 127.0.0.1:9988 --sub news,sport
//! cargo run --example hub_client -- --addr 127.0.0.1:9988 --pub news --message "hello"
//! ```

#[path = "common/args.rs"]
mod args;
#[path = "common/hub_codec.rs"]
mod hub_codec;

use hub_codec::Command;
use muduo::{EventLoop, TcpClient};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const USAGE: &str = "hub_client: subscribe to hub topics, or publish to one

usage: hub_client [--addr IP:PORT] (--sub TOPIC[,TOPIC...] | --pub TOPIC --message TEXT)
  --addr     the hub (default 127.0.0.1:9988)
  --sub      topics to subscribe to; prints `TOPIC: CONTENT` per publication until the hub closes
  --pub      topic to publish to, with --message; exits once sent";

/// How long the hub may take to accept us.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);

fn main() {
    args::main_with("hub_client", run);
}

fn run() -> std::io::Result<()> {
    args::init_logging();
    let args = args::Args::parse(USAGE);
    let addr: SocketAddr = args.get("addr", "127.0.0.1:9988".parse().unwrap());
    let request = match (args.has("sub"), args.has("pub")) {
        (true, false) => {
            let topics: String = args.get("sub", String::new());
            let mut out = Vec::new();
            for t in topics.split(',').filter(|t| !t.is_empty()) {
                check(t, "topic")?;
                out.extend_from_slice(format!("sub {t}\r\n").as_bytes());
            }
            if out.is_empty() {
                return Err(std::io::Error::other("--sub needs at least one topic"));
            }
            out
        }
        (false, true) => {
            let topic: String = args.get("pub", String::new());
            let message: String = args.get("message", String::new());
            check(&topic, "topic")?;
            if !hub_codec::valid_text(&message) {
                return Err(std::io::Error::other(
                    "the message must not contain line breaks",
                ));
            }
            hub_codec::pub_message(&topic, &message)
        }
        _ => {
            return Err(std::io::Error::other(
                "give either --sub or --pub (see --help)",
            ))
        }
    };
    let publishing = args.has("pub");

    let lp = EventLoop::new()?;
    let mut client = TcpClient::new(&lp, addr, "HubClient");
    let connected = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(Mutex::new(None::<String>));
    let (flag, handle) = (connected.clone(), lp.handle());
    client.set_connection_callback(move |conn| {
        if conn.connected() {
            flag.store(true, Ordering::Release);
            conn.send(&request);
            if publishing {
                conn.shutdown(); // sent once the output is written; the hub then closes
            }
        } else {
            handle.quit();
        }
    });
    let said = refused.clone();
    client.set_message_callback(move |conn, buf, _| loop {
        match hub_codec::parse(buf) {
            Ok(Some(Command::Pub(topic, content))) => println!("{topic}: {content}"),
            Ok(Some(other)) => tracing::warn!(?other, "unexpected message from the hub"),
            Ok(None) => return,
            Err(_) => {
                let line = String::from_utf8_lossy(buf.peek()).trim_end().to_string();
                *said.lock().unwrap_or_else(|e| e.into_inner()) = Some(line);
                buf.retrieve_all();
                conn.force_close();
                return;
            }
        }
    });
    client.connect();
    let (flag, handle) = (connected.clone(), lp.handle());
    lp.run_after(CONNECT_LIMIT, move || {
        if !flag.load(Ordering::Acquire) {
            handle.quit();
        }
    });
    lp.run()?;
    if let Some(line) = refused.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Err(std::io::Error::other(format!("the hub says: {line}")));
    }
    if !connected.load(Ordering::Acquire) {
        return Err(std::io::Error::other(format!(
            "cannot connect to {addr} within {CONNECT_LIMIT:?}"
        )));
    }
    Ok(())
}

fn check(s: &str, what: &str) -> std::io::Result<()> {
    if s.is_empty() || !hub_codec::valid_text(s) {
        return Err(std::io::Error::other(format!(
            "the {what} must be non-empty, without line breaks"
        )));
    }
    Ok(())
}

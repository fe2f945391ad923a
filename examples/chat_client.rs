//! muduo's chat client (`examples/asio/chat/client.cc`): each line read from
//! stdin is sent as one length-framed message; every message received is
//! printed as `<<< message`.
//!
//! The connection lives on an I/O thread ([`EventLoopThread`]); the main
//! thread reads stdin, which blocks. At end of input the client half-closes
//! and exits once the server has closed too, so everything it sent has been
//! broadcast back by then.
//!
//! ```text
//! cargo run --example chat_client -- --addr 127.0.0.1:9981
//! ```

#[path = "common/args.rs"]
mod args;

use muduo::codec::LengthHeaderCodec;
use muduo::{EventLoopThread, TcpClient, TcpConnectionPtr};
use std::io::BufRead;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

const USAGE: &str = "chat_client: sends each stdin line to a chat server, prints what it broadcasts

usage: chat_client [--addr IP:PORT]
  --addr     the chat server (default 127.0.0.1:9981)";

const CODEC: LengthHeaderCodec = LengthHeaderCodec::new();
/// How long to wait for the server to accept, and to close after we are done.
const LIMIT: Duration = Duration::from_secs(10);

enum Event {
    Connected(TcpConnectionPtr),
    Closed,
    Line(String),
    EndOfInput,
}

fn main() {
    args::main_with("chat_client", run);
}

fn run() -> std::io::Result<()> {
    args::init_logging();
    let args = args::Args::parse(USAGE);
    let addr: SocketAddr = args.get("addr", "127.0.0.1:9981".parse().unwrap());

    let io = EventLoopThread::start("chat-client", None)?;
    let mut client = TcpClient::new(io.handle(), addr, "ChatClient");
    let (tx, events) = mpsc::channel::<Event>();
    let conn_tx = std::sync::Mutex::new(tx.clone());
    client.set_connection_callback(move |conn| {
        let ev = match conn.connected() {
            true => Event::Connected(conn.clone()),
            false => Event::Closed,
        };
        let _ = conn_tx.lock().unwrap_or_else(|e| e.into_inner()).send(ev);
    });
    client.set_message_callback(|conn, buf, _| {
        CODEC.on_message(conn, buf, |_, msg| {
            println!("<<< {}", String::from_utf8_lossy(msg));
        });
    });
    client.connect();

    let conn = match events.recv_timeout(LIMIT) {
        Ok(Event::Connected(conn)) => conn,
        _ => {
            return Err(std::io::Error::other(format!(
                "cannot connect to {addr} within {LIMIT:?}"
            )))
        }
    };
    tracing::info!(server = %addr, local = %conn.local_addr(), "connected");

    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(Event::Line(line)).is_err() {
                return;
            }
        }
        let _ = tx.send(Event::EndOfInput);
    });

    let mut ending = false;
    loop {
        let ev = if ending {
            match events.recv_timeout(LIMIT) {
                Ok(ev) => ev,
                Err(_) => return Err(std::io::Error::other("the server did not close")),
            }
        } else {
            events.recv().map_err(std::io::Error::other)?
        };
        match ev {
            Event::Line(line) => {
                if let Err(e) = CODEC.send(&conn, line.as_bytes()) {
                    eprintln!("chat_client: line not sent: {e}");
                }
            }
            Event::EndOfInput => {
                ending = true;
                client.disconnect();
            }
            Event::Closed => {
                tracing::info!(server = %addr, "disconnected");
                return Ok(());
            }
            Event::Connected(_) => {}
        }
    }
}

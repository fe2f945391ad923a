//! A SOCKS4 / SOCKS4a proxy (muduo's `examples/socks4a/socks4a.cc`):
//! `CONNECT` requests only, then the two connections are relayed with
//! high-water-mark backpressure both ways (`examples/common/relay.rs`).
//!
//! A SOCKS4a request names the destination by host name. Resolving a name
//! can block for seconds, so it never runs on an event loop: it runs on a
//! small worker [`ThreadPool`], and the result is posted back to the
//! connection's loop with `run_in_loop`. The client is not read meanwhile.
//!
//! ```text
//! cargo run --example socks4a -- --addr 127.0.0.1:1080
//! curl --socks4a 127.0.0.1:1080 http://example.com/
//! ```
//!
//! Wire format (request, then an 8-byte reply, `0x5a` granted / `0x5b` refused):
//!
//! ```text
//! | 4 | 1=CONNECT | port: u16 BE | ip: 4 bytes | user id | 0 | [host name | 0] |
//! ```
//!
//! The host name is present (SOCKS4a) when the IP is `0.0.0.x`, `x != 0`.
//!
//! The reply is sent once the destination has accepted (`0x5a`), or as soon
//! as the connect fails: refused, unreachable, or not done within
//! `--connect-timeout` (`0x5b`).

#[path = "common/args.rs"]
mod args;
#[path = "common/relay.rs"]
mod relay;

use muduo::{Buffer, EventLoop, TcpConnectionPtr, TcpServer, ThreadPool};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::sync::Arc;

const USAGE: &str = "socks4a: SOCKS4 and SOCKS4a CONNECT proxy

usage: socks4a [--addr IP:PORT] [--threads N] [--resolvers N] [--high-water-mark BYTES] [--connect-timeout SECS]
  --addr             listen address (default 127.0.0.1:1080)
  --threads          I/O threads (default 0: one loop)
  --resolvers        threads resolving SOCKS4a host names (default 2)
  --high-water-mark  output queued on one side before the other side is paused (default 1048576)
  --connect-timeout  seconds allowed to connect to a destination (default 10)";

const GRANTED: u8 = 0x5a;
const REFUSED: u8 = 0x5b;
/// A request longer than this (user id and host name included) is refused.
const MAX_REQUEST: usize = 1024;

/// Where a request wants to go.
#[derive(Debug, PartialEq)]
enum Dest {
    Addr(SocketAddr),
    Host(String, u16),
}

#[derive(Debug, PartialEq)]
enum Parsed {
    /// Need more bytes.
    Incomplete,
    /// A CONNECT request of this many bytes.
    Connect(Dest, usize),
    Bad(&'static str),
}

/// Parses a SOCKS4/4a request at the front of `data`.
fn parse(data: &[u8]) -> Parsed {
    if data.len() < 8 {
        return Parsed::Incomplete;
    }
    if data[0] != 4 {
        return Parsed::Bad("not SOCKS version 4");
    }
    if data[1] != 1 {
        return Parsed::Bad("only CONNECT is supported");
    }
    let port = u16::from_be_bytes([data[2], data[3]]);
    let ip = Ipv4Addr::new(data[4], data[5], data[6], data[7]);
    let Some(user_end) = data[8..].iter().position(|&b| b == 0).map(|i| 8 + i) else {
        return Parsed::Incomplete;
    };
    let [0, 0, 0, x] = ip.octets() else {
        return Parsed::Connect(Dest::Addr(SocketAddrV4::new(ip, port).into()), user_end + 1);
    };
    if x == 0 {
        return Parsed::Bad("destination 0.0.0.0");
    }
    let host_start = user_end + 1;
    let Some(host_end) = data[host_start..]
        .iter()
        .position(|&b| b == 0)
        .map(|i| host_start + i)
    else {
        return Parsed::Incomplete;
    };
    match std::str::from_utf8(&data[host_start..host_end]) {
        Ok(host) if !host.is_empty() => {
            Parsed::Connect(Dest::Host(host.to_string(), port), host_end + 1)
        }
        _ => Parsed::Bad("bad host name"),
    }
}

fn reply(conn: &TcpConnectionPtr, code: u8) {
    conn.send(&[0, code, 0, 0, 0, 0, 0, 0]);
}

/// The connection's context while its host name is being resolved: bytes
/// that arrived after the request.
struct Resolving(Vec<u8>);

struct Proxy {
    opts: relay::Options,
    resolvers: ThreadPool,
}

impl Proxy {
    fn on_message(&self, conn: &TcpConnectionPtr, buf: &mut Buffer) {
        if relay::forward(conn, buf) {
            return;
        }
        if conn
            .with_context(|r: &mut Resolving| r.0.extend_from_slice(buf.peek()))
            .is_some()
        {
            buf.retrieve_all();
            return;
        }
        match parse(buf.peek()) {
            Parsed::Incomplete if buf.readable_bytes() <= MAX_REQUEST => {}
            Parsed::Incomplete => {
                buf.retrieve_all();
                refuse(conn, "request too long");
            }
            Parsed::Bad(why) => {
                buf.retrieve_all();
                refuse(conn, why);
            }
            Parsed::Connect(dest, len) => {
                buf.retrieve(len);
                let rest = buf.retrieve_all_as_vec();
                match dest {
                    Dest::Addr(addr) => connect(conn, addr, &self.opts, rest),
                    Dest::Host(host, port) => self.resolve(conn, host, port, rest),
                }
            }
        }
    }

    /// Resolves on a worker thread, then continues on the connection's loop.
    fn resolve(&self, conn: &TcpConnectionPtr, host: String, port: u16, rest: Vec<u8>) {
        conn.stop_read();
        conn.set_context(Resolving(rest));
        let (opts, conn) = (self.opts, conn.clone());
        let job = {
            let conn = conn.clone();
            move || {
                // SOCKS4 speaks IPv4, but the destination may be anything: prefer IPv4.
                let found = (host.as_str(), port).to_socket_addrs().map(|addrs| {
                    let addrs: Vec<SocketAddr> = addrs.collect();
                    addrs
                        .iter()
                        .find(|a| a.is_ipv4())
                        .or(addrs.first())
                        .copied()
                });
                let lp = conn.loop_handle().clone();
                lp.run_in_loop(move || {
                    let Some(Resolving(rest)) = conn.take_context::<Resolving>() else {
                        return;
                    };
                    match found {
                        Ok(Some(addr)) => {
                            conn.start_read();
                            connect(&conn, addr, &opts, rest);
                        }
                        Ok(None) => refuse_resolved(&conn, &host, "no address"),
                        Err(e) => refuse_resolved(&conn, &host, &e.to_string()),
                    }
                });
            }
        };
        // Never blocks the loop: a full queue refuses the request instead.
        if let Err(e) = self.resolvers.try_execute(job) {
            conn.take_context::<Resolving>();
            conn.start_read();
            refuse(&conn, &format!("resolver unavailable: {e}"));
        }
    }
}

fn refuse(conn: &TcpConnectionPtr, why: &str) {
    tracing::warn!(peer = %conn.peer_addr(), why, "bad SOCKS request");
    reply(conn, REFUSED);
    conn.shutdown();
}

fn refuse_resolved(conn: &TcpConnectionPtr, host: &str, why: &str) {
    tracing::warn!(peer = %conn.peer_addr(), host, why, "cannot resolve");
    reply(conn, REFUSED);
    conn.start_read();
    conn.shutdown();
}

fn connect(conn: &TcpConnectionPtr, dest: SocketAddr, opts: &relay::Options, pending: Vec<u8>) {
    tracing::debug!(peer = %conn.peer_addr(), %dest, "connect");
    let on_open = Arc::new(|down: &TcpConnectionPtr, ok: bool| {
        reply(down, if ok { GRANTED } else { REFUSED });
        if !ok {
            down.shutdown();
        }
    });
    relay::open(conn, dest, opts, pending, on_open);
}

fn main() {
    args::main_with("socks4a", run);
}

fn run() -> std::io::Result<()> {
    args::init_logging();
    let args = args::Args::parse(USAGE);
    let addr: SocketAddr = args.get("addr", "127.0.0.1:1080".parse().unwrap());
    let threads: usize = args.get("threads", 0);
    let resolvers: usize = args.get("resolvers", 2usize).max(1);
    let opts = relay::Options::new(
        args.get("high-water-mark", 1024 * 1024usize),
        args.get("connect-timeout", 10.0f64),
    )?;

    let proxy = Arc::new(Proxy {
        opts,
        resolvers: ThreadPool::new("resolver", resolvers, Some(1024))?,
    });
    let lp = EventLoop::new()?;
    let mut server = TcpServer::new(&lp, addr, "Socks4a")?;
    server.set_thread_num(threads);
    relay::install(&mut server, &opts);
    server.set_connection_callback(|conn| {
        if conn.connected() {
            let _ = conn.set_tcp_no_delay(true);
        } else {
            conn.take_context::<Resolving>();
            relay::down_closed(conn);
        }
    });
    server.set_message_callback(move |conn, buf, _| proxy.on_message(conn, buf));
    server.start()?;
    tracing::info!(addr = %server.local_addr(), threads, resolvers, "socks4a listening");
    lp.run()
}

//! Two TCP connections tied together (muduo's `examples/socks4a/tunnel.h`),
//! shared by the `tcprelay` and `socks4a` examples.
//!
//! The accepted connection ("down", towards the client) opens an outgoing
//! [`TcpClient`] connection ("up", towards the server) on the same loop, so
//! bytes move between them without crossing threads. Whatever one side
//! reads is sent to the other.
//!
//! Backpressure, both ways: when a side's queued output passes the high-water
//! mark, we stop reading from the *other* side (its kernel buffers fill and
//! TCP flow control slows its sender down); when that output has been fully
//! written (write-complete), we read from the other side again. Memory per
//! tunnel therefore stays around the high-water mark, however fast one peer
//! sends and however slowly the other reads.
//!
//! Ownership: the down connection's context holds a [`Down`]; once up is
//! connected its context holds an [`Up`] with the `TcpClient` (which keeps
//! the up connection alive) and a weak reference back. When one side closes,
//! the other is half-closed after its queued output is written.
#![allow(dead_code)]

use muduo::{TcpClient, TcpConnection, TcpConnectionPtr, TcpServer};
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Tunables of a relay.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Output queued on one side above which the other side stops being read.
    pub high_water_mark: usize,
    /// How long one connect attempt may take; the first failed attempt
    /// ends the tunnel.
    pub connect_timeout: Duration,
}

impl Options {
    /// Checks flag values: a mark of at least one byte, a finite positive timeout.
    pub fn new(high_water_mark: usize, connect_timeout_secs: f64) -> std::io::Result<Options> {
        let connect_timeout = Duration::try_from_secs_f64(connect_timeout_secs)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                std::io::Error::other("--connect-timeout must be a positive number of seconds")
            })?;
        if high_water_mark == 0 {
            return Err(std::io::Error::other(
                "--high-water-mark must be at least 1",
            ));
        }
        Ok(Options {
            high_water_mark,
            connect_timeout,
        })
    }
}

/// Told whether the outgoing connection came up (`true`) or failed
/// (`false`: refused, unreachable or timed out; close or shut down the down side; what it sends from then on
/// is discarded). Runs on the down connection's loop, before reading from
/// the down side resumes.
pub type OnOpen = Arc<dyn Fn(&TcpConnectionPtr, bool) + Send + Sync>;

/// The down connection's context while it is tied (or being tied).
struct Down {
    up: Option<TcpConnectionPtr>,
    /// Owns the outgoing connection until it is up (then `Up` owns it).
    client: Option<TcpClient>,
    /// Bytes from the client that arrived before the up side was connected.
    pending: Vec<u8>,
}

/// The up connection's context.
struct Up {
    down: Weak<TcpConnection>,
    /// Keeps this connection alive until it closes.
    _client: TcpClient,
}

/// Sets the down side's flow-control callbacks on the server (before `start`).
pub fn install(server: &mut TcpServer, opts: &Options) {
    server.set_high_water_mark_callback(on_high_water_mark, opts.high_water_mark);
    server.set_write_complete_callback(on_write_complete);
}

/// Ties `down` to a new connection to `dest`. Reading from `down` pauses
/// until the up side is connected; `pending` (bytes already read from
/// `down`) is sent first. Call on `down`'s loop thread.
pub fn open(
    down: &TcpConnectionPtr,
    dest: SocketAddr,
    opts: &Options,
    pending: Vec<u8>,
    on_open: OnOpen,
) {
    down.stop_read();
    let mut client = TcpClient::new(down.loop_handle(), dest, "relay");
    let weak_down = Arc::downgrade(down);
    let on_up = on_open.clone();
    client.set_connection_callback(move |up| {
        if up.connected() {
            up_connected(&weak_down, up, &on_up);
        } else {
            up_closed(up);
        }
    });
    client.set_message_callback(|up, buf, _| {
        if let Some(down) = peer(up) {
            down.send(buf.peek());
        }
        buf.retrieve_all();
    });
    client.set_high_water_mark_callback(on_high_water_mark, opts.high_water_mark);
    client.set_write_complete_callback(on_write_complete);
    // Each attempt is bounded by the timeout, and the first failure
    // (refused, unreachable, timed out) ends the tunnel instead of retrying.
    client.set_connect_timeout(opts.connect_timeout);
    let (weak, failed) = (Arc::downgrade(down), on_open.clone());
    client.set_connect_failed_callback(move |e| {
        tracing::warn!(error = %e, "cannot connect to the destination");
        // Not inside the connector's own callback: the client is dropped there.
        let (weak, failed) = (weak.clone(), failed.clone());
        if let Some(down) = weak.upgrade() {
            down.loop_handle()
                .queue_in_loop(move || give_up(&weak, &failed));
        }
    });
    client.connect();
    down.set_context(Down {
        up: None,
        client: Some(client),
        pending,
    });
}

/// Abandons a tunnel still connecting: dropping the client stops it; the
/// example is told (`false`) and the down side is read again, to see its close.
fn give_up(down: &Weak<TcpConnection>, on_open: &OnOpen) {
    let Some(down) = down.upgrade() else { return };
    let client = down
        .with_context(|d: &mut Down| {
            if d.up.is_none() {
                d.client.take()
            } else {
                None
            }
        })
        .flatten();
    if let Some(client) = client {
        drop(client);
        on_open(&down, false);
        down.start_read(); // its bytes are discarded from now on
    }
}

/// The down side's message callback: forwards to the up side. Returns false
/// (consuming nothing) if `down` is not tied.
pub fn forward(down: &TcpConnectionPtr, buf: &mut muduo::Buffer) -> bool {
    let up = down.with_context(|d: &mut Down| match (&d.up, &d.client) {
        (Some(up), _) => Some(up.clone()),
        (None, Some(_connecting)) => {
            d.pending.extend_from_slice(buf.peek());
            None
        }
        (None, None) => None, // the up side failed or is gone: discard
    });
    match up {
        None => return false,
        Some(Some(up)) => up.send(buf.peek()),
        Some(None) => {}
    }
    buf.retrieve_all();
    true
}

/// The down side went away: half-close the up side once its output is
/// written, or stop connecting. Call from the down connection callback.
pub fn down_closed(down: &TcpConnectionPtr) {
    let Some(ctx) = down.take_context::<Down>() else {
        return;
    };
    if let Some(up) = ctx.up {
        up.with_context(|u: &mut Up| u.down = Weak::new());
        up.start_read(); // to see the server's close after our FIN
        up.shutdown();
    }
    drop(ctx.client); // if still connecting
}

fn up_connected(weak_down: &Weak<TcpConnection>, up: &TcpConnectionPtr, on_open: &OnOpen) {
    let Some(down) = weak_down.upgrade().filter(|d| d.connected()) else {
        up.shutdown();
        return;
    };
    let taken = down.with_context(|d: &mut Down| (d.client.take(), std::mem::take(&mut d.pending)));
    let Some((Some(client), pending)) = taken else {
        return; // timed out meanwhile
    };
    let _ = up.set_tcp_no_delay(true);
    up.set_context(Up {
        down: weak_down.clone(),
        _client: client,
    });
    down.with_context(|d: &mut Down| d.up = Some(up.clone()));
    on_open(&down, true);
    if !pending.is_empty() {
        up.send(&pending);
    }
    down.start_read();
}

fn up_closed(up: &TcpConnectionPtr) {
    // Dropping the context drops the TcpClient, which is safe in its own callback.
    let Some(ctx) = up.take_context::<Up>() else {
        return;
    };
    if let Some(down) = ctx.down.upgrade() {
        down.with_context(|d: &mut Down| d.up = None);
        down.start_read(); // to see the client's close after our FIN
        down.shutdown();
    }
}

/// The other side of a tied connection.
fn peer(conn: &TcpConnectionPtr) -> Option<TcpConnectionPtr> {
    conn.with_context(|d: &mut Down| d.up.clone())
        .or_else(|| conn.with_context(|u: &mut Up| u.down.upgrade()))
        .flatten()
}

fn on_high_water_mark(conn: &TcpConnectionPtr, queued: usize) {
    if let Some(other) = peer(conn) {
        tracing::debug!(conn = %conn.name(), queued, "output above the high-water mark: pausing the other side");
        other.stop_read();
    }
}

fn on_write_complete(conn: &TcpConnectionPtr) {
    if let Some(other) = peer(conn) {
        if !other.is_reading() {
            tracing::debug!(conn = %conn.name(), "output written: resuming the other side");
            other.start_read();
        }
    }
}

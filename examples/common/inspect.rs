//! `--inspect IP:PORT` for the server examples: serves the inspector
//! (dashboard, /metrics, /connections, /loops) beside the server.
#![allow(dead_code)]

use super::args::Args;
use muduo::inspect::Inspector;
use muduo::TcpServer;
use std::io;
use std::net::SocketAddr;

/// Usage lines for the flags this module reads.
pub const USAGE: &str =
    "  --inspect IP:PORT  serve the inspector (dashboard, /metrics) there; loopback only
  --inspect-public   allow a non-loopback --inspect address (shows peers and traffic)";

/// Starts the inspector on `--inspect` when given and watches `server`'s
/// loops; logs `inspector started ... inspect=IP:PORT` (after the server's
/// own `listening` line, so tests that wait for that line see it first).
pub fn attach(args: &Args, server: &TcpServer) -> io::Result<Option<Inspector>> {
    if !args.has("inspect") {
        return Ok(None);
    }
    let addr: SocketAddr = args.get("inspect", SocketAddr::from(([127, 0, 0, 1], 9000)));
    if !addr.ip().is_loopback() && !args.has("inspect-public") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--inspect {addr} is not a loopback address (add --inspect-public to serve it anyway)"),
        ));
    }
    let inspector = if args.has("inspect-public") {
        Inspector::start_exposed(addr)
    } else {
        Inspector::start(addr)
    }
    .map_err(|e| io::Error::new(e.kind(), format!("--inspect {addr}: {e}")))?;
    inspector.watch_server(server);
    tracing::info!(inspect = %inspector.local_addr(), "inspector started");
    Ok(Some(inspector))
}

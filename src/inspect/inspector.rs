//! `Inspector`: an HTTP port that shows the loops, the connections and the
//! process, live (muduo's `Inspector`).

use super::process::ProcessSnapshot;
use super::snapshot::{gather, Detail};
use super::{json, metrics};
use crate::event_loop::LoopHandle;
use crate::event_loop_thread::EventLoopThread;
use crate::http::{HttpRequest, HttpResponse, HttpServer};
use crate::tcp_server::TcpServer;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DASHBOARD: &str = include_str!("dashboard.html");
/// Longest wait for a loop to answer a scrape.
const GATHER_LIMIT: Duration = Duration::from_secs(1);
/// Connections listed per page (the counts cover them all).
const CONN_LIMIT: usize = 1000;
/// Connections sent to the dashboard on each poll.
const DASHBOARD_CONNS: usize = 200;

/// The loops an inspector reports on.
type Watched = Arc<Mutex<Vec<LoopHandle>>>;

/// Serves live figures of a set of loops over HTTP, on its own loop thread:
///
/// * `/` an HTML dashboard (embedded; polls `/snapshot` every second):
///   process RSS, fds, threads, uptime, CPU and throughput charts, the loop
///   table and the connection table;
/// * `/metrics` the Prometheus text format (counters, gauges and a
///   poll-wait histogram per loop, labelled `loop` and `loop_id`);
/// * `/loops` JSON; `/connections` JSON, or an HTML table for browsers
///   (`Accept: text/html` or `?format=html`), `?tcp_info=1` adds each
///   connection's RTT, congestion window and retransmits;
/// * `/snapshot` JSON: everything the dashboard shows.
///
/// The figures are read on each watched loop's own thread when a page is
/// asked for, so the loops pay nothing between scrapes beyond their
/// per-thread counters. [`Inspector::start`] serves on loopback only; use
/// [`Inspector::start_exposed`] to serve on another address on purpose
/// (it shows peer addresses and traffic figures: put it behind a firewall).
///
/// ```no_run
/// use muduo::{inspect::Inspector, EventLoop, TcpServer};
/// # fn main() -> std::io::Result<()> {
/// let lp = EventLoop::new()?;
/// let mut server = TcpServer::new(&lp, "127.0.0.1:8000".parse().unwrap(), "echo")?;
/// server.set_message_callback(|conn, buf, _| conn.send_buffer(buf));
/// server.start()?;
/// let inspector = Inspector::start("127.0.0.1:9000".parse().unwrap())?;
/// inspector.watch_server(&server);
/// lp.run()
/// # }
/// ```
pub struct Inspector {
    watched: Watched,
    // Declared before the thread so it stops while its loop still runs.
    server: Option<HttpServer>,
    thread: Option<EventLoopThread>,
}

impl Inspector {
    /// Starts serving on `addr`, which must be a loopback address.
    /// Callable from any thread; fails on a non-loopback address or when
    /// `addr` cannot be bound.
    pub fn start(addr: SocketAddr) -> io::Result<Inspector> {
        if !addr.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "inspector address {addr} is not loopback; use Inspector::start_exposed to serve it on purpose"
                ),
            ));
        }
        Self::start_exposed(addr)
    }

    /// Starts serving on any `addr`, loopback or not: an explicit choice
    /// to show the figures (and peer addresses) to whoever can reach it.
    pub fn start_exposed(addr: SocketAddr) -> io::Result<Inspector> {
        let thread = EventLoopThread::start("inspector", None)?;
        let watched: Watched = Arc::default();
        let mut server = HttpServer::new(thread.handle(), addr, "inspector")?;
        server.set_thread_num(0);
        server.set_server_name("muduo-inspector");
        let w = watched.clone();
        server.set_handler(move |req, resp| route(&w, req, resp));
        server.start()?;
        Ok(Inspector {
            watched,
            server: Some(server),
            thread: Some(thread),
        })
    }

    /// The address served (with the real port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.server
            .as_ref()
            .map_or(SocketAddr::from(([127, 0, 0, 1], 0)), |s| s.local_addr())
    }

    /// Reports on `lp` too (once, however often it is added).
    pub fn watch_loop(&self, lp: &LoopHandle) {
        let mut w = self.watched.lock().unwrap_or_else(|e| e.into_inner());
        w.retain(|h| h.is_alive());
        if !w.iter().any(|h| h.id() == lp.id()) {
            w.push(lp.clone());
        }
    }

    /// Reports on a started server's base loop and I/O loops. For an
    /// [`HttpServer`], pass [`HttpServer::tcp_server`].
    pub fn watch_server(&self, server: &TcpServer) {
        self.watch_loop(server.base_loop());
        for lp in server.io_loops() {
            self.watch_loop(&lp);
        }
    }

    /// The loops being reported on.
    pub fn loops(&self) -> Vec<LoopHandle> {
        self.watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for Inspector {
    fn drop(&mut self) {
        drop(self.server.take());
        drop(self.thread.take());
    }
}

impl fmt::Debug for Inspector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inspector")
            .field("addr", &self.local_addr())
            .field("loops", &self.loops().len())
            .finish()
    }
}

fn query_flag(req: &HttpRequest, key: &str, value: &str) -> bool {
    req.query()
        .is_some_and(|q| q.split('&').any(|kv| kv == format!("{key}={value}")))
}

fn route(watched: &Watched, req: &HttpRequest, resp: &mut HttpResponse) {
    let loops = watched.lock().unwrap_or_else(|e| e.into_inner()).clone();
    resp.add_header("Cache-Control", "no-store");
    match req.path() {
        "/" | "/index.html" => {
            resp.set_content_type("text/html; charset=utf-8")
                .set_body(DASHBOARD);
        }
        "/metrics" => {
            let snaps = gather(&loops, Detail::default(), GATHER_LIMIT);
            resp.set_content_type(metrics::CONTENT_TYPE)
                .set_body(metrics::encode(ProcessSnapshot::read(), snaps));
        }
        "/loops" => {
            let snaps = gather(&loops, Detail::default(), GATHER_LIMIT);
            resp.set_content_type("application/json")
                .set_body(json::loops(&snaps));
        }
        "/connections" => {
            let detail = Detail {
                connections: true,
                tcp_info: query_flag(req, "tcp_info", "1"),
            };
            let snaps = gather(&loops, detail, GATHER_LIMIT);
            let html = query_flag(req, "format", "html")
                || (!query_flag(req, "format", "json")
                    && req
                        .header("Accept")
                        .is_some_and(|a| a.contains("text/html")));
            if html {
                resp.set_content_type("text/html; charset=utf-8")
                    .set_body(json::connections_html(&snaps, CONN_LIMIT));
            } else {
                resp.set_content_type("application/json")
                    .set_body(json::connections(&snaps, CONN_LIMIT));
            }
        }
        "/snapshot" => {
            let detail = Detail {
                connections: true,
                tcp_info: false,
            };
            let snaps = gather(&loops, detail, GATHER_LIMIT);
            resp.set_content_type("application/json")
                .set_body(json::snapshot(
                    &ProcessSnapshot::read(),
                    &snaps,
                    DASHBOARD_CONNS,
                ));
        }
        _ => {
            resp.set_status(404, "Not Found")
                .set_content_type("text/plain")
                .set_body("not found; try /, /metrics, /loops, /connections, /snapshot\n");
        }
    }
}

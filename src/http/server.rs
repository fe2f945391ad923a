//! `HttpServer`: HTTP/1.1 on top of [`TcpServer`].

use super::{
    DateCache, FileBody, HttpContext, HttpError, HttpLimits, HttpRequest, HttpResponse,
    CONTINUE_RESPONSE,
};
use crate::buffer::Buffer;
use crate::callbacks::TcpConnectionPtr;
use crate::event_loop::LoopHandle;
use crate::poller::PollerKind;
use crate::socket::TcpInfo;
use crate::tcp_server::{TcpServer, TcpServerOptions};
use crate::thread_pool::ThreadPool;
use crate::timer::TimerId;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// A request handler: fills in the response for a request.
pub type HttpHandler = Arc<dyn Fn(&HttpRequest, &mut HttpResponse) + Send + Sync>;

/// Requests a connection may have at the workers before it stops reading.
const MAX_IN_FLIGHT: usize = 32;

thread_local! {
    /// This loop's `Date` value, re-rendered once a second by a loop timer.
    static DATE: RefCell<DateCache> = const { RefCell::new(DateCache::new()) };
    /// Responses of one batch of pipelined requests, written with one `send`.
    static OUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

struct Config {
    handler: HttpHandler,
    limits: HttpLimits,
    header_timeout: Duration,
    idle_timeout: Duration,
    send_timeout: Duration,
    server_name: String,
    workers: Option<Arc<ThreadPool>>,
}

/// Per-connection state, kept in the connection's context.
struct HttpConn {
    ctx: HttpContext,
    last_active: Instant,
    /// When the request now being received began (slowloris guard).
    request_started: Option<Instant>,
    /// Worker mode: responses are written in request order.
    next_seq: u64,
    next_to_send: u64,
    ready: BTreeMap<u64, (Vec<u8>, Option<FileBody>, bool)>,
    /// Worker mode: input read before reading was paused (too many
    /// requests in flight), parsed again when responses drain.
    backlog: Buffer,
    /// No more requests are parsed (an error, or a response that closes).
    closing: bool,
    /// Worker mode: a closing response went out; later ones are dropped.
    output_closed: bool,
    /// A send-progress check is armed: output was written and may still
    /// sit in the kernel (see [`arm_send_check`]).
    send_check: Option<SendProgress>,
}

/// Write progress of a connection with output in flight, sampled from
/// `TCP_INFO` by the send-timeout check.
#[derive(Clone, Copy, Debug)]
struct SendProgress {
    /// `tcpi_bytes_acked` at the last sample (`None`: not sampled yet).
    acked: Option<u64>,
    /// When the acknowledged byte count last moved (or the check was armed).
    since: Instant,
}

impl HttpConn {
    fn in_flight(&self) -> usize {
        (self.next_seq - self.next_to_send) as usize
    }
}

/// An HTTP/1.1 server (muduo's `HttpServer`, with request bodies, chunked
/// uploads, pipelining, keep-alive rules, limits and timeouts).
///
/// Each request goes to the handler with a fresh `200 OK` response to fill
/// in. Pipelined requests are answered in order, with one write per batch.
/// Bad requests get a clear status (400, 413, 414, 431, 501, 505) and the
/// connection is closed; the server keeps serving everyone else. A client
/// that takes longer than the header timeout to send a request (slowloris),
/// or stays idle between requests longer than the idle timeout, is closed.
/// With [`set_worker_threads`](Self::set_worker_threads) handlers run on a
/// [`ThreadPool`] so slow work does not stall the loop.
///
/// ```no_run
/// use muduo::{EventLoop, http::HttpServer};
/// # fn main() -> std::io::Result<()> {
/// let lp = EventLoop::new()?;
/// let mut server = HttpServer::new(&lp, "127.0.0.1:8000".parse().unwrap(), "web")?;
/// server.set_handler(|req, resp| {
///     if req.path() == "/" {
///         resp.set_content_type("text/plain").set_body("Hello, World!");
///     } else {
///         resp.set_status(404, "Not Found");
///     }
/// });
/// server.start()?;
/// lp.run()
/// # }
/// ```
pub struct HttpServer {
    tcp: TcpServer,
    handler: HttpHandler,
    limits: HttpLimits,
    header_timeout: Duration,
    idle_timeout: Duration,
    send_timeout: Duration,
    server_name: String,
    workers: Option<Arc<ThreadPool>>,
    date_timers: Mutex<Vec<(LoopHandle, TimerId)>>,
}

impl HttpServer {
    /// Creates a server bound to `addr` on base loop `lp` (not yet listening).
    pub fn new(lp: &LoopHandle, addr: SocketAddr, name: &str) -> io::Result<HttpServer> {
        Self::with_options(lp, addr, name, TcpServerOptions::default())
    }

    /// Like [`new`](Self::new) with TCP options (e.g. `SO_REUSEPORT`).
    pub fn with_options(
        lp: &LoopHandle,
        addr: SocketAddr,
        name: &str,
        opts: TcpServerOptions,
    ) -> io::Result<HttpServer> {
        Ok(HttpServer {
            tcp: TcpServer::with_options(lp, addr, name, opts)?,
            handler: Arc::new(|_req: &HttpRequest, resp: &mut HttpResponse| {
                resp.set_status(404, "Not Found");
            }),
            limits: HttpLimits::default(),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(60),
            server_name: "muduo-rs".to_string(),
            workers: None,
            date_timers: Mutex::new(Vec::new()),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.tcp.local_addr()
    }
    /// The underlying TCP server (for thread options and counts).
    pub fn tcp_server(&self) -> &TcpServer {
        &self.tcp
    }
    /// I/O threads, as [`TcpServer::set_thread_num`].
    pub fn set_thread_num(&mut self, n: usize) {
        self.tcp.set_thread_num(n);
    }
    /// The I/O loops' poller.
    pub fn set_poller(&mut self, kind: PollerKind) {
        self.tcp.set_poller(kind);
    }
    /// The request handler (default: 404 for everything).
    pub fn set_handler(
        &mut self,
        f: impl Fn(&HttpRequest, &mut HttpResponse) + Send + Sync + 'static,
    ) {
        self.handler = Arc::new(f);
    }
    /// Size limits (header section, URI, body, header count).
    pub fn set_limits(&mut self, limits: HttpLimits) {
        self.limits = limits;
    }
    /// Longest time a client may take to send one request, headers and body
    /// (default 10 s; slowloris defence).
    pub fn set_header_timeout(&mut self, d: Duration) {
        self.header_timeout = d;
    }
    /// Longest idle time between requests on a kept-alive connection (default 60 s).
    /// A connection is not idle while its response is still being sent.
    /// `Duration::MAX` (or any duration too large to add to a time) means never.
    pub fn set_idle_timeout(&mut self, d: Duration) {
        self.idle_timeout = d;
    }
    /// Longest time a response may make no write progress (default 60 s, as
    /// nginx's `send_timeout`): a client that stops reading a response while
    /// the server still has bytes for it is closed once the peer has
    /// acknowledged nothing new (`TCP_INFO` `bytes_acked`) for this long.
    /// Progress is sampled every quarter of the timeout, so the close comes
    /// between 1 and 1.5 timeouts after the last progress. A slow reader that
    /// keeps reading is never closed by it. `Duration::MAX` means never.
    pub fn set_send_timeout(&mut self, d: Duration) {
        self.send_timeout = d;
    }
    /// The `Server` header value (default `muduo-rs`; empty = no header).
    pub fn set_server_name(&mut self, name: &str) {
        self.server_name = name.to_string();
    }
    /// Runs handlers on a pool of `n` worker threads instead of the I/O
    /// loops (0 = on the loops, the default). Responses still go out in
    /// request order.
    pub fn set_worker_threads(&mut self, n: usize) -> io::Result<()> {
        self.workers = if n == 0 {
            None
        } else {
            Some(Arc::new(ThreadPool::new("http-worker", n, None)?))
        };
        Ok(())
    }

    /// Starts listening; callable from any thread.
    pub fn start(&mut self) -> io::Result<()> {
        let cfg = Arc::new(Config {
            handler: self.handler.clone(),
            limits: self.limits,
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            send_timeout: self.send_timeout,
            server_name: self.server_name.clone(),
            workers: self.workers.clone(),
        });
        let c = cfg.clone();
        self.tcp.set_connection_callback(move |conn| {
            if conn.connected() {
                conn.set_context(HttpConn {
                    ctx: HttpContext::new(c.limits),
                    last_active: Instant::now(),
                    request_started: None,
                    next_seq: 0,
                    next_to_send: 0,
                    ready: BTreeMap::new(),
                    backlog: Buffer::new(),
                    closing: false,
                    output_closed: false,
                    send_check: None,
                });
                arm_deadline(conn, &c, c.idle_timeout.min(c.header_timeout));
            } else {
                conn.take_context::<HttpConn>();
            }
        });
        let c = cfg.clone();
        self.tcp
            .set_message_callback(move |conn, buf, when| on_message(conn, buf, when, &c));
        self.tcp.start()?;
        let mut timers = self.date_timers.lock().unwrap_or_else(|e| e.into_inner());
        for lp in self.tcp.io_loops() {
            lp.run_in_loop(refresh_date);
            let id = lp.run_every(Duration::from_secs(1), refresh_date);
            timers.push((lp, id));
        }
        Ok(())
    }

    /// Stops the server as [`TcpServer::stop`] does.
    pub fn stop(&self) {
        for (lp, id) in self
            .date_timers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            lp.cancel(id);
        }
        self.tcp.stop();
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpServer")
            .field("tcp", &self.tcp)
            .finish()
    }
}

fn refresh_date() {
    DATE.with(|d| {
        d.borrow_mut().now();
    });
}

/// Sends a batch of serialized responses, then a file body if the last one has one.
fn flush(conn: &TcpConnectionPtr, out: &mut Vec<u8>, file: Option<FileBody>) {
    if !out.is_empty() {
        conn.send(out);
        out.clear();
    }
    if let Some(f) = file {
        conn.send_file(f.file, f.offset, f.len);
    }
}

fn on_message(conn: &TcpConnectionPtr, buf: &mut Buffer, when: Instant, cfg: &Arc<Config>) {
    OUT.with(|out| {
        let mut out = out.borrow_mut();
        out.clear();
        let handled = conn.with_context(|st: &mut HttpConn| {
            st.last_active = when;
            if st.closing {
                buf.retrieve_all();
                return Step::Wait;
            }
            let step = if st.backlog.is_empty() {
                let step = process(conn, st, buf, when, cfg, &mut out);
                if step == Step::Paused {
                    // Keep the unparsed rest for `deliver` to resume from:
                    // no read event will come for bytes already read.
                    st.backlog.append(buf.peek());
                    buf.retrieve_all();
                }
                step
            } else {
                // Earlier bytes are still waiting: new ones go after them.
                st.backlog.append(buf.peek());
                buf.retrieve_all();
                let mut backlog = std::mem::take(&mut st.backlog);
                let step = process(conn, st, &mut backlog, when, cfg, &mut out);
                st.backlog = backlog;
                step
            };
            if !out.is_empty() {
                note_output(conn, st, cfg);
            }
            step
        });
        let Some(step) = handled else {
            buf.retrieve_all(); // not an HTTP connection of ours any more
            return;
        };
        flush(conn, &mut out, None);
        if step == Step::Close {
            close_after_response(conn);
        }
    });
}

/// How [`process`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Needs more input.
    Wait,
    /// Worker mode: too many requests in flight; reading is stopped and the
    /// rest of the input is left unparsed.
    Paused,
    /// The connection must close once the output is written.
    Close,
}

/// Parses and answers (or dispatches) the requests in `input`, appending
/// loop-side output to `out`.
fn process(
    conn: &TcpConnectionPtr,
    st: &mut HttpConn,
    input: &mut Buffer,
    when: Instant,
    cfg: &Arc<Config>,
    out: &mut Vec<u8>,
) -> Step {
    let mut step = Step::Wait;
    loop {
        let parsed = match st.ctx.parse(input.peek()) {
            Ok(p) => p,
            Err(e) => {
                let mut resp = Vec::new();
                answer_error(&e, &mut resp);
                input.retrieve_all();
                st.closing = true;
                if emit(st, out, &resp, true) {
                    step = Step::Close;
                } // else queued behind the worker responses; `deliver` closes
                break;
            }
        };
        input.retrieve(parsed.consumed);
        if parsed.expect_continue {
            emit(st, out, CONTINUE_RESPONSE, false);
        }
        let Some(req) = parsed.request else { break };
        st.request_started = None;
        if let Some(pool) = &cfg.workers {
            dispatch_to_worker(conn, st, req, pool, cfg);
            if st.in_flight() >= MAX_IN_FLIGHT {
                conn.stop_read();
                step = Step::Paused;
                break;
            }
            continue;
        }
        let mut resp = HttpResponse::ok();
        (cfg.handler)(&req, &mut resp);
        resp.prepare_for(&req);
        DATE.with(|d| resp.write_to(out, d.borrow_mut().now_cached(), &cfg.server_name));
        let file = resp.take_file_body();
        if file.is_some() {
            flush(conn, out, file.filter(|_| !resp.is_head()));
            note_output(conn, st, cfg);
        }
        if resp.close_connection() {
            step = Step::Close;
            break;
        }
    }
    if step == Step::Close {
        st.closing = true;
    } else if st.closing {
        // An error response is queued behind worker responses.
    } else if (!input.is_empty() || st.ctx.in_body()) && st.request_started.is_none() {
        st.request_started = Some(when);
    }
    step
}

/// Output produced on the loop (`100 Continue`, error responses). With no
/// request at the workers it goes to `out` now (returns true); otherwise it
/// takes the next sequence number, so it is written after the responses to
/// the earlier requests, in order (returns false).
fn emit(st: &mut HttpConn, out: &mut Vec<u8>, bytes: &[u8], close: bool) -> bool {
    if st.in_flight() == 0 {
        out.extend_from_slice(bytes);
        return true;
    }
    let seq = st.next_seq;
    st.next_seq += 1;
    st.ready.insert(seq, (bytes.to_vec(), None, close));
    false
}

/// How long a client may keep its side open once the last response has
/// been written and our side is half-closed.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Half-closes after the queued output; a client that never closes its
/// side is dropped once the output has gone and a grace period has passed.
/// A long response to a slow reader is not cut off: while output is still
/// in flight the send timeout, not this grace period, decides.
fn close_after_response(conn: &TcpConnectionPtr) {
    conn.shutdown();
    arm_close_grace(conn);
}

fn arm_close_grace(conn: &TcpConnectionPtr) {
    let weak: Weak<crate::TcpConnection> = Arc::downgrade(conn);
    conn.loop_handle().run_after(CLOSE_GRACE, move || {
        let Some(conn) = weak.upgrade() else { return };
        if conn.disconnected() {
            return;
        }
        if output_pending(&conn) {
            arm_close_grace(&conn); // still sending: check again later
        } else {
            conn.force_close();
        }
    });
}

fn answer_error(e: &HttpError, out: &mut Vec<u8>) {
    tracing::debug!(status = e.status, detail = e.detail, "bad request");
    let resp = HttpResponse::from_error(e);
    DATE.with(|d| resp.write_to(out, d.borrow_mut().now_cached(), ""));
}

fn dispatch_to_worker(
    conn: &TcpConnectionPtr,
    st: &mut HttpConn,
    req: HttpRequest,
    pool: &ThreadPool,
    cfg: &Arc<Config>,
) {
    let seq = st.next_seq;
    st.next_seq += 1;
    let (conn2, cfg2) = (conn.clone(), cfg.clone());
    let job = move || {
        let mut resp = HttpResponse::ok();
        (cfg2.handler)(&req, &mut resp);
        resp.prepare_for(&req);
        let close = resp.close_connection();
        let mut bytes = Vec::with_capacity(128 + resp.body().len());
        // The worker renders its own date: the loop's cache is thread-local.
        resp.write_to(
            &mut bytes,
            DATE.with(|d| d.borrow_mut().now().to_vec()).as_slice(),
            &cfg2.server_name,
        );
        let file = resp.take_file_body().filter(|_| !resp.is_head());
        let conn3 = conn2.clone();
        conn2
            .loop_handle()
            .run_in_loop(move || deliver(&conn3, seq, bytes, file, close, &cfg2));
    };
    if pool.execute(job).is_err() {
        tracing::warn!(
            conn = conn.name(),
            "worker pool closed; dropping connection"
        );
        conn.force_close();
    }
}

/// Worker mode: writes completed responses in request order, and resumes
/// parsing (and reading) once few enough requests are in flight.
fn deliver(
    conn: &TcpConnectionPtr,
    seq: u64,
    bytes: Vec<u8>,
    file: Option<FileBody>,
    close: bool,
    cfg: &Arc<Config>,
) {
    let mut out = Vec::new();
    let verdict = conn.with_context(|st: &mut HttpConn| {
        st.ready.insert(seq, (bytes, file, close));
        let mut shut = false;
        while let Some((bytes, file, close)) = st.ready.remove(&st.next_to_send) {
            st.next_to_send += 1;
            if st.output_closed {
                continue; // answers to requests after a closing response
            }
            conn.send(&bytes);
            if let Some(f) = file {
                conn.send_file(f.file, f.offset, f.len);
            }
            note_output(conn, st, cfg);
            if close {
                st.closing = true;
                st.output_closed = true;
                shut = true;
            }
        }
        if shut {
            return Step::Close;
        }
        if st.closing || st.in_flight() >= MAX_IN_FLIGHT {
            return Step::Paused;
        }
        if st.backlog.is_empty() {
            return Step::Wait;
        }
        // Requests read before reading was paused: nothing will announce
        // them again, so parse them now.
        let mut backlog = std::mem::take(&mut st.backlog);
        let step = process(conn, st, &mut backlog, Instant::now(), cfg, &mut out);
        st.backlog = backlog;
        step
    });
    if !out.is_empty() {
        conn.send(&out);
    }
    match verdict {
        Some(Step::Close) => close_after_response(conn),
        Some(Step::Wait) if !conn.is_reading() => conn.start_read(),
        _ => {}
    }
}

/// Closes connections that are idle too long between requests, or too
/// slow sending one. One lazy timer per connection: activity only moves a
/// timestamp, and the timer re-arms itself for the remaining time.
fn arm_deadline(conn: &TcpConnectionPtr, cfg: &Arc<Config>, after: Duration) {
    let cfg = cfg.clone();
    after_while_connected(conn, after, move |conn| {
        let now = Instant::now();
        let verdict = conn.with_context(|st: &mut HttpConn| {
            if st.in_flight() > 0 {
                return Ok(cfg.idle_timeout); // a handler is still working
            }
            if let Some(p) = st.send_check {
                if output_pending(&conn) {
                    // Still sending: the send timeout watches that.
                    return Ok(cfg.idle_timeout);
                }
                st.send_check = None;
                st.last_active = st.last_active.max(p.since);
            }
            let (start, limit, what) = match st.request_started {
                Some(t) => (t, cfg.header_timeout, "request not completed in time"),
                None => (st.last_active, cfg.idle_timeout, "idle keep-alive timeout"),
            };
            match start.checked_add(limit) {
                // Too far away to represent: never.
                None => Ok(limit),
                Some(deadline) if deadline <= now => Err(what),
                Some(deadline) => Ok(deadline - now),
            }
        });
        match verdict {
            Some(Ok(left)) => arm_deadline(&conn, &cfg, left),
            Some(Err(why)) => {
                tracing::debug!(conn = conn.name(), why, "closing connection");
                conn.force_close();
            }
            None => {}
        }
    });
}

/// Output was just written to `conn`: make sure a send-progress check is
/// armed. One check per connection at a time, so keep-alive traffic costs a
/// flag test per batch, not a timer per response.
fn note_output(conn: &TcpConnectionPtr, st: &mut HttpConn, cfg: &Arc<Config>) {
    if st.send_check.is_none() {
        st.send_check = Some(SendProgress {
            acked: None,
            since: Instant::now(),
        });
        arm_send_check(conn, cfg, send_sample_interval(cfg.send_timeout));
    }
}

/// Whether the kernel still holds output for `conn` (unsent, or sent and
/// not acknowledged). Our own output queue is only ever non-empty while the
/// kernel's send buffer is full, so this covers it too.
fn output_pending(conn: &TcpConnectionPtr) -> bool {
    conn.tcp_info().is_ok_and(|i| holds_output(&i))
}

/// Whether `TCP_INFO` shows output unsent or sent and not acknowledged.
fn holds_output(info: &TcpInfo) -> bool {
    info.unacked > 0 || info.notsent_bytes > 0
}

/// Runs `f` on `conn`'s loop after `after`, if the connection is still
/// there and connected by then (the timer holds only a weak reference).
fn after_while_connected(
    conn: &TcpConnectionPtr,
    after: Duration,
    f: impl FnOnce(TcpConnectionPtr) + Send + 'static,
) {
    let weak: Weak<crate::TcpConnection> = Arc::downgrade(conn);
    conn.loop_handle().run_after(after, move || {
        if let Some(conn) = weak.upgrade().filter(|c| c.connected()) {
            f(conn);
        }
    });
}

/// How often write progress is sampled: a quarter of the send timeout,
/// between 10 ms and 15 s.
fn send_sample_interval(timeout: Duration) -> Duration {
    (timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(15))
}

/// The send timeout: while the kernel still holds output for `conn`
/// (unsent, or sent and unacknowledged), samples how many bytes the peer has
/// acknowledged; closes the connection when that has not moved for the send
/// timeout. Once the output is all acknowledged the check disarms and the
/// idle timeout counts from then.
fn arm_send_check(conn: &TcpConnectionPtr, cfg: &Arc<Config>, after: Duration) {
    let cfg = cfg.clone();
    after_while_connected(conn, after, move |conn| {
        let info = conn.tcp_info().ok();
        let now = Instant::now();
        let stalled = conn.with_context(|st: &mut HttpConn| {
            let p = st.send_check.as_mut()?;
            if !info.as_ref().is_some_and(holds_output) {
                // Drained since the last progress seen: idle counts from then.
                st.last_active = st.last_active.max(p.since);
                st.send_check = None;
                return None;
            }
            let acked = info.map(|i| i.bytes_acked);
            if p.acked != acked {
                p.acked = acked;
                p.since = now;
            }
            Some(now.saturating_duration_since(p.since) >= cfg.send_timeout)
        });
        match stalled.flatten() {
            Some(true) => {
                tracing::debug!(conn = conn.name(), "send timeout: peer stopped reading");
                conn.force_close();
            }
            Some(false) => arm_send_check(&conn, &cfg, send_sample_interval(cfg.send_timeout)),
            None => {}
        }
    });
}

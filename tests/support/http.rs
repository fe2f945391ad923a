//! Helpers for the HTTP integration tests: an in-process `HttpServer` on an
//! `EventLoopThread`, and a raw `TcpStream` client that parses responses
//! byte-exactly (framing by `Content-Length`).

use muduo::http::{HttpRequest, HttpResponse, HttpServer, Method};
use muduo::EventLoopThread;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// An `HttpServer` running on its own loop thread. Dropping it stops the
/// server first, then the loop.
pub struct HttpTestServer {
    // Field order is drop order: the server must stop before its loop ends.
    pub server: HttpServer,
    pub loop_thread: EventLoopThread,
    pub addr: SocketAddr,
}

/// The handler most tests use:
/// * `/` -> `Hello, World!`
/// * `/hello` -> `hello, world!\n`
/// * `/echo` (POST/PUT) -> the request body
/// * anything else -> `METHOD PATH` followed by `:BODY` if there is a body
///   (so pipelined requests can be matched to their responses)
pub fn demo_handler(req: &HttpRequest, resp: &mut HttpResponse) {
    match req.path() {
        "/" => {
            resp.set_content_type("text/plain")
                .set_body("Hello, World!");
        }
        "/hello" => {
            resp.set_content_type("text/plain")
                .set_body("hello, world!\n");
        }
        "/echo" if matches!(req.method(), Method::Post | Method::Put) => {
            resp.set_content_type("application/octet-stream")
                .set_body(req.body().to_vec());
        }
        path => {
            let mut body = format!("{} {}", req.method(), path).into_bytes();
            if !req.body().is_empty() {
                body.push(b':');
                body.extend_from_slice(req.body());
            }
            resp.set_content_type("text/plain").set_body(body);
        }
    }
}

/// Starts a server on 127.0.0.1:0 with [`demo_handler`]; `configure` may
/// change anything (handler, limits, timeouts) before `start`.
pub fn start_server(configure: impl FnOnce(&mut HttpServer)) -> HttpTestServer {
    let loop_thread = EventLoopThread::start("http-test", None).expect("loop thread");
    let mut server = HttpServer::new(
        loop_thread.handle(),
        "127.0.0.1:0".parse().unwrap(),
        "http-test",
    )
    .expect("bind 127.0.0.1:0");
    server.set_handler(demo_handler);
    configure(&mut server);
    server.start().expect("server start");
    let addr = server.local_addr();
    HttpTestServer {
        server,
        loop_thread,
        addr,
    }
}

/// One parsed response.
#[derive(Clone, Debug)]
pub struct Resp {
    pub status: u16,
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// How a read attempt ended when no complete response was available.
#[derive(Debug)]
pub enum End {
    /// Orderly EOF (read returned 0).
    Eof,
    /// The connection was reset.
    Reset,
    /// Nothing (or not enough) arrived before the deadline.
    Timeout,
    /// The bytes received are not an HTTP/1.1 response.
    Garbage(String),
}

/// Parses one response at the start of `buf`. `Ok(None)`: incomplete.
/// `head_only`: the response answers a HEAD request (no body follows).
pub fn parse_response(buf: &[u8], head_only: bool) -> Result<Option<(Resp, usize)>, String> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        // An incomplete head must at least look like a status line so far.
        let prefix = &b"HTTP/1.1 "[..buf.len().min(9)];
        if !buf.starts_with(prefix) {
            return Err(format!(
                "not a status line: {:?}",
                String::from_utf8_lossy(buf)
            ));
        }
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| "head is not UTF-8".to_string())?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default().to_string();
    let rest = status_line
        .strip_prefix("HTTP/1.1 ")
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let code = rest.get(..3).ok_or("short status line")?;
    if !code.bytes().all(|b| b.is_ascii_digit()) || rest.as_bytes().get(3) != Some(&b' ') {
        return Err(format!("bad status line {status_line:?}"));
    }
    let status: u16 = code.parse().unwrap();
    let mut headers = Vec::new();
    for line in lines {
        let (n, v) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        if n.is_empty() || n.contains(' ') {
            return Err(format!("bad header name in {line:?}"));
        }
        headers.push((n.to_string(), v.trim().to_string()));
    }
    let mut resp = Resp {
        status,
        status_line,
        headers,
        body: Vec::new(),
    };
    let body_start = end + 4;
    let no_body = head_only || (100..200).contains(&status) || status == 204 || status == 304;
    let len = if no_body {
        0
    } else {
        let cl = resp
            .header("content-length")
            .ok_or_else(|| format!("response without Content-Length: {head:?}"))?;
        cl.parse::<usize>()
            .map_err(|_| format!("bad Content-Length {cl:?}"))?
    };
    if buf.len() < body_start + len {
        return Ok(None);
    }
    resp.body = buf[body_start..body_start + len].to_vec();
    Ok(Some((resp, body_start + len)))
}

/// A raw HTTP client on a `TcpStream` that keeps the bytes it has read.
pub struct Client {
    pub stream: TcpStream,
    pub buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads more bytes, waiting at most until `deadline`.
    fn fill(&mut self, deadline: Instant) -> Result<usize, End> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(End::Timeout);
        }
        self.stream.set_read_timeout(Some(left)).unwrap();
        let mut chunk = [0u8; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err(End::Eof),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Err(End::Timeout)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                ) =>
            {
                Err(End::Reset)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => panic!("read failed: {e}"),
        }
    }

    /// The next response, or how the stream ended before one was complete.
    pub fn try_response_within(&mut self, limit: Duration, head_only: bool) -> Result<Resp, End> {
        let deadline = Instant::now() + limit;
        loop {
            match parse_response(&self.buf, head_only) {
                Ok(Some((resp, n))) => {
                    self.buf.drain(..n);
                    return Ok(resp);
                }
                Ok(None) => {}
                Err(e) => return Err(End::Garbage(e)),
            }
            self.fill(deadline)?;
        }
    }

    /// The next response; panics (with what was received) if there is none within 10 s.
    pub fn response(&mut self) -> Resp {
        self.response_to(false)
    }

    /// The response to a HEAD request (no body read).
    pub fn head_response(&mut self) -> Resp {
        self.response_to(true)
    }

    fn response_to(&mut self, head_only: bool) -> Resp {
        match self.try_response_within(Duration::from_secs(10), head_only) {
            Ok(r) => r,
            Err(end) => panic!(
                "expected a response, got {end:?}; received so far: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }

    /// Sends `req` and returns its response.
    pub fn request(&mut self, req: &[u8]) -> Resp {
        self.send(req);
        self.response()
    }

    /// Reads exactly `n` bytes (10 s limit).
    pub fn read_exact_bytes(&mut self, n: usize) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.buf.len() < n {
            if let Err(end) = self.fill(deadline) {
                panic!(
                    "wanted {n} bytes, got {end:?} after {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
        }
        self.buf.drain(..n).collect()
    }

    /// Waits up to `limit` for the connection to end; returns how it ended
    /// (`Eof`/`Reset`), `Timeout` if it stayed open, or `Garbage` if more
    /// bytes arrived.
    pub fn wait_end(&mut self, limit: Duration) -> End {
        let deadline = Instant::now() + limit;
        loop {
            if !self.buf.is_empty() {
                return End::Garbage(format!(
                    "unexpected bytes: {:?}",
                    String::from_utf8_lossy(&self.buf)
                ));
            }
            if let Err(end) = self.fill(deadline) {
                return end;
            }
        }
    }

    /// Asserts the server closes the connection (EOF or reset) within 5 s
    /// without sending anything more.
    pub fn assert_closed(&mut self, what: &str) {
        match self.wait_end(Duration::from_secs(5)) {
            End::Eof | End::Reset => {}
            other => panic!("{what}: expected the server to close, got {other:?}"),
        }
    }

    /// Asserts the connection stays open (no EOF, no bytes) for `d`.
    pub fn assert_open_for(&mut self, d: Duration, what: &str) {
        match self.wait_end(d) {
            End::Timeout => {}
            other => panic!("{what}: expected the connection to stay open, got {other:?}"),
        }
    }

    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// Asserts that a fresh client gets `200 Hello, World!` for `GET /`.
pub fn assert_serves(addr: SocketAddr, after: &str) {
    let mut c = Client::connect(addr);
    let r = c.request(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 200, "server not serving after {after}");
    assert_eq!(r.body, b"Hello, World!", "server not serving after {after}");
}

/// Deterministic pseudo-random bytes (xorshift32).
pub fn pseudo_random_bytes(len: usize, mut seed: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    if seed == 0 {
        seed = 0x9e37_79b9;
    }
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

//! An HTTP/1.1 server on `muduo::http::HttpServer`, in the spirit of
//! muduo's `HttpServer_test`.
//!
//! * `GET /` answers `Hello, World!`
//! * `GET /hello` answers `hello, world!\n` (as muduo's test server)
//! * `POST /echo` (or PUT) returns the request body (also chunked uploads)
//! * `GET /files/...` serves `--root DIR` when given
//! * anything else is 404; a method the path does not take is 405 with
//!   `Allow`, a method the server does not know is 501 (methods are
//!   case-sensitive: `get` is not `GET`), `OPTIONS` lists what a path takes.
//!
//! ```text
//! cargo run --release --example http_server -- [--addr 127.0.0.1:8000] [--threads 4]
//! ```

#[path = "common/args.rs"]
mod args;
#[path = "common/inspect.rs"]
mod inspect;

use muduo::http::{HttpLimits, HttpServer, Method, StaticFiles};
use muduo::EventLoop;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

const USAGE: &str = "http_server: HTTP/1.1 server example

usage: http_server [options]
  --addr IP:PORT          listen address (default 127.0.0.1:8000)
  --threads N             I/O threads (default 4; 0 = single reactor)
  --workers N             run handlers on N worker threads (default 0: on the I/O loops)
  --root DIR              serve DIR under /files/ (sendfile, Range, If-Modified-Since)
  --max-header-bytes N    request line + headers limit (default 8192) -> 431
  --max-uri-len N         request target limit (default 4096) -> 414
  --max-body-bytes N      request body limit (default 1048576) -> 413
  --header-timeout SECS   time allowed to send one request (default 10) (slowloris)
  --idle-timeout SECS     keep-alive idle limit (default 60)
  --send-timeout SECS     close a client that reads nothing of a response for this long (default 60)";

fn main() {
    args::main_with("http_server", run);
}

fn run() -> std::io::Result<()> {
    args::init_logging();
    let args = args::Args::parse(&format!("{USAGE}\n{}", inspect::USAGE));
    let addr: SocketAddr = args.get("addr", "127.0.0.1:8000".parse().unwrap());
    let threads: usize = args.get("threads", 4);
    let defaults = HttpLimits::default();
    let limits = HttpLimits {
        max_header_bytes: args.get("max-header-bytes", defaults.max_header_bytes),
        max_uri_len: args.get("max-uri-len", defaults.max_uri_len),
        max_body_bytes: args.get("max-body-bytes", defaults.max_body_bytes),
        max_headers: defaults.max_headers,
    };
    let statics = if args.has("root") {
        let root: PathBuf = args.get("root", PathBuf::new());
        Some(StaticFiles::new(&root, "/files/")?)
    } else {
        None
    };

    let lp = EventLoop::new()?;
    let mut server = HttpServer::new(&lp, addr, "http")?;
    server.set_thread_num(threads);
    server.set_limits(limits);
    server.set_header_timeout(args.get_secs("header-timeout", Duration::from_secs(10)));
    server.set_idle_timeout(args.get_secs("idle-timeout", Duration::from_secs(60)));
    server.set_send_timeout(args.get_secs("send-timeout", Duration::from_secs(60)));
    server.set_worker_threads(args.get("workers", 0))?;
    server.set_handler(move |req, resp| {
        let path = req.path();
        let route = if path == "/" || path == "/hello" {
            Route::Page
        } else if path == "/echo" {
            Route::Echo
        } else if statics.as_ref().is_some_and(|s| s.handles(path)) {
            Route::Files
        } else {
            return not_found(resp);
        };
        let allowed = route.methods();
        let method = req.method();
        if let Method::Other(_) = method {
            resp.set_status(501, "Not Implemented")
                .set_content_type("text/plain")
                .set_body("Not Implemented\n");
        } else if *method == Method::Options {
            resp.set_status(204, "No Content")
                .add_header("Allow", allowed_header(allowed));
        } else if !allowed.contains(method) {
            resp.set_status(405, "Method Not Allowed")
                .add_header("Allow", allowed_header(allowed))
                .set_content_type("text/plain")
                .set_body("Method Not Allowed\n");
        } else {
            match route {
                Route::Page if path == "/" => {
                    resp.set_content_type("text/plain")
                        .set_body("Hello, World!");
                }
                Route::Page => {
                    resp.set_content_type("text/plain")
                        .set_body("hello, world!\n");
                }
                Route::Echo => {
                    resp.set_content_type("application/octet-stream")
                        .set_body(req.body().to_vec());
                }
                Route::Files => {
                    if let Some(s) = &statics {
                        s.serve(req, resp);
                    }
                }
            }
        }
    });
    server.start()?;
    tracing::info!(addr = %server.local_addr(), threads, "http server listening");
    let _inspector = inspect::attach(&args, server.tcp_server())?;
    lp.run()
}

/// What a path is, and so which methods it takes.
#[derive(Clone, Copy)]
enum Route {
    Page,
    Echo,
    Files,
}

impl Route {
    fn methods(self) -> &'static [Method] {
        match self {
            Route::Page | Route::Files => &[Method::Get, Method::Head],
            Route::Echo => &[Method::Post, Method::Put],
        }
    }
}

/// The `Allow` value for a route: its methods plus `OPTIONS`.
fn allowed_header(methods: &[Method]) -> String {
    let mut names: Vec<&str> = methods.iter().map(Method::as_str).collect();
    names.push("OPTIONS");
    names.join(", ")
}

fn not_found(resp: &mut muduo::http::HttpResponse) {
    resp.set_status(404, "Not Found")
        .set_content_type("text/plain")
        .set_body("Not Found\n");
}

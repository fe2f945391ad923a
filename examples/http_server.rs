//! An HTTP/1.1 server on `muduo::http::HttpServer`, in the spirit of
//! muduo's `HttpServer_test`.
//!
//! * `/` answers `Hello, World!`
//! * `/hello` answers `hello, world!\n` (as muduo's test server)
//! * `/echo` returns the request body (POST, also chunked uploads)
//! * `/files/...` serves `--root DIR` when given
//! * anything else is 404
//!
//! ```text
//! cargo run --release --example http_server -- [--addr 127.0.0.1:8000] [--threads 4]
//! ```

#[path = "common/args.rs"]
mod args;

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
  --idle-timeout SECS     keep-alive idle limit (default 60)";

fn main() {
    args::main_with("http_server", run);
}

fn run() -> std::io::Result<()> {
    args::init_logging();
    let args = args::Args::parse(USAGE);
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
    server.set_header_timeout(Duration::from_secs_f64(args.get("header-timeout", 10.0)));
    server.set_idle_timeout(Duration::from_secs_f64(args.get("idle-timeout", 60.0)));
    server.set_worker_threads(args.get("workers", 0))?;
    server.set_handler(move |req, resp| match req.path() {
        "/" => {
            resp.set_content_type("text/plain")
                .set_body("Hello, World!");
        }
        "/hello" => {
            resp.set_content_type("text/plain")
                .set_body("hello, world!\n");
        }
        "/echo" => {
            if *req.method() == Method::Post || *req.method() == Method::Put {
                resp.set_content_type("application/octet-stream")
                    .set_body(req.body().to_vec());
            } else {
                resp.set_status(405, "Method Not Allowed")
                    .add_header("Allow", "POST, PUT");
            }
        }
        path if statics.as_ref().is_some_and(|s| s.handles(path)) => {
            if let Some(s) = &statics {
                s.serve(req, resp);
            }
        }
        _ => {
            resp.set_status(404, "Not Found")
                .set_content_type("text/plain")
                .set_body("Not Found\n");
        }
    });
    server.start()?;
    tracing::info!(addr = %server.local_addr(), threads, "http server listening");
    lp.run()
}

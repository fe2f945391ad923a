//! Peer HTTP server on hyper 1.x (HTTP/1.1 only) over tokio, for comparison
//! with our full `http_server`, with the same handler semantics: `/`
//! answers 200 `Hello, World!` with `Date` (added by hyper), `Server`,
//! `Content-Type: text/plain` and `Content-Length`; anything else is 404.
//! Keep-alive on and `pipeline_flush` enabled, so pipelined responses are
//! flushed together.
//!
//! Usage: `hyper_http --addr 127.0.0.1:PORT --threads N`

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, SERVER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use muduo_bench::cli::ServerArgs;
use tokio::net::TcpStream;

async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut resp = if req.uri().path() == "/" {
        Response::new(Full::new(Bytes::from_static(b"Hello, World!")))
    } else {
        let mut r = Response::new(Full::new(Bytes::from_static(b"Not Found\n")));
        *r.status_mut() = StatusCode::NOT_FOUND;
        r
    };
    let headers = resp.headers_mut();
    headers.insert(SERVER, HeaderValue::from_static("hyper"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(resp)
}

async fn serve_conn(stream: TcpStream) {
    let _ = http1::Builder::new()
        .keep_alive(true)
        .pipeline_flush(true)
        .serve_connection(TokioIo::new(stream), service_fn(hello))
        .await;
}

fn main() {
    let args = ServerArgs::from_env("hyper_http");
    muduo_bench::tokio_server::serve("hyper_http", &args, serve_conn)
}

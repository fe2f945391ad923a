//! HTTP/1.1 protocol layer: an incremental request parser and a response
//! serializer, free of I/O so they can be driven by any connection type (and
//! tested without sockets).
//!
//! * [`HttpContext`] turns the bytes a connection has read into
//!   [`HttpRequest`]s, one at a time, handling requests split across reads,
//!   pipelining, `Content-Length` and chunked bodies, and
//!   `Expect: 100-continue`. Protocol errors come back as [`HttpError`]s that
//!   carry the status code to answer with.
//! * [`HttpResponse`] builds a response and appends its wire form to an
//!   output buffer; [`DateCache`] provides the `Date` header value.
//!
//! A connection handler typically does:
//!
//! ```
//! use muduo::http::{DateCache, HttpContext, HttpLimits, HttpResponse, CONTINUE_RESPONSE};
//!
//! let mut ctx = HttpContext::new(HttpLimits::default());
//! let mut dates = DateCache::new();
//! let mut inbuf = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(); // bytes read so far
//! let mut outbuf = Vec::new();
//! let mut close = false;
//! loop {
//!     match ctx.parse(&inbuf) {
//!         Ok(parsed) => {
//!             inbuf.drain(..parsed.consumed);
//!             if parsed.expect_continue {
//!                 outbuf.extend_from_slice(CONTINUE_RESPONSE);
//!             }
//!             let Some(req) = parsed.request else { break };
//!             let mut resp = HttpResponse::ok();
//!             resp.set_body(format!("you asked for {}", req.path()));
//!             resp.prepare_for(&req);
//!             resp.write_to(&mut outbuf, dates.now(), "muduo");
//!             if resp.close_connection() {
//!                 close = true;
//!                 break;
//!             }
//!         }
//!         Err(err) => {
//!             HttpResponse::from_error(&err).write_to(&mut outbuf, dates.now(), "muduo");
//!             close = true;
//!             break;
//!         }
//!     }
//! }
//! assert!(outbuf.starts_with(b"HTTP/1.1 200 OK\r\n"));
//! assert!(!close);
//! ```

mod conditional;
mod context;
mod date;
mod error;
mod request;
mod response;
mod server;
mod static_files;
mod status;
mod syntax;
mod target;

pub use context::{HttpContext, HttpLimits, Parsed};
pub use date::{format_http_date, format_unix_secs, parse_http_date, DateCache, HTTP_DATE_LEN};
pub use error::HttpError;
pub use request::{Headers, HttpRequest, Method, Version};
pub use response::{FileBody, HttpResponse, InvalidHeader, CONTINUE_RESPONSE};
pub use server::{HttpHandler, HttpServer};
pub use static_files::StaticFiles;
pub use status::reason_phrase;

//! [`HttpRequest`], [`Method`] and [`Version`].
//!
//! A request owns one `Vec<u8>` holding a copy of its header section (request
//! line and header lines); the path, query and every header name and value
//! are byte ranges into it, so parsing a request allocates that copy, one
//! small vector of ranges and (if there is one) the body, never a `String`
//! per header.

use std::fmt;
use std::ops::Range;

/// An HTTP request method.
///
/// Methods are case-sensitive (RFC 9110 §9.1): `get` is [`Method::Other`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `CONNECT`
    Connect,
    /// `OPTIONS`
    Options,
    /// `TRACE`
    Trace,
    /// `PATCH`
    Patch,
    /// Any other method token, as sent.
    Other(String),
}

impl Method {
    /// Maps a method token to a `Method`; unknown tokens become [`Method::Other`].
    ///
    /// ```
    /// use muduo::http::Method;
    /// assert_eq!(Method::from_token("GET"), Method::Get);
    /// assert_eq!(Method::from_token("PURGE"), Method::Other("PURGE".into()));
    /// ```
    pub fn from_token(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "CONNECT" => Method::Connect,
            "OPTIONS" => Method::Options,
            "TRACE" => Method::Trace,
            "PATCH" => Method::Patch,
            other => Method::Other(other.to_owned()),
        }
    }

    /// The method token, e.g. `"GET"`.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Connect => "CONNECT",
            Method::Options => "OPTIONS",
            Method::Trace => "TRACE",
            Method::Patch => "PATCH",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The HTTP version of a request.
///
/// Only HTTP/1.x is accepted; a request line with `HTTP/1.2` … `HTTP/1.9`
/// is served as HTTP/1.1 (RFC 9110 §6.2: a recipient treats a higher minor
/// version as the highest one it supports).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// HTTP/1.0
    Http10,
    /// HTTP/1.1 (and higher 1.x minor versions)
    Http11,
}

impl Version {
    /// `"HTTP/1.0"` or `"HTTP/1.1"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A byte range into [`HttpRequest`]'s header-section copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    pub(crate) const EMPTY: Span = Span { start: 0, end: 0 };

    fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// One header field: name and value ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeaderSpan {
    pub(crate) name: Span,
    pub(crate) value: Span,
}

/// A complete HTTP/1.x request, produced by
/// [`HttpContext::parse`](super::HttpContext::parse).
///
/// Header lookup is case-insensitive on the name and returns the first
/// field with that name; [`header_values`](Self::header_values) and
/// [`headers`](Self::headers) see every field, duplicates included, in the
/// order they were sent. Values have leading and trailing whitespace
/// removed.
///
/// ```
/// use muduo::http::{HttpContext, HttpLimits, Method, Version};
/// let mut ctx = HttpContext::new(HttpLimits::default());
/// let out = ctx.parse(b"GET /a/b?x=1 HTTP/1.1\r\nHost: example\r\nAccept: */*\r\n\r\n").unwrap();
/// let req = out.request.unwrap();
/// assert_eq!(req.method(), &Method::Get);
/// assert_eq!(req.version(), Version::Http11);
/// assert_eq!(req.path(), "/a/b");
/// assert_eq!(req.query(), Some("x=1"));
/// assert_eq!(req.header("host"), Some("example"));
/// assert!(req.keep_alive());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub(crate) method: Method,
    pub(crate) version: Version,
    /// Copy of the header section; all spans index into it.
    pub(crate) head: Vec<u8>,
    pub(crate) path: Span,
    pub(crate) query: Option<Span>,
    /// The authority of an absolute-form target, which replaces `Host`.
    pub(crate) authority: Option<Span>,
    pub(crate) headers: Vec<HeaderSpan>,
    pub(crate) body: Vec<u8>,
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Whether the comma-separated list `value` contains `token`
/// (ASCII case-insensitive, surrounding whitespace ignored).
pub(crate) fn list_contains(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|item| trim_ows(item).eq_ignore_ascii_case(token.as_bytes()))
}

impl HttpRequest {
    /// The request method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The HTTP version (1.x minor versions above 1 are reported as 1.1).
    pub fn version(&self) -> Version {
        self.version
    }

    fn str_at(&self, span: Span) -> &str {
        // Path and query come from httparse, which has checked they are
        // UTF-8; the fallback is never taken but keeps this panic-free.
        std::str::from_utf8(self.bytes_at(span)).unwrap_or_default()
    }

    pub(crate) fn bytes_at(&self, span: Span) -> &[u8] {
        self.head.get(span.range()).unwrap_or_default()
    }

    /// The path of the request-target, without the query (`/a/b` for
    /// `GET /a/b?x=1`). Not percent-decoded. For an absolute-form target
    /// (`GET http://host/p?x HTTP/1.1`) it is the path part (`/p`), and `/`
    /// when the target has no path (`http://host`).
    pub fn path(&self) -> &str {
        if self.path.start == self.path.end && self.authority.is_some() {
            return "/";
        }
        self.str_at(self.path)
    }

    /// The host the request is for: the authority of an absolute-form
    /// target, else the `Host` field (RFC 9112 §3.2.2). `None` for an
    /// HTTP/1.0 request without `Host`.
    ///
    /// ```
    /// use muduo::http::{HttpContext, HttpLimits};
    /// let mut ctx = HttpContext::new(HttpLimits::default());
    /// let req = ctx
    ///     .parse(b"GET http://example.com/hello HTTP/1.1\r\nHost: other\r\n\r\n")
    ///     .unwrap()
    ///     .request
    ///     .unwrap();
    /// assert_eq!((req.path(), req.host()), ("/hello", Some("example.com")));
    /// ```
    pub fn host(&self) -> Option<&str> {
        self.header("host")
    }

    /// The query, without the `?` (`x=1` for `/a/b?x=1`); `None` when the
    /// target has no `?`. Not percent-decoded.
    pub fn query(&self) -> Option<&str> {
        self.query.map(|q| self.str_at(q))
    }

    /// The request-target's path and query (as sent for the usual
    /// origin-form; for an absolute-form target, without scheme and authority).
    pub fn target(&self) -> &str {
        let end = self.query.map_or(self.path.end, |q| q.end);
        self.str_at(Span {
            start: self.path.start,
            end,
        })
    }

    /// The value of the first header named `name` (ASCII case-insensitive),
    /// or `None` if there is none or its value is not valid UTF-8 (use
    /// [`header_bytes`](Self::header_bytes) for raw access).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The raw value of the first header named `name` (ASCII case-insensitive).
    /// For `host`, the authority of an absolute-form target replaces the
    /// field (RFC 9112 §3.2.2).
    pub fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        if let Some(a) = self.authority {
            if name.eq_ignore_ascii_case("host") {
                return Some(self.bytes_at(a));
            }
        }
        self.headers
            .iter()
            .find(|h| self.bytes_at(h.name).eq_ignore_ascii_case(name.as_bytes()))
            .map(|h| self.bytes_at(h.value))
    }

    /// Raw values of every header named `name` (ASCII case-insensitive), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |h| self.bytes_at(h.name).eq_ignore_ascii_case(name.as_bytes()))
            .map(move |h| self.bytes_at(h.value))
    }

    /// Whether any header named `name` holds `token` in its comma-separated
    /// list (both compared ASCII case-insensitively), e.g.
    /// `has_token("connection", "close")`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.header_values(name).any(|v| list_contains(v, token))
    }

    /// All header fields in the order received, duplicates included.
    pub fn headers(&self) -> Headers<'_> {
        Headers {
            req: self,
            iter: self.headers.iter(),
        }
    }

    /// Number of header fields (duplicates counted).
    pub fn header_count(&self) -> usize {
        self.headers.len()
    }

    /// The body (empty when the request had none). Chunked bodies are
    /// de-chunked; trailer fields are validated and discarded.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Takes the body out, leaving an empty one.
    pub fn take_body(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.body)
    }

    /// Consumes the request, returning its body.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// Whether the connection may stay open after this request
    /// (RFC 9112 §9.3): HTTP/1.1 persists unless a `Connection` header lists
    /// `close`; HTTP/1.0 closes unless a `Connection` header lists
    /// `keep-alive` (and none lists `close`).
    pub fn keep_alive(&self) -> bool {
        if self.has_token("connection", "close") {
            return false;
        }
        match self.version {
            Version::Http11 => true,
            Version::Http10 => self.has_token("connection", "keep-alive"),
        }
    }

    /// Whether the request carries `Expect: 100-continue`. (The parser
    /// reports the moment to send `100 Continue` through
    /// [`Parsed::expect_continue`](super::Parsed::expect_continue); this only
    /// reads the header.)
    pub fn expects_continue(&self) -> bool {
        self.has_token("expect", "100-continue")
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct HeadersDbg<'a>(&'a HttpRequest);
        impl fmt::Debug for HeadersDbg<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries(
                        self.0
                            .headers()
                            .map(|(n, v)| (n, String::from_utf8_lossy(v))),
                    )
                    .finish()
            }
        }
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("target", &self.target())
            .field("version", &self.version)
            .field("headers", &HeadersDbg(self))
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Iterator over a request's header fields as `(name, raw value)`, in the
/// order received. Created by [`HttpRequest::headers`].
#[derive(Clone, Debug)]
pub struct Headers<'a> {
    req: &'a HttpRequest,
    iter: std::slice::Iter<'a, HeaderSpan>,
}

impl<'a> Iterator for Headers<'a> {
    type Item = (&'a str, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let h = self.iter.next()?;
        Some((self.req.str_at(h.name), self.req.bytes_at(h.value)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.iter.size_hint()
    }
}

impl ExactSizeIterator for Headers<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_tokens() {
        assert!(list_contains(b"keep-alive, Close", "close"));
        assert!(list_contains(b" close ", "close"));
        assert!(list_contains(b"a,,\tclose\t,b", "close"));
        assert!(!list_contains(b"closed", "close"));
        assert!(!list_contains(b"", "close"));
    }

    #[test]
    fn trim() {
        assert_eq!(trim_ows(b" \t a b\t "), b"a b");
        assert_eq!(trim_ows(b"  "), b"");
    }

    #[test]
    fn method_round_trip() {
        for m in [
            "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "X",
        ] {
            assert_eq!(Method::from_token(m).as_str(), m);
        }
        assert_eq!(Method::from_token("get"), Method::Other("get".into()));
        assert_eq!(Version::Http10.to_string(), "HTTP/1.0");
    }
}

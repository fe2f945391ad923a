//! [`HttpResponse`] and its serialization.
//!
//! A response is rendered into the connection's output `Vec<u8>` with
//! `extend_from_slice` and `itoa`, no intermediate `String`s. User headers
//! are validated and pre-rendered (`Name: value\r\n`) into one buffer when
//! they are added.
//!
//! See [`HttpResponse`] for the headers the serializer manages.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::sync::Arc;

use super::error::HttpError;
use super::request::{list_contains, HttpRequest, Method, Version};
use super::status::reason_phrase;
use super::syntax::{is_field_text, is_token};

/// The interim response a server writes when
/// [`Parsed::expect_continue`](super::Parsed::expect_continue) is set.
pub const CONTINUE_RESPONSE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Returned by [`HttpResponse::try_add_header`] for a name that is not a
/// token or a value containing CR, LF, NUL or another control character.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidHeader;

impl fmt::Display for InvalidHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid header name or value")
    }
}

impl std::error::Error for InvalidHeader {}

/// An HTTP/1.1 response under construction.
///
/// The status line is always `HTTP/1.1` (RFC 9110 §6.2: a server sends its
/// own highest version, also to HTTP/1.0 clients).
///
/// # Headers the serializer owns
///
/// * `Content-Length` is always computed from the body and written by
///   [`write_to`](Self::write_to) (except for 1xx, 204 and 304 responses,
///   which carry neither `Content-Length` nor a body). A `Content-Length`
///   or `Transfer-Encoding` passed to [`add_header`](Self::add_header)
///   is dropped, so the framing can never be contradicted or duplicated.
/// * `Connection` is derived from [`close_connection`](Self::close_connection)
///   and the request version: `Connection: close` when closing,
///   `Connection: keep-alive` when keeping an HTTP/1.0 connection open,
///   nothing otherwise. `add_header("Connection", v)` only sets the close
///   flag if `v` lists `close`; the header itself is not copied.
/// * `Content-Type` added through `add_header` is the same as
///   [`set_content_type`](Self::set_content_type) (the last one wins).
/// * `Date` and `Server` are written from `write_to`'s arguments unless the
///   user added their own (then theirs is kept and ours skipped).
///
/// # Example
///
/// ```
/// use muduo::http::HttpResponse;
///
/// let mut resp = HttpResponse::ok();
/// resp.set_content_type("text/plain").add_header("X-Id", "7").set_body("hi");
/// let mut out = Vec::new();
/// resp.write_to(&mut out, b"Sun, 06 Nov 1994 08:49:37 GMT", "muduo");
/// assert_eq!(
///     out,
///     b"HTTP/1.1 200 OK\r\n\
///       Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
///       Server: muduo\r\n\
///       Content-Type: text/plain\r\n\
///       X-Id: 7\r\n\
///       Content-Length: 2\r\n\
///       \r\n\
///       hi"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    status: u16,
    reason: Cow<'static, str>,
    content_type: Option<Cow<'static, str>>,
    /// Pre-rendered `Name: value\r\n` lines.
    headers: Vec<u8>,
    body: Vec<u8>,
    close: bool,
    version: Version,
    head: bool,
    user_date: bool,
    user_server: bool,
    file: Option<FileBody>,
}

/// A response body that is a range of a file, sent with `sendfile(2)`
/// after the head (see [`HttpResponse::set_file_body`]).
#[derive(Clone, Debug)]
pub struct FileBody {
    /// The open file.
    pub file: Arc<File>,
    /// Where the range starts.
    pub offset: u64,
    /// How many bytes to send.
    pub len: u64,
}

impl PartialEq for FileBody {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.file, &other.file) && self.offset == other.offset && self.len == other.len
    }
}

impl Eq for FileBody {}

impl Default for HttpResponse {
    fn default() -> Self {
        Self::ok()
    }
}

impl HttpResponse {
    /// A response with `status` and its standard reason phrase, no headers,
    /// an empty body, keep-alive, for an HTTP/1.1 non-HEAD request. A code
    /// outside 100..=999 becomes 500.
    pub fn new(status: u16) -> Self {
        let status = if (100..=999).contains(&status) {
            status
        } else {
            500
        };
        HttpResponse {
            status,
            reason: Cow::Borrowed(reason_phrase(status)),
            content_type: None,
            headers: Vec::new(),
            body: Vec::new(),
            close: false,
            version: Version::Http11,
            head: false,
            user_date: false,
            user_server: false,
            file: None,
        }
    }

    /// `200 OK`.
    pub fn ok() -> Self {
        Self::new(200)
    }

    /// The response for a parse error: its status, a short `text/plain`
    /// body, and `Connection: close`.
    ///
    /// ```
    /// use muduo::http::{HttpError, HttpResponse};
    /// let resp = HttpResponse::from_error(&HttpError::bad_request("invalid Content-Length"));
    /// let mut out = Vec::new();
    /// resp.write_to(&mut out, b"", "");
    /// assert_eq!(
    ///     out,
    ///     b"HTTP/1.1 400 Bad Request\r\n\
    ///       Content-Type: text/plain; charset=utf-8\r\n\
    ///       Content-Length: 36\r\n\
    ///       Connection: close\r\n\
    ///       \r\n\
    ///       Bad Request: invalid Content-Length\n"
    /// );
    /// ```
    pub fn from_error(err: &HttpError) -> Self {
        let mut resp = Self::new(err.status);
        resp.set_status(err.status, err.reason)
            .set_content_type("text/plain; charset=utf-8")
            .set_body(format!("{}: {}\n", err.reason, err.detail))
            .set_close_connection(true);
        resp
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Sets the status code and reason phrase. An empty reason, or one with
    /// control characters, is replaced by the standard phrase for `code`. A
    /// code outside 100..=999 becomes 500.
    pub fn set_status(&mut self, code: u16, reason: impl Into<Cow<'static, str>>) -> &mut Self {
        self.status = if (100..=999).contains(&code) {
            code
        } else {
            500
        };
        let reason = reason.into();
        self.reason = if reason.is_empty() || !is_field_text(reason.as_bytes()) {
            Cow::Borrowed(reason_phrase(self.status))
        } else {
            reason
        };
        self
    }

    /// Adds a header, or ignores it if it is invalid (see
    /// [`try_add_header`](Self::try_add_header)). Duplicates are kept, in
    /// order.
    pub fn add_header(&mut self, name: &str, value: impl AsRef<[u8]>) -> &mut Self {
        let _ = self.try_add_header(name, value);
        self
    }

    /// Adds a header after checking that `name` is a token and `value` has
    /// no control characters but HTAB (no CR/LF header injection).
    /// Framing headers are handled as described in the
    /// [type documentation](HttpResponse).
    pub fn try_add_header(
        &mut self,
        name: &str,
        value: impl AsRef<[u8]>,
    ) -> Result<&mut Self, InvalidHeader> {
        let value = value.as_ref();
        if !is_token(name.as_bytes()) || !is_field_text(value) {
            return Err(InvalidHeader);
        }
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if is("content-length") || is("transfer-encoding") {
            return Ok(self);
        }
        if is("connection") {
            if list_contains(value, "close") {
                self.close = true;
            }
            return Ok(self);
        }
        if is("content-type") {
            let v = String::from_utf8_lossy(value).into_owned();
            self.content_type = Some(Cow::Owned(v));
            return Ok(self);
        }
        self.user_date |= is("date");
        self.user_server |= is("server");
        self.headers.reserve(name.len() + value.len() + 4);
        self.headers.extend_from_slice(name.as_bytes());
        self.headers.extend_from_slice(b": ");
        self.headers.extend_from_slice(value);
        self.headers.extend_from_slice(b"\r\n");
        Ok(self)
    }

    /// Sets `Content-Type` (replacing an earlier one). Ignored if it contains
    /// control characters.
    pub fn set_content_type(&mut self, content_type: impl Into<Cow<'static, str>>) -> &mut Self {
        let ct = content_type.into();
        if is_field_text(ct.as_bytes()) {
            self.content_type = Some(ct);
        }
        self
    }

    /// Replaces the body.
    pub fn set_body(&mut self, body: impl Into<Vec<u8>>) -> &mut Self {
        self.body = body.into();
        self.file = None;
        self
    }

    /// Makes the body `len` bytes of `file` from `offset`, replacing any
    /// byte body. `Content-Length` is `len`; [`write_to`](Self::write_to)
    /// writes only the head and the server sends the range with
    /// `sendfile(2)`, without reading it into memory.
    pub fn set_file_body(
        &mut self,
        file: impl Into<Arc<File>>,
        offset: u64,
        len: u64,
    ) -> &mut Self {
        self.body.clear();
        self.file = Some(FileBody {
            file: file.into(),
            offset,
            len,
        });
        self
    }

    /// The file body, if one was set.
    pub fn file_body(&self) -> Option<&FileBody> {
        self.file.as_ref()
    }

    /// Takes the file body out (the server does this to send it).
    pub fn take_file_body(&mut self) -> Option<FileBody> {
        self.file.take()
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body, to append to in place.
    pub fn body_mut(&mut self) -> &mut Vec<u8> {
        &mut self.body
    }

    /// Whether the connection should be closed after this response.
    pub fn set_close_connection(&mut self, close: bool) -> &mut Self {
        self.close = close;
        self
    }

    /// Whether the connection will be closed after this response (the
    /// server should close it after writing).
    pub fn close_connection(&self) -> bool {
        self.close
    }

    /// The version of the request being answered (default HTTP/1.1). For
    /// HTTP/1.0 a kept-alive connection gets `Connection: keep-alive`.
    pub fn set_request_version(&mut self, version: Version) -> &mut Self {
        self.version = version;
        self
    }

    /// Whether this answers a `HEAD` request: the headers (including
    /// `Content-Length` of the body) are written, the body is not.
    pub fn set_head(&mut self, head: bool) -> &mut Self {
        self.head = head;
        self
    }

    /// True when this answers a `HEAD` request.
    pub fn is_head(&self) -> bool {
        self.head
    }

    /// Adapts the response to `req`: its version, whether it is a HEAD
    /// request, and closing the connection if `req` does not allow
    /// keep-alive (it never turns an explicit close back off).
    pub fn prepare_for(&mut self, req: &HttpRequest) -> &mut Self {
        self.version = req.version();
        self.head = *req.method() == Method::Head;
        if !req.keep_alive() {
            self.close = true;
        }
        self
    }

    /// Appends the serialized response to `out`: status line, `Date: date`
    /// (skipped if `date` is empty), `Server: server` (skipped if empty),
    /// `Content-Type`, the added headers in order, `Content-Length`,
    /// `Connection` when needed, the empty line and the body (not for HEAD;
    /// neither length nor body for 1xx, 204 and 304). A `date` or `server`
    /// containing control characters is skipped.
    pub fn write_to(&self, out: &mut Vec<u8>, date: &[u8], server: &str) {
        let no_body_status =
            (100..200).contains(&self.status) || self.status == 204 || self.status == 304;
        let write_body = !no_body_status && !self.head;
        let mut num = itoa::Buffer::new();
        out.reserve(
            96 + self.reason.len()
                + date.len()
                + server.len()
                + self.content_type.as_ref().map_or(0, |c| c.len() + 16)
                + self.headers.len()
                + if write_body { self.body.len() } else { 0 },
        );
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(num.format(self.status).as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.reason.as_bytes());
        out.extend_from_slice(b"\r\n");
        if !self.user_date && !date.is_empty() && is_field_text(date) {
            out.extend_from_slice(b"Date: ");
            out.extend_from_slice(date);
            out.extend_from_slice(b"\r\n");
        }
        if !self.user_server && !server.is_empty() && is_field_text(server.as_bytes()) {
            out.extend_from_slice(b"Server: ");
            out.extend_from_slice(server.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if let Some(ct) = &self.content_type {
            out.extend_from_slice(b"Content-Type: ");
            out.extend_from_slice(ct.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(&self.headers);
        if !no_body_status {
            out.extend_from_slice(b"Content-Length: ");
            let len = match &self.file {
                Some(f) => f.len,
                None => self.body.len() as u64,
            };
            out.extend_from_slice(num.format(len).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if self.close {
            out.extend_from_slice(b"Connection: close\r\n");
        } else if self.version == Version::Http10 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if write_body {
            out.extend_from_slice(&self.body);
        }
    }
}

impl From<&HttpError> for HttpResponse {
    fn from(err: &HttpError) -> Self {
        Self::from_error(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(r: &HttpResponse) -> String {
        let mut out = Vec::new();
        r.write_to(&mut out, b"Thu, 01 Jan 1970 00:00:00 GMT", "m");
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn minimal() {
        assert_eq!(
            render(&HttpResponse::new(404)),
            "HTTP/1.1 404 Not Found\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\nServer: m\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn framing_headers_are_owned() {
        let mut r = HttpResponse::ok();
        r.add_header("Content-Length", "99")
            .add_header("transfer-encoding", "chunked")
            .add_header("Connection", "keep-alive, Close")
            .set_body("abc");
        assert!(r.close_connection());
        assert_eq!(
            render(&r),
            "HTTP/1.1 200 OK\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\nServer: m\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
        );
    }

    #[test]
    fn user_date_server_content_type() {
        let mut r = HttpResponse::ok();
        r.add_header("Server", "custom")
            .add_header("date", "x")
            .set_content_type("a/b")
            .add_header("Content-Type", "c/d");
        assert_eq!(
            render(&r),
            "HTTP/1.1 200 OK\r\nContent-Type: c/d\r\nServer: custom\r\ndate: x\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn injection_rejected() {
        let mut r = HttpResponse::ok();
        assert_eq!(
            r.try_add_header("X", "a\r\nEvil: 1").err(),
            Some(InvalidHeader)
        );
        assert!(r.try_add_header("Bad Name", "v").is_err());
        assert!(r.try_add_header("", "v").is_err());
        r.add_header("X", "a\nb").set_content_type("t\r\n");
        r.set_status(200, "O\r\nK");
        assert_eq!(r.reason(), "OK");
        let mut out = Vec::new();
        r.write_to(&mut out, b"bad\r\ndate", "evil\r\n");
        assert_eq!(out, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    }

    #[test]
    fn head_and_no_body_statuses() {
        let mut r = HttpResponse::ok();
        r.set_body("hello").set_head(true);
        let mut out = Vec::new();
        r.write_to(&mut out, b"", "");
        assert_eq!(out, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
        for code in [100, 204, 304] {
            let mut r = HttpResponse::new(code);
            r.set_body("x");
            let mut out = Vec::new();
            r.write_to(&mut out, b"", "");
            let want = format!("HTTP/1.1 {code} {}\r\n\r\n", reason_phrase(code));
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }

    #[test]
    fn http10_keep_alive_and_status() {
        let mut r = HttpResponse::new(42);
        assert_eq!(r.status(), 500);
        r.set_status(299, "").set_request_version(Version::Http10);
        let mut out = Vec::new();
        r.write_to(&mut out, b"", "");
        assert_eq!(
            out,
            b"HTTP/1.1 299 \r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
        );
        r.set_status(201, "Made");
        assert_eq!(r.reason(), "Made");
        r.set_close_connection(true);
        out.clear();
        r.write_to(&mut out, b"", "");
        assert_eq!(
            out,
            b"HTTP/1.1 201 Made\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn write_appends() {
        let mut out = b"prev".to_vec();
        HttpResponse::new(204).write_to(&mut out, b"", "");
        assert_eq!(out, b"prevHTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(CONTINUE_RESPONSE, b"HTTP/1.1 100 Continue\r\n\r\n");
    }
}

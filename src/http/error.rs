//! [`HttpError`]: a protocol error that maps to an HTTP status code.

use std::fmt;

use super::status::reason_phrase;

/// A request that cannot be served, with the status code the server should
/// answer with before closing the connection.
///
/// Every error produced by [`HttpContext::parse`](super::HttpContext::parse)
/// is fatal for the connection: the context stays poisoned, the server is
/// expected to write [`HttpResponse::from_error`](super::HttpResponse::from_error)
/// and close.
///
/// | status | meaning |
/// | --- | --- |
/// | 400 | malformed request line, header, `Content-Length`, chunk framing or trailer; conflicting framing headers |
/// | 413 | body larger than [`HttpLimits::max_body_bytes`](super::HttpLimits::max_body_bytes) |
/// | 414 | request-target longer than [`HttpLimits::max_uri_len`](super::HttpLimits::max_uri_len) |
/// | 431 | header section (or trailer section) too large or too many fields |
/// | 501 | a transfer coding other than `chunked` |
/// | 505 | an HTTP major version other than 1 (including the HTTP/2 preface) |
///
/// `detail` is a fixed, human-readable explanation (no request data is
/// echoed, so it is safe to put in a response body).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HttpError {
    /// The status code to answer with (4xx or 5xx).
    pub status: u16,
    /// The standard reason phrase for `status`.
    pub reason: &'static str,
    /// What exactly was wrong.
    pub detail: &'static str,
}

impl HttpError {
    /// An error with `status`, its standard reason phrase, and `detail`.
    pub const fn new(status: u16, detail: &'static str) -> Self {
        HttpError {
            status,
            reason: reason_phrase(status),
            detail,
        }
    }

    /// 400 Bad Request.
    pub const fn bad_request(detail: &'static str) -> Self {
        Self::new(400, detail)
    }

    /// 413 Content Too Large.
    pub const fn body_too_large(detail: &'static str) -> Self {
        Self::new(413, detail)
    }

    /// 414 URI Too Long.
    pub const fn uri_too_long(detail: &'static str) -> Self {
        Self::new(414, detail)
    }

    /// 431 Request Header Fields Too Large.
    pub const fn headers_too_large(detail: &'static str) -> Self {
        Self::new(431, detail)
    }

    /// 501 Not Implemented.
    pub const fn not_implemented(detail: &'static str) -> Self {
        Self::new(501, detail)
    }

    /// 505 HTTP Version Not Supported.
    pub const fn version_not_supported(detail: &'static str) -> Self {
        Self::new(505, detail)
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.reason, self.detail)
    }
}

impl std::error::Error for HttpError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_reason() {
        let e = HttpError::uri_too_long("request-target too long");
        assert_eq!(e.status, 414);
        assert_eq!(e.reason, "URI Too Long");
        assert_eq!(e.to_string(), "414 URI Too Long: request-target too long");
    }
}

//! [`HttpContext`]: the incremental, I/O-free HTTP/1.x request parser.
//!
//! See [`HttpContext`] for the contract and the protocol decisions.

use std::mem::MaybeUninit;

use super::error::HttpError;
use super::request::{HeaderSpan, HttpRequest, Method, Span, Version};
use super::syntax::{is_target_byte, is_tchar, is_value_byte};
use super::target;

/// Size limits applied while parsing. `Default` gives the values documented
/// on each field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HttpLimits {
    /// Largest header section: any empty lines before the request line, the
    /// request line, the header lines and the final empty line (default
    /// 8192). Exceeding it is 431. Also the budget for the chunk extensions
    /// of one body (400) and for its trailer section (431).
    pub max_header_bytes: usize,
    /// Longest request-target (default 4096). Exceeding it is 414.
    pub max_uri_len: usize,
    /// Largest body, after de-chunking (default 1 MiB). Exceeding it is 413,
    /// reported as soon as a `Content-Length` or chunk size announces it.
    pub max_body_bytes: usize,
    /// Most header fields (default 100); the same limit applies to trailer
    /// fields. Exceeding it is 431.
    pub max_headers: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_header_bytes: 8192,
            max_uri_len: 4096,
            max_body_bytes: 1 << 20,
            max_headers: 100,
        }
    }
}

/// The result of one successful [`HttpContext::parse`] call.
#[derive(Debug, Default, PartialEq, Eq)]
#[must_use = "the caller must drop `consumed` bytes from its buffer"]
pub struct Parsed {
    /// How many leading bytes of the input were consumed. The caller must
    /// remove exactly these from its buffer before the next call, whether or
    /// not a request came back.
    pub consumed: usize,
    /// A complete request, if one was finished by this call. When `Some`,
    /// call `parse` again with the remaining bytes: more pipelined requests
    /// may be there. When `None`, wait for more input.
    pub request: Option<HttpRequest>,
    /// `true` exactly once per request: its header section has just been
    /// parsed, it carries `Expect: 100-continue` (HTTP/1.1 only), a body is
    /// expected and not all of it has arrived. The server should now write
    /// `HTTP/1.1 100 Continue\r\n\r\n` (or a final error status and close).
    pub expect_continue: bool,
}

impl Parsed {
    fn need_more(consumed: usize, expect_continue: bool) -> Self {
        Parsed {
            consumed,
            request: None,
            expect_continue,
        }
    }

    fn complete(consumed: usize, request: HttpRequest) -> Self {
        Parsed {
            consumed,
            request: Some(request),
            expect_continue: false,
        }
    }
}

/// Incremental, I/O-free HTTP/1.x request parser for one connection.
///
/// After an error the context is poisoned: every later call returns the
/// same error (the server sends the error response and closes) until
/// [`reset`](Self::reset).
///
/// # Contract
///
/// The caller keeps the bytes it has read but not yet consumed (typically a
/// `Buffer`'s readable region) and passes *all* of them to
/// [`parse`](Self::parse) every time more arrive. Each call returns how many
/// leading bytes were consumed (the caller drops them, e.g. `retrieve(n)`)
/// and at most one complete request. While a request comes back, the caller
/// calls again with the rest: that is how pipelined requests are handled.
/// When `request` is `None`, nothing more can be done until more bytes
/// arrive.
///
/// # Work done per call
///
/// * Header section: nothing is consumed until the whole header section is
///   present. The first look at a new request tries `httparse` directly on
///   the input (the common case: the whole head arrived in one read). If it
///   is incomplete, the context switches to an incremental scan that
///   remembers how far it has checked the request line and how far it has
///   searched for the empty line, so bytes arriving one at a time are each
///   examined once; `httparse` runs again only once the empty line is there
///   (or the size limit is reached, to classify the error).
/// * Body: once the head is parsed it is consumed, and body bytes (raw or
///   chunked) are consumed and copied into the request as they arrive.
///
/// The outcome never depends on how the input was split across calls: the
/// same bytes give the same requests and the same error.
///
/// # Accepted syntax and decisions
///
/// * Request line: `method SP request-target SP HTTP/1.x`, single spaces,
///   ending in CRLF (or bare LF, as `httparse` accepts). Empty lines before a
///   request are skipped (RFC 9112 §2.2). `HTTP/1.2`..`HTTP/1.9` are served
///   as HTTP/1.1; any other major version (`HTTP/0.9`, `HTTP/2.0`, the
///   HTTP/2 preface `PRI * HTTP/2.0`, `HTTP/3.0`, ...) is 505. A request
///   line without a version is 400.
/// * The request-target is limited to [`HttpLimits::max_uri_len`] bytes
///   (414), checked as soon as that many target bytes have arrived.
/// * Header fields are not folded (obs-fold is 400), names are tokens,
///   values may not contain control characters other than HTAB.
/// * Framing (RFC 9112 §6): `Transfer-Encoding` together with
///   `Content-Length` is 400; `Transfer-Encoding` in an HTTP/1.0 request is
///   400 (faulty framing, §6.1); any transfer coding other than `chunked`
///   (`gzip`, `identity`, `gzip, chunked`, `chunked, gzip`) is 501 Not
///   Implemented (§6.1: a coding the server does not understand); `chunked`
///   applied twice is 400.
///   `Content-Length` must be 1*DIGIT; repeated fields or comma-separated
///   lists are accepted only if every value is the same (§6.3 rule 5).
/// * Chunked bodies: chunk sizes are hex (at most 16 digits), extensions are
///   ignored (their total size per message is limited to
///   [`HttpLimits::max_header_bytes`], else 400), chunk framing requires
///   CRLF (a bare LF there is 400), trailer fields are validated and
///   discarded; the trailer section shares the header limits (431).
/// * `Expect: 100-continue` is honoured only for HTTP/1.1 (RFC 9110 §10.1.1);
///   other expectations are ignored.
/// * A request with neither `Content-Length` nor `Transfer-Encoding` has no
///   body (RFC 9112 §6.3 rule 6), whatever its method or version.
/// * `Host` (RFC 9112 §3.2): an HTTP/1.1 request without it, any request
///   with more than one `Host` line or an invalid value is 400; HTTP/1.0 may
///   omit it.
/// * Request-target forms (§3.2): origin-form; absolute-form
///   (`http://host/path`, whose authority replaces `Host`: see
///   [`HttpRequest::host`]); `*` only with `OPTIONS`; authority-form only
///   with `CONNECT`; anything else is 400.
/// * `CONNECT` and `Connection: upgrade` get no special treatment: bytes
///   after the head are parsed as the next request.
///
/// # Example
///
/// ```
/// use muduo::http::{HttpContext, HttpLimits};
///
/// let mut ctx = HttpContext::new(HttpLimits::default());
/// // Bytes the connection has read so far (two pipelined requests, the
/// // second one incomplete).
/// let mut buf: Vec<u8> = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhel".to_vec();
/// let mut seen = Vec::new();
/// loop {
///     let parsed = ctx.parse(&buf).expect("valid input");
///     buf.drain(..parsed.consumed);
///     match parsed.request {
///         Some(req) => seen.push(req.path().to_owned()),
///         None => break, // wait for more bytes
///     }
/// }
/// assert_eq!(seen, ["/a"]);
/// buf.extend_from_slice(b"lo"); // the rest arrives
/// let req = ctx.parse(&buf).unwrap().request.unwrap();
/// assert_eq!(req.body(), b"hello");
/// ```
#[derive(Debug)]
pub struct HttpContext {
    limits: HttpLimits,
    scan: HeadScan,
    state: State,
    /// How often `httparse` ran (tests check it is not once per byte).
    #[cfg(test)]
    httparse_runs: usize,
}

#[derive(Debug)]
enum State {
    /// Waiting for a complete header section (progress in `scan`).
    Head,
    /// Reading a `Content-Length` body.
    Body { req: HttpRequest, remaining: u64 },
    /// Reading a chunked body.
    Chunked { req: HttpRequest, dec: ChunkDecoder },
    /// A previous call failed.
    Failed(HttpError),
}

impl Default for HttpContext {
    fn default() -> Self {
        Self::new(HttpLimits::default())
    }
}

impl HttpContext {
    /// A context ready for the first request of a connection.
    pub fn new(limits: HttpLimits) -> Self {
        HttpContext {
            limits,
            scan: HeadScan::default(),
            state: State::Head,
            #[cfg(test)]
            httparse_runs: 0,
        }
    }

    /// The limits this context enforces.
    pub fn limits(&self) -> &HttpLimits {
        &self.limits
    }

    /// Forgets any partial request and any error, as for a new connection.
    pub fn reset(&mut self) {
        self.scan = HeadScan::default();
        self.state = State::Head;
    }

    /// The error that poisoned this context, if any.
    pub fn error(&self) -> Option<HttpError> {
        match self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Whether a request's header section has been consumed and its body is
    /// still being received. (Whether a header section is partly buffered is
    /// visible to the caller: its buffer is non-empty.)
    pub fn in_body(&self) -> bool {
        matches!(self.state, State::Body { .. } | State::Chunked { .. })
    }

    /// Parses as much of `input` as possible. `input` must start with the
    /// first byte not yet consumed and contain every unconsumed byte passed
    /// before (see the contract in the [type documentation](HttpContext)).
    ///
    /// Returns the number of bytes consumed and at most one complete
    /// request, or the error to answer with (the context is then poisoned).
    /// Never panics, whatever the input.
    pub fn parse(&mut self, input: &[u8]) -> Result<Parsed, HttpError> {
        let res = match self.state {
            State::Failed(e) => return Err(e),
            State::Head => self.parse_head(input),
            State::Body { .. } => self.continue_body(input, 0, false),
            State::Chunked { .. } => self.continue_chunked(input, 0, false),
        };
        if let Err(e) = res {
            self.scan = HeadScan::default();
            self.state = State::Failed(e);
        }
        res
    }

    fn run_httparse(
        &mut self,
        buf: &[u8],
    ) -> Result<Option<(HttpRequest, usize)>, httparse::Error> {
        #[cfg(test)]
        {
            self.httparse_runs += 1;
        }
        parse_head_buf(buf, &self.limits)
    }

    fn parse_head(&mut self, input: &[u8]) -> Result<Parsed, HttpError> {
        let limits = self.limits;
        let win_len = input
            .len()
            .min(limits.max_header_bytes)
            .min(u32::MAX as usize);
        let win = &input[..win_len];

        if self.scan.seen > input.len() {
            // The caller broke the contract (gave back fewer bytes than
            // before); start the scan over rather than trust stale offsets.
            self.scan = HeadScan::default();
        }
        if self.scan.seen == 0 && !win.is_empty() {
            // Fast path: the whole head is very likely here already.
            if let Ok(Some((req, n))) = self.run_httparse(win) {
                check_target_len(&req, &limits)?;
                return self.finish_head(req, n, input);
            }
        }
        self.scan.seen = input.len();

        if !self.scan.scan_request_line(win, &limits)? {
            if input.len() >= limits.max_header_bytes {
                return Err(HttpError::headers_too_large(
                    "request line exceeds the header size limit",
                ));
            }
            return Ok(Parsed::need_more(0, false));
        }
        match self.scan.find_end_of_head(win) {
            Some(end) => {
                let patched = self.scan.patched(&win[..end]);
                let buf = patched.as_deref().unwrap_or(&win[..end]);
                match self.run_httparse(buf) {
                    Ok(Some((req, n))) => {
                        check_target_len(&req, &limits)?;
                        self.finish_head(req, n, input)
                    }
                    Ok(None) => Err(HttpError::bad_request("malformed header section")),
                    Err(e) => Err(map_httparse_error(e)),
                }
            }
            None if input.len() >= limits.max_header_bytes => {
                // Over the limit: say 400 if what we have is already
                // malformed, 431 otherwise.
                let patched = self.scan.patched(win);
                let buf = patched.as_deref().unwrap_or(win);
                match self.run_httparse(buf) {
                    Err(e) => Err(map_httparse_error(e)),
                    Ok(_) => Err(HttpError::headers_too_large(
                        "header section exceeds the size limit",
                    )),
                }
            }
            None => Ok(Parsed::need_more(0, false)),
        }
    }

    /// The head (`n` bytes of `input`) is parsed; decide the framing and
    /// start on the body, which may already be in `input`.
    fn finish_head(
        &mut self,
        mut req: HttpRequest,
        n: usize,
        input: &[u8],
    ) -> Result<Parsed, HttpError> {
        self.scan = HeadScan::default();
        target::resolve(&mut req)?;
        let want_continue = req.version == Version::Http11 && req.expects_continue();
        match framing(&req, &self.limits)? {
            Framing::None | Framing::Length(0) => Ok(Parsed::complete(n, req)),
            Framing::Length(len) => {
                let avail = input.len().saturating_sub(n) as u64;
                // Reserve all of it only when it is all here: a client must
                // not make us allocate a large body it never sends.
                let reserve = if avail >= len {
                    len
                } else {
                    len.min(64 * 1024)
                };
                req.body
                    .reserve_exact(usize::try_from(reserve).unwrap_or(0));
                self.state = State::Body {
                    req,
                    remaining: len,
                };
                self.continue_body(input, n, want_continue)
            }
            Framing::Chunked => {
                self.state = State::Chunked {
                    req,
                    dec: ChunkDecoder::default(),
                };
                self.continue_chunked(input, n, want_continue)
            }
        }
    }

    fn continue_body(
        &mut self,
        input: &[u8],
        offset: usize,
        want_continue: bool,
    ) -> Result<Parsed, HttpError> {
        let State::Body { req, remaining } = &mut self.state else {
            return Ok(Parsed::need_more(0, false));
        };
        let rest = input.get(offset..).unwrap_or_default();
        let take = usize::try_from(*remaining).map_or(rest.len(), |r| r.min(rest.len()));
        req.body.extend_from_slice(&rest[..take]);
        *remaining -= take as u64;
        let consumed = offset + take;
        if *remaining > 0 {
            return Ok(Parsed::need_more(consumed, want_continue));
        }
        match std::mem::replace(&mut self.state, State::Head) {
            State::Body { req, .. } => Ok(Parsed::complete(consumed, req)),
            _ => Ok(Parsed::need_more(consumed, false)),
        }
    }

    fn continue_chunked(
        &mut self,
        input: &[u8],
        offset: usize,
        want_continue: bool,
    ) -> Result<Parsed, HttpError> {
        let limits = self.limits;
        let State::Chunked { req, dec } = &mut self.state else {
            return Ok(Parsed::need_more(0, false));
        };
        let rest = input.get(offset..).unwrap_or_default();
        let (used, done) = dec.decode(rest, &mut req.body, &limits)?;
        let consumed = offset + used;
        if !done {
            return Ok(Parsed::need_more(consumed, want_continue));
        }
        match std::mem::replace(&mut self.state, State::Head) {
            State::Chunked { req, .. } => Ok(Parsed::complete(consumed, req)),
            _ => Ok(Parsed::need_more(consumed, false)),
        }
    }
}

// ---------------------------------------------------------------------------
// Header section

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum LinePhase {
    /// Skipping empty lines before the request line.
    #[default]
    Leading,
    Method {
        start: usize,
    },
    Target {
        start: usize,
    },
    Version {
        start: usize,
    },
    /// The request line ends just before `line_end`.
    Done,
}

/// Progress of the incremental header-section scan. Offsets index the
/// caller's input, which keeps its prefix between calls.
#[derive(Clone, Debug, Default)]
struct HeadScan {
    /// Input length at the previous call (0: nothing seen yet).
    seen: usize,
    /// Next request-line byte to examine.
    pos: usize,
    phase: LinePhase,
    /// Index just past the request line's LF.
    line_end: usize,
    /// Index of the minor-version digit to rewrite to `1` (HTTP/1.2..1.9).
    patch_minor: Option<usize>,
    /// Next index to search for the empty line from.
    term_pos: usize,
}

/// Longest version token examined before giving up (`HTTP/1.1` is 8).
const MAX_VERSION_TOKEN: usize = 16;

impl HeadScan {
    /// Checks the request line incrementally. `Ok(true)` once it is complete
    /// and acceptable so far, `Ok(false)` if more bytes are needed.
    fn scan_request_line(&mut self, win: &[u8], limits: &HttpLimits) -> Result<bool, HttpError> {
        let mut i = self.pos;
        while let Some(&b) = win.get(i) {
            match self.phase {
                LinePhase::Done => return Ok(true),
                LinePhase::Leading => {
                    if b != b'\r' && b != b'\n' {
                        self.phase = LinePhase::Method { start: i };
                        continue;
                    }
                }
                LinePhase::Method { start } => {
                    if b == b' ' {
                        if i == start {
                            return Err(HttpError::bad_request("empty method"));
                        }
                        self.phase = LinePhase::Target { start: i + 1 };
                    } else if !is_tchar(b) {
                        return Err(HttpError::bad_request("invalid method token"));
                    }
                }
                LinePhase::Target { start } => {
                    if b == b' ' {
                        if i == start {
                            return Err(HttpError::bad_request("empty request-target"));
                        }
                        self.phase = LinePhase::Version { start: i + 1 };
                    } else if b == b'\r' || b == b'\n' {
                        return Err(HttpError::bad_request("request line has no HTTP version"));
                    } else if !is_target_byte(b) {
                        return Err(HttpError::bad_request("invalid byte in request-target"));
                    } else if i + 1 - start > limits.max_uri_len {
                        return Err(HttpError::uri_too_long("request-target too long"));
                    }
                }
                LinePhase::Version { start } => {
                    if b == b'\r' || b == b'\n' {
                        let patch = classify_version(win.get(start..i).unwrap_or_default())?;
                        let end = if b == b'\r' {
                            match win.get(i + 1) {
                                None => {
                                    self.pos = i; // look at the CR again next time
                                    return Ok(false);
                                }
                                Some(b'\n') => i + 2,
                                Some(_) => {
                                    return Err(HttpError::bad_request(
                                        "CR not followed by LF in request line",
                                    ))
                                }
                            }
                        } else {
                            i + 1
                        };
                        self.patch_minor = patch.map(|off| start + off);
                        self.phase = LinePhase::Done;
                        self.line_end = end;
                        self.term_pos = end - 1; // the LF may start the empty line
                        self.pos = end;
                        return Ok(true);
                    } else if i - start >= MAX_VERSION_TOKEN {
                        return Err(HttpError::bad_request("malformed HTTP version"));
                    }
                }
            }
            i += 1;
        }
        self.pos = i;
        Ok(self.phase == LinePhase::Done)
    }

    /// Searches for the empty line ending the header section: an LF followed
    /// by LF or CRLF. Returns the index just past it.
    fn find_end_of_head(&mut self, win: &[u8]) -> Option<usize> {
        let mut i = self.term_pos.max(self.line_end.saturating_sub(1));
        loop {
            let lf = i + win.get(i..)?.iter().position(|&b| b == b'\n')?;
            match (win.get(lf + 1), win.get(lf + 2)) {
                (Some(b'\n'), _) => return Some(lf + 2),
                (Some(b'\r'), Some(b'\n')) => return Some(lf + 3),
                (None, _) | (Some(b'\r'), None) => {
                    // Undecidable yet: re-examine this LF next time.
                    self.term_pos = lf;
                    return None;
                }
                _ => i = lf + 1,
            }
            self.term_pos = i;
        }
    }

    /// A copy of `buf` with the minor version rewritten, for `HTTP/1.2`..`1.9`.
    fn patched(&self, buf: &[u8]) -> Option<Vec<u8>> {
        let at = self.patch_minor?;
        let mut copy = buf.to_vec();
        *copy.get_mut(at)? = b'1';
        Some(copy)
    }
}

/// Classifies the version token of a complete request line. Returns the
/// offset of the minor digit if it must be rewritten to `1`.
fn classify_version(tok: &[u8]) -> Result<Option<usize>, HttpError> {
    let bad = HttpError::bad_request("malformed HTTP version");
    let Some(nums) = tok.strip_prefix(b"HTTP/") else {
        return Err(bad);
    };
    let (major, minor) = match nums.iter().position(|&b| b == b'.') {
        Some(dot) => (&nums[..dot], Some(&nums[dot + 1..])),
        None => (nums, None),
    };
    let all_digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    if !all_digits(major) || !minor.is_none_or(all_digits) {
        return Err(bad);
    }
    if major != b"1" {
        return Err(HttpError::version_not_supported(
            "only HTTP/1.x is supported",
        ));
    }
    match minor {
        Some([b'0' | b'1']) => Ok(None),
        // "HTTP/1." is 5 bytes, the minor digit follows.
        Some([_]) => Ok(Some(7)),
        _ => Err(bad),
    }
}

fn map_httparse_error(e: httparse::Error) -> HttpError {
    use httparse::Error as E;
    match e {
        E::TooManyHeaders => HttpError::headers_too_large("too many header fields"),
        E::HeaderName => HttpError::bad_request("invalid header name"),
        E::HeaderValue => HttpError::bad_request("invalid header value"),
        E::NewLine => HttpError::bad_request("invalid line ending"),
        E::Version => HttpError::bad_request("malformed HTTP version"),
        E::Token => HttpError::bad_request("malformed request line"),
        _ => HttpError::bad_request("malformed request"),
    }
}

fn check_target_len(req: &HttpRequest, limits: &HttpLimits) -> Result<(), HttpError> {
    if req.target().len() > limits.max_uri_len {
        return Err(HttpError::uri_too_long("request-target too long"));
    }
    Ok(())
}

/// Position of `part` inside `base`, if it is a sub-slice of it.
fn span_in(base: &[u8], part: &[u8]) -> Option<Span> {
    let start = (part.as_ptr() as usize).checked_sub(base.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    if end > base.len() {
        return None;
    }
    Some(Span {
        start: u32::try_from(start).ok()?,
        end: u32::try_from(end).ok()?,
    })
}

/// Headers parsed on the stack when the limit allows.
const STACK_HEADERS: usize = 128;

/// Runs `httparse` on `buf`. `Ok(None)`: incomplete.
fn parse_head_buf(
    buf: &[u8],
    limits: &HttpLimits,
) -> Result<Option<(HttpRequest, usize)>, httparse::Error> {
    let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
    let mut heap = Vec::new();
    let slots: &mut [MaybeUninit<httparse::Header<'_>>] = if limits.max_headers <= STACK_HEADERS {
        &mut stack[..limits.max_headers]
    } else {
        heap.resize_with(limits.max_headers, MaybeUninit::uninit);
        &mut heap
    };
    let mut parsed = httparse::Request::new(&mut []);
    let n = match parsed.parse_with_uninit_headers(buf, slots)? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let malformed = httparse::Error::Token;
    let (Some(method), Some(target), Some(minor)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(malformed);
    };
    let head = buf.get(..n).ok_or(malformed)?;
    let target_span = span_in(head, target.as_bytes()).ok_or(malformed)?;
    let (path, query) = match target.find('?') {
        Some(q) => {
            let q = q as u32; // target is inside `head`, whose length fits in u32
            (
                Span {
                    start: target_span.start,
                    end: target_span.start + q,
                },
                Some(Span {
                    start: target_span.start + q + 1,
                    end: target_span.end,
                }),
            )
        }
        None => (target_span, None),
    };
    let mut headers = Vec::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        headers.push(HeaderSpan {
            name: span_in(head, h.name.as_bytes()).ok_or(malformed)?,
            // An empty value may point just past the line; keep it empty.
            value: span_in(head, h.value).unwrap_or(Span::EMPTY),
        });
    }
    let req = HttpRequest {
        method: Method::from_token(method),
        version: if minor == 0 {
            Version::Http10
        } else {
            Version::Http11
        },
        head: head.to_vec(),
        path,
        query,
        authority: None,
        headers,
        body: Vec::new(),
    };
    Ok(Some((req, n)))
}

// ---------------------------------------------------------------------------
// Body framing

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
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

fn content_length(req: &HttpRequest) -> Result<Option<u64>, HttpError> {
    let mut len = None;
    for value in req.header_values("content-length") {
        for item in value.split(|&b| b == b',') {
            let item = trim_ows(item);
            if item.is_empty() {
                return Err(HttpError::bad_request("empty Content-Length"));
            }
            let mut n: u64 = 0;
            for &b in item {
                if !b.is_ascii_digit() {
                    return Err(HttpError::bad_request("invalid Content-Length"));
                }
                n = n
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(b - b'0')))
                    .ok_or(HttpError::bad_request("Content-Length overflow"))?;
            }
            if len.is_some_and(|l| l != n) {
                return Err(HttpError::bad_request("conflicting Content-Length values"));
            }
            len = Some(n);
        }
    }
    Ok(len)
}

fn framing(req: &HttpRequest, limits: &HttpLimits) -> Result<Framing, HttpError> {
    let mut has_te = false;
    let mut chunked = 0usize;
    let mut last_is_chunked = false;
    let mut other_coding = false;
    for value in req.header_values("transfer-encoding") {
        has_te = true;
        for item in value.split(|&b| b == b',') {
            let item = trim_ows(item);
            if item.is_empty() {
                continue;
            }
            let name = trim_ows(item.split(|&b| b == b';').next().unwrap_or_default());
            last_is_chunked = name.eq_ignore_ascii_case(b"chunked");
            if last_is_chunked {
                chunked += 1;
            } else {
                other_coding = true;
            }
        }
    }
    let length = content_length(req)?;
    if has_te {
        if length.is_some() {
            return Err(HttpError::bad_request(
                "both Transfer-Encoding and Content-Length",
            ));
        }
        if req.version == Version::Http10 {
            return Err(HttpError::bad_request(
                "Transfer-Encoding in an HTTP/1.0 request",
            ));
        }
        // A coding we do not implement is 501 (RFC 9112 section 6.1), checked
        // before the framing rules so `gzip` alone is 501 rather than 400.
        if other_coding {
            return Err(HttpError::not_implemented("unsupported transfer coding"));
        }
        if !last_is_chunked {
            return Err(HttpError::bad_request(
                "chunked is not the final transfer coding",
            ));
        }
        if chunked > 1 {
            return Err(HttpError::bad_request("chunked applied more than once"));
        }
        return Ok(Framing::Chunked);
    }
    match length {
        Some(n) if n > limits.max_body_bytes as u64 => Err(HttpError::body_too_large(
            "Content-Length exceeds the body limit",
        )),
        Some(n) => Ok(Framing::Length(n)),
        None => Ok(Framing::None),
    }
}

// ---------------------------------------------------------------------------
// Chunked decoding

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum ChunkState {
    /// Expecting the first hex digit of a chunk size.
    #[default]
    SizeStart,
    /// In the hex digits.
    Size,
    /// Whitespace after the size (before `;` or CR).
    SizeWs,
    /// In a chunk extension.
    Ext,
    /// Expecting the LF ending the size line.
    SizeLf,
    /// In chunk data (`size` bytes left).
    Data,
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// At the start of a trailer line (or of the final CRLF).
    TrailerStart,
    /// In a trailer field name.
    TrailerName,
    /// In a trailer field value.
    TrailerValue,
    /// Expecting the LF ending a trailer line.
    TrailerLf,
    /// Expecting the LF ending the message.
    EndLf,
}

/// Byte-at-a-time chunked decoder: every byte is examined once and consumed
/// immediately, so nothing is rescanned across calls.
#[derive(Clone, Debug, Default)]
struct ChunkDecoder {
    state: ChunkState,
    /// Size of the chunk being read, then bytes left in it.
    size: u64,
    digits: u8,
    ext_bytes: usize,
    trailer_bytes: usize,
    trailers: usize,
}

fn hex_value(b: u8) -> Option<u64> {
    match b {
        b'0'..=b'9' => Some(u64::from(b - b'0')),
        b'a'..=b'f' => Some(u64::from(b - b'a' + 10)),
        b'A'..=b'F' => Some(u64::from(b - b'A' + 10)),
        _ => None,
    }
}

/// Most hex digits in a chunk size (64 bits).
const MAX_CHUNK_DIGITS: u8 = 16;

impl ChunkDecoder {
    /// Decodes from `input`, appending data to `body`. Returns the bytes
    /// consumed and whether the message (trailers included) is complete.
    fn decode(
        &mut self,
        input: &[u8],
        body: &mut Vec<u8>,
        limits: &HttpLimits,
    ) -> Result<(usize, bool), HttpError> {
        use ChunkState as S;
        let bad = HttpError::bad_request;
        let mut i = 0;
        while i < input.len() {
            if self.state == S::Data {
                let rest = &input[i..];
                let n = usize::try_from(self.size).map_or(rest.len(), |s| s.min(rest.len()));
                body.extend_from_slice(&rest[..n]);
                i += n;
                self.size -= n as u64;
                if self.size == 0 {
                    self.state = S::DataCr;
                }
                continue;
            }
            let b = input[i];
            i += 1;
            match self.state {
                S::SizeStart | S::Size => match hex_value(b) {
                    Some(d) => {
                        if self.state == S::SizeStart {
                            self.size = 0;
                            self.digits = 0;
                            self.state = S::Size;
                        }
                        self.digits += 1;
                        if self.digits > MAX_CHUNK_DIGITS {
                            return Err(bad("chunk size too long"));
                        }
                        self.size = (self.size << 4) | d;
                        if self.size.saturating_add(body.len() as u64)
                            > limits.max_body_bytes as u64
                        {
                            return Err(HttpError::body_too_large(
                                "chunked body exceeds the body limit",
                            ));
                        }
                    }
                    None if self.state == S::SizeStart => {
                        return Err(bad("invalid chunk size"));
                    }
                    None => match b {
                        b';' => self.state = S::Ext,
                        b' ' | b'\t' => self.state = S::SizeWs,
                        b'\r' => self.state = S::SizeLf,
                        _ => return Err(bad("invalid chunk size")),
                    },
                },
                S::SizeWs | S::Ext => {
                    match (self.state, b) {
                        (_, b'\r') => self.state = S::SizeLf,
                        (S::SizeWs, b' ' | b'\t') => {}
                        (S::SizeWs, b';') => self.state = S::Ext,
                        (S::Ext, b) if is_value_byte(b) => {}
                        _ => return Err(bad("invalid chunk extension")),
                    }
                    self.ext_bytes += 1;
                    if self.ext_bytes > limits.max_header_bytes {
                        return Err(bad("chunk extensions too long"));
                    }
                }
                S::SizeLf => {
                    if b != b'\n' {
                        return Err(bad("chunk size line not ended by CRLF"));
                    }
                    self.state = if self.size == 0 {
                        S::TrailerStart
                    } else {
                        S::Data
                    };
                }
                S::Data => {}
                S::DataCr => {
                    if b != b'\r' {
                        return Err(bad("chunk data not followed by CRLF"));
                    }
                    self.state = S::DataLf;
                }
                S::DataLf => {
                    if b != b'\n' {
                        return Err(bad("chunk data not followed by CRLF"));
                    }
                    self.state = S::SizeStart;
                }
                S::TrailerStart | S::TrailerName | S::TrailerValue | S::TrailerLf | S::EndLf => {
                    self.trailer_bytes += 1;
                    if self.trailer_bytes > limits.max_header_bytes {
                        return Err(HttpError::headers_too_large(
                            "trailer section exceeds the size limit",
                        ));
                    }
                    match (self.state, b) {
                        (S::TrailerStart, b'\r') => self.state = S::EndLf,
                        (S::TrailerStart, b) if is_tchar(b) => {
                            self.trailers += 1;
                            if self.trailers > limits.max_headers {
                                return Err(HttpError::headers_too_large(
                                    "too many trailer fields",
                                ));
                            }
                            self.state = S::TrailerName;
                        }
                        (S::TrailerName, b':') => self.state = S::TrailerValue,
                        (S::TrailerName, b) if is_tchar(b) => {}
                        (S::TrailerValue, b'\r') => self.state = S::TrailerLf,
                        (S::TrailerValue, b) if is_value_byte(b) => {}
                        (S::TrailerLf, b'\n') => self.state = S::TrailerStart,
                        (S::EndLf, b'\n') => return Ok((i, true)),
                        _ => return Err(bad("malformed trailer section")),
                    }
                }
            }
        }
        Ok((i, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(input: &[u8]) -> Result<Parsed, HttpError> {
        HttpContext::default().parse(input)
    }

    #[test]
    fn httparse_not_rerun_per_byte() {
        let mut input = b"POST /some/path?q=1 HTTP/1.1\r\nHost: h\r\n".to_vec();
        for i in 0..40 {
            input.extend_from_slice(format!("X-Header-{i}: value value value\r\n").as_bytes());
        }
        input.extend_from_slice(b"Content-Length: 3\r\n\r\nabc");
        let mut ctx = HttpContext::default();
        let mut got = None;
        for n in 1..=input.len() {
            let p = ctx.parse(&input[..n]).unwrap();
            if p.consumed == 0 {
                continue; // head still incomplete
            }
            // The head was consumed as soon as it completed.
            assert_eq!(&input[p.consumed - 4..p.consumed], b"\r\n\r\n");
            assert!(ctx.in_body());
            got = ctx.parse(&input[p.consumed..]).unwrap().request;
            break;
        }
        assert_eq!(got.unwrap().body(), b"abc");
        // One fast-path attempt on the first byte, one full parse at the end.
        assert_eq!(ctx.httparse_runs, 2);
    }

    #[test]
    fn version_classification() {
        assert_eq!(classify_version(b"HTTP/1.1"), Ok(None));
        assert_eq!(classify_version(b"HTTP/1.0"), Ok(None));
        assert_eq!(classify_version(b"HTTP/1.2"), Ok(Some(7)));
        assert_eq!(classify_version(b"HTTP/2.0").unwrap_err().status, 505);
        assert_eq!(classify_version(b"HTTP/2").unwrap_err().status, 505);
        assert_eq!(classify_version(b"HTTP/0.9").unwrap_err().status, 505);
        assert_eq!(classify_version(b"HTTP/1").unwrap_err().status, 400);
        assert_eq!(classify_version(b"HTTP/1.10").unwrap_err().status, 400);
        assert_eq!(classify_version(b"HTTP/1.x").unwrap_err().status, 400);
        assert_eq!(classify_version(b"http/1.1").unwrap_err().status, 400);
        assert_eq!(classify_version(b"HTTP/").unwrap_err().status, 400);
    }

    #[test]
    fn end_of_head_scan_resumes() {
        let mut scan = HeadScan::default();
        let full = b"GET / HTTP/1.1\r\nHost: h\r\nA: b\r\n\r\n";
        for n in 0..full.len() {
            let win = &full[..n];
            let line = scan.scan_request_line(win, &HttpLimits::default()).unwrap();
            if line {
                assert_eq!(scan.find_end_of_head(win), None, "n={n}");
            }
        }
        assert!(scan
            .scan_request_line(full, &HttpLimits::default())
            .unwrap());
        assert_eq!(scan.find_end_of_head(full), Some(full.len()));
    }

    #[test]
    fn bare_lf_head() {
        let p = one(b"GET / HTTP/1.1\nHost: x\n\n").unwrap();
        assert_eq!(p.consumed, 24);
        assert_eq!(p.request.unwrap().header("host"), Some("x"));
    }

    #[test]
    fn chunk_decoder_direct() {
        let mut d = ChunkDecoder::default();
        let mut body = Vec::new();
        let input = b"3;a=b\r\nabc\r\nA\r\n0123456789\r\n0\r\nX: y\r\n\r\nrest";
        let (n, done) = d.decode(input, &mut body, &HttpLimits::default()).unwrap();
        assert!(done);
        assert_eq!(&input[n..], b"rest");
        assert_eq!(body, b"abc0123456789");
    }

    #[test]
    fn chunk_size_digits_limit() {
        let mut d = ChunkDecoder::default();
        let mut body = Vec::new();
        let limits = HttpLimits {
            max_body_bytes: usize::MAX,
            ..HttpLimits::default()
        };
        let e = d
            .decode(b"00000000000000001\r\n", &mut body, &limits)
            .unwrap_err();
        assert_eq!(e.status, 400);
        let mut d = ChunkDecoder::default();
        assert!(d
            .decode(b"ffffffffffffffff\r\n", &mut body, &limits)
            .is_ok());
    }

    #[test]
    fn span_outside() {
        let a = [0u8; 4];
        let b = [0u8; 4];
        assert!(span_in(&a, &a[1..3]).is_some());
        assert!(span_in(&a, &b).is_none() || span_in(&b, &a).is_none());
    }
}

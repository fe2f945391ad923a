//! Tests of the I/O-free HTTP/1.1 layer: parser (`HttpContext`) and
//! serializer (`HttpResponse`).

use muduo::http::{
    HttpContext, HttpError, HttpLimits, HttpRequest, HttpResponse, Method, Parsed, Version,
    CONTINUE_RESPONSE,
};
use proptest::prelude::*;

/// Everything observable from feeding some input to a context.
#[derive(Debug, PartialEq)]
struct Outcome {
    requests: Vec<HttpRequest>,
    error: Option<HttpError>,
    continues: usize,
    leftover: Vec<u8>,
}

/// Feeds `chunks` one after the other as a connection would: bytes are
/// appended to a buffer, `parse` is called with all unconsumed bytes until
/// it returns no request, consumed bytes are dropped.
fn feed<'a>(limits: HttpLimits, chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut ctx = HttpContext::new(limits);
    let mut buf = Vec::new();
    let mut out = Outcome {
        requests: Vec::new(),
        error: None,
        continues: 0,
        leftover: Vec::new(),
    };
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match ctx.parse(&buf) {
                Ok(Parsed {
                    consumed,
                    request,
                    expect_continue,
                }) => {
                    assert!(consumed <= buf.len());
                    buf.drain(..consumed);
                    out.continues += usize::from(expect_continue);
                    match request {
                        Some(r) => out.requests.push(r),
                        None => break,
                    }
                }
                Err(e) => {
                    // Poisoned: the same error again.
                    assert_eq!(ctx.parse(&buf), Err(e));
                    assert_eq!(ctx.error(), Some(e));
                    // (How much was buffered at that point depends on the
                    // split, so it is not part of the outcome.)
                    out.error = Some(e);
                    return out;
                }
            }
        }
    }
    out.leftover = buf;
    out
}

fn whole(input: &[u8]) -> Outcome {
    feed(HttpLimits::default(), [input])
}

fn bytewise(input: &[u8]) -> Outcome {
    feed(HttpLimits::default(), input.chunks(1))
}

fn split_at_points<'a>(input: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    let mut pts: Vec<usize> = points.iter().map(|p| p % (input.len() + 1)).collect();
    pts.sort_unstable();
    let mut chunks = Vec::new();
    let mut last = 0;
    for p in pts {
        chunks.push(&input[last..p]);
        last = p;
    }
    chunks.push(&input[last..]);
    chunks
}

fn one(input: &[u8]) -> HttpRequest {
    let o = whole(input);
    assert_eq!(o.error, None, "input {:?}", String::from_utf8_lossy(input));
    assert_eq!(o.requests.len(), 1);
    assert!(o.leftover.is_empty());
    o.requests.into_iter().next().unwrap()
}

fn status_of(input: &[u8]) -> u16 {
    status_with(HttpLimits::default(), input)
}

fn status_with(limits: HttpLimits, input: &[u8]) -> u16 {
    let o = feed(limits, [input]);
    let whole_status = o.error.map_or(0, |e| e.status);
    // Same verdict when the bytes trickle in.
    let b = feed(limits, input.chunks(1));
    assert_eq!(b.error.map_or(0, |e| e.status), whole_status);
    whole_status
}

// ---------------------------------------------------------------------------
// Basic parsing

#[test]
fn simple_get() {
    let input = b"GET /index.html?a=1&b=2 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n";
    let mut ctx = HttpContext::default();
    let p = ctx.parse(input).unwrap();
    assert_eq!(p.consumed, input.len());
    assert!(!p.expect_continue);
    let req = p.request.unwrap();
    assert_eq!(req.method(), &Method::Get);
    assert_eq!(req.path(), "/index.html");
    assert_eq!(req.query(), Some("a=1&b=2"));
    assert_eq!(req.target(), "/index.html?a=1&b=2");
    assert_eq!(req.version(), Version::Http11);
    assert_eq!(req.header("host"), Some("example.com"));
    assert_eq!(req.header_count(), 2);
    assert!(req.body().is_empty());
    assert!(req.keep_alive());
    assert!(!ctx.in_body());
}

#[test]
fn no_query_and_empty_query() {
    let r = one(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!((r.path(), r.query()), ("/", None));
    let r = one(b"GET /x? HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!((r.path(), r.query()), ("/x", Some("")));
    let r = one(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!((r.method(), r.path()), (&Method::Options, "*"));
    let r = one(b"PURGE /c HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(r.method(), &Method::Other("PURGE".into()));
}

#[test]
fn post_with_content_length() {
    let r = one(b"POST /submit HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world");
    assert_eq!(r.method(), &Method::Post);
    assert_eq!(r.body(), b"hello world");
    // Body arriving in pieces: the head is consumed first, then the body.
    let mut ctx = HttpContext::default();
    let head = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhe";
    let p = ctx.parse(head).unwrap();
    assert_eq!(p.consumed, head.len());
    assert!(p.request.is_none());
    assert!(ctx.in_body());
    let p = ctx.parse(b"llo").unwrap();
    assert_eq!(p.consumed, 3);
    assert_eq!(p.request.unwrap().into_body(), b"hello");
}

#[test]
fn content_length_does_not_swallow_next_request() {
    let o = whole(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /next HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(o.requests.len(), 2);
    assert_eq!(o.requests[0].body(), b"abc");
    assert_eq!(o.requests[1].path(), "/next");
}

#[test]
fn repeated_equal_content_length_is_accepted() {
    let r =
        one(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(r.body(), b"abc");
    let r = one(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    assert!(r.body().is_empty());
}

#[test]
fn chunked_with_extensions_and_trailers() {
    let input = b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
        5;name=value;q=\"quoted; str\"\r\nhello\r\n\
        6 ; ext\r\n world\r\n\
        A\r\n0123456789\r\n\
        0;last\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n";
    let r = one(input);
    assert_eq!(r.body(), b"hello world0123456789");
    // Trailers are discarded, not merged into the headers.
    assert_eq!(r.header("x-checksum"), None);
    assert_eq!(bytewise(input).requests, vec![r]);
}

#[test]
fn chunked_minimal_and_uppercase_hex_and_coding_case() {
    let r = one(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n1F\r\n0123456789012345678901234567890\r\n0\r\n\r\n");
    assert_eq!(r.body().len(), 31);
    let r = one(b"POST / HTTP/1.1\r\nHost: h\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n");
    assert!(r.body().is_empty());
}

#[test]
fn chunked_progress_is_consumed() {
    let mut ctx = HttpContext::default();
    let p = ctx
        .parse(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab")
        .unwrap();
    assert!(p.request.is_none());
    assert_eq!(p.consumed, 61);
    let p = ctx.parse(b"cd\r\n0\r\n").unwrap();
    assert_eq!(p.consumed, 7);
    assert!(p.request.is_none());
    let p = ctx.parse(b"\r\nGET").unwrap();
    assert_eq!(p.consumed, 2);
    assert_eq!(p.request.unwrap().body(), b"abcd");
}

#[test]
fn header_lookup_is_case_insensitive_and_keeps_duplicates() {
    let r = one(b"GET / HTTP/1.1\r\nHost: h\r\nX-Multi: a\r\nContent-TYPE:  text/plain \r\nx-multi: b\r\nEmpty:\r\n\r\n");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("CONTENT-TYPE"), Some("text/plain"));
    assert_eq!(r.header_bytes("Content-Type"), Some(&b"text/plain"[..]));
    assert_eq!(r.header("X-MULTI"), Some("a"));
    assert_eq!(
        r.header_values("x-multi").collect::<Vec<_>>(),
        vec![&b"a"[..], &b"b"[..]]
    );
    assert_eq!(r.header("empty"), Some(""));
    assert_eq!(r.header("missing"), None);
    let names: Vec<&str> = r.headers().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["Host", "X-Multi", "Content-TYPE", "x-multi", "Empty"]
    );
    assert_eq!(r.headers().len(), 5);
}

#[test]
fn non_utf8_header_value() {
    let r = one(b"GET / HTTP/1.1\r\nHost: h\r\nX-Bin: \xff\xfe\r\n\r\n");
    assert_eq!(r.header("x-bin"), None);
    assert_eq!(r.header_bytes("x-bin"), Some(&b"\xff\xfe"[..]));
}

#[test]
fn leading_empty_lines_are_skipped() {
    let o =
        whole(b"\r\n\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(o.error, None);
    let paths: Vec<&str> = o.requests.iter().map(|r| r.path()).collect();
    assert_eq!(paths, ["/a", "/b"]);
}

#[test]
fn bare_lf_line_endings_in_head() {
    let r = one(b"GET /lf HTTP/1.1\nHost: h\nContent-Length: 2\n\nok");
    assert_eq!(r.header("host"), Some("h"));
    assert_eq!(r.body(), b"ok");
}

// ---------------------------------------------------------------------------
// Pipelining and splitting

fn pipelined_100() -> (Vec<u8>, Vec<String>) {
    let mut input = Vec::new();
    let mut paths = Vec::new();
    for i in 0..100 {
        let path = format!("/req/{i}");
        match i % 3 {
            0 => input.extend_from_slice(format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes()),
            1 => input.extend_from_slice(
                format!("POST {path} HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nb{i:03}").as_bytes(),
            ),
            _ => input.extend_from_slice(
                format!("PUT {path} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nc{}\r\n0\r\n\r\n", i % 10)
                    .as_bytes(),
            ),
        }
        paths.push(path);
    }
    (input, paths)
}

#[test]
fn pipelined_100_requests_in_one_input() {
    let (input, paths) = pipelined_100();
    let o = whole(&input);
    assert_eq!(o.error, None);
    assert!(o.leftover.is_empty());
    let got: Vec<&str> = o.requests.iter().map(|r| r.path()).collect();
    assert_eq!(got, paths);
    assert_eq!(o.requests[1].body(), b"b001");
    assert_eq!(o.requests[2].body(), b"c2");
    // One call per request when everything is already buffered.
    let mut ctx = HttpContext::default();
    let mut rest = &input[..];
    for path in &paths {
        let p = ctx.parse(rest).unwrap();
        assert_eq!(p.request.unwrap().path(), path);
        rest = &rest[p.consumed..];
    }
    assert!(rest.is_empty());
}

#[test]
fn byte_at_a_time_gives_same_requests() {
    let (input, _) = pipelined_100();
    let a = whole(&input);
    let b = bytewise(&input);
    assert_eq!(a, b);
    assert_eq!(b.requests.len(), 100);
}

#[test]
fn misbehaving_caller_does_not_panic() {
    // Passing fewer bytes than before (contract violation) restarts the scan.
    let mut ctx = HttpContext::default();
    assert!(ctx
        .parse(b"GET /long/path HTTP/1.1\r\nHost: h\r\nHo")
        .unwrap()
        .request
        .is_none());
    assert!(ctx.parse(b"GET").unwrap().request.is_none());
    let r = ctx
        .parse(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap()
        .request
        .unwrap();
    assert_eq!(r.path(), "/");
    assert!(ctx.parse(b"").unwrap().request.is_none());
}

// ---------------------------------------------------------------------------
// Versions and keep-alive

#[test]
fn higher_minor_version_is_served_as_1_1() {
    for v in ["1.2", "1.9"] {
        let input = format!("GET /v HTTP/{v}\r\nHost: h\r\n\r\n");
        let r = one(input.as_bytes());
        assert_eq!(r.version(), Version::Http11);
        assert_eq!(r.path(), "/v");
        assert_eq!(bytewise(input.as_bytes()).requests, vec![r]);
    }
}

#[test]
fn http10_keep_alive_rules() {
    assert!(!one(b"GET / HTTP/1.0\r\n\r\n").keep_alive());
    let r = one(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(r.version(), Version::Http10);
    assert!(r.keep_alive());
    assert!(one(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive());
    assert!(!one(b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").keep_alive());
    assert!(!one(b"GET / HTTP/1.0\r\nConnection: upgrade\r\n\r\n").keep_alive());
}

#[test]
fn http11_connection_token_lists() {
    assert!(one(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").keep_alive());
    assert!(!one(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").keep_alive());
    assert!(!one(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: CLOSE\r\n\r\n").keep_alive());
    assert!(
        !one(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade ,\tclose \r\n\r\n").keep_alive()
    );
    assert!(
        !one(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: te\r\nConnection: close\r\n\r\n")
            .keep_alive()
    );
    assert!(one(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, te\r\n\r\n").keep_alive());
    assert!(one(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n").keep_alive());
    assert!(one(b"GET / HTTP/1.1\r\nHost: h\r\nX-Connection: close\r\n\r\n").keep_alive());
}

// ---------------------------------------------------------------------------
// Expect: 100-continue

#[test]
fn expect_continue_reported_once() {
    let mut ctx = HttpContext::default();
    let p = ctx
        .parse(b"PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        .unwrap();
    assert!(p.expect_continue);
    assert!(p.request.is_none());
    let p = ctx.parse(b"ab").unwrap();
    assert!(!p.expect_continue);
    let p = ctx.parse(b"cd").unwrap();
    assert!(!p.expect_continue);
    assert_eq!(p.request.unwrap().body(), b"abcd");
}

#[test]
fn expect_continue_cases() {
    let continues = |input: &[u8]| whole(input).continues;
    // Body already complete: no need for 100.
    assert_eq!(
        continues(
            b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx"
        ),
        0
    );
    // No body.
    assert_eq!(
        continues(
            b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n"
        ),
        0
    );
    assert_eq!(
        continues(b"GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n"),
        0
    );
    // HTTP/1.0 clients never get 100 (RFC 9110 §10.1.1).
    assert_eq!(
        continues(b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"),
        0
    );
    // Case-insensitive, chunked bodies too.
    assert_eq!(
        continues(b"PUT / HTTP/1.1\r\nHost: h\r\nexpect: 100-Continue\r\nTransfer-Encoding: chunked\r\n\r\n"),
        1
    );
    // Partial body in the same read still needs the 100.
    assert_eq!(
        continues(
            b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nab"
        ),
        1
    );
    // Byte-at-a-time: still once.
    let input =
        b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc";
    let o = bytewise(input);
    assert_eq!((o.continues, o.requests.len()), (1, 1));
    assert!(o.requests[0].expects_continue());
    assert_eq!(CONTINUE_RESPONSE, b"HTTP/1.1 100 Continue\r\n\r\n");
}

// ---------------------------------------------------------------------------
// Errors

#[test]
fn errors_400_malformed() {
    let cases: &[&[u8]] = &[
        b"GET/ HTTP/1.1\r\nHost: h\r\n\r\n",
        b" GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1 \r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET / FOO/1.1\r\n\r\n",
        b"GET / HTTP/1\r\n\r\n",
        b"GET / HTTP/1.1\rX\r\n\r\n",
        b"G\x01T / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /a\x7fb HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /\xff HTTP/1.1\r\nHost: h\r\n\r\n", // not UTF-8
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", // TLS ClientHello
        b"GET / HTTP/1.1\r\nHost: h\r\nNo colon\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nName : v\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nA: b\r\n folded\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nA: b\x00c\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nA: b\rc\r\n\r\n",
    ];
    for &c in cases {
        assert_eq!(status_of(c), 400, "{:?}", String::from_utf8_lossy(c));
    }
}

#[test]
fn errors_400_framing() {
    let cases: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\nhello!",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5,\r\n\r\nhello",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        // chunk framing
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nZ\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;a\x01b\r\nabc\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3 x\r\nabc\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000000001\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nBad Trailer: x\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: x\r\n folded\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: x\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n",
    ];
    for &c in cases {
        assert_eq!(status_of(c), 400, "{:?}", String::from_utf8_lossy(c));
    }
}

#[test]
fn chunk_extensions_total_is_limited() {
    let limits = HttpLimits {
        max_header_bytes: 64,
        ..HttpLimits::default()
    };
    let mut input = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..10 {
        input.extend_from_slice(b"1;0123456789\r\nx\r\n");
    }
    assert_eq!(status_with(limits, &input), 400);
}

#[test]
fn error_413_body_too_large() {
    let limits = HttpLimits {
        max_body_bytes: 10,
        ..HttpLimits::default()
    };
    assert_eq!(
        status_with(
            limits,
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n"
        ),
        413
    );
    assert_eq!(
        status_with(
            limits,
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789"
        ),
        0
    );
    // Chunked: announced by a chunk size, before the data arrives.
    assert_eq!(
        status_with(
            limits,
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n5\r\n"
        ),
        413
    );
    assert_eq!(
        status_with(
            limits,
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\n"
        ),
        413
    );
    assert_eq!(
        status_with(
            limits,
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n"
        ),
        0
    );
    assert_eq!(
        status_of(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\n\r\n"),
        413
    );
}

#[test]
fn error_414_uri_too_long() {
    let long = "a".repeat(5000);
    let complete = format!("GET /{long} HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(status_of(complete.as_bytes()), 414);
    // The request line alone, not yet finished.
    let partial = format!("GET /{long}");
    let e = whole(partial.as_bytes()).error.unwrap();
    assert_eq!((e.status, e.reason), (414, "URI Too Long"));
    // Exactly at the limit is fine.
    let limits = HttpLimits {
        max_uri_len: 10,
        ..HttpLimits::default()
    };
    assert_eq!(
        status_with(limits, b"GET /123456789 HTTP/1.1\r\nHost: h\r\n\r\n"),
        0
    );
    assert_eq!(
        status_with(limits, b"GET /1234567890 HTTP/1.1\r\nHost: h\r\n\r\n"),
        414
    );
    assert_eq!(status_with(limits, b"GET /1234567?90"), 414);
}

#[test]
fn error_431_header_section_too_large() {
    // Incomplete and already over the limit.
    let mut big = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
    while big.len() <= 8192 {
        big.extend_from_slice(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
    }
    assert_eq!(status_of(&big), 431);
    // Complete, but the empty line lands past the limit.
    let limits = HttpLimits {
        max_header_bytes: 49,
        ..HttpLimits::default()
    };
    let at_limit = b"GET / HTTP/1.1\r\nHost: h\r\nA: 01234567890123456\r\n\r\n";
    assert_eq!(at_limit.len(), 49);
    assert_eq!(status_with(limits, at_limit), 0);
    assert_eq!(
        status_with(
            limits,
            b"GET / HTTP/1.1\r\nHost: h\r\nA: 012345678901234567\r\n\r\n"
        ),
        431
    );
    // A request line longer than the whole limit.
    assert_eq!(status_with(limits, &[b'G'; 100]), 431);
    // Too many header fields.
    let limits = HttpLimits {
        max_headers: 3,
        ..HttpLimits::default()
    };
    assert_eq!(
        status_with(limits, b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n"),
        0
    );
    assert_eq!(
        status_with(
            limits,
            b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"
        ),
        431
    );
    // Trailers share the limits.
    assert_eq!(
        status_with(
            limits,
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"
        ),
        431
    );
    let limits = HttpLimits {
        max_header_bytes: 64,
        ..HttpLimits::default()
    };
    let mut trailer =
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n".to_vec();
    trailer.extend_from_slice(&[b'a'; 70]);
    assert_eq!(status_with(limits, &trailer), 431);
}

#[test]
fn error_431_vs_400_at_the_limit() {
    // Garbage in the headers without an empty line: 400 even at the limit.
    let mut input = b"GET / HTTP/1.1\r\nHost: h\r\nBad\x01Header: x\r\n".to_vec();
    input.resize(9000, b'a');
    assert_eq!(status_of(&input), 400);
}

#[test]
fn error_501_unsupported_coding() {
    assert_eq!(
        status_of(
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
        ),
        501
    );
    assert_eq!(
        status_of(
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        ),
        501
    );
    // Unknown codings are 501 whatever their position (the issue's rule).
    for te in ["gzip", "identity", "chunked, gzip", "br"] {
        let req = format!("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: {te}\r\n\r\n");
        assert_eq!(status_of(req.as_bytes()), 501, "{te}");
    }
}

#[test]
fn error_505_versions() {
    let cases: &[&[u8]] = &[
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET / HTTP/2.0\r\n\r\n",
        b"GET / HTTP/3.0\r\n\r\n",
        b"GET / HTTP/0.9\r\n\r\n",
        b"GET / HTTP/2\r\n\r\n",
        b"GET / HTTP/11.1\r\n\r\n",
    ];
    for &c in cases {
        let e = whole(c).error.unwrap();
        assert_eq!((e.status, e.reason), (505, "HTTP Version Not Supported"));
        assert_eq!(status_of(c), 505);
    }
    // The preface is detected on its request line alone.
    assert_eq!(whole(b"PRI * HTTP/2.0\r\n").error.unwrap().status, 505);
}

#[test]
fn poisoned_after_error() {
    let mut ctx = HttpContext::default();
    let e = ctx.parse(b"GET / HTTP/2.0\r\n\r\n").unwrap_err();
    assert_eq!(ctx.parse(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"), Err(e));
    ctx.reset();
    assert!(ctx
        .parse(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap()
        .request
        .is_some());
}

#[test]
fn error_display() {
    let e = whole(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\n\r\n")
        .error
        .unwrap();
    assert_eq!(e.to_string(), "400 Bad Request: invalid Content-Length");
}

// ---------------------------------------------------------------------------
// Responses

#[test]
fn response_exact_bytes() {
    let mut r = HttpResponse::ok();
    r.set_content_type("application/json")
        .add_header("X-A", "1")
        .add_header("X-A", "2")
        .set_body(r#"{"ok":true}"#);
    let mut out = Vec::new();
    r.write_to(&mut out, b"Sun, 06 Nov 1994 08:49:37 GMT", "muduo-rs");
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 200 OK\r\n\
         Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
         Server: muduo-rs\r\n\
         Content-Type: application/json\r\n\
         X-A: 1\r\n\
         X-A: 2\r\n\
         Content-Length: 11\r\n\
         \r\n\
         {\"ok\":true}"
    );
}

#[test]
fn response_prepared_for_requests() {
    let render = |req: &[u8]| {
        let req = one(req);
        let mut r = HttpResponse::new(404);
        r.set_body("nope").prepare_for(&req);
        let mut out = Vec::new();
        r.write_to(&mut out, b"", "");
        (String::from_utf8(out).unwrap(), r.close_connection())
    };
    assert_eq!(
        render(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
        (
            "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope".into(),
            false
        )
    );
    assert_eq!(
        render(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n"),
        (
            "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\n".into(),
            false
        )
    );
    assert_eq!(
        render(b"GET / HTTP/1.0\r\n\r\n"),
        (
            "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope".into(),
            true
        )
    );
    assert_eq!(
        render(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
        (
            "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\nConnection: keep-alive\r\n\r\nnope"
                .into(),
            false
        )
    );
    assert_eq!(
        render(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"),
        (
            "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope".into(),
            true
        )
    );
}

#[test]
fn error_response_bytes() {
    let e = whole(b"GET / HTTP/2.0\r\n\r\n").error.unwrap();
    let mut out = Vec::new();
    HttpResponse::from(&e).write_to(&mut out, b"Thu, 01 Jan 1970 00:00:00 GMT", "s");
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 505 HTTP Version Not Supported\r\n\
         Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n\
         Server: s\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Length: 55\r\n\
         Connection: close\r\n\
         \r\n\
         HTTP Version Not Supported: only HTTP/1.x is supported\n"
    );
}

// ---------------------------------------------------------------------------
// Property tests

/// A valid request and how it is expected to parse.
#[derive(Clone, Debug)]
struct Spec {
    method: &'static str,
    path: String,
    query: Option<String>,
    http10: bool,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// `None`: Content-Length (or nothing if the body is empty);
    /// `Some(sizes)`: chunked with these chunk sizes.
    chunks: Option<Vec<usize>>,
    trailers: bool,
}

impl Spec {
    fn encode(&self, out: &mut Vec<u8>) {
        let version = if self.http10 { "1.0" } else { "1.1" };
        out.extend_from_slice(format!("{} {}", self.method, self.path).as_bytes());
        if let Some(q) = &self.query {
            out.extend_from_slice(format!("?{q}").as_bytes());
        }
        out.extend_from_slice(format!(" HTTP/{version}\r\n").as_bytes());
        if !self.http10 {
            // Required for HTTP/1.1 (RFC 9112 §3.2); 1.0 runs without it.
            out.extend_from_slice(b"Host: h\r\n");
        }
        for (n, v) in &self.headers {
            out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        match &self.chunks {
            None => {
                if !self.body.is_empty() {
                    out.extend_from_slice(
                        format!("Content-Length: {}\r\n", self.body.len()).as_bytes(),
                    );
                }
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&self.body);
            }
            Some(sizes) => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                let mut rest = &self.body[..];
                for (i, &s) in sizes.iter().enumerate() {
                    let s = s.min(rest.len());
                    if s == 0 {
                        continue;
                    }
                    let ext = if i % 2 == 0 { ";e=1" } else { "" };
                    out.extend_from_slice(format!("{s:x}{ext}\r\n").as_bytes());
                    out.extend_from_slice(&rest[..s]);
                    out.extend_from_slice(b"\r\n");
                    rest = &rest[s..];
                }
                if !rest.is_empty() {
                    out.extend_from_slice(format!("{:X}\r\n", rest.len()).as_bytes());
                    out.extend_from_slice(rest);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n");
                if self.trailers {
                    out.extend_from_slice(b"X-Trailer: t\r\n");
                }
                out.extend_from_slice(b"\r\n");
            }
        }
    }

    fn check(&self, req: &HttpRequest) {
        assert_eq!(req.method().as_str(), self.method);
        assert_eq!(req.path(), self.path);
        assert_eq!(req.query(), self.query.as_deref());
        assert_eq!(
            req.version(),
            if self.http10 {
                Version::Http10
            } else {
                Version::Http11
            }
        );
        for (n, v) in &self.headers {
            assert!(req.header_values(n).any(|got| got == v.as_bytes()));
        }
        assert_eq!(req.body(), &self.body[..]);
    }
}

fn spec_strategy() -> impl Strategy<Value = Spec> {
    (
        prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "M-SEARCH"]),
        "/[a-zA-Z0-9/._~%-]{0,24}",
        prop::option::of("[a-z0-9=&]{0,12}"),
        any::<bool>(),
        prop::collection::vec(("X-[A-Za-z0-9-]{1,10}", "[!-~]([ -~]{0,16}[!-~])?"), 0..5),
        prop::collection::vec(any::<u8>(), 0..80),
        prop::option::of(prop::collection::vec(1usize..20, 0..6)),
        any::<bool>(),
    )
        .prop_map(
            |(method, path, query, http10, headers, body, chunks, trailers)| {
                let chunks = if http10 { None } else { chunks };
                Spec {
                    method,
                    path,
                    query,
                    http10,
                    headers,
                    body,
                    chunks,
                    trailers,
                }
            },
        )
}

fn encode_all(specs: &[Spec]) -> Vec<u8> {
    let mut input = Vec::new();
    for s in specs {
        s.encode(&mut input);
    }
    input
}

#[derive(Clone, Debug)]
enum Mutation {
    FlipBit(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Remove(usize),
    Replace(usize, u8),
}

fn mutation_strategy() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (
            any::<usize>(),
            prop::sample::select(vec![b'\r', b'\n', b' ', b':', b'0', b';', 0u8])
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Replace(i, b)),
    ]
}

fn mutate(input: &mut Vec<u8>, m: &Mutation) {
    let len = input.len();
    match *m {
        Mutation::FlipBit(i, bit) if len > 0 => input[i % len] ^= 1 << bit,
        Mutation::Truncate(i) => input.truncate(i % (len + 1)),
        Mutation::Insert(i, b) => input.insert(i % (len + 1), b),
        Mutation::Remove(i) if len > 0 => {
            input.remove(i % len);
        }
        Mutation::Replace(i, b) if len > 0 => input[i % len] = b,
        _ => {}
    }
}

fn small_limits() -> impl Strategy<Value = HttpLimits> {
    prop_oneof![
        Just(HttpLimits::default()),
        (1usize..300, 1usize..100, 0usize..200, 0usize..8).prop_map(|(h, u, b, n)| HttpLimits {
            max_header_bytes: h,
            max_uri_len: u,
            max_body_bytes: b,
            max_headers: n,
        }),
    ]
}

/// Parses `input` whole, and split at `points`, and checks both give the
/// same requests, the same error and the same unconsumed rest.
fn check_split_invariance(limits: HttpLimits, input: &[u8], points: &[usize]) -> Outcome {
    let a = feed(limits, [input]);
    let chunks = split_at_points(input, points);
    let mut b = feed(limits, chunks.iter().copied());
    // When 100 Continue is due may depend on how the bytes arrived.
    b.continues = a.continues;
    assert_eq!(a, b);
    a
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn prop_valid_pipelined_split_anywhere(
        specs in prop::collection::vec(spec_strategy(), 1..6),
        points in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let input = encode_all(&specs);
        let out = check_split_invariance(HttpLimits::default(), &input, &points);
        prop_assert_eq!(out.error, None);
        prop_assert!(out.leftover.is_empty());
        prop_assert_eq!(out.requests.len(), specs.len());
        for (spec, req) in specs.iter().zip(&out.requests) {
            spec.check(req);
        }
        // And byte by byte.
        let bytes = bytewise(&input);
        prop_assert_eq!(bytes.requests, out.requests);
    }

    #[test]
    fn prop_random_bytes_never_panic(
        input in prop::collection::vec(any::<u8>(), 0..600),
        points in prop::collection::vec(any::<usize>(), 0..6),
        limits in small_limits(),
    ) {
        check_split_invariance(limits, &input, &points);
    }

    #[test]
    fn prop_http_like_bytes_never_panic(
        input in prop::collection::vec(
            prop::sample::select(b"GET POST / HTTP/1.01 \r\n:;0123456789abcdefXx-Content-Length Transfer-Encoding chunked".to_vec()),
            0..400,
        ),
        points in prop::collection::vec(any::<usize>(), 0..6),
        limits in small_limits(),
    ) {
        check_split_invariance(limits, &input, &points);
    }

    #[test]
    fn prop_mutated_requests_never_panic(
        specs in prop::collection::vec(spec_strategy(), 1..4),
        mutations in prop::collection::vec(mutation_strategy(), 1..5),
        points in prop::collection::vec(any::<usize>(), 0..6),
        limits in small_limits(),
    ) {
        let mut input = encode_all(&specs);
        for m in &mutations {
            mutate(&mut input, m);
        }
        check_split_invariance(limits, &input, &points);
    }
}

// ---------------------------------------------------------------------------
// Host rules and request-target forms (RFC 9112 §3.2)

#[test]
fn host_rules() {
    // HTTP/1.1 needs exactly one valid Host.
    assert_eq!(status_of(b"GET / HTTP/1.1\r\n\r\n"), 400, "missing Host");
    assert_eq!(
        status_of(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"),
        400,
        "two Host lines"
    );
    assert_eq!(
        status_of(b"GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n"),
        400,
        "two Host lines, HTTP/1.0 too"
    );
    for bad in [
        &b"exa mple.com"[..],
        b"a/b",
        b"user@host",
        b"host:80x",
        b"[::1",
        b"h\"q",
        b"a,b c",
    ] {
        let mut req = b"GET / HTTP/1.1\r\nHost: ".to_vec();
        req.extend_from_slice(bad);
        req.extend_from_slice(b"\r\n\r\n");
        assert_eq!(
            status_of(&req),
            400,
            "Host {:?}",
            String::from_utf8_lossy(bad)
        );
    }
    for good in [
        "example.com",
        "example.com:8080",
        "127.0.0.1:80",
        "[::1]:8000",
        "",
    ] {
        let req = format!("GET / HTTP/1.1\r\nHost: {good}\r\n\r\n");
        assert_eq!(one(req.as_bytes()).host(), Some(good));
    }
    // HTTP/1.0 may omit it.
    assert_eq!(one(b"GET / HTTP/1.0\r\n\r\n").host(), None);
}

#[test]
fn absolute_form_target() {
    let r = one(b"GET http://example.com/hello?x=1 HTTP/1.1\r\nHost: other\r\n\r\n");
    assert_eq!(r.path(), "/hello");
    assert_eq!(r.query(), Some("x=1"));
    assert_eq!(r.target(), "/hello?x=1");
    // The authority replaces Host.
    assert_eq!(r.host(), Some("example.com"));
    assert_eq!(r.header("host"), Some("example.com"));
    let r = one(b"GET HTTPS://example.com:8443 HTTP/1.1\r\nHost: example.com:8443\r\n\r\n");
    assert_eq!((r.path(), r.host()), ("/", Some("example.com:8443")));
    let r = one(b"GET http://[::1]:80/?q HTTP/1.0\r\n\r\n");
    assert_eq!(
        (r.path(), r.query(), r.host()),
        ("/", Some("q"), Some("[::1]:80"))
    );
    // Still a MUST: an HTTP/1.1 request carries Host even in absolute-form.
    assert_eq!(status_of(b"GET http://example.com/ HTTP/1.1\r\n\r\n"), 400);
    for bad in [
        &b"GET http:///nohost HTTP/1.1\r\nHost: h\r\n\r\n"[..],
        b"GET http://user@h/ HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET relative/path HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET * HTTP/1.1\r\nHost: h\r\n\r\n",
    ] {
        assert_eq!(status_of(bad), 400, "{:?}", String::from_utf8_lossy(bad));
    }
    // The other two forms, with the methods they belong to.
    assert_eq!(one(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").path(), "*");
    assert_eq!(
        one(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n").target(),
        "example.com:443"
    );
}

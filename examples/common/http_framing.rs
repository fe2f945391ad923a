//! HTTP request framing of the echo example, kept apart so that its tests
//! (tests/echo_framing.rs) can include it.

/// The start of a request the echo example answers instead of echoing.
pub const PREFIX: &[u8] = b"GET / HTTP/1.";

/// Length of the header section at the start of `data`, through its blank
/// line, if it has arrived. Requests are short, so a skip loop beats a SIMD
/// substring search whose setup costs more than the scan: a byte that is
/// neither CR nor LF cannot be part of `\r\n\r\n`, so the next place the
/// terminator can end is 4 bytes further.
pub fn header_end(data: &[u8]) -> Option<usize> {
    let mut i = 3;
    while i < data.len() {
        match data[i] {
            b'\n' if &data[i - 3..i] == b"\r\n\r" => return Some(i + 1),
            b'\n' => i += 2,
            b'\r' => i += 1,
            _ => i += 4,
        }
    }
    None
}

/// True when the client asked to close after this response: HTTP/1.0
/// without `Connection: keep-alive`, or any `Connection: close`. (HTTP/1.0
/// clients such as `ab` wait for the close to see the end of the exchange.)
pub fn wants_close(head: &[u8]) -> bool {
    let mut close = head.get(PREFIX.len()) == Some(&b'0');
    // No 'C' or 'c' after the request line: no `Connection` field to read.
    if memchr::memchr2(b'C', b'c', &head[PREFIX.len().min(head.len())..]).is_none() {
        return close;
    }
    for line in head.split(|&b| b == b'\n').skip(1) {
        let name_len = b"connection:".len();
        if line.len() > name_len && line[..name_len].eq_ignore_ascii_case(b"connection:") {
            for token in line[name_len..].split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    close = false;
                }
            }
        }
    }
    close
}

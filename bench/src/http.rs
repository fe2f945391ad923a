//! HTTP/1.x framing for the fixed-response peers (`tokio_http`,
//! `epoll_http`).
//!
//! These peers do the same minimal work as our `echo` example: find each
//! request's end (the blank line), answer it with one fixed response, and
//! batch the answers of pipelined requests into one write. No header is
//! interpreted; requests have no body (wrk sends plain `GET`s).

/// The one response every fixed-response server sends, byte for byte.
pub const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World!";

/// A connection whose unfinished request grows past this is closed.
pub const MAX_REQUEST: usize = 64 * 1024;

/// Answers every complete request at the start of `input`: appends one
/// [`RESPONSE`] per request to `out` and returns the bytes consumed (an
/// unfinished request at the end is left for later).
pub fn answer(input: &[u8], out: &mut Vec<u8>) -> usize {
    let mut consumed = 0;
    while let Some(len) = request_len(&input[consumed..]) {
        consumed += len;
        out.extend_from_slice(RESPONSE);
    }
    consumed
}

/// Length of the first request in `buf` including its `\r\n\r\n`, if the
/// terminator is there.
fn request_len(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while from + 4 <= buf.len() {
        let cr = from + buf[from..].iter().position(|&b| b == b'\r')?;
        if buf.len() < cr + 4 {
            return None;
        }
        if &buf[cr..cr + 4] == b"\r\n\r\n" {
            return Some(cr + 4);
        }
        from = cr + 1;
    }
    None
}

/// Per-connection state of a fixed-response server: the unfinished tail of
/// the input, kept only when a request straddles two reads.
#[derive(Default)]
pub struct Framer {
    pending: Vec<u8>,
}

impl Framer {
    /// Feeds freshly read bytes; appends the responses to `out`. Returns
    /// `false` if the connection must be closed (oversized request).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        if self.pending.is_empty() {
            let used = answer(input, out);
            self.pending.extend_from_slice(&input[used..]);
        } else {
            self.pending.extend_from_slice(input);
            let used = answer(&self.pending, out);
            self.pending.drain(..used);
        }
        self.pending.len() <= MAX_REQUEST
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_pipelined_and_split_requests() {
        let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut framer = Framer::default();
        let mut out = Vec::new();
        let mut two = req.to_vec();
        two.extend_from_slice(req);
        two.extend_from_slice(&req[..10]);
        assert!(framer.feed(&two, &mut out));
        assert_eq!(out.len(), 2 * RESPONSE.len());
        out.clear();
        assert!(framer.feed(&req[10..req.len() - 1], &mut out));
        assert!(out.is_empty());
        assert!(framer.feed(b"\n", &mut out));
        assert_eq!(out, RESPONSE);
    }

    #[test]
    fn lone_carriage_returns_do_not_confuse_framing() {
        let mut out = Vec::new();
        assert_eq!(answer(b"GET /\r\r\n\r\nX", &mut out), 10);
        assert_eq!(out, RESPONSE);
    }
}

//! muduo's sudoku wire protocol, one line per request:
//!
//! ```text
//! request:  [id:]<81 cells>\r\n     cells: 1-9, 0 or . for empty
//! answer:   [id:]<81 digits>\r\n    or  [id:]NoSolution\r\n
//! ```
//!
//! As in muduo's servers: a line whose puzzle part is not 81 characters
//! long gets `Bad Request!\r\n` and the connection is shut down; more than
//! 100 bytes without a line end gets `Id too long!\r\n` and the same; a
//! puzzle with other characters, or with no solution, gets `NoSolution`.
//! A bare `\n` also ends a line (handy with `nc`); answers always use `\r\n`.

use crate::solver::{self, Grid};

/// The longest line accepted: an id, a colon, 81 cells and the line end.
pub const MAX_LINE: usize = 100;

/// The answer to a line that is not a request.
pub const BAD_REQUEST: &[u8] = b"Bad Request!\r\n";

/// The answer to more than [`MAX_LINE`] bytes without a line end.
pub const TOO_LONG: &[u8] = b"Id too long!\r\n";

/// What the start of an input buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A line of `len` bytes (line end excluded); `consumed` includes the line end.
    Line { len: usize, consumed: usize },
    /// No line end yet: wait for more input.
    Incomplete,
    /// No line end within [`MAX_LINE`] bytes.
    TooLong,
}

/// Finds the first line in `input`.
pub fn frame(input: &[u8]) -> Frame {
    let window = &input[..input.len().min(MAX_LINE + 1)];
    match memchr::memchr(b'\n', window) {
        Some(nl) => {
            let len = if nl > 0 && input[nl - 1] == b'\r' {
                nl - 1
            } else {
                nl
            };
            Frame::Line {
                len,
                consumed: nl + 1,
            }
        }
        None if input.len() > MAX_LINE => Frame::TooLong,
        None => Frame::Incomplete,
    }
}

/// One parsed request.
pub struct Request {
    /// The id before the colon (may be empty: then the answer has no prefix).
    pub id: Vec<u8>,
    /// The puzzle; `None` when it has characters other than digits and `.`
    /// (answered `NoSolution`, as muduo does).
    pub puzzle: Option<Grid>,
}

/// Parses a request line; `None` is a bad request (puzzle not 81 characters).
pub fn parse(line: &[u8]) -> Option<Request> {
    let (id, puzzle) = match memchr::memchr(b':', line) {
        Some(colon) => (&line[..colon], &line[colon + 1..]),
        None => (&line[..0], line),
    };
    (puzzle.len() == solver::CELLS).then(|| Request {
        id: id.to_vec(),
        puzzle: solver::parse(puzzle),
    })
}

/// Solves `req` and appends its answer line to `out`.
pub fn answer(req: &Request, out: &mut Vec<u8>) {
    if !req.id.is_empty() {
        out.extend_from_slice(&req.id);
        out.push(b':');
    }
    match req.puzzle.as_ref().and_then(solver::solve) {
        Some(grid) => out.extend_from_slice(&solver::format(&grid)),
        None => out.extend_from_slice(b"NoSolution"),
    }
    out.extend_from_slice(b"\r\n");
}

/// Answers every complete line at the start of `input` into `out`, for the
/// models that solve where they read. Returns the bytes consumed and whether
/// the connection must be shut down (a bad or over-long line, whose error
/// answer is already in `out`; later input is not looked at).
pub fn answer_all(input: &[u8], out: &mut Vec<u8>) -> (usize, bool) {
    let mut pos = 0;
    loop {
        match frame(&input[pos..]) {
            Frame::Incomplete => return (pos, false),
            Frame::TooLong => {
                out.extend_from_slice(TOO_LONG);
                return (input.len(), true);
            }
            Frame::Line { len, consumed } => {
                let line = &input[pos..pos + len];
                pos += consumed;
                match parse(line) {
                    Some(req) => answer(&req, out),
                    None => {
                        out.extend_from_slice(BAD_REQUEST);
                        return (input.len(), true);
                    }
                }
            }
        }
    }
}

//! Framing and lexing of memcached's text protocol, with memcached's own
//! quirks (they decide replies byte for byte): lines end at `\n` with an
//! optional `\r`, a NUL ends the line early (the C code uses `strlen`),
//! tokens are separated by spaces only (a tab belongs to the token), at
//! most 23 tokens are split off a line, and numbers follow `strtoul`/
//! `strtol` (leading whitespace, a sign, truncation to 32 bits).

/// Tokens split off one line; memcached's `MAX_TOKENS` is 24 including the
/// terminal marker, so 23 real ones.
pub const MAX_TOKENS: usize = 23;
/// Longest key memcached accepts (`KEY_MAX_LENGTH`).
pub const KEY_MAX: usize = 250;
/// memcached closes a connection that sends this many bytes without a
/// newline, unless the line starts as a `get`/`gets` (multigets are unbounded).
pub const LINE_MAX_NO_NEWLINE: usize = 2048;

/// The first line in `data`: `(line, consumed)` with the `\r\n` or `\n`
/// removed and the line cut at a NUL; `None` when no `\n` has arrived.
pub fn next_line(data: &[u8]) -> Option<(&[u8], usize)> {
    let nl = memchr::memchr(b'\n', data)?;
    let mut end = nl;
    // memcached strips the `\r` only when the line has something before it.
    if nl > 1 && data[nl - 1] == b'\r' {
        end -= 1;
    }
    let line = &data[..end];
    let line = match memchr::memchr(0, line) {
        Some(z) => &line[..z],
        None => line,
    };
    Some((line, nl + 1))
}

/// True when memcached would keep waiting for the end of an unterminated
/// long line (a multiget), false when it closes the connection.
pub fn long_line_allowed(data: &[u8]) -> bool {
    let spaces = data.iter().take_while(|&&b| b == b' ').count();
    if spaces > 100 {
        return false;
    }
    let rest = &data[spaces..];
    rest.starts_with(b"get ") || rest.starts_with(b"gets ")
}

/// One tokenized line.
pub struct Tokens<'a> {
    toks: [&'a [u8]; MAX_TOKENS],
    len: usize,
    /// What follows the 23rd token, when the line has more.
    pub rest: Option<&'a [u8]>,
}

impl<'a> Tokens<'a> {
    /// Splits `line` on spaces as memcached's `tokenize_command` does.
    pub fn new(line: &'a [u8]) -> Tokens<'a> {
        let mut t = Tokens {
            toks: [&[]; MAX_TOKENS],
            len: 0,
            rest: None,
        };
        let mut start = 0;
        let mut i = 0;
        while i < line.len() {
            if line[i] == b' ' {
                if start != i {
                    t.toks[t.len] = &line[start..i];
                    t.len += 1;
                    if t.len == MAX_TOKENS {
                        let rest = &line[i + 1..];
                        t.rest = (!rest.is_empty()).then_some(rest);
                        return t;
                    }
                }
                start = i + 1;
            }
            i += 1;
        }
        if start != line.len() {
            t.toks[t.len] = &line[start..];
            t.len += 1;
        }
        t
    }

    /// memcached's `ntokens`: the real tokens plus the terminal marker.
    pub fn ntokens(&self) -> usize {
        self.len + 1
    }

    /// Token `i`, or empty past the end (memcached reads the terminal
    /// token there, whose length is 0).
    pub fn get(&self, i: usize) -> &'a [u8] {
        if i < self.len {
            self.toks[i]
        } else {
            &[]
        }
    }

    /// The real tokens.
    pub fn all(&self) -> &[&'a [u8]] {
        &self.toks[..self.len]
    }

    /// memcached's `set_noreply_maybe`: the last real token is `noreply`.
    pub fn noreply(&self) -> bool {
        self.len > 0 && self.toks[self.len - 1] == b"noreply"
    }
}

fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `strtoull`/`strtoll` in base 10 over a C string (ends at NUL or at the
/// slice end): `(magnitude, negative, end index, overflowed)`; `end == 0`
/// means no digits.
fn c_strto(s: &[u8]) -> (u64, bool, usize, bool) {
    let s = match memchr::memchr(0, s) {
        Some(z) => &s[..z],
        None => s,
    };
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let digits_start = i;
    let mut v: u64 = 0;
    let mut overflow = false;
    while i < s.len() && s[i].is_ascii_digit() {
        let d = (s[i] - b'0') as u64;
        match v.checked_mul(10).and_then(|x| x.checked_add(d)) {
            Some(x) => v = x,
            None => overflow = true,
        }
        i += 1;
    }
    if i == digits_start {
        return (0, false, 0, false);
    }
    (v, neg, i, overflow)
}

/// The end check shared by memcached's `safe_strto*`: the number must be
/// followed by whitespace or the end of the string.
fn ends_ok(s: &[u8], end: usize) -> bool {
    match s.get(end) {
        None | Some(0) => true,
        Some(&b) => is_c_space(b),
    }
}

/// memcached's `safe_strtoull`.
pub fn safe_strtoull(s: &[u8]) -> Option<u64> {
    let (mag, neg, end, overflow) = c_strto(s);
    if end == 0 || overflow || !ends_ok(s, end) {
        return None;
    }
    let v = if neg { mag.wrapping_neg() } else { mag };
    // A value that looks negative as signed must not have come from a '-'.
    if (v as i64) < 0 && neg {
        return None;
    }
    Some(v)
}

/// memcached's `safe_strtoul` into a `uint32_t`: parsed as a 64-bit
/// `unsigned long`, then truncated (so 4294967296 becomes 0, as in memcached).
pub fn safe_strtoul(s: &[u8]) -> Option<u32> {
    safe_strtoull(s).map(|v| v as u32)
}

/// memcached's `safe_strtol` into an `int32_t`: parsed as a 64-bit `long`
/// (ERANGE beyond it), then truncated to 32 bits.
pub fn safe_strtol(s: &[u8]) -> Option<i32> {
    let (mag, neg, end, overflow) = c_strto(s);
    if end == 0 || overflow || !ends_ok(s, end) {
        return None;
    }
    let v: i64 = if neg {
        if mag > 1u64 << 63 {
            return None;
        }
        (mag as i64).wrapping_neg()
    } else {
        if mag > i64::MAX as u64 {
            return None;
        }
        mag as i64
    };
    Some(v as i32)
}

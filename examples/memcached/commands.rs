//! One command at a time: framing (a line, plus a data block for storage
//! commands), dispatch, and the reply, with memcached 1.6's replies and
//! error strings. `noreply` suppresses whatever the command would answer,
//! errors included, as memcached's `out_string` does.

use crate::pins::Pins;
use crate::protocol::{
    long_line_allowed, next_line, safe_strtol, safe_strtoul, safe_strtoull, Tokens, KEY_MAX,
    LINE_MAX_NO_NEWLINE,
};
use crate::stats::bump;
use crate::store::{Delta, Mode, Stored};
use crate::Server;

/// What the connection does after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// The line is not complete: wait until the buffer holds this many bytes.
    NeedLine(usize),
    /// The data block is not complete: wait until the buffer holds this many bytes.
    NeedData(usize),
    /// `n` bytes consumed; go on.
    Done(usize),
    /// `n` bytes consumed; memcached writes its queued replies out here
    /// before parsing on (after a get and after `mn`).
    DoneFlush(usize),
    /// `n` bytes consumed; then discard the next `m` bytes whatever they are
    /// (the data block of an item too large to store).
    Swallow(usize, usize),
    /// Write what is queued, then close (`quit`).
    Quit(usize),
    /// Close at once, dropping queued replies (a long line without newline).
    Close,
}

const ERROR: &[u8] = b"ERROR";
const BAD_FORMAT: &[u8] = b"CLIENT_ERROR bad command line format";
const BAD_EXPTIME: &[u8] = b"CLIENT_ERROR invalid exptime argument";

/// Replies of one command; `noreply` drops them.
struct Reply<'a> {
    out: &'a mut Vec<u8>,
    noreply: bool,
}

impl Reply<'_> {
    fn line(&mut self, s: &[u8]) {
        if !self.noreply {
            self.out.extend_from_slice(s);
            self.out.extend_from_slice(b"\r\n");
        }
    }
}

/// Runs the first complete command in `data`, appending its reply to `out`.
pub fn execute(srv: &Server, data: &[u8], now: u32, out: &mut Vec<u8>, pins: &mut Pins) -> Step {
    let Some((line, consumed)) = next_line(data) else {
        if data.len() > LINE_MAX_NO_NEWLINE && !long_line_allowed(data) {
            return Step::Close;
        }
        return Step::NeedLine(data.len() + 1);
    };
    let t = Tokens::new(line);
    let cmd = t.get(0);
    let n = t.ntokens();
    let mut r = Reply {
        out,
        noreply: false,
    };
    if n < 2 || cmd.len() < 2 {
        r.line(ERROR);
        return Step::Done(consumed);
    }
    let want = |ok: bool, r: &mut Reply| {
        if !ok {
            r.line(ERROR);
        }
        ok
    };
    match cmd {
        b"get" | b"bget" | b"gets" | b"gat" | b"gats" => {
            let with_cas = cmd.ends_with(b"s");
            let touch = cmd.starts_with(b"ga");
            if want(n >= 3, &mut r) && get(srv, &t, with_cas, touch, now, r.out) {
                return Step::DoneFlush(consumed);
            }
        }
        b"set" | b"add" | b"replace" | b"append" | b"prepend" => {
            if want(n == 6 || n == 7, &mut r) {
                return update(srv, &t, data, consumed, false, now, r);
            }
        }
        b"cas" => {
            if want(n == 7 || n == 8, &mut r) {
                return update(srv, &t, data, consumed, true, now, r);
            }
        }
        b"delete" => {
            if want((3..=5).contains(&n), &mut r) {
                delete(srv, &t, now, r);
            }
        }
        b"incr" | b"decr" => {
            if want(n == 4 || n == 5, &mut r) {
                arithmetic(srv, &t, cmd == b"incr", now, pins, r);
            }
        }
        b"touch" => {
            if want(n == 4 || n == 5, &mut r) {
                touch(srv, &t, now, r);
            }
        }
        b"stats" => crate::report::stats(srv, &t, now, r.out),
        b"flush_all" => {
            if want((2..=4).contains(&n), &mut r) {
                flush_all(srv, &t, now, r);
            }
        }
        b"version" => r.line(crate::VERSION_LINE.as_bytes()),
        b"verbosity" => {
            if want(n == 3 || n == 4, &mut r) {
                r.noreply = t.noreply();
                match safe_strtoul(t.get(1)) {
                    Some(_) => r.line(b"OK"),
                    None => r.line(BAD_FORMAT),
                }
            }
        }
        b"cache_memlimit" => {
            if want(n == 3 || n == 4, &mut r) {
                r.noreply = t.noreply();
                match safe_strtoul(t.get(1)) {
                    None => r.line(ERROR),
                    Some(mb) if mb < 8 => {
                        r.line(b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m")
                    }
                    Some(mb) if mb > 1_000_000_000 => {
                        r.line(b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes")
                    }
                    Some(mb) => {
                        srv.store.set_limit(mb as usize * (1 << 20));
                        r.line(b"OK");
                    }
                }
            }
        }
        b"quit" => return Step::Quit(consumed),
        b"mn" => {
            // The meta no-op: memcached flushes its replies after it.
            r.line(b"MN");
            return Step::DoneFlush(consumed);
        }
        b"mg" => crate::meta::mg(srv, &t, now, r.out, pins),
        b"ms" => return crate::meta::ms(srv, &t, data, consumed, now, r.out),
        b"md" => crate::meta::md(srv, &t, now, r.out),
        b"ma" => crate::meta::ma(srv, &t, now, r.out, pins),
        b"me" => crate::meta::me(srv, &t, now, r.out),
        b"shutdown" => r.line(b"ERROR: shutdown not enabled"),
        _ => r.line(ERROR),
    }
    Step::Done(consumed)
}

/// A get-family command; true when it answered with `END` (memcached then
/// writes its replies out), false after an error.
fn get(srv: &Server, t: &Tokens, with_cas: bool, touch: bool, now: u32, out: &mut Vec<u8>) -> bool {
    let start = out.len();
    let mut keys = t.all()[1..].iter().copied();
    let mut exp = None;
    if touch {
        match keys.next().and_then(safe_strtol) {
            Some(e) => exp = Some(srv.store.realtime(e, now)),
            None => {
                out.extend_from_slice(BAD_EXPTIME);
                out.extend_from_slice(b"\r\n");
                return false;
            }
        }
    }
    // Keys past the 23rd token come from re-splitting the rest, as memcached does.
    let rest = t.rest.unwrap_or(&[]);
    let more = rest.split(|&b| b == b' ').filter(|k| !k.is_empty());
    srv.stats.with(|c| {
        for key in keys.chain(more) {
            if key.len() > KEY_MAX {
                // memcached drops the hits it had gathered for this line.
                out.truncate(start);
                out.extend_from_slice(BAD_FORMAT);
                out.extend_from_slice(b"\r\n");
                return false;
            }
            let res = srv.store.get_into(key, now, with_cas, exp, out);
            if touch {
                bump(&c.cmd_touch, 1);
                match res {
                    Ok(()) => bump(&c.touch_hits, 1),
                    Err(_) => bump(&c.touch_misses, 1),
                }
            } else {
                bump(&c.cmd_get, 1);
                match res {
                    Ok(()) => bump(&c.get_hits, 1),
                    // get_expired/get_flushed: the store counts them.
                    Err(_) => bump(&c.get_misses, 1),
                }
            }
        }
        out.extend_from_slice(b"END\r\n");
        true
    })
}

fn update(
    srv: &Server,
    t: &Tokens,
    data: &[u8],
    line_len: usize,
    with_cas: bool,
    now: u32,
    mut r: Reply,
) -> Step {
    r.noreply = t.noreply();
    let key = t.get(1);
    if key.len() > KEY_MAX {
        r.line(BAD_FORMAT);
        return Step::Done(line_len);
    }
    let (Some(flags), Some(exptime), Some(vlen)) = (
        safe_strtoul(t.get(2)),
        safe_strtol(t.get(3)),
        safe_strtol(t.get(4)),
    ) else {
        r.line(BAD_FORMAT);
        return Step::Done(line_len);
    };
    let cas = if with_cas {
        match safe_strtoull(t.get(5)) {
            Some(c) => c,
            None => {
                r.line(BAD_FORMAT);
                return Step::Done(line_len);
            }
        }
    } else {
        0
    };
    if !(0..=i32::MAX - 2).contains(&vlen) {
        r.line(BAD_FORMAT);
        return Step::Done(line_len);
    }
    let vlen = vlen as usize;
    if !srv.store.fits(key.len(), vlen, flags) {
        r.line(b"SERVER_ERROR object too large for cache");
        srv.stats.with(|c| bump(&c.store_too_large, 1));
        if t.get(0) == b"set" {
            srv.store.unlink(key, now);
        }
        return Step::Swallow(line_len, vlen + 2);
    }
    let total = line_len + vlen + 2;
    if data.len() < total {
        return Step::NeedData(total);
    }
    let block = &data[line_len..total];
    if &block[vlen..] != b"\r\n" {
        // memcached counts the set before it looks at the chunk's end.
        srv.stats.with(|c| bump(&c.cmd_set, 1));
        r.line(b"CLIENT_ERROR bad data chunk");
        return Step::Done(total);
    }
    let mode = match t.get(0) {
        b"set" => Mode::Set,
        b"add" => Mode::Add,
        b"replace" => Mode::Replace,
        b"append" => Mode::Append,
        b"prepend" => Mode::Prepend,
        _ => Mode::Cas(cas),
    };
    let exptime = srv.store.realtime(exptime, now);
    let res = srv
        .store
        .store(mode, key, flags, exptime, &block[..vlen], now);
    srv.stats.with(|c| {
        bump(&c.cmd_set, 1);
        if let Mode::Cas(_) = mode {
            match res {
                Stored::Stored => bump(&c.cas_hits, 1),
                Stored::Exists => bump(&c.cas_badval, 1),
                Stored::NotFound => bump(&c.cas_misses, 1),
                _ => {}
            }
        }
        if res == Stored::NoMemory {
            bump(&c.store_no_memory, 1);
        }
    });
    r.line(match res {
        Stored::Stored => b"STORED",
        Stored::NotStored => b"NOT_STORED",
        Stored::Exists => b"EXISTS",
        Stored::NotFound => b"NOT_FOUND",
        Stored::NoMemory => b"SERVER_ERROR out of memory storing object",
    });
    Step::Done(total)
}

fn delete(srv: &Server, t: &Tokens, now: u32, mut r: Reply) {
    let n = t.ntokens();
    if n > 3 {
        let hold_is_zero = t.get(2) == b"0";
        r.noreply = t.noreply();
        let valid =
            (n == 4 && (hold_is_zero || r.noreply)) || (n == 5 && hold_is_zero && r.noreply);
        if !valid {
            r.line(b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]");
            return;
        }
    }
    let key = t.get(1);
    if key.len() > KEY_MAX {
        r.line(BAD_FORMAT);
        return;
    }
    let hit = srv.store.delete(key, now);
    srv.stats.with(|c| {
        bump(
            if hit {
                &c.delete_hits
            } else {
                &c.delete_misses
            },
            1,
        )
    });
    r.line(if hit { b"DELETED" } else { b"NOT_FOUND" });
}

fn arithmetic(srv: &Server, t: &Tokens, incr: bool, now: u32, pins: &Pins, mut r: Reply) {
    r.noreply = t.noreply();
    let key = t.get(1);
    if key.len() > KEY_MAX {
        r.line(BAD_FORMAT);
        return;
    }
    let Some(delta) = safe_strtoull(t.get(2)) else {
        r.line(b"CLIENT_ERROR invalid numeric delta argument");
        return;
    };
    match srv.store.delta(key, incr, delta, now, pins.contains(key)) {
        Delta::Ok(v) => {
            srv.stats
                .with(|c| bump(if incr { &c.incr_hits } else { &c.decr_hits }, 1));
            r.line(itoa::Buffer::new().format(v).as_bytes());
        }
        Delta::NonNumeric => {
            r.line(b"CLIENT_ERROR cannot increment or decrement non-numeric value")
        }
        Delta::NotFound => {
            srv.stats
                .with(|c| bump(if incr { &c.incr_misses } else { &c.decr_misses }, 1));
            r.line(b"NOT_FOUND");
        }
    }
}

fn touch(srv: &Server, t: &Tokens, now: u32, mut r: Reply) {
    r.noreply = t.noreply();
    let key = t.get(1);
    if key.len() > KEY_MAX {
        r.line(BAD_FORMAT);
        return;
    }
    let Some(exptime) = safe_strtol(t.get(2)) else {
        r.line(BAD_EXPTIME);
        return;
    };
    let hit = srv.store.touch(key, srv.store.realtime(exptime, now), now);
    srv.stats.with(|c| {
        bump(&c.cmd_touch, 1);
        bump(if hit { &c.touch_hits } else { &c.touch_misses }, 1);
    });
    r.line(if hit { b"TOUCHED" } else { b"NOT_FOUND" });
}

fn flush_all(srv: &Server, t: &Tokens, now: u32, mut r: Reply) {
    r.noreply = t.noreply();
    srv.stats.with(|c| bump(&c.cmd_flush, 1));
    let mut delay = 0;
    if t.ntokens() != if r.noreply { 3 } else { 2 } {
        match safe_strtol(t.get(1)) {
            Some(d) => delay = d,
            None => {
                r.line(BAD_EXPTIME);
                return;
            }
        }
    }
    srv.store.flush(delay, now);
    r.line(b"OK");
}

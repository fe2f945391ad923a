//! memcached 1.6's meta commands `mg ms md ma me` (`mn` is in
//! [`commands`](crate::commands)), with 1.6.18's replies byte for byte.
//!
//! The quirks follow memcached, since they decide replies: flags are parsed
//! once for all commands (so `mg` rejects a malformed `C` or `J` it never
//! uses), a flag byte of 127 or more counts as a duplicate, `md`/`ma` turn
//! every flag error into one message, `q` hides only the nominal reply
//! (`EN` for `mg`, `HD` for `ms`/`md`, success for `ma`), and flags are
//! applied in the order sent, so `t` before `T` shows the old TTL.

use crate::commands::Step;
use crate::pins::Pins;
use crate::protocol::{safe_strtol, safe_strtoul, safe_strtoull, Tokens, KEY_MAX};
use crate::stats::bump;
use crate::store::{Entry, MetaDelta, Mode, StoreOpts, Stored, KEY_BINARY, STALE, TOKEN_SENT};
use crate::Server;
use std::borrow::Cow;

const BAD_FORMAT: &[u8] = b"CLIENT_ERROR bad command line format";
const BAD_TOKEN: &[u8] = b"CLIENT_ERROR bad token in command line format";
const OPAQUE_TOO_LONG: &[u8] = b"CLIENT_ERROR opaque token too long";
/// memcached's `ms`/`md`/`ma` wording; `mg` says "are too long".
const FLAGS_TOO_LONG: &[u8] = b"CLIENT_ERROR options flags too long";
const BAD_FLAG: &[u8] = b"CLIENT_ERROR invalid or duplicate flag";
/// memcached's `MFLAG_MAX_OPT_LENGTH`, compared with `ntokens`.
const MAX_NTOKENS: usize = 20;
/// memcached's `MFLAG_MAX_OPAQUE_LENGTH`, the `O` included.
const OPAQUE_MAX: usize = 32;

/// The flags of one meta command, parsed as memcached's `_meta_flag_preparse`.
struct Flags<'a> {
    key: Cow<'a, [u8]>,
    key_binary: bool,
    /// memcached takes the item lock for these and bumps after answering.
    locked: bool,
    vivify: Option<u32>,
    ttl: Option<u32>,
    recache: u32,
    value: bool,
    no_update: bool,
    quiet: bool,
    client_flags: u32,
    cas: Option<u64>,
    mode: u8,
    initial: u64,
    delta: u64,
    stale: bool,
    /// The flag tokens, in order.
    toks: &'a [&'a [u8]],
}

fn flags<'a>(
    srv: &Server,
    t: &'a Tokens<'a>,
    start: usize,
    now: u32,
) -> Result<Flags<'a>, &'static [u8]> {
    let toks = t.all().get(start..).unwrap_or(&[]);
    let mut f = Flags {
        key: Cow::Borrowed(t.get(1)),
        key_binary: false,
        locked: false,
        vivify: None,
        ttl: None,
        recache: 0,
        value: false,
        no_update: false,
        quiet: false,
        client_flags: 0,
        cas: None,
        mode: 0,
        initial: 0,
        delta: 1,
        stale: false,
        toks,
    };
    let mut seen = [false; 127];
    // Errors found in a token's argument do not stop the scan (a later
    // one's message wins); an unknown or repeated flag does.
    let mut err: Option<&'static [u8]> = None;
    let mut fail = false;
    let exptime = |tok: &[u8]| safe_strtol(&tok[1..]).map(|e| srv.store.realtime(e, now));
    for tok in toks {
        let o = tok[0];
        if o >= 127 || seen[o as usize] {
            return Err(b"CLIENT_ERROR duplicate flag");
        }
        seen[o as usize] = true;
        let mut bad = |msg: Option<&'static [u8]>| {
            fail = true;
            if msg.is_some() {
                err = msg;
            }
        };
        match o {
            b'b' => {
                f.key_binary = true;
                match base64_decode(t.get(1)) {
                    Some(k) => f.key = Cow::Owned(k),
                    None => bad(Some(b"CLIENT_ERROR error decoding key")),
                }
            }
            b'N' => {
                f.locked = true;
                match exptime(tok) {
                    Some(e) => f.vivify = Some(e),
                    None => {
                        f.vivify = Some(0);
                        bad(Some(BAD_TOKEN))
                    }
                }
            }
            b'T' => {
                f.locked = true;
                match exptime(tok) {
                    Some(e) => f.ttl = Some(e),
                    None => bad(Some(BAD_TOKEN)),
                }
            }
            b'R' => {
                f.locked = true;
                match exptime(tok) {
                    Some(e) => f.recache = e,
                    None => bad(Some(BAD_TOKEN)),
                }
            }
            b'l' | b'h' => f.locked = true,
            b'O' | b'P' | b'L' | b'k' | b's' | b't' | b'c' | b'f' => {}
            b'v' => f.value = true,
            b'u' => f.no_update = true,
            b'q' => f.quiet = true,
            b'F' => match safe_strtoul(&tok[1..]) {
                Some(v) => f.client_flags = v,
                None => bad(None),
            },
            b'C' => match safe_strtoull(&tok[1..]) {
                Some(v) => f.cas = Some(v),
                None => bad(Some(BAD_TOKEN)),
            },
            b'M' => {
                if tok.len() == 2 {
                    f.mode = tok[1];
                } else {
                    bad(Some(b"CLIENT_ERROR incorrect length for M token"))
                }
            }
            b'J' => match safe_strtoull(&tok[1..]) {
                Some(v) => f.initial = v,
                None => bad(Some(b"CLIENT_ERROR invalid numeric initial value")),
            },
            b'D' => match safe_strtoull(&tok[1..]) {
                Some(v) => f.delta = v,
                None => bad(Some(b"CLIENT_ERROR invalid numeric delta value")),
            },
            b'I' => f.stale = true,
            _ => return Err(b"CLIENT_ERROR invalid flag"),
        }
    }
    if fail {
        return Err(err.unwrap_or(BAD_FORMAT));
    }
    Ok(f)
}

fn line(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(s);
    out.extend_from_slice(b"\r\n");
}

fn num(out: &mut Vec<u8>, tag: u8, v: impl itoa::Integer) {
    out.push(b' ');
    out.push(tag);
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// ` k<key>`, base64 with a trailing ` b` for a binary key.
fn key_token(out: &mut Vec<u8>, key: &[u8], binary: bool) {
    out.extend_from_slice(b" k");
    if binary {
        base64_encode(key, out);
        out.extend_from_slice(b" b");
    } else {
        out.extend_from_slice(key);
    }
}

/// Remaining TTL as memcached prints it: -1 for none, else unsigned
/// 32-bit seconds (an already passed time wraps, as in memcached).
fn ttl(out: &mut Vec<u8>, exptime: u32, now: u32) {
    if exptime == 0 {
        out.extend_from_slice(b" t-1");
    } else {
        num(out, b't', exptime.wrapping_sub(now));
    }
}

/// The ` O…` and ` k…` tokens of a reply without an item; false when an
/// opaque is too long.
fn opaque_and_key(out: &mut Vec<u8>, f: &Flags) -> bool {
    for tok in f.toks {
        match tok[0] {
            b'O' if tok.len() > OPAQUE_MAX => return false,
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(tok);
            }
            b'k' => key_token(out, &f.key, f.key_binary),
            _ => {}
        }
    }
    true
}

/// The checks every meta command but `me` makes before its flags; `Some`
/// is the reply.
fn precheck(t: &Tokens, too_long: &'static [u8]) -> Option<&'static [u8]> {
    if t.ntokens() < 3 {
        Some(b"ERROR")
    } else if t.get(1).len() > KEY_MAX {
        Some(BAD_FORMAT)
    } else if t.ntokens() > MAX_NTOKENS {
        Some(too_long)
    } else {
        None
    }
}

/// `md` and `ma` answer every flag error with one message.
fn flags_md_ma<'a>(srv: &Server, t: &'a Tokens<'a>, now: u32) -> Result<Flags<'a>, &'static [u8]> {
    if let Some(e) = precheck(t, FLAGS_TOO_LONG) {
        return Err(e);
    }
    flags(srv, t, 2, now).map_err(|_| BAD_FLAG)
}

pub fn mg(srv: &Server, t: &Tokens, now: u32, out: &mut Vec<u8>, pins: &mut Pins) {
    if let Some(e) = precheck(t, b"CLIENT_ERROR options flags are too long") {
        return line(out, e);
    }
    let f = match flags(srv, t, 2, now) {
        Ok(f) => f,
        Err(e) => return line(out, e),
    };
    let start = out.len();
    // Some(true): an item answered; Some(false): a miss, its `EN` line
    // still open for the miss's tokens; None: an opaque too long.
    let hit = srv
        .store
        .with_entry(&f.key, now, f.vivify.is_some(), |e, created| {
            let Some(e) = e else {
                out.extend_from_slice(b"EN");
                return Some(false);
            };
            mg_hit(&f, e, created, now, out).then_some(true)
        });
    match hit {
        None => {
            // memcached counts nothing for a hit that ends in this error
            // (a miss that does still counts as a miss).
            out.truncate(start);
            return line(out, OPAQUE_TOO_LONG);
        }
        Some(true) => pins.pin(&f.key),
        Some(false) => {
            if !opaque_and_key(out, &f) {
                out.truncate(start);
                line(out, OPAQUE_TOO_LONG);
            } else if f.quiet {
                out.truncate(start);
            } else {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    srv.stats.with(|c| {
        // memcached applies T only to an item found: a miss is a get miss.
        let (cmd, hits, misses) = if f.ttl.is_some() && hit == Some(true) {
            (&c.cmd_touch, &c.touch_hits, &c.touch_misses)
        } else {
            (&c.cmd_get, &c.get_hits, &c.get_misses)
        };
        bump(cmd, 1);
        bump(if hit == Some(true) { hits } else { misses }, 1);
    });
}

/// `mg`'s reply for an item; false when an opaque is too long (the
/// changes made by the flags before it stay, as in memcached).
fn mg_hit(f: &Flags, e: &mut Entry, created: bool, now: u32, out: &mut Vec<u8>) -> bool {
    // Without the item lock memcached bumps while fetching, before any error.
    e.bump = !f.locked && !f.no_update;
    if f.value {
        out.extend_from_slice(b"VA ");
        out.extend_from_slice(itoa::Buffer::new().format(e.value.len()).as_bytes());
    } else {
        out.extend_from_slice(b"HD");
    }
    let mut won = false;
    for tok in f.toks {
        match tok[0] {
            b'T' => *e.exptime = f.ttl.unwrap_or(0),
            b'N' if created => {
                *e.exptime = f.vivify.unwrap_or(0);
                won = true;
            }
            // Wins when the TTL left is below the threshold, unless
            // another client already won.
            b'R' if *e.bits & TOKEN_SENT == 0
                && !created
                && *e.exptime != 0
                && *e.exptime < f.recache =>
            {
                won = true;
            }
            b's' => num(out, b's', e.value.len()),
            b't' => ttl(out, *e.exptime, now),
            b'c' => num(out, b'c', *e.cas),
            b'f' => num(out, b'f', e.flags),
            b'l' => num(out, b'l', now.wrapping_sub(e.time)),
            b'h' => num(out, b'h', u8::from(*e.bits & crate::store::FETCHED != 0)),
            b'O' if tok.len() > OPAQUE_MAX => return false,
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(tok);
            }
            b'k' => key_token(out, e.key, *e.bits & KEY_BINARY != 0),
            _ => {}
        }
    }
    if *e.bits & TOKEN_SENT != 0 {
        out.extend_from_slice(b" Z");
    }
    if *e.bits & STALE != 0 {
        out.extend_from_slice(b" X");
        if *e.bits & TOKEN_SENT == 0 {
            won = true;
        }
    }
    if won {
        out.extend_from_slice(b" W");
        *e.bits |= TOKEN_SENT;
    }
    out.extend_from_slice(b"\r\n");
    if f.value {
        out.extend_from_slice(e.value);
        out.extend_from_slice(b"\r\n");
    }
    e.bump = !f.no_update;
    true
}

/// `ms <key> <datalen> <flags>*` and its data block.
pub fn ms(
    srv: &Server,
    t: &Tokens,
    data: &[u8],
    line_len: usize,
    now: u32,
    out: &mut Vec<u8>,
) -> Step {
    let pre = match precheck(t, FLAGS_TOO_LONG) {
        None if t.ntokens() == 3 => Some(BAD_FORMAT),
        pre => pre,
    };
    if let Some(e) = pre {
        line(out, e);
        return Step::Done(line_len);
    }
    let vlen = match safe_strtol(t.get(2)) {
        Some(v) if (0..=i32::MAX - 2).contains(&v) => v as usize,
        _ => {
            line(out, BAD_FORMAT);
            return Step::Done(line_len);
        }
    };
    // From here on an error swallows the data block, as memcached does.
    let swallow = |out: &mut Vec<u8>, msg: &[u8]| {
        line(out, msg);
        Step::Swallow(line_len, vlen + 2)
    };
    let f = match flags(srv, t, 3, now) {
        Ok(f) => f,
        Err(e) => return swallow(out, e),
    };
    let opaque_ok = f
        .toks
        .iter()
        .all(|tok| tok[0] != b'O' || tok.len() <= OPAQUE_MAX);
    let mode = match f.mode {
        0 | b'S' => Mode::Set,
        b'E' => Mode::Add,
        b'A' => Mode::Append,
        b'P' => Mode::Prepend,
        b'R' => Mode::Replace,
        _ => return swallow(out, b"CLIENT_ERROR invalid mode for ms M token"),
    };
    if !opaque_ok {
        return swallow(out, OPAQUE_TOO_LONG);
    }
    if !srv.store.fits(f.key.len(), vlen, f.client_flags) {
        srv.stats.with(|c| bump(&c.store_too_large, 1));
        // memcached drops the old value whatever the mode.
        srv.store.unlink(&f.key, now);
        return swallow(out, b"SERVER_ERROR object too large for cache");
    }
    let total = line_len + vlen + 2;
    if data.len() < total {
        return Step::NeedData(total);
    }
    let block = &data[line_len..total];
    if &block[vlen..] != b"\r\n" {
        // memcached counts the set before it looks at the chunk's end.
        srv.stats.with(|c| bump(&c.cmd_set, 1));
        line(out, b"CLIENT_ERROR bad data chunk");
        return Step::Done(total);
    }
    // A CAS turns set and replace into cas; append and prepend check it
    // themselves; add ignores it.
    let (mode, opts) = match (mode, f.cas) {
        (Mode::Set | Mode::Replace, Some(c)) => (Mode::Cas(c), StoreOpts::default()),
        (Mode::Append | Mode::Prepend, Some(c)) => (
            mode,
            StoreOpts {
                cas: c,
                ..StoreOpts::default()
            },
        ),
        _ => (mode, StoreOpts::default()),
    };
    let opts = StoreOpts {
        stale_ok: f.stale && matches!(mode, Mode::Cas(_)),
        key_binary: f.key_binary,
        ..opts
    };
    let exptime = f.ttl.unwrap_or(0);
    let (res, cas) = srv.store.store_with(
        mode,
        &f.key,
        f.client_flags,
        exptime,
        &block[..vlen],
        now,
        opts,
    );
    srv.stats.with(|c| {
        bump(&c.cmd_set, 1);
        // As memcached's do_store_item: CAS outcomes of set/replace with C
        // (append/prepend compare too, but count nothing).
        if let Mode::Cas(_) = mode {
            match res {
                Stored::Stored => bump(&c.cas_hits, 1),
                Stored::Exists => bump(&c.cas_badval, 1),
                Stored::NotFound => bump(&c.cas_misses, 1),
                _ => {}
            }
        }
    });
    let code: &[u8] = match res {
        Stored::Stored if f.quiet => return Step::Done(total),
        Stored::Stored => b"HD",
        Stored::NotStored => b"NS",
        Stored::Exists => b"EX",
        Stored::NotFound => b"NF",
        Stored::NoMemory => {
            line(out, b"SERVER_ERROR out of memory storing object");
            return Step::Done(total);
        }
    };
    out.extend_from_slice(code);
    for tok in f.toks {
        match tok[0] {
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(tok);
            }
            b'k' => key_token(out, &f.key, f.key_binary),
            b'c' => num(out, b'c', cas),
            _ => {}
        }
    }
    out.extend_from_slice(b"\r\n");
    Step::Done(total)
}

pub fn md(srv: &Server, t: &Tokens, now: u32, out: &mut Vec<u8>) {
    let f = match flags_md_ma(srv, t, now) {
        Ok(f) => f,
        Err(e) => return line(out, e),
    };
    let mut tail = Vec::new();
    if !opaque_and_key(&mut tail, &f) {
        return line(out, OPAQUE_TOO_LONG);
    }
    let code: &[u8] = srv.store.with_entry(&f.key, now, false, |e, _| {
        let Some(e) = e else {
            return b"NF";
        };
        if f.cas.is_some_and(|c| c != *e.cas) {
            return b"EX";
        }
        if f.stale {
            if let Some(ttl) = f.ttl {
                *e.exptime = ttl;
            }
            *e.bits = (*e.bits | STALE) & !TOKEN_SENT;
            *e.cas = srv.store.new_cas();
        } else {
            e.delete = true;
        }
        b"HD"
    });
    // As memcached: marking an item stale counts as neither.
    srv.stats.with(|c| match (code, f.stale) {
        (b"HD", false) => bump(&c.delete_hits, 1),
        (b"HD", true) => {}
        _ => bump(&c.delete_misses, 1),
    });
    if code == b"HD" && f.quiet {
        return;
    }
    out.extend_from_slice(code);
    out.extend_from_slice(&tail);
    out.extend_from_slice(b"\r\n");
}

pub fn ma(srv: &Server, t: &Tokens, now: u32, out: &mut Vec<u8>, pins: &Pins) {
    let f = match flags_md_ma(srv, t, now) {
        Ok(f) => f,
        Err(e) => return line(out, e),
    };
    let incr = match f.mode {
        0 | b'I' | b'+' => true,
        b'D' | b'-' => false,
        _ => return line(out, b"CLIENT_ERROR invalid mode for ma M token"),
    };
    let res = srv.store.delta_cas(
        &f.key,
        incr,
        f.delta,
        f.cas.unwrap_or(0),
        now,
        pins.contains(&f.key),
    );
    // (value, cas, exptime, created) of the item the reply describes.
    let item = match res {
        MetaDelta::Ok {
            value,
            cas,
            exptime,
        } => Some((value, cas, exptime, false)),
        MetaDelta::NonNumeric => {
            return line(
                out,
                b"CLIENT_ERROR cannot increment or decrement non-numeric value",
            )
        }
        MetaDelta::Exists => None,
        MetaDelta::NotFound => match f.vivify {
            Some(_) => {
                let digits = itoa::Buffer::new().format(f.initial).as_bytes().to_vec();
                let (res, cas) = srv.store.store_with(
                    Mode::Add,
                    &f.key,
                    0,
                    0,
                    &digits,
                    now,
                    StoreOpts::default(),
                );
                (res == Stored::Stored).then_some((f.initial, cas, 0, true))
            }
            None => None,
        },
    };
    // A miss that vivifies counts as nothing, as in memcached.
    srv.stats.with(|c| match (&res, incr, f.vivify.is_some()) {
        (MetaDelta::Ok { .. }, true, _) => bump(&c.incr_hits, 1),
        (MetaDelta::Ok { .. }, false, _) => bump(&c.decr_hits, 1),
        (MetaDelta::NotFound, true, false) => bump(&c.incr_misses, 1),
        (MetaDelta::NotFound, false, false) => bump(&c.decr_misses, 1),
        _ => {}
    });
    let start = out.len();
    let Some((value, cas, exptime, created)) = item else {
        out.extend_from_slice(match res {
            MetaDelta::Exists => b"EX",
            _ if f.vivify.is_some() => b"NS",
            _ => b"NF",
        });
        if !opaque_and_key(out, &f) {
            out.truncate(start);
            return line(out, OPAQUE_TOO_LONG);
        }
        return out.extend_from_slice(b"\r\n");
    };
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(value).as_bytes();
    if f.value {
        out.extend_from_slice(b"VA ");
        out.extend_from_slice(itoa::Buffer::new().format(digits.len()).as_bytes());
    } else {
        out.extend_from_slice(b"HD");
    }
    let mut exp = exptime;
    let mut ok = true;
    for tok in f.toks {
        match tok[0] {
            b'c' => num(out, b'c', cas),
            b't' => ttl(out, exp, now),
            b'T' => exp = f.ttl.unwrap_or(0),
            b'N' if created => exp = f.vivify.unwrap_or(0),
            b'O' if tok.len() > OPAQUE_MAX => {
                ok = false;
                break;
            }
            b'O' => {
                out.push(b' ');
                out.extend_from_slice(tok);
            }
            b'k' => key_token(out, &f.key, f.key_binary),
            _ => {}
        }
    }
    if exp != exptime {
        srv.store.with_entry(&f.key, now, false, |e, _| {
            if let Some(e) = e {
                *e.exptime = exp;
            }
        });
    }
    if !ok {
        out.truncate(start);
        return line(out, OPAQUE_TOO_LONG);
    }
    if f.value {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(digits);
    }
    out.extend_from_slice(b"\r\n");
    // memcached hides only a success, and not a fresh item's.
    if f.quiet && !created {
        out.truncate(start);
    }
}

/// `me <key> [b]`: memcached's debug line. `cls` is the slab class
/// memcached would put an item of this size in, with its default
/// `-f 1.25 -n 48` classes; ours has no slabs.
pub fn me(srv: &Server, t: &Tokens, now: u32, out: &mut Vec<u8>) {
    if t.ntokens() < 3 || t.get(1).len() > KEY_MAX {
        return line(out, BAD_FORMAT);
    }
    let mut key = Cow::Borrowed(t.get(1));
    if t.ntokens() >= 4 && t.get(2) == b"b" {
        match base64_decode(t.get(1)) {
            Some(k) => key = Cow::Owned(k),
            None => return line(out, BAD_FORMAT),
        }
    }
    srv.store.with_entry(&key, now, false, |e, _| {
        let Some(e) = e else {
            return line(out, b"EN");
        };
        out.extend_from_slice(b"ME ");
        if *e.bits & KEY_BINARY != 0 {
            base64_encode(e.key, out);
        } else {
            out.extend_from_slice(e.key);
        }
        let exp = if *e.exptime == 0 {
            -1
        } else {
            now.wrapping_sub(*e.exptime) as i32
        };
        // memcached's item header, CAS, key + NUL, value + CRLF, flags.
        let size = 48 + 8 + e.key.len() + 1 + e.value.len() + 2 + if e.flags != 0 { 4 } else { 0 };
        let line_text = format!(
            " exp={exp} la={} cas={} fetch={} cls={} size={size}\r\n",
            now.wrapping_sub(e.time),
            *e.cas,
            if *e.bits & crate::store::FETCHED != 0 {
                "yes"
            } else {
                "no"
            },
            slab_class(size),
        );
        out.extend_from_slice(line_text.as_bytes());
    });
    // memcached 1.6.18 counts `me` alone in cmd_meta (not mg/ms/md/ma/mn),
    // and only once the key parsed.
    srv.stats.with(|c| bump(&c.cmd_meta, 1));
}

/// The slab class memcached 1.6 picks for an item of `size` bytes with its
/// default settings (96-byte smallest chunk, factor 1.25, 512 KiB largest).
fn slab_class(size: usize) -> u32 {
    const CHUNK_MAX: f64 = 524_288.0;
    let mut chunk: u32 = 96;
    let mut class = 1;
    loop {
        if chunk as f64 >= CHUNK_MAX / 1.25 {
            return class;
        }
        chunk = chunk.div_ceil(8) * 8;
        if size <= chunk as usize {
            return class;
        }
        chunk = (chunk as f64 * 1.25) as u32;
        class += 1;
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(src: &[u8], out: &mut Vec<u8>) {
    for c in src.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        out.push(B64[(n >> 18) as usize & 63]);
        out.push(B64[(n >> 12) as usize & 63]);
        out.push(if c.len() > 1 {
            B64[(n >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if c.len() > 2 {
            B64[n as usize & 63]
        } else {
            b'='
        });
    }
}

/// memcached's decoder: bytes outside the alphabet are skipped, the rest
/// must come in groups of four, and the first padded group ends the input.
/// `None` where memcached returns 0 (its failure).
fn base64_decode(src: &[u8]) -> Option<Vec<u8>> {
    let val = |b: u8| -> Option<u32> {
        match b {
            b'A'..=b'Z' => Some((b - b'A') as u32),
            b'a'..=b'z' => Some((b - b'a' + 26) as u32),
            b'0'..=b'9' => Some((b - b'0' + 52) as u32),
            b'+' => Some(62),
            b'/' => Some(63),
            b'=' => Some(0),
            _ => None,
        }
    };
    let count = src.iter().filter(|&&b| val(b).is_some()).count();
    if count == 0 || count % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(count / 4 * 3);
    let (mut block, mut n, mut pad) = (0u32, 0, 0);
    for &b in src {
        let Some(v) = val(b) else { continue };
        if b == b'=' {
            pad += 1;
        }
        block = block << 6 | v;
        n += 1;
        if n == 4 {
            out.extend_from_slice(&[(block >> 16) as u8, (block >> 8) as u8, block as u8]);
            n = 0;
            block = 0;
            if pad > 0 {
                match pad {
                    1 => out.truncate(out.len() - 1),
                    2 => out.truncate(out.len() - 2),
                    _ => return None,
                }
                break;
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

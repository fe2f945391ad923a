//! The `stats` command: the general block in memcached's order and names,
//! `stats settings`, `stats reset`, and memcached's errors for the rest.

use crate::protocol::Tokens;
use crate::Server;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

pub fn stats(srv: &Server, t: &Tokens, now: u32, out: &mut Vec<u8>) {
    let mut s = String::new();
    match t.ntokens() {
        2 => general(srv, now, &mut s),
        _ => match t.get(1) {
            b"reset" => {
                srv.stats.reset();
                srv.store.reset_counts();
                srv.conns.total.store(0, Relaxed);
                srv.conns.rejected.store(0, Relaxed);
                out.extend_from_slice(b"RESET\r\n");
                return;
            }
            b"detail" => {
                let reply: &[u8] = match t.get(2) {
                    b"on" | b"off" => b"OK\r\n",
                    b"dump" => b"END\r\n",
                    _ => b"CLIENT_ERROR usage: stats detail on|off|dump\r\n",
                };
                out.extend_from_slice(reply);
                return;
            }
            b"settings" => settings(srv, &mut s),
            // Per-slab-class reports: this server has no slab classes.
            b"items" | b"slabs" | b"sizes" | b"conns" => {}
            _ => {
                out.extend_from_slice(b"ERROR\r\n");
                return;
            }
        },
    }
    s.push_str("END\r\n");
    out.extend_from_slice(s.as_bytes());
}

fn general(srv: &Server, now: u32, s: &mut String) {
    let c = srv.stats.snapshot();
    let totals = srv.store.totals();
    let (user, sys) = rusage();
    let mut stat = |name: &str, v: &dyn std::fmt::Display| {
        let _ = write!(s, "STAT {name} {v}\r\n");
    };
    stat("pid", &std::process::id());
    // memcached reports its clock minus ITEM_UPDATE_INTERVAL (60).
    stat("uptime", &(now - 60));
    stat("time", &srv.store.unix_time(now));
    stat("version", &crate::VERSION);
    stat("pointer_size", &64);
    stat("rusage_user", &user);
    stat("rusage_system", &sys);
    stat("max_connections", &srv.max_conns);
    stat("curr_connections", &srv.conns.curr.load(Relaxed));
    stat("total_connections", &srv.conns.total.load(Relaxed));
    stat("rejected_connections", &srv.conns.rejected.load(Relaxed));
    stat("cmd_get", &c.cmd_get);
    stat("cmd_set", &c.cmd_set);
    stat("cmd_flush", &c.cmd_flush);
    stat("cmd_touch", &c.cmd_touch);
    stat("cmd_meta", &c.cmd_meta);
    stat("get_hits", &c.get_hits);
    stat("get_misses", &c.get_misses);
    stat("get_expired", &totals.expired);
    stat("get_flushed", &totals.flushed);
    stat("delete_misses", &c.delete_misses);
    stat("delete_hits", &c.delete_hits);
    stat("incr_misses", &c.incr_misses);
    stat("incr_hits", &c.incr_hits);
    stat("decr_misses", &c.decr_misses);
    stat("decr_hits", &c.decr_hits);
    stat("cas_misses", &c.cas_misses);
    stat("cas_hits", &c.cas_hits);
    stat("cas_badval", &c.cas_badval);
    stat("touch_hits", &c.touch_hits);
    stat("touch_misses", &c.touch_misses);
    stat("store_too_large", &c.store_too_large);
    stat("store_no_memory", &c.store_no_memory);
    stat("auth_cmds", &0);
    stat("auth_errors", &0);
    stat("bytes_read", &c.bytes_read);
    stat("bytes_written", &c.bytes_written);
    stat("limit_maxbytes", &srv.store.limit());
    stat("accepting_conns", &1);
    stat("threads", &srv.threads);
    stat("bytes", &totals.bytes);
    stat("curr_items", &totals.curr_items);
    stat("total_items", &totals.total_items);
    stat("evictions", &totals.evictions);
    stat("reclaimed", &totals.reclaimed);
}

fn settings(srv: &Server, s: &mut String) {
    let mut stat = |name: &str, v: &dyn std::fmt::Display| {
        let _ = write!(s, "STAT {name} {v}\r\n");
    };
    stat("maxbytes", &srv.store.limit());
    stat("maxconns", &srv.max_conns);
    stat("tcpport", &srv.addr.port());
    stat("udpport", &0);
    stat("inter", &srv.addr.ip());
    stat("evictions", &"on");
    stat("num_threads", &srv.threads);
    stat("cas_enabled", &"yes");
    stat("item_size_max", &srv.store.item_size_max);
    stat("flush_enabled", &"yes");
    stat("shards", &srv.store.shard_count());
}

/// This process's user and system CPU time, as memcached prints them.
fn rusage() -> (String, String) {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes one `struct rusage` into the pointer it is
    // given; `u` is such a struct, zero-initialised and alive for the call.
    let u = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr());
        u.assume_init()
    };
    let f = |t: libc::timeval| format!("{}.{:06}", t.tv_sec, t.tv_usec);
    (f(u.ru_utime), f(u.ru_stime))
}

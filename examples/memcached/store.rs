//! The item store: shards, each a mutex around a slab of items, a hash
//! index of slab slots and an LRU list threaded through the slots.
//!
//! Memory: an item is one 48-byte slab slot plus one heap block holding the
//! key and the value (no `\r\n`), and a 4-byte slot number in the index.
//! Every item is charged that (with malloc's rounding) against its shard's
//! share of `-m`; storing past it evicts from the shard's LRU tail.
//! Times are memcached's: seconds since the process started (minus 2), and
//! expiration times converted with its `realtime` rules.

use hashbrown::HashTable;
use slab::Slab;
use std::sync::atomic::{
    AtomicU32, AtomicU64, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::{Mutex, MutexGuard};

const NIL: u32 = u32::MAX;
/// memcached's item header (48) + CAS (8) + key NUL (1) + value `\r\n` (2):
/// the `-I` limit applies to this plus key and value (+4 with flags).
pub const MEMCACHED_ITEM_OVERHEAD: usize = 59;
/// Index cost per item: a 4-byte slot at hashbrown's 7/8 load plus its
/// control byte, rounded up.
const INDEX_COST: usize = 8;

struct Item {
    /// Key then value.
    data: Box<[u8]>,
    cas: u64,
    prev: u32,
    next: u32,
    exptime: u32,
    flags: u32,
    /// Last store or touch (for delayed `flush_all`).
    time: u32,
    klen: u8,
    /// memcached's per-item bits the meta commands read: [`FETCHED`],
    /// [`TOKEN_SENT`], [`STALE`], [`KEY_BINARY`].
    bits: u8,
}

/// Read since stored (`mg h`, `me fetch=`).
pub const FETCHED: u8 = 1;
/// A client was told it won the right to recache (`mg` W, then Z).
pub const TOKEN_SENT: u8 = 2;
/// Marked stale by `md I` or an `ms I` with an older CAS (`mg` X).
pub const STALE: u8 = 4;
/// Stored with a base64 key (`ms b`): `k` answers it base64-encoded.
pub const KEY_BINARY: u8 = 8;

/// What [`Store::store_with`] adds to a plain storage command for `ms`.
#[derive(Clone, Copy, Default)]
pub struct StoreOpts {
    /// `ms C` with append/prepend: the CAS the item must have (0: any).
    pub cas: u64,
    /// `ms I`: a CAS older than the item's still stores, as stale.
    pub stale_ok: bool,
    pub key_binary: bool,
}

/// One live item as the meta commands see it, under its shard's lock.
pub struct Entry<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub flags: u32,
    pub cas: &'a mut u64,
    pub exptime: &'a mut u32,
    pub bits: &'a mut u8,
    pub time: u32,
    /// Set by the caller: bump in the LRU and mark fetched afterwards.
    pub bump: bool,
    /// Set by the caller: unlink the item afterwards.
    pub delete: bool,
}

/// `ma`'s outcome: `incr`/`decr`'s plus a CAS mismatch, and on success
/// the new value with the item's new CAS and its expiration time.
pub enum MetaDelta {
    Ok { value: u64, cas: u64, exptime: u32 },
    NotFound,
    NonNumeric,
    Exists,
}

impl Item {
    fn key(&self) -> &[u8] {
        &self.data[..self.klen as usize]
    }
    fn value(&self) -> &[u8] {
        &self.data[self.klen as usize..]
    }
    fn charge(&self) -> usize {
        charge(self.data.len())
    }
}

/// Memory charged for an item whose key and value total `len` bytes.
fn charge(len: usize) -> usize {
    // glibc malloc: 8 bytes of header, 16-byte granularity, 32 at least.
    let block = (len + 8).div_ceil(16).max(2) * 16;
    std::mem::size_of::<Item>() + block + INDEX_COST
}

/// How a storage command stores.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    Cas(u64),
}

/// A storage command's outcome.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[allow(clippy::enum_variant_names)] // the names are the protocol's replies
pub enum Stored {
    Stored,
    NotStored,
    Exists,
    NotFound,
    /// The item cannot fit even in an empty shard.
    NoMemory,
}

/// Why a key was not found (for `get_expired` / `get_flushed`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Miss {
    Absent,
    Expired,
    Flushed,
}

/// `incr`/`decr` outcome.
pub enum Delta {
    Ok(u64),
    NotFound,
    NonNumeric,
}

struct Shard {
    index: HashTable<u32>,
    items: Slab<Item>,
    head: u32,
    tail: u32,
    mem: usize,
    limit: usize,
    counts: Counts,
}

/// A shard's counters for `stats`, zeroed by `stats reset`.
#[derive(Clone, Copy, Default)]
struct Counts {
    total_items: u64,
    evictions: u64,
    reclaimed: u64,
    expired: u64,
    flushed: u64,
}

/// Store-wide numbers for `stats`.
#[derive(Default)]
pub struct Totals {
    pub curr_items: u64,
    pub total_items: u64,
    pub bytes: u64,
    pub evictions: u64,
    pub reclaimed: u64,
    /// Lookups (by any command) that found the key expired: `get_expired`.
    pub expired: u64,
    /// Lookups that found the key flushed: `get_flushed`.
    pub flushed: u64,
}

pub struct Store {
    shards: Box<[Mutex<Shard>]>,
    shard_bits: u32,
    seed: u64,
    cas: AtomicU64,
    /// memcached's `settings.oldest_live` (0: no flush pending): items
    /// last stored at or before it are flushed once the clock reaches it.
    oldest_live: AtomicU32,
    /// memcached's `settings.oldest_cas`: a flush that took effect at once
    /// also kills items of its own second, which have a lower CAS.
    oldest_cas: AtomicU64,
    pub item_size_max: usize,
    limit: AtomicUsize,
    /// Unix time at which relative time 0 was.
    process_started: i64,
}

/// How far into memcached's clock it starts (see [`Store::new`]).
pub const UPTIME_OFFSET: i64 = 62;

/// memcached's `REALTIME_MAXDELTA`: larger expiration times are absolute.
const REALTIME_MAXDELTA: i64 = 60 * 60 * 24 * 30;

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Store {
    /// A store of `limit` bytes. Shards get an equal share each; there are
    /// as many as keep a share at least twice the largest item (up to 64).
    pub fn new(limit: usize, item_size_max: usize) -> Store {
        let mut shard_bits = 0;
        while shard_bits < 6 && limit >> (shard_bits + 1) >= 2 * item_size_max {
            shard_bits += 1;
        }
        let n = 1usize << shard_bits;
        let shards = (0..n)
            .map(|_| {
                Mutex::new(Shard {
                    index: HashTable::new(),
                    items: Slab::new(),
                    head: NIL,
                    tail: NIL,
                    mem: 0,
                    limit: limit / n,
                    counts: Counts::default(),
                })
            })
            .collect();
        let seed = std::collections::hash_map::RandomState::new();
        let seed = std::hash::BuildHasher::hash_one(&seed, 0x6d656d63u64);
        Store {
            shards,
            shard_bits,
            seed,
            cas: AtomicU64::new(0),
            oldest_live: AtomicU32::new(0),
            oldest_cas: AtomicU64::new(0),
            item_size_max,
            limit: AtomicUsize::new(limit),
            // memcached starts its clock 62 seconds in (2 keep 0 and 1
            // special, 60 are its ITEM_UPDATE_INTERVAL); `mg t` on an item
            // already expired shows that offset.
            process_started: unix_now() - UPTIME_OFFSET,
        }
    }

    /// The memory limit (`-m`, or the last `cache_memlimit`).
    pub fn limit(&self) -> usize {
        self.limit.load(Relaxed)
    }

    /// `cache_memlimit`: a new limit, split over the shards as at start;
    /// shards over their share evict on their next store.
    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Relaxed);
        let share = limit / self.shards.len();
        for s in self.shards.iter() {
            s.lock().unwrap_or_else(|e| e.into_inner()).limit = share;
        }
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// memcached's `current_time`.
    pub fn now(&self) -> u32 {
        (unix_now() - self.process_started).max(UPTIME_OFFSET) as u32
    }

    /// Unix time of relative time `t`.
    pub fn unix_time(&self, t: u32) -> i64 {
        self.process_started + t as i64
    }

    /// memcached's `realtime(EXPTIME_TO_POSITIVE_TIME(exptime))`.
    pub fn realtime(&self, exptime: i32, now: u32) -> u32 {
        let e = if exptime < 0 {
            REALTIME_MAXDELTA + 1
        } else {
            exptime as i64
        };
        if e == 0 {
            0
        } else if e > REALTIME_MAXDELTA {
            if e <= self.process_started {
                1
            } else {
                (e - self.process_started) as u32
            }
        } else {
            (e as u32).wrapping_add(now)
        }
    }

    /// memcached's size check: header, key, value and flags within `-I`.
    pub fn fits(&self, klen: usize, vlen: usize, flags: u32) -> bool {
        MEMCACHED_ITEM_OVERHEAD + klen + vlen + if flags != 0 { 4 } else { 0 } <= self.item_size_max
    }

    fn hash(&self, key: &[u8]) -> u64 {
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut h = self.seed ^ (key.len() as u64).wrapping_mul(K);
        let mut chunks = key.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().unwrap());
            h = (h ^ w).wrapping_mul(K).rotate_left(29);
        }
        let rem = chunks.remainder();
        if !rem.is_empty() {
            let mut b = [0u8; 8];
            b[..rem.len()].copy_from_slice(rem);
            h = (h ^ u64::from_le_bytes(b)).wrapping_mul(K).rotate_left(29);
        }
        // murmur3's finalizer: spreads every input bit over the output.
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }

    fn shard(&self, hash: u64) -> MutexGuard<'_, Shard> {
        let i = if self.shard_bits == 0 {
            0
        } else {
            ((hash >> 40) & ((1 << self.shard_bits) - 1)) as usize
        };
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    fn next_cas(&self) -> u64 {
        self.cas.fetch_add(1, Relaxed) + 1
    }

    /// Whether an item is dead, and why.
    fn dead(&self, it: &Item, now: u32) -> Option<Miss> {
        // Acquire pairs with `flush`'s Release: a new oldest_live comes
        // with its oldest_cas.
        let oldest = self.oldest_live.load(Acquire);
        if oldest != 0
            && oldest <= now
            && (it.time <= oldest || it.cas < self.oldest_cas.load(Relaxed))
        {
            Some(Miss::Flushed)
        } else if it.exptime != 0 && it.exptime <= now {
            Some(Miss::Expired)
        } else {
            None
        }
    }

    /// Looks `key` up, dropping it if dead; `Ok(slot)` when live.
    fn lookup(&self, sh: &mut Shard, hash: u64, key: &[u8], now: u32) -> Result<u32, Miss> {
        let slot = sh.find(hash, key).ok_or(Miss::Absent)?;
        match self.dead(&sh.items[slot as usize], now) {
            None => Ok(slot),
            Some(why) => {
                // memcached's do_item_get counts these for every command
                // that looks a key up, not only for `get`.
                sh.remove(slot, hash);
                match why {
                    Miss::Expired => sh.counts.expired += 1,
                    _ => sh.counts.flushed += 1,
                }
                Err(why)
            }
        }
    }

    /// `get`/`gets`/`gat`/`gats` for one key: on a hit appends the `VALUE`
    /// line and the data to `out`. `touch` sets a new expiration time.
    pub fn get_into(
        &self,
        key: &[u8],
        now: u32,
        with_cas: bool,
        touch: Option<u32>,
        out: &mut Vec<u8>,
    ) -> Result<(), Miss> {
        let hash = self.hash(key);
        let mut sh = self.shard(hash);
        let slot = self.lookup(&mut sh, hash, key, now)?;
        sh.bump(slot);
        let it = &mut sh.items[slot as usize];
        it.bits |= FETCHED;
        if let Some(exp) = touch {
            it.exptime = exp;
            it.time = now;
        }
        let value = it.value();
        out.reserve(value.len() + key.len() + 48);
        out.extend_from_slice(b"VALUE ");
        out.extend_from_slice(key);
        out.push(b' ');
        out.extend_from_slice(itoa::Buffer::new().format(it.flags).as_bytes());
        out.push(b' ');
        out.extend_from_slice(itoa::Buffer::new().format(value.len()).as_bytes());
        if with_cas {
            out.push(b' ');
            out.extend_from_slice(itoa::Buffer::new().format(it.cas).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
        Ok(())
    }

    /// A storage command. The caller has checked the size with [`fits`](Self::fits).
    pub fn store(
        &self,
        mode: Mode,
        key: &[u8],
        flags: u32,
        exptime: u32,
        value: &[u8],
        now: u32,
    ) -> Stored {
        self.store_with(mode, key, flags, exptime, value, now, StoreOpts::default())
            .0
    }

    /// [`store`](Self::store) with `ms`'s extras; also returns the stored
    /// item's CAS (0 when nothing was stored).
    #[allow(clippy::too_many_arguments)]
    pub fn store_with(
        &self,
        mode: Mode,
        key: &[u8],
        flags: u32,
        exptime: u32,
        value: &[u8],
        now: u32,
        opts: StoreOpts,
    ) -> (Stored, u64) {
        let hash = self.hash(key);
        let mut sh = self.shard(hash);
        let old = self.lookup(&mut sh, hash, key, now).ok();
        let mut bits = if opts.key_binary { KEY_BINARY } else { 0 };
        let mut exptime = exptime;
        let data: Box<[u8]> = match (mode, old) {
            (Mode::Add, Some(slot)) => {
                // memcached refreshes the existing item's LRU position.
                sh.bump(slot);
                return (Stored::NotStored, 0);
            }
            (Mode::Replace | Mode::Append | Mode::Prepend, None) => return (Stored::NotStored, 0),
            (Mode::Cas(_), None) => return (Stored::NotFound, 0),
            (Mode::Cas(c), Some(slot)) if sh.items[slot as usize].cas != c => {
                let o = &sh.items[slot as usize];
                if !(opts.stale_ok && c < o.cas) {
                    return (Stored::Exists, 0);
                }
                // memcached keeps the old TTL and win token, and marks it stale.
                exptime = o.exptime;
                bits |= STALE | (o.bits & TOKEN_SENT);
                [key, value].concat().into()
            }
            (Mode::Append | Mode::Prepend, Some(slot))
                if opts.cas != 0 && sh.items[slot as usize].cas != opts.cas =>
            {
                return (Stored::Exists, 0);
            }
            (Mode::Append, Some(slot)) => {
                [&sh.items[slot as usize].data[..], value].concat().into()
            }
            (Mode::Prepend, Some(slot)) => {
                let old = &sh.items[slot as usize];
                [old.key(), value, old.value()].concat().into()
            }
            _ => [key, value].concat().into(),
        };
        let (flags, exptime) = match (mode, old) {
            // append/prepend keep the old item's flags and expiration time.
            (Mode::Append | Mode::Prepend, Some(slot)) => {
                let o = &sh.items[slot as usize];
                (o.flags, o.exptime)
            }
            _ => (flags, exptime),
        };
        if let Some(slot) = old {
            sh.remove(slot, hash);
        }
        let item = Item {
            data,
            cas: self.next_cas(),
            prev: NIL,
            next: NIL,
            exptime,
            flags,
            time: now,
            klen: key.len() as u8,
            bits,
        };
        let cas = item.cas;
        if sh.insert(
            hash,
            item,
            |it| self.hash(it.key()),
            |it| self.dead(it, now).is_some(),
        ) {
            (Stored::Stored, cas)
        } else {
            (Stored::NoMemory, 0)
        }
    }

    /// Runs `f` on `key`'s live item (`None` on a miss), under the shard
    /// lock; with `vivify`, a miss first creates an empty item (flags 0,
    /// no expiry) and `f` is told it was created. Afterwards honours the
    /// entry's `bump` and `delete`.
    pub fn with_entry<R>(
        &self,
        key: &[u8],
        now: u32,
        vivify: bool,
        f: impl FnOnce(Option<&mut Entry>, bool) -> R,
    ) -> R {
        let hash = self.hash(key);
        let mut sh = self.shard(hash);
        let mut slot = self.lookup(&mut sh, hash, key, now).ok();
        let mut created = false;
        if slot.is_none() && vivify {
            let item = Item {
                data: key.into(),
                cas: self.next_cas(),
                prev: NIL,
                next: NIL,
                exptime: 0,
                flags: 0,
                time: now,
                klen: key.len() as u8,
                bits: 0,
            };
            if sh.insert(
                hash,
                item,
                |it| self.hash(it.key()),
                |it| self.dead(it, now).is_some(),
            ) {
                slot = sh.find(hash, key);
                created = slot.is_some();
            }
        }
        let Some(slot) = slot else {
            return f(None, false);
        };
        let it = &mut sh.items[slot as usize];
        let (k, v) = it.data.split_at(it.klen as usize);
        let mut e = Entry {
            key: k,
            value: v,
            flags: it.flags,
            cas: &mut it.cas,
            exptime: &mut it.exptime,
            bits: &mut it.bits,
            time: it.time,
            bump: false,
            delete: false,
        };
        let r = f(Some(&mut e), created);
        let (bump, delete) = (e.bump, e.delete);
        if delete {
            sh.remove(slot, hash);
        } else if bump {
            sh.items[slot as usize].bits |= FETCHED;
            sh.bump(slot);
        }
        r
    }

    /// A fresh CAS value (`md I` gives the item a new one).
    pub fn new_cas(&self) -> u64 {
        self.next_cas()
    }

    /// `delete`: true when a live item was removed.
    pub fn delete(&self, key: &[u8], now: u32) -> bool {
        let hash = self.hash(key);
        let mut sh = self.shard(hash);
        match self.lookup(&mut sh, hash, key, now) {
            Ok(slot) => {
                sh.remove(slot, hash);
                true
            }
            Err(_) => false,
        }
    }

    /// Drops `key` whatever its state (a `set` too large for the cache
    /// must not leave the old value readable, as in memcached).
    pub fn unlink(&self, key: &[u8], now: u32) {
        let hash = self.hash(key);
        let mut sh = self.shard(hash);
        // Through `lookup`, as memcached's item_get: a dead item is counted.
        if let Ok(slot) = self.lookup(&mut sh, hash, key, now) {
            sh.remove(slot, hash);
        }
    }

    /// `touch`: true when a live item got the new expiration time.
    pub fn touch(&self, key: &[u8], exptime: u32, now: u32) -> bool {
        let hash = self.hash(key);
        let mut sh = self.shard(hash);
        match self.lookup(&mut sh, hash, key, now) {
            Ok(slot) => {
                sh.bump(slot);
                let it = &mut sh.items[slot as usize];
                it.exptime = exptime;
                it.time = now;
                it.bits |= FETCHED;
                true
            }
            Err(_) => false,
        }
    }

    /// `incr`/`decr` with memcached's rules: 64-bit wrap on incr, floor at
    /// 0 on decr, the value parsed as `strtoull` does; a result no longer
    /// than the old value is written in place, padded with spaces, unless
    /// the item is `pinned` by a reply not yet written (see [`crate::pins`]).
    pub fn delta(&self, key: &[u8], incr: bool, delta: u64, now: u32, pinned: bool) -> Delta {
        match self.delta_cas(key, incr, delta, 0, now, pinned) {
            MetaDelta::Ok { value, .. } => Delta::Ok(value),
            MetaDelta::NonNumeric => Delta::NonNumeric,
            MetaDelta::NotFound | MetaDelta::Exists => Delta::NotFound,
        }
    }

    /// [`delta`](Self::delta) that first compares the item's CAS with
    /// `cas` (0: no comparison, as memcached).
    pub fn delta_cas(
        &self,
        key: &[u8],
        incr: bool,
        delta: u64,
        cas: u64,
        now: u32,
        pinned: bool,
    ) -> MetaDelta {
        let hash = self.hash(key);
        let mut sh = self.shard(hash);
        let Ok(slot) = self.lookup(&mut sh, hash, key, now) else {
            return MetaDelta::NotFound;
        };
        let it = &sh.items[slot as usize];
        let exptime = it.exptime;
        let value = it.value();
        // memcached refuses an empty value before comparing the CAS, and
        // parses the number after.
        if value.is_empty() {
            return MetaDelta::NonNumeric;
        }
        if cas != 0 && it.cas != cas {
            return MetaDelta::Exists;
        }
        // memcached parses the value followed by its "\r\n".
        let mut probe = [0u8; 24];
        let parsed = if value.len() < 22 {
            probe[..value.len()].copy_from_slice(value);
            probe[value.len()..value.len() + 2].copy_from_slice(b"\r\n");
            crate::protocol::safe_strtoull(&probe[..value.len() + 2])
        } else {
            crate::protocol::safe_strtoull(&[value, b"\r\n"].concat())
        };
        let Some(v) = parsed else {
            return MetaDelta::NonNumeric;
        };
        let v = if incr {
            v.wrapping_add(delta)
        } else {
            v.saturating_sub(delta)
        };
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(v).as_bytes();
        let cas = self.next_cas();
        if digits.len() <= value.len() && !pinned {
            let it = &mut sh.items[slot as usize];
            let k = it.klen as usize;
            let val = &mut it.data[k..];
            val[..digits.len()].copy_from_slice(digits);
            val[digits.len()..].fill(b' ');
            it.cas = cas;
            it.time = now;
            sh.bump(slot);
        } else {
            let old = sh.remove(slot, hash);
            let item = Item {
                data: [old.key(), digits].concat().into(),
                cas,
                prev: NIL,
                next: NIL,
                exptime: old.exptime,
                flags: old.flags,
                time: now,
                klen: old.klen,
                // memcached's copy is a new item: only the key's kind stays.
                bits: old.bits & KEY_BINARY,
            };
            sh.insert(
                hash,
                item,
                |it| self.hash(it.key()),
                |it| self.dead(it, now).is_some(),
            );
        }
        MetaDelta::Ok {
            value: v,
            cas,
            exptime,
        }
    }

    /// `flush_all [delay]`, lazily as memcached: items stored before the
    /// flush (or, with a delay, before its time) die when that time comes
    /// and are dropped when next looked up, counted in `get_flushed`, or
    /// reclaimed when their memory is needed. O(1) and takes no lock, so a
    /// flush of millions of items stalls no loop.
    pub fn flush(&self, delay: i32, now: u32) {
        let new_oldest = if delay > 0 {
            self.realtime(delay, now)
        } else {
            now
        };
        let oldest = new_oldest.saturating_sub(1);
        if oldest <= now {
            // memcached takes a CAS number for this marker, so `gets`
            // shows the same CAS values afterwards.
            self.oldest_cas.store(self.next_cas(), Relaxed);
        }
        self.oldest_live.store(oldest, Release);
    }

    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for s in self.shards.iter() {
            let sh = s.lock().unwrap_or_else(|e| e.into_inner());
            t.curr_items += sh.items.len() as u64;
            t.total_items += sh.counts.total_items;
            t.bytes += sh.mem as u64;
            t.evictions += sh.counts.evictions;
            t.reclaimed += sh.counts.reclaimed;
            t.expired += sh.counts.expired;
            t.flushed += sh.counts.flushed;
        }
        t
    }

    /// `stats reset`: zeroes the counters (`curr_items` and `bytes` are
    /// state, not counters, and stay).
    pub fn reset_counts(&self) {
        for s in self.shards.iter() {
            s.lock().unwrap_or_else(|e| e.into_inner()).counts = Counts::default();
        }
    }
}

impl Shard {
    fn find(&self, hash: u64, key: &[u8]) -> Option<u32> {
        let items = &self.items;
        self.index
            .find(hash, |&s| items[s as usize].key() == key)
            .copied()
    }

    fn unlink_lru(&mut self, slot: u32) {
        let (prev, next) = {
            let it = &self.items[slot as usize];
            (it.prev, it.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.items[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.items[next as usize].prev = prev;
        }
    }

    fn push_head(&mut self, slot: u32) {
        let old = self.head;
        {
            let it = &mut self.items[slot as usize];
            it.prev = NIL;
            it.next = old;
        }
        if old == NIL {
            self.tail = slot;
        } else {
            self.items[old as usize].prev = slot;
        }
        self.head = slot;
    }

    /// Marks an item most recently used.
    fn bump(&mut self, slot: u32) {
        if self.head != slot {
            self.unlink_lru(slot);
            self.push_head(slot);
        }
    }

    fn remove(&mut self, slot: u32, hash: u64) -> Item {
        self.unlink_lru(slot);
        if let Ok(e) = self.index.find_entry(hash, |&s| s == slot) {
            e.remove();
        }
        let it = self.items.remove(slot as usize);
        self.mem -= it.charge();
        it
    }

    /// Links a new item, evicting from the LRU tail to make room; false
    /// (and nothing stored) when it cannot fit even alone.
    fn insert(
        &mut self,
        hash: u64,
        item: Item,
        rehash: impl Fn(&Item) -> u64,
        dead: impl Fn(&Item) -> bool,
    ) -> bool {
        let need = item.charge();
        if need > self.limit {
            return false;
        }
        // As memcached's allocator, look at a few items at the LRU tail
        // first and reclaim the dead ones (expired, flushed): their memory
        // comes back without waiting for a lookup or an eviction.
        for _ in 0..5 {
            if self.tail == NIL || !dead(&self.items[self.tail as usize]) {
                break;
            }
            let victim = self.tail;
            let h = rehash(&self.items[victim as usize]);
            self.remove(victim, h);
            self.counts.reclaimed += 1;
        }
        while self.mem + need > self.limit && self.tail != NIL {
            let victim = self.tail;
            let it = &self.items[victim as usize];
            // memcached: an expired tail item's memory is "reclaimed", a
            // live one's is an eviction.
            if dead(it) {
                self.counts.reclaimed += 1;
            } else {
                self.counts.evictions += 1;
            }
            let h = rehash(it);
            self.remove(victim, h);
        }
        let slot = self.items.insert(item) as u32;
        let items = &self.items;
        self.index
            .insert_unique(hash, slot, |&s| rehash(&items[s as usize]));
        self.push_head(slot);
        self.mem += need;
        self.counts.total_items += 1;
        true
    }
}

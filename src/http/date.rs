//! HTTP-date formatting (RFC 9110 §5.6.7, the IMF-fixdate form).
//!
//! `Sun, 06 Nov 1994 08:49:37 GMT` — always 29 ASCII bytes. The formatter is
//! pure; [`DateCache`] keeps the last rendering so a server renders the
//! `Date` header at most once per second. There is no global state: each
//! event loop owns its own cache.

use std::time::{SystemTime, UNIX_EPOCH};

/// Length in bytes of an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const HTTP_DATE_LEN: usize = 29;

/// Seconds since the epoch of 9999-12-31T23:59:59Z, the last instant an
/// IMF-fixdate (four-digit year) can express.
const MAX_SECS: u64 = 253_402_300_799;

const DAY_NAMES: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
const MONTH_NAMES: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

fn is_leap(year: u64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn year_days(year: u64) -> u64 {
    if is_leap(year) {
        366
    } else {
        365
    }
}

fn month_days(year: u64, month0: usize) -> u64 {
    match month0 {
        1 if is_leap(year) => 29,
        1 => 28,
        3 | 5 | 8 | 10 => 30,
        _ => 31,
    }
}

fn put2(out: &mut [u8], at: usize, v: u64) {
    out[at] = b'0' + (v / 10 % 10) as u8;
    out[at + 1] = b'0' + (v % 10) as u8;
}

/// Formats `secs` seconds after the Unix epoch as an IMF-fixdate.
///
/// Values past 9999-12-31T23:59:59Z are clamped to that instant.
pub fn format_unix_secs(secs: u64) -> [u8; HTTP_DATE_LEN] {
    let secs = secs.min(MAX_SECS);
    let mut days = secs / 86_400;
    let tod = secs % 86_400;
    let weekday = (days % 7) as usize; // 1970-01-01 was a Thursday

    // Any 400 consecutive Gregorian years hold exactly 146_097 days.
    let mut year = 1970 + 400 * (days / 146_097);
    days %= 146_097;
    while days >= year_days(year) {
        days -= year_days(year);
        year += 1;
    }
    let mut month0 = 0;
    while month0 < 11 && days >= month_days(year, month0) {
        days -= month_days(year, month0);
        month0 += 1;
    }
    let mday = days + 1;

    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[0..3].copy_from_slice(DAY_NAMES[weekday]);
    put2(&mut out, 5, mday);
    out[8..11].copy_from_slice(MONTH_NAMES[month0]);
    put2(&mut out, 12, year / 100);
    put2(&mut out, 14, year);
    put2(&mut out, 17, tod / 3600);
    put2(&mut out, 20, tod / 60 % 60);
    put2(&mut out, 23, tod % 60);
    out
}

/// Formats `t` as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
///
/// Sub-second precision is dropped; times before the epoch are clamped to
/// the epoch and times after year 9999 to its last second.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
/// assert_eq!(&muduo::http::format_http_date(t), b"Sun, 06 Nov 1994 08:49:37 GMT");
/// ```
pub fn format_http_date(t: SystemTime) -> [u8; HTTP_DATE_LEN] {
    format_unix_secs(unix_secs(t))
}

/// Parses an HTTP date in any of the three forms a recipient must accept
/// (RFC 9110 §5.6.7): IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the
/// obsolete RFC 850 form (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime
/// (`Sun Nov  6 08:49:37 1994`), into seconds since the Unix epoch. Returns
/// `None` for anything else, which callers treat as an absent header.
/// Parsing is done by the `httpdate` crate.
///
/// ```
/// use muduo::http::parse_http_date;
/// assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
/// assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), Some(784_111_777));
/// assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Some(784_111_777));
/// assert_eq!(parse_http_date("yesterday"), None);
/// ```
pub fn parse_http_date(s: &str) -> Option<u64> {
    let t = httpdate::parse_http_date(s.trim()).ok()?;
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A per-thread cache of the rendered `Date` header value.
///
/// [`DateCache::get`] re-renders only when the whole second of the time it
/// is given differs from the cached one, so a busy event loop formats the
/// date at most once per second. Not shared between threads and not global:
/// give each event loop its own.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let mut cache = muduo::http::DateCache::new();
/// let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
/// assert_eq!(cache.get(t), b"Sun, 06 Nov 1994 08:49:37 GMT");
/// assert_eq!(cache.get(t + Duration::from_millis(999)), b"Sun, 06 Nov 1994 08:49:37 GMT");
/// assert_eq!(cache.get(t + Duration::from_secs(1)), b"Sun, 06 Nov 1994 08:49:38 GMT");
/// ```
#[derive(Clone, Debug)]
pub struct DateCache {
    secs: Option<u64>,
    buf: [u8; HTTP_DATE_LEN],
}

impl DateCache {
    /// An empty cache; the first [`get`](Self::get) renders.
    pub const fn new() -> Self {
        DateCache {
            secs: None,
            buf: [0; HTTP_DATE_LEN],
        }
    }

    /// The IMF-fixdate for `now`, re-rendered only if its second changed.
    pub fn get(&mut self, now: SystemTime) -> &[u8] {
        let secs = unix_secs(now);
        if self.secs != Some(secs) {
            self.buf = format_unix_secs(secs);
            self.secs = Some(secs);
        }
        &self.buf
    }

    /// The last rendered value, rendering now if the cache is empty. The
    /// HTTP server refreshes its loops' caches from a one-second timer and
    /// reads them with this, so a request costs no clock read.
    pub fn now_cached(&mut self) -> &[u8] {
        if self.secs.is_none() {
            return self.now();
        }
        &self.buf
    }

    /// Shorthand for `self.get(SystemTime::now())`.
    pub fn now(&mut self) -> &[u8] {
        self.get(SystemTime::now())
    }
}

impl Default for DateCache {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn fmt(secs: u64) -> String {
        String::from_utf8(format_unix_secs(secs).to_vec()).unwrap()
    }

    #[test]
    fn known_dates() {
        // Reference values from `date -u -d @SECS '+%a, %d %b %Y %H:%M:%S GMT'`.
        let cases: &[(u64, &str)] = &[
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (951_868_799, "Tue, 29 Feb 2000 23:59:59 GMT"),
            (951_868_800, "Wed, 01 Mar 2000 00:00:00 GMT"),
            (978_307_199, "Sun, 31 Dec 2000 23:59:59 GMT"),
            (1_709_164_800, "Thu, 29 Feb 2024 00:00:00 GMT"),
            (1_735_689_599, "Tue, 31 Dec 2024 23:59:59 GMT"),
            (4_107_542_400, "Mon, 01 Mar 2100 00:00:00 GMT"),
            (4_107_542_399, "Sun, 28 Feb 2100 23:59:59 GMT"),
            (253_402_300_799, "Fri, 31 Dec 9999 23:59:59 GMT"),
            (u64::MAX, "Fri, 31 Dec 9999 23:59:59 GMT"),
        ];
        for &(secs, want) in cases {
            assert_eq!(fmt(secs), want, "secs={secs}");
        }
    }

    #[test]
    fn consecutive_days_are_consistent() {
        // Walk day by day across several centuries: each date string must
        // differ from the previous day's and the weekday must cycle.
        let mut prev = fmt(0);
        for day in 1..(400 * 366) {
            let cur = fmt(day * 86_400);
            assert_ne!(cur, prev);
            assert_eq!(cur.len(), HTTP_DATE_LEN);
            prev = cur;
        }
    }

    #[test]
    fn before_epoch_clamps() {
        let t = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(&format_http_date(t), b"Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn cache_rerenders_per_second() {
        let mut c = DateCache::default();
        let t = UNIX_EPOCH + Duration::from_secs(59);
        assert_eq!(c.get(t), b"Thu, 01 Jan 1970 00:00:59 GMT");
        assert_eq!(
            c.get(t + Duration::from_millis(500)),
            b"Thu, 01 Jan 1970 00:00:59 GMT"
        );
        assert_eq!(
            c.get(t + Duration::from_secs(1)),
            b"Thu, 01 Jan 1970 00:01:00 GMT"
        );
        assert_eq!(c.now().len(), HTTP_DATE_LEN);
    }
}

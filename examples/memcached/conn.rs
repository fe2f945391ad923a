//! Per-connection driving: run every complete command in the input
//! buffer, answer the whole batch with one send, and remember how many
//! bytes the next command needs so a large value arriving over many reads
//! is looked at once, not re-parsed on every read.

use crate::commands::{execute, Step};
use crate::pins::Pins;
use crate::stats::bump;
use crate::Server;
use muduo::{Buffer, TcpConnectionPtr};
use std::cell::RefCell;
use std::time::Duration;

/// State kept between reads.
#[derive(Default)]
pub struct ConnState {
    /// Do nothing until the buffer holds this many bytes.
    need: usize,
    /// Bytes still to discard (the data block of an item refused as too large).
    swallow: usize,
    /// Replies memcached would still hold: it writes its replies out after
    /// a get, after `mn`, when it runs out of input or waits for the rest
    /// of a line, but not while it waits for a data block. They matter when
    /// the client goes away mid-block: memcached then never sends them.
    held: Vec<u8>,
    /// `quit` seen: ignore whatever else arrives.
    closing: bool,
    /// Unparsed input left in the buffer after the last batch, so the next
    /// read's new bytes are known: `bytes_read` counts bytes as they arrive
    /// (as memcached does), not as commands consume them.
    unparsed: usize,
    /// Keys referenced by replies not yet written out.
    pins: Pins,
}

thread_local! {
    /// Replies of one batch, sent with one write.
    static OUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// memcached's `reqs_per_event` (`-R`, default 20).
const REQS_PER_EVENT: usize = 20;

/// How long a client that sent `quit` may keep its half of the connection open.
const QUIT_LINGER: Duration = Duration::from_secs(2);

/// What to do with the connection once the batch's replies are written.
enum After {
    KeepOpen,
    /// `quit`: send the replies, then close.
    Quit,
    /// A long line without newline: close now, replies dropped (as memcached).
    Close,
}

pub fn on_message(srv: &Server, conn: &TcpConnectionPtr, buf: &mut Buffer) {
    OUT.with(|out| {
        let mut out = out.borrow_mut();
        out.clear();
        // The context lock is held only while parsing; sends and closes
        // happen after it is released. `out[..flushed]` goes out now.
        let (after, flushed) = conn
            .with_context(|st: &mut ConnState| run_batch(srv, st, buf, &mut out))
            .unwrap_or((After::KeepOpen, 0));
        if flushed > 0 {
            conn.send(&out[..flushed]);
        }
        match after {
            After::Close => conn.force_close(),
            After::Quit => {
                conn.shutdown();
                conn.force_close_with_delay(QUIT_LINGER);
            }
            After::KeepOpen => {}
        }
        // Do not keep a huge reply buffer around after one large get.
        if out.capacity() > 1 << 20 {
            *out = Vec::new();
        }
    });
}

/// Runs the complete commands in `buf`; returns what to do next and how
/// much of `out` to send now (the rest is held in `st`).
fn run_batch(
    srv: &Server,
    st: &mut ConnState,
    buf: &mut Buffer,
    out: &mut Vec<u8>,
) -> (After, usize) {
    let arrived = buf.readable_bytes().saturating_sub(st.unparsed);
    srv.stats.with(|c| bump(&c.bytes_read, arrived as u64));
    st.unparsed = buf.readable_bytes();
    if st.closing {
        buf.retrieve_all();
        st.unparsed = 0;
        return (After::KeepOpen, 0);
    }
    if buf.readable_bytes() < st.need {
        return (After::KeepOpen, 0);
    }
    st.need = 0;
    out.append(&mut st.held);
    let now = srv.store.now();
    let mut after = After::KeepOpen;
    let mut flushed = 0;
    let mut commands = 0usize;
    loop {
        if st.swallow > 0 {
            let n = st.swallow.min(buf.readable_bytes());
            buf.retrieve(n);
            st.swallow -= n;
            if st.swallow > 0 {
                break; // still swallowing: memcached holds its replies
            }
        }
        if buf.is_empty() {
            flushed = out.len();
            st.pins.clear();
            break;
        }
        // memcached answers at most 20 more commands per event before it
        // writes its replies out (`-R 20`; the first event gets 21).
        if commands > REQS_PER_EVENT && (commands - 1) % REQS_PER_EVENT == 0 {
            flushed = out.len();
            st.pins.clear();
        }
        commands += 1;
        match execute(srv, buf.peek(), now, out, &mut st.pins) {
            Step::Done(n) => {
                buf.retrieve(n);
            }
            Step::DoneFlush(n) => {
                buf.retrieve(n);
                flushed = out.len();
                st.pins.clear();
            }
            Step::Swallow(n, m) => {
                buf.retrieve(n);
                st.swallow = m;
            }
            Step::NeedLine(need) => {
                st.need = need;
                flushed = out.len();
                st.pins.clear();
                break;
            }
            Step::NeedData(need) => {
                st.need = need;
                // Make room once for a large value instead of growing per read.
                let have = buf.readable_bytes();
                if need > have {
                    buf.ensure_writable(need - have);
                }
                break;
            }
            Step::Quit(_) => {
                flushed = out.len();
                st.pins.clear();
                after = After::Quit;
                break;
            }
            Step::Close => {
                after = After::Close;
                break;
            }
        }
    }
    srv.stats.with(|c| bump(&c.bytes_written, flushed as u64));
    if matches!(after, After::KeepOpen) {
        st.held.extend_from_slice(&out[flushed..]);
    } else {
        st.closing = true;
        buf.retrieve_all();
    }
    st.unparsed = buf.readable_bytes();
    (after, flushed)
}

//! C10K client: holds many idle connections open, then checks that every one
//! still works. Runs as its own process so its memory and descriptors never
//! mix with the server's, and it can raise its own `RLIMIT_NOFILE`.
//!
//! Usage: `c10k_client <addr:port> <conns> <hold_seconds>`
//!
//! 1. Raises the soft `RLIMIT_NOFILE` to the hard limit.
//! 2. Opens `conns` connections with non-blocking connects, in batches of
//!    256 that must finish before the next batch starts (so the server's
//!    accept queue never overflows into SYN retries); at most 60 s in all.
//!    Prints `CONNECTED ok=N failed=M seconds=S`.
//! 3. Prints `READY` and waits for a line on stdin (end of input counts as a
//!    line) or `hold_seconds`, whichever comes first. Meanwhile the runner
//!    measures the server's memory.
//! 4. Every open connection sends one 16-byte message and must read the same
//!    16 bytes back within 20 s. Prints
//!    `RESULT conns=C connect_ok=N connect_failed=M connect_secs=S echo_ok=K echo_failed=F echo_secs=T`.

use std::io::BufRead;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use muduo_bench::cli::{die, expect_positionals, positional};
use muduo_bench::conn::ConnTable;
use muduo_bench::sys::{self, would_block};
use rustix::event::epoll::{self, CreateFlags, Event, EventData, EventFlags};
use rustix::event::Timespec;

const USAGE: &str = "c10k_client <addr:port> <conns> <hold_seconds>";
const BATCH: usize = 256;
const CONNECT_LIMIT: Duration = Duration::from_secs(60);
const ECHO_LIMIT: Duration = Duration::from_secs(20);
const MSG_LEN: usize = 16;

/// One connection and how many echoed bytes it has seen.
struct Slot {
    fd: OwnedFd,
    index: usize,
    got: Vec<u8>,
    /// True until its non-blocking connect has finished.
    connecting: bool,
}

fn main() {
    expect_positionals(USAGE, 3);
    let addr: SocketAddr = positional(USAGE, 0, "addr:port");
    let conns: usize = positional(USAGE, 1, "conns");
    let hold: f64 = positional(USAGE, 2, "hold_seconds");
    if !(0.0..1e6).contains(&hold) {
        die(USAGE, "hold_seconds must be >= 0");
    }
    match sys::raise_nofile_limit() {
        Ok(limit) if (limit as usize) < conns + 16 => {
            eprintln!("c10k_client: RLIMIT_NOFILE is {limit}: expect failures above it")
        }
        Ok(_) => {}
        Err(e) => eprintln!("c10k_client: cannot raise RLIMIT_NOFILE: {e}"),
    }
    let ep =
        epoll::create(CreateFlags::CLOEXEC).unwrap_or_else(|e| die(USAGE, &format!("epoll: {e}")));

    let started = Instant::now();
    let mut slots: ConnTable<Slot> = ConnTable::default();
    let mut failed = 0;
    let mut opened = 0;
    while opened < conns && started.elapsed() < CONNECT_LIMIT {
        let batch = BATCH.min(conns - opened);
        failed += connect_batch(
            &ep,
            addr,
            opened,
            batch,
            &mut slots,
            started + CONNECT_LIMIT,
        );
        opened += batch;
    }
    failed += conns - opened;
    let ok = conns - failed;
    let connect_secs = started.elapsed().as_secs_f64();
    println!("CONNECTED ok={ok} failed={failed} seconds={connect_secs:.3}");
    println!("READY");
    wait_for_release(Duration::from_secs_f64(hold));

    let echo_start = Instant::now();
    let echo_ok = echo_all(&ep, &mut slots);
    println!(
        "RESULT conns={conns} connect_ok={ok} connect_failed={failed} connect_secs={connect_secs:.3} echo_ok={echo_ok} echo_failed={} echo_secs={:.3}",
        conns - echo_ok,
        echo_start.elapsed().as_secs_f64()
    );
}

/// Starts `count` non-blocking connects and waits until each has finished
/// (or `limit` passes). Established sockets stay in `ep` with no interest.
/// Returns the number that failed.
fn connect_batch(
    ep: &OwnedFd,
    addr: SocketAddr,
    first: usize,
    count: usize,
    slots: &mut ConnTable<Slot>,
    limit: Instant,
) -> usize {
    let mut failed = 0;
    let mut pending = 0;
    for index in first..first + count {
        let (fd, done) = match sys::tcp_connect_start(addr) {
            Ok(started) => started,
            Err(e) => {
                if failed == 0 {
                    eprintln!("c10k_client: connect: {e}");
                }
                failed += 1;
                continue;
            }
        };
        let key = fd.as_raw_fd() as usize;
        let flags = if done {
            EventFlags::empty()
        } else {
            EventFlags::OUT
        };
        if epoll::add(ep, &fd, EventData::new_u64(key as u64), flags).is_err() {
            failed += 1;
            continue;
        }
        pending += usize::from(!done);
        slots.insert(
            key,
            Slot {
                fd,
                index,
                got: Vec::new(),
                connecting: !done,
            },
        );
    }
    let mut events = vec![
        Event {
            flags: EventFlags::empty(),
            data: EventData::new_u64(0)
        };
        BATCH
    ];
    while pending > 0 {
        let Some(n) = wait(ep, &mut events, limit) else {
            break;
        };
        for &Event { data, .. } in &events[..n] {
            let key = data.u64() as usize;
            // Earlier batches' sockets stay in the set (errors and hang-ups
            // are always reported): only this batch's connects count here.
            let Some(slot) = slots.get_mut(key).filter(|s| s.connecting) else {
                continue;
            };
            slot.connecting = false;
            pending -= 1;
            let ok = sys::connect_result(&slot.fd).is_ok()
                && epoll::modify(ep, &slot.fd, data, EventFlags::empty()).is_ok();
            if !ok {
                slots.remove(key);
                failed += 1;
            }
        }
    }
    // Anything still pending at the limit counts as failed.
    failed + pending
}

/// Waits for one event batch until `limit`; `None` once the limit passed.
fn wait(ep: &OwnedFd, events: &mut [Event], limit: Instant) -> Option<usize> {
    loop {
        let left = limit.checked_duration_since(Instant::now())?;
        let timeout = Timespec::try_from(left).ok()?;
        match epoll::wait(ep, &mut *events, Some(&timeout)) {
            Ok(0) if Instant::now() >= limit => return None,
            Ok(n) => return Some(n),
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return None,
        }
    }
}

/// Returns once a line (or end of input) arrives on stdin, or after `hold`.
fn wait_for_release(hold: Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(hold);
}

/// The message connection `index` sends: 16 bytes, unique per connection.
fn message(index: usize) -> Vec<u8> {
    format!("c10k{:012}", index % 1_000_000_000_000).into_bytes()
}

/// Sends one message on every connection and counts exact echoes.
fn echo_all(ep: &OwnedFd, slots: &mut ConnTable<Slot>) -> usize {
    let mut waiting = 0;
    let mut dead = Vec::new();
    for slot in slots.values_mut() {
        let key = EventData::new_u64(slot.fd.as_raw_fd() as u64);
        let sent = rustix::io::write(&slot.fd, &message(slot.index)) == Ok(MSG_LEN)
            && epoll::modify(ep, &slot.fd, key, EventFlags::IN).is_ok();
        if sent {
            waiting += 1;
        } else {
            dead.push(slot.fd.as_raw_fd() as usize);
        }
    }
    for key in dead {
        slots.remove(key);
    }
    let mut ok = 0;
    let limit = Instant::now() + ECHO_LIMIT;
    let mut events = vec![
        Event {
            flags: EventFlags::empty(),
            data: EventData::new_u64(0)
        };
        1024
    ];
    let mut buf = [0u8; 64];
    while waiting > 0 {
        let Some(n) = wait(ep, &mut events, limit) else {
            break;
        };
        for &Event { data, .. } in &events[..n] {
            let key = data.u64() as usize;
            let Some(slot) = slots.get_mut(key) else {
                continue;
            };
            let finished = match rustix::io::read(&slot.fd, &mut buf) {
                Ok(0) => Some(false),
                Ok(got) => {
                    slot.got.extend_from_slice(&buf[..got]);
                    (slot.got.len() >= MSG_LEN).then(|| slot.got == message(slot.index))
                }
                Err(e) if would_block(&e) => None,
                Err(_) => Some(false),
            };
            if let Some(good) = finished {
                ok += usize::from(good);
                waiting -= 1;
                slots.remove(key);
            }
        }
    }
    ok
}

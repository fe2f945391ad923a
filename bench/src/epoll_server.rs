//! The bare epoll server loop behind `epoll_pingpong` and `epoll_http`.
//!
//! Deliberately no abstraction beyond one trait method: level-triggered
//! epoll on rustix, non-blocking `accept4`, one `read` per readiness into a
//! per-thread 64 KiB buffer, a direct `write` back, and per-connection
//! queues only for bytes the kernel did not take (see [`crate::conn`]).
//! This is the floor any reactor library, ours included, is measured
//! against.
//!
//! Threading: `--threads 0` and `--threads 1` both run one thread. `N > 1`
//! runs N independent threads, each with its own epoll instance and its own
//! `SO_REUSEPORT` listener on the same address, so the kernel spreads
//! connections over threads and no connection ever moves between threads.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use rustix::event::epoll::{self, CreateFlags, Event, EventData, EventFlags};
use rustix::net::{sockopt, SocketFlags};

use crate::cli::ServerArgs;
use crate::conn::{Conn, ConnTable};
use crate::sys::{self, would_block};

/// What a server does with the bytes it reads.
pub trait Protocol: Default {
    /// Handles `input` just read on one connection and returns the bytes to
    /// send back, borrowed from `input` (echo) or from `scratch` (which the
    /// loop clears before each call). `None` closes the connection.
    fn on_read<'a>(&'a mut self, input: &'a [u8], scratch: &'a mut Vec<u8>) -> Option<&'a [u8]>;
}

const LISTENER_KEY: u64 = u64::MAX;
const READ_BUF: usize = 64 * 1024;

/// Runs the server forever with `args.threads.max(1)` loop threads.
pub fn serve<P: Protocol>(name: &str, args: &ServerArgs) -> ! {
    sys::raise_nofile_limit().ok();
    let threads = args.threads.max(1);
    // Bind every listener before starting any thread so a bad address fails
    // fast and the server is fully listening once the first accept succeeds.
    let listeners: Vec<OwnedFd> = (0..threads)
        .map(|_| {
            sys::tcp_listener(args.addr, true, true).unwrap_or_else(|e| {
                eprintln!("{name}: cannot listen on {}: {e}", args.addr);
                std::process::exit(1)
            })
        })
        .collect();
    eprintln!(
        "{name}: listening on {} with {threads} thread(s)",
        args.addr
    );
    let handles: Vec<_> = listeners
        .into_iter()
        .map(|listener| std::thread::spawn(move || run_loop::<P>(listener)))
        .collect();
    for handle in handles {
        if let Ok(Err(e)) = handle.join() {
            eprintln!("{name}: loop failed: {e}");
        }
    }
    std::process::exit(1)
}

struct Entry<P> {
    conn: Conn,
    proto: P,
}

fn run_loop<P: Protocol>(listener: OwnedFd) -> io::Result<()> {
    let ep = epoll::create(CreateFlags::CLOEXEC)?;
    epoll::add(
        &ep,
        &listener,
        EventData::new_u64(LISTENER_KEY),
        EventFlags::IN,
    )?;
    let mut conns: ConnTable<Entry<P>> = ConnTable::default();
    let mut events = vec![
        Event {
            flags: EventFlags::empty(),
            data: EventData::new_u64(0)
        };
        1024
    ];
    let mut rbuf = vec![0u8; READ_BUF];
    let mut scratch = Vec::with_capacity(READ_BUF);
    loop {
        let n = match epoll::wait(&ep, &mut events[..], None) {
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        for &Event { flags, data } in &events[..n] {
            let key = data.u64();
            if key == LISTENER_KEY {
                accept_all(&ep, &listener, &mut conns);
                continue;
            }
            let key = key as usize;
            let Some(entry) = conns.get_mut(key) else {
                continue;
            };
            let ok = if flags.contains(EventFlags::OUT) {
                entry.conn.flush(&ep).is_ok()
            } else {
                on_readable(&ep, entry, &mut rbuf, &mut scratch)
            };
            if !ok {
                conns.remove(key);
            }
        }
    }
}

/// Accepts until `EAGAIN`; each connection gets `TCP_NODELAY` and joins this
/// thread's epoll set.
fn accept_all<P: Protocol>(ep: &OwnedFd, listener: &OwnedFd, conns: &mut ConnTable<Entry<P>>) {
    loop {
        match rustix::net::accept_with(listener, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC) {
            Ok(fd) => {
                let _ = sockopt::set_tcp_nodelay(&fd, true);
                let key = fd.as_raw_fd() as usize;
                if let Ok(conn) = Conn::register(ep, fd) {
                    conns.insert(
                        key,
                        Entry {
                            conn,
                            proto: P::default(),
                        },
                    );
                }
            }
            Err(e) if would_block(&e) => return,
            Err(rustix::io::Errno::CONNABORTED) => continue,
            Err(e) => {
                // EMFILE and friends: report and retry on the next readiness.
                eprintln!("accept: {e}");
                return;
            }
        }
    }
}

/// One read, one reply. Returns `false` when the connection must close.
fn on_readable<P: Protocol>(
    ep: &OwnedFd,
    entry: &mut Entry<P>,
    rbuf: &mut [u8],
    scratch: &mut Vec<u8>,
) -> bool {
    let n = match entry.conn.read(rbuf) {
        Ok(Some(0)) => return true,
        Ok(Some(n)) => n,
        Ok(None) | Err(_) => return false,
    };
    scratch.clear();
    match entry.proto.on_read(&rbuf[..n], scratch) {
        Some([]) => true,
        Some(reply) => entry.conn.send(ep, reply).is_ok(),
        None => false,
    }
}

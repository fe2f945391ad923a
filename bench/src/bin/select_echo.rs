//! Peer echo server for the models lab: one thread, `select(2)`, nothing
//! else: the oldest I/O multiplexing call, as the seed describes it (a fixed
//! `fd_set` bitmap copied into the kernel and scanned there on every call,
//! then copied back and scanned again by the program).
//!
//! `select` cannot watch descriptors at or above `FD_SETSIZE` (1024), so a
//! connection whose descriptor number is too large is accepted and closed
//! at once (counted on stderr): the server holds at most about 1020 clients.
//!
//! Usage: `select_echo --addr 127.0.0.1:PORT [--threads N]` (`--threads`
//! ignored: select servers are single-threaded here).

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use muduo_bench::cli::ServerArgs;
use muduo_bench::sys::{self, would_block};
use rustix::net::{sockopt, SocketFlags};

const FD_LIMIT: usize = libc::FD_SETSIZE;

/// A connection: its socket and the bytes the kernel has not taken yet.
struct Conn {
    fd: OwnedFd,
    out: Vec<u8>,
}

/// An `fd_set` with safe accessors for descriptors below `FD_SETSIZE`.
struct FdSet(libc::fd_set);

impl FdSet {
    fn new() -> FdSet {
        // SAFETY: fd_set is a plain bitmap; all-zero bytes is the empty set
        // (exactly what FD_ZERO writes).
        FdSet(unsafe { std::mem::zeroed() })
    }

    fn insert(&mut self, fd: RawFd) {
        assert!((0..FD_LIMIT as RawFd).contains(&fd));
        // SAFETY: `fd` is in 0..FD_SETSIZE (checked above) and the pointer
        // is to our own initialised fd_set.
        unsafe { libc::FD_SET(fd, &mut self.0) }
    }

    fn contains(&self, fd: RawFd) -> bool {
        // SAFETY: as in `insert`; FD_ISSET only reads the bitmap.
        (0..FD_LIMIT as RawFd).contains(&fd) && unsafe { libc::FD_ISSET(fd, &self.0) }
    }
}

fn main() {
    let args = ServerArgs::from_env("select_echo");
    sys::raise_nofile_limit().ok();
    let listener = sys::tcp_listener(args.addr, false, true).unwrap_or_else(|e| {
        eprintln!("select_echo: cannot listen on {}: {e}", args.addr);
        std::process::exit(1)
    });
    eprintln!("select_echo: listening on {}", args.addr);
    let lfd = listener.as_raw_fd();
    let mut conns: Vec<Option<Conn>> = (0..FD_LIMIT).map(|_| None).collect();
    let mut buf = vec![0u8; 64 * 1024];
    let mut refused = 0u64;
    loop {
        // The sets are rebuilt on every call: select overwrites them.
        let (mut rset, mut wset) = (FdSet::new(), FdSet::new());
        rset.insert(lfd);
        let mut max_fd = lfd;
        for (fd, conn) in conns.iter().enumerate() {
            if let Some(c) = conn {
                if c.out.is_empty() {
                    rset.insert(fd as RawFd);
                } else {
                    wset.insert(fd as RawFd);
                }
                max_fd = max_fd.max(fd as RawFd);
            }
        }
        // SAFETY: both sets are valid fd_sets we own, the other pointers
        // are null (no exception set, no timeout), and nfds covers exactly
        // the descriptors we put in the sets.
        let n = unsafe {
            libc::select(
                max_fd + 1,
                &mut rset.0,
                &mut wset.0,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            eprintln!("select_echo: select: {e}");
            std::process::exit(1);
        }
        if rset.contains(lfd) {
            accept_all(&listener, &mut conns, &mut refused);
        }
        // The program's own O(n) walk over the descriptors select returned.
        for (fd, slot) in conns.iter_mut().enumerate().take(max_fd as usize + 1) {
            let keep = match slot.as_mut() {
                Some(c) if rset.contains(fd as RawFd) => on_readable(c, &mut buf),
                Some(c) if wset.contains(fd as RawFd) => flush(c),
                _ => true,
            };
            if !keep {
                *slot = None;
            }
        }
    }
}

/// Accepts every pending connection; those with descriptors select cannot
/// watch are closed at once.
fn accept_all(listener: &OwnedFd, conns: &mut [Option<Conn>], refused: &mut u64) {
    loop {
        match rustix::net::accept_with(listener, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC) {
            Ok(fd) => {
                let raw = fd.as_raw_fd() as usize;
                if raw >= FD_LIMIT {
                    *refused += 1;
                    if refused.is_power_of_two() {
                        eprintln!("select_echo: {refused} connection(s) refused: descriptor >= FD_SETSIZE ({FD_LIMIT})");
                    }
                    continue;
                }
                let _ = sockopt::set_tcp_nodelay(&fd, true);
                conns[raw] = Some(Conn {
                    fd,
                    out: Vec::new(),
                });
            }
            Err(e) if would_block(&e) => return,
            Err(e) => {
                eprintln!("select_echo: accept: {e}");
                return;
            }
        }
    }
}

/// Reads once and echoes; false when the connection is finished.
fn on_readable(c: &mut Conn, buf: &mut [u8]) -> bool {
    match rustix::io::read(&c.fd, &mut *buf) {
        Ok(0) => false,
        Ok(n) => {
            c.out.extend_from_slice(&buf[..n]);
            flush(c)
        }
        Err(e) => would_block(&e),
    }
}

/// Writes what is queued; false on error.
fn flush(c: &mut Conn) -> bool {
    while !c.out.is_empty() {
        match rustix::io::write(&c.fd, &c.out) {
            Ok(n) => {
                c.out.drain(..n);
            }
            Err(e) => return would_block(&e),
        }
    }
    true
}

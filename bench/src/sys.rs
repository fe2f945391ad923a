//! Socket and process-limit helpers at the syscall boundary, on rustix.
//!
//! Kept in one place so the epoll peers, the clients and the tokio peers all
//! get identical sockets (same backlog, same options): differences between
//! stacks should come from their event loops, not from socket setup.

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use rustix::net::{sockopt, AddressFamily, SocketFlags, SocketType};

/// Listen backlog used by every peer (the kernel caps it at `somaxconn`).
pub const BACKLOG: i32 = 4096;

fn family(addr: &SocketAddr) -> AddressFamily {
    match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    }
}

/// Creates a listening TCP socket with `SO_REUSEADDR` (and `SO_REUSEPORT`
/// when `reuseport`), close-on-exec, optionally non-blocking.
pub fn tcp_listener(addr: SocketAddr, reuseport: bool, nonblocking: bool) -> io::Result<OwnedFd> {
    let mut flags = SocketFlags::CLOEXEC;
    if nonblocking {
        flags |= SocketFlags::NONBLOCK;
    }
    let fd = rustix::net::socket_with(family(&addr), SocketType::STREAM, flags, None)?;
    sockopt::set_socket_reuseaddr(&fd, true)?;
    if reuseport {
        sockopt::set_socket_reuseport(&fd, true)?;
    }
    rustix::net::bind(&fd, &addr)?;
    rustix::net::listen(&fd, BACKLOG)?;
    Ok(fd)
}

/// Same listener as [`tcp_listener`], non-blocking, as a std type that
/// `tokio::net::TcpListener::from_std` accepts.
pub fn std_listener(addr: SocketAddr, reuseport: bool) -> io::Result<std::net::TcpListener> {
    Ok(std::net::TcpListener::from(tcp_listener(
        addr, reuseport, true,
    )?))
}

/// Connects a blocking TCP socket, sets `TCP_NODELAY`, then makes it
/// non-blocking for use with epoll.
pub fn tcp_connect_nodelay(addr: SocketAddr) -> io::Result<OwnedFd> {
    let fd = rustix::net::socket_with(
        family(&addr),
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    rustix::net::connect(&fd, &addr)?;
    sockopt::set_tcp_nodelay(&fd, true)?;
    rustix::io::ioctl_fionbio(&fd, true)?;
    Ok(fd)
}

/// Starts a non-blocking connect. Returns the socket and whether it is
/// already connected (`false` means "in progress": wait for `EPOLLOUT`).
pub fn tcp_connect_start(addr: SocketAddr) -> io::Result<(OwnedFd, bool)> {
    let flags = SocketFlags::CLOEXEC | SocketFlags::NONBLOCK;
    let fd = rustix::net::socket_with(family(&addr), SocketType::STREAM, flags, None)?;
    match rustix::net::connect(&fd, &addr) {
        Ok(()) => Ok((fd, true)),
        Err(rustix::io::Errno::INPROGRESS) => Ok((fd, false)),
        Err(e) => Err(e.into()),
    }
}

/// Result of a finished non-blocking connect (`SO_ERROR`).
pub fn connect_result(fd: &OwnedFd) -> io::Result<()> {
    match sockopt::socket_error(fd)? {
        Ok(()) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the new soft
/// limit. Needed for thousands of sessions and for C10K.
pub fn raise_nofile_limit() -> io::Result<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.maximum.is_some() && lim.current != lim.maximum {
        lim.current = lim.maximum;
        setrlimit(Resource::Nofile, lim)?;
    }
    Ok(lim.current.unwrap_or(u64::MAX))
}

/// True for errors that only mean "try again later".
pub fn would_block(e: &rustix::io::Errno) -> bool {
    *e == rustix::io::Errno::AGAIN || *e == rustix::io::Errno::INTR
}

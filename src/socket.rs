//! Socket helpers: listening and connecting sockets, options, addresses, `TCP_INFO`.
//!
//! Addresses are `std::net::SocketAddr` (IPv4 and IPv6); options go through
//! `socket2` and `rustix`. Every socket is non-blocking and close-on-exec,
//! and data is written with `MSG_NOSIGNAL`, so a peer that went away gives
//! `EPIPE` instead of a `SIGPIPE` that would kill the process.

use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::net::{SendFlags, Shutdown, SocketFlags};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::sync::Once;

/// Creates a bound (not yet listening) TCP socket with `SO_REUSEADDR`, and
/// `SO_REUSEPORT` when asked (set before `bind`, as it must be).
pub(crate) fn bind_listener(addr: SocketAddr, reuse_port: bool) -> io::Result<OwnedFd> {
    let s = new_tcp_socket(addr)?;
    s.set_reuse_address(true)?;
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        // Listen on IPv6 only when asked for an IPv6 address, so a v4 and a
        // v6 server can share a port number.
        s.set_only_v6(true)?;
    }
    s.bind(&SockAddr::from(addr))
        .map_err(|e| annotate(e, &format!("bind {addr}")))?;
    Ok(OwnedFd::from(s))
}

/// A non-blocking, close-on-exec TCP socket for `addr`'s family.
fn new_tcp_socket(addr: SocketAddr) -> io::Result<Socket> {
    ignore_sigpipe();
    Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )
}

/// Starts listening with the system's maximum backlog (`SOMAXCONN`).
pub(crate) fn listen(fd: &OwnedFd) -> io::Result<()> {
    // The kernel caps the backlog at net.core.somaxconn.
    rustix::net::listen(fd, libc::SOMAXCONN)?;
    Ok(())
}

/// `accept4` with `SOCK_NONBLOCK | SOCK_CLOEXEC`.
pub(crate) fn accept(fd: &impl AsFd) -> io::Result<(OwnedFd, SocketAddr)> {
    let (conn, addr) =
        rustix::net::acceptfrom_with(fd, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)?;
    let peer = addr
        .and_then(|a| SocketAddr::try_from(a).ok())
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    Ok((conn, peer))
}

/// Creates a non-blocking socket and starts connecting it to `addr`.
/// Returns the socket and the result of `connect` (`EINPROGRESS` is normal).
pub(crate) fn start_connect(addr: SocketAddr) -> io::Result<(OwnedFd, io::Result<()>)> {
    let s = new_tcp_socket(addr)?;
    let r = s.connect(&SockAddr::from(addr));
    Ok((OwnedFd::from(s), r))
}

/// `send(2)` with `MSG_NOSIGNAL`.
#[inline]
pub(crate) fn send(fd: &impl AsFd, data: &[u8]) -> io::Result<usize> {
    Ok(rustix::net::send(fd, data, SendFlags::NOSIGNAL)?)
}

/// Closes the write half (sends FIN once queued data is out).
pub(crate) fn shutdown_write(fd: &impl AsFd) -> io::Result<()> {
    Ok(rustix::net::shutdown(fd, Shutdown::Write)?)
}

/// Enables or disables Nagle's algorithm (`TCP_NODELAY`).
pub(crate) fn set_tcp_no_delay(fd: &impl AsFd, on: bool) -> io::Result<()> {
    Ok(rustix::net::sockopt::set_tcp_nodelay(fd, on)?)
}

/// Enables or disables `SO_KEEPALIVE`.
pub(crate) fn set_keep_alive(fd: &impl AsFd, on: bool) -> io::Result<()> {
    Ok(rustix::net::sockopt::set_socket_keepalive(fd, on)?)
}

/// The local address of a socket.
pub(crate) fn local_addr(fd: &impl AsFd) -> io::Result<SocketAddr> {
    let a = rustix::net::getsockname(fd)?;
    SocketAddr::try_from(a)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not an IP socket"))
}

/// The peer address of a connected socket.
pub(crate) fn peer_addr(fd: &impl AsFd) -> io::Result<SocketAddr> {
    let a = rustix::net::getpeername(fd)?
        .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
    SocketAddr::try_from(a)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not an IP socket"))
}

/// Reads and clears the pending socket error (`SO_ERROR`).
pub(crate) fn take_error(fd: &impl AsFd) -> Option<io::Error> {
    match rustix::net::sockopt::socket_error(fd) {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.into()),
        Err(e) => Some(e.into()),
    }
}

/// True when a connecting socket connected to itself (same local and peer
/// address, possible when connecting to an ephemeral port on loopback).
pub(crate) fn is_self_connect(fd: &impl AsFd) -> bool {
    match (local_addr(fd), peer_addr(fd)) {
        (Ok(l), Ok(p)) => l == p,
        _ => false,
    }
}

/// A snapshot of the kernel's `TCP_INFO` for a connection (selected fields).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpInfo {
    /// TCP state (`TCP_ESTABLISHED` = 1, ... as in `<netinet/tcp.h>`).
    pub state: u8,
    /// Retransmissions of the current unacknowledged segment.
    pub retransmits: u8,
    /// Smoothed round-trip time, microseconds.
    pub rtt_us: u32,
    /// Round-trip time variance, microseconds.
    pub rtt_var_us: u32,
    /// Congestion window, segments.
    pub snd_cwnd: u32,
    /// Slow-start threshold, segments.
    pub snd_ssthresh: u32,
    /// Segments sent and not yet acknowledged.
    pub unacked: u32,
    /// Segments considered lost.
    pub lost: u32,
    /// Total retransmitted segments over the connection's life.
    pub total_retrans: u32,
    /// Path MTU.
    pub pmtu: u32,
    /// Sender maximum segment size.
    pub snd_mss: u32,
    /// Receiver maximum segment size.
    pub rcv_mss: u32,
    /// Bytes the peer has acknowledged over the connection's life
    /// (`tcpi_bytes_acked`, Linux 4.2+; 0 on older kernels). It stops moving
    /// when the peer stops reading and its receive window is full.
    pub bytes_acked: u64,
    /// Bytes queued in the kernel and not yet sent (`tcpi_notsent_bytes`).
    pub notsent_bytes: u32,
}

/// Reads `TCP_INFO` (Linux).
pub(crate) fn tcp_info(fd: &impl AsFd) -> io::Result<TcpInfo> {
    // SAFETY: `tcp_info` is plain old data for which all-zero bytes are valid.
    let mut raw: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the fd is borrowed and open for the call; `raw` and `len`
    // point to writable memory of the size passed, as getsockopt requires.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_fd().as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut raw as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TcpInfo {
        state: raw.tcpi_state,
        retransmits: raw.tcpi_retransmits,
        rtt_us: raw.tcpi_rtt,
        rtt_var_us: raw.tcpi_rttvar,
        snd_cwnd: raw.tcpi_snd_cwnd,
        snd_ssthresh: raw.tcpi_snd_ssthresh,
        unacked: raw.tcpi_unacked,
        lost: raw.tcpi_lost,
        total_retrans: raw.tcpi_total_retrans,
        pmtu: raw.tcpi_pmtu,
        snd_mss: raw.tcpi_snd_mss,
        rcv_mss: raw.tcpi_rcv_mss,
        bytes_acked: raw.tcpi_bytes_acked,
        notsent_bytes: raw.tcpi_notsent_bytes,
    })
}

/// Ignores `SIGPIPE` once per process. Writes already use `MSG_NOSIGNAL`;
/// this also covers `sendfile` and writes made by user code on our sockets.
pub(crate) fn ignore_sigpipe() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: setting a signal's disposition to SIG_IGN installs no
        // handler code and is async-signal-safe; it is done once.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
    });
}

fn annotate(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

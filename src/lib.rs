//! # muduo: one event loop per thread, in Rust
//!
//! A non-blocking network library in the spirit of Chen Shuo's C++
//! [muduo](https://github.com/chenshuo/muduo): Linux only, a reactor per
//! thread, callbacks for events, no async runtime underneath.
//!
//! ## The model
//!
//! * An [`EventLoop`] is a reactor. It lives on the thread that created it
//!   (at most one per thread) and is `!Send`. Its [`LoopHandle`] is
//!   `Clone + Send + Sync`: any thread posts closures to the loop with
//!   [`LoopHandle::run_in_loop`] / [`LoopHandle::queue_in_loop`], adds
//!   timers ([`LoopHandle::run_after`], [`LoopHandle::run_every`]) and
//!   stops it with [`LoopHandle::quit`].
//! * Each loop owns one driver, chosen with [`PollerKind`]: a readiness
//!   [`Poller`](poller::Poller) (epoll level- or edge-triggered, or
//!   `poll(2)`: "you may read now"), or io_uring, the completion backend
//!   ("your read is done"; muduo's Reactor becomes a Proactor). A
//!   [`Channel`] ties one fd to a [`ChannelHandler`] and receives only the
//!   events it asked for, on every driver; TCP connections move their bytes
//!   through a transport made for the driver, behind the same
//!   [`TcpConnection`] API and callbacks.
//! * [`EventLoopThread`] runs a loop on its own thread;
//!   [`EventLoopThreadPool`] holds the sub-reactors of the main/sub
//!   multi-reactor model, and [`ThreadPool`] the workers of the
//!   "single reactor + worker threads" model.
//!
//! ## Signals
//!
//! Creating the first socket (a [`TcpServer`], a [`TcpClient`]) sets
//! `SIGPIPE` to be **ignored process-wide**, as muduo does: a write to a
//! socket the peer has closed then fails with `EPIPE` instead of killing
//! the process. This also affects pipes and sockets the rest of the program
//! writes to. Rust's own runtime already ignores `SIGPIPE` in `main`
//! binaries; the call matters for programs that restored it.
//!
//! ## Threading rules
//!
//! Everything that touches an fd, a buffer or a channel runs on the owning
//! loop's thread; other threads post closures. Closures that cross threads
//! are `Send` and own what they capture (an `Arc`, never a raw pointer).
#![deny(missing_docs)]

mod acceptor;
pub mod buffer;
mod callbacks;
mod channel;
pub mod codec;
mod conn_state;
mod connector;
mod driver;
mod event_loop;
mod event_loop_thread;
mod event_loop_thread_pool;
mod gen_slab;
pub mod http;
pub mod inspect;
mod output_queue;
pub mod poller;
mod socket;
mod sync;
mod tcp_client;
mod tcp_connection;
mod tcp_server;
mod thread_pool;
mod timer;
mod transport;
mod uring;

pub use buffer::Buffer;
pub use callbacks::{
    ConnectionCallback, HighWaterMarkCallback, MessageCallback, TcpConnectionPtr,
    WriteCompleteCallback, DEFAULT_HIGH_WATER_MARK,
};
pub use channel::{Channel, ChannelCallbacks, ChannelHandler};
pub use event_loop::{EventLoop, EventLoopBuilder, LoopHandle, Task};
pub use event_loop_thread::{EventLoopThread, ThreadInitCallback};
pub use event_loop_thread_pool::EventLoopThreadPool;
pub use poller::{Interest, PollerKind, Ready, Token};
pub use socket::TcpInfo;
pub use tcp_client::TcpClient;
pub use tcp_connection::{ConnectionState, TcpConnection};
pub use tcp_server::{TcpServer, TcpServerOptions};
pub use thread_pool::{ThreadPool, ThreadPoolError};
pub use timer::TimerId;

/// The README's Rust examples, compiled as doctests so they stay correct.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

//! Shared code of the muduo-rs benchmark harness.
//!
//! The harness never links the `muduo` library: every server, ours and the
//! peers alike, runs as a separate process and is measured from the outside
//! (throughput seen by a client, CPU time from `wait4`, syscalls from
//! `strace`). That keeps the comparison honest and lets the peers be tested
//! before our own examples exist.
//!
//! * [`cli`] – the tiny argument parser every binary shares.
//! * [`sys`] – socket helpers at the rustix syscall boundary.
//! * [`conn`] – one non-blocking connection with a pending-output queue.
//! * [`epoll_server`] – the bare epoll loop behind the `epoll_*` peers.
//! * [`http`] – request framing and the fixed response of the HTTP peers.
//! * [`tokio_server`] – runtime and listener setup of the tokio peers.
//! * [`uring_server`] – the bare io_uring loop behind `uring_pingpong`.
//! * [`runner`] – the orchestrator behind `muduo-bench all`.

pub mod cli;
pub mod conn;
pub mod epoll_server;
pub mod http;
pub mod runner;
pub mod sys;
pub mod tokio_server;
pub mod uring_server;

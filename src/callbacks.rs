//! Every user-visible callback type in one place (muduo's `Callbacks.h`).
//!
//! Callbacks are shared by the connections of a server across its I/O
//! threads, hence `Arc<dyn Fn + Send + Sync>`. They are always called on
//! the loop thread that owns the connection.

use crate::buffer::Buffer;
use crate::tcp_connection::TcpConnection;
use std::sync::Arc;
use std::time::Instant;

/// A shared connection: `send`, `shutdown` and friends work from any thread.
pub type TcpConnectionPtr = Arc<TcpConnection>;

/// Called when a connection goes up and when it goes down
/// (check [`TcpConnection::connected`]).
pub type ConnectionCallback = Arc<dyn Fn(&TcpConnectionPtr) + Send + Sync>;

/// Called when data arrived: the connection, its input buffer (consume what
/// you use, leave the rest for next time), and when the poll that saw it returned.
pub type MessageCallback = Arc<dyn Fn(&TcpConnectionPtr, &mut Buffer, Instant) + Send + Sync>;

/// Called when the output buffer has been fully written to the kernel.
pub type WriteCompleteCallback = Arc<dyn Fn(&TcpConnectionPtr) + Send + Sync>;

/// Called once each time the output buffer grows across the threshold, with
/// the number of bytes then queued.
pub type HighWaterMarkCallback = Arc<dyn Fn(&TcpConnectionPtr, usize) + Send + Sync>;

/// muduo's default high-water mark: 64 MiB queued for output.
pub const DEFAULT_HIGH_WATER_MARK: usize = 64 * 1024 * 1024;

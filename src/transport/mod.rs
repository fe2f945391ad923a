//! How a connection's bytes move: the transport under the state machine.
//!
//! The state machine (`conn_state`) decides *what* happens (callbacks,
//! states, backpressure, close); a transport does the I/O and reports what
//! happened (bytes read, end of file, would-block, bytes sent, an error),
//! never calling back into the state machine. Two transports:
//!
//! * [`readiness`]: read/readv, send and sendfile when epoll or poll says
//!   the socket is ready (today's muduo model);
//! * [`completion`]: multishot receives from io_uring's provided-buffer
//!   ring and send submissions that own their bytes until they complete.

pub(crate) mod completion;
pub(crate) mod readiness;

use std::io;

/// Which transport a connection uses, chosen by its loop's driver.
pub(crate) enum Io {
    /// Readiness: the socket is read and written when the driver says it may be.
    Readiness {
        /// Edge-triggered epoll: read and write until `EAGAIN`.
        edge: bool,
    },
    /// Completion: io_uring operations in flight.
    Completion(completion::Completion),
}

/// How a read attempt (or a receive completion) ended.
pub(crate) enum ReadOutcome {
    /// Still open; more may come.
    Open,
    /// Edge-triggered: the read budget ran out with data possibly left.
    More,
    /// The peer closed its side.
    Eof,
    /// A socket error.
    Failed(io::Error),
}

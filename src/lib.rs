//! muduo: a non-blocking, one-loop-per-thread network library (skeleton).
#![deny(missing_docs)]

pub mod buffer;

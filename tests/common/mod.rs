//! Helpers shared by the integration tests.
#![allow(dead_code)]

use muduo::PollerKind;
use std::sync::mpsc;
use std::time::Duration;

/// Every poller backend, so loop tests run against each.
pub const POLLERS: [PollerKind; 3] = [PollerKind::Epoll, PollerKind::EpollEdge, PollerKind::Poll];

/// Runs `f` on a fresh thread and fails the test if it takes longer than `limit`.
pub fn with_timeout<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => {
            let _ = t.join();
            v
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match t.join() {
            Err(p) => std::panic::resume_unwind(p),
            Ok(()) => panic!("test thread ended without a result"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("test timed out after {limit:?}"),
    }
}

/// Serializes the tests of one binary that count process-wide resources
/// (open fds): tests run in parallel threads of one process.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

//! `ThreadPool`: plain worker threads for the "single reactor + workers" model.

use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::fmt;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Why a job was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum ThreadPoolError {
    /// The bounded queue is full (only from [`ThreadPool::try_execute`]).
    Full,
    /// The pool is shutting down.
    Closed,
}

impl fmt::Display for ThreadPoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThreadPoolError::Full => f.write_str("thread pool queue is full"),
            ThreadPoolError::Closed => f.write_str("thread pool is shut down"),
        }
    }
}

impl std::error::Error for ThreadPoolError {}

/// Fixed worker threads fed by a queue, optionally bounded (muduo's `ThreadPool`).
///
/// Use it beside an [`EventLoop`](crate::EventLoop) to run slow work off the
/// loop thread, then hand results back with
/// [`LoopHandle::run_in_loop`](crate::LoopHandle::run_in_loop). A job that
/// panics is logged and does not kill its worker. Dropping the pool runs the
/// jobs already queued, then joins the workers.
///
/// ```
/// use muduo::ThreadPool;
/// use std::sync::mpsc;
/// let pool = ThreadPool::new("work", 2, Some(100)).unwrap();
/// let (tx, rx) = mpsc::channel();
/// pool.execute(move || tx.send(6 * 7).unwrap()).unwrap();
/// assert_eq!(rx.recv().unwrap(), 42);
/// ```
pub struct ThreadPool {
    tx: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
    queued: Arc<AtomicUsize>,
}

impl ThreadPool {
    /// Starts `threads` workers (at least one) named `name0`, `name1`, ...;
    /// `queue_bound` limits queued jobs (`None` = unbounded).
    pub fn new(name: &str, threads: usize, queue_bound: Option<usize>) -> io::Result<ThreadPool> {
        let (tx, rx): (Sender<Job>, Receiver<Job>) = match queue_bound {
            Some(n) => crossbeam_channel::bounded(n.max(1)),
            None => crossbeam_channel::unbounded(),
        };
        let queued = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let queued = queued.clone();
            workers.push(
                std::thread::Builder::new()
                    .name(format!("{name}{i}"))
                    .spawn(move || {
                        for job in rx.iter() {
                            queued.fetch_sub(1, Ordering::Relaxed);
                            if catch_unwind(AssertUnwindSafe(job)).is_err() {
                                tracing::error!("a thread-pool job panicked");
                            }
                        }
                    })?,
            );
        }
        Ok(ThreadPool {
            tx: Some(tx),
            workers,
            queued,
        })
    }

    /// Queues `job`, waiting for room when the queue is bounded and full.
    pub fn execute(&self, job: impl FnOnce() + Send + 'static) -> Result<(), ThreadPoolError> {
        let tx = self.tx.as_ref().ok_or(ThreadPoolError::Closed)?;
        self.queued.fetch_add(1, Ordering::Relaxed);
        tx.send(Box::new(job)).map_err(|_| {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            ThreadPoolError::Closed
        })
    }

    /// Queues `job` unless the bounded queue is full.
    pub fn try_execute(&self, job: impl FnOnce() + Send + 'static) -> Result<(), ThreadPoolError> {
        let tx = self.tx.as_ref().ok_or(ThreadPoolError::Closed)?;
        self.queued.fetch_add(1, Ordering::Relaxed);
        tx.try_send(Box::new(job)).map_err(|e| {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            match e {
                TrySendError::Full(_) => ThreadPoolError::Full,
                TrySendError::Disconnected(_) => ThreadPoolError::Closed,
            }
        })
    }

    /// Jobs queued and not yet started.
    pub fn queue_len(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Number of worker threads.
    pub fn thread_count(&self) -> usize {
        self.workers.len()
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.tx.take();
        let me = std::thread::current().id();
        for w in self.workers.drain(..) {
            if w.thread().id() != me {
                let _ = w.join();
            }
        }
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("threads", &self.workers.len())
            .field("queued", &self.queue_len())
            .finish()
    }
}

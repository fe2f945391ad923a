//! `EventLoopThreadPool`: the sub-reactors of a multi-reactor server.

use crate::event_loop::{EventLoop, LoopHandle};
use crate::event_loop_thread::{EventLoopThread, ThreadInitCallback};
use crate::poller::PollerKind;
use crate::sync::RoundRobin;
use std::io;

/// N loop threads beside a base loop (muduo's `EventLoopThreadPool`).
///
/// With N = 0 every request returns the base loop (the single-reactor
/// model). [`next_loop`](Self::next_loop) picks loops round-robin,
/// [`loop_for_hash`](Self::loop_for_hash) picks the same loop for the same
/// hash. Dropping the pool quits and joins its threads.
///
/// ```
/// use muduo::{EventLoop, EventLoopThreadPool};
/// let base = EventLoop::new().unwrap();
/// let mut pool = EventLoopThreadPool::new(&base, "io");
/// pool.set_thread_num(2);
/// pool.start(None).unwrap();
/// let a = pool.next_loop().id();
/// let b = pool.next_loop().id();
/// assert_ne!(a, b);
/// assert_eq!(pool.next_loop().id(), a);
/// ```
pub struct EventLoopThreadPool {
    base: LoopHandle,
    name: String,
    num_threads: usize,
    kind: Option<PollerKind>,
    threads: Vec<EventLoopThread>,
    loops: Vec<LoopHandle>,
    next: RoundRobin,
}

impl EventLoopThreadPool {
    /// A pool beside `base`; no threads run until [`start`](Self::start).
    pub fn new(base: &LoopHandle, name: &str) -> EventLoopThreadPool {
        EventLoopThreadPool {
            base: base.clone(),
            name: name.to_string(),
            num_threads: 0,
            kind: None,
            threads: Vec::new(),
            loops: Vec::new(),
            next: RoundRobin::default(),
        }
    }

    /// Sets how many loop threads to start (before `start`).
    pub fn set_thread_num(&mut self, n: usize) {
        self.num_threads = n;
    }

    /// Chooses the poller of the pool's loops (default: the environment's).
    pub fn set_poller(&mut self, kind: PollerKind) {
        self.kind = Some(kind);
    }

    /// Starts the threads, calling `init` on each new loop before it runs;
    /// with zero threads, `init` runs on the base loop (on its thread).
    /// Calling `start` again does nothing.
    pub fn start(&mut self, init: Option<ThreadInitCallback>) -> io::Result<()> {
        if !self.loops.is_empty() {
            return Ok(());
        }
        let kind = self.kind.unwrap_or_else(PollerKind::from_env);
        for i in 0..self.num_threads {
            let t =
                EventLoopThread::start_with(&format!("{}{}", self.name, i), kind, init.clone())?;
            self.loops.push(t.handle().clone());
            self.threads.push(t);
        }
        if self.num_threads == 0 {
            self.loops.push(self.base.clone());
            if let Some(init) = init {
                self.base.run_in_loop(move || {
                    if let Some(lp) = EventLoop::current() {
                        init(&lp)
                    }
                });
            }
        }
        Ok(())
    }

    /// True once [`start`](Self::start) succeeded.
    pub fn started(&self) -> bool {
        !self.loops.is_empty()
    }

    /// The next loop, round-robin (the base loop when there are no threads
    /// or before `start`). Callable from any thread.
    pub fn next_loop(&self) -> &LoopHandle {
        if self.loops.is_empty() {
            return &self.base;
        }
        let i = self.next.next(self.loops.len());
        &self.loops[i]
    }

    /// The loop for `hash`: always the same one for the same hash.
    pub fn loop_for_hash(&self, hash: u64) -> &LoopHandle {
        if self.loops.is_empty() {
            return &self.base;
        }
        &self.loops[(hash % self.loops.len() as u64) as usize]
    }

    /// Every loop of the pool (just the base loop with zero threads).
    pub fn all_loops(&self) -> Vec<LoopHandle> {
        if self.loops.is_empty() {
            vec![self.base.clone()]
        } else {
            self.loops.clone()
        }
    }

    /// The base loop.
    pub fn base_loop(&self) -> &LoopHandle {
        &self.base
    }

    /// Number of threads started.
    pub fn thread_count(&self) -> usize {
        self.threads.len()
    }

    /// Quits and joins every loop thread (also done on drop).
    pub fn stop(&mut self) {
        for t in self.threads.drain(..) {
            t.join();
        }
        self.loops.clear();
    }
}

impl Drop for EventLoopThreadPool {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for EventLoopThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoopThreadPool")
            .field("name", &self.name)
            .field("threads", &self.threads.len())
            .finish()
    }
}

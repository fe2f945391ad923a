//! `EventLoopThread`: a thread that runs one [`EventLoop`].

use crate::event_loop::{EventLoop, LoopHandle};
use crate::poller::PollerKind;
use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Called on each new loop thread before its loop starts (muduo's `ThreadInitCallback`).
pub type ThreadInitCallback = Arc<dyn Fn(&EventLoop) + Send + Sync>;

/// A thread running its own [`EventLoop`] (muduo's `EventLoopThread`).
///
/// [`start`](Self::start) returns once the loop exists; the handle then
/// reaches it from any thread. Dropping the `EventLoopThread` quits the loop
/// and joins the thread.
///
/// ```
/// use muduo::EventLoopThread;
/// use std::sync::mpsc;
/// let t = EventLoopThread::start("io", None).unwrap();
/// let (tx, rx) = mpsc::channel();
/// t.handle().run_in_loop(move || tx.send(std::thread::current().name().map(String::from)).unwrap());
/// assert_eq!(rx.recv().unwrap().as_deref(), Some("io"));
/// ```
pub struct EventLoopThread {
    handle: LoopHandle,
    thread: Option<JoinHandle<()>>,
}

impl EventLoopThread {
    /// Starts a thread named `name` running a loop with the environment's poller.
    pub fn start(name: &str, init: Option<ThreadInitCallback>) -> io::Result<EventLoopThread> {
        Self::start_with(name, PollerKind::from_env(), init)
    }

    /// Starts a thread running a loop with the given poller; `init` runs on
    /// the new thread before the loop starts.
    pub fn start_with(
        name: &str,
        kind: PollerKind,
        init: Option<ThreadInitCallback>,
    ) -> io::Result<EventLoopThread> {
        let (tx, rx) = crossbeam_channel::bounded::<io::Result<LoopHandle>>(1);
        let loop_name = name.to_string();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let lp = match EventLoop::builder().poller(kind).name(loop_name).build() {
                    Ok(lp) => lp,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                if let Some(init) = init {
                    init(&lp);
                }
                let _ = tx.send(Ok(lp.handle()));
                drop(tx);
                if let Err(e) = lp.run() {
                    tracing::error!(error = %e, "loop thread ended with an error");
                }
            })?;
        match rx.recv() {
            Ok(Ok(handle)) => Ok(EventLoopThread {
                handle,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(io::Error::other(
                    "loop thread died during start (thread-init callback panicked?)",
                ))
            }
        }
    }

    /// The loop's handle.
    pub fn handle(&self) -> &LoopHandle {
        &self.handle
    }

    /// Quits the loop and waits for the thread to end.
    pub fn join(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.handle.quit();
            if t.thread().id() == std::thread::current().id() {
                return; // dropped on its own thread: cannot join itself
            }
            if t.join().is_err() {
                tracing::error!(loop_name = self.handle.name(), "loop thread panicked");
            }
        }
    }
}

impl Drop for EventLoopThread {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for EventLoopThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoopThread")
            .field("handle", &self.handle)
            .finish()
    }
}

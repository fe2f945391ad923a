//! `EventLoop` (the reactor, one per thread) and `LoopHandle` (its thread-safe face).

use crate::channel::{Channel, ChannelHandler, Registry};
use crate::driver::{self, Driver};
use crate::gen_slab::GenSlab;
use crate::poller::{Interest, PollerKind, Token};
use crate::sync::lock;
use crate::timer::{deadline_after, TimerId, TimerQueue};
use rustix::fd::{AsFd, OwnedFd};
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::ops::Deref;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A closure posted to a loop from any thread.
pub type Task = Box<dyn FnOnce() + Send + 'static>;

const WAKEUP_TOKEN: Token = Token(0xffff_ffff);
const TIMER_TOKEN: Token = Token(0xffff_fffe);
/// Rounds of queued closures run after `quit`, before `run` returns.
const DRAIN_ROUNDS: usize = 16;

static NEXT_LOOP_ID: AtomicU64 = AtomicU64::new(1);

/// The loop owned by this thread: its id (0 = none) and a weak reference.
/// One thread-local, so the hot "is this my loop, and give it to me" check
/// is a single TLS access.
struct Current {
    id: Cell<u64>,
    lp: RefCell<Weak<LoopInner>>,
}

thread_local! {
    static CURRENT: Current = const { Current { id: Cell::new(0), lp: RefCell::new(Weak::new()) } };
}

/// The part of a loop other threads may touch.
struct Shared {
    id: u64,
    name: String,
    wakeup: OwnedFd,
    pending: Mutex<Vec<Task>>,
    has_pending: AtomicBool,
    quit: AtomicBool,
    alive: AtomicBool,
    next_timer: AtomicU64,
    timers_in_flight: AtomicUsize,
}

/// The thread-safe handle of an [`EventLoop`] (`Clone + Send + Sync`).
///
/// Everything that may be asked of a loop from another thread lives here:
/// posting closures ([`run_in_loop`](Self::run_in_loop),
/// [`queue_in_loop`](Self::queue_in_loop)), timers
/// ([`run_at`](Self::run_at), [`run_after`](Self::run_after),
/// [`run_every`](Self::run_every), [`cancel`](Self::cancel)) and
/// [`quit`](Self::quit). An [`EventLoop`] dereferences to its handle, so the
/// same calls work on the loop itself.
///
/// Once the loop has been dropped, posted closures and timers are dropped
/// (their captures freed) without running.
#[derive(Clone)]
pub struct LoopHandle {
    shared: Arc<Shared>,
}

struct LoopInner {
    handle: LoopHandle,
    registry: Rc<Registry>,
    timers: RefCell<TimerQueue>,
    kind: PollerKind,
    iteration: Cell<u64>,
    poll_return: Cell<Instant>,
    running: Cell<bool>,
    spare_tasks: RefCell<Vec<Task>>,
    local: RefCell<Vec<Box<dyn FnOnce()>>>,
    spare_local: RefCell<Vec<Box<dyn FnOnce()>>>,
    objects: RefCell<GenSlab<Rc<dyn Any>>>,
}

/// The reactor: muduo's `EventLoop`, one per thread.
///
/// Created on the thread that will run it and never leaves it (`!Send`);
/// cloning gives another reference to the same loop on the same thread.
/// [`run`](Self::run) polls for I/O readiness, dispatches events to
/// [`Channel`]s, fires timers and runs closures posted from other threads,
/// until [`quit`](LoopHandle::quit) is called (from any thread, also before
/// `run`).
///
/// ```
/// use muduo::EventLoop;
/// use std::time::Duration;
/// # fn main() -> std::io::Result<()> {
/// let lp = EventLoop::new()?;
/// let handle = lp.handle();
/// lp.run_after(Duration::from_millis(10), move || handle.quit());
/// lp.run()?; // returns once the timer has called quit()
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EventLoop {
    inner: Rc<LoopInner>,
}

/// Builds an [`EventLoop`] with a chosen poller and name.
///
/// ```
/// use muduo::{EventLoop, PollerKind};
/// let lp = EventLoop::builder().poller(PollerKind::Poll).name("worker").build().unwrap();
/// assert_eq!(lp.poller_kind(), PollerKind::Poll);
/// ```
#[derive(Clone, Debug, Default)]
pub struct EventLoopBuilder {
    kind: Option<PollerKind>,
    name: Option<String>,
}

impl EventLoopBuilder {
    /// Chooses the poller; without it the environment decides ([`PollerKind::from_env`]).
    pub fn poller(mut self, kind: PollerKind) -> Self {
        self.kind = Some(kind);
        self
    }
    /// Names the loop (for logs and [`LoopHandle::name`]).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// Creates the loop on the calling thread.
    ///
    /// Fails with [`io::ErrorKind::AlreadyExists`] when this thread already
    /// has a loop (one loop per thread), or with the OS error when the
    /// epoll/eventfd/timerfd cannot be created (e.g. out of fds).
    pub fn build(self) -> io::Result<EventLoop> {
        if CURRENT.with(|c| c.id.get()) != 0 {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "this thread already has an EventLoop (one loop per thread)",
            ));
        }
        let (mut poller, kind) = Driver::new(self.kind.unwrap_or_else(PollerKind::from_env))?;
        let wakeup = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::NONBLOCK | rustix::event::EventfdFlags::CLOEXEC,
        )?;
        let timers = TimerQueue::new()?;
        // The loop owns these two and keeps them until it is dropped.
        poller.register(wakeup.as_fd(), WAKEUP_TOKEN, Interest::READABLE)?;
        poller.register(timers.fd().as_fd(), TIMER_TOKEN, Interest::READABLE)?;
        let id = NEXT_LOOP_ID.fetch_add(1, Ordering::Relaxed);
        let name = self.name.unwrap_or_else(|| format!("loop-{id}"));
        let shared = Arc::new(Shared {
            id,
            name,
            wakeup,
            pending: Mutex::new(Vec::new()),
            has_pending: AtomicBool::new(false),
            quit: AtomicBool::new(false),
            alive: AtomicBool::new(true),
            next_timer: AtomicU64::new(1),
            timers_in_flight: AtomicUsize::new(0),
        });
        let inner = Rc::new(LoopInner {
            handle: LoopHandle { shared },
            registry: Rc::new(Registry::new(poller)),
            timers: RefCell::new(timers),
            kind,
            iteration: Cell::new(0),
            poll_return: Cell::new(Instant::now()),
            running: Cell::new(false),
            spare_tasks: RefCell::new(Vec::new()),
            local: RefCell::new(Vec::new()),
            spare_local: RefCell::new(Vec::new()),
            objects: RefCell::new(GenSlab::default()),
        });
        CURRENT.with(|c| {
            c.id.set(id);
            *c.lp.borrow_mut() = Rc::downgrade(&inner);
        });
        tracing::debug!(loop_id = id, poller = kind.name(), "event loop created");
        Ok(EventLoop { inner })
    }
}

impl EventLoop {
    /// The current thread's loop if its id is `id` (one TLS access).
    #[inline]
    pub(crate) fn current_if(id: u64) -> Option<EventLoop> {
        CURRENT
            .with(|c| {
                if c.id.get() == id {
                    c.lp.borrow().upgrade()
                } else {
                    None
                }
            })
            .map(|inner| EventLoop { inner })
    }

    /// Creates a loop on this thread with the poller chosen by the environment.
    /// See [`EventLoopBuilder::build`] for the errors.
    pub fn new() -> io::Result<EventLoop> {
        EventLoopBuilder::default().build()
    }

    /// A builder to choose the poller and name.
    pub fn builder() -> EventLoopBuilder {
        EventLoopBuilder::default()
    }

    /// The loop running on (owned by) the calling thread, if any.
    pub fn current() -> Option<EventLoop> {
        CURRENT
            .with(|c| c.lp.borrow().upgrade())
            .map(|inner| EventLoop { inner })
    }

    /// A thread-safe handle to this loop.
    pub fn handle(&self) -> LoopHandle {
        self.inner.handle.clone()
    }

    /// Which poller this loop uses.
    pub fn poller_kind(&self) -> PollerKind {
        self.inner.kind
    }

    /// How many times the loop has returned from polling.
    pub fn iteration(&self) -> u64 {
        self.inner.iteration.get()
    }

    /// When the last poll returned (muduo's `pollReturnTime`).
    pub fn poll_return_time(&self) -> Instant {
        self.inner.poll_return.get()
    }

    /// True while [`run`](Self::run) is executing.
    pub fn is_running(&self) -> bool {
        self.inner.running.get()
    }

    /// Number of channels registered (the loop's own wakeup and timer fds excluded).
    pub fn channel_count(&self) -> usize {
        self.inner.registry.len()
    }

    /// Number of live timers.
    pub fn timer_count(&self) -> usize {
        self.inner.timers.borrow().len()
    }

    /// Registers `handler`'s fd ([`ChannelHandler::fd`]), initially with
    /// no interest. Loop thread only.
    ///
    /// The handler owns the fd (or holds its owner), and the loop keeps the
    /// handler until the returned [`Channel`] is removed or dropped, so the
    /// fd cannot be closed while the loop polls it; on removal the fd leaves
    /// the poller before the loop lets go of the handler. With
    /// [`ChannelCallbacks`](crate::ChannelCallbacks), the fd's owner is
    /// given to [`ChannelCallbacks::new`](crate::ChannelCallbacks::new).
    ///
    /// ```
    /// use muduo::{ChannelCallbacks, EventLoop};
    /// use std::rc::Rc;
    /// # fn main() -> std::io::Result<()> {
    /// let lp = EventLoop::new()?;
    /// let (r, _w) = rustix::pipe::pipe()?;
    /// let ch = lp.register(Rc::new(ChannelCallbacks::new(r)))?;
    /// ch.enable_reading()?;
    /// drop(ch); // out of the loop, then the read end closes
    /// # Ok(()) }
    /// ```
    pub fn register(&self, handler: Rc<dyn ChannelHandler>) -> io::Result<Channel> {
        Ok(self.inner.registry.add(handler))
    }

    /// The handler of the live channel `token`, if any.
    pub(crate) fn handler(&self, token: Token) -> Option<Rc<dyn ChannelHandler>> {
        self.inner.registry.handler(token)
    }

    /// Every live channel's handler (the inspector lists connections with it).
    pub(crate) fn handlers(&self) -> Vec<Rc<dyn ChannelHandler>> {
        self.inner.registry.handlers()
    }

    /// Keeps a loop-thread object alive in this loop and returns a key that
    /// other threads can carry (used for connectors). Keys carry a
    /// generation, so a removed key never finds a newer object.
    pub(crate) fn insert_object(&self, obj: Rc<dyn Any>) -> u64 {
        self.inner.objects.borrow_mut().insert(obj)
    }

    /// The object stored under `key`, if still there.
    pub(crate) fn object(&self, key: u64) -> Option<Rc<dyn Any>> {
        self.inner.objects.borrow().get(key).cloned()
    }

    /// Removes and returns the object stored under `key`.
    pub(crate) fn remove_object(&self, key: u64) -> Option<Rc<dyn Any>> {
        self.inner.objects.borrow_mut().remove(key)
    }

    /// Queues a closure that need not be `Send` to run on this loop after
    /// the current batch of events (loop thread only, as the loop is `!Send`).
    pub fn queue_local(&self, f: impl FnOnce() + 'static) {
        self.inner.local.borrow_mut().push(Box::new(f));
    }

    /// Like [`LoopHandle::run_after`] for a closure that need not be `Send`.
    pub fn run_after_local(&self, delay: Duration, f: impl FnMut() + 'static) -> TimerId {
        self.insert_timer(deadline_after(Instant::now(), delay), None, Box::new(f))
    }

    /// Like [`LoopHandle::run_every`] for a closure that need not be `Send`.
    pub fn run_every_local(&self, interval: Duration, f: impl FnMut() + 'static) -> TimerId {
        let interval = interval.max(MIN_INTERVAL);
        self.insert_timer(
            deadline_after(Instant::now(), interval),
            Some(interval),
            Box::new(f),
        )
    }

    fn insert_timer(
        &self,
        when: Instant,
        interval: Option<Duration>,
        f: Box<dyn FnMut()>,
    ) -> TimerId {
        let seq = self
            .inner
            .handle
            .shared
            .next_timer
            .fetch_add(1, Ordering::Relaxed);
        self.inner
            .timers
            .borrow_mut()
            .insert(seq, when, interval, f);
        TimerId(seq)
    }

    fn cancel_local(&self, id: TimerId) {
        let in_flight = self
            .inner
            .handle
            .shared
            .timers_in_flight
            .load(Ordering::Acquire)
            > 0;
        let mut timers = self.inner.timers.borrow_mut();
        timers.cancel(id.0, in_flight);
        timers.rearm();
    }

    /// Runs the loop until [`quit`](LoopHandle::quit) (muduo's `loop()`).
    ///
    /// A `quit` issued before `run` is not lost: `run` then returns at once.
    /// Closures queued while quitting still run before `run` returns (up to a
    /// bounded number of rounds; any left over are dropped with the loop).
    /// Fails if called re-entrantly from a callback, or if the poller fails.
    pub fn run(&self) -> io::Result<()> {
        let inner = &*self.inner;
        if inner.running.replace(true) {
            return Err(io::Error::other(
                "EventLoop::run called while the loop is already running",
            ));
        }
        let shared = &*inner.handle.shared;
        tracing::debug!(loop_id = shared.id, "event loop running");
        let result = self.run_until_quit();
        for _ in 0..DRAIN_ROUNDS {
            if !shared.has_pending.load(Ordering::Acquire) && inner.local.borrow().is_empty() {
                break;
            }
            self.run_local();
            self.run_pending();
        }
        shared.quit.store(false, Ordering::Release);
        inner.running.set(false);
        tracing::debug!(
            loop_id = shared.id,
            iterations = inner.iteration.get(),
            "event loop stopped"
        );
        result
    }

    fn run_until_quit(&self) -> io::Result<()> {
        let inner = &*self.inner;
        let shared = &*inner.handle.shared;
        loop {
            if shared.quit.load(Ordering::Acquire) {
                return Ok(());
            }
            let busy =
                shared.has_pending.load(Ordering::Acquire) || !inner.local.borrow().is_empty();
            let timeout = if busy { Some(Duration::ZERO) } else { None };
            let entered = crate::inspect::counters::poll_entered(timeout);
            let polled = inner.registry.driver.borrow_mut().wait(timeout);
            if let Err(e) = polled {
                tracing::error!(error = %e, "poll failed; event loop stops");
                return Err(e);
            }
            let now = Instant::now();
            crate::inspect::counters::poll_returned(entered, now);
            inner.poll_return.set(now);
            inner.iteration.set(inner.iteration.get() + 1);
            driver::dispatch(&inner.registry, now, |token| match token {
                WAKEUP_TOKEN => {
                    drain_wakeup(&shared.wakeup);
                    true
                }
                TIMER_TOKEN => {
                    self.fire_timers();
                    true
                }
                _ => false,
            });
            self.run_local();
            self.run_pending();
        }
    }

    fn fire_timers(&self) {
        let inner = &*self.inner;
        inner.timers.borrow_mut().acknowledge();
        let now = Instant::now();
        loop {
            let next = inner.timers.borrow_mut().pop_expired(now);
            let Some((seq, mut callback)) = next else {
                break;
            };
            callback();
            inner.timers.borrow_mut().finish(seq, callback, now);
        }
        inner.timers.borrow_mut().rearm();
    }

    fn run_local(&self) {
        let inner = &*self.inner;
        if inner.local.borrow().is_empty() {
            return;
        }
        let mut batch = std::mem::take(&mut *inner.spare_local.borrow_mut());
        std::mem::swap(&mut batch, &mut *inner.local.borrow_mut());
        for f in batch.drain(..) {
            f();
        }
        *inner.spare_local.borrow_mut() = batch;
    }

    /// muduo's `doPendingFunctors`: swap the queue out under the lock, run
    /// the closures without it.
    fn run_pending(&self) {
        let inner = &*self.inner;
        let shared = &*inner.handle.shared;
        if !shared.has_pending.load(Ordering::Acquire) {
            return;
        }
        let mut batch = std::mem::take(&mut *inner.spare_tasks.borrow_mut());
        {
            let mut q = lock(&shared.pending);
            std::mem::swap(&mut *q, &mut batch);
            shared.has_pending.store(false, Ordering::Release);
        }
        for task in batch.drain(..) {
            task();
        }
        *inner.spare_tasks.borrow_mut() = batch;
    }
}

/// Intervals below this are raised to it, so `run_every` cannot spin.
const MIN_INTERVAL: Duration = Duration::from_micros(1);

fn drain_wakeup(fd: &OwnedFd) {
    let mut buf = [0u8; 8];
    let _ = rustix::io::read(fd, &mut buf);
}

impl Deref for EventLoop {
    type Target = LoopHandle;
    fn deref(&self) -> &LoopHandle {
        &self.inner.handle
    }
}

impl fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLoop")
            .field("name", &self.inner.handle.shared.name)
            .field("poller", &self.inner.kind)
            .field("iteration", &self.inner.iteration.get())
            .finish()
    }
}

impl Drop for LoopInner {
    fn drop(&mut self) {
        let shared = &*self.handle.shared;
        // During thread exit the thread-local may already be gone.
        let _ = CURRENT.try_with(|c| {
            if c.id.get() == shared.id {
                c.id.set(0);
                *c.lp.borrow_mut() = Weak::new();
            }
        });
        let leftover = {
            let mut q = lock(&shared.pending);
            shared.alive.store(false, Ordering::Release);
            std::mem::take(&mut *q)
        };
        drop(leftover);
        self.local.borrow_mut().clear();
        let objects = std::mem::take(&mut *self.objects.borrow_mut());
        drop(objects);
        self.registry.clear();
        tracing::debug!(loop_id = shared.id, "event loop dropped");
    }
}

impl LoopHandle {
    /// True when called on the thread that owns this loop.
    #[inline]
    pub fn is_in_loop_thread(&self) -> bool {
        CURRENT.with(|c| c.id.get()) == self.shared.id
    }

    /// The loop's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// A process-unique id of the loop.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// True until the loop has been dropped.
    pub fn is_alive(&self) -> bool {
        self.shared.alive.load(Ordering::Acquire)
    }

    /// Number of closures queued and not yet run.
    pub fn queue_size(&self) -> usize {
        lock(&self.shared.pending).len()
    }

    /// Runs `f` now if called on the loop thread, else queues it (muduo's `runInLoop`).
    /// Closures posted from one thread run in posting order.
    pub fn run_in_loop(&self, f: impl FnOnce() + Send + 'static) {
        if self.is_in_loop_thread() {
            f();
        } else {
            self.queue_in_loop(f);
        }
    }

    /// Queues `f` to run on the loop thread after the current batch of
    /// events (muduo's `queueInLoop`), waking the loop when it may be
    /// blocked in poll. If the loop is gone, `f` is dropped unrun.
    pub fn queue_in_loop(&self, f: impl FnOnce() + Send + 'static) {
        self.queue_task(Box::new(f));
    }

    /// Like [`queue_in_loop`](Self::queue_in_loop) for an already boxed closure.
    pub fn queue_task(&self, task: Task) {
        let shared = &*self.shared;
        let was_empty = {
            let mut q = lock(&shared.pending);
            if !shared.alive.load(Ordering::Acquire) {
                drop(q);
                drop(task);
                return;
            }
            let was_empty = q.is_empty();
            q.push(task);
            shared.has_pending.store(true, Ordering::Release);
            was_empty
        };
        // The loop checks `has_pending` before it blocks, so its own thread
        // never needs the eventfd; another thread needs it only for the
        // first closure of a batch (later ones ride on that wakeup).
        if was_empty && !self.is_in_loop_thread() {
            self.wakeup();
        }
    }

    /// Makes the loop return from poll (an eventfd write).
    pub fn wakeup(&self) {
        let _ = rustix::io::write(&self.shared.wakeup, &1u64.to_ne_bytes());
    }

    /// Asks the loop to stop; callable from any thread, also before `run`
    /// (the request is kept until `run` sees it).
    pub fn quit(&self) {
        self.shared.quit.store(true, Ordering::Release);
        if !self.is_in_loop_thread() {
            self.wakeup();
        }
    }

    /// Runs `f` once at `when` on the loop thread.
    pub fn run_at(&self, when: Instant, f: impl FnOnce() + Send + 'static) -> TimerId {
        let mut f = Some(f);
        self.add_timer(
            when,
            None,
            Box::new(move || {
                if let Some(f) = f.take() {
                    f()
                }
            }),
        )
    }

    /// Runs `f` once after `delay`.
    pub fn run_after(&self, delay: Duration, f: impl FnOnce() + Send + 'static) -> TimerId {
        self.run_at(deadline_after(Instant::now(), delay), f)
    }

    /// Runs `f` every `interval`, first after one interval. The n-th call is
    /// due at `start + n * interval` (no drift); periods missed while the
    /// loop was busy are skipped. Intervals below 1 µs are raised to 1 µs.
    pub fn run_every(&self, interval: Duration, f: impl FnMut() + Send + 'static) -> TimerId {
        let interval = interval.max(MIN_INTERVAL);
        self.add_timer(
            deadline_after(Instant::now(), interval),
            Some(interval),
            Box::new(f),
        )
    }

    fn add_timer(
        &self,
        when: Instant,
        interval: Option<Duration>,
        f: Box<dyn FnMut() + Send>,
    ) -> TimerId {
        if self.is_in_loop_thread() {
            if let Some(lp) = EventLoop::current() {
                return lp.insert_timer(when, interval, f);
            }
        }
        let shared = &*self.shared;
        let seq = shared.next_timer.fetch_add(1, Ordering::Relaxed);
        shared.timers_in_flight.fetch_add(1, Ordering::AcqRel);
        let me = self.clone();
        self.queue_in_loop(move || {
            let left = me.shared.timers_in_flight.fetch_sub(1, Ordering::AcqRel) - 1;
            if let Some(lp) = EventLoop::current() {
                let mut timers = lp.inner.timers.borrow_mut();
                timers.insert(seq, when, interval, f);
                if left == 0 {
                    timers.settle();
                }
            }
        });
        TimerId(seq)
    }

    /// Cancels a timer; callable from any thread, also from the timer's own
    /// callback (a repeating timer then does not fire again). Cancelling a
    /// timer that already fired or was cancelled does nothing.
    pub fn cancel(&self, id: TimerId) {
        if self.is_in_loop_thread() {
            if let Some(lp) = EventLoop::current() {
                lp.cancel_local(id);
                return;
            }
        }
        self.queue_in_loop(move || {
            if let Some(lp) = EventLoop::current() {
                lp.cancel_local(id);
            }
        });
    }
}

impl fmt::Debug for LoopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHandle")
            .field("name", &self.shared.name)
            .field("id", &self.shared.id)
            .finish()
    }
}

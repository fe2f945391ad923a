//! EventLoopThread, EventLoopThreadPool and ThreadPool.

mod support;
use muduo::{
    EventLoop, EventLoopThread, EventLoopThreadPool, ThreadInitCallback, ThreadPool,
    ThreadPoolError,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;
use support::with_timeout;

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn loop_thread_runs_closures_and_joins_on_drop() {
    with_timeout(LIMIT, || {
        let inits = Arc::new(AtomicUsize::new(0));
        let i2 = inits.clone();
        let init: ThreadInitCallback = Arc::new(move |_lp: &EventLoop| {
            i2.fetch_add(1, Ordering::SeqCst);
        });
        let t = EventLoopThread::start("lt", Some(init)).unwrap();
        assert_eq!(inits.load(Ordering::SeqCst), 1);
        let (tx, rx) = mpsc::channel();
        let h = t.handle().clone();
        t.handle()
            .run_in_loop(move || tx.send(h.is_in_loop_thread()).unwrap());
        assert!(rx.recv().unwrap());
        let h = t.handle().clone();
        drop(t);
        assert!(
            !h.is_alive(),
            "the loop should be gone after the thread joined"
        );
    });
}

#[test]
fn pool_round_robin_hash_and_init() {
    with_timeout(LIMIT, || {
        let base = EventLoop::new().unwrap();
        let mut pool = EventLoopThreadPool::new(&base, "rr");
        pool.set_thread_num(3);
        let inits = Arc::new(AtomicUsize::new(0));
        let i2 = inits.clone();
        pool.start(Some(Arc::new(move |_lp: &EventLoop| {
            i2.fetch_add(1, Ordering::SeqCst);
        })))
        .unwrap();
        assert_eq!(inits.load(Ordering::SeqCst), 3);
        let all: Vec<u64> = pool.all_loops().iter().map(|h| h.id()).collect();
        assert_eq!(all.len(), 3);
        assert!(!all.contains(&base.id()));
        let picked: Vec<u64> = (0..7).map(|_| pool.next_loop().id()).collect();
        let expected: Vec<u64> = (0..7).map(|i| all[i % 3]).collect();
        assert_eq!(picked, expected);
        for h in 0..100u64 {
            assert_eq!(pool.loop_for_hash(h).id(), pool.loop_for_hash(h).id());
            assert_eq!(pool.loop_for_hash(h).id(), all[(h % 3) as usize]);
        }
        // Each loop really runs on its own thread.
        let (tx, rx) = mpsc::channel();
        for h in pool.all_loops() {
            let tx = tx.clone();
            let h2 = h.clone();
            h.run_in_loop(move || tx.send((h2.id(), h2.is_in_loop_thread())).unwrap());
        }
        for _ in 0..3 {
            assert!(rx.recv().unwrap().1);
        }
        pool.stop();
        assert_eq!(pool.thread_count(), 0);
    });
}

#[test]
fn pool_with_zero_threads_returns_the_base_loop() {
    with_timeout(LIMIT, || {
        let base = EventLoop::new().unwrap();
        let mut pool = EventLoopThreadPool::new(&base, "none");
        let inits = Arc::new(AtomicUsize::new(0));
        let i2 = inits.clone();
        pool.start(Some(Arc::new(move |_lp: &EventLoop| {
            i2.fetch_add(1, Ordering::SeqCst);
        })))
        .unwrap();
        assert_eq!(
            inits.load(Ordering::SeqCst),
            1,
            "init runs on the base loop with N = 0"
        );
        assert_eq!(pool.next_loop().id(), base.id());
        assert_eq!(pool.loop_for_hash(12345).id(), base.id());
        assert_eq!(pool.all_loops().len(), 1);
    });
}

#[test]
fn thread_pool_bounded_queue_and_panics() {
    with_timeout(LIMIT, || {
        let pool = ThreadPool::new("w", 1, Some(1)).unwrap();
        let gate = Arc::new(Barrier::new(2));
        let g = gate.clone();
        pool.execute(move || {
            g.wait();
        })
        .unwrap();
        // The worker is blocked; fill the one-slot queue, then overflow it.
        let mut full = false;
        for _ in 0..100 {
            match pool.try_execute(|| {}) {
                Ok(()) => {}
                Err(ThreadPoolError::Full) => {
                    full = true;
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(full);
        gate.wait();
        pool.execute(|| panic!("job panics (expected in this test)"))
            .unwrap();
        let (tx, rx) = mpsc::channel();
        pool.execute(move || tx.send(1).unwrap()).unwrap();
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)).unwrap(),
            1,
            "worker died with the panicking job"
        );
    });
}

#[test]
fn thread_pool_runs_everything_before_drop_returns() {
    let done = Arc::new(AtomicUsize::new(0));
    {
        let pool = ThreadPool::new("d", 2, None).unwrap();
        for _ in 0..1000 {
            let d = done.clone();
            pool.execute(move || {
                d.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        }
    }
    assert_eq!(done.load(Ordering::SeqCst), 1000);
}

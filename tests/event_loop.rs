//! EventLoop: cross-thread closures, quit, one loop per thread; on every poller.

mod support;
use muduo::{EventLoop, PollerKind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;
use support::with_timeout;

const LIMIT: Duration = Duration::from_secs(30);

fn posting_order(kind: PollerKind) {
    with_timeout(LIMIT, move || {
        const THREADS: usize = 8;
        const PER_THREAD: usize = 10_000;
        let lp = EventLoop::builder().poller(kind).build().unwrap();
        let next: Arc<Vec<AtomicUsize>> =
            Arc::new((0..THREADS).map(|_| AtomicUsize::new(0)).collect());
        let ran = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(Barrier::new(THREADS));
        let mut posters = Vec::new();
        for t in 0..THREADS {
            let h = lp.handle();
            let (next, ran, errors, barrier) =
                (next.clone(), ran.clone(), errors.clone(), barrier.clone());
            posters.push(std::thread::spawn(move || {
                barrier.wait();
                for i in 0..PER_THREAD {
                    let (next, ran, errors, h2) =
                        (next.clone(), ran.clone(), errors.clone(), h.clone());
                    h.run_in_loop(move || {
                        if !h2.is_in_loop_thread() || next[t].load(Ordering::Relaxed) != i {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                        next[t].store(i + 1, Ordering::Relaxed);
                        if ran.fetch_add(1, Ordering::Relaxed) + 1 == THREADS * PER_THREAD {
                            h2.quit();
                        }
                    });
                }
            }));
        }
        lp.run().unwrap();
        for p in posters {
            p.join().unwrap();
        }
        assert_eq!(
            errors.load(Ordering::Relaxed),
            0,
            "closures ran out of order or off the loop thread"
        );
        assert_eq!(ran.load(Ordering::Relaxed), THREADS * PER_THREAD);
        for n in next.iter() {
            assert_eq!(n.load(Ordering::Relaxed), PER_THREAD);
        }
    });
}

#[test]
fn eight_threads_post_in_order_epoll() {
    posting_order(PollerKind::Epoll);
}
#[test]
fn eight_threads_post_in_order_epoll_et() {
    posting_order(PollerKind::EpollEdge);
}
#[test]
fn eight_threads_post_in_order_poll() {
    posting_order(PollerKind::Poll);
}

#[test]
fn quit_from_another_thread_ends_run() {
    for kind in support::pollers() {
        with_timeout(LIMIT, move || {
            let lp = EventLoop::builder().poller(kind).build().unwrap();
            let h = lp.handle();
            let t = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                h.quit();
            });
            lp.run().unwrap();
            t.join().unwrap();
            assert!(lp.iteration() >= 1);
        });
    }
}

#[test]
fn quit_before_run_is_not_lost() {
    for kind in support::pollers() {
        with_timeout(LIMIT, move || {
            let lp = EventLoop::builder().poller(kind).build().unwrap();
            lp.quit();
            lp.run().unwrap();
            // From another thread, before run, too.
            let h = lp.handle();
            std::thread::spawn(move || h.quit()).join().unwrap();
            lp.run().unwrap();
        });
    }
}

#[test]
fn second_loop_on_one_thread_is_refused() {
    with_timeout(LIMIT, || {
        let lp = EventLoop::new().unwrap();
        let err = EventLoop::new().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert!(err.to_string().contains("one loop per thread"));
        drop(lp);
        // Once the first loop is gone the thread may have another.
        EventLoop::new().unwrap();
    });
}

#[test]
fn closures_queued_while_quitting_still_run() {
    for kind in support::pollers() {
        with_timeout(LIMIT, move || {
            let lp = EventLoop::builder().poller(kind).build().unwrap();
            let ran = Arc::new(AtomicBool::new(false));
            let (h, r) = (lp.handle(), ran.clone());
            lp.queue_in_loop(move || {
                h.quit();
                let r2 = r.clone();
                h.queue_in_loop(move || r2.store(true, Ordering::SeqCst));
            });
            lp.run().unwrap();
            assert!(ran.load(Ordering::SeqCst));
        });
    }
}

#[test]
fn closures_posted_to_a_dropped_loop_are_dropped_not_leaked() {
    with_timeout(LIMIT, || {
        let lp = EventLoop::new().unwrap();
        let h = lp.handle();
        let token = Arc::new(());
        let t1 = token.clone();
        h.queue_in_loop(move || drop(t1)); // queued, never run
        drop(lp);
        assert!(!h.is_alive());
        let t2 = token.clone();
        std::thread::spawn(move || h.run_in_loop(move || drop(t2)))
            .join()
            .unwrap();
        assert_eq!(
            Arc::strong_count(&token),
            1,
            "captures of unrun closures must be freed"
        );
    });
}

#[test]
fn run_in_loop_on_the_loop_thread_runs_at_once() {
    let lp = EventLoop::new().unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    lp.run_in_loop(move || r.store(true, Ordering::SeqCst));
    assert!(ran.load(Ordering::SeqCst));
    assert!(lp.is_in_loop_thread());
    let h = lp.handle();
    assert!(!std::thread::spawn(move || h.is_in_loop_thread())
        .join()
        .unwrap());
}

#[test]
fn reentrant_run_is_an_error() {
    with_timeout(LIMIT, || {
        let lp = EventLoop::new().unwrap();
        let lp2 = lp.clone();
        let failed = std::rc::Rc::new(std::cell::Cell::new(false));
        let f = failed.clone();
        lp.queue_local(move || {
            f.set(lp2.run().is_err());
            lp2.quit();
        });
        lp.run().unwrap();
        assert!(failed.get());
    });
}

#[test]
fn poller_from_env_and_parse() {
    assert_eq!(PollerKind::parse("epoll-et"), Some(PollerKind::EpollEdge));
    assert_eq!(PollerKind::parse("poll"), Some(PollerKind::Poll));
    assert_eq!(PollerKind::parse("kqueue"), None);
    assert!("nope"
        .parse::<PollerKind>()
        .unwrap_err()
        .contains("unknown poller"));
}

#[test]
fn backend_names_parse_and_auto_resolves_to_a_real_backend() {
    for kind in [
        PollerKind::Epoll,
        PollerKind::EpollEdge,
        PollerKind::Poll,
        PollerKind::Uring,
        PollerKind::Auto,
    ] {
        assert_eq!(kind.name().parse::<PollerKind>(), Ok(kind));
    }
    assert_eq!(PollerKind::parse("io_uring"), Some(PollerKind::Uring));
    let err = "kqueue".parse::<PollerKind>().unwrap_err();
    assert!(err.contains("uring"), "{err}");
    with_timeout(LIMIT, || {
        let lp = EventLoop::builder()
            .poller(PollerKind::Auto)
            .build()
            .unwrap();
        let want = if support::available(PollerKind::Uring) {
            PollerKind::Uring
        } else {
            PollerKind::Epoll
        };
        assert_eq!(lp.poller_kind(), want, "auto resolves to what it uses");
        let h = lp.handle();
        lp.run_after(Duration::from_millis(5), move || h.quit());
        lp.run().unwrap();
    });
}

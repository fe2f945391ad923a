//! Timers: ordering, cancellation (also from the callback and other threads), repeat.

mod support;
use muduo::{EventLoop, TimerId};
use rand::Rng;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{with_timeout, POLLERS};

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn thousand_random_timers_fire_in_deadline_order() {
    for kind in POLLERS {
        with_timeout(LIMIT, move || {
            let lp = EventLoop::builder().poller(kind).build().unwrap();
            let fired = Arc::new(Mutex::new(Vec::new()));
            let mut rng = rand::thread_rng();
            let start = Instant::now();
            let mut deadlines = Vec::new();
            for i in 0..1000u32 {
                let when = start + Duration::from_micros(rng.gen_range(0..200_000));
                deadlines.push(when);
                let f = fired.clone();
                lp.run_at(when, move || f.lock().unwrap().push((when, i)));
            }
            let h = lp.handle();
            lp.run_at(start + Duration::from_millis(250), move || h.quit());
            lp.run().unwrap();
            let fired = fired.lock().unwrap();
            assert_eq!(fired.len(), 1000);
            for w in fired.windows(2) {
                assert!(w[0].0 <= w[1].0, "timers fired out of deadline order");
            }
            assert_eq!(lp.timer_count(), 0);
        });
    }
}

#[test]
fn cancelled_timer_never_fires() {
    for kind in POLLERS {
        with_timeout(LIMIT, move || {
            let lp = EventLoop::builder().poller(kind).build().unwrap();
            let hits = Arc::new(AtomicUsize::new(0));
            let h1 = hits.clone();
            let id = lp.run_after(Duration::from_millis(10), move || {
                h1.fetch_add(1, Ordering::SeqCst);
            });
            let h2 = hits.clone();
            let every = lp.run_every(Duration::from_millis(5), move || {
                h2.fetch_add(100, Ordering::SeqCst);
            });
            lp.cancel(id);
            lp.cancel(every);
            lp.cancel(id); // twice is harmless
            let h = lp.handle();
            lp.run_after(Duration::from_millis(60), move || h.quit());
            lp.run().unwrap();
            assert_eq!(hits.load(Ordering::SeqCst), 0);
        });
    }
}

#[test]
fn repeating_timer_cancelled_from_its_own_callback_fires_exactly_n_times() {
    for kind in POLLERS {
        with_timeout(LIMIT, move || {
            let lp = EventLoop::builder().poller(kind).build().unwrap();
            let count = Rc::new(Cell::new(0u32));
            let my_id: Rc<Cell<Option<TimerId>>> = Rc::new(Cell::new(None));
            let (c, me, lp2) = (count.clone(), my_id.clone(), lp.clone());
            let id = lp.run_every_local(Duration::from_millis(2), move || {
                c.set(c.get() + 1);
                if c.get() == 5 {
                    lp2.cancel(me.get().unwrap());
                }
            });
            my_id.set(Some(id));
            let h = lp.handle();
            lp.run_after(Duration::from_millis(80), move || h.quit());
            lp.run().unwrap();
            assert_eq!(count.get(), 5);
        });
    }
}

#[test]
fn send_timer_cancelled_from_its_callback_via_handle() {
    with_timeout(LIMIT, || {
        let lp = EventLoop::new().unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let slot: Arc<Mutex<Option<TimerId>>> = Arc::new(Mutex::new(None));
        let (c, s, h) = (count.clone(), slot.clone(), lp.handle());
        let id = lp.run_every(Duration::from_millis(1), move || {
            if c.fetch_add(1, Ordering::SeqCst) + 1 == 3 {
                h.cancel(s.lock().unwrap().unwrap());
            }
        });
        *slot.lock().unwrap() = Some(id);
        let h = lp.handle();
        lp.run_after(Duration::from_millis(50), move || h.quit());
        lp.run().unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 3);
    });
}

#[test]
fn cancel_from_another_thread() {
    for kind in POLLERS {
        with_timeout(LIMIT, move || {
            let lp = EventLoop::builder().poller(kind).build().unwrap();
            let hits = Arc::new(AtomicUsize::new(0));
            let h = lp.handle();
            let hits2 = hits.clone();
            let t = std::thread::spawn(move || {
                // Added and cancelled remotely, back to back: the cancel may
                // reach the loop before or after the insertion.
                let hh = hits2.clone();
                let id = h.run_after(Duration::from_millis(20), move || {
                    hh.fetch_add(1, Ordering::SeqCst);
                });
                h.cancel(id);
                let hh = hits2.clone();
                let (fired_tx, fired_rx) = std::sync::mpsc::channel();
                let every = h.run_every(Duration::from_millis(3), move || {
                    hh.fetch_add(1000, Ordering::SeqCst);
                    let _ = fired_tx.send(());
                });
                // Cancel once it has fired (however loaded the machine is),
                // then stop the loop.
                fired_rx
                    .recv_timeout(Duration::from_secs(20))
                    .expect("the repeating timer never fired");
                h.cancel(every);
                h.quit();
            });
            lp.run().unwrap();
            t.join().unwrap();
            let n = hits.load(Ordering::SeqCst);
            assert_eq!(n % 1000, 0, "the cancelled one-shot fired");
            assert!(
                n >= 1000,
                "the repeating timer should have fired before it was cancelled"
            );
            let after = n;
            // No firing after the cancel: run a little longer.
            let h = lp.handle();
            lp.run_after(Duration::from_millis(30), move || h.quit());
            lp.run().unwrap();
            assert_eq!(hits.load(Ordering::SeqCst), after);
        });
    }
}

#[test]
fn run_every_is_scheduled_from_the_start_without_drift() {
    with_timeout(LIMIT, || {
        let lp = EventLoop::new().unwrap();
        let times = Rc::new(RefCell::new(Vec::new()));
        let t = times.clone();
        let start = Instant::now();
        let interval = Duration::from_millis(10);
        lp.run_every_local(interval, move || t.borrow_mut().push(Instant::now()));
        let h = lp.handle();
        lp.run_after(Duration::from_millis(105), move || h.quit());
        lp.run().unwrap();
        let times = times.borrow();
        assert!(times.len() >= 5, "only {} firings", times.len());
        for (n, when) in times.iter().enumerate() {
            // The n-th firing (1-based) is never before start + n * interval.
            assert!(*when >= start + interval * (n as u32 + 1));
        }
    });
}

#[test]
fn huge_delays_do_not_overflow() {
    let lp = EventLoop::new().unwrap();
    let id = lp.run_after(Duration::MAX, || {});
    lp.run_every(Duration::ZERO, || {});
    lp.cancel(id);
    assert_eq!(lp.timer_count(), 1);
}

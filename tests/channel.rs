//! Channel: dispatch of readable events, interest changes, stale tokens.

mod common;
use common::{with_timeout, POLLERS};
use muduo::{Channel, ChannelCallbacks, EventLoop, Interest};
use rustix::fd::{AsRawFd, OwnedFd};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

fn eventfd() -> OwnedFd {
    rustix::event::eventfd(
        0,
        rustix::event::EventfdFlags::NONBLOCK | rustix::event::EventfdFlags::CLOEXEC,
    )
    .unwrap()
}

#[test]
fn readable_event_reaches_the_read_handler() {
    for kind in POLLERS {
        with_timeout(LIMIT, move || {
            let lp = EventLoop::builder().poller(kind).build().unwrap();
            let efd = Rc::new(eventfd());
            let reads = Rc::new(Cell::new(0));
            let (r, fd, lp2) = (reads.clone(), efd.clone(), lp.clone());
            let cb = ChannelCallbacks::new()
                .on_read(move |_| {
                    let mut b = [0u8; 8];
                    rustix::io::read(&*fd, &mut b).unwrap();
                    r.set(r.get() + 1);
                    lp2.quit();
                })
                .on_write(|| panic!("write handler called without write interest"));
            let ch = lp.register(&*efd, Rc::new(cb)).unwrap();
            ch.enable_reading().unwrap();
            assert!(ch.is_reading() && !ch.is_writing());
            rustix::io::write(&*efd, &1u64.to_ne_bytes()).unwrap();
            lp.run().unwrap();
            assert_eq!(reads.get(), 1);
        });
    }
}

#[test]
fn disabling_all_interest_stops_dispatch() {
    for kind in POLLERS {
        with_timeout(LIMIT, move || {
            let lp = EventLoop::builder().poller(kind).build().unwrap();
            let efd = eventfd();
            let reads = Rc::new(Cell::new(0));
            let r = reads.clone();
            // Never drains the fd: with level triggering it would fire forever.
            let ch = lp
                .register(
                    &efd,
                    Rc::new(ChannelCallbacks::new().on_read(move |_| r.set(r.get() + 1))),
                )
                .unwrap();
            ch.enable_reading().unwrap();
            rustix::io::write(&efd, &1u64.to_ne_bytes()).unwrap();
            let ch = Rc::new(ch);
            let c2 = ch.clone();
            lp.run_after_local(Duration::from_millis(20), move || c2.disable_all().unwrap());
            let seen = Rc::new(Cell::new(0));
            let (s, r) = (seen.clone(), reads.clone());
            lp.run_after_local(Duration::from_millis(40), move || s.set(r.get()));
            let h = lp.handle();
            lp.run_after(Duration::from_millis(80), move || h.quit());
            lp.run().unwrap();
            assert!(reads.get() >= 1);
            assert!(ch.is_none_event());
            assert_eq!(
                reads.get(),
                seen.get(),
                "read handler ran after disable_all"
            );
        });
    }
}

#[test]
fn hangup_without_read_interest_does_not_spin() {
    for kind in POLLERS {
        with_timeout(LIMIT, move || {
            let lp = EventLoop::builder().poller(kind).build().unwrap();
            let (r, w) = rustix::pipe::pipe().unwrap();
            let calls = Rc::new(Cell::new(0));
            let c = calls.clone();
            let ch = lp
                .register(
                    &r,
                    Rc::new(ChannelCallbacks::new().on_close(move || c.set(c.get() + 1))),
                )
                .unwrap();
            ch.enable_reading().unwrap();
            ch.disable_reading().unwrap();
            drop(w); // the read end now reports a hang-up forever
            let h = lp.handle();
            lp.run_after(Duration::from_millis(30), move || h.quit());
            lp.run().unwrap();
            assert_eq!(calls.get(), 0);
            assert!(lp.iteration() < 50, "loop spun {} times", lp.iteration());
        });
    }
}

#[test]
fn removed_channel_never_gets_a_stale_event_after_fd_reuse() {
    for kind in POLLERS {
        with_timeout(LIMIT, move || {
            let lp = EventLoop::builder().poller(kind).build().unwrap();
            // Two readable fds in the same poll batch. Whichever handler runs
            // first removes the other channel, closes its fd, and registers a
            // fresh, never-readable fd that reuses the number. The second
            // event of the batch must not reach the newcomer.
            let fds: Rc<RefCell<Vec<Option<OwnedFd>>>> =
                Rc::new(RefCell::new(vec![Some(eventfd()), Some(eventfd())]));
            let chans: Rc<RefCell<Vec<Option<Channel>>>> = Rc::new(RefCell::new(vec![None, None]));
            let newcomer: Rc<RefCell<Option<(OwnedFd, Channel)>>> = Rc::new(RefCell::new(None));
            let stale_hits = Rc::new(Cell::new(0));
            let first_done = Rc::new(Cell::new(false));
            for i in 0..2 {
                let (fds2, chans2, nc, stale, done, lp2) = (
                    fds.clone(),
                    chans.clone(),
                    newcomer.clone(),
                    stale_hits.clone(),
                    first_done.clone(),
                    lp.clone(),
                );
                let cb = ChannelCallbacks::new().on_read(move |_| {
                    if done.replace(true) {
                        stale.set(stale.get() + 1); // the removed channel was called
                        return;
                    }
                    let other = 1 - i;
                    let old_fd = fds2.borrow()[other].as_ref().unwrap().as_raw_fd();
                    chans2.borrow_mut()[other].take(); // drop = remove
                    fds2.borrow_mut()[other].take(); // close
                    let fresh = eventfd();
                    assert_eq!(
                        fresh.as_raw_fd(),
                        old_fd,
                        "the kernel should reuse the lowest fd"
                    );
                    let s2 = stale.clone();
                    let ch = lp2
                        .register(
                            &fresh,
                            Rc::new(
                                ChannelCallbacks::new().on_read(move |_| s2.set(s2.get() + 100)),
                            ),
                        )
                        .unwrap();
                    ch.enable_reading().unwrap();
                    *nc.borrow_mut() = Some((fresh, ch));
                    // Drain my own fd so I do not fire again.
                    let mut b = [0u8; 8];
                    let _ = rustix::io::read(fds2.borrow()[i].as_ref().unwrap(), &mut b);
                });
                let ch = lp
                    .register(fds.borrow()[i].as_ref().unwrap(), Rc::new(cb))
                    .unwrap();
                ch.enable_reading().unwrap();
                chans.borrow_mut()[i] = Some(ch);
            }
            for fd in fds.borrow().iter().flatten() {
                rustix::io::write(fd, &1u64.to_ne_bytes()).unwrap();
            }
            let h = lp.handle();
            lp.run_after(Duration::from_millis(40), move || h.quit());
            lp.run().unwrap();
            assert!(first_done.get());
            assert!(newcomer.borrow().is_some());
            assert_eq!(stale_hits.get(), 0, "a stale event was delivered");
            let tokens: Vec<_> = chans.borrow().iter().flatten().map(|c| c.token()).collect();
            assert_ne!(tokens[0], newcomer.borrow().as_ref().unwrap().1.token());
        });
    }
}

#[test]
fn write_interest_dispatches_to_the_write_handler() {
    for kind in POLLERS {
        with_timeout(LIMIT, move || {
            let lp = EventLoop::builder().poller(kind).build().unwrap();
            let (_r, w) = rustix::pipe::pipe().unwrap();
            let writes = Rc::new(Cell::new(0));
            let (c, lp2) = (writes.clone(), lp.clone());
            let ch = lp
                .register(
                    &w,
                    Rc::new(ChannelCallbacks::new().on_write(move || {
                        c.set(c.get() + 1);
                        lp2.quit();
                    })),
                )
                .unwrap();
            ch.set_interest(Interest::WRITABLE).unwrap();
            lp.run().unwrap();
            assert_eq!(writes.get(), 1);
            ch.remove();
            assert_eq!(lp.channel_count(), 0);
        });
    }
}

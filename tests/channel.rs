//! Channel: dispatch of readable events, interest changes, stale tokens.

mod support;
use muduo::{Channel, ChannelCallbacks, EventLoop, Interest, PollerKind};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;
use support::with_timeout;

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
    // Serial: one test checks that the kernel reuses the lowest fd number,
    // which another test opening fds at that moment would break.
    let _serial = support::serial();
    for kind in support::pollers() {
        with_timeout(LIMIT, move || {
            let lp = EventLoop::builder().poller(kind).build().unwrap();
            let efd = Rc::new(eventfd());
            let reads = Rc::new(Cell::new(0));
            let (r, fd, lp2) = (reads.clone(), efd.clone(), lp.clone());
            let cb = ChannelCallbacks::new(efd.clone())
                .on_read(move |_| {
                    let mut b = [0u8; 8];
                    rustix::io::read(&*fd, &mut b).unwrap();
                    r.set(r.get() + 1);
                    lp2.quit();
                })
                .on_write(|| panic!("write handler called without write interest"));
            let ch = lp.register(Rc::new(cb)).unwrap();
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
    let _serial = support::serial();
    for kind in support::pollers() {
        with_timeout(LIMIT, move || {
            let lp = EventLoop::builder().poller(kind).build().unwrap();
            let efd = Rc::new(eventfd());
            let reads = Rc::new(Cell::new(0));
            let r = reads.clone();
            // Never drains the fd: with level triggering it would fire forever.
            let ch = lp
                .register(Rc::new(
                    ChannelCallbacks::new(efd.clone()).on_read(move |_| r.set(r.get() + 1)),
                ))
                .unwrap();
            ch.enable_reading().unwrap();
            rustix::io::write(&*efd, &1u64.to_ne_bytes()).unwrap();
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
    let _serial = support::serial();
    for kind in support::pollers() {
        with_timeout(LIMIT, move || {
            let lp = EventLoop::builder().poller(kind).build().unwrap();
            let (r, w) = rustix::pipe::pipe().unwrap();
            let calls = Rc::new(Cell::new(0));
            let c = calls.clone();
            let ch = lp
                .register(Rc::new(
                    ChannelCallbacks::new(r).on_close(move || c.set(c.get() + 1)),
                ))
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
    let _serial = support::serial();
    for kind in support::pollers() {
        with_timeout(LIMIT, move || {
            let lp = EventLoop::builder().poller(kind).build().unwrap();
            // Two readable fds in the same poll batch. Whichever handler runs
            // first removes the other channel, closes its fd, and registers a
            // fresh, never-readable fd that reuses the number. The second
            // event of the batch must not reach the newcomer.
            let fds: Rc<RefCell<Vec<Option<Rc<OwnedFd>>>>> = Rc::new(RefCell::new(vec![
                Some(Rc::new(eventfd())),
                Some(Rc::new(eventfd())),
            ]));
            let chans: Rc<RefCell<Vec<Option<Channel>>>> = Rc::new(RefCell::new(vec![None, None]));
            let newcomer: Rc<RefCell<Option<Channel>>> = Rc::new(RefCell::new(None));
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
                let own = fds.borrow()[i].clone().unwrap();
                let cb = ChannelCallbacks::new(own).on_read(move |_| {
                    if done.replace(true) {
                        stale.set(stale.get() + 1); // the removed channel was called
                        return;
                    }
                    let other = 1 - i;
                    let old_fd = fds2.borrow()[other].as_ref().unwrap().as_raw_fd();
                    chans2.borrow_mut()[other].take(); // drop = remove (its handler goes)
                    fds2.borrow_mut()[other].take(); // the last owner: close
                    let fresh = eventfd();
                    assert_eq!(
                        fresh.as_raw_fd(),
                        old_fd,
                        "the kernel should reuse the lowest fd"
                    );
                    let s2 = stale.clone();
                    let ch = lp2
                        .register(Rc::new(
                            ChannelCallbacks::new(fresh).on_read(move |_| s2.set(s2.get() + 100)),
                        ))
                        .unwrap();
                    ch.enable_reading().unwrap();
                    *nc.borrow_mut() = Some(ch);
                    // Drain my own fd so I do not fire again.
                    let mut b = [0u8; 8];
                    let _ = rustix::io::read(&**fds2.borrow()[i].as_ref().unwrap(), &mut b);
                });
                let ch = lp.register(Rc::new(cb)).unwrap();
                ch.enable_reading().unwrap();
                chans.borrow_mut()[i] = Some(ch);
            }
            for fd in fds.borrow().iter().flatten() {
                rustix::io::write(&**fd, &1u64.to_ne_bytes()).unwrap();
            }
            let h = lp.handle();
            lp.run_after(Duration::from_millis(40), move || h.quit());
            lp.run().unwrap();
            assert!(first_done.get());
            assert!(newcomer.borrow().is_some());
            assert_eq!(stale_hits.get(), 0, "a stale event was delivered");
            let tokens: Vec<_> = chans.borrow().iter().flatten().map(|c| c.token()).collect();
            assert_ne!(tokens[0], newcomer.borrow().as_ref().unwrap().token());
            // The handlers hold the loop: remove their channels to break the
            // cycle (leak checkers run these tests too).
            chans.borrow_mut().clear();
            newcomer.borrow_mut().take();
        });
    }
}

#[test]
fn write_interest_dispatches_to_the_write_handler() {
    let _serial = support::serial();
    for kind in support::pollers() {
        with_timeout(LIMIT, move || {
            let lp = EventLoop::builder().poller(kind).build().unwrap();
            let (_r, w) = rustix::pipe::pipe().unwrap();
            let writes = Rc::new(Cell::new(0));
            let (c, lp2) = (writes.clone(), lp.clone());
            let ch = lp
                .register(Rc::new(ChannelCallbacks::new(w).on_write(move || {
                    c.set(c.get() + 1);
                    lp2.quit();
                })))
                .unwrap();
            ch.set_interest(Interest::WRITABLE).unwrap();
            lp.run().unwrap();
            assert_eq!(writes.get(), 1);
            ch.remove();
            assert_eq!(lp.channel_count(), 0);
        });
    }
}

/// An owner that lends an fd it does not own: the only way left to close a
/// registered fd behind the loop's back, and it takes `unsafe` to write.
struct Unowned(RawFd);

impl AsFd for Unowned {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: deliberately not upheld (the test closes the fd while
        // this still lends it): the user error the loop must survive.
        unsafe { BorrowedFd::borrow_raw(self.0) }
    }
}

/// A handler that closes its fd while the channel is still registered
/// (a user error, which now takes `unsafe` code) must not make the loop
/// spin, on any backend.
#[test]
fn an_fd_closed_while_registered_does_not_spin_the_loop() {
    let _serial = support::serial();
    for kind in support::pollers() {
        with_timeout(LIMIT, move || {
            let lp = EventLoop::builder().poller(kind).build().unwrap();
            let fd = Rc::new(RefCell::new(Some(eventfd())));
            let raw = fd.borrow().as_ref().unwrap().as_raw_fd();
            let reads = Rc::new(Cell::new(0));
            let (fd2, reads2) = (fd.clone(), reads.clone());
            let cb = ChannelCallbacks::new(Unowned(raw)).on_read(move |_| {
                reads2.set(reads2.get() + 1);
                fd2.borrow_mut().take(); // closed, not drained, still registered
            });
            let ch = lp.register(Rc::new(cb)).unwrap();
            ch.enable_reading().unwrap();
            rustix::io::write(fd.borrow().as_ref().unwrap(), &1u64.to_ne_bytes()).unwrap();
            let h = lp.handle();
            lp.run_after(Duration::from_millis(50), move || h.quit());
            lp.run().unwrap();
            assert_eq!(reads.get(), 1, "{kind:?}: read handler calls");
            assert!(
                lp.iteration() < 50,
                "{kind:?}: the loop spun ({} iterations in 50 ms)",
                lp.iteration()
            );
            drop(ch);
        });
    }
}

/// True while `fd` is an open fd number of this process.
fn is_open(fd: RawFd) -> bool {
    std::path::Path::new(&format!("/proc/self/fd/{fd}")).exists()
}

/// True when some epoll instance of this process watches `fd` (its
/// `/proc/self/fdinfo` lists a `tfd:` line for it).
fn epoll_watches(fd: RawFd) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        panic!("/proc/self/fd is not readable");
    };
    dir.flatten().any(|e| {
        let is_epoll =
            std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().contains("eventpoll"));
        is_epoll
            && std::fs::read_to_string(format!(
                "/proc/self/fdinfo/{}",
                e.file_name().to_string_lossy()
            ))
            .is_ok_and(|info| {
                info.lines().any(|l| {
                    l.trim_start()
                        .strip_prefix("tfd:")
                        .and_then(|rest| rest.split_whitespace().next())
                        .and_then(|n| n.parse::<RawFd>().ok())
                        == Some(fd)
                })
            })
    })
}

/// An fd owner that records, when it closes its fd, whether the loop had
/// already let go of the channel and of the fd.
struct Probe {
    fd: OwnedFd,
    lp: EventLoop,
    epoll: bool,
    /// Set on drop: (channels left in the loop, fd still in an epoll set).
    seen: Rc<Cell<Option<(usize, bool)>>>,
}

impl AsFd for Probe {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let raw = self.fd.as_raw_fd();
        let watched = self.epoll && epoll_watches(raw);
        self.seen.set(Some((self.lp.channel_count(), watched)));
    }
}

/// The handler owns the fd: it stays open while the channel is registered,
/// and closes when the channel is dropped, only after it left the poller.
#[test]
fn dropping_a_channel_closes_its_owned_fd_after_deregistering_it() {
    let _serial = support::serial();
    for kind in support::pollers() {
        with_timeout(LIMIT, move || {
            let lp = EventLoop::builder().poller(kind).build().unwrap();
            let efd = eventfd();
            let raw = efd.as_raw_fd();
            let seen = Rc::new(Cell::new(None));
            let epoll = matches!(kind, PollerKind::Epoll | PollerKind::EpollEdge);
            let probe = Probe {
                fd: efd,
                lp: lp.clone(),
                epoll,
                seen: seen.clone(),
            };
            let ch = lp.register(Rc::new(ChannelCallbacks::new(probe))).unwrap();
            assert_eq!(ch.fd(), raw);
            ch.enable_reading().unwrap();
            if epoll {
                assert!(
                    epoll_watches(raw),
                    "{kind:?}: the fd is not in the epoll set"
                );
            }
            // Run the loop once so the registration is live in a wait.
            let h = lp.handle();
            lp.queue_in_loop(move || h.quit());
            lp.run().unwrap();
            assert!(is_open(raw), "{kind:?}: the fd closed while registered");
            assert_eq!(seen.get(), None);
            drop(ch);
            assert_eq!(
                seen.get(),
                Some((0, false)),
                "{kind:?}: (channels left, fd still polled) when the fd closed"
            );
            assert!(!is_open(raw), "{kind:?}: the fd outlived its channel");
        });
    }
}

/// With a shared owner, dropping the channel leaves the fd open for the
/// other owner, which then closes it.
#[test]
fn a_shared_fd_outlives_its_channel_and_closes_with_its_last_owner() {
    let _serial = support::serial();
    for kind in support::pollers() {
        with_timeout(LIMIT, move || {
            let lp = EventLoop::builder().poller(kind).build().unwrap();
            let efd = Rc::new(eventfd());
            let raw = efd.as_raw_fd();
            let reads = Rc::new(Cell::new(0));
            let (r, reader, lp2) = (reads.clone(), efd.clone(), lp.clone());
            let ch = lp
                .register(Rc::new(ChannelCallbacks::new(efd.clone()).on_read(
                    move |_| {
                        let mut b = [0u8; 8];
                        rustix::io::read(&*reader, &mut b).unwrap();
                        r.set(r.get() + 1);
                        lp2.quit();
                    },
                )))
                .unwrap();
            ch.enable_reading().unwrap();
            rustix::io::write(&*efd, &1u64.to_ne_bytes()).unwrap();
            lp.run().unwrap();
            assert_eq!(reads.get(), 1);
            drop(ch);
            assert_eq!(lp.channel_count(), 0);
            assert_eq!(Rc::strong_count(&efd), 1, "{kind:?}: the handler was kept");
            assert!(is_open(raw));
            // Still usable, and it closes with its last owner.
            rustix::io::write(&*efd, &1u64.to_ne_bytes()).unwrap();
            drop(efd);
            assert!(!is_open(raw), "{kind:?}: the fd did not close");
        });
    }
}

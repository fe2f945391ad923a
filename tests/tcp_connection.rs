//! TcpConnection behaviour against real loopback sockets: cross-thread
//! sends, half-close, peer reset, high-water mark and read backpressure,
//! force_close / shutdown semantics, context, socket options and names.
//!
//! The socket of a connection closes when its last `Arc` is dropped (as in
//! muduo, where the fd closes with the `TcpConnection`), so tests that wait
//! for the client to see EOF keep only `Weak` references.

mod support;

use muduo::{Buffer, ConnectionState, LoopHandle, PollerKind, TcpConnectionPtr, TcpServer};
use socket2::Socket;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex, Weak};
use std::time::{Duration, Instant};
use support::with_timeout;
use support::{
    assert_silent, connect, pattern, read_n, read_to_eof, wait_closed, wait_until, Closed,
    TestServer,
};

const LIMIT: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(10);
const MIB: usize = 1 << 20;

/// Connection events seen by a server's connection callback.
#[derive(Default)]
struct Events {
    up: AtomicUsize,
    down: AtomicUsize,
}

/// Installs a connection callback that counts ups and downs and hands each
/// new connection to the returned receiver.
fn watch(s: &mut TcpServer) -> (Arc<Events>, mpsc::Receiver<TcpConnectionPtr>) {
    let ev = Arc::new(Events::default());
    let (tx, rx) = mpsc::channel();
    let e = ev.clone();
    s.set_connection_callback(move |c| {
        if c.connected() {
            e.up.fetch_add(1, Ordering::SeqCst);
            let _ = tx.send(c.clone());
        } else {
            e.down.fetch_add(1, Ordering::SeqCst);
        }
    });
    (ev, rx)
}

fn echo(s: &mut TcpServer) {
    s.set_message_callback(|c, buf, _| {
        c.send(buf.peek());
        buf.retrieve_all();
    });
}

fn next_conn(rx: &mpsc::Receiver<TcpConnectionPtr>) -> TcpConnectionPtr {
    rx.recv_timeout(WAIT).expect("no connection came up")
}

/// Returns once the loop has run everything queued before this call, twice
/// over, so that callbacks those closures deferred (write complete, high
/// water mark) have run as well.
fn sync_loop(h: &LoopHandle) {
    for _ in 0..2 {
        let (tx, rx) = mpsc::channel();
        h.queue_in_loop(move || tx.send(()).unwrap());
        rx.recv_timeout(WAIT).expect("loop did not answer");
    }
}

fn closes_cleanly(server: &TestServer, ev: &Events, downs: usize) {
    assert!(
        wait_until(WAIT, || ev.down.load(Ordering::SeqCst) == downs
            && server.server().connection_count() == 0),
        "expected {downs} disconnects and no connections, saw {} and {}",
        ev.down.load(Ordering::SeqCst),
        server.server().connection_count()
    );
}

// ---------------------------------------------------------------------------
// send from other threads while the loop is busy

const SENDERS: usize = 4;
const RECORDS: u32 = 300;

fn record(tid: u8, seq: u32) -> Vec<u8> {
    let len = (seq as usize * 37 + tid as usize * 101) % 1500 + 1;
    let mut r = Vec::with_capacity(7 + len);
    r.push(tid);
    r.extend_from_slice(&seq.to_le_bytes());
    r.extend_from_slice(&(len as u16).to_le_bytes());
    r.resize(7 + len, (tid as u32 * 31 + seq) as u8);
    r
}

fn cross_thread_sends(kind: PollerKind, threads: usize) {
    with_timeout(LIMIT, move || {
        let mut rx_slot = None;
        let server = TestServer::start(kind, threads, "xsend", |s| {
            rx_slot = Some(watch(s).1);
        });
        let rx = rx_slot.unwrap();
        let mut client = connect(server.addr());
        let conn = next_conn(&rx);
        let h = conn.loop_handle().clone();

        // Keep the loop busy: closures that sleep 50 ms each, posted while
        // the senders run, so sends pile up in the loop's queue.
        let busy = Arc::new(AtomicUsize::new(0));
        let post_busy = |busy: &Arc<AtomicUsize>| {
            let b = busy.clone();
            h.queue_in_loop(move || {
                std::thread::sleep(Duration::from_millis(50));
                b.fetch_add(1, Ordering::SeqCst);
            });
        };
        post_busy(&busy);

        let barrier = Arc::new(Barrier::new(SENDERS + 1));
        let mut senders = Vec::new();
        for tid in 0..SENDERS as u8 {
            let (conn, barrier) = (conn.clone(), barrier.clone());
            senders.push(std::thread::spawn(move || {
                barrier.wait();
                for seq in 0..RECORDS {
                    let r = record(tid, seq);
                    match seq % 3 {
                        0 => conn.send(&r),
                        1 => conn.send_vec(r),
                        _ => {
                            let mut b = Buffer::new();
                            b.append(&r);
                            conn.send_buffer(&mut b);
                            assert!(b.is_empty(), "send_buffer must consume the buffer");
                        }
                    }
                    if seq % 50 == 0 {
                        std::thread::yield_now();
                    }
                }
            }));
        }
        // One more sender whose sends run on the loop thread itself (the
        // direct-write path), interleaved with the cross-thread ones.
        let loop_tid = SENDERS as u8;
        let lc = conn.clone();
        let in_loop_sender = {
            let h = h.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                for seq in 0..RECORDS {
                    let c = lc.clone();
                    let hh = h.clone();
                    h.queue_in_loop(move || {
                        assert!(hh.is_in_loop_thread());
                        c.send(&record(loop_tid, seq));
                    });
                }
            })
        };
        for _ in 0..4 {
            post_busy(&busy);
            std::thread::sleep(Duration::from_millis(20));
        }
        let total: usize = (0..=SENDERS as u8)
            .map(|t| (0..RECORDS).map(|s| record(t, s).len()).sum::<usize>())
            .sum();
        let data = read_n(&mut client, total);
        for s in senders {
            s.join().unwrap();
        }
        in_loop_sender.join().unwrap();
        assert!(
            wait_until(WAIT, || busy.load(Ordering::SeqCst) == 5),
            "busy closures ran"
        );

        let mut next = [0u32; SENDERS + 1];
        let mut p = 0;
        while p < data.len() {
            let tid = data[p];
            let seq = u32::from_le_bytes(data[p + 1..p + 5].try_into().unwrap());
            let len = u16::from_le_bytes(data[p + 5..p + 7].try_into().unwrap()) as usize;
            assert!((tid as usize) <= SENDERS, "corrupt record header at {p}");
            assert_eq!(
                seq, next[tid as usize],
                "sender {tid}: records out of order"
            );
            let r = record(tid, seq);
            assert_eq!(
                &data[p..p + 7 + len],
                &r[..],
                "record {tid}/{seq} corrupted"
            );
            next[tid as usize] += 1;
            p += 7 + len;
        }
        assert_eq!(next, [RECORDS; SENDERS + 1], "every record arrived once");
        assert_silent(&mut client, Duration::from_millis(50));
    });
}

#[test]
fn sends_from_other_threads_while_loop_busy_arrive_in_order() {
    for kind in support::pollers() {
        cross_thread_sends(kind, 1);
    }
    cross_thread_sends(PollerKind::Epoll, 0);
}

// ---------------------------------------------------------------------------
// half-close with output pending

/// Another thread sends while the loop thread is busy inside a callback;
/// the callback then sends and shuts down on the loop thread. The other
/// thread's send was made first, so its bytes must arrive first, and the
/// FIN only after both (before the fix the loop thread's bytes overtook the
/// queued send and the shutdown dropped it).
fn loop_thread_send_waits_for_earlier_foreign_send(kind: PollerKind) {
    with_timeout(LIMIT, move || {
        let server = TestServer::start(kind, 1, "order", |s| {
            s.set_message_callback(|c, buf, _| {
                buf.retrieve_all();
                let (done_tx, done_rx) = mpsc::channel();
                let other = c.clone();
                std::thread::spawn(move || {
                    other.send(b"first;");
                    done_tx.send(()).unwrap();
                });
                // The loop thread is held here, so the other thread's send
                // is still in the loop's queue when the next line runs.
                done_rx.recv_timeout(WAIT).expect("sender thread");
                c.send(b"second;");
                c.shutdown();
            });
        });
        let mut client = connect(server.addr());
        client.write_all(b"go").unwrap();
        let back = read_to_eof(&mut client);
        assert_eq!(
            String::from_utf8_lossy(&back),
            "first;second;",
            "{kind:?}: bytes in the order the sends were made, then EOF"
        );
    });
}

#[test]
fn sends_keep_their_order_across_threads_and_shutdown_waits_for_them() {
    for kind in support::pollers() {
        loop_thread_send_waits_for_earlier_foreign_send(kind);
    }
}

/// Another thread sends, then (while the loop is held up) sends more and
/// shuts down. `shutdown` marks the connection `Disconnecting` at once, but
/// the half-close must wait for the second send, which is still queued:
/// when the first send completes first (io_uring reaps its completion
/// before it runs queued closures), a loop that trusted the state sent FIN
/// early and lost the second send.
fn shutdown_from_another_thread_waits_for_its_earlier_sends(kind: PollerKind) {
    with_timeout(LIMIT, move || {
        let mut rx_slot = None;
        let server = TestServer::start(kind, 1, "order2", |s| {
            let (_ev, rx) = watch(s);
            rx_slot = Some(rx);
        });
        let mut client = connect(server.addr());
        let conn = next_conn(rx_slot.as_ref().unwrap());
        let (held_tx, held_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        conn.send(b"first;");
        conn.loop_handle().queue_in_loop(move || {
            held_tx.send(()).unwrap();
            let _ = release_rx.recv_timeout(WAIT);
        });
        held_rx.recv_timeout(WAIT).expect("loop held");
        conn.send(b"second;");
        conn.shutdown();
        release_tx.send(()).unwrap();
        let back = read_to_eof(&mut client);
        assert_eq!(
            String::from_utf8_lossy(&back),
            "first;second;",
            "{kind:?}: every send made before shutdown arrives before EOF"
        );
    });
}

#[test]
fn shutdown_from_another_thread_sends_fin_after_its_earlier_sends() {
    for kind in support::pollers() {
        shutdown_from_another_thread_waits_for_its_earlier_sends(kind);
    }
}

fn half_close(kind: PollerKind) {
    with_timeout(LIMIT, move || {
        let n = support::more_than_kernel_buffers(8 * MIB);
        let hwm = Arc::new(AtomicUsize::new(0));
        let mut rx_slot = None;
        let h2 = hwm.clone();
        let server = TestServer::start(kind, 1, "half", |s| {
            let (_ev, rx) = watch(s);
            rx_slot = Some(rx);
            echo(s);
            s.set_high_water_mark_callback(
                move |_, _| {
                    h2.fetch_add(1, Ordering::SeqCst);
                },
                MIB,
            );
        });
        // A small fixed receive buffer: autotuning could otherwise let the
        // client's kernel buffer take the whole echo.
        let mut client = support::connect_small_rcvbuf(server.addr(), 64 * 1024);
        let conn = Arc::downgrade(&next_conn(rx_slot.as_ref().unwrap()));
        let data = pattern(kind as u64 + 11, n);
        // Write everything without reading: the echo cannot all fit in the
        // kernel buffers, so the server holds output when the FIN arrives.
        client.write_all(&data).unwrap();
        support::shutdown_write(&client);
        assert!(
            wait_until(WAIT, || conn
                .upgrade()
                .is_some_and(|c| c.state() == ConnectionState::Disconnecting)),
            "server should see the FIN while still holding output (Disconnecting)"
        );
        assert!(
            hwm.load(Ordering::SeqCst) >= 1,
            "output was queued past 1 MiB"
        );
        let back = read_to_eof(&mut client);
        assert_eq!(back.len(), n, "every echoed byte arrives before EOF");
        assert!(back == data, "echo corrupted");
        assert!(wait_until(WAIT, || server.server().connection_count() == 0));
        assert!(conn.upgrade().is_none_or(|c| c.disconnected()));
    });
}

#[test]
fn half_close_still_receives_all_pending_echo_then_eof() {
    for kind in support::pollers() {
        half_close(kind);
    }
}

// ---------------------------------------------------------------------------
// peer reset in the middle of a large write

fn peer_reset(kind: PollerKind, threads: usize) {
    with_timeout(LIMIT, move || {
        let big = Arc::new(vec![0xA5u8; 64 * MIB]);
        let first = Arc::new(AtomicBool::new(true));
        let hwm = Arc::new(AtomicUsize::new(0));
        let ev = Arc::new(Events::default());
        let (b2, f2, h2, e2) = (big.clone(), first.clone(), hwm.clone(), ev.clone());
        let server = TestServer::start(kind, threads, "reset", move |s| {
            s.set_connection_callback(move |c| {
                if c.connected() {
                    e2.up.fetch_add(1, Ordering::SeqCst);
                    if f2.swap(false, Ordering::SeqCst) {
                        c.send(&b2);
                    }
                } else {
                    e2.down.fetch_add(1, Ordering::SeqCst);
                }
            });
            echo(s);
            s.set_high_water_mark_callback(
                move |_, _| {
                    h2.fetch_add(1, Ordering::SeqCst);
                },
                MIB,
            );
        });
        let client = TcpStream::connect(server.addr()).unwrap();
        assert!(
            wait_until(WAIT, || hwm.load(Ordering::SeqCst) == 1),
            "the 64 MiB write should be queued"
        );
        let sock = Socket::from(client);
        sock.set_linger(Some(Duration::ZERO)).unwrap();
        drop(sock); // RST
        closes_cleanly(&server, &ev, 1);
        // The server still serves.
        let mut c2 = connect(server.addr());
        c2.write_all(b"still alive?").unwrap();
        assert_eq!(read_n(&mut c2, 12), b"still alive?");
        drop(c2);
        closes_cleanly(&server, &ev, 2);
        assert_eq!(ev.up.load(Ordering::SeqCst), 2);
        assert!(server.server().io_loops().iter().all(|l| l.is_alive()));
    });
}

#[test]
fn peer_reset_during_large_write_is_survived() {
    for kind in support::pollers() {
        peer_reset(kind, 0);
        peer_reset(kind, 2);
    }
}

// ---------------------------------------------------------------------------
// high-water mark: once per crossing

fn hwm_crossings(kind: PollerKind) {
    with_timeout(LIMIT, move || {
        const CHUNK: usize = 256 * 1024;
        let crossings = Arc::new(Mutex::new(Vec::<usize>::new()));
        let completes = Arc::new(AtomicUsize::new(0));
        let (c2, w2) = (crossings.clone(), completes.clone());
        let mut rx_slot = None;
        let server = TestServer::start(kind, 1, "hwm", |s| {
            rx_slot = Some(watch(s).1);
            s.set_high_water_mark_callback(move |_, queued| c2.lock().unwrap().push(queued), MIB);
            s.set_write_complete_callback(move |_| {
                w2.fetch_add(1, Ordering::SeqCst);
            });
        });
        // A fixed, small receive buffer (no autotuning) keeps what the
        // kernel can absorb well below the bursts, however fast we drain.
        let mut client = support::connect_small_rcvbuf(server.addr(), 64 * 1024);
        let conn = next_conn(rx_slot.as_ref().unwrap());
        let h = conn.loop_handle().clone();
        let mut next_chunk = 0u8;
        // Sends `chunks` chunks in one loop closure, so no write event can
        // drain the output in between: the output only grows meanwhile.
        let mut burst = |chunks: usize| -> usize {
            let first = next_chunk;
            next_chunk = next_chunk.wrapping_add(chunks as u8);
            let c = conn.clone();
            h.run_in_loop(move || {
                for i in 0..chunks {
                    c.send(&vec![first.wrapping_add(i as u8); CHUNK]);
                }
            });
            sync_loop(&h);
            chunks * CHUNK
        };
        let check = |client: &mut TcpStream, bytes: usize, first: u8| {
            let got = read_n(client, bytes);
            for (i, chunk) in got.chunks(CHUNK).enumerate() {
                let want = first.wrapping_add(i as u8);
                assert!(chunk.iter().all(|&b| b == want), "chunk {i} corrupted");
            }
        };

        // 16 MiB to a client that does not read: one crossing.
        let mut sent = burst(64);
        assert_eq!(
            crossings.lock().unwrap().len(),
            1,
            "one crossing, one callback"
        );
        // More while still above the mark: no new callback.
        sent += burst(4);
        assert_eq!(crossings.lock().unwrap().len(), 1, "still above the mark");
        // The client drains everything; the output empties.
        let before = completes.load(Ordering::SeqCst);
        check(&mut client, sent, 0);
        assert!(
            wait_until(WAIT, || completes.load(Ordering::SeqCst) > before),
            "write complete after the drain"
        );
        // A new crossing fires again, once.
        let sent2 = burst(64);
        assert_eq!(crossings.lock().unwrap().len(), 2, "second crossing");
        check(&mut client, sent2, 68);
        let seen = crossings.lock().unwrap().clone();
        assert!(
            seen.iter().all(|&q| (MIB..MIB + CHUNK).contains(&q)),
            "the callback reports the queued bytes at the crossing: {seen:?}"
        );
        assert_silent(&mut client, Duration::from_millis(50));
    });
}

#[test]
fn high_water_mark_fires_once_per_crossing() {
    for kind in support::pollers() {
        hwm_crossings(kind);
    }
}

// ---------------------------------------------------------------------------
// backpressure: stop_read above the mark, start_read on write complete

fn backpressure(kind: PollerKind) -> (usize, usize, usize, u64) {
    with_timeout(LIMIT, move || {
        const FLOOD: usize = 48 * MIB;
        let max_queued = Arc::new(AtomicUsize::new(0));
        let stops = Arc::new(AtomicUsize::new(0));
        let resumes = Arc::new(AtomicUsize::new(0));
        let server_read = Arc::new(AtomicU64::new(0));
        let (m2, s2, r2, sr) = (
            max_queued.clone(),
            stops.clone(),
            resumes.clone(),
            server_read.clone(),
        );
        let server = TestServer::start(kind, 1, "bp", |s| {
            s.set_message_callback(move |c, buf, _| {
                sr.fetch_add(buf.readable_bytes() as u64, Ordering::SeqCst);
                c.send(buf.peek());
                buf.retrieve_all();
            });
            s.set_high_water_mark_callback(
                move |c, queued| {
                    m2.fetch_max(queued, Ordering::SeqCst);
                    s2.fetch_add(1, Ordering::SeqCst);
                    c.stop_read();
                },
                MIB,
            );
            s.set_write_complete_callback(move |c| {
                if !c.is_reading() {
                    r2.fetch_add(1, Ordering::SeqCst);
                    c.start_read();
                }
            });
        });
        // A small fixed receive buffer, so the kernel cannot soak up the
        // echo for the slow reader.
        let mut client = support::connect_small_rcvbuf(server.addr(), 64 * 1024);
        let data = Arc::new(pattern(kind as u64 + 99, FLOOD));
        let mut w = client.try_clone().unwrap();
        let d2 = data.clone();
        let writer = std::thread::spawn(move || {
            w.write_all(&d2).unwrap();
            support::shutdown_write(&w);
        });
        // Read nothing until the output has crossed the mark (the kernel
        // buffers hold a few MiB at most, the flood is 48 MiB), then read
        // slowly: small reads with pauses.
        assert!(
            wait_until(WAIT, || stops.load(Ordering::SeqCst) >= 1),
            "a client that does not read makes the output cross the mark"
        );
        let mut got = 0usize;
        let mut buf = vec![0u8; 64 * 1024];
        let mut max_in_flight = 0u64;
        let mut reads = 0u64;
        loop {
            let n = client.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            assert!(buf[..n] == data[got..got + n], "echo corrupted at {got}");
            got += n;
            reads += 1;
            let in_flight = server_read.load(Ordering::SeqCst) - got as u64;
            max_in_flight = max_in_flight.max(in_flight);
            if reads % 4 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        writer.join().unwrap();
        assert_eq!(got, FLOOD, "every byte echoed");
        // Our own accounting: bytes the server has read and the client has
        // not yet received: the server's output (the mark plus one event's
        // echo) plus the kernel buffers on the way back (the server's send
        // buffer, at most net.ipv4.tcp_wmem's 4 MiB by default, and the
        // client's fixed 64 KiB). Without backpressure it would approach
        // the whole flood.
        assert!(
            max_in_flight < 16 * MIB as u64,
            "{kind:?}: {max_in_flight} bytes were in flight"
        );
        let (maxq, stops, resumes) = (
            max_queued.load(Ordering::SeqCst),
            stops.load(Ordering::SeqCst),
            resumes.load(Ordering::SeqCst),
        );
        assert!(resumes >= 1, "reading resumed after the output drained");
        (maxq, stops, resumes, max_in_flight)
    })
}

#[test]
fn stop_read_above_high_water_mark_bounds_server_memory() {
    for kind in support::pollers() {
        let (maxq, stops, resumes, in_flight) = backpressure(kind);
        println!(
            "backpressure {kind:?}: max queued at a crossing {maxq} B, {stops} stops, \
             {resumes} resumes, max echoed-but-unread {in_flight} B"
        );
        // With reading stopped at the crossing, the output never grows past
        // what crossed it: the mark plus the echo of one readable event
        // (one read with level triggering; with edge triggering the
        // library's per-event read budget of 1 MiB plus one read).
        let one_read = if kind.is_edge_triggered() {
            4 * MIB
        } else {
            MIB
        };
        assert!(
            maxq < MIB + one_read,
            "{kind:?}: server output reached {maxq} bytes"
        );
    }
}

// ---------------------------------------------------------------------------
// force_close, force_close_with_delay, shutdown

#[test]
fn force_close_drops_queued_output_and_closes() {
    for kind in support::pollers() {
        with_timeout(LIMIT, move || {
            let mut rx_slot = None;
            let mut ev_slot = None;
            let server = TestServer::start(kind, 1, "fc", |s| {
                let (ev, rx) = watch(s);
                ev_slot = Some(ev);
                rx_slot = Some(rx);
                s.set_message_callback(|c, buf, _| {
                    if buf.peek() == b"bye" {
                        c.force_close();
                        // A second call and a send after it are harmless.
                        c.force_close();
                        c.send(b"ignored");
                    }
                    buf.retrieve_all();
                });
            });
            let (ev, rx) = (ev_slot.unwrap(), rx_slot.unwrap());

            // From another thread, with far more queued than the kernel can
            // hold and nothing read. The client's receive buffer is small
            // and fixed: with autotuning a receiver's buffer can grow to
            // net.ipv4.tcp_rmem's maximum (32 MiB on some machines) and
            // take everything before the close runs.
            let total = support::more_than_kernel_buffers(16 * MIB);
            let mut client = support::connect_small_rcvbuf(server.addr(), 64 * 1024);
            let conn = next_conn(&rx);
            conn.send_vec(vec![7u8; total]);
            conn.force_close();
            assert_ne!(conn.state(), ConnectionState::Connected);
            drop(conn);
            // Read only once the close has run: what reaches the client is
            // then only what the kernel took before it.
            assert!(wait_until(WAIT, || ev.down.load(Ordering::SeqCst) == 1));
            client.set_read_timeout(Some(WAIT)).unwrap();
            let mut got = 0;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match client.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                    Err(e) => panic!("read: {e}"),
                }
            }
            assert!(
                got < total,
                "{kind:?}: queued output is dropped, got {got} of {total}"
            );
            closes_cleanly(&server, &ev, 1);

            // From the message callback.
            let mut c2 = connect(server.addr());
            drop(next_conn(&rx));
            c2.write_all(b"bye").unwrap();
            assert_eq!(
                wait_closed(&mut c2, WAIT),
                Some(Closed::Eof),
                "force_close from the message callback closes"
            );
            closes_cleanly(&server, &ev, 2);
        });
    }
}

#[test]
fn force_close_with_delay_closes_after_the_delay() {
    with_timeout(LIMIT, || {
        const DELAY: Duration = Duration::from_millis(150);
        let mut rx_slot = None;
        let mut ev_slot = None;
        let server = TestServer::start(PollerKind::Epoll, 1, "fcd", |s| {
            let (ev, rx) = watch(s);
            ev_slot = Some(ev);
            rx_slot = Some(rx);
            echo(s);
        });
        let (ev, rx) = (ev_slot.unwrap(), rx_slot.unwrap());
        let mut client = connect(server.addr());
        let conn = next_conn(&rx);
        let t0 = Instant::now();
        conn.force_close_with_delay(DELAY);
        assert!(
            conn.connected() || t0.elapsed() >= DELAY,
            "nothing happens before the delay"
        );
        let weak: Weak<_> = Arc::downgrade(&conn);
        drop(conn); // the timer holds only a weak reference
        client.write_all(b"ping").unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).expect("EOF after the delay");
        // The echo comes first unless scheduling stalled us past the delay.
        assert!(got.is_empty() || got == b"ping", "unexpected bytes {got:?}");
        assert!(t0.elapsed() >= DELAY, "closed before the delay");
        closes_cleanly(&server, &ev, 1);
        assert!(weak.upgrade().is_none(), "the connection was freed");

        // A connection that goes away before the delay: the timer finds nothing.
        let client = connect(server.addr());
        let conn = next_conn(&rx);
        conn.force_close_with_delay(Duration::from_millis(50));
        drop(conn);
        drop(client);
        closes_cleanly(&server, &ev, 2);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            ev.down.load(Ordering::SeqCst),
            2,
            "exactly one down per connection"
        );
    });
}

#[test]
fn shutdown_flushes_then_half_closes_and_keeps_reading() {
    for kind in support::pollers() {
        with_timeout(LIMIT, move || {
            let received = Arc::new(Mutex::new(Vec::<u8>::new()));
            let r2 = received.clone();
            let mut rx_slot = None;
            let mut ev_slot = None;
            let server = TestServer::start(kind, 1, "shut", |s| {
                let (ev, rx) = watch(s);
                ev_slot = Some(ev);
                rx_slot = Some(rx);
                s.set_message_callback(move |_, buf, _| {
                    r2.lock().unwrap().extend_from_slice(buf.peek());
                    buf.retrieve_all();
                });
            });
            let (ev, rx) = (ev_slot.unwrap(), rx_slot.unwrap());
            let mut client = connect(server.addr());
            let conn = next_conn(&rx);
            let data = pattern(3, 4 * MIB);
            conn.send(&data);
            conn.shutdown();
            assert_eq!(conn.state(), ConnectionState::Disconnecting);
            conn.send(b"dropped after shutdown");
            conn.shutdown(); // twice is harmless
                             // The FIN comes only after all queued output.
            let got = read_to_eof(&mut client);
            assert_eq!(got.len(), data.len());
            assert!(got == data, "output corrupted");
            // Half-closed: the server still reads what the client sends.
            client.write_all(b"after the FIN").unwrap();
            assert!(
                wait_until(WAIT, || received.lock().unwrap().as_slice()
                    == b"after the FIN"),
                "the server keeps reading after shutdown"
            );
            assert_eq!(ev.down.load(Ordering::SeqCst), 0);
            assert_eq!(conn.state(), ConnectionState::Disconnecting);
            drop(conn);
            drop(client);
            closes_cleanly(&server, &ev, 1);
        });
    }
}

// ---------------------------------------------------------------------------
// context, options, names, sends on a closed connection

#[test]
fn context_set_with_take() {
    with_timeout(LIMIT, || {
        let (tx, rx) = mpsc::channel();
        let server = TestServer::start(PollerKind::Epoll, 1, "ctx", move |s| {
            s.set_connection_callback(move |c| {
                if c.connected() {
                    c.set_context(0u64);
                    let _ = tx.send(c.clone());
                }
            });
            s.set_message_callback(|c, buf, _| {
                let n = buf.readable_bytes() as u64;
                buf.retrieve_all();
                let total = c.with_context(|t: &mut u64| {
                    *t += n;
                    *t
                });
                c.send(total.unwrap().to_string().as_bytes());
            });
        });
        let mut client = connect(server.addr());
        let conn = next_conn(&rx);
        client.write_all(b"12345").unwrap();
        assert_eq!(read_n(&mut client, 1), b"5");
        assert_eq!(conn.with_context(|t: &mut u64| *t), Some(5));
        assert_eq!(conn.with_context(|_: &mut String| ()), None, "wrong type");
        assert_eq!(conn.take_context::<String>(), None, "wrong type leaves it");
        assert_eq!(conn.take_context::<u64>(), Some(5));
        assert_eq!(conn.take_context::<u64>(), None, "taken");
        assert_eq!(conn.with_context(|t: &mut u64| *t), None);
        conn.set_context(String::from("replaced"));
        conn.set_context(String::from("again"));
        assert_eq!(conn.take_context::<String>().as_deref(), Some("again"));
    });
}

#[test]
fn names_addresses_tcp_info_and_options() {
    for kind in support::pollers() {
        with_timeout(LIMIT, move || {
            let mut rx_slot = None;
            let server = TestServer::start(kind, 2, "named", |s| {
                rx_slot = Some(watch(s).1);
                echo(s);
            });
            let rx = rx_slot.unwrap();
            let addr = server.addr();
            let mut clients = Vec::new();
            for n in 1..=3u64 {
                let client = connect(addr);
                let conn = next_conn(&rx);
                assert_eq!(conn.name(), format!("named-{addr}#{n}"));
                assert_eq!(conn.id(), n);
                assert_eq!(conn.local_addr(), addr);
                assert_eq!(conn.peer_addr(), client.local_addr().unwrap());
                assert!(conn.connected());
                assert_eq!(conn.state(), ConnectionState::Connected);
                assert!(conn.is_reading());
                assert_eq!(conn.tcp_info().unwrap().state, 1, "TCP_ESTABLISHED");
                conn.set_tcp_no_delay(true).unwrap();
                conn.set_tcp_no_delay(false).unwrap();
                conn.set_keep_alive(true).unwrap();
                assert!(server
                    .server()
                    .io_loops()
                    .iter()
                    .any(|l| l.id() == conn.loop_handle().id()));
                clients.push((client, conn));
            }
            for (client, _) in &mut clients {
                client.write_all(b"x").unwrap();
                assert_eq!(read_n(client, 1), b"x");
            }
        });
    }
}

#[test]
fn send_on_disconnected_connection_is_dropped() {
    for kind in support::pollers() {
        with_timeout(LIMIT, move || {
            let late_sends = Arc::new(AtomicUsize::new(0));
            let l2 = late_sends.clone();
            let (tx, rx) = mpsc::channel();
            let ev = Arc::new(Events::default());
            let e2 = ev.clone();
            let server = TestServer::start(kind, 1, "late", move |s| {
                s.set_connection_callback(move |c| {
                    if c.connected() {
                        e2.up.fetch_add(1, Ordering::SeqCst);
                        let _ = tx.send(c.clone());
                    } else {
                        e2.down.fetch_add(1, Ordering::SeqCst);
                        // On the loop thread, inside the disconnect callback.
                        c.send(b"too late");
                        c.shutdown();
                        c.force_close();
                        l2.fetch_add(1, Ordering::SeqCst);
                    }
                });
                echo(s);
            });
            let client = connect(server.addr());
            let conn = next_conn(&rx);
            drop(client);
            closes_cleanly(&server, &ev, 1);
            assert!(conn.disconnected());
            // From another thread, every call on a closed connection is a no-op.
            conn.send(b"x");
            conn.send_vec(vec![1, 2, 3]);
            let mut b = Buffer::new();
            b.append(b"buffered");
            conn.send_buffer(&mut b);
            conn.shutdown();
            conn.force_close();
            conn.force_close_with_delay(Duration::from_millis(1));
            conn.stop_read();
            conn.start_read();
            // ... also on the loop thread.
            let (dtx, drx) = mpsc::channel();
            let c = conn.clone();
            conn.loop_handle().run_in_loop(move || {
                c.send(b"y");
                c.shutdown();
                c.force_close();
                dtx.send(()).unwrap();
            });
            drx.recv_timeout(WAIT).unwrap();
            sync_loop(conn.loop_handle());
            std::thread::sleep(Duration::from_millis(20));
            assert_eq!(conn.state(), ConnectionState::Disconnected);
            assert_eq!(ev.down.load(Ordering::SeqCst), 1, "one disconnect only");
            assert_eq!(late_sends.load(Ordering::SeqCst), 1);
            // The server is fine.
            let mut c2 = connect(server.addr());
            drop(next_conn(&rx));
            c2.write_all(b"ok").unwrap();
            assert_eq!(read_n(&mut c2, 2), b"ok");
        });
    }
}

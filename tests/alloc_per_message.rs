//! Allocations per message in steady state, counted with a counting global
//! allocator: a message that straddles two reads must not allocate a
//! private input buffer each time (it borrows a kept spare).

mod support;
use muduo::{EventLoopThread, TcpServer};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use support::with_timeout;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const MSG: usize = 100;

/// One round: half a message, wait for the server's "partial" ack, the
/// other half, read the echo. So the server sees each message in two reads.
fn round(c: &mut TcpStream, msg: &[u8; MSG]) {
    let mut ack = [0u8; 1];
    c.write_all(&msg[..MSG / 2]).unwrap();
    c.read_exact(&mut ack).unwrap();
    assert_eq!(&ack, b"p");
    c.write_all(&msg[MSG / 2..]).unwrap();
    let mut back = [0u8; MSG];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, msg);
}

#[test]
fn a_message_split_across_reads_allocates_nothing_in_steady_state() {
    for kind in support::pollers() {
        with_timeout(Duration::from_secs(60), move || {
            let lp = EventLoopThread::start_with("alloc", kind, None).unwrap();
            let mut server =
                TcpServer::new(lp.handle(), "127.0.0.1:0".parse().unwrap(), "alloc").unwrap();
            server.set_message_callback(|conn, buf, _| {
                if buf.readable_bytes() < MSG {
                    conn.send(b"p"); // partial: keep it, ask for the rest
                } else {
                    conn.send(&buf.peek()[..MSG]);
                    buf.retrieve(MSG);
                }
            });
            server.start().unwrap();
            let mut c = TcpStream::connect(server.local_addr()).unwrap();
            c.set_nodelay(true).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let msg = [7u8; MSG];
            for _ in 0..200 {
                round(&mut c, &msg); // warm-up: pools and buffers settle
            }
            const ROUNDS: usize = 2000;
            let before = ALLOCS.load(Ordering::Relaxed);
            for _ in 0..ROUNDS {
                round(&mut c, &msg);
            }
            let allocs = ALLOCS.load(Ordering::Relaxed) - before;
            println!("{kind:?}: {allocs} allocations in {ROUNDS} split messages");
            assert!(
                allocs < ROUNDS / 20,
                "{kind:?}: {allocs} allocations for {ROUNDS} messages split across two reads"
            );
        });
    }
}

//! TcpConnection::send_file: integrity, concurrency, ordering with send,
//! early disconnect, and a file that shrinks underneath.

mod support;
use muduo::{EventLoopThread, TcpServer};
use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::time::Duration;
use support::{serial, with_timeout};

const LIMIT: Duration = Duration::from_secs(120);

fn temp_file(name: &str, len: usize) -> PathBuf {
    let path = std::env::temp_dir().join(format!("muduo-sendfile-{}-{name}", std::process::id()));
    let mut f = File::create(&path).unwrap();
    let mut block = vec![0u8; 1 << 20];
    let mut written = 0usize;
    let mut x: u32 = 0x1234_5678;
    while written < len {
        for b in block.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        let n = (len - written).min(block.len());
        f.write_all(&block[..n]).unwrap();
        written += n;
    }
    path
}

fn fnv(data: &[u8], mut h: u64) -> u64 {
    for &b in data {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    h
}

fn file_hash(path: &PathBuf, prefix: &[u8], suffix: &[u8]) -> (u64, usize) {
    let mut data = Vec::new();
    File::open(path).unwrap().read_to_end(&mut data).unwrap();
    let h = fnv(suffix, fnv(&data, fnv(prefix, 0xcbf2_9ce4_8422_2325)));
    (h, prefix.len() + data.len() + suffix.len())
}

fn read_all_hash(mut s: TcpStream) -> (u64, usize) {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut total = 0;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (h, total),
            Ok(n) => {
                h = fnv(&buf[..n], h);
                total += n;
            }
            Err(e) => panic!("read failed after {total} bytes: {e}"),
        }
    }
}

/// A server that, on connect, sends `prefix`, the whole file, `suffix`, then shuts down.
fn file_server(
    lp: &muduo::LoopHandle,
    path: PathBuf,
    prefix: &'static [u8],
    suffix: &'static [u8],
) -> TcpServer {
    let mut server = TcpServer::new(lp, "127.0.0.1:0".parse().unwrap(), "files").unwrap();
    server.set_connection_callback(move |conn| {
        if conn.connected() {
            let file = File::open(&path).unwrap();
            let len = file.metadata().unwrap().len();
            conn.send(prefix);
            conn.send_file(file, 0, len);
            conn.send(suffix);
            conn.shutdown();
        }
    });
    server.start().unwrap();
    server
}

#[test]
fn hundred_mib_arrives_byte_for_byte_with_sends_in_order() {
    for kind in support::pollers() {
        let _serial = serial();
        with_timeout(LIMIT, move || {
            let path = temp_file("100m", 100 << 20);
            let lp = EventLoopThread::start_with("sf", kind, None).unwrap();
            let server = file_server(
                lp.handle(),
                path.clone(),
                b"HEADER-BEFORE-FILE\n",
                b"\nTRAILER-AFTER-FILE",
            );
            let expected = file_hash(&path, b"HEADER-BEFORE-FILE\n", b"\nTRAILER-AFTER-FILE");
            let got = read_all_hash(TcpStream::connect(server.local_addr()).unwrap());
            assert_eq!(got, expected);
            std::fs::remove_file(path).unwrap();
        });
    }
}

#[test]
fn twenty_clients_at_once() {
    for kind in support::pollers() {
        let _serial = serial();
        with_timeout(LIMIT, move || {
            let path = temp_file("8m", 8 << 20);
            let lp = EventLoopThread::start_with("sf20", kind, None).unwrap();
            let mut server = file_server(lp.handle(), path.clone(), b"<", b">");
            server.set_thread_num(0);
            let expected = file_hash(&path, b"<", b">");
            let addr = server.local_addr();
            let clients: Vec<_> = (0..20)
                .map(|_| {
                    std::thread::spawn(move || read_all_hash(TcpStream::connect(addr).unwrap()))
                })
                .collect();
            for c in clients {
                assert_eq!(c.join().unwrap(), expected);
            }
            std::fs::remove_file(path).unwrap();
        });
    }
}

#[test]
fn send_file_from_another_thread_keeps_order() {
    support::init_logging();
    for kind in support::pollers() {
        let _serial = serial();
        with_timeout(LIMIT, move || {
            let path = temp_file("2m", 2 << 20);
            let lp = EventLoopThread::start_with("sfx", kind, None).unwrap();
            let mut server =
                TcpServer::new(lp.handle(), "127.0.0.1:0".parse().unwrap(), "x").unwrap();
            let (tx, rx) = mpsc::channel();
            server.set_connection_callback(move |conn| {
                if conn.connected() {
                    tx.send(conn.clone()).unwrap();
                }
            });
            server.start().unwrap();
            let client = TcpStream::connect(server.local_addr()).unwrap();
            let conn = rx.recv().unwrap();
            // From this (non-loop) thread: bytes, file, bytes, file, bytes.
            conn.send(b"a");
            conn.send_file(File::open(&path).unwrap(), 0, 2 << 20);
            conn.send(b"b");
            conn.send_file(Arc::new(File::open(&path).unwrap()), 10, 100);
            conn.send(b"c");
            conn.shutdown();
            let mut data = Vec::new();
            File::open(&path).unwrap().read_to_end(&mut data).unwrap();
            let mut expected = b"a".to_vec();
            expected.extend_from_slice(&data);
            expected.extend_from_slice(b"b");
            expected.extend_from_slice(&data[10..110]);
            expected.extend_from_slice(b"c");
            let mut got = Vec::new();
            let mut client = client;
            client
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            client.read_to_end(&mut got).unwrap();
            assert_eq!(got.len(), expected.len(), "{kind:?}: bytes received");
            assert!(got == expected, "{kind:?}: bytes out of order");
            std::fs::remove_file(path).unwrap();
        });
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn fd_list() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .map(|e| {
            format!(
                "{:?}->{:?}",
                e.file_name(),
                std::fs::read_link(e.path()).ok()
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn client_disconnecting_mid_file_ends_the_transfer_and_frees_the_file() {
    for kind in support::pollers() {
        let _serial = serial();
        with_timeout(LIMIT, move || {
            let path = temp_file("64m", 64 << 20);
            let lp = EventLoopThread::start_with("sfd", kind, None).unwrap();
            let mut server =
                TcpServer::new(lp.handle(), "127.0.0.1:0".parse().unwrap(), "d").unwrap();
            let (tx, rx) = mpsc::channel();
            server.set_connection_callback({
                let path = path.clone();
                move |conn| {
                    if conn.connected() {
                        conn.send_file(File::open(&path).unwrap(), 0, 64 << 20);
                    } else {
                        tx.send(()).unwrap();
                    }
                }
            });
            server.start().unwrap();
            // start() registers the acceptor (and its spare fd) on the base
            // loop asynchronously: wait for that before counting.
            let (stx, srx) = mpsc::channel();
            lp.handle().run_in_loop(move || stx.send(()).unwrap());
            srx.recv().unwrap();
            let before = open_fds();
            let before_list = fd_list();
            let mut client = TcpStream::connect(server.local_addr()).unwrap();
            let mut buf = vec![0u8; 1 << 20];
            client.read_exact(&mut buf).unwrap();
            let sock = socket2::Socket::from(client);
            sock.set_linger(Some(Duration::ZERO)).unwrap();
            drop(sock); // reset mid-file
            rx.recv_timeout(Duration::from_secs(10))
                .expect("server never saw the disconnect");
            let mut after = open_fds();
            for _ in 0..100 {
                if after <= before {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
                after = open_fds();
            }
            assert!(
                after <= before,
                "file or socket not closed: {before} -> {after}: {:?} vs {:?}",
                before_list,
                fd_list()
            );
            assert_eq!(server.connection_count(), 0);
            std::fs::remove_file(path).unwrap();
        });
    }
}

#[test]
fn a_file_shorter_than_promised_closes_instead_of_hanging() {
    for kind in support::pollers() {
        let _serial = serial();
        with_timeout(LIMIT, move || {
            let path = temp_file("short", 4 << 20);
            let lp = EventLoopThread::start_with("sfs", kind, None).unwrap();
            let mut server =
                TcpServer::new(lp.handle(), "127.0.0.1:0".parse().unwrap(), "short").unwrap();
            let p = path.clone();
            server.set_connection_callback(move |conn| {
                if conn.connected() {
                    // Promise 16 MiB of a 4 MiB file: the transfer must end, not hang.
                    conn.send_file(File::open(&p).unwrap(), 0, 16 << 20);
                }
            });
            server.start().unwrap();
            let (_, total) = read_all_hash(TcpStream::connect(server.local_addr()).unwrap());
            assert_eq!(total, 4 << 20);
            std::fs::remove_file(path).unwrap();
        });
    }
}

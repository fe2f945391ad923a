//! `LengthHeaderCodec`: property tests of the incremental decoder (random
//! messages, random splits across reads, many messages per read, lengths
//! over the limit), plus a loopback server that must close a connection
//! announcing a message over the limit.

mod support;

use muduo::codec::{FrameError, LengthHeaderCodec};
use muduo::{Buffer, PollerKind};
use proptest::prelude::*;
use std::io::Write;
use std::sync::mpsc;
use std::time::Duration;
use support::with_timeout;
use support::{connect, wait_closed, TestServer};

/// The stream a peer would write: every message framed, back to back.
fn wire(codec: &LengthHeaderCodec, msgs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Buffer::new();
    for m in msgs {
        codec.encode_into(m, &mut out).unwrap();
    }
    out.retrieve_all_as_vec()
}

/// Cuts `data` at the given points (taken modulo its length, sorted).
fn split(data: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = cuts
        .iter()
        .map(|c| if data.is_empty() { 0 } else { c % data.len() })
        .collect();
    at.sort_unstable();
    at.dedup();
    let mut chunks = Vec::new();
    let mut prev = 0;
    for a in at.into_iter().chain([data.len()]) {
        chunks.push(data[prev..a].to_vec());
        prev = a;
    }
    chunks
}

/// Feeds the chunks one "read" at a time and decodes after each, as the
/// message callback does; returns the messages and the first error.
fn feed(
    codec: &LengthHeaderCodec,
    chunks: &[Vec<u8>],
) -> (Vec<Vec<u8>>, Option<FrameError>, Buffer) {
    let mut buf = Buffer::new();
    let mut got = Vec::new();
    for c in chunks {
        buf.append(c);
        if let Err(e) = codec.decode(&mut buf, |m| got.push(m.to_vec())) {
            return (got, Some(e), buf);
        }
    }
    (got, None, buf)
}

fn messages() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..30)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the split, the decoder yields exactly the messages sent, in
    /// order, and leaves nothing behind.
    #[test]
    fn random_splits_decode_every_message(
        msgs in messages(),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let codec = LengthHeaderCodec::new();
        let (got, err, rest) = feed(&codec, &split(&wire(&codec, &msgs), &cuts));
        prop_assert_eq!(err, None);
        prop_assert_eq!(got, msgs);
        prop_assert!(rest.is_empty());
    }

    /// One read holding many messages and the start of the next: all whole
    /// ones come out, the partial one stays until its last byte arrives.
    #[test]
    fn many_messages_per_read(msgs in messages(), last in prop::collection::vec(any::<u8>(), 0..300), keep in any::<usize>()) {
        let codec = LengthHeaderCodec::new();
        let tail = wire(&codec, std::slice::from_ref(&last));
        let keep = keep % tail.len(); // strictly fewer bytes than the whole frame
        let mut first = wire(&codec, &msgs);
        first.extend_from_slice(&tail[..keep]);
        let mut buf = Buffer::new();
        buf.append(&first);
        let mut got = Vec::new();
        codec.decode(&mut buf, |m| got.push(m.to_vec())).unwrap();
        prop_assert_eq!(&got, &msgs);
        prop_assert_eq!(buf.peek(), &tail[..keep]);
        buf.append(&tail[keep..]);
        got.clear();
        codec.decode(&mut buf, |m| got.push(m.to_vec())).unwrap();
        prop_assert_eq!(got, vec![last]);
        prop_assert!(buf.is_empty());
    }

    /// A header over the limit is an error as soon as its 4 bytes are in,
    /// after the messages before it were delivered, however the bytes are
    /// split; a message of exactly the limit is fine.
    #[test]
    fn over_limit_lengths_are_refused(
        max in 0usize..2000,
        msgs in messages(),
        excess in 1u64..=u32::MAX as u64,
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let codec = LengthHeaderCodec::with_max_len(max);
        let msgs: Vec<Vec<u8>> = msgs.into_iter().map(|mut m| { m.truncate(max); m }).collect();
        let bad = (max as u64 + excess).min(u32::MAX as u64);
        prop_assume!(bad > max as u64);
        let mut data = wire(&codec, &msgs);
        data.extend_from_slice(&(bad as u32).to_be_bytes());
        data.extend_from_slice(b"junk after the bad header");
        let (got, err, _) = feed(&codec, &split(&data, &cuts));
        prop_assert_eq!(got, msgs);
        prop_assert_eq!(err, Some(FrameError::TooLong { len: bad, max }));

        let exact = vec![7u8; max];
        let (got, err, _) = feed(&codec, &[wire(&codec, std::slice::from_ref(&exact))]);
        prop_assert_eq!(err, None);
        prop_assert_eq!(got, vec![exact]);
    }

    /// encode and encode_into agree, and the header is the big-endian length.
    #[test]
    fn encode_frames_with_a_network_order_header(msg in prop::collection::vec(any::<u8>(), 0..5000)) {
        let codec = LengthHeaderCodec::new();
        let frame = codec.encode(&msg).unwrap();
        prop_assert_eq!(&frame.peek()[..4], &(msg.len() as u32).to_be_bytes()[..]);
        prop_assert_eq!(&frame.peek()[4..], &msg[..]);
        prop_assert_eq!(frame.peek(), &wire(&codec, &[msg])[..]);
    }
}

/// On a real connection: messages before a bad header are delivered, then
/// the server closes the connection.
#[test]
fn server_closes_a_connection_that_announces_an_over_limit_message() {
    with_timeout(Duration::from_secs(60), || {
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let tx = std::sync::Mutex::new(tx);
        let codec = LengthHeaderCodec::with_max_len(100);
        let server = TestServer::start(PollerKind::Epoll, 1, "codec", move |s| {
            s.set_message_callback(move |conn, buf, _| {
                codec.on_message(conn, buf, |_, msg| {
                    let _ = tx.lock().unwrap().send(msg.to_vec());
                });
            });
        });
        let mut c = connect(server.addr());
        let mut data = wire(&codec, &[b"ok".to_vec()]);
        data.extend_from_slice(&101u32.to_be_bytes());
        c.write_all(&data).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(20)).unwrap(), b"ok");
        assert!(
            wait_closed(&mut c, Duration::from_secs(20)).is_some(),
            "the server kept a connection that sent an over-limit header"
        );
        assert!(
            rx.try_recv().is_err(),
            "nothing is decoded after the bad header"
        );
    });
}

/// `send` from the loop thread and from another thread both arrive framed.
#[test]
fn send_frames_from_any_thread() {
    with_timeout(Duration::from_secs(60), || {
        let codec = LengthHeaderCodec::new();
        let (tx, rx) = mpsc::channel::<muduo::TcpConnectionPtr>();
        let tx = std::sync::Mutex::new(tx);
        let server = TestServer::start(PollerKind::Epoll, 1, "codec-send", move |s| {
            s.set_connection_callback(move |conn| {
                if conn.connected() {
                    codec.send(conn, b"from the loop").unwrap();
                    let _ = tx.lock().unwrap().send(conn.clone());
                }
            });
        });
        let mut c = connect(server.addr());
        let conn = rx.recv_timeout(Duration::from_secs(20)).unwrap();
        codec.send(&conn, b"from another thread").unwrap();
        let want = wire(
            &codec,
            &[b"from the loop".to_vec(), b"from another thread".to_vec()],
        );
        assert_eq!(support::read_n(&mut c, want.len()), want);
    });
}

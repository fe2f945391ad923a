//! Runs the real `examples/hub` (and `examples/hub_client`) and checks the
//! pub/sub rules: subscribers get their topics only, in order; a new
//! subscriber gets the last content; unsub stops delivery; a bad command
//! gets an error line and the connection closed.
//!
//! Build the examples first (`cargo build --examples`, same profile).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::example::{example_path, Example};
use support::with_timeout;
use support::{connect, wait_closed};

const LIMIT: Duration = Duration::from_secs(60);
/// A topic every test client subscribes to last: once its content comes
/// back, the hub has applied the commands sent before it.
const SYNC: &str = "__sync";

fn hub() -> Example {
    Example::start("hub", &["--addr", "127.0.0.1:0", "--threads", "2"])
}

/// Reads one `pub TOPIC\r\nCONTENT\r\n` message; returns (topic, content).
fn recv(s: &mut BufReader<TcpStream>) -> (String, String) {
    let mut line = String::new();
    s.read_line(&mut line).expect("read a command line");
    let topic = line
        .strip_prefix("pub ")
        .and_then(|l| l.strip_suffix("\r\n"))
        .unwrap_or_else(|| panic!("expected `pub TOPIC`, got {line:?}"))
        .to_string();
    let mut content = String::new();
    s.read_line(&mut content).expect("read the content line");
    (topic, content.trim_end_matches("\r\n").to_string())
}

struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Client {
    fn new(addr: SocketAddr) -> Client {
        let w = connect(addr);
        Client {
            r: BufReader::new(w.try_clone().unwrap()),
            w,
        }
    }

    fn send(&mut self, s: &str) {
        self.w.write_all(s.as_bytes()).unwrap();
    }

    /// Sends `cmds`, then re-subscribes to SYNC and waits for its content:
    /// the hub has then applied `cmds`.
    fn apply(&mut self, cmds: &str) {
        self.send(&format!("{cmds}unsub {SYNC}\r\nsub {SYNC}\r\n"));
        loop {
            let (topic, _) = recv(&mut self.r);
            if topic == SYNC {
                return;
            }
        }
    }
}

/// Gives the SYNC topic a content (published and read back on one connection).
fn prime(addr: SocketAddr) -> Client {
    let mut c = Client::new(addr);
    c.send(&format!("pub {SYNC}\r\nready\r\nsub {SYNC}\r\n"));
    assert_eq!(recv(&mut c.r), (SYNC.to_string(), "ready".to_string()));
    c
}

#[test]
fn subscribers_get_their_topics_only_and_unsub_stops_them() {
    let hub = hub();
    let addr = hub.addr;
    with_timeout(LIMIT, move || {
        let mut publisher = prime(addr);
        let mut news = Client::new(addr);
        news.apply("sub news\r\n");
        let mut sport = Client::new(addr);
        sport.apply("sub sport\r\nsub news\r\nunsub news\r\n");

        publisher.send("pub sport\r\ngoal\r\npub news\r\nrain\r\npub weather\r\nsun\r\n");
        publisher.send(&format!("pub {SYNC}\r\nmark1\r\n"));
        // In order, and nothing from topics a client is not subscribed to.
        assert_eq!(recv(&mut news.r), ("news".into(), "rain".into()));
        assert_eq!(recv(&mut news.r), (SYNC.into(), "mark1".into()));
        assert_eq!(recv(&mut sport.r), ("sport".into(), "goal".into()));
        assert_eq!(recv(&mut sport.r), (SYNC.into(), "mark1".into()));

        news.apply("unsub news\r\n");
        publisher.send(&format!("pub news\r\nfog\r\npub {SYNC}\r\nmark2\r\n"));
        assert_eq!(
            recv(&mut news.r),
            (SYNC.into(), "mark2".into()),
            "news after unsub"
        );
        assert_eq!(recv(&mut sport.r), (SYNC.into(), "mark2".into()));

        // A late subscriber first gets the last content.
        let mut late = Client::new(addr);
        late.send("sub news\r\n");
        assert_eq!(recv(&mut late.r), ("news".into(), "fog".into()));
    });
}

#[test]
fn bad_commands_get_an_error_and_are_closed() {
    let hub = hub();
    let addr = hub.addr;
    with_timeout(LIMIT, move || {
        for bad in ["hello\r\n", "frob news\r\n", "sub \r\n"] {
            let mut s = connect(addr);
            s.write_all(bad.as_bytes()).unwrap();
            let mut reply = String::new();
            s.read_to_string(&mut reply)
                .expect("read until the hub closes");
            assert!(reply.starts_with("error "), "{bad:?} got {reply:?}");
        }
        // A line that never ends is refused once over the limit.
        let mut s = connect(addr);
        let _ = s.write_all(&vec![b'x'; 70 * 1024]);
        assert!(wait_closed(&mut s, Duration::from_secs(20)).is_some());
        // The hub still serves others.
        prime(addr);
    });
}

#[test]
fn hub_client_subscribes_and_publishes() {
    let hub = hub();
    let addr = hub.addr;
    with_timeout(LIMIT, move || {
        let mut publisher = prime(addr);
        publisher.apply("pub news\r\nfirst\r\n");
        let mut sub = Command::new(example_path("hub_client"))
            .args(["--addr", &addr.to_string(), "--sub", "news,other"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn hub_client --sub");
        let mut out = BufReader::new(sub.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line, "news: first\n", "the last content on subscribe");

        let status = Command::new(example_path("hub_client"))
            .args([
                "--addr",
                &addr.to_string(),
                "--pub",
                "news",
                "--message",
                "second",
            ])
            .stderr(Stdio::null())
            .status()
            .expect("run hub_client --pub");
        assert!(status.success(), "hub_client --pub exited with {status}");
        line.clear();
        out.read_line(&mut line).unwrap();
        assert_eq!(line, "news: second\n");
        let _ = sub.kill();
        let _ = sub.wait();
    });
}

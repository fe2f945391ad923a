//! Unit tests of the echo example's HTTP framing (examples/common/http_framing.rs).

#[path = "../examples/common/http_framing.rs"]
mod http_framing;

use http_framing::{header_end, wants_close};

#[test]
fn close_rules() {
    assert!(!wants_close(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert!(wants_close(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
    assert!(wants_close(b"GET / HTTP/1.0\r\n\r\n"));
    assert!(!wants_close(
        b"GET / HTTP/1.0\r\nconnection: Keep-Alive\r\n\r\n"
    ));
    assert!(wants_close(
        b"GET / HTTP/1.1\r\nConnection: upgrade, close\r\n\r\n"
    ));
}

#[test]
fn finds_the_blank_line_wherever_it_is() {
    assert_eq!(header_end(b"GET / HTTP/1.1\r\n\r\n"), Some(18));
    assert_eq!(
        header_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET"),
        Some(27)
    );
    assert_eq!(header_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r"), None);
    assert_eq!(header_end(b"\r\n\r\n"), Some(4));
    assert_eq!(header_end(b"a\r\r\n\r\n"), Some(6));
    assert_eq!(header_end(b"ab\n\r\n\r\n"), Some(7));
    assert_eq!(header_end(b"\r\n\r"), None);
    // Every split of every prefix agrees with a naive search.
    let req = b"GET / HTTP/1.1\r\nA: b\r\n\r\n\r\r\n\n\r\n\r\n";
    for end in 0..=req.len() {
        let d = &req[..end];
        let naive = d.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
        assert_eq!(header_end(d), naive, "{d:?}");
    }
}

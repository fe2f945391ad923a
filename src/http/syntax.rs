//! Character classes of the HTTP grammar (RFC 9110 §5.5, §5.6.2; RFC 3986
//! §3.2 for the authority), shared by the parser and the serializer.

/// `tchar` (RFC 9110 §5.6.2): the bytes of a method or a header name; the
/// same set `httparse` accepts.
pub(crate) fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9'
        | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+'
        | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~')
}

/// A non-empty `token`.
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// Bytes `httparse` accepts in a request-target.
pub(crate) fn is_target_byte(b: u8) -> bool {
    matches!(b, 0x21..=0x7e | 0x80..=0xff)
}

/// Bytes allowed in a field value (and chunk extension): HTAB, SP, VCHAR, obs-text.
pub(crate) fn is_value_byte(b: u8) -> bool {
    matches!(b, b'\t' | 0x20..=0x7e | 0x80..=0xff)
}

/// A field value, reason phrase or similar: no control characters but HTAB.
pub(crate) fn is_field_text(s: &[u8]) -> bool {
    s.iter().all(|&b| is_value_byte(b))
}

/// `authority` without userinfo, as the `Host` field and the absolute-form
/// request-target carry it (RFC 9110 §7.2, RFC 3986 §3.2.2-3.2.3):
/// `uri-host [ ":" port ]` where `uri-host` is an IP-literal in brackets, or
/// a reg-name / IPv4 address made of unreserved characters, percent-encoded
/// octets and sub-delims, and `port` is digits. An empty value is valid
/// (RFC 9112 §3.2: the field is sent empty when the target URI has no
/// authority).
pub(crate) fn is_valid_authority(v: &[u8]) -> bool {
    let (host, port) = if v.first() == Some(&b'[') {
        let Some(close) = v.iter().position(|&b| b == b']') else {
            return false;
        };
        let inner = &v[1..close];
        let literal_ok = !inner.is_empty()
            && inner.iter().all(|&b| {
                b.is_ascii_hexdigit() || b == b':' || b == b'.' || b == b'v' || b == b'V'
            });
        if !literal_ok {
            return false;
        }
        (&v[..0], &v[close + 1..])
    } else {
        match v.iter().position(|&b| b == b':') {
            Some(i) => (&v[..i], &v[i..]),
            None => (v, &v[v.len()..]),
        }
    };
    let port_ok = match port {
        [] => true,
        [b':', digits @ ..] => digits.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    port_ok && is_reg_name(host)
}

/// `reg-name` (which also covers IPv4 addresses): unreserved / pct-encoded /
/// sub-delims.
fn is_reg_name(s: &[u8]) -> bool {
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                let hex = |j: usize| s.get(j).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(i + 1) && hex(i + 2)) {
                    return false;
                }
                i += 3;
                continue;
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {}
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' => {}
            _ => return false,
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        for ok in [
            &b""[..],
            b"example.com",
            b"example.com:8080",
            b"127.0.0.1",
            b"127.0.0.1:80",
            b"[::1]",
            b"[::1]:8000",
            b"a%20b",
            b"x:",
            b"sub-delims!$&'()*+,;=",
        ] {
            assert!(is_valid_authority(ok), "{:?}", String::from_utf8_lossy(ok));
        }
        for bad in [
            &b"exa mple.com"[..],
            b"a/b",
            b"user@host",
            b"host:80x",
            b"host:80:90",
            b"[::1",
            b"[]",
            b"[::g]",
            b"a%2",
            b"a%zz",
            b"h\"q",
            b"\x7f",
        ] {
            assert!(
                !is_valid_authority(bad),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}

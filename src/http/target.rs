//! Request-target forms and the `Host` rules (RFC 9112 §3.2-3.3).
//!
//! * origin-form `/path?query`: the usual form.
//! * absolute-form `http://authority/path?query`: a server MUST accept it
//!   (§3.2.2); the handler sees the path and query, and the authority
//!   replaces `Host` ([`HttpRequest::host`], `header("host")`).
//! * asterisk-form `*`: only with `OPTIONS`.
//! * authority-form `host:port`: only with `CONNECT`.
//!
//! Anything else is 400. An HTTP/1.1 request without `Host`, any request
//! with more than one `Host` field line, or with an invalid `Host` value is
//! 400 (§3.2, a MUST); HTTP/1.0 may omit it.

use super::error::HttpError;
use super::request::{HttpRequest, Method, Span, Version};
use super::syntax::is_valid_authority;

/// Checks the request-target form and the `Host` field; rewrites an
/// absolute-form target so that `path()` is the path and records its
/// authority.
pub(crate) fn resolve(req: &mut HttpRequest) -> Result<(), HttpError> {
    let (host_ok, more) = {
        let mut hosts = req.header_values("host");
        (hosts.next().map(is_valid_authority), hosts.next().is_some())
    };
    if more {
        return Err(HttpError::bad_request("more than one Host field"));
    }
    match host_ok {
        None if req.version == Version::Http11 => {
            return Err(HttpError::bad_request("HTTP/1.1 request without Host"))
        }
        Some(false) => return Err(HttpError::bad_request("invalid Host value")),
        _ => {}
    }
    let target = req.bytes_at(req.path);
    match target.first() {
        Some(b'/') => Ok(()),
        Some(b'*') if target.len() == 1 => {
            if req.method == Method::Options {
                Ok(())
            } else {
                Err(HttpError::bad_request(
                    "asterisk-form target without OPTIONS",
                ))
            }
        }
        _ if req.method == Method::Connect => Ok(()),
        _ => absolute_form(req),
    }
}

/// `scheme "://" authority [ path ]`, scheme `http` or `https`.
fn absolute_form(req: &mut HttpRequest) -> Result<(), HttpError> {
    let target = req.bytes_at(req.path);
    let Some(sep) = find(target, b"://") else {
        return Err(HttpError::bad_request("invalid request-target"));
    };
    let scheme = &target[..sep];
    if !(scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"https")) {
        return Err(HttpError::bad_request(
            "unsupported URI scheme in request-target",
        ));
    }
    let auth_start = sep + 3;
    // The path span already stops at '?'; the authority ends at the first '/'.
    let auth_len = target[auth_start..]
        .iter()
        .position(|&b| b == b'/')
        .unwrap_or(target.len() - auth_start);
    let authority = &target[auth_start..auth_start + auth_len];
    // RFC 9110 §4.2.1: an http(s) URI with an empty host is invalid; userinfo
    // is not allowed (§4.2.4) and fails the authority check ('@').
    if authority.is_empty() || authority.starts_with(b":") || !is_valid_authority(authority) {
        return Err(HttpError::bad_request(
            "invalid authority in request-target",
        ));
    }
    let base = req.path.start;
    req.authority = Some(Span {
        start: base + auth_start as u32,
        end: base + (auth_start + auth_len) as u32,
    });
    req.path.start = base + (auth_start + auth_len) as u32;
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

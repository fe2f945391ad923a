//! Validators and conditional requests for representations that have a
//! modification time and a length (RFC 9110 §8.8 and §13): a strong `ETag`
//! in nginx's form, `If-Match`, `If-Unmodified-Since`, `If-None-Match`,
//! `If-Modified-Since` and `If-Range`, evaluated in the RFC's order.

use super::date::parse_http_date;
use super::HttpRequest;

/// The outcome of the preconditions of a `GET`/`HEAD` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Precondition {
    /// Serve the representation (a `Range` still needs [`range_applies`]).
    Serve,
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// A strong validator for a file: `"<mtime secs hex>-<length hex>"` (what
/// nginx sends), so a changed file (new mtime or new length) gets a new tag.
pub(crate) fn etag(mtime_secs: u64, len: u64) -> String {
    format!("\"{mtime_secs:x}-{len:x}\"")
}

/// Evaluates the preconditions in the order of RFC 9110 §13.2.2.
/// `mtime_secs` is the file's modification time; `tag` its [`etag`].
pub(crate) fn evaluate(req: &HttpRequest, tag: &str, mtime_secs: Option<u64>) -> Precondition {
    // 1. If-Match (strong comparison), else 2. If-Unmodified-Since.
    if let Some(v) = req.header("if-match") {
        if !list_matches(v, tag, true) {
            return Precondition::Failed;
        }
    } else if let (Some(since), Some(m)) = (
        req.header("if-unmodified-since").and_then(parse_http_date),
        mtime_secs,
    ) {
        if m > since {
            return Precondition::Failed;
        }
    }
    // 3. If-None-Match (weak comparison), else 4. If-Modified-Since.
    if let Some(v) = req.header("if-none-match") {
        if list_matches(v, tag, false) {
            return Precondition::NotModified;
        }
    } else if let (Some(since), Some(m)) = (
        req.header("if-modified-since").and_then(parse_http_date),
        mtime_secs,
    ) {
        if m <= since {
            return Precondition::NotModified;
        }
    }
    Precondition::Serve
}

/// Step 5 of the evaluation, `If-Range`: the `Range` header applies only
/// when the validator in `If-Range` still matches: an entity-tag by strong
/// comparison, or a date equal to the modification time (RFC 9110 §13.1.5).
pub(crate) fn range_applies(req: &HttpRequest, tag: &str, mtime_secs: Option<u64>) -> bool {
    match req.header("if-range").map(str::trim) {
        None => true,
        Some(v) if v.starts_with('"') || v.starts_with("W/") => v == tag,
        Some(v) => parse_http_date(v).is_some_and(|d| Some(d) == mtime_secs),
    }
}

/// Whether a field value (`*` or a list of entity-tags) matches `tag`.
/// Weak comparison ignores the `W/` prefix; strong comparison never matches
/// a weak tag.
fn list_matches(value: &str, tag: &str, strong: bool) -> bool {
    let value = value.trim();
    if value == "*" {
        return true;
    }
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return false;
        }
        let weak = rest.starts_with("W/");
        if weak {
            rest = &rest[2..];
        }
        let Some(body) = rest.strip_prefix('"') else {
            return false; // not an entity-tag: the list is malformed
        };
        let Some(end) = body.find('"') else {
            return false;
        };
        let candidate = &rest[..end + 2];
        if candidate == tag && !(strong && weak) {
            return true;
        }
        rest = &body[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_tag_lists() {
        let t = "\"5f-10\"";
        assert!(list_matches("*", t, true));
        assert!(list_matches("\"5f-10\"", t, true));
        assert!(list_matches("\"a\", \"5f-10\"", t, true));
        assert!(list_matches("\"a,b\",\"5f-10\"", t, false));
        assert!(list_matches("W/\"5f-10\"", t, false));
        assert!(!list_matches("W/\"5f-10\"", t, true));
        assert!(!list_matches("\"5f-11\"", t, false));
        assert!(!list_matches("5f-10", t, false));
        assert!(!list_matches("\"unterminated", t, false));
        assert!(!list_matches("", t, false));
    }

    #[test]
    fn etag_form() {
        assert_eq!(etag(0x5f3e1c2a, 0x1a2b), "\"5f3e1c2a-1a2b\"");
    }
}

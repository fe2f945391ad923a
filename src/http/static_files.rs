//! `StaticFiles`: serves a directory over HTTP with `sendfile(2)`.

use super::date::{format_http_date, parse_http_date};
use super::{HttpRequest, HttpResponse, Method};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// Serves the files under a root directory at a URL prefix.
///
/// * `GET` and `HEAD`; other methods get 405.
/// * `Content-Type` from the extension, `Content-Length`, `Last-Modified`,
///   `Accept-Ranges: bytes`.
/// * `If-Modified-Since` -> 304 when the file is not newer.
/// * One `Range: bytes=a-b` (also `a-` and `-n`) -> 206 with
///   `Content-Range`; an unsatisfiable range -> 416. Several ranges are
///   answered with the whole file (allowed by RFC 9110).
/// * A directory serves its `index.html`, else 403 (no listings).
/// * The path is percent-decoded once, then any `..` segment is refused
///   (403), and the resolved file (symlinks followed) must still be inside
///   the root (else 403); missing files are 404.
///
/// The body is sent with `sendfile(2)` by [`HttpServer`](super::HttpServer)
/// and is never read into memory.
///
/// ```no_run
/// use muduo::http::{HttpServer, StaticFiles};
/// # fn main() -> std::io::Result<()> {
/// # let lp = muduo::EventLoop::new()?;
/// let files = StaticFiles::new("/var/www".as_ref(), "/static/")?;
/// let mut server = HttpServer::new(&lp, "127.0.0.1:8080".parse().unwrap(), "web")?;
/// server.set_handler(move |req, resp| {
///     if files.handles(req.path()) {
///         files.serve(req, resp);
///     } else {
///         resp.set_status(404, "Not Found");
///     }
/// });
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct StaticFiles {
    root: PathBuf,
    prefix: String,
}

impl StaticFiles {
    /// Serves `root` (which must be a directory) under the URL `prefix`
    /// (e.g. `/files/`; `/` serves everything).
    pub fn new(root: &Path, prefix: &str) -> io::Result<StaticFiles> {
        let root = root.canonicalize().map_err(|e| {
            io::Error::new(e.kind(), format!("static root {}: {e}", root.display()))
        })?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory", root.display()),
            ));
        }
        let mut prefix = prefix.to_string();
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        Ok(StaticFiles { root, prefix })
    }

    /// True when `path` is under this handler's prefix.
    pub fn handles(&self, path: &str) -> bool {
        path.starts_with(&self.prefix) || path == self.prefix.trim_end_matches('/')
    }

    /// Answers `req` into `resp` (see the type docs for the rules).
    pub fn serve(&self, req: &HttpRequest, resp: &mut HttpResponse) {
        if *req.method() != Method::Get && *req.method() != Method::Head {
            resp.set_status(405, "Method Not Allowed")
                .add_header("Allow", "GET, HEAD");
            return;
        }
        let rel = req.path().strip_prefix(self.prefix.as_str()).unwrap_or("");
        let path = match self.resolve(rel) {
            Ok(p) => p,
            Err(status) => return error(resp, status),
        };
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return error(resp, 404),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return error(resp, 403),
            Err(_) => return error(resp, 500),
        };
        let meta = match file.metadata() {
            Ok(m) if m.is_file() => m,
            Ok(_) => return error(resp, 403),
            Err(_) => return error(resp, 500),
        };
        let len = meta.len();
        let modified = meta.modified().ok();
        let modified_secs = modified
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs());
        let last_modified = modified.map(format_http_date);
        if let (Some(ims), Some(mtime)) = (
            req.header("if-modified-since").and_then(parse_http_date),
            modified_secs,
        ) {
            if req.header("if-none-match").is_none() && mtime <= ims {
                resp.set_status(304, "Not Modified");
                if let Some(lm) = &last_modified {
                    resp.add_header("Last-Modified", lm);
                }
                return;
            }
        }
        resp.set_content_type(content_type(&path));
        resp.add_header("Accept-Ranges", "bytes");
        if let Some(lm) = &last_modified {
            resp.add_header("Last-Modified", lm);
        }
        let range_applies = match req.header("if-range") {
            None => true,
            Some(v) => last_modified
                .as_ref()
                .is_some_and(|lm| v.as_bytes() == lm.as_slice()),
        };
        match req
            .header("range")
            .filter(|_| range_applies)
            .map(|r| parse_range(r, len))
        {
            Some(RangeSpec::Satisfiable(start, end)) => {
                resp.set_status(206, "Partial Content");
                resp.add_header("Content-Range", format!("bytes {start}-{end}/{len}"));
                resp.set_file_body(file, start, end - start + 1);
            }
            Some(RangeSpec::Unsatisfiable) => {
                resp.set_status(416, "Range Not Satisfiable");
                resp.add_header("Content-Range", format!("bytes */{len}"));
                resp.set_body(Vec::new());
            }
            Some(RangeSpec::Ignore) | None => {
                resp.set_file_body(file, 0, len);
            }
        }
    }

    /// Maps the part of the URL after the prefix to a file under the root,
    /// or to the status to answer with.
    fn resolve(&self, rel: &str) -> Result<PathBuf, u16> {
        let decoded = percent_decode(rel).ok_or(400u16)?;
        if decoded.contains('\0') {
            return Err(400);
        }
        let mut path = self.root.clone();
        for seg in decoded.split('/') {
            match seg {
                "" | "." => {}
                ".." => return Err(403),
                s => path.push(s),
            }
        }
        let real = match path.canonicalize() {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(404),
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return Err(404),
            Err(_) => return Err(403),
        };
        if !real.starts_with(&self.root) {
            return Err(403); // a symlink pointing out of the root
        }
        if real.is_dir() {
            let index = real.join("index.html");
            return if index.is_file() { Ok(index) } else { Err(403) };
        }
        Ok(real)
    }
}

fn error(resp: &mut HttpResponse, status: u16) {
    let mut r = HttpResponse::new(status);
    r.set_content_type("text/plain; charset=utf-8");
    let reason = r.reason().to_string();
    r.set_body(format!("{status} {reason}\n"));
    *resp = r;
}

enum RangeSpec {
    Satisfiable(u64, u64),
    Unsatisfiable,
    Ignore,
}

/// Parses a single `bytes=` range against a file of `len` bytes.
fn parse_range(header: &str, len: u64) -> RangeSpec {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeSpec::Ignore;
    };
    if spec.contains(',') {
        return RangeSpec::Ignore;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeSpec::Ignore;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| {
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse::<u64>().ok()
        } else {
            None
        }
    };
    match (a.is_empty(), b.is_empty()) {
        (true, true) => RangeSpec::Ignore,
        (true, false) => match num(b) {
            // The last n bytes.
            Some(0) => RangeSpec::Unsatisfiable,
            Some(_) if len == 0 => RangeSpec::Unsatisfiable,
            Some(n) => RangeSpec::Satisfiable(len.saturating_sub(n), len - 1),
            None => RangeSpec::Ignore,
        },
        (false, _) => {
            let Some(start) = num(a) else {
                return RangeSpec::Ignore;
            };
            let end = if b.is_empty() {
                u64::MAX
            } else {
                match num(b) {
                    Some(e) if e >= start => e,
                    _ => return RangeSpec::Ignore,
                }
            };
            if start >= len {
                RangeSpec::Unsatisfiable
            } else {
                RangeSpec::Satisfiable(start, end.min(len - 1))
            }
        }
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("html") | Some("htm") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("txt") | Some("md") | Some("rs") | Some("toml") => "text/plain; charset=utf-8",
        Some("xml") => "application/xml",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg") | Some("jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        Some("wasm") => "application/wasm",
        Some("pdf") => "application/pdf",
        Some("zip") => "application/zip",
        Some("gz") => "application/gzip",
        Some("mp4") => "video/mp4",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |h: &str| match parse_range(h, 100) {
            RangeSpec::Satisfiable(a, b) => format!("{a}-{b}"),
            RangeSpec::Unsatisfiable => "416".into(),
            RangeSpec::Ignore => "all".into(),
        };
        assert_eq!(r("bytes=0-9"), "0-9");
        assert_eq!(r("bytes=90-"), "90-99");
        assert_eq!(r("bytes=-10"), "90-99");
        assert_eq!(r("bytes=-1000"), "0-99");
        assert_eq!(r("bytes=50-1000"), "50-99");
        assert_eq!(r("bytes=100-"), "416");
        assert_eq!(r("bytes=-0"), "416");
        assert_eq!(r("bytes=5-1"), "all");
        assert_eq!(r("bytes=0-1,5-6"), "all");
        assert_eq!(r("items=0-1"), "all");
        assert_eq!(r("bytes=x-1"), "all");
    }

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("a%2e%2E/b").as_deref(), Some("a../b"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%2"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}

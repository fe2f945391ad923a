//! `StaticFiles`: serves a directory over HTTP with `sendfile(2)`.

use super::conditional::{self, Precondition};
use super::date::format_http_date;
use super::{HttpRequest, HttpResponse, Method};
use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::fs::{File, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

/// Serves the files under a root directory at a URL prefix.
///
/// * `GET` and `HEAD`; other methods get 405.
/// * `Content-Type` from the extension, `Content-Length`, `Last-Modified`,
///   `Accept-Ranges: bytes`.
/// * A strong `ETag` (`"<mtime hex>-<length hex>"`, as nginx sends);
///   `If-None-Match` (weak comparison, `*` too) and `If-Modified-Since` ->
///   304, `If-Match` and `If-Unmodified-Since` -> 412, evaluated in the order
///   of RFC 9110 §13.2.2 (`If-None-Match` overrides `If-Modified-Since`).
///   Dates in all three HTTP forms are understood (IMF-fixdate, RFC 850,
///   asctime).
/// * One `Range: bytes=a-b` (also `a-` and `-n`) -> 206 with
///   `Content-Range`; an unsatisfiable range -> 416. Several ranges are
///   answered with the whole file (allowed by RFC 9110). `If-Range` with the
///   current `ETag` (strong comparison) or `Last-Modified` date lets the
///   range apply; with anything else the whole file is sent.
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
    /// The root directory, opened once: files are opened relative to it with
    /// `openat2(RESOLVE_BENEATH)`, so the kernel refuses any escape (a `..`
    /// or a symlink out of the root) in the same call that opens the file:
    /// one syscall instead of a `realpath` walk, and no check-then-open race.
    root_fd: Arc<OwnedFd>,
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
        let root_fd = rustix::fs::open(
            &root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut prefix = prefix.to_string();
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        Ok(StaticFiles {
            root,
            root_fd: Arc::new(root_fd),
            prefix,
        })
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
        let (file, meta, is_index) = match self.open(rel) {
            Ok(found) => found,
            Err(status) => return error(resp, status),
        };
        let path = Path::new(if is_index { "index.html" } else { rel });
        let len = meta.len();
        let modified = meta.modified().ok();
        let modified_secs = modified
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs());
        let last_modified = modified.map(format_http_date);
        let tag = conditional::etag(modified_secs.unwrap_or(0), len);
        let validators = |resp: &mut HttpResponse| {
            resp.add_header("ETag", tag.as_str());
            if let Some(lm) = &last_modified {
                resp.add_header("Last-Modified", lm);
            }
        };
        match conditional::evaluate(req, &tag, modified_secs) {
            Precondition::Serve => {}
            Precondition::NotModified => {
                resp.set_status(304, "Not Modified");
                validators(resp);
                return;
            }
            Precondition::Failed => {
                resp.set_status(412, "Precondition Failed");
                resp.set_body(Vec::new());
                return;
            }
        }
        resp.set_content_type(content_type(path));
        resp.add_header("Accept-Ranges", "bytes");
        validators(resp);
        let range_applies = conditional::range_applies(req, &tag, modified_secs);
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

    /// Opens the file the part of the URL after the prefix names, or says
    /// which status to answer with.
    /// Returns the file, its metadata, and whether it is a directory's index.
    fn open(&self, rel: &str) -> Result<(File, Metadata, bool), u16> {
        let decoded = percent_decode(rel).ok_or(400u16)?;
        if decoded.contains('\0') {
            return Err(400);
        }
        let mut clean = String::with_capacity(decoded.len());
        for seg in decoded.split('/') {
            match seg {
                "" | "." => {}
                ".." => return Err(403),
                s => {
                    if !clean.is_empty() {
                        clean.push('/');
                    }
                    clean.push_str(s);
                }
            }
        }
        if clean.is_empty() {
            clean.push('.');
        }
        let file = self.open_beneath(&self.root_fd, &clean)?;
        let meta = file.metadata().map_err(|_| 500u16)?;
        if meta.is_dir() {
            let index =
                self.open_beneath(&file, "index.html")
                    .map_err(|s| if s == 404 { 403 } else { s })?;
            let meta = index.metadata().map_err(|_| 500u16)?;
            return if meta.is_file() {
                Ok((index, meta, true))
            } else {
                Err(403)
            };
        }
        if !meta.is_file() {
            return Err(403);
        }
        Ok((file, meta, false))
    }

    fn open_beneath(&self, dir: &impl AsFd, rel: &str) -> Result<File, u16> {
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
        match rustix::fs::openat2(
            dir,
            rel,
            flags,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => Ok(File::from(fd)),
            Err(Errno::NOSYS) => self.open_checked(dir, rel),
            Err(e) => Err(status_for(e)),
        }
    }

    /// For kernels without `openat2` (before 5.6): resolve with `realpath`
    /// and check the result is under the root.
    fn open_checked(&self, dir: &impl AsFd, rel: &str) -> Result<File, u16> {
        let base = std::fs::read_link(format!("/proc/self/fd/{}", dir.as_fd().as_raw_fd()))
            .map_err(|_| 500u16)?;
        let real = base
            .join(rel)
            .canonicalize()
            .map_err(|e| match e.raw_os_error() {
                Some(code) => status_for(Errno::from_raw_os_error(code)),
                None => 500,
            })?;
        if !real.starts_with(&self.root) {
            return Err(403);
        }
        File::open(&real).map_err(|e| match e.raw_os_error() {
            Some(code) => status_for(Errno::from_raw_os_error(code)),
            None => 500,
        })
    }
}

fn status_for(e: Errno) -> u16 {
    match e {
        Errno::NOENT | Errno::NOTDIR | Errno::NAMETOOLONG => 404,
        // EXDEV: the path (through `..` or a symlink) leaves the root.
        Errno::XDEV | Errno::LOOP | Errno::ACCESS | Errno::PERM => 403,
        _ => 500,
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

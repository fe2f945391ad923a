//! HttpServer against real clients: curl (GET, POST, chunked upload,
//! 100-continue, connection reuse), Python's http.client (three requests on
//! one connection), and StaticFiles checked with curl (Content-Type,
//! Range/416, HEAD, If-Modified-Since, path traversal, symlinks, index.html,
//! a 20 MiB download). curl and python3 must be installed (.ci/run does it).

mod support;
use support::http as http_util;

use http_util::{demo_handler, start_server, Client, HttpTestServer};
use muduo::http::StaticFiles;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use support::with_timeout;

const LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Tools

fn require(tool: &str) {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`{tool}` is required by tests/http_clients.rs but was not found on PATH; \
         install it (e.g. `apt-get install -y {tool}`) or run .ci/run, which installs it"
    );
}

/// Runs curl with quiet-but-show-errors, no proxy and a time limit.
fn curl(args: &[&str]) -> Output {
    require("curl");
    let out = Command::new("curl")
        .args(["-sS", "--noproxy", "*", "--max-time", "30"])
        .args(args)
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A response as curl saw it (`-i` output, interim 1xx blocks skipped).
#[derive(Debug)]
struct CurlResp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    stderr: String,
}

impl CurlResp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `curl -i ARGS`, parsed.
fn curl_i(args: &[&str]) -> CurlResp {
    let mut full = vec!["-i"];
    full.extend_from_slice(args);
    let out = curl(&full);
    let mut rest: &[u8] = &out.stdout;
    loop {
        let end = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header block in {:?}", String::from_utf8_lossy(rest)));
        let head = std::str::from_utf8(&rest[..end]).expect("UTF-8 head");
        let body = &rest[end + 4..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status: u16 = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        if (100..200).contains(&status) {
            rest = body;
            continue;
        }
        let headers = lines
            .map(|l| {
                let (n, v) = l.split_once(':').expect("header line");
                (n.to_string(), v.trim().to_string())
            })
            .collect();
        return CurlResp {
            status,
            headers,
            body: body.to_vec(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
    }
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p =
            std::env::temp_dir().join(format!("muduo-http-clients-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn url(srv: &HttpTestServer, path: &str) -> String {
    format!("http://{}{}", srv.addr, path)
}

// ---------------------------------------------------------------------------
// curl and python against the demo handler

#[test]
fn curl_get_post_and_chunked_upload() {
    with_timeout(LIMIT, || {
        let srv = start_server(|_| {});
        let tmp = TempDir::new("curl-basic");

        let r = curl_i(&[&url(&srv, "/")]);
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"Hello, World!");
        assert_eq!(r.header("content-length"), Some("13"));
        assert!(r.header("date").is_some());

        let r = curl_i(&["--data-binary", "hello world", &url(&srv, "/echo")]);
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"hello world");

        // A binary body from a file, with an explicit Expect: 100-continue.
        let data = http_util::pseudo_random_bytes(100_000, 42);
        let file = tmp.path().join("upload.bin");
        std::fs::write(&file, &data).unwrap();
        let at_file = format!("@{}", file.display());
        let r = curl_i(&[
            "-v",
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            &at_file,
            &url(&srv, "/echo"),
        ]);
        assert_eq!(r.status, 200);
        assert!(r.body == data, "Content-Length upload echoed wrongly");
        assert!(
            r.stderr.contains("< HTTP/1.1 100 Continue"),
            "curl did not see 100 Continue:\n{}",
            r.stderr
        );

        // Chunked upload.
        let r = curl_i(&[
            "-v",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &at_file,
            &url(&srv, "/echo"),
        ]);
        assert!(
            r.stderr.contains("> Transfer-Encoding: chunked"),
            "curl did not send chunked:\n{}",
            r.stderr
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), data.len());
        assert!(r.body == data, "chunked upload echoed wrongly");
    });
}

#[test]
fn curl_reuses_one_connection_for_two_urls() {
    with_timeout(LIMIT, || {
        let srv = start_server(|_| {});
        let out = curl(&[
            "-v",
            "-w",
            "%{num_connects} %{http_code} %{size_download}\n",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            &url(&srv, "/"),
            &url(&srv, "/hello"),
        ]);
        let stdout = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines,
            ["1 200 13", "0 200 14"],
            "expected one connect for two transfers"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("Re-using existing connection"),
            "curl -v did not report reuse:\n{stderr}"
        );
        // curl has exited; the server notices the close and drops the connection.
        let t = Instant::now();
        while srv.server.tcp_server().connection_count() != 0 {
            assert!(
                t.elapsed() < Duration::from_secs(15),
                "server still holds {} connections after curl exited",
                srv.server.tcp_server().connection_count()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    });
}

#[test]
fn python_http_client_three_requests_on_one_connection() {
    require("python3");
    with_timeout(LIMIT, || {
        let srv = start_server(|_| {});
        let script = r#"
import http.client, sys
host, port = sys.argv[1], int(sys.argv[2])
c = http.client.HTTPConnection(host, port, timeout=10)
ports = set()
for method, path, body in [("GET", "/", None), ("POST", "/echo", b"py \x00 body"), ("GET", "/hello", None)]:
    c.request(method, path, body=body)
    r = c.getresponse()
    data = r.read()
    ports.add(c.sock.getsockname()[1])
    print(r.status, r.reason, r.getheader("Content-Length"), repr(data))
print("connections", len(ports))
c.close()
"#;
        let out = Command::new("python3")
            .args(["-c", script, "127.0.0.1", &srv.addr.port().to_string()])
            .output()
            .expect("run python3");
        assert!(
            out.status.success(),
            "python3 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            stdout,
            "200 OK 13 b'Hello, World!'\n\
             200 OK 9 b'py \\x00 body'\n\
             200 OK 14 b'hello, world!\\n'\n\
             connections 1\n"
        );
    });
}

// ---------------------------------------------------------------------------
// Static files

/// base/secret (outside the root), base/root/{hello.txt, page.html,
/// style.css, img.PNG, data.bin, sub/index.html, emptydir/, link-out ->
/// ../secret, link-in -> hello.txt}.
struct Site {
    dir: TempDir,
    root: PathBuf,
}

const HELLO: &[u8] = b"hello static world\n";

fn make_site(name: &str) -> Site {
    let dir = TempDir::new(name);
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::create_dir_all(root.join("emptydir")).unwrap();
    std::fs::write(dir.path().join("secret"), b"TOP SECRET\n").unwrap();
    std::fs::write(root.join("hello.txt"), HELLO).unwrap();
    std::fs::write(root.join("page.html"), b"<p>page</p>").unwrap();
    std::fs::write(root.join("style.css"), b"p{}").unwrap();
    std::fs::write(root.join("img.PNG"), b"\x89PNG").unwrap();
    std::fs::write(root.join("data.bin"), [0u8, 1, 2, 3]).unwrap();
    std::fs::write(root.join("sub/index.html"), b"<h1>index</h1>").unwrap();
    std::os::unix::fs::symlink("../secret", root.join("link-out")).unwrap();
    std::os::unix::fs::symlink("hello.txt", root.join("link-in")).unwrap();
    Site { dir, root }
}

fn static_server(root: &Path) -> HttpTestServer {
    let files = StaticFiles::new(root, "/files/").expect("static root");
    start_server(move |s| {
        s.set_handler(move |req, resp| {
            if files.handles(req.path()) {
                files.serve(req, resp);
            } else {
                demo_handler(req, resp);
            }
        })
    })
}

#[test]
fn static_get_content_types_ranges_head_and_conditional() {
    require("curl");
    with_timeout(LIMIT, || {
        let site = make_site("static-basic");
        let srv = static_server(&site.root);
        let len = HELLO.len().to_string();

        // Full GET.
        let r = curl_i(&[&url(&srv, "/files/hello.txt")]);
        assert_eq!(r.status, 200);
        assert_eq!(r.body, HELLO);
        assert_eq!(r.header("content-length"), Some(len.as_str()));
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(r.header("accept-ranges"), Some("bytes"));
        let last_modified = r
            .header("last-modified")
            .expect("Last-Modified")
            .to_string();

        // Content-Type by extension (case-insensitive).
        for (path, ct, body) in [
            (
                "/files/page.html",
                "text/html; charset=utf-8",
                &b"<p>page</p>"[..],
            ),
            ("/files/style.css", "text/css; charset=utf-8", b"p{}"),
            ("/files/img.PNG", "image/png", b"\x89PNG"),
            ("/files/data.bin", "application/octet-stream", &[0, 1, 2, 3]),
        ] {
            let r = curl_i(&[&url(&srv, path)]);
            assert_eq!(r.status, 200, "{path}");
            assert_eq!(r.header("content-type"), Some(ct), "{path}");
            assert_eq!(r.body, body, "{path}");
        }

        // Ranges.
        let r = curl_i(&["-r", "0-4", &url(&srv, "/files/hello.txt")]);
        assert_eq!(r.status, 206);
        assert_eq!(r.body, b"hello");
        assert_eq!(r.header("content-length"), Some("5"));
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes 0-4/{len}").as_str())
        );
        let r = curl_i(&["-r", "-6", &url(&srv, "/files/hello.txt")]);
        assert_eq!(r.status, 206);
        assert_eq!(r.body, b"world\n");
        let r = curl_i(&["-r", "6-", &url(&srv, "/files/hello.txt")]);
        assert_eq!((r.status, r.body.as_slice()), (206, &b"static world\n"[..]));
        let r = curl_i(&["-r", "1000-2000", &url(&srv, "/files/hello.txt")]);
        assert_eq!(r.status, 416);
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes */{len}").as_str())
        );
        assert!(r.body.is_empty());

        // HEAD: headers with the real length, no body.
        let r = curl_i(&["-I", &url(&srv, "/files/hello.txt")]);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-length"), Some(len.as_str()));
        assert!(r.body.is_empty());
        // Raw check that no body bytes follow a HEAD response: a pipelined
        // GET must come right after it.
        let mut c = Client::connect(srv.addr);
        c.send(b"HEAD /files/hello.txt HTTP/1.1\r\nHost: h\r\n\r\nGET /files/page.html HTTP/1.1\r\nHost: h\r\n\r\n");
        let head = c.head_response();
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-length"), Some(len.as_str()));
        let next = c.response();
        assert_eq!(next.body, b"<p>page</p>", "bytes after the HEAD response");

        // If-Modified-Since.
        let ims = format!("If-Modified-Since: {last_modified}");
        let r = curl_i(&["-H", &ims, &url(&srv, "/files/hello.txt")]);
        assert_eq!(r.status, 304);
        assert!(r.body.is_empty());
        assert_eq!(r.header("content-length"), None);
        let r = curl_i(&[
            "-H",
            "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT",
            &url(&srv, "/files/hello.txt"),
        ]);
        assert_eq!((r.status, r.body.as_slice()), (200, HELLO));

        // Other methods.
        let r = curl_i(&["--data-binary", "x", &url(&srv, "/files/hello.txt")]);
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("GET, HEAD"));

        // Directories, symlinks, missing files.
        let r = curl_i(&[&url(&srv, "/files/sub/")]);
        assert_eq!((r.status, r.body.as_slice()), (200, &b"<h1>index</h1>"[..]));
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        let r = curl_i(&[&url(&srv, "/files/sub")]);
        assert_eq!((r.status, r.body.as_slice()), (200, &b"<h1>index</h1>"[..]));
        assert_eq!(curl_i(&[&url(&srv, "/files/emptydir/")]).status, 403);
        assert_eq!(curl_i(&[&url(&srv, "/files/missing.txt")]).status, 404);
        assert_eq!(curl_i(&[&url(&srv, "/files/sub/missing")]).status, 404);
        assert_eq!(curl_i(&[&url(&srv, "/files/hello.txt/x")]).status, 404);
        let r = curl_i(&[&url(&srv, "/files/link-in")]);
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, HELLO),
            "symlink inside the root"
        );
        drop(site.dir);
    });
}

#[test]
fn static_refuses_traversal() {
    require("curl");
    with_timeout(LIMIT, || {
        let site = make_site("static-traversal");
        let srv = static_server(&site.root);
        let get = |path: &str| curl_i(&["--path-as-is", &url(&srv, path)]);
        let not_secret = |r: &CurlResp, path: &str| {
            let body = String::from_utf8_lossy(&r.body);
            assert!(
                !body.contains("TOP SECRET") && !body.contains("[package]"),
                "{path} leaked {body:?}"
            );
        };

        let cases: &[(&str, &[u16])] = &[
            ("/files/../Cargo.toml", &[403]),
            ("/files/../secret", &[403]),
            ("/files/sub/../../secret", &[403]),
            ("/files/%2e%2e/secret", &[403]),
            ("/files/%2E%2E%2Fsecret", &[403, 404]),
            ("/files/..%2fsecret", &[403, 404]),
            ("/files/sub/%2e%2e/%2e%2e/secret", &[403]),
            ("/files//etc/passwd", &[404]),
            ("/files/link-out", &[403]),
            ("/files/%00", &[400, 404]),
        ];
        for (path, allowed) in cases {
            let r = get(path);
            assert!(
                allowed.contains(&r.status),
                "{path}: got {} (allowed {allowed:?}), body {:?}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
            not_secret(&r, path);
        }
        // curl really sent the paths as-is.
        let r = curl_i(&["-v", "--path-as-is", &url(&srv, "/files/../Cargo.toml")]);
        assert!(r.stderr.contains("> GET /files/../Cargo.toml HTTP/1.1"));
        // And the same checks over a raw socket, without any client normalization.
        let mut c = Client::connect(srv.addr);
        for path in [
            "/files/../secret",
            "/files/%2e%2e/secret",
            "/files/link-out",
        ] {
            let r = c.request(format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
            assert_eq!(r.status, 403, "raw {path}");
            assert!(!r.body_str().contains("TOP SECRET"));
        }
        drop(site.dir);
    });
}

#[test]
fn static_20_mib_download_matches() {
    require("curl");
    with_timeout(LIMIT, || {
        let site = make_site("static-big");
        const LEN: usize = 20 << 20;
        let data = http_util::pseudo_random_bytes(LEN, 0xdead_beef);
        std::fs::write(site.root.join("big.bin"), &data).unwrap();
        let srv = static_server(&site.root);
        let out_path = site.dir.path().join("download.bin");
        let t = Instant::now();
        let out = curl(&[
            "-o",
            out_path.to_str().unwrap(),
            "-w",
            "%{http_code} %{size_download}",
            &url(&srv, "/files/big.bin"),
        ]);
        let took = t.elapsed();
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("200 {LEN}"));
        let got = std::fs::read(&out_path).unwrap();
        assert_eq!(got.len(), LEN);
        assert!(
            got == data,
            "downloaded bytes differ (first difference at {:?})",
            got.iter().zip(&data).position(|(a, b)| a != b)
        );
        // A range in the middle of the big file.
        let r = curl_i(&["-r", "10485750-10485849", &url(&srv, "/files/big.bin")]);
        assert_eq!(r.status, 206);
        assert_eq!(r.body, &data[10_485_750..10_485_850]);
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes 10485750-10485849/{LEN}").as_str())
        );
        eprintln!("20 MiB download took {took:?}");
    });
}

#[test]
fn static_validators_etag_if_none_match_if_range_and_date_forms() {
    require("curl");
    with_timeout(LIMIT, || {
        let site = make_site("static-validators");
        // A known modification time: Sun, 06 Nov 1994 08:49:37 GMT.
        let mtime = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777);
        std::fs::File::options()
            .write(true)
            .open(site.root.join("hello.txt"))
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let srv = static_server(&site.root);
        let u = url(&srv, "/files/hello.txt");

        let r = curl_i(&[&u]);
        assert_eq!(r.status, 200);
        let tag = r.header("etag").expect("ETag").to_string();
        assert_eq!(tag, format!("\"{:x}-{:x}\"", 784_111_777u64, HELLO.len()));
        assert_eq!(
            r.header("last-modified"),
            Some("Sun, 06 Nov 1994 08:49:37 GMT")
        );

        // If-None-Match: a matching tag (also weak, in a list, or *) -> 304
        // with the validators and no body; another tag -> 200.
        for v in [
            tag.clone(),
            format!("W/{tag}"),
            format!("\"other\", {tag}"),
            "*".to_string(),
        ] {
            let r = curl_i(&["-H", &format!("If-None-Match: {v}"), &u]);
            assert_eq!(r.status, 304, "If-None-Match: {v}");
            assert!(r.body.is_empty());
            assert_eq!(r.header("etag"), Some(tag.as_str()));
        }
        let r = curl_i(&["-H", "If-None-Match: \"other\"", &u]);
        assert_eq!((r.status, r.body.as_slice()), (200, HELLO));
        // If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
        let r = curl_i(&[
            "-H",
            "If-None-Match: \"other\"",
            "-H",
            "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT",
            &u,
        ]);
        assert_eq!(r.status, 200);

        // If-Modified-Since in all three date forms (RFC 9110 §5.6.7).
        for (date, status) in [
            ("Sun, 06 Nov 1994 08:49:37 GMT", 304),
            ("Sunday, 06-Nov-94 08:49:37 GMT", 304),
            ("Sun Nov  6 08:49:37 1994", 304),
            ("Sun, 06 Nov 1994 08:49:36 GMT", 200),
            ("Sunday, 06-Nov-94 08:49:36 GMT", 200),
            ("Sun Nov  6 08:49:36 1994", 200),
            ("not a date", 200),
        ] {
            let r = curl_i(&["-H", &format!("If-Modified-Since: {date}"), &u]);
            assert_eq!(r.status, status, "If-Modified-Since: {date}");
        }

        // If-Match / If-Unmodified-Since -> 412 when they do not hold.
        assert_eq!(curl_i(&["-H", "If-Match: \"other\"", &u]).status, 412);
        assert_eq!(curl_i(&["-H", &format!("If-Match: {tag}"), &u]).status, 200);
        assert_eq!(
            curl_i(&[
                "-H",
                "If-Unmodified-Since: Sun, 06 Nov 1994 08:49:36 GMT",
                &u
            ])
            .status,
            412
        );

        // If-Range: the range applies only while the validator matches.
        for (v, status) in [
            (tag.clone(), 206),
            ("Sun, 06 Nov 1994 08:49:37 GMT".to_string(), 206),
            ("\"other\"".to_string(), 200),
            (format!("W/{tag}"), 200), // strong comparison only
            ("Sun, 06 Nov 1994 08:49:38 GMT".to_string(), 200),
        ] {
            let r = curl_i(&["-r", "0-4", "-H", &format!("If-Range: {v}"), &u]);
            assert_eq!(r.status, status, "If-Range: {v}");
            let want: &[u8] = if status == 206 { b"hello" } else { HELLO };
            assert_eq!(r.body, want, "If-Range: {v}");
        }
        drop(site.dir);
    });
}

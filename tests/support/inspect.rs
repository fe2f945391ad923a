//! Helpers for the inspector tests: a tiny HTTP GET, and the official
//! Prometheus Python parser run over a `/metrics` body.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::example::Example;

/// Status, lower-cased headers and body of one `GET` (`Connection: close`).
pub struct Got {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Got {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path` with an optional `Accept` header; reads to EOF.
pub fn get(addr: SocketAddr, path: &str, accept: Option<&str>) -> Got {
    try_get(addr, path, accept)
        .unwrap_or_else(|e| panic!("GET {path} from the inspector at {addr}: {e}"))
}

/// Like [`get`], with an error instead of a panic (connection refused or
/// closed, malformed answer).
pub fn try_get(addr: SocketAddr, path: &str, accept: Option<&str>) -> Result<Got, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\n{accept}Connection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8(raw).map_err(|e| e.to_string())?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("incomplete response {text:?}"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.get(9..12))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Got {
        status,
        headers,
        body: body.to_string(),
    })
}

/// One parsed sample.
#[derive(Debug, Clone)]
pub struct Sample {
    pub family: String,
    pub kind: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses `text` with `prometheus_client.parser` (Python); panics with
/// the parser's message when it does not parse or the module is missing.
pub fn parse_prometheus(text: &str) -> Vec<Sample> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scripts/prom_parse.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the Prometheus parser (.ci/run installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser rejected /metrics: {}\n--- text ---\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Sample {
                family: v["family"].as_str().unwrap().to_string(),
                kind: v["type"].as_str().unwrap().to_string(),
                name: v["name"].as_str().unwrap().to_string(),
                labels: v["labels"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect(),
                value: v["value"].as_f64().unwrap(),
            }
        })
        .collect()
}

/// The sum of sample `name` over all label sets.
pub fn sum(samples: &[Sample], name: &str) -> f64 {
    let found: Vec<&Sample> = samples.iter().filter(|s| s.name == name).collect();
    assert!(!found.is_empty(), "no sample named {name}");
    found.iter().map(|s| s.value).sum()
}

/// Scrapes `/metrics` at `addr` and parses it.
pub fn scrape(addr: SocketAddr) -> Vec<Sample> {
    let got = get(addr, "/metrics", None);
    assert_eq!(got.status, 200);
    assert!(got
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")));
    parse_prometheus(&got.body)
}

/// Starts `echo` with the inspector on port 0; returns it and the inspector's address.
pub fn echo_with_inspector(threads: &str) -> (Example, SocketAddr) {
    example_with_inspector("echo", threads)
}

/// Starts example `name` with the inspector on port 0; returns it and the inspector's address.
pub fn example_with_inspector(name: &str, threads: &str) -> (Example, SocketAddr) {
    let mut ex = Example::start(
        name,
        &[
            "--addr",
            "127.0.0.1:0",
            "--threads",
            threads,
            "--inspect",
            "127.0.0.1:0",
        ],
    );
    let line = ex
        .wait_for_line(Duration::from_secs(30), |l| l.contains("inspector started"))
        .unwrap_or_else(|| panic!("{name} did not log `inspector started`"));
    let addr = line
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("inspect="))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no inspect=IP:PORT in {line:?}"));
    (ex, addr)
}

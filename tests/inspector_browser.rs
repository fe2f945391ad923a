//! The inspector's dashboard in a real browser: headless Chromium (Debian's
//! `chromium` + `chromium-driver`, driven by Python Selenium) loads `/` from
//! the echo example started with `--inspect`, sees the loop table; the test
//! then opens 20 connections and echoes bytes, and the page shows the
//! connection count and the exact byte counters without a reload.
//!
//! Needs `chromium`, `chromedriver` and the `selenium` Python module
//! (`.ci/run` installs them); fails with a clear message when they are missing.

mod support;
use support::inspect as inspect_util;

use std::io::Write;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use support::with_timeout;
use support::{connect, read_n};

const CONNS: usize = 20;
const BYTES_EACH: usize = 500;

fn require(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{tool} is not installed: the browser test needs Debian's chromium and chromium-driver \
         (`apt-get install chromium chromium-driver`, as .ci/run does)"
    );
}

/// The driver script, killed on drop.
struct Driver {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn next_line(&self, limit: Duration) -> String {
        self.lines
            .recv_timeout(limit)
            .unwrap_or_else(|_| panic!("the browser driver said nothing within {limit:?}"))
    }
}

#[test]
fn dashboard_updates_live_in_headless_chromium() {
    require("chromium");
    require("chromedriver");
    with_timeout(Duration::from_secs(240), || {
        let (ex, inspect) = inspect_util::echo_with_inspector("2");
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/scripts/dashboard_browser.py"
        );
        let total = CONNS * BYTES_EACH;
        let mut child = Command::new("python3")
            .arg(script)
            .arg(format!("http://{inspect}/"))
            .args(["--expect-conns", &CONNS.to_string()])
            .args(["--expect-bytes", &total.to_string()])
            .args(["--timeout", "90"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 is needed to drive the browser");
        let lines = support::example::drain_lines(child.stdout.take().unwrap());
        let driver = Driver { child, lines };

        // The page is up and shows the loops, before any connection exists.
        let ready = driver.next_line(Duration::from_secs(120));
        assert!(
            ready.starts_with("READY loops=3 conns=0"),
            "driver: {ready} (is the selenium Python module installed?)"
        );

        let mut conns: Vec<TcpStream> = (0..CONNS).map(|_| connect(ex.addr)).collect();
        for c in &mut conns {
            let data = vec![b'z'; BYTES_EACH];
            c.write_all(&data).unwrap();
            assert_eq!(read_n(c, BYTES_EACH), data);
        }

        let updated = driver.next_line(Duration::from_secs(120));
        assert!(
            updated.starts_with(&format!(
                "UPDATED conns={CONNS} rows={CONNS} read={total} written={total}"
            )),
            "driver: {updated}"
        );
        let mut driver = driver;
        let status = driver.child.wait().unwrap();
        assert!(status.success(), "the driver script failed: {status}");
        drop(conns);
    });
}

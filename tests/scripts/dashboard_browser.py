#!/usr/bin/env python3
"""Drives the inspector dashboard in headless Chromium (Selenium + Debian's
chromedriver), for tests/inspector_browser.rs and the README screenshot.

    dashboard_browser.py URL [--expect-conns N --expect-bytes B] [--screenshot PNG] [--timeout S]

1. loads URL, waits for the loop table to fill, prints `READY loops=N conns=C`;
2. with --expect-*: marks the window, then waits (no reload) until the page
   shows N connections and B bytes read and written, checks the mark is
   still there (same page), prints `UPDATED ...`;
3. with --screenshot: saves a PNG of the page.
Exits 1 with what it last saw when a step times out."""
import argparse
import shutil
import sys
import tempfile
import time

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
except ImportError:
    sys.exit("python module selenium is missing: pip install selenium (.ci/run does)")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def say(msg):
    print(msg, flush=True)


def wait(what, timeout, probe):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        ok, last = probe()
        if ok:
            return last
        time.sleep(0.2)
    say(f"TIMEOUT waiting for {what}; last seen: {last}")
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--expect-conns", type=int)
    ap.add_argument("--expect-bytes", type=int)
    ap.add_argument("--screenshot")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=900)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--settle", type=float, default=3, help="seconds before the screenshot")
    a = ap.parse_args()

    profile = tempfile.mkdtemp(prefix="muduo-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                 f"--window-size={a.width},{a.height}"]:
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=opts)
    try:
        driver.set_page_load_timeout(a.timeout)
        driver.get(a.url)

        def loops_shown():
            rows = driver.find_elements(By.CSS_SELECTOR, "#loops tbody tr.loop-row")
            conns = driver.find_element(By.ID, "conn-count").get_attribute("data-value")
            return len(rows) > 0, (len(rows), conns)

        n, conns = wait("the loop table", a.timeout, loops_shown)
        say(f"READY loops={n} conns={conns}")

        if a.expect_conns is not None:
            driver.execute_script("window.__muduoMark = 'same-page';")

            def updated():
                v = lambda i: int(driver.find_element(By.ID, i).get_attribute("data-value"))
                seen = {"conns": v("conn-count"), "read": v("bytes-read"), "written": v("bytes-written"),
                        "rows": len(driver.find_elements(By.CSS_SELECTOR, "#connections tbody tr.conn-row"))}
                ok = (seen["conns"] == a.expect_conns and seen["rows"] == a.expect_conns
                      and seen["read"] == a.expect_bytes and seen["written"] == a.expect_bytes)
                return ok, seen

            seen = wait("the counters to update", a.timeout, updated)
            mark = driver.execute_script("return window.__muduoMark || null;")
            if mark != "same-page":
                say("FAIL the page was reloaded (the window mark is gone)")
                sys.exit(1)
            updates = driver.execute_script("return document.body.dataset.updates;")
            say(f"UPDATED conns={seen['conns']} rows={seen['rows']} read={seen['read']} "
                f"written={seen['written']} polls={updates}")

        if a.screenshot:
            time.sleep(a.settle)  # let the charts gather a few points
            driver.save_screenshot(a.screenshot)
            say(f"SCREENSHOT {a.screenshot}")
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()

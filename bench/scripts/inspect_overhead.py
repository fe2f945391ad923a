#!/usr/bin/env python3
"""Ping-pong throughput and server CPU per message with the inspector
scraped once a second, against the same server without an inspector.

Run from the workspace root after `cargo build --release --examples -p muduo`
and `cargo build --release -p muduo-bench`:

    python3 bench/scripts/inspect_overhead.py [runs] [seconds]

Server: examples/echo --threads 1 (plus --inspect 127.0.0.1:PORT, with a
client GETting /metrics every second). Client: pingpong_client, 2 threads.
Runs alternate (none, inspected, none, ...) so drifts of a shared machine
hit both alike; each figure is the median. CPU is the server's whole-life
user/system time from wait4, so the inspector's own thread is included.
"""
import os, re, signal, socket, statistics, subprocess, sys, threading, time, urllib.request

R = "target/release/"
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
SECS = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
CELLS = [(16, 100), (4096, 100)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, limit=10.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server on {port} did not start")


def run(inspected, block, sessions):
    port = free_port()
    cmd = [R + "examples/echo", "--addr", f"127.0.0.1:{port}", "--threads", "1"]
    iport = free_port() if inspected else None
    if inspected:
        cmd += ["--inspect", f"127.0.0.1:{iport}"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=dict(os.environ, RUST_LOG="warn"))
    wait_port(port)
    stop, scrapes = threading.Event(), []
    if inspected:
        wait_port(iport)

        def scrape():
            while not stop.wait(1.0):
                body = urllib.request.urlopen(f"http://127.0.0.1:{iport}/metrics", timeout=5).read()
                scrapes.append(len(body))
        threading.Thread(target=scrape, daemon=True).start()
    out = subprocess.run([R + "pingpong_client", f"127.0.0.1:{port}", "2", str(block), str(sessions), str(SECS)],
                         capture_output=True, text=True).stdout
    stop.set()
    os.kill(p.pid, signal.SIGTERM)
    _, _, ru = os.wait4(p.pid, 0)
    p.returncode = 0
    nbytes = int(re.search(r"bytes=(\d+)", out).group(1))
    msgs = nbytes / block
    return {"mib_s": nbytes / 2**20 / SECS, "user": ru.ru_utime * 1e6 / msgs, "sys": ru.ru_stime * 1e6 / msgs,
            "scrapes": len(scrapes)}


def main():
    print(f"| block | sessions | server | MiB/s | MiB/s range | user µs/msg | sys µs/msg | total µs/msg | scrapes |")
    print(f"|---|---|---|---|---|---|---|---|---|")
    for block, sessions in CELLS:
        res = {False: [], True: []}
        for _ in range(RUNS):
            for inspected in (False, True):
                res[inspected].append(run(inspected, block, sessions))
        med = {k: {f: statistics.median(r[f] for r in v) for f in ("mib_s", "user", "sys", "scrapes")}
               for k, v in res.items()}
        for inspected in (False, True):
            m = med[inspected]
            name = "inspected, /metrics every 1 s" if inspected else "no inspector"
            lo, hi = min(r["mib_s"] for r in res[inspected]), max(r["mib_s"] for r in res[inspected])
            print(f"| {block} | {sessions} | {name} | {m['mib_s']:.1f} | {lo:.1f}-{hi:.1f} | {m['user']:.3f} | {m['sys']:.3f} | "
                  f"{m['user'] + m['sys']:.3f} | {m['scrapes']:.0f} |", flush=True)
        a, b = med[False], med[True]
        print(f"| {block} | {sessions} | ratio inspected/none | {b['mib_s'] / a['mib_s']:.2f} | | "
              f"{b['user'] / a['user']:.2f} | {b['sys'] / a['sys']:.2f} | "
              f"{(b['user'] + b['sys']) / (a['user'] + a['sys']):.2f} | |", flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Instructions per echoed message for each ping-pong server, under callgrind.

Run from the workspace root after `cargo build --release --examples -p muduo`
and `cargo build --release -p muduo-bench`:

    python3 bench/scripts/callgrind_pingpong.py ours epoll tokio

Deterministic where CPU time is noisy: valgrind counts instructions.
"""
import os, sys, subprocess, time, signal, re, random, glob
def run(name, cmd, block=16, sess=100, secs=3):
    port = random.randint(20000, 40000)
    out_file=f"/tmp/cg.{name}.out"
    p = subprocess.Popen(["valgrind","--tool=callgrind",f"--callgrind-out-file={out_file}"] + cmd + ["--addr", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, RUST_LOG="warn"))
    time.sleep(3)
    out = subprocess.run(["target/release/pingpong_client", f"127.0.0.1:{port}", "1", str(block), str(sess), str(secs)], capture_output=True, text=True).stdout
    os.kill(p.pid, signal.SIGINT); p.wait()
    time.sleep(0.5)
    m = re.search(r"bytes=(\d+) seconds=([\d.]+)", out)
    msgs = int(m.group(1)) / block
    tot = subprocess.run(["callgrind_annotate", out_file], capture_output=True, text=True).stdout
    ir = int(re.search(r"([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", tot).group(1).replace(",",""))
    print(f"{name:8s} msgs={msgs:.0f} Ir/msg={ir/msgs:.0f}", flush=True)
R="target/release/"
for n in sys.argv[1:]:
    if n=="ours": run("ours", [R+"examples/pingpong_server", "--threads", "0"])
    if n=="epoll": run("epoll", [R+"epoll_pingpong", "--threads", "1"])
    if n=="tokio": run("tokio", [R+"tokio_pingpong", "--threads", "1"])

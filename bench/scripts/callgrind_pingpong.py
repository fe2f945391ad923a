#!/usr/bin/env python3
"""Instructions per echoed message for each ping-pong server, under callgrind.

Run from the workspace root after `cargo build --release --examples -p muduo`
and `cargo build --release -p muduo-bench`:

    python3 bench/scripts/callgrind_pingpong.py ours epoll tokio echo
    python3 bench/scripts/callgrind_pingpong.py ours:uring ours:epoll-et

(`echo` is the README's echo example, whose plain-echo path is measured.)

`ours:KIND` runs our server with `--poller KIND` (epoll, epoll-et, poll, uring).
Deterministic where CPU time is noisy: valgrind counts instructions.
"""
import os, sys, subprocess, time, signal, re, random, glob, tempfile
OUT_DIR = tempfile.mkdtemp(prefix="callgrind-pingpong-")
def is_loop_total(line):
    """True for callgrind_annotate's inclusive line of EventLoop::run itself
    (not an inlined piece of it from another file, not a call arrow)."""
    name = ":muduo::event_loop::EventLoop::run"
    if name not in line or "=>" in line or not line.split()[0][0].isdigit():
        return False
    rest = line.rstrip().split(name, 1)[1]
    return rest == "" or rest.startswith(" [")

def wait_listening(port, limit=60):
    """Waits until the server under valgrind accepts (start-up is slow on a loaded machine)."""
    import socket
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            time.sleep(0.5)
            return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"server on port {port} did not start within {limit}s")

def run(name, cmd, block=16, sess=100, secs=3):
    port = random.randint(20000, 40000)
    out_file=os.path.join(OUT_DIR, f"cg.{name}.out")
    p = subprocess.Popen(["valgrind","--tool=callgrind",f"--callgrind-out-file={out_file}"] + cmd + ["--addr", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, RUST_LOG="warn"))
    wait_listening(port)
    out = subprocess.run(["target/release/pingpong_client", f"127.0.0.1:{port}", "1", str(block), str(sess), str(secs)], capture_output=True, text=True).stdout
    os.kill(p.pid, signal.SIGINT)
    # Under valgrind a signal is only acted on when the blocked syscall
    # returns; an io_uring wait returns on a completion, so knock once.
    try:
        import socket
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        pass
    p.wait()
    time.sleep(0.5)
    m = re.search(r"bytes=(\d+) seconds=([\d.]+)", out)
    msgs = int(m.group(1)) / block
    tot = subprocess.run(["callgrind_annotate", out_file], capture_output=True, text=True).stdout
    ir = int(re.search(r"([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", tot).group(1).replace(",",""))
    # Start-up (logging set-up, ring and buffer allocation) is a fixed cost
    # that weighs more when a loaded machine echoes fewer messages: the
    # cost inside the event loop alone is the steadier figure.
    inc = subprocess.run(["callgrind_annotate", "--inclusive=yes", out_file], capture_output=True, text=True).stdout
    loop = [int(l.split()[0].replace(",", "")) for l in inc.splitlines() if is_loop_total(l)]
    in_loop = f" loop-Ir/msg={max(loop)/msgs:.0f}" if loop else ""
    print(f"{name:8s} msgs={msgs:.0f} Ir/msg={ir/msgs:.0f}{in_loop} profile={out_file}", flush=True)
R="target/release/"
for n in sys.argv[1:]:
    if n=="ours": run("ours", [R+"examples/pingpong_server", "--threads", "0"])
    if n.startswith("ours:"): run(n, [R+"examples/pingpong_server", "--threads", "0", "--poller", n[5:]])
    if n=="echo": run("echo", [R+"examples/echo", "--threads", "0"])
    if n=="epoll": run("epoll", [R+"epoll_pingpong", "--threads", "1"])
    if n=="tokio": run("tokio", [R+"tokio_pingpong", "--threads", "1"])

#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# The metrics endpoint against hostile local clients (issue 13 points 13, 14, 18): eight
# connections that close together must not kill it; slow clients (one header line at a time)
# are closed by the per-request deadline and never starve a scrape; one peer address holds at
# most METRICS_MAX_PER_PEER connections; a SIGHUP with an unusable [metrics] listen is refused
# and not counted as applied. The daemon runs on the simulated platform, no simulator peer.
# Nothing is judged on time: every wait is a generous bound on something that must happen.
# Usage: metrics-hostile.py SNP-ATTESTD CTL-RAW. Prints TAP.
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

DAEMON, RAW = sys.argv[1], sys.argv[2]
n = 0
fails = 0


def check(cond, desc, diag=""):
    global n, fails
    n += 1
    print(("ok" if cond else "not ok") + f" {n} - {desc}", flush=True)
    if not cond:
        fails += 1
        for line in str(diag).splitlines()[-20:]:
            print("# " + line)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def scrape(port, timeout=30, src="127.0.0.1"):
    """One GET /metrics on a fresh connection; the body, or None."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                     source_address=(src, 0))
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
        if data.startswith(b"HTTP/1.1 200"):
            return data.decode(errors="replace")
    except OSError:
        pass
    return None


def metric(text, name):
    m = re.search("^" + re.escape(name) + r" (\S+)$", text or "", re.M)
    return float(m.group(1)) if m else None


tmp = tempfile.mkdtemp(prefix="metrics-hostile.")
port = free_port()
conf = os.path.join(tmp, "d.conf")


def write_conf(listen, timeout):
    with open(conf, "w") as f:
        f.write(f"""[daemon]
backend = sim
sim_state_dir = {tmp}/sim
state_dir = {tmp}/state
cache_dir = {tmp}/cache
transport = usersock
usersock_port = {0x51000000 + os.getpid() % 100000}
[control]
socket = {tmp}/control.sock
[certs]
kds_url = http://127.0.0.1:9
[metrics]
listen = {listen}
request_timeout = {timeout}
""")


subprocess.run([RAW, "mkstate", tmp + "/sim", "milan"], check=True)
write_conf(f"127.0.0.1:{port}", "2s")
log = open(os.path.join(tmp, "daemon.log"), "w")
d = subprocess.Popen([DAEMON, "-c", conf], stdout=log, stderr=subprocess.STDOUT)
try:
    up = None
    for _ in range(300):
        up = scrape(port, timeout=5)
        if up:
            break
        time.sleep(0.1)
    check(up is not None, "daemon serves /metrics")

    # --- point 13: eight connections closing together ---
    for rnd in range(3):
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
        for s in socks:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        for s in socks:
            s.close()
    check(scrape(port) is not None,
          "after 3 rounds of 8 connections closing together, a scrape is answered")
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
    for s in socks:
        s.close()
    check(scrape(port) is not None, "and after 8 silent connections closing together")

    # --- point 14: slow clients are closed by the deadline and never starve a scrape ---
    stop = threading.Event()
    closed = []
    ready = [0]
    lock = threading.Lock()

    def slow(i):
        # One header line every 0.5 s for at most 120 lines (a minute): the daemon's 2 s
        # deadline must close it long before.
        try:
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /metrics HTTP/1.1\r\n")
            with lock:
                ready[0] += 1
            for k in range(120):
                if stop.is_set():
                    break
                s.sendall(f"X-Slow-{k}: 1\r\n".encode())
                time.sleep(0.5)
            else:
                s.close()
                return
            s.close()
        except OSError:
            closed.append(i)

    threads = [threading.Thread(target=slow, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for _ in range(600):  # until the 8 have connected and sent their first lines
        if ready[0] >= 8:
            break
        time.sleep(0.05)
    # A scrape from another address: once it is answered, the daemon has taken every earlier
    # connection in an earlier wake-up (the accept queue is in order).
    scrape(port, src="127.0.0.4")
    body = scrape(port)
    check(body is not None, "8 slow header-by-header clients: a scrape is still answered")
    for t in threads:
        t.join(timeout=90)
    check(len(closed) == 8, f"all 8 slow clients were closed by the deadline ({len(closed)})")
    stop.set()

    # One peer address holds at most 8 connections: a 9th pushes out the oldest silent one.
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
    scrape(port, src="127.0.0.4")
    body = scrape(port)
    check(body is not None, "8 silent connections from one address: a scrape from it answered")
    silent[0].settimeout(30)
    try:
        gone = silent[0].recv(1) == b""
    except OSError:
        gone = True
    check(gone, "the oldest silent connection of that address made room")
    # Another address is not limited by the first one's connections.
    other = [socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0))
             for _ in range(8)]
    check(scrape(port, src="127.0.0.3") is not None, "a third address is served")
    for s in silent + other:
        s.close()
    body = scrape(port)
    check(metric(body, 'snp_attestd_metrics_connections_dropped_total{reason="deadline"}') >= 7
          if body else False, "deadline closes are counted")
    check(metric(body, 'snp_attestd_metrics_connections_dropped_total{reason="evicted"}') >= 1
          if body else False, "evictions are counted")

    # --- point 18: a reload with an unusable listen value is refused, not counted ---
    before = metric(scrape(port), "snp_attestd_config_reload_failures_total")
    applied = metric(scrape(port), "snp_attestd_config_reloads_total")
    for bad in ("garbage", "localhost:9477", "127.0.0.1:99999"):
        write_conf(bad, "2s")
        r = subprocess.run([DAEMON, "-c", conf, "--check-config"], capture_output=True,
                           text=True)
        check(r.returncode == 2 and "[metrics] listen" in r.stderr,
              f"--check-config refuses listen = {bad}", r.stdout + r.stderr)
        d.send_signal(signal.SIGHUP)
        after = None
        for _ in range(300):
            body = scrape(port)
            after = metric(body, "snp_attestd_config_reload_failures_total")
            if after is not None and after > before:
                break
            time.sleep(0.1)
        check(after == before + 1, f"SIGHUP with listen = {bad}: counted as a failed reload")
        check(metric(body, "snp_attestd_config_reloads_total") == applied,
              f"SIGHUP with listen = {bad}: not counted as applied")
        before = after
    check(d.poll() is None, "the daemon is still running")
    d.send_signal(signal.SIGTERM)
    try:
        rc = d.wait(timeout=120)
    except subprocess.TimeoutExpired:
        rc = None
    check(rc == 0, f"the daemon stops cleanly (exit {rc})")
finally:
    if d.poll() is None:
        d.kill()
        d.wait()
    log.close()
    if fails:
        with open(os.path.join(tmp, "daemon.log")) as f:
            for line in f.readlines()[-30:]:
                print("# " + line.rstrip())
    subprocess.run(["rm", "-rf", tmp])
print(f"1..{n}")
sys.exit(1 if fails else 0)

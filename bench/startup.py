#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""bench/startup.py: time from fork to READY=1 (sd_notify, read on our own NOTIFY_SOCKET) of
snp-attestd with a given configuration, against the same daemon's --check-config run (fork to
exit), alternated RUNS times. Prints one JSON object: every sample, medians and maxima.

Usage: startup.py --daemon BIN --config CONF [--runs N] [--timeout S]"""
import argparse
import json
import os
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def time_ready(daemon, conf, timeout, work):
    """Seconds from fork to READY=1, or None when it did not come within timeout."""
    path = os.path.join(work, 'notify.sock')
    if os.path.exists(path):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    env = dict(os.environ, NOTIFY_SOCKET=path)
    t0 = time.monotonic()
    p = subprocess.Popen([daemon, '--config', conf, '--foreground'], env=env,
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, 'daemon.log'),
                                                                'ab'))
    ready = None
    try:
        end = t0 + timeout
        while ready is None:
            left = end - time.monotonic()
            if left <= 0 or p.poll() is not None:
                break
            r, _, _ = select.select([sock], [], [], left)
            if not r:
                continue
            data = sock.recv(4096)
            now = time.monotonic()
            if b'READY=1' in data.split(b'\n'):
                ready = now - t0
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        sock.close()
    return ready


def time_check(daemon, conf):
    """Seconds from fork to exit of --check-config, or None when it failed."""
    t0 = time.monotonic()
    r = subprocess.run([daemon, '--config', conf, '--check-config'], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    t1 = time.monotonic()
    return t1 - t0 if r.returncode == 0 else None


def summary(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {'median_ms': statistics.median(xs) * 1e3, 'max_ms': max(xs) * 1e3,
            'min_ms': min(xs) * 1e3, 'n': len(xs)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--daemon', required=True)
    ap.add_argument('--config', required=True)
    ap.add_argument('--runs', type=int, default=7)
    ap.add_argument('--timeout', type=float, default=15.0)
    a = ap.parse_args()
    if a.runs < 1 or a.runs > 1000:
        print('startup.py: --runs must be 1 to 1000', file=sys.stderr)
        return 2
    ready, check = [], []
    with tempfile.TemporaryDirectory(prefix='snp-bench-startup.') as work:
        for _ in range(a.runs):
            check.append(time_check(a.daemon, a.config))
            ready.append(time_ready(a.daemon, a.config, a.timeout, work))
    doc = {'runs': a.runs, 'ready_s': ready, 'check_config_s': check,
           'ready': summary(ready), 'check_config': summary(check),
           'ready_missing': sum(1 for x in ready if x is None),
           'check_failed': sum(1 for x in check if x is None)}
    if doc['ready'] and doc['check_config'] and doc['check_config']['median_ms'] > 0:
        doc['ratio_median'] = doc['ready']['median_ms'] / doc['check_config']['median_ms']
    print(json.dumps(doc))
    return 0 if doc['ready_missing'] == 0 and doc['check_failed'] == 0 else 1


if __name__ == '__main__':
    sys.exit(main())

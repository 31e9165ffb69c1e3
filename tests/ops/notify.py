#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The daemon as systemd runs it: started by systemd-socket-activate on the first connection to
its control socket (passed with the name "control"), with NOTIFY_SOCKET pointing at a datagram
socket read here (credentials checked: every message comes from the daemon's own pid) and
WATCHDOG_USEC set. Checks READY=1 and a STATUS= line, the control socket answering (a raw
protocol request and snpctl status), WATCHDOG=1 pings no further apart than WATCHDOG_USEC (the
interval systemd enforces), RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 and exit 0 on
SIGTERM. Runs on the simulated platform (backend=sim, transport=usersock, no simulator: the
broker keeps retrying REGISTER, which is fine). Prints TAP.

Usage: notify.py SNP-ATTESTD SNPCTL SNP-KDSSIM"""
import json
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

WATCHDOG_USEC = 4000000
results = []


def check(desc, ok, detail='', skip=None):
    results.append((desc, ok, detail, skip))


class Notify:
    """The receiving end of NOTIFY_SOCKET: (sender pid, message) pairs, with arrival times."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.msgs = []  # (monotonic time, pid, field)

    def pump(self, timeout):
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return
        data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = -1
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack('iII', payload[:12])[0]
        now = time.monotonic()
        for field in data.decode(errors='replace').split('\n'):
            if field:
                self.msgs.append((now, pid, field))

    def wait_for(self, pred, timeout, start=0):
        """Index of the first message at or after start matching pred, or None."""
        end = time.monotonic() + timeout
        while True:
            for i in range(start, len(self.msgs)):
                if pred(self.msgs[i][2]):
                    return i
            left = end - time.monotonic()
            if left <= 0:
                return None
            self.pump(left)


def control_request(path, obj):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(60)
        s.connect(path)
        s.sendall((json.dumps(obj) + '\n').encode())
        buf = b''
        while not buf.endswith(b'\n'):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf.decode())


def main():
    daemon, snpctl, kdssim = sys.argv[1:4]
    tmp = tempfile.mkdtemp(prefix='snp-ops-notify-')
    sim = os.path.join(tmp, 'sim')
    ctl_path = os.path.join(tmp, 'control.sock')

    # A simulated platform: snp-kdssim creates the state when given --product.
    port_file = os.path.join(tmp, 'kds.port')
    k = subprocess.Popen([kdssim, '--state', sim, '--product', 'milan', '--listen',
                          '127.0.0.1:0', '--port-file', port_file, '--log', os.devnull],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(600):
        if os.path.exists(port_file) or k.poll() is not None:
            break
        time.sleep(0.1)
    k.send_signal(signal.SIGTERM)
    _, kerr = k.communicate(timeout=60)
    if not os.path.exists(os.path.join(sim, 'state')):
        print('1..1\nnot ok 1 - create the simulated platform\n# ' + kerr.decode()[:500])
        return 1

    # A port id of our own, so that no simulator of a concurrent test answers our REGISTER.
    conf = os.path.join(tmp, 'snp-attestd.conf')
    with open(conf, 'w') as f:
        f.write(f"""[daemon]
backend = sim
sim_state_dir = {sim}
state_dir = {tmp}/state
cache_dir = {tmp}/cache
transport = usersock
usersock_port = {random.randint(0x60000000, 0x6fffffff)}
[control]
socket = {tmp}/not-this-one.sock
[vmm]
socket = {tmp}/vmm.sock
[metrics]
listen =
""")
    notify = Notify(os.path.join(tmp, 'notify.sock'))
    env = dict(os.environ)
    for v in ('NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'LISTEN_FDS', 'LISTEN_PID',
              'LISTEN_FDNAMES', 'JOURNAL_STREAM'):
        env.pop(v, None)
    log = open(os.path.join(tmp, 'daemon.log'), 'w+')
    act = subprocess.Popen(['systemd-socket-activate', '-l', ctl_path, '--fdname=control',
                            '-E', 'NOTIFY_SOCKET=' + os.path.join(tmp, 'notify.sock'),
                            '-E', f'WATCHDOG_USEC={WATCHDOG_USEC}',
                            daemon, '-c', conf, '--foreground'],
                           env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            if os.path.exists(ctl_path):
                break
            time.sleep(0.05)
        check('systemd-socket-activate listens on the control socket', os.path.exists(ctl_path))
        check('the daemon is not started before the first connection',
              notify.wait_for(lambda m: True, 0.3) is None)

        # The first connection starts the daemon, which must answer it on the passed socket.
        try:
            reply = control_request(ctl_path, {'cmd': 'status', 'id': 7})
            check('control socket (raw protocol): status answered',
                  reply.get('ok') is True and reply.get('id') == 7, json.dumps(reply)[:400])
        except (OSError, ValueError) as e:
            check('control socket (raw protocol): status answered', False, repr(e))

        ready = notify.wait_for(lambda m: m == 'READY=1', 60)
        check('READY=1 sent', ready is not None)
        pids = {pid for _, pid, _ in notify.msgs}
        check('every notification comes from the daemon\'s own pid (NotifyAccess=main)',
              pids == {act.pid}, f'senders {pids}, daemon {act.pid}')
        check('STATUS= line sent',
              notify.wait_for(lambda m: m.startswith('STATUS='), 10) is not None)

        rc, out = 0, ''
        h = subprocess.run([snpctl, 'help', 'status'], capture_output=True, text=True)
        if h.returncode != 0:
            check('snpctl status over the activated socket', True,
                  skip='snpctl has no status command yet')
        else:
            p = subprocess.run([snpctl, 'status', '--socket', ctl_path, '--json'],
                               capture_output=True, text=True, timeout=60)
            try:
                ok = p.returncode == 0 and isinstance(json.loads(p.stdout), dict)
            except ValueError:
                ok = False
            check('snpctl status --json over the activated socket', ok,
                  f'rc={p.returncode} {p.stdout[:300]} {p.stderr[:300]}')
            p = subprocess.run([snpctl, 'status', '--socket', ctl_path], capture_output=True,
                               text=True, timeout=60)
            check('snpctl status over the activated socket names the sim backend',
                  p.returncode == 0 and 'sim' in p.stdout, f'rc={p.returncode} {p.stdout[:300]}')

        # Watchdog: three pings after READY, none further apart than WATCHDOG_USEC.
        start = ready + 1 if ready is not None else 0
        idx = []
        for _ in range(3):
            i = notify.wait_for(lambda m: m == 'WATCHDOG=1', 3 * WATCHDOG_USEC / 1e6,
                                idx[-1] + 1 if idx else start)
            if i is None:
                break
            idx.append(i)
        times = [notify.msgs[i][0] for i in idx]
        gaps = [b - a for a, b in zip(times, times[1:])]
        check('WATCHDOG=1 pings keep coming', len(idx) == 3, f'{len(idx)} pings seen')
        check('WATCHDOG=1 pings within WATCHDOG_USEC of each other',
              len(gaps) == 2 and max(gaps) <= WATCHDOG_USEC / 1e6,
              'gaps ' + ', '.join(f'{g:.3f}s' for g in gaps))

        # Reload: RELOADING=1, then READY=1 again.
        mark = len(notify.msgs)
        act.send_signal(signal.SIGHUP)
        i = notify.wait_for(lambda m: m == 'RELOADING=1', 30, mark)
        j = notify.wait_for(lambda m: m == 'READY=1', 30, i + 1) if i is not None else None
        check('SIGHUP: RELOADING=1 then READY=1', i is not None and j is not None)

        # Stop: STOPPING=1 and a clean exit.
        mark = len(notify.msgs)
        act.send_signal(signal.SIGTERM)
        i = notify.wait_for(lambda m: m == 'STOPPING=1', 30, mark)
        check('SIGTERM: STOPPING=1', i is not None)
        try:
            rc = act.wait(timeout=60)
        except subprocess.TimeoutExpired:
            rc = None
        check('SIGTERM: exit status 0', rc == 0, f'rc={rc}')
    finally:
        if act.poll() is None:
            act.kill()
            act.wait()
        log.seek(0)
        daemon_log = log.read()
        log.close()

    print(f'1..{len(results)}')
    failed = False
    for n, (desc, ok, detail, skip) in enumerate(results, 1):
        if skip:
            print(f'ok {n} - {desc} # SKIP {skip}')
            continue
        print(f'{"ok" if ok else "not ok"} {n} - {desc}')
        if not ok:
            failed = True
            if detail:
                print('# ' + detail.replace('\n', '\n# '))
    if failed:
        print('# daemon log:\n# ' + daemon_log[-3000:].replace('\n', '\n# '))
    else:
        subprocess.run(['rm', '-rf', tmp])
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())

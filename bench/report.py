#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# bench/report.py: turns the raw figures of one bench/run.sh run into the table of design §10
# (metric, measured, target, PASS/MISS): RESULTS/<benchmark>.json for overhead, psp, scale,
# sched, fairness and startup, RESULTS/summary.txt (printed too) and the plots (gnuplot).
# A MISS is information, not a failure: the exit status is non-zero only when the raw files
# cannot be read.
import argparse
import glob
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys

BENCHMARKS = ('overhead', 'psp', 'scale', 'sched', 'fairness', 'startup', 'vmm')
LABEL_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


class Prom:
    """One /metrics scrape: samples as (name, {labels}, value)."""

    def __init__(self, path):
        self.samples = []
        try:
            with open(path) as f:
                for line in f:
                    if not line.strip() or line.startswith('#'):
                        continue
                    key, _, val = line.rstrip('\n').rpartition(' ')
                    name, _, rest = key.partition('{')
                    labels = dict(LABEL_RE.findall(rest)) if rest else {}
                    try:
                        self.samples.append((name, labels, float(val)))
                    except ValueError:
                        pass
        except OSError:
            pass

    def __bool__(self):
        return bool(self.samples)

    def get(self, name, default=None, **labels):
        for n, lab, v in self.samples:
            if n == name and all(lab.get(k) == w for k, w in labels.items()):
                return v
        return default

    def has(self, name):
        return any(n == name for n, _, _ in self.samples)

    def buckets(self, name, **labels):
        """{le (s, inf for +Inf): cumulative count} of one histogram series."""
        out = {}
        for n, lab, v in self.samples:
            if n != name + '_bucket' or 'le' not in lab:
                continue
            if all(lab.get(k) == w for k, w in labels.items()):
                le = math.inf if lab['le'] == '+Inf' else float(lab['le'])
                out[le] = out.get(le, 0) + v
        return out

    def label_values(self, name, label):
        return sorted({lab[label] for n, lab, _ in self.samples if n == name and label in lab})


def bucket_quantile(b, q):
    """(lower, upper) bound in s of the bucket holding quantile q of cumulative buckets b."""
    les = sorted(b)
    if not les or b[les[-1]] <= 0:
        return None
    total = b[les[-1]]
    for i, le in enumerate(les):
        if b[le] >= q * total:
            return (les[i - 1] if i else 0.0, le)
    return None


def fw_mean_s(m):
    n = m.get('snp_attestd_firmware_seconds_count', 0)
    return m.get('snp_attestd_firmware_seconds_sum') / n if n else None


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


class Run:
    """One snp-kvmsim run with its peer's CPU and the daemon's last scrape."""

    def __init__(self, raw, name):
        self.name = name
        self.k = load_json(os.path.join(raw, name + '.kvmsim.json')) or {}
        self.t = load_json(os.path.join(raw, name + '.kvmsim-time.json')) or {}
        self.p = load_json(os.path.join(raw, name + '.peer.json')) or {}
        self.m = Prom(os.path.join(raw, name + '.metrics'))
        self.ok = 'totals' in self.k and self.k.get('duration_s', 0) > 0

    @property
    def verdicts(self):
        return self.k['kernel']['verdicts']

    @property
    def vps(self):
        return self.verdicts / self.k['duration_s']

    @property
    def paced_rate(self):
        """Achieved aggregate rate of a --total-rate run (requests / pacing window)."""
        w = self.k.get('pace_window_s') or 0
        return self.k.get('paced_requests', 0) / w if w > 0 else self.vps

    def lat(self, q):
        return self.k['latency_ms'][q]

    @property
    def cpu_ns_per_verdict(self):
        v = self.verdicts
        return self.p['cpu_ns'] / v if v and 'cpu_ns' in self.p else None

    @property
    def gen_cpu(self):
        if 'user_s' not in self.t:
            return None
        return (self.t['user_s'] + self.t['sys_s']) / self.k['duration_s']

    def clean(self):
        t = self.k['totals']
        return t['vmpck_wipes'] == 0 and t['verify_failures'] == 0 and t['msg_failures'] == 0


def jain(xs):
    if not xs or sum(x * x for x in xs) == 0:
        return None
    return sum(xs) ** 2 / (len(xs) * sum(x * x for x in xs))


class Table:
    COLS = ('metric', 'measured', 'target', 'result')

    def __init__(self):
        self.rows = []

    def add(self, section, metric, measured, target, ok, value=None):
        """ok: True (PASS), False (MISS), None (n/a: not measured or informational)."""
        self.rows.append({'section': section, 'metric': metric, 'measured': measured,
                          'target': target,
                          'result': 'n/a' if ok is None else ('PASS' if ok else 'MISS'),
                          'value': value})

    def render(self):
        hdr = dict(zip(self.COLS, self.COLS))
        w = [max(len(r[k]) for r in self.rows + [hdr]) for k in self.COLS]
        out = ['  '.join(h.ljust(x) for h, x in zip(self.COLS, w)).rstrip(),
               '  '.join('-' * x for x in w)]
        section = None
        for r in self.rows:
            if r['section'] != section:
                section = r['section']
                out.append('[%s]' % section)
            out.append('  '.join(r[k].ljust(x) for k, x in zip(self.COLS, w)).rstrip())
        return '\n'.join(out)


def spread(xs, fmt):
    xs = [x for x in xs if x is not None]
    return (fmt + '..' + fmt) % (min(xs), max(xs)) if xs else 'n/a'


def overhead(raw, run, T, figs, notes):
    reps = run.get('overhead_reps') or 1
    fl = [Run(raw, 'floor-%d' % i) for i in range(1, reps + 1)]
    dm = [Run(raw, 'daemon-%d' % i) for i in range(1, reps + 1)]
    fl, dm = [r for r in fl if r.ok], [r for r in dm if r.ok]
    if not fl or not dm:
        T.add('overhead', 'floor/daemon throughput (PSP free)', 'not measured', '<= 1.3x', None)
        return
    f_vps, d_vps = median([r.vps for r in fl]), median([r.vps for r in dm])
    f_p99, d_p99 = median([r.lat('p99') for r in fl]), median([r.lat('p99') for r in dm])
    f_p50, d_p50 = median([r.lat('p50') for r in fl]), median([r.lat('p50') for r in dm])
    tp = f_vps / d_vps if d_vps else math.inf
    p99 = d_p99 / f_p99 if f_p99 else math.inf
    p50 = d_p50 / f_p50 if f_p50 else math.inf
    side = lambda rs: {'verdicts_per_s': [r.vps for r in rs], 'p50_ms': [r.lat('p50') for r in rs],
                       'p99_ms': [r.lat('p99') for r in rs],
                       'cpu_ns_per_verdict': [r.cpu_ns_per_verdict for r in rs],
                       'kvmsim_cpu_cores': [r.gen_cpu for r in rs],
                       'clean': all(r.clean() for r in rs)}
    figs['overhead'] = {'vms': run.get('load_vms'), 'reps': len(dm), 'floor': side(fl),
                        'daemon': side(dm), 'median': {
                            'floor_verdicts_per_s': f_vps, 'daemon_verdicts_per_s': d_vps,
                            'floor_p50_ms': f_p50, 'daemon_p50_ms': d_p50,
                            'floor_p99_ms': f_p99, 'daemon_p99_ms': d_p99},
                        'throughput_ratio': tp, 'p50_ratio': p50, 'p99_ratio': p99}
    n = '%d+%d runs' % (len(fl), len(dm))
    T.add('overhead', 'floor/daemon throughput (median, %s)' % n,
          '%.2fx (floor %.0f/s, daemon %.0f/s)' % (tp, f_vps, d_vps), '<= 1.3x', tp <= 1.3, tp)
    T.add('overhead', '  spread of the runs (verdicts/s)',
          'floor %s, daemon %s' % (spread([r.vps for r in fl], '%.0f'),
                                   spread([r.vps for r in dm], '%.0f')), 'informational', None)
    T.add('overhead', 'daemon/floor p99 turnaround (median)',
          '%.2fx (floor %.3f ms, daemon %.3f ms)' % (p99, f_p99, d_p99), '<= 1.3x', p99 <= 1.3,
          p99)
    T.add('overhead', '  spread of the runs (p99 ms)',
          'floor %s, daemon %s' % (spread([r.lat('p99') for r in fl], '%.3f'),
                                   spread([r.lat('p99') for r in dm], '%.3f')),
          'informational', None)
    pairs = [d.lat('p99') / f.lat('p99') for f, d in zip(fl, dm) if f.lat('p99')]
    figs['overhead']['paired_p99_ratios'] = pairs
    T.add('overhead', '  p99 ratio of each floor/daemon pair',
          ', '.join('%.2fx' % x for x in pairs), 'informational', None)
    T.add('overhead', 'daemon/floor p50 turnaround (median)',
          '%.2fx (floor %.3f ms, daemon %.3f ms)' % (p50, f_p50, d_p50), 'informational', None,
          p50)
    f_cpu = median([r.cpu_ns_per_verdict for r in fl])
    d_cpu = median([r.cpu_ns_per_verdict for r in dm])
    if f_cpu and d_cpu:
        figs['overhead']['cpu_ratio'] = d_cpu / f_cpu
        T.add('overhead', 'daemon/floor CPU per verdict (median)',
              '%.2fx (floor %.2f us, daemon %.2f us)' % (d_cpu / f_cpu, f_cpu / 1e3, d_cpu / 1e3),
              'informational', None, d_cpu / f_cpu)
    vms = run.get('load_vms')
    T.add('overhead', 'daemon verdicts/s, %s VMs (issue 7)' % vms, '%.0f' % d_vps,
          '>= 100000', d_vps >= 100000, d_vps)
    T.add('overhead', 'daemon verdicts/s, %s VMs (design §10)' % vms, '%.0f' % d_vps,
          '>= 50000', d_vps >= 50000, d_vps)
    gen = max((r.gen_cpu or 0) for r in fl)
    T.add('overhead', 'snp-kvmsim CPU in the floor runs', '%.2f cores' % gen, 'informational',
          None, gen)
    if gen >= 0.9:
        notes.append('snp-kvmsim used %.2f cores in the floor runs: on %s cores the generator '
                     'and the peer compete for the CPU, so verdicts/s are a machine-wide '
                     'figure, not the daemon\'s ceiling' % (gen, run.get('cpus')))
    if not all(r.clean() for r in fl + dm):
        notes.append('an overhead run had wipes or bad responses')


def psp_one(raw, name, idle_name):
    """One PSP run: the daemon's CPU per request against the mean firmware time."""
    p = Run(raw, name)
    fw = fw_mean_s(p.m) if p.ok else None
    if not (p.ok and fw and p.cpu_ns_per_verdict):
        return None
    idle = load_json(os.path.join(raw, idle_name)) or {}
    idle_ns_s = idle['cpu_ns'] / idle['seconds'] if idle.get('seconds') else None
    net = None
    if idle_ns_s is not None:
        net = max(p.p['cpu_ns'] - idle_ns_s * p.k['duration_s'], 0) / p.verdicts
    return {'daemon_cpu_ns_per_request': p.cpu_ns_per_verdict,
            'firmware_mean_ms': fw * 1e3,
            'cost_percent': 100.0 * p.cpu_ns_per_verdict / (fw * 1e9),
            'requests': p.verdicts, 'requests_per_s': p.vps,
            'idle_cpu_ns_per_s': idle_ns_s, 'net_cpu_ns_per_request': net,
            'net_cost_percent': None if net is None else 100.0 * net / (fw * 1e9),
            'clean': p.clean()}


def psp(raw, run, T, figs, notes):
    # PSP_REPS runs on fresh daemons (daemon-psp-N); a results directory of an older harness
    # has one run named daemon-psp.
    runs = [psp_one(raw, 'daemon-psp-%d' % i, 'daemon-idle-%d.json' % i)
            for i in range(1, (run.get('psp_reps') or 1) + 1)]
    if not any(runs):
        runs = [psp_one(raw, 'daemon-psp', 'daemon-idle.json')]
    runs = [r for r in runs if r]
    if not runs:
        T.add('overhead', 'daemon CPU / PSP time (8 ms report)', 'not measured', '< 1%', None)
        return
    pct = median([r['cost_percent'] for r in runs])
    cpu = median([r['daemon_cpu_ns_per_request'] for r in runs])
    fw = median([r['firmware_mean_ms'] for r in runs])
    nets = [r['net_cost_percent'] for r in runs if r['net_cost_percent'] is not None]
    figs['psp'] = {'daemon_cpu_ns_per_request': cpu, 'firmware_mean_ms': fw,
                   'cost_percent': pct, 'runs': runs,
                   'net_cost_percent': median(nets) if nets else None,
                   'clean': all(r['clean'] for r in runs)}
    T.add('overhead', 'daemon CPU / PSP time (8 ms report%s)' % (
              ', median of %d runs' % len(runs) if len(runs) > 1 else ''),
          '%.3f%% (%.1f us of %.2f ms)' % (pct, cpu / 1e3, fw), '< 1%', pct < 1.0, pct)
    if len(runs) > 1:
        T.add('overhead', '  each run (%)', ', '.join('%.3f' % r['cost_percent'] for r in runs),
              'informational', None, None)
    if nets:
        T.add('overhead', '  daemon idle CPU; net of idle per request (median)',
              '%.1f us/s idle; %.3f%% at %.0f req/s' % (
                  median([r['idle_cpu_ns_per_s'] for r in runs
                          if r['idle_cpu_ns_per_s'] is not None]) / 1e3,
                  median(nets), median([r['requests_per_s'] for r in runs])),
              'informational', None, median(nets))
    if not figs['psp']['clean']:
        notes.append('PSP run had wipes or verification failures')


def scale(raw, run, T, figs, notes):
    sizes = run.get('scale_sizes') or []
    rs = [(n, Run(raw, 'scale-%d' % n)) for n in sizes]
    rs = [(n, r) for n, r in rs if r.ok and r.cpu_ns_per_verdict]
    if len(rs) < 2:
        T.add('scale', 'daemon CPU/request across VM counts', 'not measured', '<= 1.2x', None)
        if sizes:
            scale_latency(raw, run, T, figs, notes, sizes[-1])
        return
    pts = []
    for n, r in rs:
        # Steady state: daemon CPU over GUEST_REQs received between two instants of the run.
        st = load_json(os.path.join(raw, 'scale-%d.steady.json' % n)) or {}
        # GUEST_REQs in the window: from snpctl status (bench/run.sh); runs kept from before
        # read them from two /metrics scrapes.
        if isinstance(st.get('guest_reqs_a'), int) and isinstance(st.get('guest_reqs_b'), int):
            reqs = st['guest_reqs_b'] - st['guest_reqs_a']
        else:
            ma, mb = (Prom(os.path.join(raw, 'scale-%d.steady-%s.metrics' % (n, x)))
                      for x in 'ab')
            key = 'snp_attestd_guest_requests_received_total'
            reqs = (mb.get(key) or 0) - (ma.get(key) or 0)
        steady = st['cpu_ns'] / reqs if reqs > 0 and 'cpu_ns' in st else None
        fr = Run(raw, 'scale-floor-%d' % n)
        during = None
        try:
            with open(os.path.join(raw, 'scale-%d.during-rss' % n)) as f:
                during = int(f.read().strip()) / 1024.0
        except (OSError, ValueError):
            pass
        pts.append({'vms': n, 'rate_per_s': r.paced_rate, 'verdicts': r.verdicts,
                    'cpu_ns_per_request': steady or r.cpu_ns_per_verdict,
                    'cpu_ns_per_request_steady': steady, 'steady_requests': reqs,
                    'steady_window_s': st.get('window_s'),
                    'cpu_ns_per_request_whole_run': r.cpu_ns_per_verdict,
                    'p50_ms': r.lat('p50'),
                    'p99_ms': r.lat('p99'), 'vmrss_mib': during,
                    'floor_p50_ms': fr.lat('p50') if fr.ok else None,
                    'floor_p99_ms': fr.lat('p99') if fr.ok else None,
                    'vmhwm_mib': r.p.get('hwm_kib', 0) / 1024.0 or None,
                    'pace_missed': r.k.get('pace_missed'), 'clean': r.clean()})
    cpu = [p['cpu_ns_per_request'] for p in pts]
    lo, hi = pts[0], pts[-1]
    ratio = hi['cpu_ns_per_request'] / lo['cpu_ns_per_request']
    worst = max(cpu) / min(cpu)
    rates = [p['rate_per_s'] for p in pts]
    figs['scale'] = {'target_rate_per_s': run.get('scale_rate'), 'points': pts,
                     'cpu_ratio_last_first': ratio, 'cpu_ratio_max_min': worst,
                     'rate_spread': max(rates) / min(rates) if min(rates) else None}
    T.add('scale', 'offered = achieved rate at every size',
          '%s/s (target %s/s)' % (spread(rates, '%.0f'), run.get('scale_rate')),
          'same at every size', None)
    T.add('scale', 'daemon CPU/request %d vs %d VMs (steady)' % (hi['vms'], lo['vms']),
          '%.2fx (%.1f vs %.1f us)' % (ratio, hi['cpu_ns_per_request'] / 1e3,
                                     lo['cpu_ns_per_request'] / 1e3), '<= 1.2x', ratio <= 1.2,
          ratio)
    T.add('scale', 'daemon CPU/request max/min over sizes',
          '%.2fx (%s us)' % (worst, ' / '.join('%.1f' % (c / 1e3) for c in cpu)), '<= 1.2x',
          worst <= 1.2, worst)
    T.add('scale', '  whole run incl. VM_ADD/REMOVE (us)',
          ' / '.join('%.1f' % (p['cpu_ns_per_request_whole_run'] / 1e3) for p in pts),
          'informational', None)
    if not all(p['cpu_ns_per_request_steady'] for p in pts):
        notes.append('scale: no steady-state CPU window for some size; whole-run CPU used')
    T.add('scale', 'daemon latency p50/p99 per VM count (ms)',
          ', '.join('%d: %.3f/%.3f' % (p['vms'], p['p50_ms'], p['p99_ms']) for p in pts),
          'informational', None)
    if all(p['floor_p99_ms'] is not None for p in pts):
        T.add('scale', 'floor latency p50/p99, same load (ms)',
              ', '.join('%d: %.3f/%.3f' % (p['vms'], p['floor_p50_ms'], p['floor_p99_ms'])
                        for p in pts), 'informational', None)
    m1k = [p for p in pts if p['vms'] == 1000]
    if m1k and m1k[0]['vmhwm_mib']:
        h = m1k[0]['vmhwm_mib']
        T.add('scale', 'daemon VmHWM at 1,000 VMs', '%.1f MiB' % h, '<= 32 MiB', h <= 32, h)
    else:
        T.add('scale', 'daemon VmHWM at 1,000 VMs', 'not measured', '<= 32 MiB', None)
    T.add('scale', 'daemon VmHWM per VM count (MiB)',
          ', '.join('%d: %.1f' % (p['vms'], p['vmhwm_mib'] or 0) for p in pts), 'informational',
          None)
    scale_latency(raw, run, T, figs, notes, sizes[-1])
    if max(rates) > 1.05 * min(rates):
        notes.append('scale runs did not reach the same rate (%s/s): the per-request figures '
                     'are less comparable' % spread(rates, '%.0f'))
    if not all(p['clean'] for p in pts):
        notes.append('a scale run had wipes or bad responses')


def scale_latency(raw, run, T, figs, notes, n):
    """Daemon and floor alternating at the largest size (bench/run.sh): medians of p50/p99."""
    reps = run.get('scale_lat_reps') or 0
    pairs = [(Run(raw, 'scale-lat-%d-%d' % (n, i)), Run(raw, 'scale-lat-floor-%d-%d' % (n, i)))
             for i in range(1, reps + 1)]
    pairs = [(d, f) for d, f in pairs if d.ok and f.ok]
    name = 'daemon p99 vs floor at %d VMs (median of alternating runs)' % n
    if not pairs:
        T.add('scale', name, 'not measured', '<= 1.3x', None)
        return
    d99 = median([d.lat('p99') for d, _ in pairs])
    f99 = median([f.lat('p99') for _, f in pairs])
    ratio = d99 / f99 if f99 > 0 else None
    figs.setdefault('scale', {})['latency_at_max'] = {
        'vms': n, 'reps': len(pairs),
        'daemon_p50_ms': [d.lat('p50') for d, _ in pairs],
        'daemon_p99_ms': [d.lat('p99') for d, _ in pairs],
        'floor_p50_ms': [f.lat('p50') for _, f in pairs],
        'floor_p99_ms': [f.lat('p99') for _, f in pairs],
        'daemon_p99_median_ms': d99, 'floor_p99_median_ms': f99, 'p99_ratio': ratio,
        'clean': all(d.clean() and f.clean() for d, f in pairs)}
    T.add('scale', name,
          '%.2fx (%.3f vs %.3f ms; %d pairs, runs %s)' % (
              ratio or 0, d99, f99, len(pairs),
              ' '.join('%.2f/%.2f' % (d.lat('p99'), f.lat('p99')) for d, f in pairs)),
          '<= 1.3x', ratio is not None and ratio <= 1.3, ratio)
    if not figs['scale']['latency_at_max']['clean']:
        notes.append('a scale latency run had wipes or bad responses')


def sched(raw, run, T, figs, notes):
    sch = load_json(os.path.join(raw, 'sched.json'))
    if not sch or len(sch.get('results', [])) < 2:
        T.add('scale', 'sched policy ns/req', 'not measured', '<= 1.2x', None)
        return
    lo, hi = sch['results'][0], sch['results'][-1]
    # The design's target is the daemon's CPU per request (the scale rows above). This is the
    # policy alone, in-process, no I/O: its growth with the VM count is shown, and what it adds
    # is set against the daemon's own CPU per request at the largest size.
    pts = (figs.get('scale') or {}).get('points') or []
    big = [p for p in pts if p.get('vms') == hi['vms'] and p.get('cpu_ns_per_request')]
    for pat in ('direct', 'queued'):
        r = hi[pat + '_ns'] / lo[pat + '_ns'] if lo[pat + '_ns'] else math.inf
        add = hi[pat + '_ns'] - lo[pat + '_ns']
        share = (', +%.0f ns = %.2f%% of the daemon\'s CPU/request at %d VMs' % (
            add, 100.0 * add / big[0]['cpu_ns_per_request'], hi['vms']) if big else '')
        T.add('scale', 'sched policy %s ns/req %d vs %d VMs' % (pat, hi['vms'], lo['vms']),
              '%.2fx (%s ns%s)' % (r, ' / '.join('%.0f' % x[pat + '_ns'] for x in sch['results']),
                                   share),
              'informational', None, r)
    figs['sched'] = sch


def fair_phase(raw, name):
    """Quiet VMs' admitted rates, their merged per-VM admission wait histogram, the flooder's."""
    r = Run(raw, name)
    if not r.ok:
        return None
    quiet = [str(v['vm']) for v in r.k['per_vm'] if not v.get('noisy')]
    noisy = [str(v['vm']) for v in r.k['per_vm'] if v.get('noisy')]
    hname = 'snp_attestd_vm_admission_wait_seconds'
    m = r.m
    # The per-VM series may go with VM_REMOVE at the end of the run: then the last sample
    # taken while the VMs were live stands in for the final scrape.
    if not any(m.buckets(hname, vm=v) for v in quiet):
        samples = sorted(glob.glob(os.path.join(raw, name + '.sample.*')),
                         key=lambda p: int(p.rsplit('.', 1)[1]))
        for sp in reversed(samples):
            s = Prom(sp)
            if any(s.buckets(hname, vm=v) for v in quiet):
                m = s
                break
    dur = r.k['duration_s']
    per_vm = []
    for v in r.k['per_vm']:
        vid = str(v['vm'])
        b = m.buckets(hname, vm=vid)
        adm = m.get('snp_attestd_admitted_total', vm=vid)
        q = bucket_quantile(b, 0.99) if b else None
        per_vm.append({'vm': vid, 'noisy': bool(v.get('noisy')),
                       'admitted': adm, 'completed': v['completed'], 'busy': v['busy'],
                       'admitted_per_s': (adm if adm is not None else v['completed']) / dur,
                       'wait_p99_bucket_ms': [x * 1e3 for x in q] if q else None,
                       'kvmsim_p99_ms': v['p99_ms']})
    merged = {}
    for v in quiet:
        for le, c in m.buckets(hname, vm=v).items():
            merged[le] = merged.get(le, 0) + c
    q = bucket_quantile(merged, 0.99)
    fw = fw_mean_s(m)
    fwq = bucket_quantile(m.buckets('snp_attestd_firmware_seconds'), 0.99)
    # PSP idle while admissible work waited. Sampled: /metrics every 110 ms, a sample counts
    # when queue_depth > 0 and a slot is free. The daemon's counters, when present, add the
    # slot hand-offs (GUEST_DONE receipt to the next queued request's ALLOW) and their time.
    n_s = n_q = n_idle = 0
    for sp in glob.glob(os.path.join(raw, name + '.sample.*')):
        s = Prom(sp)
        if s.get('snp_attestd_queue_depth') is None:
            continue
        n_s += 1
        if s.get('snp_attestd_queue_depth') > 0:
            n_q += 1
            if s.get('snp_attestd_psp_slots_busy', 0) < s.get('snp_attestd_psp_slots', 1):
                n_idle += 1
    idle = {'samples': n_s, 'samples_queued': n_q, 'samples_idle_with_queue': n_idle,
            'stale_inflight_freed': m.get('snp_attestd_stale_inflight_freed_total')}
    if m.has('snp_attestd_psp_idle_while_waiting_seconds_total'):
        idle['handoffs'] = m.get('snp_attestd_psp_idle_while_waiting_total', 0)
        idle['handoff_seconds'] = m.get('snp_attestd_psp_idle_while_waiting_seconds_total', 0)
        idle['psp_busy_seconds'] = m.get('snp_attestd_firmware_seconds_sum')
    rates = [p['admitted_per_s'] for p in per_vm if not p['noisy']]
    return {'quiet_vms': len(quiet), 'noisy_vms': len(noisy), 'duration_s': dur,
            'per_vm': per_vm, 'jain_quiet': jain(rates),
            'quiet_wait_p99_bucket_ms': [x * 1e3 for x in q] if q else None,
            'quiet_wait_buckets': {('+Inf' if le == math.inf else '%g' % le): c
                                   for le, c in sorted(merged.items())},
            'quiet_admitted': merged.get(math.inf, 0),
            'firmware_mean_ms': fw * 1e3 if fw else None,
            'firmware_p99_bucket_ms': [x * 1e3 for x in fwq] if fwq else None,
            'quiet_busy': sum(p['busy'] for p in per_vm if not p['noisy']),
            'noisy_admitted_per_s': [p['admitted_per_s'] for p in per_vm if p['noisy']],
            'noisy_busy': [p['busy'] for p in per_vm if p['noisy']],
            'psp_idle_while_waiting': idle, 'clean': r.clean()}


def fairness(raw, run, T, figs, notes):
    fl, base = fair_phase(raw, 'fairness'), fair_phase(raw, 'fair-base')
    if not fl:
        T.add('fairness', "Jain's index", 'not measured', '>= 0.99', None)
        return
    figs['fairness'] = {'quiet_vms': fl['quiet_vms'], 'quiet_total_rate': run.get('fair_rate'),
                        'flood_rate': run.get('flood_rate'),
                        'quiet_utilisation': (run.get('fair_rate') or 0) *
                        (fl['firmware_mean_ms'] or 8) / 1e3,
                        'flood': fl, 'no_flood': base}
    j = fl['jain_quiet']
    T.add('fairness', "Jain's index, %d quiet VMs (%d flooders)" % (fl['quiet_vms'],
                                                                   fl['noisy_vms']),
          '%.4f' % j if j is not None else 'n/a',
          '>= 0.99', None if j is None else j >= 0.99, j)
    fw = fl['firmware_mean_ms']
    lim = fw + 1.0 if fw else None
    for ph, lab in ((fl, 'flood'), (base, 'no flood')):
        if not ph:
            continue
        b = ph['quiet_wait_p99_bucket_ms']
        if b and lim:
            ok = True if b[1] <= lim else (False if b[0] >= lim else None)
            T.add('fairness', 'quiet p99 admission wait (%s)' % lab,
                  '%.3g..%.3g ms bucket%s' % (b[0], b[1], '' if ok is not None else
                                              ' (straddles)'),
                  '<= %.2f ms (slot+1)' % lim, ok if lab == 'flood' else None,
                  b[1])
        else:
            T.add('fairness', 'quiet p99 admission wait (%s)' % lab, 'not measured',
                  '<= slot + 1 ms', None)
    for ph, lab in ((fl, 'flood'), (base, 'no flood')):
        bk = {(math.inf if k == '+Inf' else float(k)): c
              for k, c in (ph or {}).get('quiet_wait_buckets', {}).items()}
        over = [le for le in sorted(bk) if lim and le * 1e3 >= lim]
        if bk and over:
            total = bk.get(math.inf, 0)
            n_over = total - bk[over[0]]
            ph['quiet_over_limit'] = {'bound_ms': over[0] * 1e3, 'count': n_over,
                                      'of': total}
            T.add('fairness', '  quiet requests waiting > %g ms (%s)' % (over[0] * 1e3, lab),
                  '%d of %d' % (n_over, total), 'informational', None, n_over)
    if fw:
        fq = fl.get('firmware_p99_bucket_ms')
        T.add('fairness', 'PSP slot (mean firmware time; p99 bucket)',
              '%.2f ms%s' % (fw, '; %.3g..%.3g ms' % tuple(fq) if fq else ''), 'informational',
              None, fw)
    T.add('fairness', 'flooder admitted/s, BUSY answers',
          ', '.join('%.1f/s, %d' % (a, b) for a, b in zip(fl['noisy_admitted_per_s'],
                                                          fl['noisy_busy'])) or 'n/a',
          'informational', None)
    T.add('fairness', 'BUSY answers to quiet VMs (flood / no flood)',
          '%d / %s' % (fl['quiet_busy'], base['quiet_busy'] if base else 'n/a'),
          '0 (informational)', None, fl['quiet_busy'])
    idle = fl['psp_idle_while_waiting']
    T.add('fairness', 'PSP idle while a request waited (sampled)',
          '%d of %d samples with a queue (%d scrapes)' % (
              idle['samples_idle_with_queue'], idle['samples_queued'], idle['samples']),
          '0', idle['samples_idle_with_queue'] == 0 if idle['samples'] else None,
          idle['samples_idle_with_queue'])
    if 'handoffs' in idle:
        busy = idle.get('psp_busy_seconds')
        T.add('fairness', '  slot hand-offs with work queued (counters)',
              '%d, %.3f ms in all (mean %.1f us%s)' % (
                  idle['handoffs'], idle['handoff_seconds'] * 1e3,
                  idle['handoff_seconds'] * 1e6 / idle['handoffs'] if idle['handoffs'] else 0,
                  ', %.3f%% of PSP busy time' % (100 * idle['handoff_seconds'] / busy)
                  if busy else ''), 'informational', None, idle['handoff_seconds'])
    else:
        notes.append('the daemon exports no snp_attestd_psp_idle_while_waiting_* counters: '
                     'only the 110 ms samples judge PSP idle time')
    if idle.get('stale_inflight_freed') is not None:
        T.add('fairness', 'slots freed only by the stale in-flight timeout',
              '%d' % idle['stale_inflight_freed'], '0', idle['stale_inflight_freed'] == 0,
              idle['stale_inflight_freed'])
    if not fl['clean'] or (base and not base['clean']):
        notes.append('a fairness run had wipes or verification failures')


def startup(raw, run, T, figs, notes):
    s = load_json(os.path.join(raw, 'startup.json'))
    if not s or not s.get('ready') or not s.get('check_config'):
        T.add('startup', 'READY (warm cache, KDS down)', 'not measured', '<= 50 ms', None)
        return
    st = load_json(os.path.join(raw, 'startup.status.json'))
    s['status_after'] = st
    figs['startup'] = s
    rd, ck = s['ready'], s['check_config']
    ratio = s.get('ratio_median')
    T.add('startup', 'READY / --check-config (medians, %d runs)' % rd['n'],
          '%.2fx (%.1f vs %.1f ms)' % (ratio, rd['median_ms'], ck['median_ms']),
          'informational', None, ratio)
    T.add('startup', 'READY after start, warm cache, KDS down',
          'median %.1f ms, max %.1f ms' % (rd['median_ms'], rd['max_ms']), '<= 50 ms (median)',
          rd['median_ms'] <= 50, rd['median_ms'])
    src = ((st or {}).get('chain') or {}).get('source')
    T.add('startup', 'chain at start with the KDS down', 'from %s' % src if src else 'none',
          'from cache', src == 'cache', src)
    if s.get('ready_missing'):
        notes.append('%d start-up run(s) sent no READY=1 within the timeout' % s['ready_missing'])


def vmm(raw, run, T, figs, notes):
    """The VMM socket path against a do-nothing peer, and the upstream fleet's fairness."""
    reps = run.get('vmm_reps') or run.get('overhead_reps') or 1
    fl = [load_json(os.path.join(raw, 'vmm-floor-%d.json' % i)) for i in range(1, reps + 1)]
    dm = [load_json(os.path.join(raw, 'vmm-daemon-%d.json' % i)) for i in range(1, reps + 1)]
    fl = [x for x in fl if x and x.get('calls')]
    dm = [x for x in dm if x and x.get('calls')]
    if not fl or not dm:
        T.add('vmm', 'VMM socket: daemon against a do-nothing peer', 'not measured', '<= 1.3x',
              None)
        return
    ft, dt = median([x['calls_per_s'] for x in fl]), median([x['calls_per_s'] for x in dm])
    fp, dp = median([x['p99_us'] for x in fl]), median([x['p99_us'] for x in dm])
    rt, rp = ft / dt, dp / fp
    fig = {'floor': fl, 'daemon': dm, 'throughput_ratio': rt, 'p99_ratio': rp}
    vms = dm[0]['vms']
    T.add('vmm', 'VMM socket throughput, peer / daemon (%d VMs, median of %d)' % (vms, len(dm)),
          '%.2fx (%.0f vs %.0f calls/s; daemon %s)' % (rt, ft, dt, spread(
              [x['calls_per_s'] for x in dm], '%.0f')), '<= 1.3x', rt <= 1.3, rt)
    pairs = ' '.join('%.0f/%.0f' % (d['p99_us'], f['p99_us']) for d, f in zip(dm, fl))
    T.add('vmm', 'VMM socket p99 of request_certs, daemon / peer (median of %d)' % len(dm),
          '%.2fx (%.0f vs %.0f us; runs %s)' % (rp, dp, fp, pairs), '<= 1.3x', rp <= 1.3, rp)
    undecided = sum(x['again'] + x['other_source'] for x in dm)
    if undecided:
        notes.append('vmm: %d calls against the daemon were not answered by it in time' %
                     undecided)
    k = load_json(os.path.join(raw, 'vmm-fair.kvmsim.json'))
    if k and 'per_vm' in k:
        # The daemon's per-VM series carry its id (from the UUID); the info series names the
        # VM kvmsim-<kvmsim id>. The last sample with the quiet VMs' series stands for the run.
        quiet = {'kvmsim-%d' % v['vm'] for v in k['per_vm'] if not v.get('noisy')}
        samples = sorted(glob.glob(os.path.join(raw, 'vmm-fair.sample.*')),
                         key=lambda p: int(p.rsplit('.', 1)[1]))
        rates = asked = None
        for sp in reversed(samples):
            s = Prom(sp)
            ids = {lab['name']: lab['vm'] for n, lab, _ in s.samples
                   if n == 'snp_attestd_vmm_vm_info' and lab.get('name') in quiet}
            if len(ids) == len(quiet):
                rates = [s.get('snp_attestd_admitted_total', 0, vm=ids[q]) for q in sorted(quiet)]
                asked = [s.get('snp_attestd_guest_requests_total', 0, vm=ids[q], type='report')
                         for q in sorted(quiet)]
                break
        up = k.get('upstream') or {}
        # Only extended report requests reach the daemon, and which of a guest's requests are
        # extended is the workload's random mix: the VMs' demands differ, so fairness is each
        # VM's share of what it asked that was admitted (equal shares: index 1).
        shares = [a / r for a, r in zip(rates, asked) if r] if rates else None
        fig['fairness'] = {'quiet_vms': len(quiet), 'admitted': rates, 'asked': asked,
                           'upstream': up, 'totals': k.get('totals'),
                           'jain_admitted_share': jain(shares) if shares else None,
                           'jain_admitted_count': jain(rates) if rates else None}
        j = fig['fairness']['jain_admitted_share']
        T.add('vmm', "upstream fleet: Jain's index of each quiet VM's admitted share of its "
              'extended report requests, %d quiet VMs (%d flooders)' % (
                  len(quiet), len(k['per_vm']) - len(quiet)),
              '%.4f (of the counts: %.4f)' % (j, fig['fairness']['jain_admitted_count'])
              if j is not None else 'not measured', '>= 0.99',
              None if j is None else j >= 0.99, j)
        t = k.get('totals') or {}
        T.add('vmm', 'upstream fleet: wipes, verification failures',
              '%s, %s' % (t.get('vmpck_wipes'), t.get('verify_failures')), '0, 0',
              t.get('vmpck_wipes') == 0 and t.get('verify_failures') == 0)
    figs['vmm'] = fig


def plots(raw, out, figs, notes):
    gp = shutil.which('gnuplot')
    if not gp:
        notes.append('gnuplot not found: no plots')
        return []
    made, script = [], ['set terminal pngcairo size 1000,420 font ",10"' if
                        subprocess.run([gp, '-e', 'set terminal pngcairo'],
                                       capture_output=True).returncode == 0 else
                        'set terminal png size 1000,420']
    sc = figs.get('scale')
    if sc and sc.get('points'):
        dat = os.path.join(raw, 'scale.dat')
        with open(dat, 'w') as f:
            f.write('# vms p50_ms p99_ms cpu_us_per_req vmhwm_mib floor_p50 floor_p99\n')
            for p in sc['points']:
                f.write('%d %g %g %g %g %s %s\n' % (
                    p['vms'], p['p50_ms'], p['p99_ms'], p['cpu_ns_per_request'] / 1e3,
                    p['vmhwm_mib'] or 0, '%g' % p['floor_p50_ms'] if p['floor_p50_ms']
                    is not None else 'NaN', '%g' % p['floor_p99_ms'] if p['floor_p99_ms']
                    is not None else 'NaN'))
        png = os.path.join(out, 'scale.png')
        script += [
            'set output "%s"' % png, 'set multiplot layout 1,2 title "snp-attestd scale: '
            'same aggregate rate (%s/s) at every VM count"' % sc['target_rate_per_s'],
            'set logscale x', 'set xlabel "VMs"', 'set grid', 'set key top left',
            'set ylabel "turnaround (ms, log)"', 'set title "latency"',
            'set logscale y',
            'plot "%s" u 1:2 w lp t "daemon p50", "" u 1:3 w lp t "daemon p99", '
            '"" u 1:6 w lp dt 2 t "floor p50", "" u 1:7 w lp dt 2 t "floor p99"' % dat,
            'unset logscale y',
            'set ylabel "daemon CPU per request (us)"', 'set y2label "VmHWM (MiB)"',
            'set y2tics', 'set yrange [0:*]', 'set y2range [0:*]',
            'set title "CPU per request and memory"', 'set key bottom right',
            'plot "%s" u 1:4 w lp t "CPU/request", "" u 1:5 axes x1y2 w lp t "VmHWM"' % dat,
            'unset multiplot', 'unset logscale x', 'unset y2tics', 'unset y2label',
            'set yrange [*:*]']
        made.append(png)
    fr = figs.get('fairness')
    if fr:
        dat = os.path.join(raw, 'fairness.dat')
        lim = (fr['flood']['firmware_mean_ms'] or 0) + 1
        with open(dat, 'w') as f:
            f.write('# vm flood_rate flood_wait_p99 noflood_rate noflood_wait_p99 noisy\n')
            # One row per flooder (F1..), then the quiet VMs in order (q1..), the same
            # quiet VM of both phases side by side (their vm ids differ by the flooders).
            fq = [p for p in fr['flood']['per_vm'] if not p['noisy']]
            ff = [p for p in fr['flood']['per_vm'] if p['noisy']]
            bq = [p for p in (fr['no_flood'] or {}).get('per_vm', []) if not p['noisy']]
            rows = [('F%d' % (i + 1), p, None) for i, p in enumerate(ff)]
            rows += [('q%d' % (i + 1), p, bq[i] if i < len(bq) else None)
                     for i, p in enumerate(fq)]
            w99 = lambda p: p['wait_p99_bucket_ms'][1] if p and p['wait_p99_bucket_ms'] else 0
            for lab, p, b in rows:
                f.write('%s %g %g %g %g %d\n' % (
                    lab, p['admitted_per_s'], min(w99(p), 200),
                    b['admitted_per_s'] if b else 0, min(w99(b), 200), 1 if p['noisy'] else 0))
        png = os.path.join(out, 'fairness.png')
        script += [
            'set output "%s"' % png,
            'set multiplot layout 1,2 title "fairness: %d quiet VMs (q) + %d flooder(s) (F), '
            'one PSP slot; +Inf bucket drawn at 200 ms"' % (fr['quiet_vms'],
                                                            fr['flood']['noisy_vms']),
            'set style data histograms', 'set style histogram clustered gap 1',
            'set style fill solid 0.8 border -1', 'set boxwidth 0.9', 'set grid ytics',
            'set xlabel "VM"', 'set key top right', 'set yrange [0:*]',
            'set ylabel "admitted requests/s"', 'set title "admitted rate per VM"',
            'plot "%s" u 2:xtic(1) t "with flooder", "" u 4 t "no flooder"' % dat,
            'set ylabel "p99 admission wait, bucket upper bound (ms)"',
            'set title "p99 admission wait per VM (slot+1 = %.1f ms)"' % lim,
            'plot "%s" u 3:xtic(1) t "with flooder", "" u 5 t "no flooder", '
            '%g w l lw 2 dt 2 t "slot+1 ms"' % (dat, lim),
            'unset yrange',
            'unset multiplot']
        made.append(png)
    if not made:
        return []
    gpf = os.path.join(raw, 'plots.gp')
    with open(gpf, 'w') as f:
        f.write('\n'.join(script) + '\n')
    r = subprocess.run([gp, gpf], capture_output=True, text=True)
    if r.returncode != 0:
        notes.append('gnuplot failed: %s' % r.stderr.strip().splitlines()[-1:])
        return []
    return [os.path.basename(p) for p in made]


def finite(o):
    """The document with every non-finite number as null (JSON has no Infinity)."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [finite(v) for v in o]
    return o


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('raw')
    ap.add_argument('--results', help='directory for <benchmark>.json, summary.txt, *.png')
    a = ap.parse_args()
    run = load_json(os.path.join(a.raw, 'run.json'))
    if run is None:
        print('report.py: no run.json in %s' % a.raw, file=sys.stderr)
        return 1
    T, notes, figs = Table(), [], {}
    for f in (overhead, psp, scale, sched, fairness, startup, vmm):
        try:
            f(a.raw, run, T, figs, notes)
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as e:
            notes.append('%s: raw figures unreadable (%s: %s)' % (f.__name__, type(e).__name__, e))
    la = run.get('loadavg') or []
    if la and run.get('cpus') and max(la) > 0.5 * run['cpus']:
        notes.append('the machine was busy with other work (load average %s on %s CPUs): '
                     'runs are sequential, so figures and ratios carry that noise; repeat '
                     'on an idle machine before judging a MISS' % (
                         ' -> '.join('%.2f' % x for x in la), run['cpus']))
    if a.results:
        os.makedirs(a.results, exist_ok=True)
    pngs = plots(a.raw, a.results, figs, notes) if a.results else []
    failed = run.get('failed') or []
    lines = ['snp-attestd benchmarks%s (commit %s, %s CPUs, kernel %s, load %s)' % (
        ' [quick: figures not meaningful]' if run.get('quick') else '', run.get('commit'),
        run.get('cpus'), run.get('host'), ' -> '.join('%.2f' % x for x in la)), T.render()]
    lines += ['note: ' + n for n in notes]
    if failed:
        lines.append('could not run: ' + ', '.join(failed))
    text = '\n'.join(lines) + '\n'
    print()
    print(text, end='')
    if a.results:
        os.makedirs(a.results, exist_ok=True)
        section = {'overhead': 'overhead', 'psp': 'overhead', 'scale': 'scale',
                   'sched': 'scale', 'fairness': 'fairness', 'startup': 'startup',
                   'vmm': 'vmm'}
        for b in BENCHMARKS:
            rows = [r for r in T.rows if r['section'] == section[b] and
                    (b not in ('psp', 'sched', 'overhead', 'scale') or
                     (b == 'psp') == ('PSP time' in r['metric']) and
                     (b == 'sched') == r['metric'].startswith('sched policy'))]
            doc = {'benchmark': b, 'run': run, 'ran': b in figs, 'rows': rows,
                   'figures': figs.get(b), 'notes': notes,
                   'plots': [p for p in pngs if p.startswith(b)]}
            with open(os.path.join(a.results, b + '.json'), 'w') as f:
                json.dump(finite(doc), f, indent=1, default=lambda o: None, allow_nan=False)
                f.write('\n')
        with open(os.path.join(a.results, 'summary.txt'), 'w') as f:
            f.write(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# bench/report.py: turns the raw figures of one bench/run.sh run into the table of design §10
# (metric, measured, target, PASS/MISS) and a JSON file. A MISS is information, not a failure:
# the exit status is non-zero only when the raw files cannot be read.
import argparse
import glob
import json
import math
import os
import sys


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def prom(path):
    """Prometheus text -> {name{labels}: value} (the labels kept verbatim)."""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                if not line.strip() or line.startswith('#'):
                    continue
                key, _, val = line.rstrip('\n').rpartition(' ')
                try:
                    out[key] = float(val)
                except ValueError:
                    pass
    except OSError:
        pass
    return out


def hist_quantile(m, name, q):
    """Upper bound (s) of the bucket holding quantile q of histogram name, or None."""
    buckets = []
    for k, v in m.items():
        if k.startswith(name + '_bucket{le="'):
            le = k[len(name) + 12:-2]
            buckets.append((math.inf if le == '+Inf' else float(le), v))
    buckets.sort()
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    for le, c in buckets:
        if c >= q * total:
            return le
    return None


def prom_sub(m, base):
    """The counters of m minus those of an earlier scrape of the same daemon."""
    return {k: v - base.get(k, 0) for k, v in m.items()}


def bucket_bounds(m, name, q):
    """(lower, upper) bound in s of the bucket holding quantile q, or None."""
    up = hist_quantile(m, name, q)
    if up is None:
        return None
    les = sorted(math.inf if k[len(name) + 12:-2] == '+Inf' else float(k[len(name) + 12:-2])
                 for k in m if k.startswith(name + '_bucket{le="'))
    i = les.index(up)
    return (les[i - 1] if i else 0.0, up)


def fw_mean_s(m):
    n = m.get('snp_attestd_firmware_seconds_count', 0)
    return m['snp_attestd_firmware_seconds_sum'] / n if n else None


class Run:
    def __init__(self, raw, name):
        self.ok = os.path.exists(os.path.join(raw, name + '.kvmsim.json'))
        self.k = load_json(os.path.join(raw, name + '.kvmsim.json')) or {}
        self.t = load_json(os.path.join(raw, name + '.kvmsim-time.json')) or {}
        self.p = load_json(os.path.join(raw, name + '.peer.json')) or {}
        self.m = prom(os.path.join(raw, name + '.metrics'))
        self.ok = self.ok and 'totals' in self.k and self.k.get('duration_s', 0) > 0

    @property
    def verdicts(self):
        return self.k['kernel']['verdicts']

    @property
    def vps(self):
        return self.verdicts / self.k['duration_s']

    @property
    def p99_ms(self):
        return self.k['latency_ms']['p99']

    @property
    def peer_ns_per_verdict(self):
        return self.p['cpu_ns'] / self.verdicts if self.verdicts and 'cpu_ns' in self.p else None

    @property
    def gen_cpu(self):
        """snp-kvmsim's CPU (both threads) in cores over its run (start-up and the wait for
        the broker are counted too, so this slightly overstates it)."""
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
    def __init__(self):
        self.rows = []

    def add(self, section, metric, measured, target, ok, value=None):
        """ok: True (PASS), False (MISS), None (n/a: not measured or informational)."""
        self.rows.append({'section': section, 'metric': metric, 'measured': measured,
                          'target': target,
                          'result': 'n/a' if ok is None else ('PASS' if ok else 'MISS'),
                          'value': value})

    def render(self):
        w = [max(len(r[k]) for r in self.rows + [{'metric': 'metric', 'measured': 'measured',
                                                    'target': 'target', 'result': 'result'}])
             for k in ('metric', 'measured', 'target', 'result')]
        line = '  '.join('-' * x for x in w)
        out = ['  '.join(h.ljust(x) for h, x in zip(('metric', 'measured', 'target',
                                                      'result'), w)), line]
        section = None
        for r in self.rows:
            if r['section'] != section:
                section = r['section']
                out.append('[%s]' % section)
            out.append('  '.join(r[k].ljust(x) for k, x in zip(
                ('metric', 'measured', 'target', 'result'), w)).rstrip())
        return '\n'.join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('raw')
    ap.add_argument('--out')
    a = ap.parse_args()
    run = load_json(os.path.join(a.raw, 'run.json'))
    if run is None:
        print('report.py: no run.json in %s' % a.raw, file=sys.stderr)
        return 1
    T = Table()
    notes = []
    figs = {'run': run}

    # --- 1. overhead ---
    d = Run(a.raw, 'daemon-load')
    floors = {n: Run(a.raw, 'floor-' + n) for n in ('null-broker', 'bench-null')}
    floors = {n: f for n, f in floors.items() if f.ok}
    if d.ok and floors:
        best_tp = max(floors.items(), key=lambda kv: kv[1].vps)
        best_p99 = min(floors.items(), key=lambda kv: kv[1].p99_ms)
        tp_ratio = best_tp[1].vps / d.vps if d.vps else math.inf
        p99_ratio = d.p99_ms / best_p99[1].p99_ms if best_p99[1].p99_ms else math.inf
        figs['overhead'] = {
            'daemon': {'verdicts_per_s': d.vps, 'p99_ms': d.p99_ms,
                       'cpu_ns_per_verdict': d.peer_ns_per_verdict,
                       'kvmsim_cpu_cores': d.gen_cpu},
            'floors': {n: {'verdicts_per_s': f.vps, 'p99_ms': f.p99_ms,
                           'cpu_ns_per_verdict': f.peer_ns_per_verdict,
                           'kvmsim_cpu_cores': f.gen_cpu} for n, f in floors.items()},
            'throughput_ratio': tp_ratio, 'p99_ratio': p99_ratio,
        }
        T.add('overhead', 'floor/daemon throughput (PSP free)',
              '%.2fx (%s %.0f/s, daemon %.0f/s)' % (tp_ratio, best_tp[0], best_tp[1].vps, d.vps),
              '<= 1.3x', tp_ratio <= 1.3, tp_ratio)
        T.add('overhead', 'daemon/floor p99 turnaround',
              '%.2fx (%s %.3f ms, daemon %.3f ms)' % (p99_ratio, best_p99[0],
                                                     best_p99[1].p99_ms, d.p99_ms),
              '<= 1.3x', p99_ratio <= 1.3, p99_ratio)
        T.add('overhead', 'daemon verdicts/s', '%.0f' % d.vps, '>= 50000', d.vps >= 50000, d.vps)
        gen = max((f.gen_cpu or 0) for f in floors.values())
        T.add('overhead', 'snp-kvmsim CPU in the floor run', '%.2f cores' % gen,
              'informational', None, gen)
        if max(f.vps for f in floors.values()) < 50000:
            notes.append('The load generator itself caps below 50,000 verdicts/s against the '
                         'do-nothing floor (best floor %.0f/s, snp-kvmsim using %.2f cores of %s):'
                         ' the absolute target cannot be judged with this generator.'
                         % (best_tp[1].vps, gen, run.get('cpus')))
        elif gen >= 0.9:
            notes.append('snp-kvmsim used %.2f cores in the floor run: on %s cores the generator '
                         'and the peer compete for the CPU, so verdicts/s are a machine-wide '
                         'figure, not the daemon\'s ceiling.' % (gen, run.get('cpus')))
        for n, f in floors.items():
            if not f.clean():
                notes.append('floor %s run had wipes or bad responses' % n)
        if not d.clean():
            notes.append('daemon load run had wipes or bad responses')
    else:
        T.add('overhead', 'floor/daemon throughput (PSP free)', 'not measured', '<= 1.3x', None)

    # --- 1b. cost against the PSP report time ---
    p = Run(a.raw, 'daemon-psp')
    if p.ok and fw_mean_s(p.m) and p.peer_ns_per_verdict:
        fw = fw_mean_s(p.m)
        pct = 100.0 * p.peer_ns_per_verdict / (fw * 1e9)
        figs['psp'] = {'daemon_cpu_ns_per_request': p.peer_ns_per_verdict,
                       'firmware_mean_ms': fw * 1e3, 'cost_percent': pct,
                       'requests': p.verdicts, 'clean': p.clean()}
        T.add('overhead', 'daemon CPU / PSP time (8 ms report)',
              '%.3f%% (%.1f us of %.2f ms)' % (pct, p.peer_ns_per_verdict / 1e3, fw * 1e3),
              '< 1%', pct < 1.0, pct)
        if not p.clean():
            notes.append('PSP run had wipes or verification failures')
    else:
        T.add('overhead', 'daemon CPU / PSP time (8 ms report)', 'not measured', '< 1%', None)

    # --- 2. scale ---
    s10, sbig = Run(a.raw, 'scale-10'), Run(a.raw, 'scale-big')
    big = run.get('scale_big')
    if s10.ok and sbig.ok and s10.peer_ns_per_verdict and sbig.peer_ns_per_verdict:
        ratio = sbig.peer_ns_per_verdict / s10.peer_ns_per_verdict
        figs['scale'] = {'cpu_ns_per_request_10': s10.peer_ns_per_verdict,
                         'cpu_ns_per_request_big': sbig.peer_ns_per_verdict, 'big_vms': big,
                         'verdicts_per_s_10': s10.vps, 'verdicts_per_s_big': sbig.vps,
                         'ratio': ratio}
        T.add('scale', 'daemon CPU/request %s vs 10 VMs' % big,
              '%.2fx (%.1f vs %.1f us)' % (ratio, sbig.peer_ns_per_verdict / 1e3,
                                         s10.peer_ns_per_verdict / 1e3),
              '<= 1.2x', ratio <= 1.2, ratio)
        if abs(sbig.vps - s10.vps) > 0.2 * max(s10.vps, 1):
            notes.append('scale runs did not reach the same rate (%.0f/s vs %.0f/s): the '
                         'per-request figures are less comparable' % (s10.vps, sbig.vps))
    else:
        T.add('scale', 'daemon CPU/request at scale', 'not measured', '<= 1.2x', None)
    mem = Run(a.raw, 'mem-1000')
    if mem.ok and mem.p.get('hwm_kib'):
        hwm = mem.p['hwm_kib'] / 1024.0
        during = None
        try:
            with open(os.path.join(a.raw, 'mem-1000.during-rss')) as f:
                during = int(f.read().strip()) / 1024.0
        except (OSError, ValueError):
            pass
        figs['memory'] = {'vmhwm_mib': hwm, 'vmrss_during_mib': during}
        T.add('scale', 'daemon VmHWM at 1,000 VMs',
              '%.1f MiB' % hwm + (' (VmRSS %.1f)' % during if during else ''),
              '<= 32 MiB', hwm <= 32, hwm)
    else:
        T.add('scale', 'daemon VmHWM at 1,000 VMs', 'not measured', '<= 32 MiB', None)
    sch = load_json(os.path.join(a.raw, 'sched.json'))
    if sch and len(sch.get('results', [])) >= 2:
        lo, hi = sch['results'][0], sch['results'][-1]
        for pat in ('direct', 'queued'):
            r = hi[pat + '_ns'] / lo[pat + '_ns'] if lo[pat + '_ns'] else math.inf
            T.add('scale', 'sched policy %s ns/req %d vs %d VMs' % (pat, hi['vms'], lo['vms']),
                  '%.2fx (%.0f vs %.0f ns)' % (r, hi[pat + '_ns'], lo[pat + '_ns']),
                  '<= 1.2x', r <= 1.2, r)
        figs['sched'] = sch
    else:
        T.add('scale', 'sched policy ns/req', 'not measured', '<= 1.2x', None)

    # --- 3. fairness ---
    fr = Run(a.raw, 'fairness')
    if fr.ok:
        quiet = [v for v in fr.k['per_vm'] if not v.get('noisy')]
        noisy = [v for v in fr.k['per_vm'] if v.get('noisy')]
        dur = fr.k['duration_s']
        rates = [v['completed'] / dur for v in quiet]
        j = jain(rates)
        fw = fw_mean_s(fr.m)
        qp99 = max((v['p99_ms'] for v in quiet), default=None)
        T.add('fairness', "Jain's index, %d well-behaved VMs" % len(quiet),
              '%.4f' % j if j is not None else 'n/a', '>= 0.99',
              None if j is None else j >= 0.99, j)
        base = Run(a.raw, 'fair-base')
        hname = 'snp_attestd_admission_wait_seconds'
        hm = prom_sub(fr.m, base.m) if base.ok else fr.m
        bb = bucket_bounds(hm, hname, 0.99)
        lim = fw * 1e3 + 1.0 if fw else None
        if bb and lim:
            lo_ms, up_ms = bb[0] * 1e3, bb[1] * 1e3
            ok = True if up_ms <= lim else (False if lo_ms >= lim else None)
            T.add('fairness', 'p99 admission wait under flood (daemon)',
                  '%.3g..%.3g ms bucket' % (lo_ms, up_ms) + ('' if ok is not None else
                                                             ' (straddles)'),
                  '<= %.2f ms (slot+1)' % lim, ok, up_ms)
        else:
            T.add('fairness', 'p99 admission wait under flood (daemon)', 'not measured',
                  '<= slot + 1 ms', None)
        wait_ms = None
        if fw and qp99 is not None:
            wait_ms = max(qp99 - fw * 1e3, 0.0)
            base_p99 = max((v['p99_ms'] for v in base.k.get('per_vm', [])), default=None)
            T.add('fairness', 'well-behaved p99 latency - slot (kvmsim)',
                  '%.2f ms (p99 %.2f%s)' % (wait_ms, qp99, '; no flood %.2f' % base_p99
                                            if base_p99 is not None else ''),
                  'informational', None, wait_ms)
        qbusy = sum(v['busy'] for v in quiet)
        T.add('fairness', 'BUSY answers to well-behaved VMs', '%d' % qbusy, '0 (informational)',
              None, qbusy)
        samples = sorted(glob.glob(os.path.join(a.raw, 'fair.sample.*')))
        n_q = n_idle = 0
        for sp in samples:
            m = prom(sp)
            if 'snp_attestd_queue_depth' not in m:
                continue
            if m['snp_attestd_queue_depth'] > 0:
                n_q += 1
                if m.get('snp_attestd_psp_slots_busy', 0) < m.get('snp_attestd_psp_slots', 1):
                    n_idle += 1
        T.add('fairness', 'PSP idle while a request waited',
              '%d of %d samples with a queue (%d scrapes)' % (n_idle, n_q, len(samples)),
              '0', n_idle == 0 if samples else None, n_idle)
        figs['fairness'] = {'quiet_rates': rates, 'jain': j, 'quiet_p99_ms_max': qp99,
                            'firmware_mean_ms': fw * 1e3 if fw else None,
                            'wait_p99_ms': wait_ms, 'quiet_busy': qbusy,
                            'noisy_completed': [v['completed'] for v in noisy],
                            'noisy_busy': [v['busy'] for v in noisy],
                            'samples': len(samples), 'samples_queued': n_q,
                            'samples_idle_with_queue': n_idle, 'clean': fr.clean()}
        if not fr.clean():
            notes.append('fairness run had wipes or verification failures')
    else:
        T.add('fairness', "Jain's index", 'not measured', '>= 0.99', None)

    la = run.get('loadavg') or []
    if la and run.get('cpus') and max(la) > 0.5 * run['cpus']:
        notes.append('the machine was busy with other work (load average %s on %s CPUs): '
                     'runs are sequential, so figures and ratios carry that noise; repeat '
                     'on an idle machine before judging a MISS' % (
                         ' -> '.join('%.2f' % x for x in la), run['cpus']))
    failed = run.get('failed') or []
    print()
    print('snp-attestd benchmarks%s (%s CPUs, kernel %s)' % (
        ' [quick: figures not meaningful]' if run.get('quick') else '', run.get('cpus'),
        run.get('host')))
    print(T.render())
    for n in notes:
        print('note: ' + n)
    if failed:
        print('could not run: ' + ', '.join(failed))
    doc = {'table': T.rows, 'figures': figs, 'notes': notes, 'failed': failed}
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, 'w') as f:
            json.dump(doc, f, indent=1, default=lambda o: None)
            f.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())

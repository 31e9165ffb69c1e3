#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The man pages against the programs: every config key (with its default) printed by
snp-attestd --check-config is in snp-attestd.conf(5) and nothing else is; every snpctl command
listed by snpctl --help, and each of its long options, is in snpctl(8); the long options in the
--help of snp-attestd, snp-kdssim and snp-kvmsim are in their pages; every metric family in
docs/metrics.md is in snp-attestd(8). Prints TAP.

Usage: man-complete.py MANDIR SOURCE_ROOT SNP-ATTESTD SNPCTL SNP-KDSSIM|- SNP-KVMSIM|-"""
import os
import re
import subprocess
import sys
import tempfile

results = []


def check(desc, problems, skip=None):
    results.append((desc, problems, skip))


def render(page):
    """The page as plain text, unwrapped (wide), without overstrike."""
    out = subprocess.run(['mandoc', '-T', 'ascii', '-O', 'width=400', page], check=True,
                         capture_output=True, text=True).stdout
    return re.sub(r'.\x08', '', out)


def run(argv):
    p = subprocess.run(argv, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def section(text, name):
    """Lines of the top-level section NAME of a rendered page."""
    lines, inside = [], False
    for line in text.splitlines():
        if re.match(r'^[A-Z][A-Z ]+$', line):
            inside = line.strip() == name
            continue
        if inside:
            lines.append(line)
    return lines


def long_options(help_text):
    return sorted(set(re.findall(r'(?<![\w-])(--[a-z][a-z0-9-]*)', help_text)))


def option_items(lines):
    """Long options that start a list item (the tagged lines of OPTIONS)."""
    found = set()
    for line in lines:
        m = re.match(r'^ {5}(.*)$', line)
        if m and m.group(1).startswith('-'):
            found.update(re.findall(r'(?<![\w-])(--[a-z][a-z0-9-]*)', m.group(1)))
    return found


def main():
    mandir, src, daemon, snpctl, kdssim, kvmsim = sys.argv[1:7]
    pages = {n: render(os.path.join(mandir, n)) for n in
             ['snp-attestd.8', 'snp-attestd.conf.5', 'snpctl.8', 'snp-kdssim.1',
              'snp-kvmsim.1']}

    # 1. Config keys and defaults: the page's OPTIONS items equal --check-config of no settings.
    with tempfile.NamedTemporaryFile('w', suffix='.conf') as empty:
        empty.write('# nothing set\n')
        empty.flush()
        rc, out = run([daemon, '-c', empty.name, '--check-config'])
    want, sec = set(), None
    for line in out.splitlines():
        m = re.match(r'^\[([a-z]+)\]$', line)
        if m:
            sec = m.group(1)
            continue
        m = re.match(r'^([a-z_]+) = (.*)$', line)
        if m:
            want.add((sec, m.group(1), m.group(2) or '""'))
    have, sec = set(), None
    for line in section(pages['snp-attestd.conf.5'], 'OPTIONS'):
        m = re.match(r'^ {3}\[([a-z]+)\]$', line)
        if m:
            sec = m.group(1)
            continue
        m = re.match(r'^ {5}([a-z_]+) = (\S+)$', line)
        if m:
            have.add((sec, m.group(1), m.group(2)))
    if rc != 0 or len(want) < 10:
        check('snp-attestd --check-config lists the keys', [f'rc={rc}: {out[:300]}'])
    else:
        check(f'snp-attestd.conf(5) documents each of the {len(want)} keys with its default',
              [f'missing or wrong: [{s}] {k} = {v}' for s, k, v in sorted(want - have)])
        check('snp-attestd.conf(5) documents no key the daemon does not have',
              [f'extra: [{s}] {k} = {v}' for s, k, v in sorted(have - want)])

    # 2. snpctl commands and their options.
    rc, out = run([snpctl, '--help'])
    cmds = re.findall(r'^  ([a-z][a-z-]*(?: [a-z][a-z-]*)?) {2,}\S', out, re.M)
    page = pages['snpctl.8']
    items = {m.group(1) for m in re.finditer(r'^ {5}(\S+(?: [a-z][a-z-]*)?)', page, re.M)}
    items |= {i.split(' ')[0] for i in items}
    if rc != 0 or not cmds:
        check('snpctl --help lists commands', [f'rc={rc}: {out[:300]}'])
    else:
        check(f'snpctl(8) documents each of the {len(cmds)} commands of snpctl --help',
              [f'missing command: {c}' for c in cmds
               if not re.search(r'^ {5}' + re.escape(c) + r'( |$)', page, re.M)])
        missing = []
        for c in cmds:
            rc, h = run([snpctl, 'help'] + c.split(' '))
            if rc != 0:
                missing.append(f'snpctl help {c}: rc={rc}')
                continue
            for opt in long_options(h):
                if not re.search(r'(?<![\w-])' + re.escape(opt) + r'(?![\w-])', page):
                    missing.append(f'{c}: {opt}')
        check('snpctl(8) documents every long option of every command', missing)

    # 3. Long options of the programs against the OPTIONS of their pages.
    for name, exe, pg in [('snp-attestd', daemon, 'snp-attestd.8'),
                          ('snp-kdssim', kdssim, 'snp-kdssim.1'),
                          ('snp-kvmsim', kvmsim, 'snp-kvmsim.1')]:
        desc = f'{pg} documents every long option of {name} --help'
        if exe == '-':
            check(desc, [], skip=f'{name} is not built')
            continue
        rc, h = run([exe, '--help'])
        opts = long_options(h)
        if rc != 0 or not opts:
            check(desc, [f'{name} --help: rc={rc}'])
            continue
        documented = option_items(section(pages[pg], 'OPTIONS'))
        check(desc + f' ({len(opts)})', [f'missing: {o}' for o in opts if o not in documented])
    rc, h = run([daemon, '--help'])
    sigs = sorted(set(re.findall(r'\bSIG[A-Z]+\b', h)))
    text = '\n'.join(section(pages['snp-attestd.8'], 'SIGNALS'))
    check('snp-attestd(8) SIGNALS covers the signals of --help',
          [f'missing: {s}' for s in sigs if s not in text] + ([] if sigs else ['none found']))

    # 4. Metric families.
    doc = os.path.join(src, 'docs', 'metrics.md')
    if not os.path.exists(doc):
        check('snp-attestd(8) lists every metric of docs/metrics.md', [],
              skip='docs/metrics.md not written yet')
    else:
        names = set(re.sub(r'_(bucket|sum|count)$', '', n)
                    for n in re.findall(r'\bsnp_attestd_[a-z0-9_]+', open(doc).read()))
        text = '\n'.join(section(pages['snp-attestd.8'], 'METRICS'))
        check(f'snp-attestd(8) lists each of the {len(names)} metrics of docs/metrics.md',
              [f'missing: {n}' for n in sorted(names)
               if not re.search(r'(?<![\w])' + n + r'(?![\w])', text)])

    print(f'1..{len(results)}')
    failed = False
    for i, (desc, problems, skip) in enumerate(results, 1):
        if skip:
            print(f'ok {i} - {desc} # SKIP {skip}')
        elif problems:
            failed = True
            print(f'not ok {i} - {desc}')
            for p in problems:
                print(f'# {p}')
        else:
            print(f'ok {i} - {desc}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())

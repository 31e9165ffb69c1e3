#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Lint: no include cycle between daemon modules (design: the modules form a hierarchy).

A module is a file stem of daemon/ (broker.c and broker.h are the module "broker"); a private
header NAME-int.h belongs to the module NAME (broker-int.h is the broker's). Module A
depends on module B when a file of A includes a header of daemon/ whose stem is B (a quoted
include, resolved as the compiler does: relative to the including file first). A module that
includes its own header is not a cycle. Every strongly connected set of two or more modules is
reported with one concrete cycle through it and every include between its modules.

Usage: check-include-cycles.py [SOURCE_ROOT]   prints TAP; first a self-test on generated
trees (a cycle of two, a cycle of three and an acyclic tree), then the check of daemon/.
"""
import os
import re
import sys
import tempfile

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def module_of(name):
    """The module a file of daemon/ belongs to: its stem, less a private header's "-int"."""
    stem = name.rsplit('.', 1)[0]
    return stem[:-4] if stem.endswith('-int') else stem


def module_graph(ddir):
    """{module: {dependency: [(file, line number, include text), ...]}} for the files of ddir."""
    graph = {}
    ddir = os.path.realpath(ddir)
    for name in sorted(os.listdir(ddir)):
        if not name.endswith(('.c', '.h')):
            continue
        mod = module_of(name)
        deps = graph.setdefault(mod, {})
        path = os.path.join(ddir, name)
        with open(path, encoding='utf-8', errors='replace') as f:
            for no, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                target = os.path.realpath(os.path.join(ddir, m.group(1)))
                if os.path.dirname(target) != ddir or not os.path.exists(target):
                    continue  # not a daemon header (proto/, system, generated config)
                dep = module_of(os.path.basename(target))
                if dep != mod:
                    deps.setdefault(dep, []).append((name, no, line.strip()))
    return graph


def strongly_connected(graph):
    """Tarjan's algorithm (iterative): the strongly connected sets of graph's nodes."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in graph:
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                out.append(sorted(comp))
    return out


def one_cycle(graph, comp):
    """A shortest cycle through the first module of comp, inside comp (breadth first)."""
    start, members = comp[0], set(comp)
    prev, queue = {start: None}, [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node]):
            if nxt not in members:
                continue
            if nxt == start:
                path = [node]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if nxt not in prev:
                prev[nxt] = node
                queue.append(nxt)
    return comp + [start]


def cycles(ddir):
    """[(cycle as a module list, [evidence lines])] for every cyclic set of modules in ddir."""
    graph = module_graph(ddir)
    found = []
    for comp in strongly_connected(graph):
        if len(comp) < 2:
            continue
        cyc = one_cycle(graph, comp)
        lines = ['set of %d modules: %s' % (len(comp), ' '.join(comp))]
        lines.append('a cycle: %s' % ' -> '.join(cyc))
        for a in comp:
            for b in sorted(graph[a]):
                if b in comp:
                    f, no, text = graph[a][b][0]
                    lines.append('  %s -> %s: daemon/%s:%d: %s' % (a, b, f, no, text))
        found.append((cyc, lines))
    return found


def self_test(tap):
    trees = {
        'a cycle of two modules (via headers and a .c file)': (
            {'a.h': '#include "b.h"\n', 'a.c': '#include "a.h"\n',
             'b.h': '', 'b.c': '#include "b.h"\n#include "a.h"\n'}, ['a', 'b']),
        'a cycle of three modules': (
            {'x.c': '#include "y.h"\n', 'y.h': '', 'y.c': '#include "z.h"\n', 'z.h': '',
             'z.c': '#include "../d/x.h"\n', 'x.h': ''}, ['x', 'y', 'z']),
        'an acyclic tree (own header, a proto header, a system header)': (
            {'p.c': '#include "p.h"\n#include "q.h"\n#include <stdio.h>\n', 'p.h': '',
             'q.h': '#include "../proto/util.h"\n', 'q.c': '#include "q.h"\n'}, []),
    }
    for desc, (files, want) in trees.items():
        with tempfile.TemporaryDirectory(prefix='snp-cycles-') as t:
            d = os.path.join(t, 'd')
            os.mkdir(d)
            os.mkdir(os.path.join(t, 'proto'))
            open(os.path.join(t, 'proto', 'util.h'), 'w').close()
            for name, text in files.items():
                with open(os.path.join(d, name), 'w') as f:
                    f.write(text)
            got = sorted({m for cyc, _ in cycles(d) for m in cyc})
            tap(got == want, 'self-test: %s: %s' % (desc, 'cycle %s found' % want if want
                                                     else 'no cycle found'),
                ['found: %s' % got])


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else '.'
    results = []

    def tap(ok, desc, diag=()):
        results.append((ok, desc, [] if ok else list(diag)))

    self_test(tap)
    ddir = os.path.join(root, 'daemon')
    found = cycles(ddir)
    tap(not found, 'no include cycle between daemon modules (%d module(s))'
        % len(module_graph(ddir)), [l for _, lines in found for l in lines])
    print('1..%d' % len(results))
    for i, (ok, desc, diag) in enumerate(results, 1):
        print('%s %d - %s' % ('ok' if ok else 'not ok', i, desc))
        for d in diag:
            print('# ' + d)
    return 0 if all(ok for ok, _, _ in results) else 1


if __name__ == '__main__':
    sys.exit(main())

#!/usr/bin/env bash
# Prints the `use` graph of src/ (module -> modules it names through
# `crate::`, `use crate::{...}` or the `log!` macro) and fails on a cycle.
# README "Architecture" cites it; run from anywhere.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../src"
python3 - <<'PY'
import os, re, sys
mods = sorted(f[:-3] for f in os.listdir('.') if f.endswith('.rs') and f != 'lib.rs')
edges = {}
for m in mods:
    src = open(m + '.rs').read()
    # Unit tests may reach anywhere; the graph is about the library.
    src = src.split('#[cfg(test)]\nmod tests')[0]
    deps = set(re.findall(r'crate::(\w+)', src))
    for group in re.findall(r'use crate::\{([^}]*)\}', src):
        deps |= set(re.findall(r'\b(\w+)\b', group))
    if re.search(r'crate::log!|\blog!\(', src):
        deps.add('log')
    edges[m] = sorted(d for d in deps if d in mods and d != m)
for m in mods:
    print(f"{m:12} -> {' '.join(edges[m])}")
state, cycle = {}, []
def visit(m, path):
    state[m] = 1
    for d in edges[m]:
        if state.get(d) == 1:
            cycle.append(path + [m, d]); return
        if d not in state:
            visit(d, path + [m])
    state[m] = 2
for m in mods:
    if m not in state:
        visit(m, [])
if cycle:
    print("cycle:", " -> ".join(cycle[0][cycle[0].index(cycle[0][-1]):]))
    sys.exit(1)
print("no cycle")
PY

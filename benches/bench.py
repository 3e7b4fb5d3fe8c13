#!/usr/bin/env python3
"""cgofix overhead benchmarks: every case runs with and without the shim in
the same session, alternating A/B, and reports the median of the per-round
ratios (shim / plain) with its spread. Not a test: it prints figures.

Usage: scripts/bench.sh [--rounds N] [--quick] [--markdown]
Environment (set by scripts/bench.sh): CGOFIXTEST_LIB, CGOFIXTEST_BUNS,
CGOFIXTEST_BENCH_DIR (C programs), CGOFIXTEST_BENCH_FIXTURES (Go fixtures dir).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

LIB = os.environ["CGOFIXTEST_LIB"]
BUNS = dict(kv.split("=", 1) for kv in os.environ["CGOFIXTEST_BUNS"].strip('"').split())
BIN = os.environ["CGOFIXTEST_BENCH_DIR"]
FIX = os.environ["CGOFIXTEST_BENCH_FIXTURES"]
HERE = os.path.dirname(os.path.abspath(__file__))
NODE = "/usr/bin/node"


def env(shim):
    e = {k: v for k, v in os.environ.items() if not k.startswith("CGOFIX_") and k != "LD_PRELOAD"}
    if shim:
        e["LD_PRELOAD"] = LIB
    return e


def run_value(cmd, shim, timeout=120):
    """Runs cmd; the figure is the last number on its stdout."""
    out = subprocess.run(cmd, env=env(shim), capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {out.stderr[-500:]}")
    nums = re.findall(r"[-+]?\d+(?:\.\d+)?", out.stdout)
    return float(nums[-1])


def run_wall(cmd, shim, timeout=120):
    """Wall time of the whole process in ms."""
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env(shim), capture_output=True, timeout=timeout)
    t = (time.perf_counter() - t0) * 1000
    if out.returncode != 0:
        raise RuntimeError(f"{cmd} failed")
    return t


def run_memory(cmd, shim, timeout=120):
    """(VmRSS kB, VmSize kB) read from /proc while the script sleeps."""
    p = subprocess.Popen(cmd, env=env(shim), stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()  # "READY" once the workers are up
    if not line.startswith("READY"):
        p.kill()
        raise RuntimeError(f"memory script: {line!r}")
    status = open(f"/proc/{p.pid}/status").read()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    vsz = int(re.search(r"VmSize:\s+(\d+)", status).group(1))
    p.wait(timeout=timeout)
    return rss, vsz


def ab(name, fn, rounds, unit, lower_is_better=True):
    """Alternating A/B: per round one plain and one shim run (order flips
    each round to cancel drift). Returns a result row."""
    plain, shim, ratios = [], [], []
    fn(False)  # warm-up: page cache, CPU frequency
    for i in range(rounds):
        order = (False, True) if i % 2 == 0 else (True, False)
        got = {}
        for s in order:
            got[s] = fn(s)
        plain.append(got[False])
        shim.append(got[True])
        r = got[True] / got[False] if lower_is_better else got[False] / got[True]
        ratios.append(r)
    q = statistics.quantiles(ratios, n=4) if len(ratios) >= 4 else [min(ratios), 0, max(ratios)]
    return {
        "case": name,
        "unit": unit,
        "plain": statistics.median(plain),
        "shim": statistics.median(shim),
        "ratio": statistics.median(ratios),
        "iqr": (q[0], q[-1]),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="fewer rounds and iterations")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    rounds = 5 if a.quick else a.rounds
    k = 1 if a.quick else 4
    bun = BUNS.get("1.4.5") or sorted(BUNS.values())[-1]
    rows = []
    rows.append(ab("thread create+join, default attr", lambda s: run_value([f"{BIN}/threads", str(5000 * k)], s), rounds, "ns/op"))
    rows.append(ab("thread create+join, 64 KiB request (raised to 8 MiB)", lambda s: run_value([f"{BIN}/threads", str(5000 * k), "65536"], s), rounds, "ns/op"))
    rows.append(ab("sigaction() install", lambda s: run_value([f"{BIN}/sigaction", str(100000 * k)], s), rounds, "ns/op"))
    rows.append(ab("bun -e 0 start-up (1.4.5)", lambda s: run_wall([bun, "-e", "0"], s), rounds * 2, "ms"))
    rows.append(ab("node -e 0 start-up", lambda s: run_wall([NODE, "-e", "0"], s), rounds * 2, "ms"))
    napi = os.path.join(HERE, "napi_async.js")
    for label, rt in (("bun 1.4.5", bun), ("node", NODE)):
        rows.append(ab(f"N-API async work into Go, {label}", lambda s, rt=rt: run_value([rt, napi, f"{FIX}/cshared.node", str(2000 * k)], s), rounds, "us/work"))
    load = os.path.join(HERE, "load.js")
    rows.append(ab("require() of a Go c-shared .node, bun 1.4.5", lambda s: run_value([bun, load, f"{FIX}/cshared.node"], s), rounds * 2, "ms"))
    rows.append(ab("require() + first Go call, bun 1.4.5", lambda s: run_value([bun, load, f"{FIX}/cshared.node", "call"], s), rounds * 2, "ms"))
    rows.append(ab("dlopen of a Go c-shared .so (bun:ffi), bun 1.4.5", lambda s: run_value([bun, load, f"{FIX}/ffi.so"], s), rounds * 2, "ms"))
    rows.append(ab("dlopen + first Go call (bun:ffi), bun 1.4.5", lambda s: run_value([bun, load, f"{FIX}/ffi.so", "call"], s), rounds * 2, "ms"))
    mem = os.path.join(HERE, "workers.js")
    memr = []
    for s_first in range(max(3, rounds // 3)):
        memr.append({s: run_memory([bun, mem], s) for s in ((False, True) if s_first % 2 == 0 else (True, False))})
    rss_p = statistics.median(m[False][0] for m in memr)
    rss_s = statistics.median(m[True][0] for m in memr)
    vsz_p = statistics.median(m[False][1] for m in memr)
    vsz_s = statistics.median(m[True][1] for m in memr)
    rows.append({"case": "RSS, bun 1.4.5 with 8 Workers", "unit": "MiB", "plain": rss_p / 1024, "shim": rss_s / 1024,
                 "ratio": statistics.median(m[True][0] / m[False][0] for m in memr), "iqr": None})
    rows.append({"case": "virtual size, bun 1.4.5 with 8 Workers", "unit": "MiB", "plain": vsz_p / 1024, "shim": vsz_s / 1024,
                 "ratio": vsz_s / vsz_p, "iqr": None})

    if a.markdown:
        print("| case | unit | without shim | with shim | ratio (median) | ratio IQR |")
        print("| --- | --- | ---: | ---: | ---: | --- |")
        for r in rows:
            iqr = f"{r['iqr'][0]:.3f}-{r['iqr'][1]:.3f}" if r["iqr"] else "-"
            print(f"| {r['case']} | {r['unit']} | {r['plain']:.1f} | {r['shim']:.1f} | {r['ratio']:.3f} | {iqr} |")
    else:
        for r in rows:
            iqr = f"[{r['iqr'][0]:.3f}, {r['iqr'][1]:.3f}]" if r["iqr"] else ""
            print(f"{r['case']:<58} {r['plain']:>10.1f} {r['shim']:>10.1f} {r['unit']:<7} ratio {r['ratio']:.3f} {iqr}")


if __name__ == "__main__":
    sys.exit(main())

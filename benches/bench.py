#!/usr/bin/env python3
"""cgofix overhead benchmarks: every case runs with and without the shim in
the same session, alternating A/B, and reports the median of the per-round
ratios (shim / plain) with its spread. Not a test: it prints figures.

Usage: scripts/bench.sh [--rounds N] [--quick] [--markdown]
                        [--only startup] [--counters]
Environment (set by scripts/bench.sh): CGOFIXTEST_LIB, CGOFIXTEST_BUNS,
CGOFIXTEST_BENCH_DIR (C programs, libempty.so), CGOFIXTEST_BENCH_FIXTURES (Go
fixtures dir).

The start-up rows (issue "Start-up cost in every process": Docker images set
LD_PRELOAD for the whole container, so every shell, git and compiler child
loads the shim) compare three process starts: no preload, an empty preload
library (benches/empty.c: what any LD_PRELOAD costs) and the shim.
"""
import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

LIB = os.environ["CGOFIXTEST_LIB"]
BUNS = dict(kv.split("=", 1) for kv in os.environ["CGOFIXTEST_BUNS"].strip('"').split())
BIN = os.environ["CGOFIXTEST_BENCH_DIR"]
FIX = os.environ["CGOFIXTEST_BENCH_FIXTURES"]
HERE = os.path.dirname(os.path.abspath(__file__))
NODE = "/usr/bin/node"
EMPTY = os.path.join(BIN, "libempty.so")
TRUE = shutil.which("true", path="/bin:/usr/bin")


def env(shim):
    """shim: True (the shim), False (no preload) or a library path."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("CGOFIX_") and k != "LD_PRELOAD"}
    if shim is True:
        e["LD_PRELOAD"] = LIB
    elif shim:
        e["LD_PRELOAD"] = shim
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


def storm_cpu(preload, n):
    """The spawn storm: bash (itself preloaded, as in a container) runs
    /bin/true n times. CPU time (user + system, every process) per child
    in us: on a shared machine CPU time is steadier than wall time."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(["bash", "-c", f"for ((i = 0; i < {n}; i++)); do {TRUE}; done"], env=env(preload), check=True, timeout=600)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) / n * 1e6


def loader_stats(preload):
    """One /bin/true start under LD_DEBUG=statistics: {name: number}."""
    e = env(preload)
    e["LD_DEBUG"] = "statistics"
    err = subprocess.run([TRUE], env=e, capture_output=True, text=True, timeout=60).stderr
    got = {}
    for key, pat in (("cycles", r"total startup time in dynamic loader: (\d+)"),
                     ("reloc_cycles", r"time needed for relocation: (\d+)"),
                     ("relocs", r"final number of relocations: (\d+)"),
                     ("relative", r"number of relative relocations: (\d+)")):
        m = re.search(pat, err)
        if m:
            got[key] = int(m.group(1))
    if "cycles" not in got:
        raise RuntimeError(f"LD_DEBUG=statistics printed no statistics: {err[-300:]}")
    return got


def spread(ratios):
    q = statistics.quantiles(ratios, n=4) if len(ratios) >= 4 else [min(ratios), 0, max(ratios)]
    return (q[0], q[-1])


def startup_rows(rounds, k):
    """Spawn storm and loader start-up, no preload / empty preload / shim,
    run in a rotating order each round."""
    kinds = (False, EMPTY, True)
    n = 100 * k
    storm = {s: [] for s in kinds}
    storm_cpu(False, n // 4)  # warm-up: page cache, CPU frequency
    for i in range(rounds):
        for s in kinds[i % 3:] + kinds[:i % 3]:
            storm[s].append(storm_cpu(s, n))
    rows = []
    for base, label in ((False, "no preload"), (EMPTY, "an empty preload library")):
        ratios = [a / b for a, b in zip(storm[True], storm[base])]
        rows.append({"case": f"spawn storm: bash runs /bin/true x{n}, CPU time per process, vs {label}",
                     "unit": "us", "plain": statistics.median(storm[base]), "shim": statistics.median(storm[True]),
                     "ratio": statistics.median(ratios), "iqr": spread(ratios)})
    # The loader's own clock (rdtsc cycles from mapping to the last
    # relocation, before any constructor runs): many short runs, medians.
    ld = {s: [] for s in kinds}
    for i in range(rounds * 20):
        for s in kinds[i % 3:] + kinds[:i % 3]:
            ld[s].append(loader_stats(s))
    med = {s: statistics.median(x["cycles"] for x in ld[s]) for s in kinds}
    ratios = [a["cycles"] / b["cycles"] for a, b in zip(ld[True], ld[EMPTY])]
    rows.append({"case": "dynamic loader start-up, /bin/true (LD_DEBUG=statistics), vs an empty preload library",
                 "unit": "cycles", "plain": med[EMPTY], "shim": med[True],
                 "ratio": statistics.median(ratios), "iqr": spread(ratios)})
    rows.append({"case": "relocations processed by the loader, /bin/true (symbol lookups), vs an empty preload library",
                 "unit": "count", "plain": ld[EMPTY][0].get("relocs", 0), "shim": ld[True][0].get("relocs", 0),
                 "ratio": ld[True][0].get("relocs", 0) / max(1, ld[EMPTY][0].get("relocs", 1)), "iqr": None})
    return rows


def callgrind(preload, tmp):
    """Instructions of one /bin/true start (loader, constructors, exit),
    and the inclusive counts of a few functions: deterministic."""
    out = os.path.join(tmp, f"cg.{len(os.listdir(tmp))}")
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--trace-children=yes", "env"]
    if preload:
        cmd.append(f"LD_PRELOAD={LIB if preload is True else preload}")
    subprocess.run(cmd + [TRUE], env=env(False), check=True, capture_output=True, timeout=300)
    ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", out],
                         capture_output=True, text=True, check=True).stdout
    got = {"total": int(re.search(r"([\d,]+) +\(100.0%\) +PROGRAM TOTALS", ann).group(1).replace(",", ""))}
    # strcmp in ld.so: its SSE2 strcmp takes a slow path for a string in
    # the last 15 bytes of a 64-byte line, so where the library's import
    # and version names land in .dynstr moves the total by ~2k instructions
    # between builds that import the same (README "Performance").
    for key, pat in (("relocate", r"dl-reloc.c:_dl_relocate_object \["), ("init", r"dl-init.c:_dl_init \["),
                     ("constructor", r"cgofix_constructor[^\s]* \["), ("strcmp", r":strcmp \[\S*ld-linux")):
        m = re.search(r"^\s*([\d,]+) .*" + pat, ann, re.M)
        got[key] = int(m.group(1).replace(",", "")) if m else 0
    return got


def minor_faults(preload, runs=201):
    """Mean minor page faults of one /bin/true start. The mean of many
    starts, not one count: where the library lands (ASLR) decides how many
    of the kernel's 64 KiB fault-around windows its start-up code spans."""
    got = []
    for _ in range(runs):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt
        subprocess.run([TRUE], env=env(preload), check=True, timeout=60)
        got.append(resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt - r0)
    return statistics.mean(got)


def syscalls(preload):
    """mmap, mprotect and openat calls of one /bin/true start (strace -c):
    each object the loader maps costs an openat and a mapping per segment
    (plus one for a .bss beyond the last file page), each RELRO segment an
    mprotect."""
    with tempfile.NamedTemporaryFile() as f:
        e = env(preload)
        subprocess.run(["strace", "-f", "-c", "-o", f.name, TRUE], env=e, check=True, capture_output=True, timeout=60)
        text = open(f.name).read()
    got = {}
    for name in ("mmap", "mprotect", "openat"):
        m = re.search(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?" + name + r"$", text, re.M)
        got[name] = int(m.group(1)) if m else 0
    return got


def library_facts(path):
    """Size and relocation facts of a shared library (readelf, size)."""
    relocs = subprocess.run(["readelf", "-rW", path], capture_output=True, text=True, check=True).stdout
    kinds = re.findall(r"^[0-9a-f]{16}\s+[0-9a-f]+\s+(R_X86_64_\w+|R_AARCH64_\w+)", relocs, re.M)
    rel = sum(1 for x in kinds if x.endswith("RELATIVE"))
    sizes = subprocess.run(["size", path], capture_output=True, text=True, check=True).stdout.split("\n")[1].split()
    phdrs = subprocess.run(["readelf", "-lW", path], capture_output=True, text=True, check=True).stdout
    writable = 0
    for m in re.finditer(r"^\s+LOAD\s+\S+\s+(0x[0-9a-f]+)\s+\S+\s+\S+\s+(0x[0-9a-f]+)\s+(.{3})", phdrs, re.M):
        if "W" in m.group(3):
            start, size = int(m.group(1), 16), int(m.group(2), 16)
            writable += ((start + size + 4095) >> 12) - (start >> 12)
    return {"file": os.path.getsize(path), "text": int(sizes[0]), "data": int(sizes[1]), "bss": int(sizes[2]),
            "relative": rel, "symbolic": len(kinds) - rel, "writable_pages": writable}


def counters():
    """Deterministic start-up counters: what the loader and the constructor
    do, independent of machine load."""
    lib = library_facts(LIB)
    print(f"library: {lib['file']} bytes on disk (unstripped), text {lib['text']}, data {lib['data']}, bss {lib['bss']}; "
          f"{lib['symbolic']} symbol relocations, {lib['relative']} relative, {lib['writable_pages']} writable pages")
    if not shutil.which("valgrind"):
        print("valgrind not found: no instruction counts")
        return
    with tempfile.TemporaryDirectory() as tmp:
        cg = {s: callgrind(s, tmp) for s in (False, EMPTY, True)}
    pf = {s: minor_faults(s) for s in (False, EMPTY, True)}
    sc = {s: syscalls(s) for s in (False, EMPTY, True)} if shutil.which("strace") else {}
    for s, label in ((False, "no preload"), (EMPTY, "empty preload"), (True, "shim")):
        c = cg[s]
        calls = ", ".join(f"{v} {k}" for k, v in sc[s].items()) if sc else "no strace"
        print(f"/bin/true, {label:<14} {c['total']:>8} instructions (relocation {c['relocate']}, constructors {c['init']}, "
              f"cgofix constructor {c['constructor']}, ld.so strcmp {c['strcmp']}), {pf[s]:.1f} minor faults, "
              f"{loader_stats(s).get('relocs', 0)} relocations; {calls}")
    print(f"shim over empty preload: {cg[True]['total'] - cg[EMPTY]['total']:+} instructions, {pf[True] - pf[EMPTY]:+.1f} minor faults")


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
    ap.add_argument("--only", choices=["startup"], help="only the start-up rows (spawn storm, loader)")
    ap.add_argument("--counters", action="store_true", help="also print deterministic start-up counters (valgrind)")
    ap.add_argument("--lib", help="the library to measure instead of target/release/libcgofix.so, "
                                  "e.g. the zig build docker/build-shim.sh prints")
    a = ap.parse_args()
    if a.lib:
        global LIB
        LIB = os.path.abspath(a.lib)
    rounds = 5 if a.quick else a.rounds
    k = 1 if a.quick else 4
    if a.counters:
        counters()
    rows = startup_rows(rounds, k) if a.only else full_rows(rounds, k)
    print_rows(rows, a.markdown)


def full_rows(rounds, k):
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
    rows += startup_rows(rounds, k)
    return rows


def print_rows(rows, markdown):
    # Large counts (cycles) print as integers.
    def num(v):
        return f"{v:.0f}" if v >= 10000 else f"{v:.1f}"
    if markdown:
        print("| case | unit | without shim | with shim | ratio (median) | ratio IQR |")
        print("| --- | --- | ---: | ---: | ---: | --- |")
        for r in rows:
            iqr = f"{r['iqr'][0]:.3f}-{r['iqr'][1]:.3f}" if r["iqr"] else "-"
            print(f"| {r['case']} | {r['unit']} | {num(r['plain'])} | {num(r['shim'])} | {r['ratio']:.3f} | {iqr} |")
    else:
        for r in rows:
            iqr = f"[{r['iqr'][0]:.3f}, {r['iqr'][1]:.3f}]" if r["iqr"] else ""
            print(f"{r['case']:<58} {num(r['plain']):>10} {num(r['shim']):>10} {r['unit']:<7} ratio {r['ratio']:.3f} {iqr}")


if __name__ == "__main__":
    sys.exit(main())

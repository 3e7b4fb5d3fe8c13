#!/usr/bin/env bash
# Measures every signal's disposition (1..64) in each host before and after
# a Go library loads, without and with the shim, and prints markdown tables
# of the signals where anything differs (README "Signal dispositions").
#
#   scripts/dispositions.sh
#
# Hosts: Bun 1.3.14 and 1.4.5 (bun:ffi), Node (require of a c-shared .node),
# Deno (Deno.dlopen), CPython (ctypes); the Go library is tests/fixtures
# built with the newest Go. The probe is tests/programs/dispositions.c,
# driven by tests/fixtures/js/dispositions.{js,ts,py}; it reads each signal
# through `sigaction` inside the process (under qemu-user /proc shows qemu's
# own handlers, docs/background.md §8). A cell is what libc's sigaction
# reports there, followed by `[kernel: ...]` where the rt_sigaction system
# call reports something else (the shim's suspend trampoline, which its
# sigaction hook reports as JSC's handler, src/trampoline.rs).
# The shim is CGOFIXTEST_LIB, else this checkout's
# target/release/libcgofix.so (built if missing). tests/dispositions.rs
# asserts the load-bearing cells.
set -euo pipefail

[ $# -eq 0 ] || { echo "usage: $0" >&2; exit 2; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
eval "$(bash scripts/setup-deps.sh)"
# As the tests run them (testkit::command): none of the caller's switches.
unset LD_PRELOAD JSC_SIGNAL_FOR_GC
for v in $(compgen -e); do
    case "$v" in CGOFIX_*) unset "$v" ;; esac
done

shim="${CGOFIXTEST_LIB:-$root/target/release/libcgofix.so}"
if [ ! -f "$shim" ]; then
    echo "dispositions: building $shim" >&2
    cargo build --release --quiet -p cgofix >&2
fi
fx="$root/target/fixtures/go-newest"
CGOFIXTEST_NAPI_INCLUDE="$CGOFIXTEST_NAPI_INCLUDE" \
    bash tests/fixtures/build.sh "$fx" "$CGOFIXTEST_GONEW" >&2
mkdir -p target/programs
probe="$root/target/programs/dispositions.so"
cc -O2 -shared -fPIC -Wall -Werror -I"$CGOFIXTEST_NAPI_INCLUDE" \
    tests/programs/dispositions.c -o "$probe"

bun_path() {
    local kv
    for kv in $CGOFIXTEST_BUNS; do
        [ "${kv%%=*}" = "$1" ] && { echo "${kv#*=}"; return; }
    done
    echo "dispositions: bun $1 not installed by scripts/setup-deps.sh" >&2
    exit 1
}

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
js="$root/tests/fixtures/js"
export DENO_DIR="$root/target/tmp/deno-dir" DENO_NO_UPDATE_CHECK=1

# run NAME CMD...: both runs of one host, output in $out/NAME.{noshim,shim}.
run() {
    local name="$1" mode pre
    shift
    for mode in noshim shim; do
        pre=""
        [ "$mode" = shim ] && pre="$shim"
        if ! LD_PRELOAD="$pre" timeout 60 "$@" \
            >"$out/$name.$mode" 2>"$out/$name.$mode.err"; then
            echo "dispositions: $name ($mode) failed or hung (60 s):" >&2
            cat "$out/$name.$mode.err" >&2
            exit 1
        fi
    done
    echo "$name" >>"$out/hosts"
}

for v in 1.3.14 1.4.5; do
    bun="$(bun_path "$v")"
    run "bun $v" "$bun" "$js/dispositions.js" "$probe" "$fx/ffi.so"
done
run "node $(/usr/bin/node --version | tr -d v)" /usr/bin/node "$js/dispositions.js" "$probe" "$fx/cshared.node"
run "deno $("$CGOFIXTEST_DENO" --version | awk 'NR==1{print $2}')" \
    "$CGOFIXTEST_DENO" run -A --quiet "$js/dispositions.ts" "$probe" "$fx/ffi.so"
run "python $(/usr/bin/python3 -c 'import platform; print(platform.python_version())')" \
    /usr/bin/python3 "$js/dispositions.py" "$probe" "$fx/ffi.so"

OUT="$out" GO="$("$CGOFIXTEST_GONEW" version | awk '{print $3}')" \
    /usr/bin/python3 - <<'EOF'
import os, signal

out = os.environ["OUT"]
hosts = open(f"{out}/hosts").read().splitlines()
GO_LIBS = {"ffi.so", "cshared.node"}
FLAGS = [(0x08000000, "O"), (4, "S"), (0x10000000, "R"), (0x40000000, "N"), (0x80000000, "H")]


def owner(o):
    if o in GO_LIBS:
        return "go"
    if o == "libcgofix.so":
        return "shim"
    return o.split(".so")[0]


def cell(disp, own, flags):
    if disp == "ERR":
        return "hidden"  # glibc refuses to report its reserved signals
    if disp != "FN":
        return disp
    letters = "".join(c for bit, c in FLAGS if int(flags, 16) & bit)
    return f"{owner(own)} {letters}".strip()


def parse(path):
    phases, cur = {}, None
    for line in open(path):
        if line.startswith("== "):
            cur = phases.setdefault(line.split()[1], {})
            continue
        f = line.split()
        libc, raw = cell(*f[1:4]), cell(*f[4:7])
        cur[int(f[0])] = libc if raw == libc else f"{libc} [kernel: {raw}]"
    return phases


runs = {(h, m): parse(f"{out}/{h}.{m}") for h in hosts for m in ("noshim", "shim")}


def name(sig):
    try:
        return signal.Signals(sig).name
    except ValueError:
        return {32: "SIG32 (glibc SIGCANCEL)", 33: "SIG33 (glibc SIGSETXID)"}.get(
            sig, f"SIGRTMIN+{sig - signal.SIGRTMIN}")


def table(cases, title, keep):
    """One row per signal for which `keep(sig)` holds."""
    cols = [(h, c) for h in hosts for c in cases]
    rows = []
    for sig in range(1, 65):
        if keep(sig):
            rows.append((sig, [runs[(h, m)][ph][sig] for h, (_, m, ph) in cols]))
    print(title)
    print()
    print("| signal | " + " | ".join(f"{h} {label}" for h, (label, _, _) in cols) + " |")
    print("| --- |" + " --- |" * len(cols))
    for sig, cells in rows:
        print(f"| {sig} {name(sig)} | " + " | ".join(cells) + " |")
    print()


print(f"Go library: tests/fixtures built with {os.environ['GO']}. Cell: DFL, IGN, hidden, "
      "or the object holding the handler (exe, go, shim, libc) and its flags: O SA_ONSTACK, "
      "S SA_SIGINFO, R SA_RESTART, N SA_NODEFER, H SA_RESETHAND; [kernel: ...] where the "
      "rt_sigaction system call reports otherwise.")
print()
def differs(phases, sig):
    """Whether, in some host, the cells of `phases` x {no shim, shim} differ."""
    return any(len({runs[(h, m)][ph][sig] for m in ("noshim", "shim") for ph in phases}) > 1
               for h in hosts)


table([("before", "noshim", "before"), ("after", "noshim", "after"),
       ("before, shim", "shim", "before"), ("after, shim", "shim", "after")],
      "Before and after the Go library loads:", lambda sig: differs(("before", "after"), sig))
table([("no shim", "noshim", "late"), ("shim", "shim", "late")],
      "Then the host installs a handler for SIGUSR2 (after Go started):",
      lambda sig: any(runs[r]["after"][sig] != runs[r]["late"][sig] for r in runs))
EOF

#!/usr/bin/env bash
# Long reliability soak (issue 8): the storms of tests/reliability.rs
# repeated RUNS times per configuration, memcheck on the 4x1000 thread program,
# then the whole reliability file ROUNDS times (default 3).
#
#   scripts/soak.sh [RUNS] [ROUNDS]        RUNS default 50
#
# Per RUNS: thread_signal_storm does RUNS shim runs (+1 control without the
# shim), each 4x1000 threads under a ~50k-signal tgkill storm;
# go_workers_gc_cpu_prof_storm does RUNS runs of each of Bun 1.4.5
# --cpu-prof x (newest Go c-shared, Go 1.19 c-archive) and Bun 1.3.14 without
# --cpu-prof x (same two modules). Then Bun 1.3.14 --cpu-prof with Workers
# (crashed 1 run in 20 to 100 before the suspend trampoline), RUNS runs per
# module. Any crash or hang fails with the case name. Then, measured and
# printed rather than asserted, aarch64 Bun 1.4.3 --cpu-prof with Workers
# under qemu, RUNS runs with the suspend trampoline on and RUNS off
# (tests/aarch64_suspend.rs; ~4 s a run). Takes roughly RUNS x 12 s plus
# ~3 min (2 cores).
set -euo pipefail
runs="${1:-50}"
rounds="${2:-3}"
case "$runs$rounds" in *[!0-9]*) echo "usage: $0 [RUNS] [ROUNDS]" >&2; exit 2 ;; esac
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
cd "$root"
cargo build --release --quiet -p cgofix
start=$SECONDS
t() { cargo test --release --quiet --test reliability -- "$@"; }
echo "soak: storms, $runs runs each" >&2
CGOFIXTEST_SOAK_RUNS="$runs" t --test-threads=1 --nocapture --exact \
    thread_signal_storm go_workers_gc_cpu_prof_storm 2>&1 | grep -E 'storm|test result|HANG|FAIL|panicked'
echo "soak: bun 1.3.14 --cpu-prof workers storm (suspend trampoline), $runs runs per module" >&2
CGOFIXTEST_SOAK_RUNS="$runs" t --test-threads=1 --nocapture --exact \
    bun_1_3_14_cpu_prof_workers_do_not_crash 2>&1 | grep -E 'storm|test result|HANG|FAIL|crashed|exit'
echo "soak: aarch64 bun 1.4.3 --cpu-prof workers under qemu, trampoline on/off, $runs runs each" >&2
cargo build --release --quiet -p cgofix --target aarch64-unknown-linux-gnu
CGOFIXTEST_SOAK_RUNS="$runs" cargo test --release --quiet --test aarch64_suspend -- --ignored --nocapture --exact \
    measure_cpu_prof_workers_trampoline_off 2>&1 | grep -E 'storm|crashed|hung|test result|panicked'
echo "soak: two Go runtimes (1.19 + newest) under load in one process, $runs runs" >&2
CGOFIXTEST_SOAK_RUNS="$runs" cargo test --release --quiet --test hosts -- --ignored --nocapture --exact \
    measure_two_runtimes_under_load 2>&1 | grep -E 'two-runtimes|test result|HANG|panicked'
echo "soak: Deno signal listener after Go under a SIGUSR2 storm, $runs runs" >&2
CGOFIXTEST_SOAK_RUNS="$runs" cargo test --release --quiet --test hosts -- --ignored --nocapture --exact \
    measure_deno_storm 2>&1 | grep -E 'deno-storm|crashed|test result|HANG|panicked'
echo "soak: memcheck on the 4x1000 thread program" >&2
t --test-threads=1 --nocapture --ignored --exact soak_valgrind_thread_program 2>&1 \
    | grep -E 'memcheck|test result|HANG|FAIL|panicked'
# Whole-file rounds: report every failure, fail at the end.
failed=0
for i in $(seq 1 "$rounds"); do
    echo "soak: reliability round $i/$rounds" >&2
    if ! t --test-threads=2 > "${TMPDIR:-/tmp}/cgofix-soak.$$" 2>&1; then
        failed=$((failed + 1))
        grep -E '^test [a-z_0-9]+ [.]{3} FAILED|HANG' "${TMPDIR:-/tmp}/cgofix-soak.$$" || true
    fi
    grep -E 'test result' "${TMPDIR:-/tmp}/cgofix-soak.$$" || true
done
rm -f "${TMPDIR:-/tmp}/cgofix-soak.$$"
echo "soak: done in $((SECONDS - start)) s, $failed/$rounds whole-file rounds failed" >&2
[ "$failed" -eq 0 ]

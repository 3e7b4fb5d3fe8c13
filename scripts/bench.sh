#!/usr/bin/env bash
# Overhead benchmarks, with and without the shim, alternating A/B in one
# run. Usage: scripts/bench.sh [--rounds N] [--quick] [--markdown]
#                              [--only startup] [--counters] [--lib PATH]
# --only startup: just the spawn storm and the loader rows (no Bun, Go, Node).
# --counters: also print the deterministic start-up counters (valgrind).
# --lib PATH: measure that library instead of target/release/libcgofix.so
#   (e.g. the zig build: `docker/build-shim.sh` prints its path).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
eval "$(bash scripts/setup-deps.sh)"
export CGOFIXTEST_BUNS
cargo build --release --quiet -p cgofix
export CGOFIXTEST_LIB="$root/target/release/libcgofix.so"
export CGOFIXTEST_BENCH_DIR="$root/target/bench"
mkdir -p "$CGOFIXTEST_BENCH_DIR"
for p in threads sigaction; do
    cc -O2 -pthread "benches/$p.c" -o "$CGOFIXTEST_BENCH_DIR/$p"
done
# The floor for the spawn-storm rows: a preload library with nothing in it.
cc -O2 -shared -fPIC benches/empty.c -o "$CGOFIXTEST_BENCH_DIR/libempty.so"
export CGOFIXTEST_BENCH_FIXTURES="$root/target/fixtures/go-newest"
case " $* " in
    *" --only startup "*) ;;
    *) CGOFIXTEST_NAPI_INCLUDE="$CGOFIXTEST_NAPI_INCLUDE" bash tests/fixtures/build.sh "$CGOFIXTEST_BENCH_FIXTURES" "$CGOFIXTEST_GONEW" >&2 ;;
esac
exec python3 benches/bench.py "$@"

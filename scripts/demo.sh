#!/usr/bin/env bash
# The bug and the fix, side by side: builds the shim, fetches an affected Bun
# (1.3.14) and Go, builds examples/go-ffi-wasm, and runs it without and with
# the shim.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
BUN_VERSION="${DEMO_BUN_VERSION:-1.3.14}"
TIMEOUT="${DEMO_TIMEOUT:-10}"

echo "==> building libcgofix.so"
cargo build --release --quiet -p cgofix
lib="$root/target/release/libcgofix.so"

echo "==> installing Bun $BUN_VERSION and Go (cached in ~/.cache/cgofix)"
eval "$(CGOFIXTEST_BUN_VERSIONS="$BUN_VERSION" bash scripts/setup-deps.sh)"
bun="${CGOFIXTEST_BUNS#*=}"
bun="${bun%\"}"

echo "==> building examples/go-ffi-wasm with $("$CGOFIXTEST_GONEW" version)"
out="$root/build/example"
mkdir -p "$out"
(cd examples/go-ffi-wasm &&
    GOCACHE="$out/gocache" GOPATH="$out/gopath" GOFLAGS= GOTOOLCHAIN=local \
    GOPROXY=off CGO_ENABLED=1 "$CGOFIXTEST_GONEW" build -buildmode=c-shared \
    -o "$out/libgofib.so" .)

# run LABEL [ENV...]: runs the app, prints its output and sets $result.
run() {
    local label="$1"; shift
    echo
    echo "==> $label"
    local t0 t1 rc=0
    t0=$(date +%s%N)
    env "$@" timeout -k 2 "$TIMEOUT" "$bun" examples/go-ffi-wasm/app.js "$out/libgofib.so" || rc=$?
    t1=$(date +%s%N)
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        result="hung (killed after ${TIMEOUT} s)"
    elif [ "$rc" = 0 ]; then
        result="finished in $(( (t1 - t0) / 1000000 )) ms"
    else
        result="failed with exit code $rc"
    fi
}

run "bun $BUN_VERSION app.js (no shim)" LD_PRELOAD=
without="$result"
run "LD_PRELOAD=libcgofix.so bun $BUN_VERSION app.js" LD_PRELOAD="$lib"
with="$result"

echo
echo "Bun $BUN_VERSION + Go c-shared library + WebAssembly:"
printf '  %-14s %s\n' "without shim:" "$without" "with shim:" "$with"

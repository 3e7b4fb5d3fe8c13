#!/usr/bin/env bash
# Installs what the tests need (cached, idempotent) and runs them all.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! command -v cargo >/dev/null 2>&1; then
    echo "test.sh: cargo not found (install Rust with rustup first)" >&2
    exit 1
fi

# Go toolchains, Bun binaries, Node-API headers -> env vars for the tests.
eval "$(bash scripts/setup-deps.sh)"
export CGOFIXTEST_DENO CGOFIXTEST_GO119 CGOFIXTEST_GO123 CGOFIXTEST_GONEW CGOFIXTEST_NAPI_INCLUDE CGOFIXTEST_BUNS \
    CGOFIXTEST_ZIGBUILD CGOFIXTEST_HADOLINT CGOFIXTEST_MINIFY CGOFIXTEST_KOFFI CGOFIXTEST_TFPARSE_SO \
    CGOFIXTEST_ASHERAH_SO CGOFIXTEST_GOJSONNET_SO CGOFIXTEST_STARLARK_SO CGOFIXTEST_BUNS_AARCH64

# The integration tests preload the release library.
cargo build --release -p cgofix
export CGOFIXTEST_LIB="$root/target/release/libcgofix.so"
# The same library for aarch64 (cross compiler and qemu-user runner in
# .cargo/config.toml): tests/aarch64.rs preloads it into aarch64 Bun.
cargo build --release -p cgofix --target aarch64-unknown-linux-gnu
export CGOFIXTEST_LIB_AARCH64="$root/target/aarch64-unknown-linux-gnu/release/libcgofix.so"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
# Integration tests start real Bun/Node processes; two at a time keeps the
# timing of hang detection honest on a 2-core machine.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
rc=0
cargo test --workspace --release --no-fail-fast -- --test-threads=2 2>&1 | tee "$log" || rc=$?
# The library's and interpose's unit tests on aarch64, under qemu-user
# (which tests cannot run there, and why: their #[ignore] reasons).
cargo test --release --target aarch64-unknown-linux-gnu -p cgofix -p interpose --lib 2>&1 | tee -a "$log" || rc=$?
# One closing line for the whole run (cargo prints one per test binary, the
# last of which is a doc-test run with nothing in it).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$rc"

#!/usr/bin/env bash
# Builds the release libcgofix.so, strips it, and prints its absolute path
# (the only line on stdout; progress goes to stderr):
#
#   docker/build-shim.sh [--target TRIPLE] [OUT_DIR]   # default OUT_DIR: target/dist
#
# TRIPLE is x86_64-unknown-linux-gnu or aarch64-unknown-linux-gnu (default:
# the build host's). zig cross-links either from either host; a plain cargo
# cross build uses the linker .cargo/config.toml names (Debian's
# aarch64-linux-gnu-gcc). The library is stripped with that architecture's
# binutils (`aarch64-linux-gnu-strip`, from binutils-aarch64-linux-gnu) when
# they are installed, else with the host's `strip` if the target is the host.
#
# Used by the builder stage of every docker/Dockerfile.* and run on the host
# by the tests (tests/packaging.rs), so what CI checks is what the images get.
#
# How it builds (CGOFIX_BUILD):
#   auto  (default) cargo-zigbuild when it is available, else plain cargo
#   zig   cargo-zigbuild, linking against glibc $CGOFIX_GLIBC (default 2.17):
#         the library then loads on any glibc >= that (see README, "glibc")
#   cargo plain `cargo build --release`: requires the build host's glibc
#         symbol versions (GLIBC_2.34 on glibc >= 2.34 hosts)
# cargo-zigbuild is found as $CGOFIX_ZIGBUILD (the tests pass the
# CGOFIXTEST_ZIGBUILD that scripts/setup-deps.sh prints) or on PATH; it needs
# `zig` on PATH or the `ziglang` Python package importable by the `python3`
# next to it (both come from PyPI: `pip install ziglang cargo-zigbuild`).
#
# The zig build uses its own target dir (target/zig, or $CGOFIX_ZIG_TARGET_DIR)
# so it never waits on, or replaces, the target/release/libcgofix.so that the
# tests preload.
#
# CGOFIX_BUILD, CGOFIX_GLIBC, CGOFIX_ZIGBUILD and CGOFIX_ZIG_TARGET_DIR are
# this product script's documented inputs (the Dockerfiles set them), so the
# shim knows them too (src/config.rs) and stays quiet when they are exported.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { echo "build-shim: $*" >&2; }
die() { log "error: $*"; exit 1; }

target=""
if [ "${1:-}" = "--target" ]; then
    [ $# -ge 2 ] || die "--target needs a triple"
    target="$2"
    shift 2
fi
[ $# -le 1 ] || die "usage: docker/build-shim.sh [--target TRIPLE] [OUT_DIR]"
out_dir="${1:-$root/target/dist}"
mode="${CGOFIX_BUILD:-auto}"
glibc="${CGOFIX_GLIBC:-2.17}"

command -v cargo >/dev/null 2>&1 || die "cargo not found (install Rust with rustup)"

zigbuild=""
if [ -n "${CGOFIX_ZIGBUILD:-}" ] && [ -x "$CGOFIX_ZIGBUILD" ]; then
    zigbuild="$CGOFIX_ZIGBUILD"
elif command -v cargo-zigbuild >/dev/null 2>&1; then
    zigbuild="$(command -v cargo-zigbuild)"
fi

case "$mode" in
    auto) if [ -n "$zigbuild" ]; then mode=zig; else mode=cargo; fi ;;
    zig) [ -n "$zigbuild" ] || die "CGOFIX_BUILD=zig but cargo-zigbuild not found (pip install ziglang cargo-zigbuild)" ;;
    cargo) ;;
    *) die "CGOFIX_BUILD=$mode: expected auto, zig or cargo" ;;
esac

cd "$root"
host="$(rustc -vV | sed -n 's/^host: //p')"
target="${target:-$host}"
case "$target" in
    x86_64-unknown-linux-gnu | aarch64-unknown-linux-gnu) ;;
    *) die "--target $target: expected x86_64-unknown-linux-gnu or aarch64-unknown-linux-gnu" ;;
esac
arch="${target%%-*}"
start=$SECONDS
if [ "$mode" = zig ]; then
    target_dir="${CGOFIX_ZIG_TARGET_DIR:-$root/target/zig}"
    log "cargo zigbuild --release --target $target.$glibc ($zigbuild)"
    # The venv that holds cargo-zigbuild also holds ziglang: put its python3
    # first so cargo-zigbuild finds `python3 -m ziglang`.
    PATH="$(dirname "$zigbuild"):$PATH" "$zigbuild" zigbuild --release --quiet -p cgofix --lib \
        --target "$target.$glibc" --target-dir "$target_dir" >&2
    built="$target_dir/$target/release/libcgofix.so"
else
    cargo_dir="$(cargo metadata --format-version 1 --no-deps |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
    if [ "$target" = "$host" ]; then
        log "cargo build --release"
        cargo build --release --quiet -p cgofix --lib >&2
        built="$cargo_dir/release/libcgofix.so"
    else
        log "cargo build --release --target $target"
        cargo build --release --quiet -p cgofix --lib --target "$target" >&2
        built="$cargo_dir/$target/release/libcgofix.so"
    fi
fi
[ -f "$built" ] || die "build finished but $built is missing"
log "built in $((SECONDS - start)) s ($mode)"

mkdir -p "$out_dir"
out="$(cd "$out_dir" && pwd)/libcgofix.so"
tmp="$out.tmp.$$"
# The target's own binutils first: the host's may not know its ELF machine.
strip_tool=""
for t in "$arch-linux-gnu-strip" "$arch-linux-gnu-objcopy"; do
    if command -v "$t" >/dev/null 2>&1; then strip_tool="$t"; break; fi
done
if [ -z "$strip_tool" ] && [ "$target" = "$host" ]; then
    for t in strip objcopy; do
        if command -v "$t" >/dev/null 2>&1; then strip_tool="$t"; break; fi
    done
fi
[ -n "$strip_tool" ] || die "no strip for $arch found (install binutils-${arch//_/-}-linux-gnu)"
case "$strip_tool" in
    *strip) "$strip_tool" --strip-all -o "$tmp" "$built" ;;
    *) "$strip_tool" --strip-all "$built" "$tmp" ;;
esac
chmod 0755 "$tmp"
mv -f "$tmp" "$out"
echo "$out"

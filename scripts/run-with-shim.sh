#!/usr/bin/env bash
# Runs a command with libcgofix.so preloaded:
#   scripts/run-with-shim.sh CMD ARGS...
# The library is $CGOFIX_LIB if set (relative paths are taken from the
# current directory), else target/release/libcgofix.so of this checkout,
# built on first use. It is *prepended* to any existing LD_PRELOAD (and not
# added twice), then the command is exec'd, so its exit code and signals are
# the command's own.
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $(basename "$0") CMD [ARGS...]" >&2
    exit 2
fi

# Resolve symlinks to this script (e.g. one in ~/bin) to find the checkout.
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"

# Is $1 a regular, readable ELF file? (ld.so would otherwise print an error
# and run the command *without* the shim.)
is_elf() {
    [ -f "$1" ] && [ -r "$1" ] && [ "$(LC_ALL=C head -c 4 "$1" 2>/dev/null)" = "$(printf '\177ELF')" ]
}

if [ -n "${CGOFIX_LIB:-}" ]; then
    lib="$CGOFIX_LIB"
    case "$lib" in /*) ;; *) lib="$PWD/$lib" ;; esac
    if ! is_elf "$lib"; then
        echo "run-with-shim: CGOFIX_LIB=$CGOFIX_LIB: no readable ELF library there" >&2
        exit 127
    fi
else
    lib="$root/target/release/libcgofix.so"
    if [ ! -f "$lib" ]; then
        echo "run-with-shim: building $lib" >&2
        (cd "$root" && cargo build --release --quiet -p cgofix) >&2
    fi
    if ! is_elf "$lib"; then
        echo "run-with-shim: $lib missing after the build (CARGO_TARGET_DIR set? then set CGOFIX_LIB)" >&2
        exit 127
    fi
fi
# One spelling for the library (no ./, .., or symlinks), so that an existing
# LD_PRELOAD entry naming the same file is recognised below.
lib="$(readlink -f "$lib")"

# Drop any previous copy of this library from LD_PRELOAD (space or colon
# separated, any spelling of the same file), then put ours first: the shim
# must see every call. Other entries are kept verbatim and in order.
rest=""
IFS=': ' read -r -a entries <<< "${LD_PRELOAD:-}"
for e in "${entries[@]}"; do
    [ -z "$e" ] && continue
    [ "$e" = "$lib" ] && continue
    [ "$(readlink -f "$e" 2>/dev/null || true)" = "$lib" ] && continue
    rest="${rest:+$rest:}$e"
done
export LD_PRELOAD="$lib${rest:+:$rest}"
exec "$@"

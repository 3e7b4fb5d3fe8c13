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

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -n "${CGOFIX_LIB:-}" ]; then
    lib="$CGOFIX_LIB"
    case "$lib" in /*) ;; *) lib="$PWD/$lib" ;; esac
    if [ ! -r "$lib" ]; then
        echo "run-with-shim: CGOFIX_LIB=$CGOFIX_LIB: no readable library there" >&2
        exit 127
    fi
else
    lib="$root/target/release/libcgofix.so"
    if [ ! -f "$lib" ]; then
        echo "run-with-shim: building $lib" >&2
        (cd "$root" && cargo build --release --quiet -p cgofix) >&2
    fi
fi

# Drop any previous copy of this library from LD_PRELOAD (space or colon
# separated), then put ours first: the shim must see every call.
rest=""
IFS=': ' read -r -a entries <<< "${LD_PRELOAD:-}"
for e in "${entries[@]}"; do
    [ -z "$e" ] && continue
    [ "$e" = "$lib" ] && continue
    rest="${rest:+$rest:}$e"
done
export LD_PRELOAD="$lib${rest:+:$rest}"
exec "$@"

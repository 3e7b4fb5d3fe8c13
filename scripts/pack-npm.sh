#!/usr/bin/env bash
# Builds the npm packages into OUT_DIR (default target/npm) and prints the
# tarballs' absolute paths, one per line (the only lines on stdout):
#
#   scripts/pack-npm.sh [OUT_DIR]
#
#   cgofix-VERSION.tgz                  main package: index.js (libraryPath(),
#                                       cliPath()), index.d.ts, the `cgofix` bin
#                                       launcher; optionalDependencies on:
#   cgofix-linux-x64-gnu-VERSION.tgz    @cgofix/linux-x64-gnu: libcgofix.so and
#                                       the cgofix executable (os/cpu/libc:
#                                       linux, x64, glibc)
#   cgofix-linux-arm64-gnu-VERSION.tgz  @cgofix/linux-arm64-gnu: the same for
#                                       aarch64 (linux, arm64, glibc)
#
# Printed in that order: the platform packages, then the main one.
# The templates are npm/cgofix and npm/linux-*-gnu; VERSION is the cgofix
# crate's (Cargo.toml), written into every package.json and the
# optionalDependencies here, so Cargo.toml is the one place to change it.
# The packages carry prebuilt files only: no install scripts, nothing
# downloaded or compiled at install time.
#
# Every binary is linked against glibc 2.17 with cargo-zigbuild (README,
# "glibc"), which cross-links aarch64 from x86_64 as well: the library
# through docker/build-shim.sh, the CLI the same way, in the same target dir (target/zig, or $CGOFIX_ZIG_TARGET_DIR), so a second
# run only repacks. cargo-zigbuild is $CGOFIX_ZIGBUILD, else the
# $CGOFIXTEST_ZIGBUILD that scripts/setup-deps.sh prints, else the one on
# PATH; there is no fallback to a plain cargo build, whose glibc floor is the
# build host's. Needs node and npm (for `npm pack`), strip and objdump, and
# aarch64-linux-gnu-strip (binutils-aarch64-linux-gnu) for the arm64 files.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_dir="${1:-$root/target/npm}"
glibc=2.17

log() { echo "pack-npm: $*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in cargo node npm strip objdump; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done
zigbuild="${CGOFIX_ZIGBUILD:-${CGOFIXTEST_ZIGBUILD:-$(command -v cargo-zigbuild || true)}}"
[ -n "$zigbuild" ] && [ -x "$zigbuild" ] ||
    die "cargo-zigbuild not found: set CGOFIX_ZIGBUILD (scripts/setup-deps.sh installs it and prints CGOFIXTEST_ZIGBUILD)"

cd "$root"
host="$(rustc -vV | sed -n 's/^host: //p')"
[ "$host" = x86_64-unknown-linux-gnu ] ||
    die "packages are built on x86_64-unknown-linux-gnu only, not $host"
# Rust target -> npm platform package (npm/<platform> is its template).
targets=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu)
declare -A platform_of=(
    [x86_64-unknown-linux-gnu]=linux-x64-gnu
    [aarch64-unknown-linux-gnu]=linux-arm64-gnu
)
command -v aarch64-linux-gnu-strip >/dev/null 2>&1 ||
    die "aarch64-linux-gnu-strip not found (install binutils-aarch64-linux-gnu)"

# The one version, and the CLI's must agree: `cgofix doctor --json` reports it.
version="$(cargo metadata --format-version 1 --no-deps | node -e '
    const m = JSON.parse(require("fs").readFileSync(0, "utf8"));
    const v = (n) => (m.packages.find((p) => p.name === n) || {}).version;
    if (!v("cgofix") || v("cgofix") !== v("cgofix-cli")) {
        console.error(`pack-npm: error: cgofix ${v("cgofix")} and cgofix-cli ${v("cgofix-cli")} must have one version`);
        process.exit(1);
    }
    console.log(v("cgofix"));')"
log "version $version (${platform_of[*]}, glibc >= $glibc)"

mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"
stage="$(mktemp -d "$out_dir/.stage.XXXXXX")"
trap 'rm -rf "$stage"' EXIT

target_dir="${CGOFIX_ZIG_TARGET_DIR:-$root/target/zig}"
main="$stage/cgofix"
cp -R npm/cgofix "$main"
plat_dirs=()
for target in "${targets[@]}"; do
    platform="${platform_of[$target]}"
    arch="${target%%-*}"
    dist="$stage/dist-$platform"
    # The library: the same script and build the Docker images use.
    lib="$(CGOFIX_BUILD=zig CGOFIX_GLIBC="$glibc" CGOFIX_ZIGBUILD="$zigbuild" \
        bash docker/build-shim.sh --target "$target" "$dist")"

    # The CLI, beside it in the zig target dir.
    start=$SECONDS
    log "cargo zigbuild --release -p cgofix-cli --target $target.$glibc"
    PATH="$(dirname "$zigbuild"):$PATH" "$zigbuild" zigbuild --release --quiet -p cgofix-cli --bin cgofix \
        --target "$target.$glibc" --target-dir "$target_dir" >&2
    log "cli ($arch) built in $((SECONDS - start)) s"
    cli="$dist/cgofix"
    strip_tool=strip
    [ "$target" = "$host" ] || strip_tool="$arch-linux-gnu-strip"
    "$strip_tool" --strip-all -o "$cli" "$target_dir/$target/release/cgofix"
    chmod 0755 "$cli"

    # What the packages promise (os/cpu/libc, README "glibc"): checked here
    # so a newer symbol never ships.
    for f in "$lib" "$cli"; do
        newest="$(objdump -T "$f" | grep -o 'GLIBC_[0-9][0-9.]*' | sort -uV | tail -n1)"
        [ "$(printf '%s\n' "$newest" "GLIBC_$glibc" | sort -V | tail -n1)" = "GLIBC_$glibc" ] ||
            die "$f requires $newest, above GLIBC_$glibc"
    done

    # Stage the platform package from its template.
    plat="$stage/$platform"
    cp -R "npm/$platform" "$plat"
    cp -p "$lib" "$cli" "$plat/"
    plat_dirs+=("$plat")
done

# The version filled in everywhere.
node - "$version" "$main/package.json" "${plat_dirs[@]/%//package.json}" <<'EOF'
const fs = require('fs');
const [version, ...files] = process.argv.slice(2);
for (const f of files) {
    const pkg = JSON.parse(fs.readFileSync(f, 'utf8'));
    pkg.version = version;
    for (const name of Object.keys(pkg.optionalDependencies || {})) {
        pkg.optionalDependencies[name] = version;
    }
    // No lifecycle scripts: installing must not run or fetch anything.
    if (pkg.scripts) {
        console.error(`pack-npm: error: ${f} has scripts`);
        process.exit(1);
    }
    fs.writeFileSync(f, JSON.stringify(pkg, null, 2) + '\n');
}
EOF
chmod 0755 "$main/bin/cgofix.js"

for dir in "${plat_dirs[@]}" "$main"; do
    name="$(cd "$dir" && npm pack --silent --pack-destination "$out_dir" --no-update-notifier --offline)"
    [ -f "$out_dir/$name" ] || die "npm pack in $dir wrote no $out_dir/$name"
    log "$name: $(stat -c %s "$out_dir/$name") bytes"
    echo "$out_dir/$name"
done

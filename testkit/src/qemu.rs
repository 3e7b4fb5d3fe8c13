//! aarch64 under qemu-user (docs/background.md §8): aarch64 Bun builds from
//! npm (`CGOFIXTEST_BUNS_AARCH64`), the shim cross-built
//! (`CGOFIXTEST_LIB_AARCH64`, scripts/test.sh), Go libraries and C probes
//! cross-built with Debian's `aarch64-linux-gnu-gcc`.
//! `qemu-aarch64 -E LD_PRELOAD=...` preloads into the guest; a plain
//! `LD_PRELOAD` would load into qemu itself.

use crate::deps::{Go, deps, parse_bun_list, setup_var};
use crate::proc::output;
use crate::root;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A cross build with a cold Go cache (the arm64 standard library).
const BUILD_TIMEOUT: Duration = Duration::from_secs(600);

/// An aarch64 Bun installed by scripts/setup-deps.sh.
pub fn bun(version: &str) -> PathBuf {
    let buns = parse_bun_list(&setup_var("CGOFIXTEST_BUNS_AARCH64"));
    let p = buns
        .get(version)
        .unwrap_or_else(|| panic!("aarch64 bun {version} not installed by setup-deps.sh"))
        .clone();
    assert!(p.is_file(), "{}", p.display());
    p
}

/// The aarch64 shim: `CGOFIXTEST_LIB_AARCH64`, else this checkout's build.
pub fn shim() -> PathBuf {
    let p = std::env::var_os("CGOFIXTEST_LIB_AARCH64").map_or_else(
        || root().join("target/aarch64-unknown-linux-gnu/release/libcgofix.so"),
        PathBuf::from,
    );
    assert!(
        p.is_file(),
        "{} missing: cargo build --release -p cgofix --target aarch64-unknown-linux-gnu (scripts/test.sh does)",
        p.display()
    );
    p
}

/// `qemu-aarch64 -L SYSROOT [-E LD_PRELOAD=shim] [-E K=V...] PROGRAM`, with
/// none of the caller's `CGOFIX_*` or `LD_PRELOAD` (qemu passes its own
/// environment on to the guest).
pub fn command(program: &Path, shim: Option<&Path>, env: &[(&str, &str)]) -> Command {
    let mut c = crate::command(Path::new("qemu-aarch64"), false);
    c.args(["-L", "/usr/aarch64-linux-gnu"]);
    if let Some(s) = shim {
        c.arg("-E").arg(format!("LD_PRELOAD={}", s.display()));
    }
    for (k, v) in env {
        c.arg("-E").arg(format!("{k}={v}"));
    }
    c.arg(program);
    c
}

/// A unique temporary name next to `out`: parallel tests (and test
/// processes) never see a half-written file.
fn tmp_for(out: &Path) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    out.with_extension(format!("tmp.{}.{n}", std::process::id()))
}

/// tests/fixtures/go cross-built for arm64 as `name` in
/// target/fixtures-arm64/LABEL: `ffi.so` (c-shared, plain C ABI for
/// bun:ffi) or `cshared.node` (c-shared with the N-API glue, as
/// tests/fixtures/build.sh builds it for x86_64). Rebuilt every test
/// process; Go's cache there makes that a link.
pub fn go_fixture(go: Go, name: &str) -> PathBuf {
    let dir = root().join("target/fixtures-arm64").join(go.label());
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(name);
    let tmp = tmp_for(&out);
    let mut c = Command::new(go.binary());
    c.current_dir(root().join("tests/fixtures/go"))
        .args(["build", "-buildmode=c-shared"])
        .env("GOOS", "linux")
        .env("GOARCH", "arm64")
        .env("CGO_ENABLED", "1")
        .env("CC", "aarch64-linux-gnu-gcc")
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GO111MODULE", "on")
        .env("GOFLAGS", "")
        .env("GOCACHE", dir.join(".gocache"));
    match name {
        "ffi.so" => {}
        "cshared.node" => {
            // napi_* come from the host at load time (build.sh says why).
            c.args(["-tags", "napi"])
                .env(
                    "CGO_CFLAGS",
                    format!("-O2 -I{}", deps().napi_include.display()),
                )
                .env("CGO_LDFLAGS", "-Wl,--unresolved-symbols=ignore-all");
        }
        _ => panic!("no arm64 fixture {name}"),
    }
    c.arg("-o").arg(&tmp).arg(".");
    let case = format!("arm64 {name} with {}", go.label());
    let o = output(&mut c, BUILD_TIMEOUT, &case);
    assert!(
        o.status.success(),
        "{case}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::rename(&tmp, &out).unwrap();
    let _ = std::fs::remove_file(tmp.with_extension("h"));
    out
}

/// tests/programs/NAME.c cross-compiled (`-O2 -pthread -Wall -Werror`
/// and `flags`) into target/programs-arm64/OUT.
pub fn c_program(name: &str, out: &str, flags: &[&str]) -> PathBuf {
    let dir = root().join("target/programs-arm64");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(out);
    let tmp = tmp_for(&out);
    let mut c = Command::new("aarch64-linux-gnu-gcc");
    c.args(["-O2", "-pthread", "-Wall", "-Werror"])
        .arg(crate::program_source(name))
        .args(flags)
        .arg("-o")
        .arg(&tmp);
    let case = format!("aarch64-linux-gnu-gcc {name}.c");
    let o = output(&mut c, Duration::from_secs(120), &case);
    assert!(
        o.status.success(),
        "{case}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::rename(&tmp, &out).unwrap();
    out
}

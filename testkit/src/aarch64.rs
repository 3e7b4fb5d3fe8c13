//! aarch64 under qemu-user (docs/background.md §8): aarch64 Bun builds
//! from npm (`CGOFIXTEST_BUNS_AARCH64`), the fixtures cross-built for arm64
//! ([`crate::fixtures_for`]), the cross-built shim, and the qemu command
//! line that runs them (shared by tests/aarch64.rs, tests/packaging.rs and
//! tests/npm.rs).

use crate::deps::{Go, parse_bun_list, setup_var};
use crate::native::{Arch, fixtures_for};
use crate::root;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's aarch64 sysroot (libc6-dev-arm64-cross): the guest's loader
/// and libc.
pub const SYSROOT: &str = "/usr/aarch64-linux-gnu";

/// The aarch64 Bun binary of `version` (scripts/setup-deps.sh's
/// BUN_AARCH64_VERSIONS).
pub fn bun(version: &str) -> PathBuf {
    let buns = parse_bun_list(&setup_var("CGOFIXTEST_BUNS_AARCH64"));
    let p = buns
        .get(version)
        .unwrap_or_else(|| panic!("aarch64 bun {version} not installed by scripts/setup-deps.sh"))
        .clone();
    assert!(
        p.is_file(),
        "aarch64 bun {version}: {} missing",
        p.display()
    );
    p
}

/// The cross-built shim: `CGOFIXTEST_LIB_AARCH64`, else this checkout's
/// target/aarch64-unknown-linux-gnu/release/libcgofix.so (scripts/test.sh
/// builds it).
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

/// tests/fixtures built for arm64 with `go`.
pub fn fixtures(go: Go) -> PathBuf {
    fixtures_for(go, Arch::Aarch64)
}

/// `qemu-aarch64 -L SYSROOT [-E K=V]... PROGRAM`: `env` goes to the guest
/// with `-E`; a plain LD_PRELOAD in qemu's environment would be loaded into
/// qemu itself, an x86_64 program. Like [`crate::command`], none of the
/// caller's CGOFIX_* switches or LD_PRELOAD reach either. Arguments for
/// PROGRAM follow with `.arg`.
pub fn command(program: &Path, env: &[(&str, &Path)]) -> Command {
    let mut c = crate::command(Path::new("qemu-aarch64"), false);
    c.args(["-L", SYSROOT]);
    for (k, v) in env {
        c.arg("-E").arg(format!("{k}={}", v.display()));
    }
    c.arg(program);
    c
}

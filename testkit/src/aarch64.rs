//! aarch64 under qemu-user (docs/background.md §8): aarch64 Bun builds
//! from npm (`CGOFIXTEST_BUNS_AARCH64`), the fixtures cross-built for arm64
//! ([`crate::fixtures_for`]), the cross-built shim, and the qemu command
//! line that runs them (shared by tests/aarch64.rs, tests/aarch64_suspend.rs,
//! tests/packaging.rs and tests/npm.rs), and C probes cross-built with
//! Debian's `aarch64-linux-gnu-gcc`.

use crate::deps::{Go, parse_bun_list, setup_var};
use crate::native::{Arch, fixtures_for};
use crate::proc::output;
use crate::root;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

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
    let env: Vec<String> = env
        .iter()
        .map(|(k, v)| format!("{k}={}", v.display()))
        .collect();
    qemu(program, &env)
}

/// [`command`] with the shim preloaded into the guest when `shim` is given,
/// and string-valued guest variables.
pub fn guest(program: &Path, shim: Option<&Path>, env: &[(&str, &str)]) -> Command {
    let env: Vec<String> = shim
        .map(|s| format!("LD_PRELOAD={}", s.display()))
        .into_iter()
        .chain(env.iter().map(|(k, v)| format!("{k}={v}")))
        .collect();
    qemu(program, &env)
}

fn qemu(program: &Path, env: &[String]) -> Command {
    let mut c = crate::command(Path::new("qemu-aarch64"), false);
    c.args(["-L", SYSROOT]);
    for kv in env {
        c.arg("-E").arg(kv);
    }
    c.arg(program);
    c
}

/// tests/programs/NAME.c cross-compiled (`-O2 -pthread -Wall -Werror`
/// and `flags`) into target/programs-arm64/OUT; written under a unique
/// temporary name first, so parallel tests never run a half-written file.
pub fn c_program(name: &str, out: &str, flags: &[&str]) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = root().join("target/programs-arm64");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(out);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let tmp = out.with_extension(format!("tmp.{}.{n}", std::process::id()));
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

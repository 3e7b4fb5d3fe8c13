//! The test harness shared by the integration tests (tests/) and the CLI's
//! (cli/tests): one process runner with timeouts ([`run`], [`storm`]),
//! scratch directories ([`tempdir`]), the exit report as JSON ([`report`]),
//! what scripts/setup-deps.sh installed ([`deps`]), and the native
//! fixtures ([`fixtures`], [`c_program`], [`shim`]), and the same for
//! aarch64 under qemu-user ([`aarch64`]).
//!
//! Harness variables are `CGOFIXTEST_*`: the shim owns `CGOFIX_*` and warns
//! about any name it does not know (README "Configuration").

pub mod aarch64;
pub mod deps;
pub mod native;
pub mod npm;
pub mod proc;
pub mod report;

pub use deps::{Go, bun, deps, node, required_dir, required_tool, setup_var};
pub use native::{
    Arch, MIX_WORKS_PER_MODULE, c_program, cc, fixtures, fixtures_for, js, program_source, shim,
};
pub use proc::{Finished, Outcome, Storm, run, run_past_marker, storm, threads_of};
pub use serde_json::{self, Value};

use std::collections::HashMap;
use std::ops::Deref;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (the `cgofix` crate's directory).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A command for `program` with the shim preloaded (or not), and none of
/// the caller's `CGOFIX_*` switches, `LD_PRELOAD` or `JSC_SIGNAL_FOR_GC`.
pub fn command(program: &Path, with_shim: bool) -> Command {
    let mut c = Command::new(program);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CGOFIX_") {
            c.env_remove(&k);
        }
    }
    c.env_remove("LD_PRELOAD");
    c.env_remove("JSC_SIGNAL_FOR_GC");
    if with_shim {
        c.env("LD_PRELOAD", shim());
    }
    c
}

/// The `flags=0x<hex>` a fixture driver prints (the `sa_flags` it read for
/// a signal: livelock.js, storm.js, storm.ts, storm.py).
pub fn printed_flags(stdout: &str) -> i64 {
    stdout
        .split("flags=0x")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|h| i64::from_str_radix(h, 16).ok())
        .unwrap_or_else(|| panic!("no flags=0x.. in {stdout}"))
}

/// `KEY rest...` lines of a probe's output, as a map.
pub fn lines_by_key(out: &str) -> HashMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn is_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A fresh directory under target/tmp, removed on drop, kept (and its path
/// printed) when the test is failing so it can be inspected.
pub struct TempDir(Option<tempfile::TempDir>);

/// A [`TempDir`] named after `case`. Mode 0755, not tempfile's 0700: tests
/// run programs in it as the unprivileged user `nobody`.
pub fn tempdir(case: &str) -> TempDir {
    let base = root().join("target/tmp");
    std::fs::create_dir_all(&base).unwrap();
    let prefix: String = case
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .chain(['-'])
        .collect();
    let d = tempfile::Builder::new()
        .prefix(&prefix)
        .permissions(std::fs::Permissions::from_mode(0o755))
        .tempdir_in(&base)
        .unwrap_or_else(|e| panic!("{case}: temp dir in {}: {e}", base.display()));
    TempDir(Some(d))
}

impl TempDir {
    pub fn path(&self) -> &Path {
        self.0.as_ref().unwrap().path()
    }
}

impl Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.path()
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        self.path()
    }
}

/// Gives the owner rwx on everything under `p` (tests make files and
/// directories unreadable on purpose), so the tree can be removed.
fn make_removable(p: &Path) {
    let Ok(meta) = std::fs::symlink_metadata(p) else {
        return;
    };
    if meta.file_type().is_symlink() {
        return;
    }
    let mode = meta.permissions().mode();
    if mode & 0o700 != 0o700 {
        let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode | 0o700));
    }
    if meta.is_dir()
        && let Ok(entries) = std::fs::read_dir(p)
    {
        for e in entries.flatten() {
            make_removable(&e.path());
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let d = self.0.take().unwrap();
        if std::thread::panicking() {
            eprintln!("kept for inspection: {}", d.keep().display());
            return;
        }
        make_removable(d.path());
    }
}

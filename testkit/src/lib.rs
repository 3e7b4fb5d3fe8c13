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

/// The assertions on tests/programs/suspendstack.c's output (JSC's suspend
/// protocol on a thread with a sigaltstack), shared by the x86_64 and the
/// aarch64 test. `probe(shim, env)` runs the program and returns its
/// `key value` lines. Without the shim Go's SA_ONSTACK re-install puts the
/// handler on the sigaltstack; with it (trampoline on or off) the handler
/// runs on the interrupted thread's stack and every query reports the
/// program's own handler without SA_ONSTACK.
pub fn assert_suspendstack(probe: impl Fn(bool, &[(&str, &str)]) -> HashMap<String, String>) {
    let plain = probe(false, &[]);
    assert_eq!(plain["rounds"], "suspended=300");
    assert_eq!(plain["on_alt"], "300", "control: {plain:?}");
    assert_eq!(plain["reinstalled"].split(' ').nth(1), Some("onstack=1"));

    for tramp in ["on", "off"] {
        let m = probe(
            true,
            &[
                ("CGOFIX_SUSPEND_SIGNALS", "SIGUSR2"),
                ("CGOFIX_SUSPEND_TRAMPOLINE", tramp),
            ],
        );
        let case = format!("trampoline {tramp}: {m:?}");
        assert_eq!(m["rounds"], "suspended=300", "{case}");
        assert_eq!(m["on_alt"], "0", "{case}");
        assert_eq!(m["near_main"], "300", "{case}");
        assert_eq!(m["ctx_ok"], "1", "{case}");
        assert_eq!(m["errno_kept"], "1", "{case}");
        for k in ["installed", "reinstalled"] {
            assert_eq!(
                m[k], "handler=1 onstack=0 flags=0x10000004 usr2_masked=1",
                "{k} {case}"
            );
        }
        assert_eq!(m["prev"], "handler=1", "{case}");
        let kernel = if tramp == "on" {
            "own=0 onstack=1"
        } else {
            "own=1 onstack=0"
        };
        assert_eq!(m["kernel"], kernel, "{case}");
        assert_eq!(m["signal_ret"], "own=1", "{case}");
        assert_eq!(m["ignored"], "is_ign=1", "{case}");
    }
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
    tempdir_in(&root().join("target/tmp"), case)
}

/// A [`TempDir`] in the system's temporary directory (`/tmp`), for files
/// another user must reach: the checkout may sit under a directory only its
/// owner can enter (CI clones into `mktemp -d`, mode 0700), which a 0755
/// directory inside it does not fix.
pub fn public_tempdir(case: &str) -> TempDir {
    tempdir_in(&std::env::temp_dir(), case)
}

fn tempdir_in(base: &Path, case: &str) -> TempDir {
    std::fs::create_dir_all(base).unwrap();
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
        .tempdir_in(base)
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

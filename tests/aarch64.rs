//! The shim on aarch64, under qemu-user (docs/background.md §8): real
//! aarch64 Bun builds from npm, the fixture's Go library cross-built for
//! arm64, the shim cross-built (`CGOFIXTEST_LIB_AARCH64`, scripts/test.sh).
//! `qemu-aarch64 -E LD_PRELOAD=...` preloads into the guest; a plain
//! LD_PRELOAD would load into qemu itself. Bun 1.3.14 hangs without the
//! shim (asserted: killed at the timeout, deterministically, as on x86_64)
//! and finishes with it; Bun 1.4.5 finishes with it (no regression). The
//! suspend-handler probe and the report are checked on both.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use testkit::deps::{Go, parse_bun_list, setup_var};
use testkit::{js, proc, report, root};

const HANG_AFTER: Duration = Duration::from_secs(20);
const FINISH_WITHIN: Duration = Duration::from_secs(120);

fn bun(version: &str) -> PathBuf {
    let buns = parse_bun_list(&setup_var("CGOFIXTEST_BUNS_AARCH64"));
    let p = buns
        .get(version)
        .unwrap_or_else(|| panic!("aarch64 bun {version} not installed by setup-deps.sh"))
        .clone();
    assert!(p.is_file(), "{}", p.display());
    p
}

fn shim() -> PathBuf {
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

/// tests/fixtures/go built as an arm64 c-shared library (the x86_64
/// fixtures' ffi.so), once per toolchain, cached under target/.
fn arm64_ffi(go: Go) -> PathBuf {
    let out = root().join(format!("target/fixtures-arm64/{}", go.label()));
    let lib = out.join("ffi.so");
    std::fs::create_dir_all(&out).unwrap();
    let o = proc::output(
        Command::new(go.binary())
            .current_dir(root().join("tests/fixtures/go"))
            .args(["build", "-buildmode=c-shared", "-o"])
            .arg(&lib)
            .arg(".")
            .env("GOOS", "linux")
            .env("GOARCH", "arm64")
            .env("CGO_ENABLED", "1")
            .env("CC", "aarch64-linux-gnu-gcc")
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .env("GO111MODULE", "on")
            .env("GOFLAGS", "")
            .env("GOCACHE", out.join(".gocache")),
        Duration::from_secs(600),
        &format!("arm64 ffi.so with {}", go.label()),
    );
    assert!(
        o.status.success(),
        "arm64 build failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    lib
}

fn qemu(bun: &Path, shim: Option<&Path>, lib: &Path) -> Command {
    let mut c = testkit::command(Path::new("qemu-aarch64"), false);
    c.args(["-L", "/usr/aarch64-linux-gnu"]);
    if let Some(s) = shim {
        c.arg("-E")
            .arg(format!("LD_PRELOAD={}", s.display()))
            .args(["-E", "CGOFIX_REPORT=stderr"]);
    }
    c.arg(bun).arg(js("livelock.js")).arg(lib).arg("ffi");
    c
}

#[test]
fn livelock_on_aarch64_bun() {
    let shim = shim();
    for go in [Go::V119, Go::Newest] {
        let lib = arm64_ffi(go);
        // The control: Bun 1.3.14 hangs without the shim.
        if go == Go::Newest {
            let o = proc::run(
                format!("aarch64 bun 1.3.14 {} without shim", go.label()),
                qemu(&bun("1.3.14"), None, &lib),
                HANG_AFTER,
            );
            assert!(o.hung(), "must hang without the shim: {:?}", o.finished());
        }
        for (v, fix) in [("1.3.14", "applied"), ("1.4.5", "not-needed")] {
            let case = format!("aarch64 bun {v} {} with shim", go.label());
            let o = proc::run(&case, qemu(&bun(v), Some(&shim), &lib), FINISH_WITHIN);
            o.expect_success();
            assert!(o.stdout().contains("CGOFIX-OK livelock"), "{case}: {o:?}");
            let rep = report::in_output(o.stderr()).pop().expect("no report");
            assert_eq!(
                report::text(&rep, "/signals/suspend_fix"),
                fix,
                "{case}: {rep}"
            );
            let m = report::module(&rep, "ffi.so");
            let want = if go == Go::V119 { "go1.19" } else { "go1." };
            assert!(report::text(m, "go_version").starts_with(want), "{m}");
            assert_eq!(report::text(m, "buildmode"), "c-shared", "{m}");
        }
    }
}

//! The shim on aarch64, under qemu-user (docs/background.md §8): real
//! aarch64 Bun builds from npm, the fixtures cross-built for arm64 by
//! tests/fixtures/build.sh (`testkit::aarch64`), the shim cross-built
//! (`CGOFIXTEST_LIB_AARCH64`, scripts/test.sh). `qemu-aarch64 -E
//! LD_PRELOAD=...` preloads into the guest; a plain LD_PRELOAD would load
//! into qemu itself.
//!
//! The livelock matrix, as tests/livelock.rs on x86_64: Bun 1.3.14 (SIGPWR)
//! and 1.1.38 (SIGUSR1) x Go 1.19 and newest x module kind (bun:ffi `.so`,
//! c-shared `.node`, c-archive `.node`) hang without the shim (asserted:
//! killed after the WebAssembly step, with SA_ONSTACK on the suspend
//! signal) and finish with it; Bun 1.4.5 finishes with it (no regression).
//! The N-API hook: 20 async works per module through the rewritten
//! `napi_queue_async_work` slot, the Go init hook, the report.
//!
//! CI time: the hang controls of one Bun run side by side (six qemu
//! processes, ~1 GB each for Bun 1.3.14), the runs that must finish two at
//! a time.

use std::path::{Path, PathBuf};
use std::time::Duration;
use testkit::aarch64::{bun, command, fixtures, shim};
use testkit::report::{module, num, text};
use testkit::{Go, MIX_WORKS_PER_MODULE, Outcome, js, printed_flags, report, run, run_past_marker};

/// What livelock.js prints on stderr right before the WebAssembly step,
/// the step that hangs.
const MARKER: &str = "CGOFIX-INFO livelock";
/// A run counts as hung when it has not finished this long after the
/// marker. Measured under qemu: a run with the shim prints its result
/// 0.2-0.8 s after the marker (WASM_ITERS loop included), also with six
/// hung runs spinning beside it on 2 cores.
const STALL: Duration = Duration::from_secs(10);
/// livelock.js's WebAssembly loop count (FIXTURE_WASM_ITERS). Its default,
/// 100000, is certain to hang on x86_64, but under qemu on a loaded machine
/// 2 of 8 Bun 1.3.14 runs (Go 1.19, c-shared `.node`, eight at once) got
/// through without the shim; with 3000000 none of 20 did, and the loop
/// costs a fixed run well under a second (measured here).
const WASM_ITERS: &str = "3000000";
/// Whole-run limit: Bun 1.3.14 takes ~3 s of CPU to start under qemu, and
/// the controls start six at a time on 2 cores.
const START_WITHIN: Duration = Duration::from_secs(120);
const FINISH_WITHIN: Duration = Duration::from_secs(120);
/// As on x86_64 (tests/livelock.rs): JSC's suspend signal without the
/// fix, with SA_ONSTACK (0x08000000) added by Go.
const SA_ONSTACK: i64 = 0x0800_0000;

const AFFECTED: [&str; 2] = ["1.3.14", "1.1.38"];
const FIXED: &str = "1.4.5";
const KINDS: [(&str, &str); 3] = [
    ("ffi.so", "ffi"),
    ("cshared.node", "node"),
    ("carchive.node", "node"),
];

/// One cell of the matrix.
#[derive(Clone)]
struct Cell {
    bun: &'static str,
    go: Go,
    file: &'static str,
    kind: &'static str,
}

impl Cell {
    fn all(buns: &[&'static str]) -> Vec<Cell> {
        let mut out = Vec::new();
        for &bun in buns {
            for go in Go::ALL {
                for (file, kind) in KINDS {
                    out.push(Cell {
                        bun,
                        go,
                        file,
                        kind,
                    });
                }
            }
        }
        out
    }
    fn case(&self, shim: bool) -> String {
        format!(
            "aarch64 livelock bun{} {} {} {}",
            self.bun,
            self.go.label(),
            self.file,
            if shim { "with-shim" } else { "without-shim" }
        )
    }
    fn module(&self) -> PathBuf {
        fixtures(self.go).join(self.file)
    }
    fn run(&self, shim: Option<&Path>) -> Outcome {
        let mut env = vec![("FIXTURE_WASM_ITERS", Path::new(WASM_ITERS))];
        if let Some(s) = shim {
            env.push(("LD_PRELOAD", s));
            env.push(("CGOFIX_REPORT", Path::new("stderr")));
        }
        let mut c = command(&bun(self.bun), &env);
        c.arg(js("livelock.js")).arg(self.module()).arg(self.kind);
        let case = self.case(shim.is_some());
        match shim {
            Some(_) => run(case, c, FINISH_WITHIN),
            None => run_past_marker(case, c, MARKER, STALL, START_WITHIN),
        }
    }
}

/// `f` over `items`, `width` at a time, results in order.
fn in_parallel<T: Sync, R: Send>(items: &[T], width: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let mut out = Vec::new();
    for chunk in items.chunks(width) {
        let f = &f;
        out.extend(std::thread::scope(|s| {
            let hs: Vec<_> = chunk.iter().map(|x| s.spawn(move || f(x))).collect();
            hs.into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect::<Vec<_>>()
        }));
    }
    out
}

/// The fixtures for both toolchains, built before any clock runs.
fn build_fixtures() {
    for go in Go::ALL {
        fixtures(go);
    }
}

#[test]
fn unfixed_buns_hang_without_the_shim() {
    build_fixtures();
    for b in AFFECTED {
        // One Bun at a time: six processes of ~1 GB side by side.
        let cells = Cell::all(&[b]);
        for (cell, o) in cells.iter().zip(in_parallel(&cells, 6, |c| c.run(None))) {
            let case = cell.case(false);
            // Killed, and only after it reached the WebAssembly step: a
            // slow start is not the bug.
            assert!(o.hung(), "{case}: must hang without the shim: {o:?}");
            assert!(
                o.stderr().contains(MARKER),
                "{case}: killed before the WebAssembly step (start-up took over {START_WITHIN:?}): {o:?}"
            );
            // The precondition: Go added SA_ONSTACK to JSC's handler.
            let flags = printed_flags(o.stderr());
            assert_ne!(flags & SA_ONSTACK, 0, "{case}: no SA_ONSTACK: {o:?}");
        }
    }
}

/// Every cell for `buns` with the shim: finishes, SA_ONSTACK on the
/// suspend signal only where the fix was not needed, and the report names
/// the fix and the Go module.
fn finish_with_the_shim(buns: &[&'static str], fix: &str) {
    build_fixtures();
    let shim = shim();
    let cells = Cell::all(buns);
    for (cell, o) in cells
        .iter()
        .zip(in_parallel(&cells, 2, |c| c.run(Some(&shim))))
    {
        let case = cell.case(true);
        o.expect_success();
        assert!(o.stdout().contains("CGOFIX-OK livelock"), "{case}: {o:?}");
        // An affected Bun's handler loses SA_ONSTACK; a fixed one's is
        // left to Go's rule, which adds it (tests/hosts.rs: not-needed).
        let flags = printed_flags(o.stdout());
        assert_eq!(
            flags & SA_ONSTACK != 0,
            fix == "not-needed",
            "{case}: flags {flags:#x}: {o:?}"
        );
        let rep = report::in_output(o.stderr()).pop().expect("no report");
        assert_eq!(text(&rep, "/signals/suspend_fix"), fix, "{case}: {rep}");
        let m = module(&rep, cell.file);
        let want = if cell.go == Go::V119 {
            "go1.19"
        } else {
            "go1."
        };
        assert!(text(m, "go_version").starts_with(want), "{case}: {m}");
        let mode = if cell.file == "carchive.node" {
            "c-archive"
        } else {
            "c-shared"
        };
        assert_eq!(text(m, "buildmode"), mode, "{case}: {m}");
    }
}

#[test]
fn unfixed_buns_finish_with_the_shim() {
    finish_with_the_shim(&AFFECTED, "applied");
}

#[test]
fn fixed_bun_finishes_with_the_shim() {
    finish_with_the_shim(&[FIXED], "not-needed");
}

/// As tests/napi.rs on x86_64 (`go_and_plain`): a Go addon and the Go-free
/// one in one Bun 1.4.5, 20 async works each through the rewritten
/// `napi_queue_async_work` slot (R_AARCH64_JUMP_SLOT/GLOB_DAT,
/// docs/background.md §8).
#[test]
fn napi_async_work_through_the_rewritten_slot() {
    let shim = shim();
    let tmp = testkit::tempdir("aarch64 napi");
    let mut cases = Vec::new();
    for go in Go::ALL {
        for m in ["cshared.node", "carchive.node"] {
            cases.push((go, m));
        }
    }
    let results = in_parallel(&cases, 2, |&(go, m)| {
        let case = format!("aarch64 napi bun{FIXED} {} {m}", go.label());
        let report = tmp.join(format!("{}-{m}.json", go.label()));
        let dir = fixtures(go);
        let mut c = command(
            &bun(FIXED),
            &[("LD_PRELOAD", &shim), ("CGOFIX_REPORT", &report)],
        );
        c.arg(js("mix.js"))
            .arg("end")
            .arg(dir.join(m))
            .arg(dir.join("plain.node"));
        let o = run(&case, c, FINISH_WITHIN);
        (case, o, report)
    });
    for ((go, m), (case, o, report)) in cases.iter().zip(results) {
        o.expect_success();
        assert!(o.stdout().contains("CGOFIX-OK mix"), "{case}: {o:?}");
        let r = report::read_one(&report);
        let gm = module(&r, m);
        assert_eq!(gm["napi_patched"], true, "{case}: {gm}");
        assert_eq!(gm["go_init_hook"], "ran", "{case}: {gm}");
        let want_version = if *go == Go::V119 { "go1.19" } else { "go1." };
        assert!(
            text(gm, "go_version").starts_with(want_version),
            "{case}: {gm}"
        );
        assert_eq!(
            num(gm, "napi_async_calls"),
            MIX_WORKS_PER_MODULE,
            "{case}: {gm}"
        );
        let mode = if *m == "cshared.node" {
            "c-shared"
        } else {
            "c-archive"
        };
        assert_eq!(gm["buildmode"], mode, "{case}: {gm}");
        let pm = module(&r, "plain.node");
        assert_eq!(pm["napi_patched"], true, "{case}: {pm}");
        assert!(pm["go_version"].is_null(), "{case}: {pm}");
        assert_eq!(pm["go_init_hook"], "not-go", "{case}: {pm}");
        assert_eq!(
            num(pm, "napi_async_calls"),
            MIX_WORKS_PER_MODULE,
            "{case}: {pm}"
        );
        assert_eq!(
            num(&r, "/napi/queue_async_work_calls"),
            num(gm, "napi_async_calls") + num(pm, "napi_async_calls"),
            "{case}: {r}"
        );
    }
}

//! The suspend trampoline (src/trampoline.rs) on aarch64, under qemu-user
//! (docs/background.md §8; helpers in testkit::aarch64): what the x86_64 tests
//! assert about it, asserted on aarch64 builds.
//!
//! * tests/dispositions.rs: on Bun 1.3.14 with the shim the kernel runs the
//!   trampoline (owner libcgofix.so, `SA_ONSTACK`) while `sigaction`
//!   reports JSC's handler as installed; here also `CGOFIX_SUSPEND_TRAMPOLINE
//!   =off` (JSC's handler, no `SA_ONSTACK`) and Bun 1.4.5 (not needed, not
//!   installed), with the control without the shim.
//! * tests/livelock.rs and the report: the livelock fixture finishes with
//!   it, `suspend_fix` "applied", no `SA_ONSTACK` reported.
//! * tests/signal_policy.rs `suspend_handler_runs_on_the_thread_stack`: the
//!   suspend protocol in miniature, trampoline on and off, and the control.
//! * tests/suspend_detection.rs `cpu_prof_trigger_on_1_4_3` and
//!   tests/reliability.rs (Workers under `--cpu-prof`): aarch64 Bun 1.4.3,
//!   the last Bun whose suspend handler needs the fix, hangs without the
//!   shim (20 of 20 runs killed when measured: 8, then 12 more six at a
//!   time at the 15 s limit, so asserted) and finishes with it (2 Workers x
//!   5 rounds: 110 of 110 measured runs finished, the last 30 six at a
//!   time). Crash and hang rates of the larger run (6 x 30) with the
//!   trampoline on and off are a measurement, not a test:
//!   `measure_cpu_prof_workers_trampoline_off`, run by scripts/soak.sh.
//!   Measured under qemu (Go 1.27, `--cpu-prof-interval=100`): trampoline
//!   off, 18 of 115 runs crashed (Go's "unexpected return pc" while a
//!   goroutine stack is scanned, or a Bun SIGSEGV/abort: the goroutine-stack
//!   overrun the trampoline exists for) and 1 hung; trampoline on, none of
//!   145 crashed, 4 hung (and 1 of 40 at the default interval). The hangs
//!   are open: not the suspend-signal livelock as far as /proc shows (in
//!   the one examined, every thread waited in futex, one waking now and
//!   then: no signal storm), they happen with the trampoline off too, and
//!   were not seen on x86_64 (40 of 40), on aarch64 Bun 1.4.5 (40 of 40)
//!   or without Go (plain.node, no shim, 40 of 40).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;
use testkit::deps::Go;
use testkit::{aarch64, js, printed_flags, proc, report, tempdir};

/// Bun 1.3.14 takes ~3 s to start under qemu; a good run here takes < 5 s.
const FINISH_WITHIN: Duration = Duration::from_secs(120);
/// An affected run is given this long before it counts as hung (the same
/// Workers run with the shim takes ~2 s under qemu).
const HANG_AFTER: Duration = Duration::from_secs(15);
/// SIGPWR, JSC's suspend signal in Bun >= 1.2.2 (30 on both targets).
const SIGPWR: &str = "30";
const SA_ONSTACK: u64 = 0x0800_0000;

/// tests/programs/dispositions.c's line for SIGPWR per phase, as
/// ((owner, flags) from libc's `sigaction`, (owner, flags) from the
/// `rt_sigaction` system call).
type Views = HashMap<String, ((String, u64), (String, u64))>;

fn sigpwr(case: &str, out: &str) -> Views {
    let mut phase = None;
    let mut views = Views::new();
    for line in out.lines() {
        if let Some(p) = line.strip_prefix("== ") {
            phase = Some(p.to_string());
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.first() != Some(&SIGPWR) {
            continue;
        }
        assert_eq!(f.len(), 7, "{case}: bad probe line {line:?}");
        let flags = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
        views.insert(
            phase.clone().unwrap_or_else(|| panic!("{case}: {out}")),
            (
                (f[2].to_string(), flags(f[3])),
                (f[5].to_string(), flags(f[6])),
            ),
        );
    }
    assert_eq!(views.len(), 3, "{case}: three phases:\n{out}");
    views
}

/// tests/fixtures/js/dispositions.js on aarch64 Bun `v`: SIGPWR's views.
fn dispositions(v: &str, shim: bool, env: &[(&str, &str)]) -> Views {
    let probe = aarch64::c_program(
        "dispositions",
        "dispositions.so",
        &[
            "-shared",
            "-fPIC",
            "-I",
            testkit::deps().napi_include.to_str().unwrap(),
        ],
    );
    let lib = aarch64::fixtures(Go::Newest).join("ffi.so");
    let s = aarch64::shim();
    let mut c = aarch64::guest(&aarch64::bun(v), shim.then_some(s.as_path()), env);
    c.arg(js("dispositions.js")).arg(&probe).arg(&lib);
    let case = format!("aarch64 bun {v} dispositions shim={shim} {env:?}");
    let o = proc::run(&case, c, FINISH_WITHIN);
    o.expect_success();
    sigpwr(&case, o.stdout())
}

#[test]
fn trampoline_stands_in_on_aarch64_bun_1_3_14() {
    // Control: Go's setsigstack puts SA_ONSTACK on JSC's handler.
    let plain = dispositions("1.3.14", false, &[]);
    let (_, raw) = &plain["after"];
    assert!(
        raw.0 == "exe" && raw.1 & SA_ONSTACK != 0,
        "control: {plain:?}"
    );

    let on = dispositions("1.3.14", true, &[]);
    for (phase, (libc, raw)) in &on {
        assert!(
            libc.0 == "exe" && libc.1 & SA_ONSTACK == 0,
            "{phase}: JSC's handler as installed: {on:?}"
        );
        assert!(
            raw.0 == "libcgofix.so" && raw.1 & SA_ONSTACK != 0,
            "{phase}: the trampoline runs: {on:?}"
        );
    }

    let off = dispositions("1.3.14", true, &[("CGOFIX_SUSPEND_TRAMPOLINE", "off")]);
    for (phase, (libc, raw)) in &off {
        assert_eq!(libc, raw, "{phase}: trampoline off: {off:?}");
        assert!(
            raw.0 == "exe" && raw.1 & SA_ONSTACK == 0,
            "{phase}: trampoline off: {off:?}"
        );
    }

    // Bun 1.4.5's handler tolerates SA_ONSTACK: no trampoline.
    let fixed = dispositions("1.4.5", true, &[]);
    let (libc, raw) = &fixed["after"];
    assert!(
        libc == raw && raw.0 == "exe" && raw.1 & SA_ONSTACK != 0,
        "bun 1.4.5: {fixed:?}"
    );
}

#[test]
fn livelock_finishes_with_the_trampoline_on_aarch64_bun_1_3_14() {
    // The control (hangs without the shim) is tests/aarch64.rs's.
    let lib = aarch64::fixtures(Go::Newest).join("ffi.so");
    let s = aarch64::shim();
    let case = "aarch64 bun 1.3.14 livelock with shim (trampoline)";
    let mut c = aarch64::guest(
        &aarch64::bun("1.3.14"),
        Some(&s),
        &[("CGOFIX_REPORT", "stderr")],
    );
    c.arg(js("livelock.js")).arg(&lib).arg("ffi");
    let o = proc::run(case, c, FINISH_WITHIN);
    o.expect_success();
    assert!(o.stdout().contains("CGOFIX-OK livelock"), "{case}: {o:?}");
    assert_eq!(
        printed_flags(o.stdout()) & SA_ONSTACK as i64,
        0,
        "{case}: SA_ONSTACK reported on the suspend signal"
    );
    let rep = report::in_output(o.stderr()).pop().expect("no report");
    assert_eq!(
        report::text(&rep, "/signals/suspend_fix"),
        "applied",
        "{case}: {rep}"
    );
    assert_eq!(
        report::text(&rep, "/signals/suspend_signals/0"),
        "SIGPWR",
        "{case}: {rep}"
    );
}

/// tests/programs/suspendstack.c, the assertions of tests/signal_policy.rs
/// `suspend_handler_runs_on_the_thread_stack`, on aarch64.
#[test]
fn suspend_handler_runs_on_the_thread_stack_on_aarch64() {
    let prog = aarch64::c_program("suspendstack", "suspendstack", &[]);
    let s = aarch64::shim();
    let probe = |shim: bool, env: &[(&str, &str)]| {
        let c = aarch64::guest(&prog, shim.then_some(s.as_path()), env);
        let o = proc::run(
            format!("aarch64 suspendstack shim={shim} {env:?}"),
            c,
            Duration::from_secs(60),
        );
        o.expect_success();
        testkit::lines_by_key(o.stdout())
    };
    testkit::assert_suspendstack(probe);
}

/// tests/fixtures/js/workers.js under `bun --cpu-prof` on aarch64 Bun
/// 1.4.3: W Workers x R rounds of Go async work, sync Go calls and WASM
/// while the main thread forces GC. Returns the run and its directory
/// (where the profile goes).
fn workers(
    case: &str,
    module: &Path,
    shim: bool,
    env: &[(&str, &str)],
    size: (&str, &str),
    timeout: Duration,
) -> (proc::Outcome, testkit::TempDir) {
    let dir = tempdir(case);
    let s = aarch64::shim();
    let mut c = aarch64::guest(&aarch64::bun("1.4.3"), shim.then_some(s.as_path()), env);
    c.args(["--cpu-prof", "--cpu-prof-interval=100"])
        .arg(js("workers.js"))
        .arg(module)
        .args([size.0, size.1])
        .current_dir(&dir);
    (proc::run(case, c, timeout), dir)
}

#[test]
fn cpu_prof_workers_on_aarch64_bun_1_4_3() {
    let module = aarch64::fixtures(Go::Newest).join("cshared.node");
    // The control: the same driver hangs without the shim.
    let (o, _dir) = workers(
        "aarch64 bun 1.4.3 --cpu-prof workers without shim",
        &module,
        false,
        &[],
        ("2", "5"),
        HANG_AFTER,
    );
    assert!(o.hung(), "must hang without the shim: {o:?}");

    for go in [Go::Newest, Go::V119] {
        let module = aarch64::fixtures(go).join("cshared.node");
        let case = format!(
            "aarch64 bun 1.4.3 --cpu-prof workers {} with shim",
            go.label()
        );
        let (o, dir) = workers(
            &case,
            &module,
            true,
            &[("CGOFIX_REPORT", "stderr")],
            ("2", "5"),
            FINISH_WITHIN,
        );
        o.expect_success();
        assert!(
            o.stdout()
                .contains("CGOFIX-OK workers workers=2 rounds=5 works=80"),
            "{case}: {o:?}"
        );
        let rep = report::in_output(o.stderr()).pop().expect("no report");
        assert_eq!(
            report::text(&rep, "/signals/suspend_fix"),
            "applied",
            "{case}: {rep}"
        );
        let profiles = std::fs::read_dir(&dir).unwrap().count();
        assert!(profiles >= 1, "{case}: no --cpu-prof profile");
    }
}

/// A measurement for scripts/soak.sh, not a test: `CGOFIXTEST_SOAK_RUNS`
/// (default 20) rounds of two Workers runs under `--cpu-prof` on aarch64
/// Bun 1.4.3 with the shim, trampoline on then off (alternating, so both
/// see the same machine load); prints how many crashed and how many hung
/// (killed at 25 s; a good run takes ~3 s). On x86_64 Bun 1.3.14 the
/// trampoline took crashes from 1 run in 20-100 to none
/// (tests/reliability.rs `bun_1_3_14_cpu_prof_workers_do_not_crash`).
#[test]
#[ignore = "a measurement (scripts/soak.sh): crash and hang rates are statistical"]
fn measure_cpu_prof_workers_trampoline_off() {
    let runs: usize = std::env::var("CGOFIXTEST_SOAK_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let module = aarch64::fixtures(Go::Newest).join("cshared.node");
    // (crashed, hung) per setting.
    let mut bad: HashMap<&str, (Vec<String>, usize)> = HashMap::new();
    for i in 0..runs {
        for tramp in ["on", "off"] {
            let case = format!("aarch64 bun 1.4.3 --cpu-prof workers trampoline {tramp} run {i}");
            let (o, _dir) = workers(
                &case,
                &module,
                true,
                &[("CGOFIX_SUSPEND_TRAMPOLINE", tramp)],
                ("6", "30"),
                Duration::from_secs(25),
            );
            let entry = bad.entry(tramp).or_default();
            if o.hung() {
                entry.1 += 1;
                eprintln!("{case}: hung");
            } else if o.exit() != (Some(0), None) || !o.stdout().contains("CGOFIX-OK workers") {
                let first = o.stderr().lines().find(|l| {
                    l.contains("fatal") || l.contains("panic") || l.contains("CGOFIX-FAIL")
                });
                eprintln!("{case}: crashed {:?} {first:?}", o.exit());
                entry.0.push(case);
            }
        }
    }
    for tramp in ["on", "off"] {
        let (crashed, hung) = &bad.get(tramp).cloned().unwrap_or_default();
        eprintln!(
            "aarch64 workers storm bun 1.4.3 --cpu-prof trampoline {tramp}: {runs} runs, {} crashed, {hung} hung",
            crashed.len()
        );
    }
}

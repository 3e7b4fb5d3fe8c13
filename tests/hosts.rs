//! What the shim changes per host now that Bun fixed its suspend handler
//! (docs/background.md §7): the suspend fix only where the host needs it,
//! the host's ignored SIGPIPE kept, and two Go runtimes reported. Every
//! control (without the shim) is deterministic: it observes what the Go
//! runtime does at load, which it does every time.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use testkit::Value;
use testkit::deps::{self, Go};
use testkit::native::fixtures;
use testkit::{command, proc, report, root};

const TIMEOUT: Duration = Duration::from_secs(60);
const SA_ONSTACK: i64 = 0x0800_0000;

fn python() -> PathBuf {
    PathBuf::from("/usr/bin/python3")
}

fn deno() -> PathBuf {
    deps::required_tool("CGOFIXTEST_DENO")
}

fn probe(name: &str) -> PathBuf {
    root().join("tests/fixtures/js").join(name)
}

/// Runs `cmd` (already carrying the shim or not) with the report on
/// stderr; returns the `KEY value` lines of stdout and the report (if the
/// shim was there).
fn run(case: &str, mut cmd: Command) -> (std::collections::HashMap<String, String>, Option<Value>) {
    cmd.env("CGOFIX_REPORT", "stderr");
    let o = proc::run(case, cmd, TIMEOUT);
    o.expect_success();
    let reports = report::in_output(o.stderr());
    (
        testkit::lines_by_key(o.stdout()),
        reports.into_iter().last(),
    )
}

/// The Bun versions installed, with whether JSC's suspend handler there
/// still needs protecting (hand-written from the changelog and the
/// measurements in README "Configuration", not from the probe).
fn bun_needs_fix(version: &str) -> bool {
    let v: Vec<u32> = version.split('.').map(|p| p.parse().unwrap()).collect();
    (v[0], v[1], v[2]) < (1, 4, 4)
}

#[test]
fn suspend_fix_only_where_the_handler_needs_it() {
    let mut seen = (0, 0);
    for (version, bun) in &deps::deps().buns {
        let mut c = command(bun, true);
        c.args(["-e", "0"]);
        let (_, rep) = run(&format!("bun {version} -e 0"), c);
        let rep = rep.expect("no report");
        let want = if bun_needs_fix(version) {
            seen.0 += 1;
            "applied"
        } else {
            seen.1 += 1;
            "not-needed"
        };
        assert_eq!(
            report::text(&rep, "/signals/suspend_fix"),
            want,
            "bun {version}: {rep}"
        );
        assert_eq!(
            rep["signals"]["suspend_signals"].as_array().map(Vec::len),
            Some(1),
            "bun {version} still detects its suspend signal: {rep}"
        );
    }
    assert!(seen.0 > 0 && seen.1 > 0, "both sides need a Bun: {seen:?}");
    // An explicit list is always protected; `none` switches it off.
    let bun = deps::bun("1.4.5");
    let mut c = command(&bun, true);
    c.args(["-e", "0"]).env("CGOFIX_SUSPEND_SIGNALS", "SIGPWR");
    let rep = run("bun 1.4.5 explicit list", c).1.unwrap();
    assert_eq!(report::text(&rep, "/signals/suspend_fix"), "applied");
    let mut c = command(&bun, true);
    c.args(["-e", "0"]).env("CGOFIX_SUSPEND_SIGNALS", "none");
    let rep = run("bun 1.4.5 none", c).1.unwrap();
    assert_eq!(report::text(&rep, "/signals/suspend_fix"), "off");
    // Node has no suspend signal.
    let mut c = command(&deps::node(), true);
    c.args(["-e", "0"]);
    let rep = run("node -e 0", c).1.unwrap();
    assert_eq!(report::text(&rep, "/signals/suspend_fix"), "not-needed");
}

/// SIGPWR's flags as the Go library itself reads them (`sigaction` query)
/// after it loaded through bun:ffi.
fn sigpwr_flags_after_go(version: &str) -> i64 {
    let lib = fixtures(Go::Newest).join("ffi.so");
    let mut c = command(&deps::bun(version), true);
    c.arg(probe("hostprobe.js")).arg(&lib);
    let (kv, _) = run(&format!("bun {version} SIGPWR flags"), c);
    kv["pwr_flags"].parse().unwrap()
}

#[test]
fn fixed_bun_keeps_go_rule_on_its_suspend_signal() {
    // Bun >= 1.4.4 tolerates SA_ONSTACK: Go's setsigstack stands.
    assert_ne!(sigpwr_flags_after_go("1.4.5") & SA_ONSTACK, 0);
    // Bun 1.3.14 needs the fix: the handler is reported without it (the
    // trampoline stands in for it, see src/trampoline.rs).
    assert_eq!(sigpwr_flags_after_go("1.3.14") & SA_ONSTACK, 0);
}

/// (SIGPIPE ignored before the Go library loaded, after, report).
fn sigpipe_case(case: &str, mut cmd: Command, shim: bool) -> (bool, bool, Option<Value>) {
    if !shim {
        cmd.env_remove("LD_PRELOAD");
    }
    let (kv, rep) = run(case, cmd);
    (kv["before"] == "1", kv["after"] == "1", rep)
}

fn host_cases(shim: bool) -> Vec<(String, Command)> {
    let fx = fixtures(Go::Newest);
    let mut out = Vec::new();
    for v in ["1.3.14", "1.4.5"] {
        let mut c = command(&deps::bun(v), shim);
        c.arg(probe("hostprobe.js")).arg(fx.join("ffi.so"));
        out.push((format!("bun {v} bun:ffi"), c));
    }
    for m in ["cshared.node", "carchive.node"] {
        let mut c = command(&deps::node(), shim);
        c.arg(probe("hostprobe.js")).arg(fx.join(m));
        out.push((format!("node {m}"), c));
    }
    let mut c = command(&python(), shim);
    c.arg(probe("hostprobe.py")).arg(fx.join("ffi.so"));
    out.push(("python ctypes".into(), c));
    let mut c = command(&deno(), shim);
    c.args(["run", "-A", "--quiet"])
        .arg(probe("hostprobe.ts"))
        .arg(fx.join("ffi.so"))
        .env("DENO_DIR", std::env::temp_dir().join("cgofix-deno-dir"))
        .env("DENO_NO_UPDATE_CHECK", "1");
    out.push(("deno Deno.dlopen".into(), c));
    out
}

#[test]
fn ignored_sigpipe_stays_ignored() {
    for (case, c) in host_cases(false) {
        let (before, after, _) = sigpipe_case(&format!("{case} without shim"), c, false);
        assert!(before, "{case}: the host ignores SIGPIPE");
        assert!(!after, "{case}: control: Go's runtime takes SIGPIPE over");
    }
    for (case, c) in host_cases(true) {
        let (before, after, rep) = sigpipe_case(&format!("{case} with shim"), c, true);
        assert!(before && after, "{case}: SIGPIPE no longer ignored");
        let rep = rep.expect("no report");
        assert!(report::num(&rep, "/signals/sigpipe_kept") >= 1, "{rep}");
        assert_eq!(report::num(&rep, "go_runtimes"), 1, "{rep}");
    }
    // The switch gives Go its handler back.
    let (_, c) = host_cases(true).remove(4);
    let mut c = c;
    c.env("CGOFIX_KEEP_SIGPIPE", "off");
    let (_, after, rep) = sigpipe_case("python, CGOFIX_KEEP_SIGPIPE=off", c, true);
    assert!(!after);
    assert_eq!(report::num(&rep.unwrap(), "/signals/sigpipe_kept"), 0);
}

/// Go's documented SIGPIPE behaviour holds with the host's SIG_IGN kept:
/// EPIPE on another fd, death by SIGPIPE on fd 1 (os/signal, "SIGPIPE").
#[test]
fn go_code_still_gets_its_sigpipe_semantics() {
    let lib = fixtures(Go::Newest).join("ffi.so");
    for shim in [false, true] {
        let mut c = command(&python(), shim);
        c.arg(probe("gowrite.py")).arg(&lib).arg("other");
        let o = proc::run(
            format!("Go write to a closed pipe, shim {shim}"),
            c,
            TIMEOUT,
        );
        o.expect_success();
        assert_eq!(o.stdout().trim(), "errno 32", "EPIPE on another fd");
        let mut c = command(&python(), shim);
        c.arg(probe("gowrite.py")).arg(&lib).arg("stdout");
        let o = proc::run(
            format!("Go write to a closed stdout, shim {shim}"),
            c,
            TIMEOUT,
        );
        assert_eq!(
            o.finished().signal(),
            Some(libc::SIGPIPE),
            "Go dies of SIGPIPE on fd 1: {:?}",
            o.finished()
        );
    }
}

#[test]
fn a_second_go_runtime_is_named_once() {
    let a = fixtures(Go::V119).join("ffi.so");
    let b = fixtures(Go::Newest).join("ffi.so");
    let mut c = command(&python(), true);
    c.arg(probe("hostprobe.py")).arg(&a).arg(&b);
    c.env("CGOFIX_REPORT", "stderr");
    let o = proc::run("python with two Go runtimes", c, TIMEOUT);
    o.expect_success();
    let warnings: Vec<&str> = o
        .stderr()
        .lines()
        .filter(|l| l.contains("a second Go runtime"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", o.stderr());
    for lib in [&a, &b] {
        assert!(
            warnings[0].contains(lib.to_str().unwrap()),
            "{}",
            warnings[0]
        );
    }
    let rep = report::in_output(o.stderr()).pop().unwrap();
    assert_eq!(report::num(&rep, "go_runtimes"), 2, "{rep}");
    // One runtime: no warning.
    let mut c = command(&python(), true);
    c.arg(probe("hostprobe.py")).arg(&b);
    let o = proc::run("python with one Go runtime", c, TIMEOUT);
    o.expect_success();
    assert!(!o.stderr().contains("second Go runtime"), "{}", o.stderr());
}

const STORM_SECONDS: &str = "3";

/// A SIGUSR2 storm at every thread of `cmd` (from its READY line) on a
/// handler installed after Go started: Deno's `addSignalListener`, or a C
/// handler set through ctypes in Python.
fn storm_run(case: &str, cmd: Command) -> proc::Storm {
    testkit::storm(case, cmd, &[libc::SIGUSR2], Duration::from_secs(90))
}

fn storm_cmd(host: &str, shim: bool) -> Command {
    let lib = fixtures(Go::Newest).join("ffi.so");
    match host {
        "deno" => {
            let mut c = command(&deno(), shim);
            c.args(["run", "-A", "--quiet"])
                .arg(probe("storm.ts"))
                .arg(&lib)
                .arg(STORM_SECONDS)
                .env("DENO_DIR", std::env::temp_dir().join("cgofix-deno-dir"))
                .env("DENO_NO_UPDATE_CHECK", "1");
            c
        }
        _ => {
            let mut c = command(&python(), shim);
            c.arg(probe("storm.py")).arg(&lib).arg(STORM_SECONDS);
            c
        }
    }
}

/// The gate: Python's ctypes handler survives the storm with the shim
/// (twice); for both hosts, deterministically, the handler installed after
/// Go gets SA_ONSTACK with the shim and lacks it without (the control: a
/// storm without the shim crashes in many ways, or not at all). Deno's own
/// storm is a measurement (`measure_deno_storm`): Deno 2.9.6 sometimes
/// fails to spawn a thread just after READY under it (README "Known
/// problems"), so its outcome is not certain.
#[test]
fn deno_and_python_handlers_after_go_survive_a_storm() {
    for i in 0..2 {
        let case = format!("storm python with shim, run {i}");
        let proc::Storm { run, sent } = storm_run(&case, storm_cmd("python", true));
        assert!(
            run.code() == Some(0) && run.stdout.contains("CGOFIX-OK storm"),
            "{case} crashed: {run:?}"
        );
        assert_ne!(
            testkit::printed_flags(&run.stdout) & SA_ONSTACK,
            0,
            "{case}: {run:?}"
        );
        assert!(sent > 1000, "{case}: only {sent} signals: not a storm");
    }
    for host in ["deno", "python"] {
        for shim in [true, false] {
            let case = format!("{host} shim={shim}, no signals");
            let o = proc::run(&case, storm_cmd(host, shim), Duration::from_secs(90));
            o.expect_success();
            assert_eq!(
                testkit::printed_flags(o.stdout()) & SA_ONSTACK != 0,
                shim,
                "{case}: SA_ONSTACK on the handler installed after Go: {o:?}"
            );
        }
    }
}

/// Measurement, not a gate (scripts/soak.sh runs it): Deno's
/// `addSignalListener` handler, installed after Go, under the SIGUSR2
/// storm with the shim. `CGOFIXTEST_SOAK_RUNS` runs (default 10); prints
/// how many finished, how many failed to spawn a thread ("unable to create
/// worker threads", README "Known problems") and how many crashed.
#[test]
#[ignore = "measurement: Deno under a signal storm"]
fn measure_deno_storm() {
    let runs: usize = std::env::var("CGOFIXTEST_SOAK_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let (mut ok, mut spawn, mut crashed) = (0, 0, 0);
    for i in 0..runs {
        let case = format!("storm deno with shim, run {i}");
        let proc::Storm { run, .. } = storm_run(&case, storm_cmd("deno", true));
        if run.code() == Some(0) && run.stdout.contains("CGOFIX-OK storm") {
            ok += 1;
        } else if run.stderr.contains("unable to create worker threads") {
            spawn += 1;
        } else {
            crashed += 1;
            eprintln!("{case}: {run:?}");
        }
    }
    println!(
        "deno-storm: {runs} runs, {ok} finished, {spawn} thread spawn failures, {crashed} crashed"
    );
}

/// Measurement, not a gate (scripts/soak.sh runs it): two Go runtimes
/// (Go 1.19 and the newest) under load in one process, with the shim.
/// `CGOFIXTEST_SOAK_RUNS` runs of 5 s (default 10); prints how many failed.
#[test]
#[ignore = "measurement: two Go runtimes under load"]
fn measure_two_runtimes_under_load() {
    let runs: usize = std::env::var("CGOFIXTEST_SOAK_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let (a, b) = (
        fixtures(Go::V119).join("ffi.so"),
        fixtures(Go::Newest).join("ffi.so"),
    );
    let mut failed = 0;
    for i in 0..runs {
        let mut c = command(&python(), true);
        c.arg(probe("two_runtimes.py")).arg(&a).arg(&b).arg("5");
        let o = proc::run(format!("two runtimes run {i}"), c, TIMEOUT);
        let f = o.finished();
        if f.code() != Some(0) || !f.stdout.contains("CGOFIX-OK") {
            failed += 1;
            println!("two-runtimes run {i} failed: {f:?}");
        }
    }
    println!("two-runtimes: {failed}/{runs} runs failed");
}

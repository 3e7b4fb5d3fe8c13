//! `CGOFIX_SUSPEND_SIGNALS=auto` on every Bun line from 1.0 to 1.4 and on
//! Node, read back from the exit report; and the triggers beyond WASM.

use std::path::Path;
use std::time::Duration;
use testkit::*;

/// `signals.suspend_signals` of the exit report of `rt ARGS` (on stderr).
fn suspend_signals(rt: &Path, args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let mut c = command(rt, true);
    c.args(args)
        .env("CGOFIX_REPORT", "stderr")
        .envs(env.iter().copied());
    let o = run(
        format!("{} {args:?} {env:?}", rt.display()),
        c,
        Duration::from_secs(30),
    );
    o.expect_success();
    let reports = report::in_output(o.stderr());
    assert_eq!(reports.len(), 1, "{o:?}");
    reports[0]["signals"]["suspend_signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn auto_finds_jsc_suspend_signal_on_every_bun() {
    for (v, want) in [
        ("1.0.36", "SIGUSR1"),
        ("1.1.45", "SIGUSR1"),
        // Bun's WebKit switched to SIGPWR in 1.2.2 (bisected: 1.2.0 and
        // 1.2.1 still use SIGUSR1); detection looks, it does not assume.
        ("1.2.1", "SIGUSR1"),
        ("1.2.2", "SIGPWR"),
        ("1.3.14", "SIGPWR"),
        ("1.4.3", "SIGPWR"),
        ("1.4.5", "SIGPWR"),
    ] {
        assert_eq!(
            suspend_signals(&bun(v), &["-e", "0"], &[]),
            [want],
            "bun {v}"
        );
        // The user's override is what JSC uses, and what we protect.
        assert_eq!(
            suspend_signals(&bun(v), &["-e", "0"], &[("JSC_SIGNAL_FOR_GC", "12")]),
            ["SIGUSR2"],
            "bun {v} JSC_SIGNAL_FOR_GC=12"
        );
    }
}

#[test]
fn auto_finds_nothing_under_node() {
    assert_eq!(
        suspend_signals(&node(), &["-e", "0"], &[]),
        Vec::<String>::new()
    );
    assert_eq!(
        suspend_signals(&node(), &["-e", "0"], &[("JSC_SIGNAL_FOR_GC", "12")]),
        Vec::<String>::new()
    );
    // A later JS handler on Bun 1.2.2+'s SIGUSR1 is not mistaken for JSC's.
    assert_eq!(
        suspend_signals(
            &bun("1.4.5"),
            &["-e", "process.on('SIGUSR1', () => {})"],
            &[]
        ),
        ["SIGPWR"]
    );
}

#[test]
fn explicit_list_and_none() {
    let b = bun("1.4.5");
    assert_eq!(
        suspend_signals(
            &b,
            &["-e", "0"],
            &[("CGOFIX_SUSPEND_SIGNALS", "SIGPWR,usr2")]
        ),
        ["SIGUSR2", "SIGPWR"]
    );
    assert_eq!(
        suspend_signals(&b, &["-e", "0"], &[("CGOFIX_SUSPEND_SIGNALS", "none")]),
        Vec::<String>::new()
    );
}

#[test]
fn jsc_signal_for_gc_livelock_fixed() {
    // The same bug on a user-chosen suspend signal.
    let dir = fixtures(Go::Newest);
    let mk = |shim: bool| {
        let mut c = command(&bun("1.3.14"), shim);
        c.arg(js("livelock.js"))
            .arg(dir.join("cshared.node"))
            .env("JSC_SIGNAL_FOR_GC", "12");
        c
    };
    let o = run(
        "livelock bun1.3.14 JSC_SIGNAL_FOR_GC=12 without shim",
        mk(false),
        Duration::from_secs(6),
    );
    assert!(o.hung(), "control must hang: {o:?}");
    run(
        "livelock bun1.3.14 JSC_SIGNAL_FOR_GC=12 with shim",
        mk(true),
        Duration::from_secs(60),
    )
    .expect_success();
}

#[test]
fn cpu_prof_trigger_on_1_4_3() {
    // 1.4.0-1.4.3 fixed the WASM path but still hang under --cpu-prof.
    let dir = fixtures(Go::Newest);
    let tmp = tempdir("cpuprof");
    let mk = |shim: bool| {
        let mut c = command(&bun("1.4.3"), shim);
        c.arg("--cpu-prof")
            .arg(js("livelock.js"))
            .arg(dir.join("cshared.node"))
            .env("FIXTURE_LIVELOCK_NOWASM", "1")
            .current_dir(&tmp);
        c
    };
    let o = run(
        "bun 1.4.3 --cpu-prof without shim",
        mk(false),
        Duration::from_secs(6),
    );
    assert!(o.hung(), "control must hang: {o:?}");
    run(
        "bun 1.4.3 --cpu-prof with shim",
        mk(true),
        Duration::from_secs(60),
    )
    .expect_success();
}

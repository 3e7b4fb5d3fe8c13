//! The bug and its fix on real Bun binaries: load a Go module, make one
//! WebAssembly call, await a 50 ms timer, print a marker. Without the shim
//! an affected Bun must hang (proving the test sees the bug); with the shim
//! it must finish. Bun 1.4.5 (fixed upstream) must still finish under the
//! shim.

use std::time::Duration;
use testkit::*;

/// How long a run without the shim is given before it counts as hung. A
/// fixed Bun finishes this script in well under a second.
const HANG_AFTER: Duration = Duration::from_secs(6);
/// Generous limit for runs that must finish (loaded 2-core CI machine).
const FINISH_WITHIN: Duration = Duration::from_secs(60);

const KINDS: [(&str, &str); 3] = [
    ("cshared.node", "node"),
    ("carchive.node", "node"),
    ("ffi.so", "ffi"),
];

fn livelock(bun_version: &str, go: Go, shim: bool) -> Vec<Outcome> {
    let dir = fixtures(go);
    KINDS
        .iter()
        .map(|(file, kind)| {
            let case = format!(
                "livelock bun{bun_version} {} {file} {}",
                go.label(),
                if shim { "with-shim" } else { "without-shim" }
            );
            let mut c = command(&bun(bun_version), shim);
            c.arg(js("livelock.js")).arg(dir.join(file)).arg(kind);
            let limit = if shim { FINISH_WITHIN } else { HANG_AFTER };
            run(case, c, limit)
        })
        .collect()
}

fn affected(bun_version: &str, go: Go) {
    for o in livelock(bun_version, go, false) {
        assert!(
            o.hung(),
            "expected the unfixed run to hang (the test must see the bug), got {o:?}"
        );
    }
    for o in livelock(bun_version, go, true) {
        o.expect_success();
        let case = o.case();
        assert!(
            o.stdout().contains("CGOFIX-OK livelock"),
            "{case}: no marker: {}",
            o.stdout()
        );
        // The probe read the suspend signal's flags after Go loaded: no
        // SA_ONSTACK (0x08000000) under the shim.
        let flags = printed_flags(o.stdout());
        assert_eq!(
            flags & 0x0800_0000,
            0,
            "{case}: SA_ONSTACK on the suspend signal"
        );
    }
}

/// One test per (Bun, Go) case, so they run in parallel and fail by name.
macro_rules! affected_cases {
    ($($name:ident => ($bun:literal, $go:ident)),* $(,)?) => {$(
        #[test]
        fn $name() {
            affected($bun, Go::$go);
        }
    )*};
}

affected_cases! {
    bun_1_3_14_go119 => ("1.3.14", V119),
    bun_1_3_14_go_newest => ("1.3.14", Newest),
    bun_1_1_45_go119 => ("1.1.45", V119),
    bun_1_1_45_go_newest => ("1.1.45", Newest),
    bun_1_3_14_go123 => ("1.3.14", V123),
    // The two sides of Bun's switch from SIGUSR1 to SIGPWR (1.2.2): one Go
    // toolchain each, to keep CI time down.
    bun_1_2_1_go_newest => ("1.2.1", Newest),
    bun_1_2_2_go119 => ("1.2.2", V119),
}

/// Buns fixed upstream (1.4.4, 1.4.5): the shim leaves their suspend
/// handler to Go's rule (`suspend_fix: "not-needed"`, tests/hosts.rs) and
/// the case still completes.
#[test]
fn fixed_buns_no_regression() {
    for v in ["1.4.4", "1.4.5"] {
        for go in Go::ALL {
            for o in livelock(v, go, true) {
                o.expect_success();
                assert!(o.stdout().contains("CGOFIX-OK livelock"), "{o:?}");
            }
        }
    }
}

#[test]
fn disable_switch_leaves_the_bug() {
    // CGOFIX_DISABLE=1 makes the shim a pure pass-through: the affected case
    // hangs again; the same command without it finishes.
    let dir = fixtures(Go::Newest);
    let mk = |disable: bool| {
        let mut c = command(&bun("1.3.14"), true);
        c.arg(js("livelock.js"))
            .arg(dir.join("cshared.node"))
            .arg("node");
        if disable {
            c.env("CGOFIX_DISABLE", "1");
        }
        c
    };
    let o = run("livelock bun1.3.14 CGOFIX_DISABLE=1", mk(true), HANG_AFTER);
    assert!(o.hung(), "CGOFIX_DISABLE=1 did not leave the hang: {o:?}");
    run("livelock bun1.3.14 shim enabled", mk(false), FINISH_WITHIN).expect_success();
}

#[test]
fn suspend_signals_none_leaves_the_bug() {
    // The fix is exactly the suspend-signal rule: turn it off and Bun hangs
    // even though every other hook is active.
    let dir = fixtures(Go::Newest);
    let mut c = command(&bun("1.3.14"), true);
    c.arg(js("livelock.js")).arg(dir.join("ffi.so")).arg("ffi");
    c.env("CGOFIX_SUSPEND_SIGNALS", "none");
    let o = run(
        "livelock bun1.3.14 CGOFIX_SUSPEND_SIGNALS=none",
        c,
        HANG_AFTER,
    );
    assert!(o.hung(), "CGOFIX_SUSPEND_SIGNALS=none did not hang: {o:?}");
}

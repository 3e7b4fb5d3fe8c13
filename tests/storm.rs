//! Go's rule: a JS `process.on('SIGUSR2')` installed after Go started gets
//! `SA_ONSTACK` under the shim, so a SIGUSR2 storm aimed at every thread
//! (Go's included) while goroutines run near their stack guard never
//! crashes. Without the shim the handler lacks the flag, and Go aborts with
//! "unexpected return pc" / "non-Go code set up signal handler without
//! SA_ONSTACK" in a large share of runs.

use std::path::Path;
use std::time::Duration;
use testkit::*;

const STORM_SECONDS: u64 = 3;
const RUNS: usize = 2;
const SA_ONSTACK: i64 = 0x0800_0000;

/// Runs storm.js under `runtime`, tgkill-ing SIGUSR2 at every thread from
/// READY until it exits (`testkit::storm`; a hang panics with the case name).
fn storm_js(case: &str, runtime: &Path, module: &Path, shim: bool) -> Storm {
    let mut c = command(runtime, shim);
    c.arg(js("storm.js"))
        .arg(module)
        .arg(STORM_SECONDS.to_string());
    storm(
        case,
        c,
        &[libc::SIGUSR2],
        Duration::from_secs(60 + STORM_SECONDS),
    )
}

fn survives(runtime_label: &str, runtime: std::path::PathBuf) {
    for go in Go::ALL {
        let dir = fixtures(go);
        for module in ["cshared.node", "carchive.node"] {
            for i in 0..RUNS {
                let case = format!("storm {runtime_label} {} {module} run {i}", go.label());
                let Storm { run, sent } = storm_js(&case, &runtime, &dir.join(module), true);
                assert!(
                    run.code() == Some(0) && run.stdout.contains("CGOFIX-OK storm"),
                    "crashed: {run:?}"
                );
                assert_ne!(
                    printed_flags(&run.stdout) & SA_ONSTACK,
                    0,
                    "{case}: handler lacks SA_ONSTACK"
                );
                assert!(sent > 1000, "{case}: only {sent} signals sent: not a storm");
            }
        }
    }
}

#[test]
fn node_survives_storm() {
    survives("node", node());
}

#[test]
fn bun_1_4_5_survives_storm() {
    survives("bun1.4.5", bun("1.4.5"));
}

#[test]
fn without_shim_the_handler_lacks_onstack() {
    // The control, deterministic: the same script without the shim and
    // without signals. A storm without the shim crashes in many ways (a
    // Go "fatal error", a silent SIGSEGV, Go's SIGSEGV traceback ending in
    // SIGQUIT) or not at all, so it asserts the precondition instead: the
    // handler installed after Go lacks SA_ONSTACK. scripts/soak.sh and
    // measure_without_shim measure the crashes.
    let dir = fixtures(Go::Newest);
    let mut c = command(&node(), false);
    c.arg(js("storm.js"))
        .arg(dir.join("cshared.node"))
        .arg(STORM_SECONDS.to_string());
    let o = run("storm node control, no signals", c, Duration::from_secs(60));
    o.expect_success();
    assert!(o.stdout().contains("CGOFIX-OK storm"), "{o:?}");
    assert_eq!(
        printed_flags(o.stdout()) & SA_ONSTACK,
        0,
        "control already has SA_ONSTACK"
    );
}

#[test]
#[ignore = "measurement: how often the unfixed storm crashes"]
fn measure_without_shim() {
    let dir = fixtures(Go::Newest);
    let mut crashed = 0;
    for i in 0..6 {
        let Storm { run, .. } = storm_js(
            &format!("control {i}"),
            &bun("1.4.5"),
            &dir.join("carchive.node"),
            false,
        );
        crashed += usize::from(run.code() != Some(0));
    }
    println!("crashed {crashed}/6 without the shim");
}

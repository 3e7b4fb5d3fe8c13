//! The thread policy on a C program that creates threads every way the
//! policy distinguishes (tests/programs/threads.c).

use std::collections::HashMap;
use std::time::Duration;
use testkit::*;

const M: u64 = 1 << 20;

fn probe(shim: bool, env: &[(&str, &str)]) -> HashMap<String, String> {
    let prog = c_program("threads", &[]);
    let mut c = command(&prog, shim);
    c.envs(env.iter().copied());
    let o = run(
        format!("threads shim={shim} {env:?}"),
        c,
        Duration::from_secs(60),
    );
    o.expect_success();
    assert_eq!(o.stderr(), "", "stderr");
    lines_by_key(o.stdout())
}

fn num(m: &HashMap<String, String>, k: &str) -> u64 {
    m[k].parse().unwrap_or_else(|_| panic!("{k}={}", m[k]))
}

/// What must hold whatever the stack floor is.
fn invariants(m: &HashMap<String, String>, control: &HashMap<String, String>) {
    assert_eq!(
        num(m, "small_attr_after"),
        64 << 10,
        "caller's attr modified"
    );
    assert_eq!(num(m, "large"), 24 * M, "large request changed");
    assert_eq!(
        m["own_stack"], "same_addr=1 size=262144",
        "caller stack touched"
    );
    assert_eq!(m["small_guard"], control["small_guard"], "guard size lost");
    assert_eq!(m["small_affinity_kept"], "1", "affinity lost");
    assert_eq!(m["mask_usr2_hup"], "child_exact=1 creator_restored=1");
    assert_eq!(
        m["mask_none"], "child_exact=1",
        "child left with signals blocked"
    );
    assert_eq!(m["attr_mask"], "child_exact=1", "attr sigmask ignored");
    assert_eq!(m["impossible"], control["impossible"], "error code differs");
    assert_ne!(m["impossible"], "0", "impossible size succeeded");
    assert_eq!(m["cycles_bad"], "0");
    assert_eq!(m["detached"], "100");
    assert_eq!(m["cancelled"], "1");
    assert_eq!(m["pthread_exit"], "77");
}

#[test]
fn default_floor_is_8m() {
    let control = probe(false, &[]);
    assert_eq!(
        num(&control, "small"),
        64 << 10,
        "control: small request kept"
    );
    let m = probe(true, &[]);
    invariants(&m, &control);
    assert_eq!(num(&m, "small"), 8 * M, "64 KiB request not raised");
    assert!(num(&m, "default") >= 8 * M);
}

#[test]
fn floor_16m() {
    let control = probe(false, &[]);
    let m = probe(true, &[("CGOFIX_STACK_MIN", "16M")]);
    invariants(&m, &control);
    assert_eq!(num(&m, "small"), 16 * M);
    assert_eq!(num(&m, "default"), 16 * M, "NULL attr not raised");
    let m = probe(true, &[("CGOFIX_STACK_MIN", "16777216")]);
    assert_eq!(num(&m, "small"), 16 * M);
}

#[test]
fn floor_off() {
    let control = probe(false, &[]);
    for v in ["off", "0"] {
        let m = probe(true, &[("CGOFIX_STACK_MIN", v)]);
        invariants(&m, &control);
        assert_eq!(num(&m, "small"), 64 << 10, "CGOFIX_STACK_MIN={v}");
        assert_eq!(m["default"], control["default"]);
    }
}

#[test]
fn sigmask_off_still_exact() {
    // Without our blocking, glibc's own discipline applies: still exact.
    let control = probe(false, &[]);
    let m = probe(true, &[("CGOFIX_SIGMASK", "off")]);
    invariants(&m, &control);
}

#[test]
fn control_matches_without_shim() {
    // The invariants are real properties, not shim artefacts: they hold on
    // the control run too (except the raised size).
    let control = probe(false, &[]);
    invariants(&control, &control);
}

//! The signal policy at process level: a C program installs handlers through
//! every libc entry point and reports what is really installed.

use std::time::Duration;
use testkit::*;

fn probe(shim: bool, env: &[(&str, &str)]) -> (std::collections::HashMap<String, String>, String) {
    let prog = c_program("sigpolicy", &[]);
    let mut c = command(&prog, shim);
    c.envs(env.iter().copied());
    let o = run(
        format!("sigpolicy shim={shim} {env:?}"),
        c,
        Duration::from_secs(20),
    );
    o.expect_success();
    (lines_by_key(o.stdout()), o.stderr().to_string())
}

const FOREIGN: &[&str] = &[
    "sigaction",
    "signal",
    "ssignal",
    "bsd_signal",
    "sysv_signal",
    "sigset",
];

fn onstack(m: &std::collections::HashMap<String, String>, key: &str) -> bool {
    m[key].starts_with("onstack=1")
}

#[test]
fn every_entry_point_gets_onstack() {
    let (plain, _) = probe(false, &[]);
    let (shim, err) = probe(true, &[]);
    assert_eq!(err, "");
    for k in FOREIGN {
        assert!(!onstack(&plain, k), "{k}: control already has SA_ONSTACK");
        assert!(onstack(&shim, k), "{k}: no SA_ONSTACK under the shim");
    }
    // Dispositions are not handlers: untouched.
    for k in ["sig_ign", "sig_dfl"] {
        assert_eq!(plain[k], shim[k], "{k}");
    }
    // Everything but SA_ONSTACK is kept.
    let flags = |m: &std::collections::HashMap<String, String>, k: &str| {
        let v = m[k].split("flags=0x").nth(1).unwrap();
        i64::from_str_radix(v, 16).unwrap()
    };
    for k in FOREIGN {
        assert_eq!(flags(&plain, k) | 0x0800_0000, flags(&shim, k), "{k}");
    }
    // libc's return values and errno, and handlers still run.
    for k in ["sigkill", "sig0", "signal999", "hits"] {
        assert_eq!(plain[k], shim[k], "{k}");
    }
    assert_eq!(shim["hits"], "2");
    // oldact reports what is really installed (with SA_ONSTACK we added).
    assert_eq!(shim["oldact_is_real"], "handler=1 onstack=1");
}

#[test]
fn onstack_off() {
    let (m, _) = probe(true, &[("CGOFIX_ONSTACK", "off")]);
    for k in FOREIGN {
        assert!(!onstack(&m, k), "{k}");
    }
    // The Go-style explicit request is still honoured on a non-suspend signal.
    assert!(onstack(&m, "reinstall_onstack"));
}

#[test]
fn suspend_signal_refuses_onstack() {
    // SIGUSR2 declared a suspend signal: neither the plain install nor the
    // setsigstack-style re-install may carry SA_ONSTACK; others still do.
    let (m, _) = probe(true, &[("CGOFIX_SUSPEND_SIGNALS", "SIGUSR2")]);
    assert!(!onstack(&m, "sigaction"));
    assert!(!onstack(&m, "reinstall_onstack"));
    assert_eq!(m["oldact_is_real"], "handler=1 onstack=0");
    assert!(onstack(&m, "signal") && onstack(&m, "sigset"));
    // Without the shim the re-install keeps SA_ONSTACK (the bug's mechanism).
    let (plain, _) = probe(false, &[]);
    assert!(onstack(&plain, "reinstall_onstack"));
}

#[test]
fn disable_is_pure_pass_through() {
    let (plain, _) = probe(false, &[]);
    for v in ["1", "yes", "ON"] {
        let (m, err) = probe(
            true,
            &[("CGOFIX_DISABLE", v), ("CGOFIX_SUSPEND_SIGNALS", "usr2")],
        );
        assert_eq!(m, plain, "CGOFIX_DISABLE={v}");
        assert_eq!(err, "");
    }
}

#[test]
fn bad_values_warn_once_and_run_normally() {
    let (plain, _) = probe(false, &[]);
    let (good, _) = probe(true, &[]);
    for (var, val) in [
        ("CGOFIX_ONSTACK", "banana"),
        ("CGOFIX_SUSPEND_SIGNALS", "SIGBOGUS"),
        ("CGOFIX_STACK_MIN", "-5"),
        ("CGOFIX_DISABLE", ""),
        ("CGOFIX_SIGMASK", "2"),
        ("CGOFIX_STACK_MIN", "99999999999999999999G"),
        ("CGOFIX_STAK_MIN", "8M"),
    ] {
        let (m, err) = probe(true, &[(var, val)]);
        assert_eq!(err.lines().count(), 1, "{var}={val}: {err}");
        assert!(
            err.starts_with("cgofix: ") && err.contains(var),
            "{var}: {err}"
        );
        assert_eq!(m, good, "{var}={val} changed behaviour");
        assert_ne!(m, plain);
    }
    // A value that is not UTF-8 is malformed too, not silently ignored.
    use std::os::unix::ffi::OsStrExt;
    let mut c = command(&c_program("sigpolicy", &[]), true);
    c.env("CGOFIX_STACK_MIN", std::ffi::OsStr::from_bytes(b"8\xffM"));
    let o = run(
        "sigpolicy CGOFIX_STACK_MIN=<not UTF-8>",
        c,
        Duration::from_secs(20),
    );
    o.expect_success();
    assert_eq!(o.stderr().lines().count(), 1, "{}", o.stderr());
    assert!(o.stderr().contains("CGOFIX_STACK_MIN"), "{}", o.stderr());
    assert_eq!(lines_by_key(o.stdout()), good);
}

/// JSC's suspend protocol on a thread with a sigaltstack (tests/programs/
/// suspendstack.c). Without the shim, Go's SA_ONSTACK re-install makes the
/// handler run on the sigaltstack (the livelock's mechanism); under the shim
/// it must run on the interrupted thread's own stack, survive the nested
/// resume signal with its published context intact, and every query must
/// report the program's own handler without SA_ONSTACK.
#[test]
fn suspend_handler_runs_on_the_thread_stack() {
    let run_probe = |shim: bool, env: &[(&str, &str)]| {
        let prog = c_program("suspendstack", &[]);
        let mut c = command(&prog, shim);
        c.envs(env.iter().copied());
        let o = run(
            format!("suspendstack shim={shim} {env:?}"),
            c,
            Duration::from_secs(20),
        );
        o.expect_success();
        lines_by_key(o.stdout())
    };
    testkit::assert_suspendstack(run_probe);
}

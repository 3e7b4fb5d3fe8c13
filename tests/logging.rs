//! Diagnostics on request, silence by default.

use std::time::Duration;
use testkit::*;

fn livelock_run(env: &[(&str, &str)]) -> Outcome {
    let dir = fixtures(Go::Newest);
    let mut c = command(&bun("1.3.14"), true);
    c.arg(js("mix.js")).arg("end").arg(dir.join("cshared.node"));
    c.envs(env.iter().copied());
    let o = run(format!("mix bun1.3.14 {env:?}"), c, Duration::from_secs(60));
    o.expect_success();
    o
}

#[test]
fn silent_by_default() {
    let o = livelock_run(&[]);
    assert_eq!(o.stderr(), "");
    let o = livelock_run(&[("CGOFIX_LOG", "warn")]);
    assert_eq!(o.stderr(), "");
}

#[test]
fn debug_says_what_each_hook_decided() {
    let o = livelock_run(&[("CGOFIX_LOG", "debug")]);
    let err = o.stderr();
    for want in [
        "SIGPWR (30) is JavaScriptCore's suspend signal",
        "SIGPWR (30): kept SA_ONSTACK off (suspend signal)",
        "thread 4 MiB -> 8 MiB",
        "patched napi_queue_async_work in ",
        "cshared.node (go1.",
        "Go init hook for module 0: ran",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(
        err.lines().all(|l| l.starts_with("cgofix[")),
        "foreign line in:\n{err}"
    );
}

#[test]
fn log_file_appends_with_pid() {
    let dir = tempdir("log file");
    let path = dir.join("cgofix.log");
    let p = path.to_str().unwrap();
    for _ in 0..2 {
        let o = livelock_run(&[("CGOFIX_LOG", "info"), ("CGOFIX_LOG_FILE", p)]);
        assert_eq!(o.stderr(), "", "log went to stderr");
    }
    let log = std::fs::read_to_string(&path).unwrap();
    let pids: std::collections::HashSet<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("cgofix[")?.split(']').next())
        .collect();
    assert!(pids.len() >= 2, "two processes, appended: {log}");
    assert!(log.contains("active "), "{log}");
    assert!(!log.contains("patched"), "debug line at info level: {log}");
}

//! The N-API hook, the Go init hook and the exit report, on Bun 1.4.5 and
//! Node, with Go c-shared and c-archive addons from both Go toolchains.

use std::path::{Path, PathBuf};
use std::time::Duration;
use testkit::report::{module, num, text};
use testkit::*;

const LIMIT: Duration = Duration::from_secs(60);

const WORKS_PER_MODULE: u64 = MIX_WORKS_PER_MODULE;

/// Runs mix.js under the shim with a report file; returns (stdout, the
/// process's one report line).
fn mix(
    case: &str,
    runtime: &Path,
    exit: &str,
    modules: &[PathBuf],
    env: &[(&str, &str)],
) -> (String, Value) {
    let dir = tempdir(case);
    let report = dir.join("report.json");
    let mut c = command(runtime, true);
    c.arg(js("mix.js")).arg(exit).args(modules);
    c.env("CGOFIX_REPORT", &report).envs(env.iter().copied());
    c.current_dir(&dir);
    let o = run(case, c, LIMIT);
    let want_code = if exit == "end" {
        0
    } else {
        exit.parse().unwrap()
    };
    o.expect_code(want_code);
    assert!(
        o.stdout().contains("CGOFIX-OK mix"),
        "{case}: {}",
        o.stdout()
    );
    (o.stdout().to_string(), report::read_one(&report))
}

fn go_and_plain(runtime_label: &str, runtime: PathBuf) {
    for go in [Go::V119, Go::V123, Go::Newest] {
        let dir = fixtures(go);
        for m in ["cshared.node", "carchive.node"] {
            let case = format!("napi {runtime_label} {} {m}", go.label());
            let (_, r) = mix(
                &case,
                &runtime,
                "end",
                &[dir.join(m), dir.join("plain.node")],
                &[],
            );
            let gm = module(&r, m);
            assert_eq!(gm["napi_patched"], true, "{case}: {gm}");
            assert_eq!(gm["go_init_hook"], "ran", "{case}: {gm}");
            let want_version = match go {
                Go::V119 => "go1.19",
                Go::V123 => "go1.23",
                Go::Newest => "go1.",
            };
            assert!(
                text(gm, "go_version").starts_with(want_version),
                "{case}: {gm}"
            );
            assert!(num(gm, "napi_async_calls") >= 20, "{case}: {gm}");
            // Recorded by Go >= 1.20, inferred from the linking before
            // (interpose::goinfo): the same answer on every toolchain.
            let want = if m == "cshared.node" {
                "c-shared"
            } else {
                "c-archive"
            };
            assert_eq!(gm["buildmode"], want, "{case}: {gm}");
            // The non-Go addon in the same process: patched, no Go init.
            let pm = module(&r, "plain.node");
            assert_eq!(pm["napi_patched"], true, "{case}: {pm}");
            assert!(pm["go_version"].is_null(), "{case}: {pm}");
            assert_eq!(pm["go_init_hook"], "not-go", "{case}: {pm}");
            assert!(num(pm, "napi_async_calls") >= 20, "{case}: {pm}");
            // Process-wide counter = sum of the modules'.
            let total = num(&r, "/napi/queue_async_work_calls");
            assert_eq!(
                total,
                num(gm, "napi_async_calls") + num(pm, "napi_async_calls")
            );
        }
    }
}

#[test]
fn bun_1_4_5_go_and_plain_addons() {
    go_and_plain("bun1.4.5", bun("1.4.5"));
}

#[test]
fn node_go_and_plain_addons() {
    go_and_plain("node", node());
}

#[test]
fn report_survives_process_exit_and_quick_exit() {
    let dir = fixtures(Go::Newest);
    for (label, rt) in [
        ("bun1.4.5", bun("1.4.5")),
        ("bun1.3.14", bun("1.3.14")),
        ("node", node()),
    ] {
        for exit in ["end", "3"] {
            let case = format!("report {label} exit={exit}");
            let (_, r) = mix(&case, &rt, exit, &[dir.join("cshared.node")], &[]);
            // The exit report's version is the library's (this package's).
            assert_eq!(text(&r, "cgofix"), env!("CARGO_PKG_VERSION"), "{case}: {r}");
            assert!(num(&r, "pid") > 0, "{case}: {r}");
            let want_suspend: &[&str] = if label.starts_with("bun") {
                &["SIGPWR"]
            } else {
                &[]
            };
            assert_eq!(
                r["signals"]["suspend_signals"],
                Value::from(want_suspend),
                "{case}: {r}"
            );
            assert!(num(&r, "/threads/created") > 0, "{case}: {r}");
        }
    }
}

#[test]
fn napi_off_and_go_init_off() {
    let dir = fixtures(Go::Newest);
    let (_, r) = mix(
        "napi off",
        &bun("1.4.5"),
        "end",
        &[dir.join("cshared.node")],
        &[("CGOFIX_NAPI", "off")],
    );
    let m = module(&r, "cshared.node");
    assert_eq!(m["napi_patched"], false, "{m}");
    assert_eq!(num(m, "napi_async_calls"), 0);
    let (_, r) = mix(
        "go init off",
        &bun("1.4.5"),
        "end",
        &[dir.join("cshared.node")],
        &[("CGOFIX_GO_INIT", "off")],
    );
    let m = module(&r, "cshared.node");
    assert_eq!(m["napi_patched"], true, "{m}");
    assert_eq!(m["go_init_hook"], "skipped", "{m}");
}

/// Builds the plain C addon with extra linker flags into target/programs.
fn plain_variant(name: &str, flags: &[&str]) -> PathBuf {
    let c = root().join("tests/fixtures/c");
    let napi = format!("-I{}", deps().napi_include.display());
    let own = format!("-I{}", c.display());
    let mut all = vec!["-shared", "-fPIC", &napi, &own];
    all.extend(flags);
    all.push("-lpthread");
    let sources = ["addon.c", "plain_backend.c", "probe.c"].map(|f| c.join(f));
    testkit::cc(name, &sources, &all)
}

#[test]
fn bind_now_relro_and_lazy_addons() {
    let variants = [
        plain_variant("lazy.node", &["-Wl,-z,lazy", "-Wl,-z,norelro"]),
        plain_variant("now.node", &["-Wl,-z,now", "-Wl,-z,norelro"]),
        plain_variant("relro_now.node", &["-Wl,-z,relro,-z,now"]),
        plain_variant("noplt.node", &["-fno-plt", "-Wl,-z,relro,-z,now"]),
    ];
    for (label, rt) in [("bun1.4.5", bun("1.4.5")), ("node", node())] {
        let (_, r) = mix(&format!("variants {label}"), &rt, "end", &variants, &[]);
        for v in ["lazy.node", "now.node", "relro_now.node", "noplt.node"] {
            let m = module(&r, v);
            assert_eq!(m["napi_patched"], true, "{label} {v}: {m}");
            assert_eq!(
                num(m, "napi_async_calls"),
                WORKS_PER_MODULE,
                "{label} {v}: {m}"
            );
        }
    }
}

#[test]
fn constructor_calls_reach_the_host() {
    // The documented limit (README, "Why a GOT rewrite"): a call from the
    // addon's own constructor runs inside the real dlopen, before the
    // rewrite. It must still reach the host's function (which answers
    // napi_invalid_arg = 1 without an env) and is simply not counted.
    let ctor = root().join("tests/fixtures/c/ctor_call.c");
    let addon = plain_variant("ctor.node", &[ctor.to_str().unwrap()]);
    for (label, rt) in [("bun1.4.5", bun("1.4.5")), ("node", node())] {
        let (out, r) = mix(
            &format!("ctor {label}"),
            &rt,
            "end",
            std::slice::from_ref(&addon),
            &[],
        );
        assert!(out.contains("ctor-status ctor.node=1\n"), "{label}: {out}");
        let m = module(&r, "ctor.node");
        assert_eq!(m["napi_patched"], true, "{label}: {m}");
        // mix.js's works, through the rewritten slot; the constructor's
        // call is not among them.
        assert_eq!(num(m, "napi_async_calls"), WORKS_PER_MODULE, "{label}: {m}");
        assert_eq!(
            num(&r, "/napi/queue_async_work_calls"),
            WORKS_PER_MODULE,
            "{label}: {r}"
        );
    }
}

#[test]
fn go_init_hook_runs_once_under_racing_workers() {
    // Eight Workers load the same Go module and queue their first async
    // work at about the same time: the hook must run exactly once, and
    // every Worker's work must still complete.
    let dir = fixtures(Go::Newest);
    for module in ["cshared.node", "carchive.node"] {
        let case = format!("init race {module}");
        let tmp = tempdir(&case);
        let log = tmp.join("log");
        let report = tmp.join("report.json");
        let mut c = command(&bun("1.4.5"), true);
        c.arg(js("workers.js"))
            .arg(dir.join(module))
            .args(["8", "2"])
            .env("CGOFIX_LOG", "debug")
            .env("CGOFIX_LOG_FILE", &log)
            .env("CGOFIX_REPORT", &report)
            .current_dir(&tmp);
        let o = run(&case, c, LIMIT);
        o.expect_success();
        assert!(o.stdout().contains("CGOFIX-OK workers"), "{o:?}");
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        let hooks: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("Go init hook for module"))
            .collect();
        assert_eq!(hooks.len(), 1, "{case}: {hooks:?}");
        assert!(hooks[0].ends_with(": ran"), "{case}: {hooks:?}");
        let r = report::read_one(&report);
        let m = self::module(&r, module);
        assert_eq!(m["go_init_hook"], "ran", "{case}: {m}");
        assert!(num(m, "napi_async_calls") >= 8, "{case}: {m}");
    }
}

#[test]
fn ordinary_addon_behaves_the_same_with_and_without_the_shim() {
    // A Go-free N-API addon (plain.node): same results, same output, same
    // exit code, nothing on stderr, with or without the shim.
    let plain = fixtures(Go::Newest).join("plain.node");
    for (label, rt) in [("bun1.4.5", bun("1.4.5")), ("node", node())] {
        let outcome = |shim: bool| {
            let mut c = command(&rt, shim);
            c.arg(js("mix.js")).arg("end").arg(&plain);
            let o = run(format!("plain addon {label} shim={shim}"), c, LIMIT);
            o.expect_success();
            // The last word is a timestamp.
            let out = o.stdout().trim_end();
            let out = out[..out.rfind(' ').unwrap_or(out.len())].to_string();
            (out, o.stderr().to_string())
        };
        let (without, with) = (outcome(false), outcome(true));
        assert!(
            without.0.starts_with("CGOFIX-OK mix"),
            "{label}: {without:?}"
        );
        assert_eq!(with.1, "", "{label}: stderr under the shim");
        // The pool thread's stack is the one thing the shim changes on
        // purpose (the stack floor), on Bun; compare the rest.
        let strip = |s: &str| {
            s.split(' ')
                .filter(|w| !w.starts_with("stack="))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(strip(&with.0), strip(&without.0), "{label}");
        assert_eq!(with.1, without.1, "{label}: stderr");
    }
}

#[test]
fn same_object_twice_is_one_module() {
    let dir = fixtures(Go::Newest);
    let p = dir.join("cshared.node");
    let (out, r) = mix("twice", &bun("1.4.5"), "end", &[p.clone(), p], &[]);
    let listed = report::modules(&r)
        .iter()
        .filter(|m| text(m, "path").ends_with("/cshared.node"))
        .count();
    assert_eq!(listed, 1, "{r}");
    // mix.js loads the path twice; require() hands back the same module, so
    // one object queues the works of both rounds.
    let works = 2 * WORKS_PER_MODULE;
    assert!(out.contains(&format!("works={works} ")), "{out}");
    let m = module(&r, "cshared.node");
    assert_eq!(num(m, "napi_async_calls"), works, "{m}");
}

#[test]
fn addon_needing_a_go_library() {
    // A C addon with DT_NEEDED on a Go c-shared library: both are new
    // objects of one dlopen; the Go one is not an N-API module, so its init
    // hook runs right after dlopen.
    let dir = fixtures(Go::Newest);
    let needs = plain_variant(
        "needs_go.node",
        &[
            &format!("-L{}", dir.display()),
            // No symbol of it is used: keep the DT_NEEDED anyway.
            "-Wl,--no-as-needed",
            "-l:ffi.so",
            &format!("-Wl,-rpath,{}", dir.display()),
        ],
    );
    let (_, r) = mix("needs go", &bun("1.4.5"), "end", &[needs], &[]);
    let a = module(&r, "needs_go.node");
    assert_eq!(a["napi_patched"], true, "{a}");
    let g = module(&r, "ffi.so");
    assert!(text(g, "go_version").starts_with("go1."), "{g}");
    assert_eq!(g["go_init_hook"], "ran", "{g}");
}

#[test]
fn go_library_through_bun_ffi() {
    let dir = fixtures(Go::Newest);
    let tmp = tempdir("ffi");
    let rep = tmp.join("r.json");
    let mut c = command(&bun("1.4.5"), true);
    c.arg(js("livelock.js")).arg(dir.join("ffi.so")).arg("ffi");
    c.env("CGOFIX_REPORT", &rep);
    run("bun:ffi go library", c, LIMIT).expect_success();
    let r = report::read_one(&rep);
    let g = module(&r, "ffi.so");
    assert_eq!(g["go_init_hook"], "ran", "{g}");
    assert_eq!(g["napi_patched"], false, "{g}");
    assert_eq!(g["buildmode"], "c-shared", "{g}");
}

#[test]
fn pool_thread_stacks() {
    // Bun's pool threads ("Bun Pool N", 4 MiB without the shim) run async
    // work execute callbacks; under the shim they get the 8 MiB floor.
    // Node's libuv pool is 8 MiB already and stays so.
    let dir = fixtures(Go::Newest);
    let stack = |rt: &Path, shim: bool| -> u64 {
        let mut c = command(rt, shim);
        c.arg(js("async20.js")).arg(dir.join("cshared.node"));
        let o = run(format!("async20 {} shim={shim}", rt.display()), c, LIMIT);
        o.expect_success();
        o.stdout()
            .split("stack=")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no stack in {}", o.stdout()))
    };
    let b = bun("1.4.5");
    assert_eq!(stack(&b, false), 4 << 20, "control: Bun pool thread");
    assert!(stack(&b, true) >= 8 << 20, "Bun pool thread under the shim");
    assert_eq!(stack(&node(), false), 8 << 20);
    assert_eq!(stack(&node(), true), 8 << 20);
}

#[test]
fn go_init_hook_repairs_what_bypassed_libc() {
    // SIGUSR2 declared a suspend signal; the program sets SA_ONSTACK on it
    // with a raw system call (invisible to the sigaction hook), then opens a
    // Go library: the Go init hook's re-check must take the flag off again.
    let prog = c_program("rawgo", &["-ldl"]);
    let dir = fixtures(Go::Newest);
    let go = |shim: bool, env: &[(&str, &str)]| {
        let mut c = command(&prog, shim);
        c.arg(dir.join("ffi.so")).envs(env.iter().copied());
        let o = run(format!("rawgo shim={shim} {env:?}"), c, LIMIT);
        o.expect_success();
        lines_by_key(o.stdout())
    };
    let control = go(false, &[]);
    assert_eq!(control["before"], "1");
    assert_eq!(control["after"], "1", "control: nothing repairs it");
    // Without the trampoline the handler itself is installed, and the raw
    // call's SA_ONSTACK sticks until the Go init hook takes it off.
    let no_tramp = [
        ("CGOFIX_SUSPEND_SIGNALS", "SIGUSR2"),
        ("CGOFIX_SUSPEND_TRAMPOLINE", "off"),
    ];
    let fixed = go(true, &no_tramp);
    assert_eq!(
        fixed["before"], "1",
        "the raw call really bypassed the hook"
    );
    assert_eq!(fixed["after"], "0", "the Go init hook did not repair it");
    let off = go(true, &[no_tramp[0], no_tramp[1], ("CGOFIX_GO_INIT", "off")]);
    assert_eq!(off["after"], "1", "CGOFIX_GO_INIT=off still ran the hook");
    // With the trampoline, the kernel holds the trampoline (which carries
    // SA_ONSTACK by design); the raw re-install changes nothing, and queries
    // report JSC's recorded flags: never SA_ONSTACK.
    let tramp = go(true, &[("CGOFIX_SUSPEND_SIGNALS", "SIGUSR2")]);
    assert_eq!(tramp["before"], "0");
    assert_eq!(tramp["after"], "0");
}

#[test]
fn go_library_opened_from_a_constructor() {
    // The Go runtime starts inside a nested dlopen (loader lock held): the
    // init hook must not wait there (deadlock risk) but once the outermost
    // dlopen has returned.
    let lib = testkit::cc(
        "libnested.so",
        &[program_source("nestedlib")],
        &["-shared", "-fPIC", "-ldl"],
    );
    let prog = c_program("nested", &["-ldl"]);
    let dir = fixtures(Go::Newest);
    let tmp = tempdir("nested");
    let rep = tmp.join("r.json");
    let mut c = command(&prog, true);
    c.arg(&lib)
        .env("NESTED_GO", dir.join("ffi.so"))
        .env("CGOFIX_REPORT", &rep);
    let o = run("nested dlopen of a Go library", c, LIMIT);
    o.expect_success();
    // nestedlib.c's nested_ready() returns 42: the library finished loading
    // (its constructor, which opened the Go library, returned) and answers.
    assert_eq!(lines_by_key(o.stdout())["ready"], "42");
    let r = report::read_one(&rep);
    let g = module(&r, "ffi.so");
    assert_eq!(g["go_init_hook"], "ran", "{g}");
}

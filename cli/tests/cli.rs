//! End-to-end tests of the `cgofix` binary. Every process started here runs
//! under a timeout (`testkit::run`), so a hang fails the test with the
//! command line instead of stalling the suite.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;
use testkit::{Finished as Out, Value, is_root, serde_json, tempdir};

const BIN: &str = env!("CARGO_BIN_EXE_cgofix");

/// Runs `cmd` to completion; a hang after `limit` fails the test, naming
/// the command line.
fn run_limited(cmd: &mut Command, limit: Duration) -> Out {
    testkit::run(format!("{cmd:?}"), cmd, limit).into_finished()
}

fn run(cmd: &mut Command) -> Out {
    run_limited(cmd, Duration::from_secs(20))
}

/// `--json` output, parsed by serde_json (not the binary's own reader).
fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

fn cgofix(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("CGOFIX_LIB")
        .env_remove("LD_PRELOAD");
    c
}

fn write_exe(path: &Path, body: &str) {
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn have(tool: &str) -> bool {
    let mut c = Command::new("sh");
    c.args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null());
    run(&mut c).status.success()
}

/// Natively built objects shared by the tests: built once per test binary.
struct Natives {
    /// A plain C shared object (no Go).
    plain: PathBuf,
    /// Go c-shared library and a C addon linking a Go c-archive (None without Go).
    go_cshared: Option<PathBuf>,
    go_carchive: Option<PathBuf>,
}

fn natives() -> &'static Natives {
    static N: OnceLock<Natives> = OnceLock::new();
    N.get_or_init(|| {
        // Under target/tmp (removed by `cargo clean`), not the system temp dir:
        // nothing runs after the last test to delete it.
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let dir = tmp.join(format!("cli-natives-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert!(have("cc"), "a C compiler (cc) is needed for these tests");
        std::fs::write(dir.join("plain.c"), "int plain_add(int a, int b) { return a + b; }\n").unwrap();
        let cc = run(Command::new("cc")
            .current_dir(&dir)
            .args(["-shared", "-fPIC", "-o", "plain.so", "plain.c"]));
        assert!(cc.status.success(), "cc: {}", cc.stderr);
        let (go_cshared, go_carchive);
        // scripts/setup-deps.sh installs Go 1.19: without it these tests
        // would check nothing Go-related, so its absence is a failure.
        let go_bin = testkit::Go::V119.binary();
        assert!(
            go_bin.exists(),
            "{} missing: run scripts/setup-deps.sh",
            go_bin.display()
        );
        {
            std::fs::write(
                dir.join("main.go"),
                "package main\n\nimport \"C\"\n\n//export GoAdd\nfunc GoAdd(a, b C.int) C.int { return a + b }\n\nfunc main() {}\n",
            )
            .unwrap();
            // A stable cache keeps re-runs fast.
            let cache = tmp.join("cli-gocache");
            let go = |mode: &str, out: &str| {
                let o = run_limited(
                    Command::new(&go_bin)
                        .current_dir(&dir)
                        .args(["build", &format!("-buildmode={mode}"), "-o", out, "main.go"])
                        .env("GOCACHE", &cache)
                        .env("GOPATH", dir.join("gopath"))
                        .env("GOENV", "off")
                        .env("GOFLAGS", "")
                        .env("GO111MODULE", "off")
                        .env("GOTOOLCHAIN", "local")
                        .env("CGO_ENABLED", "1"),
                    Duration::from_secs(300),
                );
                assert!(o.status.success(), "go build {mode}: {}", o.stderr);
            };
            go("c-shared", "libgo.so");
            go("c-archive", "libgo.a");
            std::fs::write(
                dir.join("addon.c"),
                "int GoAdd(int, int);\nint napi_register_module_v1(void) { return GoAdd(1, 2); }\n",
            )
            .unwrap();
            let cc = run(Command::new("cc").current_dir(&dir).args([
                "-shared",
                "-fPIC",
                "-o",
                "carchive.node",
                "addon.c",
                "libgo.a",
                "-lpthread",
            ]));
            assert!(cc.status.success(), "cc carchive: {}", cc.stderr);
            go_cshared = Some(dir.join("libgo.so"));
            go_carchive = Some(dir.join("carchive.node"));
        }
        Natives {
            plain: dir.join("plain.so"),
            go_cshared,
            go_carchive,
        }
    })
}

fn fake_bun(dir: &Path, version: &str) -> PathBuf {
    let p = dir.join(format!("bun-{version}"));
    write_exe(
        &p,
        &format!("#!/bin/sh\n[ \"$1\" = --version ] && echo {version} && exit 0\nexit 3\n"),
    );
    p
}

fn doctor_json(dir: &Path, bun: &Path) -> (Out, Value) {
    let o = run(cgofix(&["doctor", "--json", "--bun"]).arg(bun).arg(dir));
    let v = parse_json(&o.stdout);
    (o, v)
}

fn module<'a>(v: &'a Value, suffix: &str) -> &'a Value {
    v.get("modules")
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .find(|m| {
            m.get("path")
                .and_then(Value::as_str)
                .unwrap()
                .ends_with(suffix)
        })
        .unwrap_or_else(|| panic!("no module {suffix} in {v:#}"))
}

#[test]
fn doctor_on_project_tree() {
    let n = natives();
    let t = tempdir("cli tree");
    let root = t.path().join("app");
    let nm = root.join("node_modules");
    for d in [
        "go-addon/build/Release",
        "carchive-addon",
        "plain-addon/lib",
        "js-only",
    ] {
        std::fs::create_dir_all(nm.join(d)).unwrap();
    }
    std::fs::write(nm.join("js-only/index.js"), "module.exports = 1;\n").unwrap();
    std::fs::write(
        root.join("package.json"),
        r#"{"name": "app", "main": "server.js"}"#,
    )
    .unwrap();
    std::fs::copy(&n.plain, nm.join("plain-addon/lib/plain.node")).unwrap();
    // A linker script named .so: not ELF, skipped quietly.
    std::fs::write(
        nm.join("plain-addon/lib/libc.so"),
        "/* GNU ld script */\nGROUP ( x )\n",
    )
    .unwrap();
    if let (Some(cs), Some(ca)) = (&n.go_cshared, &n.go_carchive) {
        std::fs::copy(cs, nm.join("go-addon/build/Release/libgo.so")).unwrap();
        std::fs::copy(ca, nm.join("carchive-addon/addon.node")).unwrap();
    }
    // Symlink loops: to an ancestor, to itself, and a dangling link.
    std::os::unix::fs::symlink("../..", nm.join("js-only/loop")).unwrap();
    std::os::unix::fs::symlink("self", nm.join("self")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/x.node", nm.join("dangling.node")).unwrap();
    // An unreadable module and an unreadable directory.
    let locked = nm.join("locked.node");
    std::fs::copy(&n.plain, &locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let locked_dir = nm.join("locked-dir");
    std::fs::create_dir(&locked_dir).unwrap();
    std::fs::copy(&n.plain, locked_dir.join("hidden.node")).unwrap();
    std::fs::set_permissions(&locked_dir, std::fs::Permissions::from_mode(0o000)).unwrap();

    let bins = tempdir("cli buns");
    let old = fake_bun(bins.path(), "1.3.14");
    let new = fake_bun(bins.path(), "1.4.5");
    let have_go = n.go_cshared.is_some();

    let (o, v) = doctor_json(&root, &old);
    assert!(o.stderr.is_empty(), "stderr: {}", o.stderr);
    let plain = module(&v, "plain-addon/lib/plain.node");
    assert_eq!(plain.get("go"), Some(&Value::Bool(false)));
    assert_eq!(plain.get("buildmode"), Some(&Value::Null));
    assert_eq!(plain.get("go_version"), Some(&Value::Null));
    assert_eq!(
        plain.get("exports_cgo_wait_runtime_init_done"),
        Some(&Value::Bool(false))
    );
    let modules = v.get("modules").unwrap().as_array().unwrap();
    assert!(
        !modules.iter().any(|m| m
            .get("path")
            .unwrap()
            .as_str()
            .unwrap()
            .ends_with("libc.so")),
        "a non-ELF .so was listed"
    );
    // Each real module exactly once, despite the loop back to the root.
    let plain_count = modules
        .iter()
        .filter(|m| {
            m.get("path")
                .unwrap()
                .as_str()
                .unwrap()
                .ends_with("plain.node")
        })
        .count();
    assert_eq!(plain_count, 1);
    let notes: Vec<&str> = v
        .get("notes")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("already visited")),
        "no loop note: {notes:?}"
    );
    let unreadable_noted = |notes: &[&str]| {
        assert!(
            notes
                .iter()
                .any(|n| n.contains("locked.node: cannot read (permission denied)")),
            "{notes:?}"
        );
        assert!(
            notes
                .iter()
                .any(|n| n.contains("locked-dir: cannot read directory (permission denied)")),
            "{notes:?}"
        );
    };
    if is_root() {
        // root reads mode-000 files anyway: they are inspected like any other.
        println!("note: running as root, so mode 000 does not make files unreadable");
        assert!(module(&v, "locked.node").get("go") == Some(&Value::Bool(false)));
        module(&v, "locked-dir/hidden.node");
        // Exercise the unreadable path for real as an unprivileged user.
        let nobody_can_see = have("setpriv")
            && run(Command::new("setpriv")
                .args([
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    "sh",
                    "-c",
                ])
                .arg("test -x \"$0\" && test -r \"$1\" && test -x \"$2\"")
                .args([Path::new(BIN), root.as_path(), new.as_path()]))
            .status
            .success();
        if nobody_can_see {
            let o = run(Command::new("setpriv")
                .args([
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    BIN,
                    "doctor",
                    "--json",
                    "--bun",
                ])
                .arg(&new)
                .arg(&root));
            let v = parse_json(&o.stdout);
            let notes: Vec<&str> = v
                .get("notes")
                .unwrap()
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap())
                .collect();
            unreadable_noted(&notes);
            assert_eq!(o.status.code(), Some(0));
        } else {
            println!(
                "note: cannot run as uid 65534 here: the unreadable-file path is not exercised"
            );
        }
    } else {
        unreadable_noted(&notes);
    }
    let bun = v.get("bun").unwrap();
    assert_eq!(bun.get("version").unwrap().as_str(), Some("1.3.14"));
    assert_eq!(bun.get("affected"), Some(&Value::Bool(true)));
    assert!(
        bun.get("evidence")
            .unwrap()
            .as_str()
            .unwrap()
            .contains("oven-sh/bun#31158")
    );
    assert!(
        v.get("run_command")
            .unwrap()
            .as_str()
            .unwrap()
            .ends_with(&format!("run -- {} server.js", old.display())),
        "{v:?}"
    );

    if have_go {
        let cs = module(&v, "go-addon/build/Release/libgo.so");
        assert!(
            cs.get("go_version")
                .unwrap()
                .as_str()
                .unwrap()
                .starts_with("go1.19")
        );
        assert_eq!(cs.get("buildmode").unwrap().as_str(), Some("c-shared"));
        assert_eq!(
            cs.get("exports_cgo_wait_runtime_init_done"),
            Some(&Value::Bool(true))
        );
        let ca = module(&v, "carchive-addon/addon.node");
        assert_eq!(ca.get("buildmode").unwrap().as_str(), Some("c-archive"));
        assert!(
            ca.get("go_version")
                .unwrap()
                .as_str()
                .unwrap()
                .starts_with("go1.19")
        );
        assert_eq!(v.get("go_modules").unwrap().as_u64(), Some(2));
        // Two Go objects: two runtimes if one process loads both.
        let w = v.get("warnings").unwrap().as_array().unwrap();
        assert_eq!(w.len(), 1, "{v}");
        let w0 = w[0].as_str().unwrap();
        for want in ["libgo.so", "addon.node", "golang/go#18976"] {
            assert!(w0.contains(want), "{want} missing: {w0}");
        }
        assert_eq!(v.get("shim_needed"), Some(&Value::Bool(true)));
        assert_eq!(o.status.code(), Some(1), "Go + Bun 1.3.14 needs the shim");
    } else {
        assert_eq!(o.status.code(), Some(0));
    }

    // Bun 1.4.5: fixed upstream, never needed.
    let (o, v) = doctor_json(&root, &new);
    assert_eq!(o.status.code(), Some(0), "{}", o.stdout);
    assert_eq!(
        v.get("bun").unwrap().get("affected"),
        Some(&Value::Bool(false))
    );
    assert_eq!(v.get("shim_needed"), Some(&Value::Bool(false)));

    // Human output: the same facts, and the command to run.
    let o = run(cgofix(&["doctor", "--bun"]).arg(&old).arg(&root));
    assert_eq!(o.status.code(), Some(if have_go { 1 } else { 0 }));
    assert!(o.stdout.contains("version 1.3.14"), "{}", o.stdout);
    assert!(o.stdout.contains("AFFECTED"), "{}", o.stdout);
    assert!(o.stdout.contains("Evidence: measured by this project"));
    if have_go {
        assert!(o.stdout.contains("Go go1.19"), "{}", o.stdout);
        assert!(
            o.stdout
                .contains("c-shared, exports _cgo_wait_runtime_init_done")
        );
        assert!(o.stdout.contains("Verdict: the shim is NEEDED"));
        assert!(
            o.stdout
                .contains(&format!("run -- {} server.js", old.display()))
        );
    }
    let o = run(cgofix(&["doctor", "--bun"]).arg(&new).arg(&root));
    assert_eq!(o.status.code(), Some(0));
    assert!(
        o.stdout.contains("fixed upstream in Bun 1.4.4"),
        "{}",
        o.stdout
    );
}

#[test]
fn doctor_verdicts_and_exit_codes() {
    let n = natives();
    let t = tempdir("cli verdicts");
    let bins = tempdir("cli verdict-buns");
    let no_go = t.path().join("no-go");
    std::fs::create_dir_all(no_go.join("node_modules/x")).unwrap();
    std::fs::copy(&n.plain, no_go.join("node_modules/x/x.node")).unwrap();
    // No Go module: never needed, whatever the Bun.
    for v in ["1.3.14", "1.4.5"] {
        let o = run(cgofix(&["doctor", "--bun"])
            .arg(fake_bun(bins.path(), v))
            .arg(&no_go));
        assert_eq!(o.status.code(), Some(0), "{v}: {}", o.stdout);
        assert!(o.stdout.contains("no Go native module"), "{}", o.stdout);
    }
    let Some(go) = &n.go_cshared else {
        println!("note: no Go toolchain: affected/not-affected with a Go module skipped");
        return;
    };
    let with_go = t.path().join("with-go");
    std::fs::create_dir_all(&with_go).unwrap();
    std::fs::copy(go, with_go.join("addon.node")).unwrap();
    for (v, code) in [
        ("1.0.36", 1),
        ("1.1.45", 1),
        ("1.3.14", 1),
        ("1.4.0", 1),
        ("1.4.3", 1),
        ("1.4.4", 0),
        ("1.4.5", 0),
        ("1.5.2", 0),
    ] {
        let o = run(cgofix(&["doctor", "--bun"])
            .arg(fake_bun(bins.path(), v))
            .arg(&with_go));
        assert_eq!(o.status.code(), Some(code), "bun {v}: {}", o.stdout);
        // One Go module: one runtime, nothing to warn about.
        assert!(!o.stdout.contains("WARNING:"), "{}", o.stdout);
        if v.starts_with("1.4.") && code == 1 {
            assert!(o.stdout.contains("1.4.0 and 1.4.3"), "{}", o.stdout);
            assert!(o.stdout.contains("--cpu-prof"));
        }
    }
    // A bun whose version cannot be read: assumed affected, and said so.
    let broken = bins.path().join("bun-broken");
    write_exe(&broken, "#!/bin/sh\nexit 1\n");
    let o = run(cgofix(&["doctor", "--bun"]).arg(&broken).arg(&with_go));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        o.stdout.contains("version unknown: assuming affected"),
        "{}",
        o.stdout
    );
    // The bun found on PATH.
    let pathdir = bins.path().join("path");
    std::fs::create_dir_all(&pathdir).unwrap();
    std::fs::copy(fake_bun(bins.path(), "1.2.0"), pathdir.join("bun")).unwrap();
    let o = run(cgofix(&["doctor"]).arg(&with_go).env("PATH", &pathdir));
    assert_eq!(o.status.code(), Some(1), "{}", o.stdout);
    assert!(o.stdout.contains(&format!(
        "Bun: {}, version 1.2.0",
        pathdir.join("bun").display()
    )));
    // A single file instead of a directory.
    let o = run(cgofix(&["doctor", "--bun"])
        .arg(fake_bun(bins.path(), "1.3.14"))
        .arg(with_go.join("addon.node")));
    assert_eq!(o.status.code(), Some(1), "{}", o.stdout);
    // No bun anywhere: nothing to fix, exit 0, and it says how to check one.
    let o = run(cgofix(&["doctor"]).arg(&with_go).env("PATH", t.path()));
    assert_eq!(o.status.code(), Some(0), "{}", o.stdout);
    assert!(o.stdout.contains("Bun: not found on PATH"));
}

#[test]
fn doctor_errors() {
    let t = tempdir("cli doctor-errors");
    for (args, needle) in [
        (
            vec!["doctor", "/nonexistent/cgofix-dir"],
            "/nonexistent/cgofix-dir: No such file",
        ),
        (
            vec!["doctor", "--bun", "/nonexistent/bun", "."],
            "--bun /nonexistent/bun",
        ),
        (
            vec!["doctor", "--frobnicate"],
            "unknown option '--frobnicate'",
        ),
        (vec!["doctor", "a", "b"], "unexpected argument 'b'"),
        (vec!["doctor", "--bun"], "--bun needs a value"),
    ] {
        let o = run(cgofix(&args).current_dir(t.path()));
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", o.stderr);
        assert_eq!(o.stderr.lines().count(), 1, "{args:?}: {}", o.stderr);
        assert!(o.stderr.starts_with("cgofix: "), "{}", o.stderr);
        assert!(o.stderr.contains(needle), "{args:?}: {}", o.stderr);
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn doctor_is_fast_on_10000_files() {
    let n = natives();
    let t = tempdir("cli big");
    let nm = t.path().join("node_modules");
    let mut files = 0;
    for p in 0..500 {
        let pkg = nm.join(format!("pkg{p}/lib"));
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::write(
            nm.join(format!("pkg{p}/package.json")),
            "{\"main\":\"lib/f0.js\"}",
        )
        .unwrap();
        files += 1;
        for f in 0..19 {
            std::fs::write(pkg.join(format!("f{f}.js")), "module.exports = 42;\n").unwrap();
            files += 1;
        }
    }
    for p in [7, 123, 250, 499] {
        let dst = nm.join(format!("pkg{p}/build.node"));
        std::fs::copy(n.go_cshared.as_ref().unwrap_or(&n.plain), dst).unwrap();
        files += 1;
    }
    std::fs::copy(&n.plain, nm.join("pkg3/native.node")).unwrap();
    files += 1;
    assert!(files >= 10_000);
    let bins = tempdir("cli big-bun");
    let bun = fake_bun(bins.path(), "1.3.14");
    // Warm the page cache once, then measure.
    run(cgofix(&["doctor", "--json", "--bun"])
        .arg(&bun)
        .arg(t.path()));
    let o = run(cgofix(&["doctor", "--json", "--bun"])
        .arg(&bun)
        .arg(t.path()));
    let v = parse_json(&o.stdout);
    assert_eq!(v.get("files_scanned").unwrap().as_u64(), Some(files));
    assert_eq!(v.get("modules").unwrap().as_array().unwrap().len(), 5);
    let scan_ms = v.get("scan_ms").unwrap().as_u64().unwrap();
    println!(
        "doctor on {files} files: {:.0} ms wall (process incl. `bun --version`), scan {scan_ms} ms ({} build)",
        o.elapsed.as_secs_f64() * 1000.0,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    let limit = if cfg!(debug_assertions) {
        Duration::from_secs(3)
    } else {
        Duration::from_secs(1)
    };
    assert!(
        o.elapsed < limit,
        "doctor took {:?} (limit {limit:?})",
        o.elapsed
    );
}

const SAMPLE: &str = r#"{"cgofix": "0.1.0", "pid": 4242, "exe": "/usr/bin/bun", "signals": {"suspend_signals": ["SIGPWR"], "onstack_added": 3, "onstack_refused": 1}, "threads": {"created": 12, "stack_raised": 5}, "napi": {"queue_async_work_calls": 20}, "modules": [{"path": "/app/addon.node", "go_version": "go1.27.3", "buildmode": "c-shared", "napi_patched": true, "go_init_hook": "ran", "napi_async_calls": 20}]}"#;

#[test]
fn report_summaries_and_errors() {
    let t = tempdir("cli report");
    let f = t.path().join("r.json");
    std::fs::write(
        &f,
        format!(
            "{SAMPLE}\n{{\"cgofix\":\"0.1.0\",\"pid\":4243,\"exe\":\"/bin/sh\",\"modules\":[]}}\n"
        ),
    )
    .unwrap();
    let o = run(cgofix(&["report"]).arg(&f));
    assert_eq!(o.status.code(), Some(0), "{}", o.stderr);
    for want in [
        "2 reports (one per process):",
        "process 4242 (/usr/bin/bun), cgofix 0.1.0",
        "SA_ONSTACK added to 3 handler(s), kept off 1",
        "threads: 12 created, 5 stack(s) raised",
        "/app/addon.node\n        go1.27.3 c-shared; napi_queue_async_work patched; Go init hook: ran; 20 async call(s)",
        "process 4243 (/bin/sh)",
        "modules: none loaded",
    ] {
        assert!(o.stdout.contains(want), "missing {want:?} in\n{}", o.stdout);
    }
    let o = run(cgofix(&["report", "--json"]).arg(&f));
    let v = parse_json(&o.stdout);
    assert_eq!(v.as_array().unwrap().len(), 2);

    for (content, needle) in [
        (
            "{\"cgofix\": \"0.1.0\", \"pid\": 12,",
            "not valid JSON: line 1 column 31: unexpected end of input",
        ),
        ("garbage", "not valid JSON"),
        ("", "empty"),
        ("{\"pid\": 1}", "not a cgofix report"),
        (
            "{\"cgofix\":\"0.1.0\",\"threads\":{\"created\":\"many\"}}",
            "threads.\"created\"",
        ),
    ] {
        std::fs::write(&f, content).unwrap();
        let o = run(cgofix(&["report"]).arg(&f));
        assert_eq!(o.status.code(), Some(2), "{content:?}");
        assert_eq!(o.stderr.lines().count(), 1, "{content:?}: {}", o.stderr);
        assert!(o.stderr.starts_with("cgofix: "), "{}", o.stderr);
        assert!(o.stderr.contains(needle), "{content:?}: {}", o.stderr);
        assert!(o.stdout.is_empty());
    }
    let o = run(cgofix(&["report"]).arg(t.path().join("missing.json")));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        o.stderr.contains("missing.json: No such file or directory"),
        "{}",
        o.stderr
    );
    let o = run(&mut cgofix(&["report"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stderr.contains("no report file given"));
}

/// An empty shared object standing in for libcgofix.so (the real one would
/// also work, but this keeps the test independent of the library build).
fn stub_lib(dir: &Path) -> PathBuf {
    std::fs::write(dir.join("stub.c"), "int cgofix_stub;\n").unwrap();
    let o = run(Command::new("cc").current_dir(dir).args([
        "-shared",
        "-fPIC",
        "-o",
        "libcgofix.so",
        "stub.c",
    ]));
    assert!(o.status.success(), "{}", o.stderr);
    dir.join("libcgofix.so")
}

#[test]
fn run_passes_status_and_signals() {
    let t = tempdir("cli run");
    let lib = stub_lib(t.path());
    let libs = lib.to_str().unwrap();
    let o = run(cgofix(&[
        "run",
        "--report",
        "/tmp/r.json",
        "--",
        "sh",
        "-c",
        "echo \"$LD_PRELOAD|$CGOFIX_REPORT\"; exit 7",
    ])
    .env("CGOFIX_LIB", &lib)
    .env("LD_PRELOAD", format!("/x.so {libs}:/y.so")));
    assert_eq!(o.status.code(), Some(7), "{}", o.stderr);
    assert_eq!(o.stdout.trim(), format!("{libs}:/x.so:/y.so|/tmp/r.json"));
    // Without --: the first non-option starts the command; relative CGOFIX_LIB.
    let o = run(cgofix(&["run", "sh", "-c", "echo $LD_PRELOAD"])
        .env("CGOFIX_LIB", "libcgofix.so")
        .current_dir(t.path()));
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(o.stdout.trim(), libs);
    // A signal stays a signal (exec, no wrapper process).
    let o = run(cgofix(&["run", "--", "sh", "-c", "kill -TERM $$"]).env("CGOFIX_LIB", &lib));
    assert_eq!(o.status.signal(), Some(libc::SIGTERM), "{:?}", o.status);
    let o = run(cgofix(&["run", "--", "/nonexistent/cmd"]).env("CGOFIX_LIB", &lib));
    assert_eq!(o.status.code(), Some(127));
    assert_eq!(o.stderr.lines().count(), 1);
    assert!(
        o.stderr.starts_with("cgofix: cannot run /nonexistent/cmd"),
        "{}",
        o.stderr
    );
}

#[test]
fn run_finds_or_misses_the_library() {
    let t = tempdir("cli runlib");
    let o = run(cgofix(&["run", "--", "true"]).env("CGOFIX_LIB", "/nonexistent/libcgofix.so"));
    assert_eq!(o.status.code(), Some(127));
    assert_eq!(o.stderr.lines().count(), 1, "{}", o.stderr);
    assert!(
        o.stderr.starts_with("cgofix: CGOFIX_LIB=/nonexistent/libcgofix.so: no readable ELF library there (No such file"),
        "{}",
        o.stderr
    );
    // Not ELF: ld.so would run the command without the shim, so refuse.
    let text = t.path().join("libcgofix.so.txt");
    std::fs::write(&text, "not a library").unwrap();
    let o = run(cgofix(&["run", "--", "true"]).env("CGOFIX_LIB", &text));
    assert_eq!(o.status.code(), Some(127));
    assert!(
        o.stderr.contains("not an ELF shared library"),
        "{}",
        o.stderr
    );
    // A copy of the binary with no library beside it.
    let bin = t.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(BIN, bin.join("cgofix")).unwrap();
    let mut cmd = Command::new(bin.join("cgofix"));
    cmd.args(["run", "--", "sh", "-c", "echo $LD_PRELOAD"])
        .env_remove("CGOFIX_LIB");
    let o = run(&mut cmd);
    assert_eq!(o.status.code(), Some(127));
    assert_eq!(o.stderr.lines().count(), 1, "{}", o.stderr);
    assert!(o.stderr.contains("libcgofix.so not found"), "{}", o.stderr);
    assert!(o.stderr.contains("cargo build --release -p cgofix"));
    // ../lib/libcgofix.so (an install prefix layout).
    let libdir = t.path().join("lib");
    std::fs::create_dir_all(&libdir).unwrap();
    let lib = stub_lib(&libdir);
    let o = run(&mut cmd);
    assert_eq!(o.status.code(), Some(0), "{}", o.stderr);
    assert_eq!(o.stdout.trim(), lib.to_str().unwrap());
    // Next to the executable wins over ../lib.
    let beside = stub_lib(&bin);
    let o = run(&mut cmd);
    assert_eq!(o.stdout.trim(), beside.to_str().unwrap());
    for args in [
        vec!["run"],
        vec!["run", "--"],
        vec!["run", "--bogus", "x"],
        vec!["run", "--report"],
    ] {
        let o = run(cgofix(&args).env("CGOFIX_LIB", &lib));
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert_eq!(o.stderr.lines().count(), 1, "{}", o.stderr);
    }
}

#[test]
fn help_everywhere() {
    for (args, head) in [
        (vec!["--help"], "cgofix: run programs"),
        (vec!["help"], "cgofix: run programs"),
        (vec!["run", "--help"], "Usage: cgofix run"),
        (vec!["doctor", "--help"], "Usage: cgofix doctor"),
        (vec!["report", "-h"], "Usage: cgofix report"),
        (vec!["help", "doctor"], "Usage: cgofix doctor"),
    ] {
        let o = run(&mut cgofix(&args));
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        assert!(o.stdout.starts_with(head), "{args:?}: {}", o.stdout);
    }
    let o = run(&mut cgofix(&[]));
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stderr.contains("Usage:"));
    let o = run(&mut cgofix(&["frob"]));
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        o.stderr.trim(),
        "cgofix: unknown command 'frob' (see `cgofix --help`)"
    );
}

/// The real Bun binaries: the version doctor reads from each, and its
/// verdict for a directory holding a Go module.
#[test]
fn doctor_against_real_buns() {
    let n = natives();
    let t = tempdir("cli realbun");
    std::fs::copy(n.go_cshared.as_ref().unwrap(), t.path().join("addon.node")).unwrap();
    for (v, code) in [("1.1.45", 1), ("1.3.14", 1), ("1.4.5", 0)] {
        let o = run(cgofix(&["doctor", "--bun"])
            .arg(testkit::bun(v))
            .arg(t.path()));
        assert!(o.stdout.contains(&format!("version {v}")), "{}", o.stdout);
        assert_eq!(o.status.code(), Some(code), "bun {v}: {}", o.stdout);
    }
}

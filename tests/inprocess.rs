//! The in-process mode (`cgofix/register`, src/inprocess.rs): the npm
//! packages installed from their tarballs into fresh projects (testkit::npm,
//! as tests/npm.rs does), and no LD_PRELOAD anywhere: every child's
//! environment lacks it (`Command` and the app's own check, `run.cjs`), and
//! the exit report says `"mode": "in-process"`, which only a library that
//! was not preloaded reports. Checked:
//!
//! * the livelock (docs/background.md §1) on Bun 1.3.14 and 1.1.45 with a
//!   `bun:ffi` Go `.so`, an N-API Go `.node` and tfparse (PyPI, via
//!   `bun:ffi`, tests/thirdparty.rs): finishes with register loaded through
//!   bunfig.toml `preload` or a first `import`; the same app without
//!   register hangs (killed at the timeout); and on aarch64 Bun 1.3.14
//!   under qemu with the arm64 package (bunfig preload);
//! * Go's rule (docs/background.md §2): a SIGUSR2 handler installed after
//!   Go started gets `SA_ONSTACK` in Node (`node --import cgofix/register`)
//!   and Bun 1.4.5 (bunfig preload), during a SIGUSR2 storm; without
//!   register it lacks the flag (the deterministic precondition, as in
//!   tests/storm.rs);
//! * a `bun build --compile` executable with the library embedded: the
//!   livelock fixed inside it, and the same executable built without
//!   register hangs;
//! * LD_PRELOAD and register together: register does nothing when
//!   LD_PRELOAD names a libcgofix.so; a copy preloaded under another name
//!   makes the registered copy stay inactive (one report, `preload`,
//!   `inactive_copies: 1`), and so does a second copy loaded late;
//! * what the mode cannot do (README "In-process mode"): a Go library
//!   loaded before register keeps its SIGPIPE handler and is missing from
//!   the report's modules, though the hang is repaired at the import.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use testkit::npm::*;
use testkit::*;

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Bun that installs (`bun add`); Buns the livelock needs.
const INSTALL_BUN: &str = "1.4.5";
const AFFECTED_BUN: &str = "1.3.14";
const OLD_BUN: &str = "1.1.45";
/// As in tests/livelock.rs: a fixed run finishes in well under a second.
const HANG_AFTER: Duration = Duration::from_secs(6);
const FINISH_WITHIN: Duration = Duration::from_secs(60);
const STORM_SECONDS: u64 = 2;
const SA_ONSTACK: i64 = 0x0800_0000;

/// The app's own entry: refuses to run with LD_PRELOAD set (unless the case
/// sets it on purpose), optionally prints what register did, then runs a
/// fixture script (argv: SCRIPT ARGS...) as if it were the entry.
const RUN_CJS: &str = r#"'use strict';
if (process.env.LD_PRELOAD !== undefined && !process.env.CASE_PRELOAD) {
  process.stderr.write(`CGOFIX-FAIL LD_PRELOAD is set: ${process.env.LD_PRELOAD}\n`);
  process.exit(9);
}
if (process.env.CASE_PRINT_REGISTER) {
  const r = require('cgofix/register');
  process.stderr.write(`CGOFIX-REGISTER mode=${r.mode}\n`);
}
if (process.env.CASE_SECOND_COPY) {
  const { dlopen, FFIType } = require('bun:ffi');
  const l = dlopen(process.env.CASE_SECOND_COPY, {
    cgofix_instance: { args: [FFIType.i32], returns: FFIType.i32 },
  });
  process.stderr.write(`CGOFIX-SECOND mode=${l.symbols.cgofix_instance(0)}\n`);
}
const [script, ...rest] = process.argv.slice(2);
process.argv = [process.argv[0], script, ...rest];
require(script);
"#;

/// One project per package manager, installed once per test process.
struct Apps {
    /// `bun add -d` of the tarballs; `preload/` holds the bunfig.toml.
    bun: Project,
    /// `npm install` of the tarballs.
    npm: Project,
}

fn write_app_files(p: &Project) {
    std::fs::write(p.app.join("run.cjs"), RUN_CJS).unwrap();
    std::fs::write(
        p.app.join("first.mjs"),
        // The app by a dynamic import, as the README says: with a static
        // `import "./run.cjs"`, Bun evaluated run.cjs (and the Go module
        // it loads) before register in some runs (README "In-process mode").
        "import \"cgofix/register\";\nawait import(\"./run.cjs\");\n",
    )
    .unwrap();
    // bunfig.toml applies to the directory Bun runs in: a subdirectory,
    // so the controls (run from the app directory) go without it.
    let pre = p.app.join("preload");
    std::fs::create_dir_all(&pre).unwrap();
    std::fs::write(pre.join("bunfig.toml"), "preload = [\"cgofix/register\"]\n").unwrap();
}

fn apps() -> &'static Apps {
    static A: OnceLock<Apps> = OnceLock::new();
    A.get_or_init(|| {
        let packed = packed(VERSION);
        let (bun_p, _) = bun_add("inprocess bun add", INSTALL_BUN, &both(packed));
        let (npm_p, _) = npm_install("inprocess npm install", &both(packed));
        write_app_files(&bun_p);
        write_app_files(&npm_p);
        Apps {
            bun: bun_p,
            npm: npm_p,
        }
    })
}

/// How register gets in.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Register {
    /// None: the control.
    Without,
    /// bunfig.toml `preload = ["cgofix/register"]`.
    Bunfig,
    /// `import "cgofix/register"` as the entry's first line, the app by a
    /// dynamic `import()` after it.
    FirstImport,
    /// `node --import cgofix/register`.
    NodeImport,
}

/// `runtime` running `script args` in `p`'s app the way `how` says, with
/// the exit report on stderr and no LD_PRELOAD.
fn app_cmd(p: &Project, runtime: &Path, how: Register, script: &Path, args: &[&Path]) -> Command {
    let mut c = p.cmd(runtime);
    match how {
        Register::Without => {
            c.arg("run.cjs");
        }
        Register::Bunfig => {
            c.current_dir(p.app.join("preload")).arg("../run.cjs");
        }
        Register::FirstImport => {
            c.arg("first.mjs");
        }
        Register::NodeImport => {
            c.args(["--import", "cgofix/register", "run.cjs"]);
        }
    }
    c.arg(script).args(args).env("CGOFIX_REPORT", "stderr");
    assert_no_preload(&c);
    c
}

/// The child's environment: LD_PRELOAD removed (testkit::command), never set.
fn assert_no_preload(c: &Command) {
    let preload: Vec<_> = c.get_envs().filter(|(k, _)| *k == "LD_PRELOAD").collect();
    assert_eq!(
        preload,
        vec![(std::ffi::OsStr::new("LD_PRELOAD"), None)],
        "LD_PRELOAD must be removed from the child's environment"
    );
    assert!(
        std::env::var_os("LD_PRELOAD").is_none() || preload.len() == 1,
        "inherited LD_PRELOAD"
    );
}

/// The single exit report of `o`, checked against the schema.
fn the_report(o: &Outcome) -> Value {
    let mut all = report::in_output(o.stderr());
    assert_eq!(all.len(), 1, "{}: want one report: {o:?}", o.case());
    all.pop().unwrap()
}

fn expect_in_process(o: &Outcome) -> Value {
    o.expect_success();
    let rep = the_report(o);
    assert_eq!(
        report::text(&rep, "mode"),
        "in-process",
        "{}: {rep}",
        o.case()
    );
    rep
}

/// A livelock run that must finish: marker, no SA_ONSTACK on the suspend
/// signal, the suspend fix applied in-process.
fn check_fixed(o: &Outcome) {
    let rep = expect_in_process(o);
    assert!(
        o.stdout().contains("CGOFIX-OK livelock"),
        "{}: no marker: {o:?}",
        o.case()
    );
    assert_eq!(
        printed_flags(o.stdout()) & SA_ONSTACK,
        0,
        "{}: SA_ONSTACK on the suspend signal",
        o.case()
    );
    assert_eq!(
        report::text(&rep, "/signals/suspend_fix"),
        "applied",
        "{}: {rep}",
        o.case()
    );
    // Bun 1.3.14 ignores SIGPIPE (1.1.45 does not: the preload keeps
    // nothing there either); Go's initsig replaced that inside the dlopen,
    // and the repair put it back.
    let ignores_sigpipe = !o.case().contains(&format!("bun{OLD_BUN}"));
    assert!(
        !ignores_sigpipe || report::num(&rep, "/signals/sigpipe_kept") >= 1,
        "{}: SIGPIPE not repaired: {rep}",
        o.case()
    );
}

fn expect_hang(o: &Outcome) {
    assert!(
        o.hung(),
        "expected the run without register to hang (the test must see the bug), got {o:?}"
    );
    assert!(
        o.stderr().contains("CGOFIX-INFO"),
        "{}: hung before the Go library loaded: {o:?}",
        o.case()
    );
}

/// Runs `cases` at once (each an independent process): (name, command, limit).
fn run_all(cases: Vec<(String, Command, Duration)>) -> Vec<Outcome> {
    std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .into_iter()
            .map(|(name, c, limit)| s.spawn(move || run(name, c, limit)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn livelock_args(file: &str) -> (PathBuf, Vec<PathBuf>) {
    let module = fixtures(Go::Newest).join(file);
    let kind = if file.ends_with(".node") {
        "node"
    } else {
        "ffi"
    };
    (js("livelock.js"), vec![module, PathBuf::from(kind)])
}

fn livelock_case(bun_version: &str, how: Register, file: &str) -> (String, Command, Duration) {
    let a = apps();
    let (script, args) = livelock_args(file);
    let args: Vec<&Path> = args.iter().map(PathBuf::as_path).collect();
    let c = app_cmd(&a.bun, &bun(bun_version), how, &script, &args);
    let limit = if how == Register::Without {
        HANG_AFTER
    } else {
        FINISH_WITHIN
    };
    (
        format!("inprocess livelock bun{bun_version} {file} {how:?}"),
        c,
        limit,
    )
}

#[test]
fn livelock_fixed_in_process_bun_1_3_14_and_1_1_45() {
    let cases = vec![
        livelock_case(AFFECTED_BUN, Register::Bunfig, "ffi.so"),
        livelock_case(AFFECTED_BUN, Register::FirstImport, "cshared.node"),
        livelock_case(AFFECTED_BUN, Register::Bunfig, "carchive.node"),
        livelock_case(OLD_BUN, Register::Bunfig, "ffi.so"),
        livelock_case(OLD_BUN, Register::FirstImport, "cshared.node"),
    ];
    for o in run_all(cases) {
        check_fixed(&o);
    }
    // The controls: the same apps without register.
    let controls = vec![
        livelock_case(AFFECTED_BUN, Register::Without, "ffi.so"),
        livelock_case(AFFECTED_BUN, Register::Without, "cshared.node"),
        livelock_case(OLD_BUN, Register::Without, "ffi.so"),
    ];
    for o in run_all(controls) {
        expect_hang(&o);
    }
}

/// tfparse (PyPI, go1.26.3 c-shared) through bun:ffi, tests/thirdparty.rs's
/// driver: fixed with register, hangs without.
#[test]
fn livelock_third_party_tfparse_bun_ffi() {
    let a = apps();
    let so = required_tool("CGOFIXTEST_TFPARSE_SO");
    let script = js("thirdparty.js");
    let mk = |how: Register| {
        let ffi = PathBuf::from("ffi");
        let (wasm, usr2) = (PathBuf::from("wasm"), PathBuf::from("sigusr2"));
        let mut c = app_cmd(
            &a.bun,
            &bun(AFFECTED_BUN),
            how,
            &script,
            &[&ffi, &so, &wasm, &usr2],
        );
        c.env("FIXTURE_KOFFI", required_dir("CGOFIXTEST_KOFFI"));
        c
    };
    let outs = run_all(vec![
        (
            "inprocess thirdparty tfparse bun1.3.14 Bunfig".into(),
            mk(Register::Bunfig),
            FINISH_WITHIN,
        ),
        (
            "inprocess thirdparty tfparse bun1.3.14 Without".into(),
            mk(Register::Without),
            HANG_AFTER,
        ),
    ]);
    let o = &outs[0];
    let rep = expect_in_process(o);
    assert!(o.stdout().contains(" wasm=100042 "), "{o:?}");
    let row = report::module(&rep, so.file_name().unwrap().to_str().unwrap());
    assert_eq!(report::text(row, "go_version"), "go1.26.3", "{rep}");
    assert_eq!(report::text(row, "go_init_hook"), "ran", "{rep}");
    let usr2 = o
        .stdout()
        .split("usr2_flags=0x")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|h| i64::from_str_radix(h, 16).ok())
        .unwrap_or_else(|| panic!("no usr2_flags: {o:?}"));
    assert_ne!(usr2 & SA_ONSTACK, 0, "{o:?}");
    expect_hang(&outs[1]);
}

/// storm.js (tests/storm.rs) with register: the SIGUSR2 handler installed
/// after Go gets SA_ONSTACK, through a SIGUSR2 storm; without register
/// (no signals) it lacks it.
fn storm_case(p: &Project, runtime: &Path, label: &str, how: Register, module: &str) {
    let m = fixtures(Go::Newest).join(module);
    let secs = PathBuf::from(STORM_SECONDS.to_string());
    let case = format!("inprocess storm {label} {module} {how:?}");
    let c = app_cmd(p, runtime, how, &js("storm.js"), &[&m, &secs]);
    let Storm { run: stormed, sent } = storm(
        &case,
        c,
        &[libc::SIGUSR2],
        Duration::from_secs(60 + STORM_SECONDS),
    );
    assert!(
        stormed.code() == Some(0) && stormed.stdout.contains("CGOFIX-OK storm"),
        "{case}: crashed: {stormed:?}"
    );
    assert_ne!(
        printed_flags(&stormed.stdout) & SA_ONSTACK,
        0,
        "{case}: handler lacks SA_ONSTACK"
    );
    assert!(sent > 1000, "{case}: only {sent} signals sent: not a storm");
    let reports = report::in_output(&stormed.stderr);
    assert_eq!(reports.len(), 1, "{case}: {stormed:?}");
    assert_eq!(report::text(&reports[0], "mode"), "in-process", "{case}");

    let control = app_cmd(p, runtime, Register::Without, &js("storm.js"), &[&m, &secs]);
    let o = run(
        format!("inprocess storm {label} control, no signals"),
        control,
        FINISH_WITHIN,
    );
    o.expect_success();
    assert_eq!(
        printed_flags(o.stdout()) & SA_ONSTACK,
        0,
        "{}: control already has SA_ONSTACK",
        o.case()
    );
}

#[test]
fn storm_node_import() {
    let a = apps();
    storm_case(
        &a.npm,
        &node(),
        "node",
        Register::NodeImport,
        "cshared.node",
    );
}

#[test]
fn storm_bun_1_4_5_bunfig() {
    let a = apps();
    storm_case(
        &a.bun,
        &bun(INSTALL_BUN),
        "bun1.4.5",
        Register::Bunfig,
        "carchive.node",
    );
}

/// `bun build --compile` with the library embedded (README "Compiled
/// executables"): register finds it among `Bun.embeddedFiles`.
#[test]
fn compiled_executable_bun_1_3_14() {
    let a = apps();
    let p = &a.bun;
    let livelock = js("livelock.js");
    let lib = format!("{PLATFORM_PACKAGE}/libcgofix.so");
    let build = |name: &str, register: bool| -> PathBuf {
        let entry = p.app.join(format!("{name}.mjs"));
        let mut src = String::new();
        if register {
            src.push_str("import \"cgofix/register\";\n");
            src.push_str(&format!(
                "import lib from \"{lib}\" with {{ type: \"file\" }};\nvoid lib;\n"
            ));
        }
        src.push_str(&format!("import {:?};\n", livelock.display().to_string()));
        std::fs::write(&entry, src).unwrap();
        let out = p.app.join(name);
        let mut c = p.cmd(bun(AFFECTED_BUN));
        c.args(["build", "--compile"])
            .arg(&entry)
            .arg("--outfile")
            .arg(&out);
        run(
            format!("inprocess bun build --compile {name}"),
            c,
            FINISH_WITHIN,
        )
        .expect_success();
        out
    };
    let fixed = build("app-register", true);
    let control = build("app-plain", false);
    let module = fixtures(Go::Newest).join("ffi.so");
    let mk = |exe: &Path| {
        let mut c = p.cmd(exe);
        c.arg(&module).arg("ffi").env("CGOFIX_REPORT", "stderr");
        assert_no_preload(&c);
        c
    };
    let outs = run_all(vec![
        (
            "inprocess compiled bun1.3.14 with register".into(),
            mk(&fixed),
            FINISH_WITHIN,
        ),
        (
            "inprocess compiled bun1.3.14 without register".into(),
            mk(&control),
            HANG_AFTER,
        ),
    ]);
    check_fixed(&outs[0]);
    expect_hang(&outs[1]);
}

/// LD_PRELOAD and register together.
#[test]
fn preload_and_register() {
    let a = apps();
    let (script, args) = livelock_args("ffi.so");
    let args: Vec<&Path> = args.iter().map(PathBuf::as_path).collect();
    let tmp = tempdir("inprocess preloaded copy");
    // The same library under a name register does not recognise: register
    // loads the package's copy, which finds this one active.
    let copy = tmp.join("preloaded-copy.so");
    std::fs::copy(shim(), &copy).unwrap();
    for (label, preload, want_register, want_inactive) in [
        ("libcgofix.so", shim(), "skipped", 0),
        ("another copy", copy.clone(), "inactive", 1),
    ] {
        let mut c = app_cmd(&a.bun, &bun(AFFECTED_BUN), Register::Bunfig, &script, &args);
        c.env("LD_PRELOAD", &preload)
            .env("CASE_PRELOAD", "1")
            .env("CASE_PRINT_REGISTER", "1")
            .env("CGOFIX_LOG", "info");
        let o = run(
            format!("inprocess preload and register: {label}"),
            c,
            FINISH_WITHIN,
        );
        o.expect_success();
        assert!(o.stdout().contains("CGOFIX-OK livelock"), "{o:?}");
        let rep = the_report(&o);
        assert_eq!(report::text(&rep, "mode"), "preload", "{label}: {rep}");
        assert_eq!(
            report::num(&rep, "inactive_copies"),
            want_inactive,
            "{label}: {rep}"
        );
        assert!(
            o.stderr()
                .contains(&format!("CGOFIX-REGISTER mode={want_register}\n")),
            "{label}: {o:?}"
        );
        let said = o.stderr().matches("stays inactive").count();
        assert_eq!(said, want_inactive as usize, "{label}: said once: {o:?}");
    }
}

/// Two copies loaded late (two packages' register): the second finds the
/// first through the slots it rewrote and stays inactive (mode 3).
#[test]
fn second_registered_copy_stays_inactive() {
    let a = apps();
    let (script, args) = livelock_args("ffi.so");
    let args: Vec<&Path> = args.iter().map(PathBuf::as_path).collect();
    let tmp = tempdir("inprocess second copy");
    let copy = tmp.join("second-copy.so");
    std::fs::copy(a.bun.platform_dir().join("libcgofix.so"), &copy).unwrap();
    let mut c = app_cmd(&a.bun, &bun(AFFECTED_BUN), Register::Bunfig, &script, &args);
    c.env("CASE_SECOND_COPY", &copy).env("CGOFIX_LOG", "info");
    let o = run("inprocess second registered copy", c, FINISH_WITHIN);
    check_fixed(&o);
    assert!(o.stderr().contains("CGOFIX-SECOND mode=3\n"), "{o:?}");
    let rep = the_report(&o);
    assert_eq!(report::num(&rep, "inactive_copies"), 1, "{rep}");
    assert_eq!(o.stderr().matches("stays inactive").count(), 1, "{o:?}");
}

/// A Go library loaded before register (README "In-process mode"): the
/// suspend handler is repaired at the import and the livelock does not
/// happen, but Go's SIGPIPE handler stays (the host had SIGPIPE ignored)
/// and the library is missing from the report.
#[test]
fn go_library_loaded_before_register() {
    let a = apps();
    let script = a.bun.app.join("late.cjs");
    std::fs::write(
        &script,
        format!(
            "'use strict';\nconst c = require({common:?});\nconst m = c.load('late', process.argv[2], 'ffi');\nm.sum(10);\nrequire('cgofix/register');\nconst w = c.wasmInstance();\nw.count(100000);\nsetTimeout(() => c.ok('late', `flags=${{c.hex(m.probeSigFlags(30))}} pipe=${{c.hex(m.probeSigFlags(13))}}`), 50);\n",
            common = js("common.js").display().to_string()
        ),
    )
    .unwrap();
    let module = fixtures(Go::Newest).join("ffi.so");
    let mut c = a.bun.cmd(bun(AFFECTED_BUN));
    c.arg(&script).arg(&module).env("CGOFIX_REPORT", "stderr");
    assert_no_preload(&c);
    let o = run("inprocess Go library before register", c, FINISH_WITHIN);
    let rep = expect_in_process(&o);
    assert!(o.stdout().contains("CGOFIX-OK late"), "{o:?}");
    assert_eq!(printed_flags(o.stdout()) & SA_ONSTACK, 0, "{o:?}");
    assert_eq!(report::num(&rep, "/signals/sigpipe_kept"), 0, "{rep}");
    // Go's SIGPIPE handler (it carries SA_ONSTACK; the host's SIG_IGN
    // carries no flags).
    let pipe = o
        .stdout()
        .split("pipe=0x")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|h| i64::from_str_radix(h, 16).ok())
        .unwrap_or_else(|| panic!("no pipe=0x..: {o:?}"));
    assert_ne!(pipe & SA_ONSTACK, 0, "SIGPIPE is not Go's: {o:?}");
    assert!(report::modules(&rep).is_empty(), "{rep}");
}

/// The arm64 package's register in aarch64 Bun 1.3.14 under qemu-user
/// (docs/background.md §8): `cgofix` and `@cgofix/linux-arm64-gnu`
/// unpacked into `node_modules` (npm and Bun on this x64 machine skip a
/// package whose `cpu` is arm64), register through bunfig preload, the
/// livelock fixture cross-built for arm64. The control without register
/// hangs: killed 10 s after the WebAssembly step, with the loop raised as in
/// tests/aarch64.rs, which makes the hang certain under qemu.
#[test]
fn livelock_fixed_in_process_on_aarch64_bun_1_3_14() {
    const MARKER: &str = "CGOFIX-INFO livelock";
    const STALL: Duration = Duration::from_secs(10);
    const LIMIT: Duration = Duration::from_secs(120);
    let packed = packed(VERSION);
    let p = Project::new("inprocess aarch64");
    let modules = p.app.join("node_modules");
    for (tgz, dest) in [
        (&packed.main, modules.join("cgofix")),
        (&packed.arm64, modules.join(ARM64_PACKAGE)),
    ] {
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        let mut c = Command::new("tar");
        c.arg("xzf").arg(tgz).arg("-C").arg(dest.parent().unwrap());
        run(format!("tar xzf {}", tgz.display()), c, FINISH_WITHIN).expect_success();
        std::fs::rename(dest.parent().unwrap().join("package"), &dest).unwrap();
    }
    write_app_files(&p);
    let module = aarch64::fixtures(Go::Newest).join("ffi.so");
    let bun = aarch64::bun(AFFECTED_BUN);
    let env = [
        ("FIXTURE_WASM_ITERS", "3000000"),
        ("CGOFIX_REPORT", "stderr"),
    ];
    let cmd = |how: Register| {
        let mut c = aarch64::guest(&bun, None, &env);
        match how {
            Register::Bunfig => c.current_dir(p.app.join("preload")).arg("../run.cjs"),
            _ => c.current_dir(&p.app).arg("run.cjs"),
        };
        c.arg(js("livelock.js")).arg(&module).arg("ffi");
        assert_no_preload(&c);
        c
    };
    let (fixed, control) = std::thread::scope(|s| {
        let f = s.spawn(|| {
            run(
                format!("inprocess aarch64 livelock bun{AFFECTED_BUN} ffi.so Bunfig"),
                cmd(Register::Bunfig),
                LIMIT,
            )
        });
        let c = s.spawn(|| {
            run_past_marker(
                format!("inprocess aarch64 livelock bun{AFFECTED_BUN} ffi.so Without"),
                cmd(Register::Without),
                MARKER,
                STALL,
                LIMIT,
            )
        });
        (f.join().unwrap(), c.join().unwrap())
    });
    check_fixed(&fixed);
    expect_hang(&control);
}

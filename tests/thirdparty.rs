//! Go libraries other people built and published (docs/background.md §11),
//! installed from npm and PyPI by scripts/setup-deps.sh, loaded the way
//! their users load them: `@tdewolff/minify` through its own JS and koffi,
//! the wheels' libraries with bun:ffi, koffi and CPython (ctypes, import).
//! Checked: the livelock on Bun 1.3.14 (docs/background.md §1) without and
//! with the shim; the exit report naming each library with its Go version
//! and build mode; `SA_ONSTACK` on a handler installed after the Go runtime
//! started (docs/background.md §2, §7). Drivers: tests/fixtures/js/
//! thirdparty.js and thirdparty.py.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use testkit::{Outcome, Value, bun, command, js, node, report, required_dir, required_tool, run};

/// A run without the shim still going after this counts as hung; with the
/// shim these scripts finish in about 0.1 s after Bun starts (as in
/// tests/livelock.rs).
const HANG_AFTER: Duration = Duration::from_secs(6);
/// Generous limit for runs that must finish (loaded 2-core CI machine).
const FINISH_WITHIN: Duration = Duration::from_secs(60);
/// Each main control runs this many times: every run must hang.
const CONTROL_RUNS: usize = 5;
const SA_ONSTACK: u64 = 0x0800_0000;
/// The livelock's Bun: the newest release that still hangs (README).
const AFFECTED_BUN: &str = "1.3.14";
/// A Bun fixed upstream: its suspend handler no longer hangs, but handlers
/// installed after Go still lack `SA_ONSTACK` (docs/background.md §7).
const FIXED_BUN: &str = "1.4.5";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Lib {
    /// npm `@tdewolff/minify` 2.24.8, `build/linux-amd64/minify.so`.
    Minify,
    /// PyPI `asherah` 0.3.9, `libasherah-x64.so`.
    Asherah,
    /// PyPI `tfparse` 0.6.22, the cffi library.
    Tfparse,
    /// PyPI `gojsonnet` 0.22.0, a CPython extension with a Go c-archive.
    Gojsonnet,
    /// PyPI `starlark-go` 1.0.1, a CPython extension built c-shared.
    Starlark,
}

impl Lib {
    fn so(self) -> PathBuf {
        match self {
            Lib::Minify => required_dir("CGOFIXTEST_MINIFY").join("build/linux-amd64/minify.so"),
            Lib::Asherah => required_tool("CGOFIXTEST_ASHERAH_SO"),
            Lib::Tfparse => required_tool("CGOFIXTEST_TFPARSE_SO"),
            Lib::Gojsonnet => required_tool("CGOFIXTEST_GOJSONNET_SO"),
            Lib::Starlark => required_tool("CGOFIXTEST_STARLARK_SO"),
        }
    }
    /// What `go version -m` says of the published file (docs/background.md
    /// §11), written out by hand: the report must match it exactly.
    fn go(self) -> (&'static str, &'static str) {
        match self {
            Lib::Minify => ("go1.24.1", "c-shared"),
            Lib::Asherah => ("go1.20.12", "c-shared"),
            Lib::Tfparse => ("go1.26.3", "c-shared"),
            Lib::Gojsonnet => ("go1.24.8", "c-archive"),
            Lib::Starlark => ("go1.22.5", "c-shared"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Host {
    Bun(&'static str),
    Node,
    Python,
}

/// How the library gets into the process (the drivers' LOADER argument).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Loader {
    /// `require('@tdewolff/minify')`: the package's own koffi binding.
    MinifyPackage,
    Koffi,
    BunFfi,
    Ctypes,
    /// CPython's import of the extension module.
    Import,
}

#[derive(Clone, Copy, Debug)]
struct Case {
    host: Host,
    loader: Loader,
    lib: Lib,
}

impl Case {
    const fn new(host: Host, loader: Loader, lib: Lib) -> Case {
        Case { host, loader, lib }
    }

    fn name(&self, steps: &[&str], shim: bool) -> String {
        let host = match self.host {
            Host::Bun(v) => format!("bun{v}"),
            Host::Node => "node".into(),
            Host::Python => "python".into(),
        };
        format!(
            "thirdparty {host} {:?} {:?} [{}] {}",
            self.loader,
            self.lib,
            steps.join(" "),
            if shim { "with-shim" } else { "without-shim" }
        )
    }

    /// The driver's command line, with the shim preloaded or not.
    fn command(&self, steps: &[&str], shim: bool) -> Command {
        let loader = match self.loader {
            Loader::MinifyPackage => "minify",
            Loader::Koffi => "koffi",
            Loader::BunFfi => "ffi",
            Loader::Ctypes => "ctypes",
            Loader::Import => "import",
        };
        let lib = if self.loader == Loader::MinifyPackage {
            required_dir("CGOFIXTEST_MINIFY")
        } else {
            self.lib.so()
        };
        let mut c = match self.host {
            Host::Bun(v) => command(&bun(v), shim),
            Host::Node => command(&node(), shim),
            Host::Python => command(&PathBuf::from("/usr/bin/python3"), shim),
        };
        let script = if self.host == Host::Python {
            "thirdparty.py"
        } else {
            "thirdparty.js"
        };
        c.arg(js(script)).arg(loader).arg(lib).args(steps);
        c.env("FIXTURE_KOFFI", required_dir("CGOFIXTEST_KOFFI"));
        c.env("CGOFIX_REPORT", "stderr");
        c
    }

    /// The call the driver must have made into the library (proves the
    /// library did not just load but runs).
    fn expected_call(&self) -> &'static str {
        match (self.loader, self.lib) {
            (Loader::MinifyPackage, _) => "minify",
            (_, Lib::Asherah) => "EstimateBuffer",
            (Loader::Koffi | Loader::Ctypes, Lib::Tfparse) => "Parse",
            (Loader::Import, Lib::Gojsonnet) => "evaluate_snippet",
            _ => "none",
        }
    }

    /// Runs the driver to completion (panics naming the case on a hang or
    /// a failure); checks the call it made.
    fn finish(&self, steps: &[&str], shim: bool) -> Outcome {
        let o = run(
            self.name(steps, shim),
            self.command(steps, shim),
            FINISH_WITHIN,
        );
        o.expect_success();
        let want = self.expected_call();
        let made = if self.host == Host::Python {
            o.stdout().contains(&format!("loaded {want}\n"))
        } else {
            o.stdout().contains("CGOFIX-OK thirdparty ")
                && o.stdout().contains(&format!(" call={want} "))
        };
        assert!(made, "{}: want call {want}: {o:?}", o.case());
        o
    }
}

/// SIGUSR2's `sa_flags` as the driver read them from libc (`usr2_flags=0x..`
/// from thirdparty.js, `usr2_flags N` from thirdparty.py).
fn usr2_flags(o: &Outcome) -> u64 {
    let v = o
        .stdout()
        .split("usr2_flags")
        .nth(1)
        .and_then(|s| s.get(1..)?.split_whitespace().next())
        .unwrap_or_else(|| panic!("{}: no usr2_flags: {o:?}", o.case()));
    let parsed = match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => v.parse(),
    };
    parsed.unwrap_or_else(|e| panic!("{}: usr2_flags {v:?}: {e}", o.case()))
}

/// The exit report of a run with the shim, and the row of its Go library:
/// exactly that library's Go version and build mode, the Go init hook run,
/// one Go runtime in the process.
fn go_row(case: &Case, o: &Outcome) -> Value {
    let rep = report::in_output(o.stderr())
        .pop()
        .unwrap_or_else(|| panic!("{}: no report: {o:?}", o.case()));
    let so = case.lib.so();
    let file = so.file_name().unwrap().to_str().unwrap();
    let row = report::module(&rep, file).clone();
    let (go, mode) = case.lib.go();
    assert_eq!(report::text(&row, "go_version"), go, "{}: {rep}", o.case());
    assert_eq!(report::text(&row, "buildmode"), mode, "{}: {rep}", o.case());
    assert_eq!(
        report::text(&row, "go_init_hook"),
        "ran",
        "{}: {rep}",
        o.case()
    );
    assert_eq!(report::num(&rep, "go_runtimes"), 1, "{}: {rep}", o.case());
    rep
}

/// The livelock on an affected Bun: `runs` controls (at once: each is an
/// independent process, and each must hang), then one run with the shim
/// that must finish, with the suspend fix applied, the library reported,
/// and `SA_ONSTACK` on the handler installed afterwards.
fn livelock(cases: &[Case], runs: usize) {
    let hung: Vec<Outcome> = std::thread::scope(|s| {
        let mut all = Vec::new();
        for case in cases {
            for i in 1..=runs {
                all.push(s.spawn(move || {
                    let name = format!("{} run {i}/{runs}", case.name(&["wasm"], false));
                    run(name, case.command(&["wasm"], false), HANG_AFTER)
                }));
            }
        }
        all.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for o in &hung {
        assert!(
            o.hung(),
            "expected the unfixed run to hang (the test must see the bug), got {o:?}"
        );
        // It hung in the WebAssembly step, after the library loaded and
        // its call returned, not on the way there.
        assert!(
            o.stderr().contains("CGOFIX-INFO thirdparty loaded call="),
            "{}: hung before the library loaded: {o:?}",
            o.case()
        );
    }
    for case in cases {
        let o = case.finish(&["wasm", "sigusr2"], true);
        assert!(o.stdout().contains(" wasm=100042 "), "{o:?}");
        let rep = go_row(case, &o);
        assert_eq!(
            report::text(&rep, "/signals/suspend_fix"),
            "applied",
            "{}: {rep}",
            o.case()
        );
        assert_ne!(usr2_flags(&o) & SA_ONSTACK, 0, "{o:?}");
    }
}

const AFFECTED: Host = Host::Bun(AFFECTED_BUN);

#[test]
fn livelock_bun_1_3_14_koffi_minify_package() {
    livelock(
        &[Case::new(AFFECTED, Loader::MinifyPackage, Lib::Minify)],
        CONTROL_RUNS,
    );
}

#[test]
fn livelock_bun_1_3_14_bun_ffi_asherah() {
    livelock(
        &[Case::new(AFFECTED, Loader::BunFfi, Lib::Asherah)],
        CONTROL_RUNS,
    );
}

#[test]
fn livelock_bun_1_3_14_bun_ffi_tfparse() {
    livelock(
        &[Case::new(AFFECTED, Loader::BunFfi, Lib::Tfparse)],
        CONTROL_RUNS,
    );
}

/// The rest of the Bun matrix (each loader with each package), one control
/// each, to keep CI time down.
#[test]
fn livelock_bun_1_3_14_other_loaders() {
    livelock(
        &[
            Case::new(AFFECTED, Loader::Koffi, Lib::Asherah),
            Case::new(AFFECTED, Loader::Koffi, Lib::Tfparse),
            Case::new(AFFECTED, Loader::BunFfi, Lib::Minify),
        ],
        1,
    );
}

/// One process per library (two Go runtimes in one process are
/// unsupported, golang/go#18976), on every host that can load it: the
/// CPython extensions need CPython's symbols, so only CPython loads those.
const HOST_CASES: [Case; 10] = [
    Case::new(Host::Bun(FIXED_BUN), Loader::MinifyPackage, Lib::Minify),
    Case::new(Host::Bun(FIXED_BUN), Loader::BunFfi, Lib::Asherah),
    Case::new(Host::Bun(FIXED_BUN), Loader::BunFfi, Lib::Tfparse),
    Case::new(Host::Node, Loader::MinifyPackage, Lib::Minify),
    Case::new(Host::Node, Loader::Koffi, Lib::Asherah),
    Case::new(Host::Node, Loader::Koffi, Lib::Tfparse),
    Case::new(Host::Python, Loader::Ctypes, Lib::Asherah),
    Case::new(Host::Python, Loader::Ctypes, Lib::Tfparse),
    Case::new(Host::Python, Loader::Ctypes, Lib::Starlark),
    Case::new(Host::Python, Loader::Import, Lib::Gojsonnet),
];

#[test]
fn exit_report_names_each_library() {
    let mut seen = Vec::new();
    for case in &HOST_CASES {
        let o = case.finish(&[], true);
        go_row(case, &o);
        seen.push(case.lib);
    }
    for lib in [
        Lib::Minify,
        Lib::Asherah,
        Lib::Tfparse,
        Lib::Gojsonnet,
        Lib::Starlark,
    ] {
        assert!(seen.contains(&lib), "{lib:?} never loaded");
    }
}

#[test]
fn handler_installed_after_go_gets_sa_onstack() {
    for case in &HOST_CASES {
        // Control: the host installs it without SA_ONSTACK, and Go, already
        // started, never fixes it up.
        let o = case.finish(&["sigusr2"], false);
        let flags = usr2_flags(&o);
        assert_eq!(flags & SA_ONSTACK, 0, "{}: control: {flags:#x}", o.case());
        let o = case.finish(&["sigusr2"], true);
        let with = usr2_flags(&o);
        assert_ne!(with & SA_ONSTACK, 0, "{}: {with:#x}", o.case());
        // Only the flag was added: the host's own flags stand.
        assert_eq!(
            with & !SA_ONSTACK,
            flags,
            "{}: {flags:#x} -> {with:#x}",
            o.case()
        );
    }
}

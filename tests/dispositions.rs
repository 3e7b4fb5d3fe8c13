//! Every signal's disposition per host, before and after a Go library
//! loads, without and with the shim (README "Signal dispositions";
//! scripts/dispositions.sh prints the whole table). The cells asserted
//! here are the load-bearing ones: with the shim the host's ignored SIGPIPE
//! stays ignored, Go keeps the handlers its runtime needs (SIGSEGV, SIGBUS,
//! SIGFPE for panics, SIGURG for preemption), and every other handler
//! carries `SA_ONSTACK` (docs/background.md §2). Each has a control without
//! the shim, and everything is read by the probe from inside the process
//! (tests/programs/dispositions.c), so it is deterministic: no signal is
//! ever sent.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;
use testkit::deps::{self, Go};
use testkit::native::fixtures;
use testkit::{cc, command, js, proc, program_source};

const TIMEOUT: Duration = Duration::from_secs(60);
const SA_ONSTACK: u64 = 0x0800_0000;
const SA_SIGINFO: u64 = 4;
/// The probe's three snapshots (tests/fixtures/js/dispositions.js): the
/// probe loaded; a Go library loaded and called; then a host handler for
/// SIGUSR2 installed.
const PHASES: [&str; 3] = ["before", "after", "late"];
/// What Go's runtime installs in library mode and needs
/// (runtime/signal_unix.go, `sigInstallGoHandler`): the synchronous
/// signals, which turn faults in Go code into panics, and the preemption
/// signal.
const GO_NEEDS: [(i32, &str); 4] = [
    (libc::SIGSEGV, "SIGSEGV"),
    (libc::SIGBUS, "SIGBUS"),
    (libc::SIGFPE, "SIGFPE"),
    (libc::SIGURG, "SIGURG"),
];

/// One view of one signal: `DFL`, `IGN`, `FN` or `ERR` (refused), the
/// object holding the handler (`exe`, a file name, `-`), `sa_flags`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct View {
    disp: String,
    owner: String,
    flags: u64,
}

impl View {
    fn handler(&self) -> bool {
        self.disp == "FN"
    }
    fn onstack(&self) -> bool {
        self.flags & SA_ONSTACK != 0
    }
}

/// A signal as libc's `sigaction` reports it (through the shim's hook when
/// preloaded) and as the `rt_sigaction` system call does.
#[derive(Clone, Debug)]
struct Sig {
    libc: View,
    raw: View,
}

/// phase -> signal number -> views.
type Run = HashMap<String, HashMap<i32, Sig>>;

struct Host {
    name: &'static str,
    /// File name of the Go library it loads: the owner of Go's handlers.
    go: &'static str,
    plain: Run,
    shim: Run,
}

impl Host {
    fn runs(&self) -> [(&'static str, &Run); 2] {
        [("without shim", &self.plain), ("with shim", &self.shim)]
    }
    fn is_bun(&self, version: &str) -> bool {
        self.name == format!("bun {version}")
    }
}

fn parse(case: &str, out: &str) -> Run {
    let mut run = Run::new();
    let mut phase = None;
    for line in out.lines() {
        if let Some(p) = line.strip_prefix("== ") {
            phase = Some(p.to_string());
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 7, "{case}: bad probe line {line:?}");
        let view = |f: &[&str]| View {
            disp: f[0].to_string(),
            owner: f[1].to_string(),
            flags: u64::from_str_radix(f[2].trim_start_matches("0x"), 16).unwrap(),
        };
        let sig = Sig {
            libc: view(&f[1..4]),
            raw: view(&f[4..7]),
        };
        let phase = phase.clone().unwrap_or_else(|| panic!("{case}: {out}"));
        run.entry(phase)
            .or_default()
            .insert(f[0].parse().unwrap(), sig);
    }
    for p in PHASES {
        assert_eq!(
            run.get(p).map(HashMap::len),
            Some(64),
            "{case}: phase {p} incomplete:\n{out}"
        );
    }
    run
}

/// The probe library: a shared object that is also an N-API module.
fn probe() -> PathBuf {
    let include = deps::deps().napi_include.to_str().unwrap().to_string();
    cc(
        "dispositions.so",
        &[program_source("dispositions")],
        &["-shared", "-fPIC", "-Wall", "-Werror", "-I", &include],
    )
}

/// Every host, measured once per test process (the tests below share it).
fn hosts() -> &'static [Host] {
    static HOSTS: OnceLock<Vec<Host>> = OnceLock::new();
    HOSTS.get_or_init(|| {
        let fx = fixtures(Go::Newest);
        let probe = probe();
        let deno = deps::required_tool("CGOFIXTEST_DENO");
        let deno_dir = std::env::temp_dir().join("cgofix-deno-dir");
        let cases: [(&str, PathBuf, Vec<PathBuf>, &str); 6] = [
            (
                "bun 1.3.14",
                deps::bun("1.3.14"),
                vec![js("dispositions.js")],
                "ffi.so",
            ),
            (
                "bun 1.4.5",
                deps::bun("1.4.5"),
                vec![js("dispositions.js")],
                "ffi.so",
            ),
            (
                "node c-shared",
                deps::node(),
                vec![js("dispositions.js")],
                "cshared.node",
            ),
            (
                "node c-archive",
                deps::node(),
                vec![js("dispositions.js")],
                "carchive.node",
            ),
            (
                "deno",
                deno,
                vec![
                    "run".into(),
                    "-A".into(),
                    "--quiet".into(),
                    js("dispositions.ts"),
                ],
                "ffi.so",
            ),
            (
                "python",
                "/usr/bin/python3".into(),
                vec![js("dispositions.py")],
                "ffi.so",
            ),
        ];
        cases
            .into_iter()
            .map(|(name, exe, args, go)| {
                let measure = |shim: bool| {
                    let case = format!("{name} dispositions, shim {shim}");
                    let mut c = command(&exe, shim);
                    c.args(&args).arg(&probe).arg(fx.join(go));
                    if name == "deno" {
                        c.env("DENO_DIR", &deno_dir)
                            .env("DENO_NO_UPDATE_CHECK", "1");
                    }
                    let o = proc::run(&case, c, TIMEOUT);
                    o.expect_success();
                    parse(&case, o.stdout())
                };
                Host {
                    name,
                    go,
                    plain: measure(false),
                    shim: measure(true),
                }
            })
            .collect()
    })
}

#[test]
fn ignored_sigpipe_stays_ignored_with_the_shim() {
    for h in hosts() {
        let pipe = |run: &Run, phase: &str| run[phase][&libc::SIGPIPE].raw.clone();
        // Control: every host ignores SIGPIPE, and Go's runtime takes it.
        assert_eq!(pipe(&h.plain, "before").disp, "IGN", "{}", h.name);
        let taken = pipe(&h.plain, "after");
        assert!(
            taken.handler() && taken.owner == h.go,
            "{}: control: Go's runtime takes SIGPIPE: {taken:?}",
            h.name
        );
        for phase in PHASES {
            assert_eq!(
                pipe(&h.shim, phase).disp,
                "IGN",
                "{}: SIGPIPE {phase} with the shim",
                h.name
            );
        }
    }
}

#[test]
fn go_keeps_the_handlers_its_runtime_needs() {
    for h in hosts() {
        for (label, run) in h.runs() {
            for phase in ["after", "late"] {
                for (sig, name) in GO_NEEDS {
                    let s = &run[phase][&sig];
                    for v in [&s.libc, &s.raw] {
                        assert!(
                            v.handler()
                                && v.owner == h.go
                                && v.flags & (SA_ONSTACK | SA_SIGINFO) == SA_ONSTACK | SA_SIGINFO,
                            "{} {label}, {phase}: {name} is not Go's handler: {s:?}",
                            h.name
                        );
                    }
                }
            }
            // Go's handlers arrive with the library: before it, none.
            for (sig, name) in GO_NEEDS {
                let s = &run["before"][&sig].raw;
                assert!(
                    !(s.handler() && s.owner == h.go),
                    "{} {label}: {name} Go's before Go loaded",
                    h.name
                );
            }
        }
    }
}

#[test]
fn every_foreign_handler_has_onstack_with_the_shim() {
    let mut checked = 0;
    for h in hosts() {
        for phase in PHASES {
            for (sig, s) in &h.shim[phase] {
                // The kernel's view: what really runs when the signal comes.
                if s.raw.handler() && s.raw.owner != h.go {
                    checked += 1;
                    assert!(
                        s.raw.onstack(),
                        "{} with shim, {phase}: signal {sig} without SA_ONSTACK: {s:?}",
                        h.name
                    );
                }
            }
        }
        // Control: the host's SIGUSR2 handler, installed after Go started,
        // lacks SA_ONSTACK without the shim (Go's setsigstack only fixes
        // what exists when its runtime starts). CPython has set it on its
        // own handlers since 3.10 (python/cpython#87556).
        let late = &h.plain["late"][&libc::SIGUSR2].raw;
        assert!(late.handler(), "{}: no SIGUSR2 handler: {late:?}", h.name);
        if h.name != "python" {
            assert!(!late.onstack(), "{}: control: {late:?}", h.name);
        }
        assert!(h.shim["late"][&libc::SIGUSR2].raw.onstack(), "{}", h.name);
    }
    assert!(checked > 0);
}

/// libc's view is the kernel's, except on a protected suspend signal: the
/// shim's trampoline runs (kernel view, with `SA_ONSTACK`) and its
/// `sigaction` hook reports JSC's handler as JSC installed it
/// (src/trampoline.rs). glibc refuses queries of its reserved signals.
#[test]
fn sigaction_reports_what_runs_except_the_protected_suspend_signal() {
    for h in hosts() {
        for (label, run) in h.runs() {
            for phase in PHASES {
                for (sig, s) in &run[phase] {
                    let suspend =
                        *sig == libc::SIGPWR && h.is_bun("1.3.14") && label == "with shim";
                    if s.libc.disp == "ERR" || suspend {
                        continue;
                    }
                    assert_eq!(s.libc, s.raw, "{} {label}, {phase}: signal {sig}", h.name);
                }
                let pwr = &run[phase][&libc::SIGPWR];
                if h.is_bun("1.3.14") && label == "with shim" {
                    assert!(
                        pwr.libc.owner == "exe" && !pwr.libc.onstack(),
                        "{} {label}, {phase}: JSC's handler as installed: {pwr:?}",
                        h.name
                    );
                    assert!(
                        pwr.raw.owner == "libcgofix.so" && pwr.raw.onstack(),
                        "{} {label}, {phase}: the trampoline runs: {pwr:?}",
                        h.name
                    );
                }
            }
        }
        // Control: without the shim, Go's setsigstack puts SA_ONSTACK on
        // JSC's suspend handler (the livelock of docs/background.md §1).
        if h.name.starts_with("bun") {
            let pwr = &h.plain["after"][&libc::SIGPWR].raw;
            assert!(pwr.owner == "exe" && pwr.onstack(), "{}: {pwr:?}", h.name);
        }
    }
    for v in ["1.3.14", "1.4.5"] {
        assert!(hosts().iter().any(|h| h.is_bun(v)), "bun {v} measured");
    }
}

//! Every `CGOFIX_*` setting, parsed once in the constructor by a pure
//! function (unit-tested below), then read lock-free by the hooks.
//!
//! Bad input never crashes: it yields one warning line naming the variable,
//! the bad value and the default that is used instead.

use crate::names::Names;
use crate::sigset::SigSet;

/// How the host's thread-suspend signals are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuspendMode {
    /// Detect JavaScriptCore's suspend signal (see `suspend.rs`).
    Auto,
    /// No signal is protected.
    None,
    /// Exactly these signals.
    List(SigSet),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `CGOFIX_DISABLE`: every hook is a pure pass-through.
    pub disable: bool,
    /// `CGOFIX_ONSTACK`: add `SA_ONSTACK` to foreign handlers.
    pub onstack: bool,
    /// `CGOFIX_SUSPEND_SIGNALS`.
    pub suspend: SuspendMode,
    /// `CGOFIX_SUSPEND_TRAMPOLINE`: run the suspend handler through the
    /// trampoline (x86_64 and aarch64; see `trampoline.rs`).
    pub suspend_trampoline: bool,
    /// `CGOFIX_STACK_MIN` in bytes; 0 = off.
    pub stack_min: usize,
    /// `CGOFIX_SIGMASK`: block all signals around `pthread_create`.
    pub sigmask: bool,
    /// `CGOFIX_NAPI`: rewrite `napi_queue_async_work` in loaded modules.
    pub napi: bool,
    /// `CGOFIX_GO_INIT`: run the Go init hook.
    pub go_init: bool,
    /// `CGOFIX_KEEP_SIGPIPE`: a host's ignored SIGPIPE stays ignored when a
    /// Go runtime installs its handler (see `signals.rs`).
    pub keep_sigpipe: bool,
    /// `CGOFIX_REPORT`: where to write the exit report (`stderr` or a path).
    pub report: Option<String>,
    /// `CGOFIX_LOG`: verbosity.
    pub log: LogLevel,
    /// `CGOFIX_LOG_FILE`: log destination instead of stderr.
    pub log_file: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Off,
    Error,
    Warn,
    Info,
    Debug,
}

pub const DEFAULT_STACK_MIN: usize = 8 << 20;

impl Default for Config {
    fn default() -> Self {
        Config {
            disable: false,
            onstack: true,
            suspend: SuspendMode::Auto,
            suspend_trampoline: true,
            stack_min: DEFAULT_STACK_MIN,
            sigmask: true,
            napi: true,
            go_init: true,
            keep_sigpipe: true,
            report: None,
            log: LogLevel::Warn,
            log_file: None,
        }
    }
}

/// The library's switches (README "Configuration"); any other `CGOFIX_*`
/// name is reported, with a "did you mean" among these.
pub static KNOWN: Names<26, 12> = Names::new([
    "CGOFIX_DISABLE",
    "CGOFIX_ONSTACK",
    "CGOFIX_SUSPEND_SIGNALS",
    "CGOFIX_SUSPEND_TRAMPOLINE",
    "CGOFIX_STACK_MIN",
    "CGOFIX_SIGMASK",
    "CGOFIX_NAPI",
    "CGOFIX_GO_INIT",
    "CGOFIX_KEEP_SIGPIPE",
    "CGOFIX_REPORT",
    "CGOFIX_LOG",
    "CGOFIX_LOG_FILE",
]);
/// Not switches of the library but user-facing inputs of the product's own
/// scripts, which users export and which then reach preloaded processes:
/// `CGOFIX_LIB` (scripts/run-with-shim.sh and `cgofix run`) and
/// docker/build-shim.sh's build variables. Ignored silently. (The test
/// harness uses `CGOFIXTEST_*`, outside the shim's namespace.)
pub const WRAPPER_VARS: &[&str] = &[
    "CGOFIX_LIB",
    "CGOFIX_BUILD",
    "CGOFIX_GLIBC",
    "CGOFIX_ZIGBUILD",
    "CGOFIX_ZIG_TARGET_DIR",
];

pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "on" | "true" | "yes" => Some(true),
        "0" | "off" | "false" | "no" => Some(false),
        _ => None,
    }
}

/// Bytes, or a number with a K/M/G suffix (binary units, optional `iB`/`B`),
/// or `off`. Returns `None` for anything else, including overflow.
pub fn parse_size(s: &str) -> Option<usize> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("off") {
        return Some(0);
    }
    let lower = t.to_ascii_lowercase();
    let body = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (digits, shift) = match body.as_bytes().last()? {
        b'k' => (&body[..body.len() - 1], 10),
        b'm' => (&body[..body.len() - 1], 20),
        b'g' => (&body[..body.len() - 1], 30),
        _ => (body, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: usize = digits.parse().ok()?;
    n.checked_mul(1usize << shift)
}

/// A comma/space separated list of signal names (with or without `SIG`, any
/// case) or numbers.
pub fn parse_siglist(s: &str) -> Option<SigSet> {
    let mut set = SigSet::EMPTY;
    let mut any = false;
    for tok in s.split([',', ' ', ':']).filter(|t| !t.is_empty()) {
        set.insert(crate::sigset::parse_signal(tok)?);
        any = true;
    }
    any.then_some(set)
}

fn parse_level(s: &str) -> Option<LogLevel> {
    Some(match s.trim().to_ascii_lowercase().as_str() {
        "off" | "none" | "0" => LogLevel::Off,
        "error" => LogLevel::Error,
        "warn" | "warning" => LogLevel::Warn,
        "info" => LogLevel::Info,
        "debug" | "trace" => LogLevel::Debug,
        _ => return None,
    })
}

fn fmt_size(n: usize) -> String {
    match n {
        0 => "off".into(),
        n if n.is_multiple_of(1 << 30) => format!("{}G", n >> 30),
        n if n.is_multiple_of(1 << 20) => format!("{}M", n >> 20),
        n if n.is_multiple_of(1 << 10) => format!("{}K", n >> 10),
        n => n.to_string(),
    }
}

/// Levenshtein distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Builds the configuration from `(name, value)` pairs (normally the
/// environment). Pure: returns the warnings instead of printing them.
pub fn parse<'a>(vars: impl IntoIterator<Item = (&'a str, &'a str)>) -> (Config, Vec<String>) {
    let mut c = Config::default();
    let mut warn = Vec::new();
    let d = Config::default();
    for (name, value) in vars {
        if !name.starts_with("CGOFIX_") {
            continue;
        }
        // Warnings are one line each, whatever the value holds.
        let shown = value.escape_debug().to_string();
        let mut bool_var = |slot: &mut bool, default: bool| match parse_bool(value) {
            Some(b) => *slot = b,
            None => warn.push(format!(
                "cgofix: {name}=\"{shown}\" is not on/off; using {}",
                if default { "on" } else { "off" }
            )),
        };
        match name {
            "CGOFIX_DISABLE" => bool_var(&mut c.disable, d.disable),
            "CGOFIX_ONSTACK" => bool_var(&mut c.onstack, d.onstack),
            "CGOFIX_SIGMASK" => bool_var(&mut c.sigmask, d.sigmask),
            "CGOFIX_NAPI" => bool_var(&mut c.napi, d.napi),
            "CGOFIX_GO_INIT" => bool_var(&mut c.go_init, d.go_init),
            "CGOFIX_KEEP_SIGPIPE" => bool_var(&mut c.keep_sigpipe, d.keep_sigpipe),
            "CGOFIX_SUSPEND_TRAMPOLINE" => {
                bool_var(&mut c.suspend_trampoline, d.suspend_trampoline)
            }
            "CGOFIX_STACK_MIN" => match parse_size(value) {
                Some(n) => c.stack_min = n,
                None => warn.push(format!(
                    "cgofix: {name}=\"{shown}\" is not a size; using {}",
                    fmt_size(d.stack_min)
                )),
            },
            "CGOFIX_SUSPEND_SIGNALS" => {
                let v = value.trim().to_ascii_lowercase();
                c.suspend = match v.as_str() {
                    "auto" => SuspendMode::Auto,
                    "none" | "off" => SuspendMode::None,
                    _ => match parse_siglist(value) {
                        Some(set) => SuspendMode::List(set),
                        None => {
                            warn.push(format!(
                                "cgofix: {name}=\"{shown}\" is not auto, none or a list of signals; using auto"
                            ));
                            SuspendMode::Auto
                        }
                    },
                }
            }
            "CGOFIX_LOG" => match parse_level(value) {
                Some(l) => c.log = l,
                None => warn.push(format!(
                    "cgofix: {name}=\"{shown}\" is not off|error|warn|info|debug; using warn"
                )),
            },
            "CGOFIX_REPORT" => c.report = (!value.is_empty()).then(|| value.to_string()),
            "CGOFIX_LOG_FILE" => c.log_file = (!value.is_empty()).then(|| value.to_string()),
            n if WRAPPER_VARS.contains(&n) => {}
            unknown => {
                let unknown = &unknown.escape_debug().to_string();
                let best = KNOWN
                    .iter()
                    .map(|k| (distance(unknown, k), k))
                    .min()
                    .filter(|(dist, _)| *dist <= 3);
                warn.push(match best {
                    Some((_, k)) => {
                        format!("cgofix: unknown variable {unknown} ignored (did you mean {k}?)")
                    }
                    None => format!("cgofix: unknown variable {unknown} ignored"),
                });
            }
        }
    }
    (c, warn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str, value: &str) -> (Config, Vec<String>) {
        parse([(name, value)])
    }

    #[test]
    fn defaults() {
        let (c, w) = parse([]);
        assert_eq!(c, Config::default());
        assert!(w.is_empty());
        assert_eq!(c.stack_min, 8 << 20);
        assert!(c.onstack && c.sigmask && c.napi && c.go_init && !c.disable);
        assert!(c.suspend_trampoline);
        let (c, w) = one("CGOFIX_SUSPEND_TRAMPOLINE", "off");
        assert!(!c.suspend_trampoline && w.is_empty());
        assert_eq!(c.suspend, SuspendMode::Auto);
    }

    #[test]
    fn booleans_accept_every_spelling() {
        for (v, want) in [
            ("1", true),
            ("on", true),
            ("TRUE", true),
            ("Yes", true),
            ("0", false),
            ("off", false),
            ("False", false),
            ("NO", false),
        ] {
            let (c, w) = one("CGOFIX_DISABLE", v);
            assert_eq!(c.disable, want, "{v}");
            assert!(w.is_empty());
        }
    }

    #[test]
    fn bad_boolean_warns_once_and_keeps_default() {
        for v in ["", "maybe", "2", "-1"] {
            let (c, w) = one("CGOFIX_ONSTACK", v);
            assert!(c.onstack);
            assert_eq!(w.len(), 1, "{v}");
            assert!(w[0].contains("CGOFIX_ONSTACK") && w[0].contains("using on"));
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("8M"), Some(8 << 20));
        assert_eq!(parse_size("16777216"), Some(16 << 20));
        assert_eq!(parse_size("64k"), Some(64 << 10));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("16MiB"), Some(16 << 20));
        assert_eq!(parse_size("off"), Some(0));
        assert_eq!(parse_size("0"), Some(0));
        for bad in [
            "",
            "banana",
            "-1",
            "8X",
            "M",
            "99999999999999999999",
            "1.5M",
        ] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
        assert_eq!(parse_size("17179869184G"), None, "overflow");
        let (c, w) = one("CGOFIX_STACK_MIN", "banana");
        assert_eq!(c.stack_min, DEFAULT_STACK_MIN);
        assert_eq!(
            w,
            vec!["cgofix: CGOFIX_STACK_MIN=\"banana\" is not a size; using 8M"]
        );
    }

    #[test]
    fn suspend_signals() {
        assert_eq!(
            one("CGOFIX_SUSPEND_SIGNALS", "auto").0.suspend,
            SuspendMode::Auto
        );
        assert_eq!(
            one("CGOFIX_SUSPEND_SIGNALS", "none").0.suspend,
            SuspendMode::None
        );
        let (c, w) = one("CGOFIX_SUSPEND_SIGNALS", "SIGPWR,usr1 12");
        assert!(w.is_empty());
        let SuspendMode::List(s) = c.suspend else {
            panic!("not a list")
        };
        assert!(s.contains(libc::SIGPWR) && s.contains(libc::SIGUSR1) && s.contains(12));
        assert!(!s.contains(libc::SIGINT));
        for bad in ["SIGBOGUS", "0", "65", "", ",", "-3"] {
            let (c, w) = one("CGOFIX_SUSPEND_SIGNALS", bad);
            assert_eq!(c.suspend, SuspendMode::Auto, "{bad}");
            assert_eq!(w.len(), 1, "{bad}");
        }
    }

    #[test]
    fn unknown_variable_suggests() {
        let (_, w) = one("CGOFIX_STAK_MIN", "1");
        assert_eq!(
            w,
            vec![
                "cgofix: unknown variable CGOFIX_STAK_MIN ignored (did you mean CGOFIX_STACK_MIN?)"
            ]
        );
        let (_, w) = one("CGOFIX_ZZZZZZZZZZZZZZZZ", "1");
        assert_eq!(
            w,
            vec!["cgofix: unknown variable CGOFIX_ZZZZZZZZZZZZZZZZ ignored"]
        );
        let (_, w) = one("OTHER", "1");
        assert!(w.is_empty());
    }

    #[test]
    fn wrapper_variables_are_silent_harness_variables_are_not_ours() {
        for name in WRAPPER_VARS {
            let (c, w) = one(name, "/x");
            assert!(w.is_empty(), "{name}: {w:?}");
            assert_eq!(c, Config::default(), "{name}");
        }
        // The harness's own prefix is outside the shim's namespace.
        for name in ["CGOFIXTEST_GO123", "CGOFIXTEST_LIB", "CGOFIXTEST_"] {
            let (c, w) = one(name, "x");
            assert!(w.is_empty(), "{name}: {w:?}");
            assert_eq!(c, Config::default(), "{name}");
        }
        // The harness's former names are nobody's now: reported like any
        // other unknown name.
        for name in [
            "CGOFIX_GO123",
            "CGOFIX_TEST_LIB",
            "CGOFIX_CACHE",
            "CGOFIX_BUNS",
        ] {
            let (_, w) = one(name, "x");
            assert_eq!(w.len(), 1, "{name}: {w:?}");
            assert!(
                w[0].starts_with(&format!("cgofix: unknown variable {name} ignored")),
                "{w:?}"
            );
        }
        // Product variables are not harness names and vice versa.
        for k in KNOWN.iter().chain(WRAPPER_VARS.iter().copied()) {
            assert!(
                k.starts_with("CGOFIX_") && !k.starts_with("CGOFIXTEST"),
                "{k}"
            );
        }
    }

    #[test]
    fn log_and_report() {
        let (c, w) = parse([("CGOFIX_LOG", "debug"), ("CGOFIX_REPORT", "stderr")]);
        assert!(w.is_empty());
        assert_eq!(c.log, LogLevel::Debug);
        assert_eq!(c.report.as_deref(), Some("stderr"));
        let (c, w) = one("CGOFIX_LOG", "loud");
        assert_eq!(c.log, LogLevel::Warn);
        assert_eq!(w.len(), 1);
    }
}

//! Property ("fuzz") tests for the configuration parser, `cgofix::config::parse`.
//!
//! A small deterministic PRNG (splitmix64) generates variable names and values:
//! well-formed ones in random spellings, near misses, and garbage (signs,
//! units, separators, whitespace, control characters, non-ASCII, huge
//! numbers). Each case is checked against invariants and against small
//! independent oracles written here from the README/issue wording, not from
//! the implementation:
//!
//! * parsing never panics;
//! * a name not starting with `CGOFIX_` is ignored silently, as are the
//!   scripts' own variables (`CGOFIX_LIB`, `CGOFIX_CACHE`, `CGOFIX_BUN_VERSIONS`);
//! * an unknown `CGOFIX_*` name yields exactly one warning naming it (and a
//!   "did you mean" only for a known name);
//! * a bad value yields exactly one warning: one line, starting with
//!   `cgofix: `, naming the variable and the bad value and the default used,
//!   and the configuration keeps that default;
//! * a good value yields no warning and the value the oracle expects; sizes
//!   formatted as N with a K/M/G suffix round-trip to N * unit;
//! * a whole environment (distinct names) gives the warnings of its
//!   variables one by one, in order, and the same settings.
//!
//! `CONFIG_FUZZ_SEED` and `CONFIG_FUZZ_ITERS` override the seed and the number
//! of cases; a failure prints the seed and the input that broke the rule.
//! (cargo-fuzz would need a `fuzz/` crate and nightly; this stands in for it.)

use cgofix::config::{self, Config, KNOWN, LogLevel, SuspendMode};

/// splitmix64: tiny, deterministic, good enough to spread inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    /// Random ASCII case for each letter.
    fn recase(&mut self, s: &str) -> String {
        s.chars()
            .map(|c| {
                if self.chance(50) {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    }
    /// Optional surrounding blanks.
    fn pad(&mut self, s: String) -> String {
        let ws = [" ", "\t", "  "];
        match self.below(6) {
            0 => format!("{}{s}", self.pick(&ws)),
            1 => format!("{s}{}", self.pick(&ws)),
            _ => s,
        }
    }
    fn number(&mut self) -> String {
        match self.below(8) {
            0 => "0".into(),
            1 => u64::MAX.to_string(),
            2 => "18446744073709551616".into(),
            3 => "9".repeat(1 + self.below(40)),
            4 => (self.next() >> self.below(64)).to_string(),
            5 => i32::MAX.to_string(),
            _ => self.below(100_000).to_string(),
        }
    }
}

const SCRIPT_VARS: &[&str] = &["CGOFIX_LIB", "CGOFIX_CACHE", "CGOFIX_BUN_VERSIONS"];
const BOOLS: &[&str] = &[
    "CGOFIX_DISABLE",
    "CGOFIX_ONSTACK",
    "CGOFIX_SIGMASK",
    "CGOFIX_NAPI",
    "CGOFIX_GO_INIT",
    "CGOFIX_SUSPEND_TRAMPOLINE",
];
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("PWR", libc::SIGPWR),
    ("TERM", libc::SIGTERM),
    ("CHLD", libc::SIGCHLD),
    ("WINCH", libc::SIGWINCH),
    ("PROF", libc::SIGPROF),
    ("SEGV", libc::SIGSEGV),
];

// ---- oracles, from the documented grammar ----

fn oracle_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "on" | "true" | "yes" => Some(true),
        "0" | "off" | "false" | "no" => Some(false),
        _ => None,
    }
}

/// Bytes, or digits + K/M/G (binary; optional B or iB), or `off`.
fn oracle_size(v: &str) -> Option<usize> {
    let t = v.trim().to_ascii_lowercase();
    if t == "off" {
        return Some(0);
    }
    let mut s = t.as_str();
    for suffix in ["ib", "b"] {
        if let Some(r) = s.strip_suffix(suffix) {
            s = r;
            break;
        }
    }
    let (digits, unit) = match s.char_indices().last()? {
        (i, 'k') => (&s[..i], 1usize << 10),
        (i, 'm') => (&s[..i], 1 << 20),
        (i, 'g') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse::<usize>().ok()?.checked_mul(unit)
}

fn oracle_level(v: &str) -> Option<LogLevel> {
    Some(match v.trim().to_ascii_lowercase().as_str() {
        "off" | "none" | "0" => LogLevel::Off,
        "error" => LogLevel::Error,
        "warn" | "warning" => LogLevel::Warn,
        "info" => LogLevel::Info,
        "debug" | "trace" => LogLevel::Debug,
        _ => return None,
    })
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

// ---- generators ----

fn gen_garbage(r: &mut Rng) -> String {
    const ATOMS: &[&str] = &[
        "0", "1", "7", "9", "-", "+", ".", ",", ":", ";", " ", "\t", "\n", "\r", "k", "K", "m",
        "M", "g", "G", "b", "B", "i", "iB", "x", "0x", "e", "SIG", "sig", "RTMIN+", "PWR", "usr",
        "on", "off", "yes", "true", "auto", "none", "debug", "é", "µ", "\u{0}", "\u{7f}", "=",
        "\"", "'", "\\", "%", "ﬀ", "İ",
    ];
    let n = r.below(8);
    (0..n).map(|_| *r.pick(ATOMS)).collect()
}

fn gen_size(r: &mut Rng) -> (String, Option<usize>) {
    let n = r.number();
    let (unit, mult) = *r.pick(&[("", 1usize), ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30)]);
    let tail = if unit.is_empty() {
        *r.pick(&["", "", "b"])
    } else {
        *r.pick(&["", "", "b", "ib"])
    };
    let suffix = r.recase(&format!("{unit}{tail}"));
    let text = r.pad(format!("{n}{suffix}"));
    let want = n.parse::<usize>().ok().and_then(|n| n.checked_mul(mult));
    (text, want)
}

fn gen_siglist(r: &mut Rng) -> (String, Vec<i32>) {
    let k = 1 + r.below(4);
    let mut sigs = Vec::new();
    let mut parts = Vec::new();
    for _ in 0..k {
        let (name, num) = *r.pick(SIGNALS);
        let tok = match r.below(3) {
            0 => r.recase(&format!("SIG{name}")),
            1 => r.recase(name),
            _ => num.to_string(),
        };
        sigs.push(num);
        parts.push(tok);
    }
    let mut text = String::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            let sep = *r.pick(&[",", " ", ":", ", ", ",,"]);
            text.push_str(sep);
        }
        text.push_str(p);
    }
    (text, sigs)
}

fn gen_value(r: &mut Rng, name: &str) -> String {
    match r.below(10) {
        0..=2 => gen_garbage(r),
        3 => r.number(),
        4 => gen_size(r).0,
        5 => gen_siglist(r).0,
        6 => {
            let w = *r.pick(&[
                "on", "off", "1", "0", "true", "false", "yes", "no", "auto", "none", "debug",
                "warn", "trace", "error", "info", "8M", "off", "",
            ]);
            let w = r.recase(w);
            r.pad(w)
        }
        7 => format!(
            "RTMIN+{}",
            r.pick(&["0", "1", "2", "30", "-5", "2147483647", "99999999999"])
        ),
        8 => format!("-{}", r.number()),
        _ => format!("{}{}", name.len(), gen_garbage(r)),
    }
}

fn gen_unknown_name(r: &mut Rng) -> String {
    let base = r.pick(KNOWN).to_string();
    let mut chars: Vec<char> = base.chars().collect();
    match r.below(4) {
        // One edit after the prefix: a typo of a real name.
        0 | 1 => {
            let at = 7 + r.below(chars.len() - 7);
            let c = *r.pick(&['A', 'E', 'K', 'S', '_', '1', 'Z']);
            match r.below(3) {
                0 => {
                    chars.remove(at);
                }
                1 => chars.insert(at, c),
                _ => chars[at] = c,
            }
            chars.into_iter().collect()
        }
        2 => format!(
            "CGOFIX_{}",
            (0..r.below(20))
                .map(|_| *r.pick(&['A', 'Q', 'X', 'Z', '_', '9']))
                .collect::<String>()
        ),
        _ => format!("{base}_EXTRA"),
    }
}

fn gen_foreign_name(r: &mut Rng) -> String {
    let k = r.pick(KNOWN);
    match r.below(5) {
        0 => k.to_ascii_lowercase(),
        1 => format!("X{k}"),
        2 => "CGOFIX".into(),
        3 => String::new(),
        _ => r
            .pick(&[
                "PATH",
                "HOME",
                "LD_PRELOAD",
                "JSC_SIGNAL_FOR_GC",
                "GOGC",
                "cgofix_",
            ])
            .to_string(),
    }
}

// ---- checks ----

struct Case<'a> {
    seed: u64,
    iter: usize,
    name: &'a str,
    value: &'a str,
}

impl Case<'_> {
    fn fail(&self, what: &str, w: &[String], c: &Config) -> ! {
        panic!(
            "property violated: {what}\n  input: {}={:?}\n  warnings: {w:?}\n  config: {c:?}\n  (CONFIG_FUZZ_SEED={} iteration {})",
            self.name, self.value, self.seed, self.iter
        );
    }
}

/// Checks one variable on its own; returns whether it was accepted silently.
fn check_single(case: &Case) -> bool {
    let (name, value) = (case.name, case.value);
    let (c, w) = match std::panic::catch_unwind(|| config::parse([(name, value)])) {
        Ok(r) => r,
        Err(_) => case.fail("parse panicked", &[], &Config::default()),
    };
    let d = Config::default();
    let ensure = |ok: bool, what: &str| {
        if !ok {
            case.fail(what, &w, &c)
        }
    };
    for line in &w {
        ensure(
            line.starts_with("cgofix: "),
            "warning does not start with \"cgofix: \"",
        );
        ensure(!line.contains(['\n', '\r']), "warning is not a single line");
    }
    if !name.starts_with("CGOFIX_") || SCRIPT_VARS.contains(&name) {
        ensure(
            w.is_empty(),
            "a variable that is not ours produced a warning",
        );
        ensure(
            c == d,
            "a variable that is not ours changed the configuration",
        );
        return true;
    }
    if !KNOWN.contains(&name) {
        ensure(w.len() == 1, "unknown variable: not exactly one warning");
        ensure(
            w[0].starts_with(&format!("cgofix: unknown variable {name} ignored")),
            "unknown variable: warning does not name it",
        );
        if let Some(at) = w[0].find("(did you mean ") {
            let s = w[0][at + 14..].trim_end_matches("?)");
            ensure(KNOWN.contains(&s), "suggestion is not a known variable");
            ensure(levenshtein(name, s) <= 3, "suggestion is not close");
        }
        ensure(c == d, "unknown variable changed the configuration");
        return false;
    }
    // A known variable: the oracle decides good or bad.
    let expect_bad = |default_text: &str| {
        ensure(w.len() == 1, "bad value: not exactly one warning");
        ensure(
            w[0].contains(name),
            "bad value: warning does not name the variable",
        );
        ensure(
            w[0].contains(&format!("\"{value}\""))
                || w[0].contains(&format!("\"{}\"", value.escape_debug())),
            "bad value: warning does not quote the value",
        );
        ensure(
            w[0].ends_with(&format!("using {default_text}")),
            "bad value: warning does not name the default",
        );
        ensure(c == d, "bad value: configuration is not the default");
    };
    let mut want = d.clone();
    let good = match name {
        n if BOOLS.contains(&n) => match oracle_bool(value) {
            Some(b) => {
                *match n {
                    "CGOFIX_DISABLE" => &mut want.disable,
                    "CGOFIX_ONSTACK" => &mut want.onstack,
                    "CGOFIX_SIGMASK" => &mut want.sigmask,
                    "CGOFIX_NAPI" => &mut want.napi,
                    "CGOFIX_SUSPEND_TRAMPOLINE" => &mut want.suspend_trampoline,
                    _ => &mut want.go_init,
                } = b;
                true
            }
            None => {
                let def = match n {
                    "CGOFIX_DISABLE" => d.disable,
                    "CGOFIX_ONSTACK" => d.onstack,
                    "CGOFIX_SIGMASK" => d.sigmask,
                    "CGOFIX_NAPI" => d.napi,
                    "CGOFIX_SUSPEND_TRAMPOLINE" => d.suspend_trampoline,
                    _ => d.go_init,
                };
                expect_bad(if def { "on" } else { "off" });
                false
            }
        },
        "CGOFIX_STACK_MIN" => match oracle_size(value) {
            Some(n) => {
                want.stack_min = n;
                true
            }
            None => {
                expect_bad("8M");
                false
            }
        },
        "CGOFIX_LOG" => match oracle_level(value) {
            Some(l) => {
                want.log = l;
                true
            }
            None => {
                expect_bad("warn");
                false
            }
        },
        "CGOFIX_REPORT" | "CGOFIX_LOG_FILE" => {
            let v = (!value.is_empty()).then(|| value.to_string());
            if name == "CGOFIX_REPORT" {
                want.report = v;
            } else {
                want.log_file = v;
            }
            true
        }
        "CGOFIX_SUSPEND_SIGNALS" => {
            // No full oracle for signal names: check the structure instead.
            let t = value.trim().to_ascii_lowercase();
            match c.suspend {
                _ if !w.is_empty() => {
                    expect_bad("auto");
                    return false;
                }
                SuspendMode::Auto => ensure(t == "auto", "Auto without \"auto\""),
                SuspendMode::None => ensure(t == "none" || t == "off", "None without none/off"),
                SuspendMode::List(set) => {
                    ensure(set.0 != 0, "accepted a signal list that protects no signal");
                    for tok in value.split([',', ' ', ':']).filter(|t| !t.is_empty()) {
                        let sig = cgofix::sigset::parse_signal(tok);
                        ensure(
                            sig.is_some_and(|s| (1..=64).contains(&s) && set.contains(s)),
                            "a listed signal is missing from the set or out of 1..=64",
                        );
                    }
                }
            }
            want.suspend = c.suspend;
            true
        }
        _ => unreachable!(),
    };
    if good {
        ensure(w.is_empty(), "good value produced a warning");
        ensure(c == want, "good value gave a different configuration");
    }
    good
}

fn seed_and_iters(default_iters: usize) -> (u64, usize) {
    let seed = std::env::var("CONFIG_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x00c0_f1f0_2026);
    let iters = std::env::var("CONFIG_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_iters);
    (seed, iters)
}

#[test]
fn single_variables() {
    let (seed, iters) = seed_and_iters(50_000);
    let mut r = Rng(seed);
    let (mut good, mut bad) = (0, 0);
    for iter in 0..iters {
        let name = match r.below(10) {
            0..=5 => r.pick(KNOWN).to_string(),
            6 => r.pick(SCRIPT_VARS).to_string(),
            7 | 8 => gen_unknown_name(&mut r),
            _ => gen_foreign_name(&mut r),
        };
        let value = gen_value(&mut r, &name);
        let case = Case {
            seed,
            iter,
            name: &name,
            value: &value,
        };
        if check_single(&case) {
            good += 1;
        } else {
            bad += 1;
        }
    }
    println!("{iters} cases: {good} accepted silently, {bad} warned");
    // The generator must exercise both sides, or the test proves nothing.
    assert!(
        good > iters / 10 && bad > iters / 10,
        "good {good} bad {bad}"
    );
}

#[test]
fn sizes_round_trip() {
    let (seed, iters) = seed_and_iters(50_000);
    let mut r = Rng(seed ^ 1);
    for iter in 0..iters {
        let (text, want) = gen_size(&mut r);
        assert_eq!(
            config::parse_size(&text),
            want,
            "{text:?} (seed {seed}, iteration {iter})"
        );
        let (c, w) = config::parse([("CGOFIX_STACK_MIN", text.as_str())]);
        match want {
            Some(n) => assert!(w.is_empty() && c.stack_min == n, "{text:?}: {w:?}"),
            None => assert_eq!(w.len(), 1, "{text:?}: overflow must warn once"),
        }
    }
    // Exact unit boundaries.
    for (text, want) in [
        ("1K", 1024usize),
        ("1kib", 1024),
        ("3m", 3 << 20),
        ("2GB", 2 << 30),
        (" 17179869183G ", 17_179_869_183 << 30),
    ] {
        assert_eq!(config::parse_size(text), Some(want), "{text:?}");
    }
    assert_eq!(config::parse_size("17179869184G"), None, "2^64 overflows");
}

#[test]
fn signal_lists_round_trip() {
    let (seed, iters) = seed_and_iters(20_000);
    let mut r = Rng(seed ^ 2);
    for iter in 0..iters {
        let (text, sigs) = gen_siglist(&mut r);
        let (c, w) = config::parse([("CGOFIX_SUSPEND_SIGNALS", text.as_str())]);
        assert!(w.is_empty(), "{text:?}: {w:?}");
        let SuspendMode::List(set) = c.suspend else {
            panic!(
                "{text:?} (seed {seed}, iteration {iter}): not a list: {:?}",
                c.suspend
            );
        };
        let got: Vec<i32> = set.iter().collect();
        let mut want = sigs.clone();
        want.sort();
        want.dedup();
        assert_eq!(got, want, "{text:?}");
    }
}

#[test]
fn whole_environments() {
    let (seed, iters) = seed_and_iters(5_000);
    let mut r = Rng(seed ^ 3);
    for iter in 0..iters {
        // Distinct names, as in a real environment.
        let mut env: Vec<(String, String)> = Vec::new();
        for _ in 0..r.below(12) {
            let name = match r.below(4) {
                0 | 1 => r.pick(KNOWN).to_string(),
                2 => gen_unknown_name(&mut r),
                _ => gen_foreign_name(&mut r),
            };
            if env.iter().any(|(n, _)| *n == name) {
                continue;
            }
            let value = gen_value(&mut r, &name);
            env.push((name, value));
        }
        let pairs = env.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        let (c, w) = std::panic::catch_unwind(|| config::parse(pairs)).unwrap_or_else(|_| {
            panic!("property violated: parse panicked (seed {seed}, iteration {iter}): {env:?}")
        });
        let mut want_w = Vec::new();
        let mut want = Config::default();
        for (n, v) in &env {
            let (one, ws) = config::parse([(n.as_str(), v.as_str())]);
            want_w.extend(ws);
            let d = Config::default();
            // Merge the one field this variable may set.
            if one.disable != d.disable {
                want.disable = one.disable;
            }
            if one.onstack != d.onstack {
                want.onstack = one.onstack;
            }
            if one.sigmask != d.sigmask {
                want.sigmask = one.sigmask;
            }
            if one.napi != d.napi {
                want.napi = one.napi;
            }
            if one.go_init != d.go_init {
                want.go_init = one.go_init;
            }
            if one.suspend_trampoline != d.suspend_trampoline {
                want.suspend_trampoline = one.suspend_trampoline;
            }
            if one.stack_min != d.stack_min {
                want.stack_min = one.stack_min;
            }
            if one.suspend != d.suspend {
                want.suspend = one.suspend;
            }
            if one.log != d.log {
                want.log = one.log;
            }
            if one.report != d.report {
                want.report = one.report;
            }
            if one.log_file != d.log_file {
                want.log_file = one.log_file;
            }
        }
        assert_eq!(
            w, want_w,
            "warnings of the whole environment differ from its variables' (seed {seed}, iteration {iter}): {env:?}"
        );
        assert_eq!(
            c, want,
            "settings differ (seed {seed}, iteration {iter}): {env:?}"
        );
    }
}

/// The generators must reach every class of input the issue lists, or the
/// properties above would pass vacuously.
#[test]
fn generators_cover_the_bad_input_classes() {
    let mut r = Rng(7);
    let values: Vec<String> = (0..20_000).map(|_| gen_value(&mut r, "CGOFIX_X")).collect();
    let has = |f: &dyn Fn(&str) -> bool| values.iter().any(|v| f(v));
    assert!(has(&|v| v.is_empty()), "empty");
    assert!(has(&|v| v.starts_with('-')), "negative");
    assert!(
        has(&|v| v.len() > 20 && v.bytes().all(|b| b.is_ascii_digit())),
        "overflow"
    );
    assert!(has(&|v| v.contains("RTMIN+")), "realtime signals");
    assert!(has(&|v| v.contains('\n')), "control characters");
    assert!(has(&|v| !v.is_ascii()), "non-ASCII");
    let names: Vec<String> = (0..2_000).map(|_| gen_unknown_name(&mut r)).collect();
    assert!(names.iter().all(|n| n.starts_with("CGOFIX_")));
    assert!(names.iter().any(|n| !KNOWN.contains(&n.as_str())));
}

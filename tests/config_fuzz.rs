//! The `CGOFIX_*` parser (src/config.rs) against expectations that do not
//! come from it:
//!
//! * tables written by hand from the README's configuration section, with
//!   literal results (byte counts, signal numbers, exact warning lines);
//! * generated inputs whose expected result is known from how they were
//!   built (a number and a unit give number * unit; chosen signals give
//!   their numbers; a one-letter typo of a switch gets a suggestion one edit
//!   away), never from re-parsing the text;
//! * garbage (signs, separators, control characters, non-ASCII, huge
//!   numbers) that must never panic and may only warn in the documented
//!   shape, one line per bad variable, keeping the default;
//! * a whole environment parses like its variables one by one;
//! * harness variables (`CGOFIXTEST_*`) never reach the shim, in a real
//!   process, and the repository's scripts use no other `CGOFIX_*` names
//!   than the shim's switches and the product scripts' own.
//!
//! `CONFIG_FUZZ_SEED` and `CONFIG_FUZZ_ITERS` override the seed and the
//! number of generated cases; a failure prints the seed and the input.
//! (The cargo-fuzz target `fuzz/fuzz_targets/config.rs` runs the no-panic
//! part for longer, on nightly.)
//!
//! The parser's source files are compiled into this test rather than the
//! `cgofix` crate linked: the crate carries the LD_PRELOAD hooks and
//! constructor, which must not run inside the test binary.

#[allow(dead_code)]
#[path = "../src/config.rs"]
mod config;
#[allow(dead_code)]
#[path = "../src/names.rs"]
mod names;
#[allow(dead_code)]
#[path = "../src/sigset.rs"]
mod sigset;

use config::{Config, KNOWN, LogLevel, SuspendMode, WRAPPER_VARS};

/// `config::KNOWN` (a table of inline names) as a slice.
fn known() -> &'static [&'static str] {
    static LIST: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    LIST.get_or_init(|| KNOWN.iter().collect())
}
use sigset::SigSet;
use std::time::Duration;

const M: usize = 1 << 20;

/// One variable on its own: (configuration, warnings).
fn one(name: &str, value: &str) -> (Config, Vec<String>) {
    config::parse([(name, value)])
}

/// The default configuration with `f` applied.
fn default_with(f: impl FnOnce(&mut Config)) -> Config {
    let mut c = Config::default();
    f(&mut c);
    c
}

/// A signal set from literal signal numbers (bit n-1 for signal n), built
/// without `SigSet::insert`.
fn set(signals: &[i32]) -> SuspendMode {
    SuspendMode::List(SigSet(
        signals.iter().fold(0u64, |bits, s| bits | 1 << (s - 1)),
    ))
}

// ------------------------------------------------------------ hand tables

#[test]
fn table_sizes() {
    let good: &[(&str, usize)] = &[
        ("8M", 8 * M),
        ("8m", 8 * M),
        ("8MiB", 8 * M),
        ("8mib", 8 * M),
        ("8MB", 8 * M),
        ("64k", 65_536),
        ("64K", 65_536),
        ("64KiB", 65_536),
        ("64kb", 65_536),
        ("1G", 1_073_741_824),
        ("1g", 1_073_741_824),
        ("2GB", 2_147_483_648),
        ("16777216", 16_777_216),
        ("4096B", 4096),
        ("1", 1),
        (" 8M ", 8 * M),
        ("\t64k", 65_536),
        ("0", 0),
        ("00", 0),
        ("off", 0),
        ("OFF", 0),
        ("Off", 0),
        // The largest byte count and the largest count of GiB that fit in
        // 64 bits: (2^34 - 1) * 2^30 = 2^64 - 2^30.
        ("18446744073709551615", 18_446_744_073_709_551_615),
        ("17179869183G", 18_446_744_072_635_809_792),
    ];
    for &(text, want) in good {
        let (c, w) = one("CGOFIX_STACK_MIN", text);
        assert!(w.is_empty(), "{text:?}: {w:?}");
        assert_eq!(c, default_with(|c| c.stack_min = want), "{text:?}");
    }
    let bad = [
        "",
        " ",
        "banana",
        "-1",
        "+1",
        "8X",
        "8T",
        "M",
        "KiB",
        "B",
        "1.5M",
        "8 M",
        "8MM",
        "0x10",
        "1e6",
        "on",
        "８M",
        "٨M",
        // 2^64 bytes, 2^64 as 2^54 KiB, 2^64 as 2^34 GiB: overflow.
        "18446744073709551616",
        "18014398509481984K",
        "17179869184G",
        "99999999999999999999G",
    ];
    for text in bad {
        let (c, w) = one("CGOFIX_STACK_MIN", text);
        assert_eq!(c, Config::default(), "{text:?}");
        let shown = text.escape_debug();
        assert_eq!(
            w,
            [format!(
                "cgofix: CGOFIX_STACK_MIN=\"{shown}\" is not a size; using 8M"
            )],
            "{text:?}"
        );
    }
}

#[test]
fn table_booleans() {
    let truthy = [
        "1", "on", "ON", "On", "true", "TRUE", "True", "yes", "YES", "yEs", " on ", "\ttrue",
    ];
    let falsy = [
        "0", "off", "OFF", "oFf", "false", "FALSE", "no", "No", " no\t",
    ];
    let bad = [
        "", " ", "2", "-1", "01", "y", "n", "t", "f", "enable", "disable", "onn", "o n", "ön",
        "1.0", "on,off",
    ];
    // (variable, default, field)
    type Field = fn(&mut Config) -> &mut bool;
    let vars: [(&str, bool, Field); 7] = [
        ("CGOFIX_DISABLE", false, |c| &mut c.disable),
        ("CGOFIX_ONSTACK", true, |c| &mut c.onstack),
        ("CGOFIX_SIGMASK", true, |c| &mut c.sigmask),
        ("CGOFIX_NAPI", true, |c| &mut c.napi),
        ("CGOFIX_GO_INIT", true, |c| &mut c.go_init),
        ("CGOFIX_KEEP_SIGPIPE", true, |c| &mut c.keep_sigpipe),
        ("CGOFIX_SUSPEND_TRAMPOLINE", true, |c| {
            &mut c.suspend_trampoline
        }),
    ];
    for (name, default, field) in vars {
        assert_eq!(*field(&mut Config::default()), default, "{name} default");
        for (words, want) in [(&truthy[..], true), (&falsy[..], false)] {
            for v in words {
                let (c, w) = one(name, v);
                assert!(w.is_empty(), "{name}={v:?}: {w:?}");
                assert_eq!(c, default_with(|c| *field(c) = want), "{name}={v:?}");
            }
        }
        let default_word = if default { "on" } else { "off" };
        for v in bad {
            let (c, w) = one(name, v);
            assert_eq!(c, Config::default(), "{name}={v:?}");
            assert_eq!(
                w,
                [format!(
                    "cgofix: {name}=\"{}\" is not on/off; using {default_word}",
                    v.escape_debug()
                )],
            );
        }
    }
}

#[test]
fn table_signal_lists() {
    // glibc reserves signals 32 and 33 for its threads: SIGRTMIN is 34.
    assert_eq!(libc::SIGRTMIN(), 34);
    let good: &[(&str, SuspendMode)] = &[
        ("SIGPWR,USR1,30,RTMIN+2", set(&[10, 30, 36])),
        ("sigusr2", set(&[12])),
        ("Usr2", set(&[12])),
        ("12", set(&[12])),
        ("SIGHUP SIGINT", set(&[1, 2])),
        ("hup:int", set(&[1, 2])),
        ("HUP, INT", set(&[1, 2])),
        (",,PWR,,", set(&[30])),
        ("TERM,CHLD,WINCH,SYS,QUIT", set(&[3, 15, 17, 28, 31])),
        ("1", set(&[1])),
        ("64", set(&[64])),
        ("RTMIN+0", set(&[34])),
        ("SIGRTMIN+30", set(&[64])),
        ("auto", SuspendMode::Auto),
        ("AUTO", SuspendMode::Auto),
        (" Auto ", SuspendMode::Auto),
        ("none", SuspendMode::None),
        ("NONE", SuspendMode::None),
        ("off", SuspendMode::None),
        ("Off", SuspendMode::None),
    ];
    for (text, want) in good {
        let (c, w) = one("CGOFIX_SUSPEND_SIGNALS", text);
        assert!(w.is_empty(), "{text:?}: {w:?}");
        assert_eq!(c, default_with(|c| c.suspend = *want), "{text:?}");
    }
    for text in [
        "",
        " ",
        ",",
        "0",
        "65",
        "-3",
        "SIGBOGUS",
        "PWR,BOGUS",
        "30,0",
        "RTMIN+31",
        "RTMIN+-1",
        "RTMIN",
        "SIG",
        "SIGSIGPWR",
        "30.0",
        "on",
        "PWR;USR1",
    ] {
        let (c, w) = one("CGOFIX_SUSPEND_SIGNALS", text);
        assert_eq!(c, Config::default(), "{text:?}");
        assert_eq!(
            w,
            [format!(
                "cgofix: CGOFIX_SUSPEND_SIGNALS=\"{}\" is not auto, none or a list of signals; using auto",
                text.escape_debug()
            )],
        );
    }
}

#[test]
fn table_log_report_and_log_file() {
    for (text, want) in [
        ("off", LogLevel::Off),
        ("OFF", LogLevel::Off),
        ("error", LogLevel::Error),
        ("Error", LogLevel::Error),
        ("warn", LogLevel::Warn),
        ("WARN", LogLevel::Warn),
        ("info", LogLevel::Info),
        ("debug", LogLevel::Debug),
        (" DEBUG ", LogLevel::Debug),
        // Aliases.
        ("none", LogLevel::Off),
        ("0", LogLevel::Off),
        ("warning", LogLevel::Warn),
        ("trace", LogLevel::Debug),
    ] {
        let (c, w) = one("CGOFIX_LOG", text);
        assert!(w.is_empty(), "{text:?}: {w:?}");
        assert_eq!(c, default_with(|c| c.log = want), "{text:?}");
    }
    for (text, shown) in [
        ("", ""),
        ("loud", "loud"),
        ("1", "1"),
        ("verbose", "verbose"),
        ("err", "err"),
        ("debugx", "debugx"),
        // One line whatever the value holds: escaped, not printed raw.
        ("a\nb", "a\\nb"),
        ("say \"hi\"", "say \\\"hi\\\""),
    ] {
        let (c, w) = one("CGOFIX_LOG", text);
        assert_eq!(c, Config::default(), "{text:?}");
        assert_eq!(
            w,
            [format!(
                "cgofix: CGOFIX_LOG=\"{shown}\" is not off|error|warn|info|debug; using warn"
            )]
        );
    }
    let (c, w) = one("CGOFIX_REPORT", "stderr");
    assert!(w.is_empty());
    assert_eq!(c, default_with(|c| c.report = Some("stderr".into())));
    let (c, w) = one("CGOFIX_REPORT", "/tmp/r.json");
    assert!(w.is_empty());
    assert_eq!(c, default_with(|c| c.report = Some("/tmp/r.json".into())));
    // Empty means unset.
    assert_eq!(one("CGOFIX_REPORT", ""), (Config::default(), vec![]));
    let (c, w) = one("CGOFIX_LOG_FILE", "/tmp/cgofix.log");
    assert!(w.is_empty());
    assert_eq!(
        c,
        default_with(|c| c.log_file = Some("/tmp/cgofix.log".into()))
    );
    assert_eq!(one("CGOFIX_LOG_FILE", ""), (Config::default(), vec![]));
}

#[test]
fn table_names() {
    // Unknown names under CGOFIX_: one warning, a suggestion within three
    // edits of a switch.
    for (name, suggestion) in [
        ("CGOFIX_STAK_MIN", Some("CGOFIX_STACK_MIN")),
        ("CGOFIX_LOGG", Some("CGOFIX_LOG")),
        ("CGOFIX_LOG_", Some("CGOFIX_LOG")),
        ("CGOFIX_NAP", Some("CGOFIX_NAPI")),
        ("CGOFIX_DISABLED", Some("CGOFIX_DISABLE")),
        ("CGOFIX_SUSPEND_SIGNAL", Some("CGOFIX_SUSPEND_SIGNALS")),
        ("CGOFIX_ONSTACKXYZ", Some("CGOFIX_ONSTACK")),
        ("CGOFIX_ONSTACKWXYZ", None),
        ("CGOFIX_ZZZZZZZZZZZZZZZZ", None),
    ] {
        let (c, w) = one(name, "1");
        assert_eq!(c, Config::default(), "{name}");
        let want = match suggestion {
            Some(s) => format!("cgofix: unknown variable {name} ignored (did you mean {s}?)"),
            None => format!("cgofix: unknown variable {name} ignored"),
        };
        assert_eq!(w, [want]);
    }
    // Not the shim's: no warning, no effect. Case matters (environment
    // names are case-sensitive), and the harness's prefix is not CGOFIX_.
    for name in [
        "cgofix_stack_min",
        "Cgofix_Log",
        "XCGOFIX_LOG",
        "CGOFIX",
        "CGOFIXTEST_GO123",
        "CGOFIXTEST_LIB",
        "PATH",
        "",
    ] {
        assert_eq!(one(name, "junk"), (Config::default(), vec![]), "{name:?}");
    }
    // The product scripts' own variables: known, silent.
    for name in [
        "CGOFIX_LIB",
        "CGOFIX_BUILD",
        "CGOFIX_GLIBC",
        "CGOFIX_ZIGBUILD",
        "CGOFIX_ZIG_TARGET_DIR",
    ] {
        assert_eq!(one(name, "x"), (Config::default(), vec![]), "{name}");
    }
}

// ------------------------------------------------------------- generators

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

const BOOLS: &[&str] = &[
    "CGOFIX_DISABLE",
    "CGOFIX_ONSTACK",
    "CGOFIX_SIGMASK",
    "CGOFIX_NAPI",
    "CGOFIX_GO_INIT",
    "CGOFIX_KEEP_SIGPIPE",
    "CGOFIX_SUSPEND_TRAMPOLINE",
];
/// Signal names with their Linux x86_64/aarch64 numbers (signal(7)).
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("USR1", 10),
    ("USR2", 12),
    ("PWR", 30),
    ("TERM", 15),
    ("CHLD", 17),
    ("WINCH", 28),
    ("PROF", 27),
    ("SEGV", 11),
];

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

/// A size in a random spelling and the byte count it stands for (computed
/// from the number and unit chosen; `None` when it does not fit 64 bits).
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

/// A list of 1-4 signals (names with or without SIG, any case, or numbers)
/// and the numbers chosen.
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

/// A switch name with one edit after the `CGOFIX_` prefix, and the name it
/// came from (the result may happen to be a real name).
fn gen_typo(r: &mut Rng) -> (String, &'static str) {
    let base = *r.pick(known());
    let mut chars: Vec<char> = base.chars().collect();
    let at = 7 + r.below(chars.len() - 7);
    let c = *r.pick(&['A', 'E', 'K', 'S', '_', '1', 'Z']);
    match r.below(3) {
        0 => {
            chars.remove(at);
        }
        1 => chars.insert(at, c),
        _ => chars[at] = c,
    }
    (chars.into_iter().collect(), base)
}

fn gen_unknown_name(r: &mut Rng) -> String {
    match r.below(4) {
        0 | 1 => gen_typo(r).0,
        2 => format!(
            "CGOFIX_{}",
            (0..r.below(20))
                .map(|_| *r.pick(&['A', 'Q', 'X', 'Z', '_', '9']))
                .collect::<String>()
        ),
        _ => format!("{}_EXTRA", r.pick(known())),
    }
}

fn gen_foreign_name(r: &mut Rng) -> String {
    let k = r.pick(known());
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
                "CGOFIXTEST_GO119",
            ])
            .to_string(),
    }
}

/// Whether `a` and `b` differ by exactly one insertion, deletion or
/// substitution: what is left after their common prefix and suffix.
fn one_edit_apart(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let p = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (a, b) = (&a[p..], &b[p..]);
    let s = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    matches!((a.len() - s, b.len() - s), (1, 1) | (1, 0) | (0, 1))
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

// ------------------------------------------- expectations by construction

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
        let (c, w) = one("CGOFIX_STACK_MIN", &text);
        match want {
            Some(n) => assert!(w.is_empty() && c.stack_min == n, "{text:?}: {w:?}"),
            None => assert_eq!(w.len(), 1, "{text:?}: overflow must warn once"),
        }
    }
}

#[test]
fn signal_lists_round_trip() {
    let (seed, iters) = seed_and_iters(20_000);
    let mut r = Rng(seed ^ 2);
    for iter in 0..iters {
        let (text, sigs) = gen_siglist(&mut r);
        let (c, w) = one("CGOFIX_SUSPEND_SIGNALS", &text);
        assert!(w.is_empty(), "{text:?}: {w:?}");
        assert_eq!(
            c.suspend,
            set(&sigs),
            "{text:?} (seed {seed}, iteration {iter})"
        );
    }
}

/// Good words in random case and padding give their value; a good word with
/// a letter appended is bad, and the warning names the default.
#[test]
fn booleans_and_levels_by_construction() {
    let (seed, iters) = seed_and_iters(20_000);
    let mut r = Rng(seed ^ 4);
    let words: &[(&str, bool)] = &[
        ("1", true),
        ("on", true),
        ("true", true),
        ("yes", true),
        ("0", false),
        ("off", false),
        ("false", false),
        ("no", false),
    ];
    let levels: &[(&str, LogLevel)] = &[
        ("off", LogLevel::Off),
        ("error", LogLevel::Error),
        ("warn", LogLevel::Warn),
        ("info", LogLevel::Info),
        ("debug", LogLevel::Debug),
    ];
    for iter in 0..iters {
        let ctx = format!("seed {seed}, iteration {iter}");
        let name = *r.pick(BOOLS);
        let (word, want) = *r.pick(words);
        let text = r.recase(word);
        let text = r.pad(text);
        let (c, w) = one(name, &text);
        assert!(w.is_empty(), "{name}={text:?} ({ctx}): {w:?}");
        let d = Config::default();
        let got = match name {
            "CGOFIX_DISABLE" => c.disable,
            "CGOFIX_ONSTACK" => c.onstack,
            "CGOFIX_SIGMASK" => c.sigmask,
            "CGOFIX_NAPI" => c.napi,
            "CGOFIX_GO_INIT" => c.go_init,
            "CGOFIX_KEEP_SIGPIPE" => c.keep_sigpipe,
            _ => c.suspend_trampoline,
        };
        assert_eq!(got, want, "{name}={text:?} ({ctx})");
        let bad = format!("{text}{}", r.pick(&["x", "1", "!"]));
        let (c, w) = one(name, &bad);
        assert_eq!(c, d, "{name}={bad:?} ({ctx})");
        let default = if name == "CGOFIX_DISABLE" {
            "off"
        } else {
            "on"
        };
        assert_eq!(w.len(), 1, "{name}={bad:?} ({ctx})");
        assert!(w[0].ends_with(&format!("using {default}")), "{w:?}");

        let (level, want) = *r.pick(levels);
        let text = r.recase(level);
        let (c, w) = one("CGOFIX_LOG", &text);
        assert!(w.is_empty() && c.log == want, "{text:?} ({ctx}): {w:?}");
    }
}

/// One edit of a switch's name that is not itself a name: exactly one
/// warning, naming it, with a suggestion one edit away.
#[test]
fn typos_get_a_close_suggestion() {
    let (seed, iters) = seed_and_iters(20_000);
    let mut r = Rng(seed ^ 5);
    let mut checked = 0;
    for iter in 0..iters {
        let (typo, base) = gen_typo(&mut r);
        if known().contains(&typo.as_str()) || WRAPPER_VARS.contains(&typo.as_str()) {
            continue;
        }
        let (c, w) = one(&typo, "1");
        assert_eq!(c, Config::default(), "{typo}");
        let head = format!("cgofix: unknown variable {typo} ignored (did you mean ");
        let [line] = w.as_slice() else {
            panic!("{typo} (from {base}, seed {seed}, iteration {iter}): {w:?}")
        };
        let s = line
            .strip_prefix(&head)
            .and_then(|s| s.strip_suffix("?)"))
            .unwrap_or_else(|| panic!("{typo}: {line}"));
        assert!(known().contains(&s), "{typo}: suggested {s}");
        assert!(
            one_edit_apart(&typo, s),
            "{typo} (from {base}): suggested {s}, not one edit away"
        );
        checked += 1;
    }
    assert!(checked > iters / 2, "only {checked} typos checked");
}

#[test]
fn one_edit_apart_itself() {
    for (a, b, want) in [
        ("CGOFIX_LOG", "CGOFIX_LOGG", true),
        ("CGOFIX_LOGG", "CGOFIX_LOG", true),
        ("CGOFIX_LOG", "CGOFIX_LAG", true),
        ("AAB", "AB", true),
        ("CGOFIX_LOG", "CGOFIX_LOG", false),
        ("CGOFIX_LOG", "CGOFIX_LAGG", false),
        ("CGOFIX_NAPI", "CGOFIX_PANI", false),
        ("", "A", true),
        ("", "", false),
    ] {
        assert_eq!(one_edit_apart(a, b), want, "{a} {b}");
    }
}

// ---------------------------------------------------------- garbage fuzz

/// Copies `name`'s own field from `from` to `to`.
fn copy_field(name: &str, to: &mut Config, from: &Config) {
    let from = from.clone();
    match name {
        "CGOFIX_DISABLE" => to.disable = from.disable,
        "CGOFIX_ONSTACK" => to.onstack = from.onstack,
        "CGOFIX_SIGMASK" => to.sigmask = from.sigmask,
        "CGOFIX_NAPI" => to.napi = from.napi,
        "CGOFIX_GO_INIT" => to.go_init = from.go_init,
        "CGOFIX_KEEP_SIGPIPE" => to.keep_sigpipe = from.keep_sigpipe,
        "CGOFIX_SUSPEND_TRAMPOLINE" => to.suspend_trampoline = from.suspend_trampoline,
        "CGOFIX_STACK_MIN" => to.stack_min = from.stack_min,
        "CGOFIX_SUSPEND_SIGNALS" => to.suspend = from.suspend,
        "CGOFIX_LOG" => to.log = from.log,
        "CGOFIX_REPORT" => to.report = from.report,
        "CGOFIX_LOG_FILE" => to.log_file = from.log_file,
        other => panic!("{other} has no field here: add it"),
    }
}

/// The default configuration with only `name`'s field taken from `c`.
fn only_field_of(name: &str, c: &Config) -> Config {
    default_with(|d| copy_field(name, d, c))
}

/// Any value of any name: no panic; warnings are single lines starting
/// `cgofix: ` and naming the variable, at most one; a warned variable keeps
/// the default; a silent one changes its own field only; names that are
/// not the shim's are silent. Returns whether it warned.
fn check_any(seed: u64, iter: usize, name: &str, value: &str) -> bool {
    let fail = |what: &str, w: &[String], c: &Config| -> ! {
        panic!(
            "property violated: {what}\n  input: {name}={value:?}\n  warnings: {w:?}\n  config: {c:?}\n  (CONFIG_FUZZ_SEED={seed} iteration {iter})"
        )
    };
    let (c, w) = std::panic::catch_unwind(|| config::parse([(name, value)]))
        .unwrap_or_else(|_| fail("parse panicked", &[], &Config::default()));
    let ensure = |ok: bool, what: &str| {
        if !ok {
            fail(what, &w, &c)
        }
    };
    let d = Config::default();
    ensure(w.len() <= 1, "more than one warning for one variable");
    for line in &w {
        ensure(line.starts_with("cgofix: "), "warning without `cgofix: `");
        ensure(!line.contains(['\n', '\r']), "warning is not one line");
        ensure(
            line.contains(&name.escape_debug().to_string()),
            "warning does not name the variable",
        );
    }
    if !name.starts_with("CGOFIX_") || WRAPPER_VARS.contains(&name) {
        ensure(w.is_empty() && c == d, "a variable not ours had an effect");
        return false;
    }
    if !known().contains(&name) {
        ensure(w.len() == 1, "unknown variable: not exactly one warning");
        ensure(
            w[0].starts_with(&format!(
                "cgofix: unknown variable {} ignored",
                name.escape_debug()
            )),
            "unknown variable: wrong warning",
        );
        ensure(c == d, "unknown variable changed the configuration");
        return true;
    }
    if w.is_empty() {
        ensure(
            c == only_field_of(name, &c),
            "a variable changed another's setting",
        );
        false
    } else {
        ensure(c == d, "bad value: configuration is not the default");
        ensure(
            w[0].contains(&format!("=\"{}\"", value.escape_debug())),
            "bad value: warning does not quote the value",
        );
        ensure(w[0].contains("; using "), "bad value: no default named");
        true
    }
}

#[test]
fn garbage_never_panics_and_warns_in_shape() {
    let (seed, iters) = seed_and_iters(50_000);
    let mut r = Rng(seed);
    let (mut silent, mut warned) = (0, 0);
    for iter in 0..iters {
        let name = match r.below(10) {
            0..=5 => r.pick(known()).to_string(),
            6 => r.pick(WRAPPER_VARS).to_string(),
            7 | 8 => gen_unknown_name(&mut r),
            _ => gen_foreign_name(&mut r),
        };
        let value = gen_value(&mut r, &name);
        if check_any(seed, iter, &name, &value) {
            warned += 1;
        } else {
            silent += 1;
        }
    }
    println!("{iters} cases: {silent} silent, {warned} warned");
    // The generator must exercise both sides, or the test proves nothing.
    assert!(
        silent > iters / 10 && warned > iters / 10,
        "silent {silent} warned {warned}"
    );
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
                0 | 1 => r.pick(known()).to_string(),
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
        // The same environment one variable at a time: the warnings in
        // order, and each known variable's own field.
        let mut want_w = Vec::new();
        let mut want = Config::default();
        for (n, v) in &env {
            let (one_c, ws) = one(n, v);
            want_w.extend(ws);
            if known().contains(&n.as_str()) {
                copy_field(n, &mut want, &one_c);
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
    assert!(names.iter().any(|n| !known().contains(&n.as_str())));
}

// ------------------------------------------------ harness vs product names

/// The harness's variables reach preloaded processes (the tests' children
/// inherit them) and must not make the shim say anything; a typo of a real
/// switch still gets its did-you-mean.
#[test]
fn harness_variables_do_not_reach_the_shim() {
    let shim = testkit::shim();
    let true_ = |env: &[(&str, &str)]| {
        let mut c = std::process::Command::new("/bin/true");
        c.env_clear()
            .env("LD_PRELOAD", &shim)
            .envs(env.iter().copied());
        let o = testkit::run(format!("/bin/true {env:?}"), c, Duration::from_secs(20));
        o.expect_success();
        (o.stdout().to_string(), o.stderr().to_string())
    };
    let quiet = [
        ("CGOFIXTEST_GO119", "x"),
        ("CGOFIXTEST_GO123", "x"),
        ("CGOFIXTEST_GONEW", "x"),
        ("CGOFIXTEST_NAPI_INCLUDE", "x"),
        ("CGOFIXTEST_BUNS", "1.4.5=/x"),
        ("CGOFIXTEST_ZIGBUILD", "x"),
        ("CGOFIXTEST_HADOLINT", "x"),
        ("CGOFIXTEST_LIB", "x"),
        ("CGOFIXTEST_SOAK_RUNS", "3"),
        ("CGOFIX_LIB", "x"),
        ("CGOFIX_BUILD", "zig"),
        ("CGOFIX_GLIBC", "2.17"),
        ("CGOFIX_ZIGBUILD", "x"),
        ("CGOFIX_ZIG_TARGET_DIR", "x"),
    ];
    assert_eq!(true_(&quiet[1..2]), (String::new(), String::new()));
    assert_eq!(true_(&quiet), (String::new(), String::new()));
    let (out, err) = true_(&[("CGOFIX_STAK_MIN", "1")]);
    assert_eq!(out, "");
    assert_eq!(
        err,
        "cgofix: unknown variable CGOFIX_STAK_MIN ignored (did you mean CGOFIX_STACK_MIN?)\n"
    );
    // The harness's former names are plain unknown variables now.
    let (_, err) = true_(&[("CGOFIX_GO123", "x")]);
    assert!(
        err.starts_with("cgofix: unknown variable CGOFIX_GO123 ignored"),
        "{err}"
    );
}

/// `CGOFIX_[A-Z0-9_]+` words in `text`.
fn cgofix_names(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("CGOFIX_") {
        let word = &rest[at..];
        let len = word
            .bytes()
            .position(|b| !(b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'))
            .unwrap_or(word.len());
        // A word boundary before, and more than the bare prefix.
        let boundary = rest[..at]
            .bytes()
            .last()
            .is_none_or(|b| !(b.is_ascii_alphanumeric() || b == b'_'));
        if boundary && len > "CGOFIX_".len() {
            out.push(&word[..len]);
        }
        rest = &word[len.max(1)..];
    }
    out
}

/// The scripts, the fixture build and the harness use only the shim's
/// switches and the product scripts' variables under `CGOFIX_`: anything
/// else of theirs is `CGOFIXTEST_*`, which the shim never reads.
#[test]
fn harness_uses_no_other_cgofix_names() {
    assert_eq!(
        cgofix_names("a CGOFIX_LOG=1 $CGOFIX_LIB \"CGOFIX_\" XCGOFIX_NO CGOFIXTEST_GO119"),
        ["CGOFIX_LOG", "CGOFIX_LIB"]
    );
    let root = testkit::root();
    let mut files = Vec::new();
    for (dir, ext) in [
        ("scripts", "sh"),
        ("docker", "sh"),
        ("benches", "py"),
        ("tests/fixtures", "sh"),
        ("testkit/src", "rs"),
    ] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == ext) {
                files.push(p);
            }
        }
    }
    assert!(files.len() >= 8, "{files:?}");
    let mut strays = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for name in cgofix_names(&text) {
            if !known().contains(&name) && !WRAPPER_VARS.contains(&name) {
                strays.push(format!("{}: {name}", f.display()));
            }
        }
    }
    assert!(
        strays.is_empty(),
        "CGOFIX_* names the shim does not know (the harness's belong under CGOFIXTEST_*):\n  {}",
        strays.join("\n  ")
    );
}

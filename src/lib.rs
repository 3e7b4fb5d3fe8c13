//! cgofix: an LD_PRELOAD shim that makes Go (cgo) native modules work inside
//! unmodified Bun binaries. This crate is the policy; `interpose` is the
//! mechanism. See BACKGROUND.md in the project's shared notes for the root
//! cause, and README.md for usage.
//!
//! Everything is decided once, in the constructor: configuration is parsed,
//! real symbols are resolved, the host is identified. Hooks then only read
//! atomics (see each module for which paths are signal-reachable).

pub mod config;
pub mod dl;
pub mod gomods;
pub mod log;
pub mod napi;
pub mod report;
pub mod signals;
pub mod sigset;
pub mod stats;
pub mod suspend;
pub mod threads;
pub mod trampoline;

use config::Config;
use interpose::elf;
use std::io::Write;
use std::sync::OnceLock;

static CONFIG: OnceLock<Config> = OnceLock::new();

/// The configuration, once the constructor has run. `OnceLock::get` is one
/// atomic load: async-signal-safe.
pub fn config() -> Option<&'static Config> {
    CONFIG.get()
}

/// Identifies the host from the executable's dynamic section (see
/// `suspend.rs` for why a `BUN_*` symbol version means Bun).
fn identify_host() -> suspend::Host {
    let mut host = suspend::Host {
        is_bun: false,
        exe_text: (0, 0),
    };
    let mut first = true;
    elf::for_each_object(|obj| {
        if !std::mem::take(&mut first) {
            return false;
        }
        // dl_iterate_phdr reports the executable first.
        host.exe_text = elf::text_range(obj);
        elf::verdef_names(obj, |name| {
            host.is_bun |= name.starts_with(b"BUN_");
        });
        false
    });
    host
}

unsafe extern "C" {
    /// libc's `KEY=VALUE` array, NULL-terminated.
    static environ: *const *const libc::c_char;
}

/// The `CGOFIX_*` variables, read straight from `environ`: only matching
/// entries are copied (`std::env::vars_os` copies every variable, which
/// was ~70k of the ~170k instructions the shim added to a process start,
/// measured with callgrind on `/bin/true`). Lossy, not skipped: a value
/// that is not UTF-8 is malformed input and gets its warning line.
fn cgofix_vars() -> Vec<(String, String)> {
    let mut out = Vec::new();
    // SAFETY: `environ` is libc's array of NUL-terminated strings ending in
    // NULL; the constructor reads it before `main`, as std::env would.
    unsafe {
        let mut p = environ;
        while !p.is_null() && !(*p).is_null() {
            let entry = std::ffi::CStr::from_ptr(*p).to_bytes();
            p = p.add(1);
            if !entry.starts_with(b"CGOFIX_") {
                continue;
            }
            let (k, v) = match entry.iter().position(|&b| b == b'=') {
                Some(eq) => (&entry[..eq], &entry[eq + 1..]),
                None => (entry, &b""[..]),
            };
            out.push((
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            ));
        }
    }
    out
}

fn init() {
    let vars = cgofix_vars();
    let (cfg, warnings) = config::parse(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if !warnings.is_empty() {
        let mut err = std::io::stderr().lock();
        for w in &warnings {
            let _ = writeln!(err, "{w}");
        }
    }
    log::init(cfg.log, cfg.log_file.as_deref());
    // Resolve before publishing the configuration: hooks apply the policy
    // only once CONFIG is set, and by then every real pointer is in place.
    signals::resolve();
    threads::resolve();
    dl::resolve();
    let mut is_bun = false;
    if !cfg.disable {
        let host = identify_host();
        is_bun = host.is_bun;
        suspend::init(&cfg, host);
        trampoline::init(cfg.suspend_trampoline);
        gomods::scan_loaded();
    }
    let disabled = cfg.disable;
    let _ = CONFIG.set(cfg);
    napi::init();
    report::init();
    if disabled {
        log!(
            Info,
            "disabled by CGOFIX_DISABLE: every hook passes through"
        );
    } else {
        let host = if is_bun { "Bun" } else { "not Bun" };
        log!(Info, "active {} (host: {host})", env!("CARGO_PKG_VERSION"));
    }
}

/// Called after every successful `dlopen`: the Go init hook (signal
/// dispositions may have been changed by a runtime that bypasses libc).
pub fn after_load() {
    napi::after_dlopen();
    // Part of the Go init hook: anything loaded may have started a runtime
    // that changed dispositions behind libc's back.
    if config().is_some_and(|c| c.go_init) && !recheck_suspend_signals() {
        log!(
            Warn,
            "a suspend signal's handler still has SA_ONSTACK after dlopen and could not be repaired"
        );
    }
}

/// Re-applies JSC's rule to what is installed now: a Go runtime that uses
/// raw system calls instead of libc `sigaction` (every arch but amd64 and
/// arm64 with cgo) is invisible to the sigaction hook.
/// Returns whether every suspend signal is clean afterwards.
pub fn recheck_suspend_signals() -> bool {
    // Every signal is enforced, even after one fails.
    let mut ok = true;
    for sig in suspend::current().iter() {
        ok &= signals::enforce(sig);
    }
    ok
}

#[ctor::ctor]
fn cgofix_constructor() {
    // A constructor must never unwind into the loader.
    let _ = std::panic::catch_unwind(init);
}

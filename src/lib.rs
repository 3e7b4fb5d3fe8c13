//! cgofix: an LD_PRELOAD shim that makes Go (cgo) native modules work inside
//! unmodified Bun, Node and other hosts. This crate is the policy;
//! `interpose` is the mechanism. docs/background.md has the root cause,
//! docs/architecture.md the module map, README.md the usage.
//!
//! Everything the signal-reachable hooks need is decided once, in the
//! constructor below: configuration is parsed, the real signal functions
//! are resolved, the host is identified. Hooks then only read atomics (see
//! each module for which paths are signal-reachable).
//!
//! The constructor runs in every process a container starts (Docker images
//! set LD_PRELOAD for the whole container), so anything that is not needed
//! before the first call of a hook that cannot be reached from a signal
//! handler waits for that call: the real `pthread_create` and `dlopen`
//! family (`threads.rs`, `dl.rs`), the fork handler (`registry.rs`), and
//! the Go code ranges of the objects loaded at start-up when no suspend
//! signal can be protected (README "Performance", start-up rows).

pub mod config;
mod deferred;
pub mod dl;
pub mod env;
pub mod goinit;
pub mod handler_probe;
pub mod host;
pub mod inprocess;
mod lazy_table;
pub mod loader;
pub mod loading;
pub mod log;
pub mod names;
pub mod napi;
mod primitives;
pub mod rawsig;
pub mod registry;
pub mod report;
pub mod signals;
pub mod sigset;
pub mod state;
pub mod stats;
pub mod suspend;
pub mod threads;
pub mod trampoline;
#[cfg(cgofix_llvm_libunwind)]
mod zig_imports;

use libc::{c_char, c_int};

// Start-up code kept together (build.rs, 4).
#[unsafe(link_section = ".text.cgofix_startup")]
fn init(env: env::Environ) {
    let vars = env::cgofix_vars(env);
    let (cfg, warnings) = config::parse(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    // Preloaded, loaded late (`cgofix/register`), or a second copy.
    let detected = inprocess::detect();
    if let inprocess::Detected::Inactive(active) = &detected {
        // Another copy hooks the process already (and has said whatever
        // the configuration warns about): this one stays a bystander, its
        // hooks pass through (no configuration is published).
        state::set_mode(state::Mode::Inactive);
        log::init(cfg.log, cfg.log_file.as_deref());
        inprocess::note_inactive(active);
        log!(
            Info,
            "another copy of the library is active ({active}): this one stays inactive"
        );
        return;
    }
    for w in &warnings {
        // One write per line: children of one shell warn concurrently.
        log::write_all(2, format!("{w}\n").as_bytes());
    }
    log::init(cfg.log, cfg.log_file.as_deref());
    let in_process = matches!(detected, inprocess::Detected::InProcess);
    if in_process {
        state::set_mode(state::Mode::InProcess);
    }
    // Resolve before publishing the configuration: hooks apply the policy
    // only once it is published, and by then every real pointer is in place.
    signals::resolve();
    let mut is_bun = false;
    if !cfg.disable {
        let host = host::identify();
        is_bun = host.is_bun;
        suspend::init(&cfg, host, env);
        trampoline::init(cfg.suspend_trampoline);
        // Go code ranges are asked for on suspend signals (the sigaction
        // policy, the trampoline) and by the SIGPIPE rule. Objects loaded
        // later are classified by the `dlopen` path; those already mapped
        // only matter when one of the two can apply: a suspend signal is
        // possible, or SIGPIPE was inherited ignored (a Go library among
        // them would replace that SIG_IGN in its constructor, outside any
        // `dlopen`). Skipping the walk otherwise saves every other process
        // start the scan. JSC_SIGNAL_FOR_GC only changes which signal.
        let (fixed, candidates) = suspend::plan(cfg.suspend, host.is_bun, None);
        let sigpipe_ignored = cfg.keep_sigpipe && signals::ignored_now(libc::SIGPIPE);
        if fixed.0 | candidates.0 != 0 || sigpipe_ignored {
            registry::classify_loaded();
        }
    }
    let disabled = cfg.disable;
    if cfg.report.is_some() {
        // Before publishing: hooks count from their first policy decision.
        stats::start_counting();
    }
    state::publish(cfg);
    report::init();
    if in_process && !disabled {
        // After publishing: the repair applies the policy, which only
        // works once the configuration is published.
        inprocess::attach();
    }
    if disabled {
        log!(
            Info,
            "disabled by CGOFIX_DISABLE: every hook passes through"
        );
    } else {
        let host = if is_bun { "Bun" } else { "not Bun" };
        log!(
            Info,
            "active {} (host: {host}, mode: {})",
            env!("CARGO_PKG_VERSION"),
            state::mode().as_str()
        );
    }
}

/// The constructor's `.init_array` entry: what the `ctor` crate generated
/// on Linux, without its wrapper function, which the start-up section
/// could not hold (build.rs, 4).
/// glibc passes `.init_array` functions `argc`, `argv` and the environment
/// (`env.rs`).
#[used]
#[unsafe(link_section = ".init_array")]
static CONSTRUCTOR: extern "C" fn(c_int, *const *const c_char, *const *const c_char) =
    cgofix_constructor;

#[unsafe(link_section = ".text.cgofix_startup")]
extern "C" fn cgofix_constructor(
    argc: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
) {
    let env = env::Environ::from_init(argc, argv, envp);
    // A constructor must never unwind into the loader.
    let _ = std::panic::catch_unwind(|| init(env));
}

//! Which signals are the host's thread-suspend signals (`SuspendSignal`s).
//!
//! The detection rule for `CGOFIX_SUSPEND_SIGNALS=auto`:
//!
//! 1. The host must be Bun: its executable defines a `BUN_*` symbol version
//!    (Bun links with a version script that exports the Node-API under
//!    `BUN_1.1`/`BUN_1.2`; Node, Python, shells have none). Under any other
//!    host, nothing is protected: Node's SIGUSR1 handler (inspector) is an
//!    ordinary handler that needs `SA_ONSTACK` like any other.
//! 2. If `JSC_SIGNAL_FOR_GC` holds a signal number, that is the signal
//!    (WTF's `Thread::initializePlatformThreading` reads the same variable).
//! 3. Otherwise JSC's suspend signal is SIGPWR (Bun >= 1.2.2, Bun's WebKit
//!    fork) or SIGUSR1 (Bun 1.0 to 1.2.1, upstream WebKit; the switch was
//!    bisected on the npm builds, so no version table is kept here: the
//!    detection looks rather than assumes). Whichever of the two
//!    first gets a handler that lives in the executable's own code is latched
//!    as the suspend signal. JSC installs it during start-up, before any JS
//!    runs, so a later `process.on('SIGUSR1')` on Bun 1.2.2+ (also executable
//!    code) finds the latch taken and stays an ordinary handler.
//!
//! 4. Whether it needs protecting: in auto mode, the handler the executable
//!    installs on a suspend signal is probed once (`handler_probe.rs`):
//!    Bun >= 1.4.4's handler reads the interrupted stack pointer from its
//!    `ucontext_t` and tolerates `SA_ONSTACK`, so the signal is then left to
//!    Go's rule like any other handler (report: `suspend_fix: "not-needed"`).
//!    An explicit `CGOFIX_SUSPEND_SIGNALS` list is always protected.
//!
//! Everything read from hooks is an atomic: `observe_install`,
//! `is_protected` and `protected` are SIGNAL-REACHABLE and async-signal-safe.

use crate::config::{Config, SuspendMode};
use crate::env::Environ;
use crate::handler_probe;
use crate::host::Host;
use crate::sigset::{SigSet, parse_signal};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Signals protected unconditionally (an explicit list, or JSC_SIGNAL_FOR_GC).
static FIXED: AtomicU64 = AtomicU64::new(0);
/// Signals that may still be latched (auto mode, Bun host, no override).
static CANDIDATES: AtomicU64 = AtomicU64::new(0);
/// The latched suspend signal's bit, 0 until seen.
static LATCHED: AtomicU64 = AtomicU64::new(0);
/// Signals whose handler from the executable is probed (auto mode on Bun),
/// those probed already, and those whose handler tolerates `SA_ONSTACK`.
static PROBE: AtomicU64 = AtomicU64::new(0);
static PROBED: AtomicU64 = AtomicU64::new(0);
static TOLERANT: AtomicU64 = AtomicU64::new(0);
/// The executable's code range, to recognise the host's own handlers.
static EXE_START: AtomicUsize = AtomicUsize::new(0);
static EXE_END: AtomicUsize = AtomicUsize::new(0);

/// The pure part of the rule: (fixed set, latch candidates).
pub fn plan(
    mode: SuspendMode,
    host_is_bun: bool,
    jsc_signal_for_gc: Option<&str>,
) -> (SigSet, SigSet) {
    match mode {
        SuspendMode::None => (SigSet::EMPTY, SigSet::EMPTY),
        SuspendMode::List(s) => (s, SigSet::EMPTY),
        SuspendMode::Auto if !host_is_bun => (SigSet::EMPTY, SigSet::EMPTY),
        SuspendMode::Auto => {
            // WTF parses the variable as a decimal number.
            let forced = jsc_signal_for_gc
                .filter(|v| v.trim().bytes().all(|b| b.is_ascii_digit()))
                .and_then(parse_signal);
            let mut set = SigSet::EMPTY;
            match forced {
                Some(sig) => {
                    set.insert(sig);
                    (set, SigSet::EMPTY)
                }
                None => {
                    set.insert(libc::SIGPWR);
                    set.insert(libc::SIGUSR1);
                    (SigSet::EMPTY, set)
                }
            }
        }
    }
}

/// Called once from the constructor.
pub fn init(cfg: &Config, host: Host, env: Environ) {
    let env = crate::env::var(env, "JSC_SIGNAL_FOR_GC");
    let (fixed, candidates) = plan(cfg.suspend, host.is_bun, env.as_deref());
    EXE_START.store(host.exe_text.0, Ordering::Relaxed);
    EXE_END.store(host.exe_text.1, Ordering::Relaxed);
    FIXED.store(fixed.0, Ordering::Release);
    CANDIDATES.store(candidates.0, Ordering::Release);
    if cfg.suspend == SuspendMode::Auto {
        PROBE.store(fixed.0 | candidates.0, Ordering::Release);
    }
}

/// Probes `handler`, installed on `sig` by the executable, once.
fn probe(sig: i32, handler: usize, exe_end: usize) {
    let mut bit = SigSet::EMPTY;
    bit.insert(sig);
    if PROBE.load(Ordering::Acquire) & bit.0 == 0
        || PROBED.fetch_or(bit.0, Ordering::AcqRel) & bit.0 != 0
    {
        return;
    }
    let len = exe_end.saturating_sub(handler).min(handler_probe::WINDOW);
    // SAFETY: [handler, handler + len) lies inside the executable's
    // executable PT_LOAD segments (checked by the caller against their
    // range), which stay mapped and readable for the life of the process.
    let code = unsafe { std::slice::from_raw_parts(handler as *const u8, len) };
    if handler_probe::reads_interrupted_sp(code) {
        TOLERANT.fetch_or(bit.0, Ordering::AcqRel);
        let name = crate::sigset::signal_name(sig).unwrap_or("signal");
        crate::log!(
            Debug,
            "{name} ({sig}): the host's suspend handler reads the interrupted SP from its ucontext; SA_ONSTACK is harmless, not protecting it"
        );
    }
}

/// A handler `handler` is being installed on `sig`: latch it as the suspend
/// signal if the rule says so. Async-signal-safe.
pub fn observe_install(sig: i32, handler: usize) {
    let (lo, hi) = (
        EXE_START.load(Ordering::Relaxed),
        EXE_END.load(Ordering::Relaxed),
    );
    let from_exe = handler >= lo && handler < hi;
    if from_exe && SigSet(FIXED.load(Ordering::Acquire)).contains(sig) {
        probe(sig, handler, hi);
    }
    let cands = SigSet(CANDIDATES.load(Ordering::Acquire));
    if !cands.contains(sig) || LATCHED.load(Ordering::Acquire) != 0 {
        return;
    }
    if from_exe {
        probe(sig, handler, hi);
        let mut bit = SigSet::EMPTY;
        bit.insert(sig);
        if LATCHED
            .compare_exchange(0, bit.0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let name = crate::sigset::signal_name(sig).unwrap_or("signal");
            crate::log!(Debug, "{name} ({sig}) is JavaScriptCore's suspend signal");
        }
    }
}

/// Whether `sig` is a suspend signal whose handler the policy protects.
/// Async-signal-safe.
pub fn is_protected(sig: i32) -> bool {
    protected().contains(sig)
}

/// The suspend signals known now (detected or configured).
pub fn current() -> SigSet {
    SigSet(FIXED.load(Ordering::Acquire) | LATCHED.load(Ordering::Acquire))
}

/// The suspend signals whose handlers need protecting from `SA_ONSTACK`.
pub fn protected() -> SigSet {
    SigSet(current().0 & !TOLERANT.load(Ordering::Acquire))
}

/// The report's `signals.suspend_fix`: `"off"` when no suspend signal is
/// looked for (`CGOFIX_SUSPEND_SIGNALS=none`, or the shim is disabled),
/// `"applied"` when some suspend signal is protected, else `"not-needed"`
/// (a host without a suspend signal, or one whose handler tolerates it).
pub fn fix_status(cfg: &Config) -> &'static str {
    if cfg.disable || cfg.suspend == SuspendMode::None {
        "off"
    } else if protected().0 != 0 {
        "applied"
    } else {
        "not-needed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(sigs: &[i32]) -> SigSet {
        let mut s = SigSet::EMPTY;
        sigs.iter().for_each(|&x| s.insert(x));
        s
    }

    #[test]
    fn auto_under_node_finds_nothing() {
        assert_eq!(
            plan(SuspendMode::Auto, false, None),
            (SigSet::EMPTY, SigSet::EMPTY)
        );
        assert_eq!(
            plan(SuspendMode::Auto, false, Some("30")),
            (SigSet::EMPTY, SigSet::EMPTY)
        );
    }

    #[test]
    fn auto_under_bun_latches_pwr_or_usr1() {
        assert_eq!(
            plan(SuspendMode::Auto, true, None),
            (SigSet::EMPTY, set(&[libc::SIGPWR, libc::SIGUSR1]))
        );
    }

    #[test]
    fn jsc_signal_for_gc_wins() {
        assert_eq!(
            plan(SuspendMode::Auto, true, Some("12")),
            (set(&[12]), SigSet::EMPTY)
        );
        // Not a number: WTF ignores it, and so do we.
        assert_eq!(
            plan(SuspendMode::Auto, true, Some("SIGUSR2")).1,
            set(&[libc::SIGPWR, libc::SIGUSR1])
        );
        assert_eq!(
            plan(SuspendMode::Auto, true, Some("99")).1,
            set(&[libc::SIGPWR, libc::SIGUSR1])
        );
    }

    #[test]
    fn explicit_modes() {
        assert_eq!(
            plan(SuspendMode::None, true, None),
            (SigSet::EMPTY, SigSet::EMPTY)
        );
        let s = set(&[libc::SIGUSR2]);
        assert_eq!(plan(SuspendMode::List(s), false, None), (s, SigSet::EMPTY));
    }
}

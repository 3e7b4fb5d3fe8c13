//! The signal policy (Go's rule and JavaScriptCore's rule) and the hooks on
//! every libc entry point that installs a handler.
//!
//! * Go's rule (os/signal, "Go programs that use cgo or SWIG"): every
//!   non-Go handler must have `SA_ONSTACK`, or a signal landing on a Go
//!   thread runs on a small goroutine stack.
//! * JSC's rule: the thread-suspend handler must run on the thread's own
//!   stack; it compares its stack pointer with the interrupted thread's stack
//!   and the suspender retries forever if it runs on a sigaltstack
//!   (oven-sh/bun#31158). Go's `setsigstack` re-installs it with
//!   `SA_ONSTACK` added; we drop the flag and keep everything else.
//!
//! * SIGPIPE: a Go runtime in library mode installs its own SIGPIPE
//!   handler even when the host ignores SIGPIPE (runtime/signal_unix.go,
//!   `sigInstallGoHandler`: c-archive/c-shared install handlers for the
//!   synchronous signals, SIGPIPE and the preemption signal; only SIGHUP and
//!   SIGINT respect an inherited `SIG_IGN`), so every host that ignores it
//!   (Bun, Node, Deno, CPython) stops ignoring it (docs/background.md §7;
//!   the hang reported with it, oven-sh/bun#29843, turned out to be the
//!   suspend-signal livelock). With `CGOFIX_KEEP_SIGPIPE=on` (default) that
//!   install is skipped while the disposition is `SIG_IGN`. Go loses
//!   nothing it documents (os/signal, "SIGPIPE"): on fds other than 1 and 2
//!   the write fails with EPIPE either way, and on fds 1 and 2 `os` calls
//!   `runtime.sigpipe` itself after the EPIPE, which installs `SIG_DFL` and
//!   raises (`dieFromSignal`), passing through here unchanged. What is lost:
//!   `signal.Notify(SIGPIPE)` inside the Go library (its handler counts as
//!   installed already), a rare use; `CGOFIX_KEEP_SIGPIPE=off` restores it.
//!
//! SIGNAL-REACHABLE: every hook in this file and what it calls (all but
//! `resolve`, which runs once in the constructor) runs inside signal
//! handlers (Go calls `sigaction` from `raisebadsignal` and friends) and
//! before any runtime exists. It only does atomic loads/stores, copies
//! on the stack and raw syscalls: no allocation, no locks. The one output
//! it can produce is a `CGOFIX_LOG=debug` line, which `log::emit` formats
//! into a stack buffer and writes with one `write(2)` (async-signal-safe,
//! errno preserved); at the default level it is one atomic load.

use crate::config::Config;
use crate::rawsig::{self as raw, SA_RESTORER};
use crate::registry::is_go_code;
use crate::{loading, state, stats, suspend, trampoline};
use interpose::{Provider, RealFn, hook, own};
use libc::{c_int, sigaction as SigAction, sighandler_t};
use std::ptr;

/// What is being installed, as far as the policy cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handler {
    /// `SIG_DFL`, `SIG_IGN` (or `SIG_HOLD` via `sigset`): no code runs.
    NotAFunction,
    /// A handler function that belongs to a Go runtime.
    Go,
    /// Any other function: the host's, a library's, a JS runtime's.
    Foreign,
}

/// What the policy did to the flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Unchanged,
    /// `SA_ONSTACK` added to a foreign handler (Go's rule).
    AddedOnstack,
    /// `SA_ONSTACK` refused on a suspend-signal handler (JSC's rule).
    RefusedOnstack,
}

/// The policy as a pure function: the flags to install for `handler` with
/// requested `flags`, given whether the signal is a host suspend signal and
/// whether `CGOFIX_ONSTACK` is on.
pub fn decide(handler: Handler, flags: c_int, is_suspend: bool, onstack: bool) -> (c_int, Change) {
    match handler {
        Handler::NotAFunction | Handler::Go => (flags, Change::Unchanged),
        Handler::Foreign if is_suspend => {
            if flags & libc::SA_ONSTACK != 0 {
                (flags & !libc::SA_ONSTACK, Change::RefusedOnstack)
            } else {
                (flags, Change::Unchanged)
            }
        }
        Handler::Foreign if onstack && flags & libc::SA_ONSTACK == 0 => {
            (flags | libc::SA_ONSTACK, Change::AddedOnstack)
        }
        Handler::Foreign => (flags, Change::Unchanged),
    }
}

/// SIG_DFL = 0, SIG_IGN = 1, SIG_ERR = -1, glibc's SIG_HOLD = 2: no code runs.
fn is_disposition(h: sighandler_t) -> bool {
    h <= 2 || h == libc::SIG_ERR
}

fn classify(h: sighandler_t) -> Handler {
    if is_disposition(h) {
        Handler::NotAFunction
    } else if is_go_code(h) {
        Handler::Go
    } else {
        Handler::Foreign
    }
}

type SigactionFn = unsafe extern "C" fn(c_int, *const SigAction, *mut SigAction) -> c_int;
type SignalFn = unsafe extern "C" fn(c_int, sighandler_t) -> sighandler_t;

static REAL_SIGACTION: RealFn<SigactionFn> = RealFn::new(c"sigaction");
static REAL_SIGNAL: RealFn<SignalFn> = RealFn::new(c"signal");
static REAL_BSD_SIGNAL: RealFn<SignalFn> = RealFn::new(c"bsd_signal");
static REAL_SYSV_SIGNAL: RealFn<SignalFn> = RealFn::new(c"sysv_signal");
static REAL_SIGSET: RealFn<SignalFn> = RealFn::new(c"sigset");

/// Resolves every real entry point. Called from the constructor.
///
/// Only `sigaction` goes through `dlsym(RTLD_NEXT)`; the `signal` family
/// is looked up in the symbol table of the object that provides it
/// (`RealFn::resolve_from`), each through `dlsym` only when that object
/// lacks it. This runs in every process start: finding the object and
/// four hash lookups cost ~2.5k instructions where four `dlsym` calls
/// cost ~3.4k (callgrind, a `/bin/true` start; README "Performance").
/// Our own wrappers are rejected on both paths, as compiler-rt's
/// interceptors do (a lookup that finds them would make a hook call
/// itself).
///
/// What differs from `dlsym(RTLD_NEXT)` for each name: an object between
/// the shim and `sigaction`'s provider in the lookup order that defines
/// `signal`, `bsd_signal`, `sysv_signal` or `sigset` but not `sigaction`
/// (say, a later preload wrapping `signal` alone) is no longer the one
/// our hooks call; they call the provider's (libc's) directly. A later
/// preload that wraps `sigaction` is itself the provider, and one that
/// wraps neither changes nothing. Nothing is lost to the policy: the
/// `signal` family's installs are re-checked through `sigaction` after
/// the call either way (`fix_installed`).
pub fn resolve() {
    if !REAL_SIGACTION.resolve(own!(sigaction), &[c"__sigaction"]) {
        crate::log!(
            Warn,
            "libc sigaction not found; using the rt_sigaction system call"
        );
    }
    let libc = match REAL_SIGACTION.addr() {
        0 => None,
        a => Provider::of(a),
    };
    let libc = libc.as_ref();
    REAL_SIGNAL.resolve_from(libc, own!(signal), &[c"bsd_signal"]);
    REAL_BSD_SIGNAL.resolve_from(libc, own!(bsd_signal), &[c"signal"]);
    REAL_SYSV_SIGNAL.resolve_from(libc, own!(sysv_signal), &[c"__sysv_signal"]);
    REAL_SIGSET.resolve_from(libc, own!(sigset), &[]);
}

/// libc's sigaction, or the raw system call when it could not be resolved
/// (another preload hid it, or we are called before our constructor).
///
/// # Safety
/// `act`/`old` are null or valid, as for sigaction(2).
pub unsafe fn real_sigaction(sig: c_int, act: *const SigAction, old: *mut SigAction) -> c_int {
    match REAL_SIGACTION.get() {
        // SAFETY: forwarding the caller's arguments to libc's sigaction.
        Some(f) => unsafe { f(sig, act, old) },
        // SAFETY: same contract as sigaction.
        None => unsafe { raw::sigaction(sig, act, old) },
    }
}

fn config() -> Option<&'static Config> {
    state::active()
}

/// What to install instead of the caller's request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plan {
    /// The request unchanged.
    AsIs,
    /// The request with these flags.
    Flags(c_int),
    /// The suspend trampoline standing in for the request's handler, which
    /// gets these flags (see `trampoline.rs`).
    Trampoline(c_int),
    /// Nothing installed: what is there stays (the SIGPIPE rule).
    Keep,
}

/// Whether `h` is a Go runtime's code. A c-shared/c-archive runtime runs
/// `initsig` inside its library constructor, before it creates any thread
/// (where `threads.rs` would have classified it), so inside a `dlopen` an
/// unknown address has the loaded objects classified once more. Never from
/// outside a `dlopen`: `dl_iterate_phdr` is not async-signal-safe.
fn installed_by_go(h: sighandler_t) -> bool {
    if is_go_code(h) {
        return true;
    }
    if !loading::inside_dlopen() {
        return false;
    }
    crate::registry::classify_loaded();
    is_go_code(h)
}

/// Whether `sig` is ignored now (kernel view).
pub fn ignored_now(sig: c_int) -> bool {
    // SAFETY: all-zero is a valid sigaction.
    let mut cur: SigAction = unsafe { std::mem::zeroed() };
    // SAFETY: a query into a valid struct on our stack.
    (unsafe { real_sigaction(sig, ptr::null(), &mut cur) }) == 0
        && cur.sa_sigaction == libc::SIG_IGN
}

/// What the policy wants for `act` on `sig`, counting the change.
fn adjusted(sig: c_int, act: &SigAction, cfg: &Config) -> Plan {
    let h = act.sa_sigaction;
    if is_disposition(h) {
        return Plan::AsIs;
    }
    if sig == libc::SIGPIPE && cfg.keep_sigpipe && ignored_now(sig) && installed_by_go(h) {
        stats::SIGPIPE_KEPT.inc();
        crate::log!(
            Debug,
            "SIGPIPE (13): kept the host's SIG_IGN instead of Go's handler"
        );
        return Plan::Keep;
    }
    suspend::observe_install(sig, h);
    let is_suspend = suspend::is_protected(sig);
    // Whether the handler is Go's only matters on a suspend signal: Go's
    // handlers always carry SA_ONSTACK, so elsewhere both rules agree. This
    // keeps the range lookup off the common path.
    let handler = if is_suspend && is_go_code(h) {
        Handler::Go
    } else {
        Handler::Foreign
    };
    let (flags, change) = decide(handler, act.sa_flags, is_suspend, cfg.onstack);
    let name = || crate::sigset::signal_name(sig).unwrap_or("signal");
    match change {
        Change::Unchanged => {}
        Change::AddedOnstack => {
            stats::ONSTACK_ADDED.inc();
            crate::log!(
                Debug,
                "{} ({sig}): added SA_ONSTACK (foreign handler)",
                name()
            );
        }
        Change::RefusedOnstack => {
            stats::ONSTACK_REFUSED.inc();
            crate::log!(
                Debug,
                "{} ({sig}): kept SA_ONSTACK off (suspend signal)",
                name()
            );
        }
    }
    if is_suspend && handler == Handler::Foreign && trampoline::enabled() {
        Plan::Trampoline(flags)
    } else if change == Change::Unchanged {
        Plan::AsIs
    } else {
        Plan::Flags(flags)
    }
}

/// The sigaction hook proper.
///
/// # Safety
/// As sigaction(2).
// Start-up code kept together (build.rs, 4).
#[unsafe(link_section = ".text.cgofix_startup")]
unsafe fn policy_sigaction(sig: c_int, act: *const SigAction, old: *mut SigAction) -> c_int {
    let Some(cfg) = config() else {
        // SAFETY: pass-through.
        return unsafe { real_sigaction(sig, act, old) };
    };
    // What the trampoline stood in for until now, for `old`.
    let before = trampoline::record(sig);
    // SAFETY: `act` is null or points to a valid sigaction (caller contract).
    let r = match unsafe { act.as_ref() } {
        // SAFETY: a query, pass-through.
        None => unsafe { real_sigaction(sig, act, old) },
        // Two arms and a default, not one arm per plan: a four-way match
        // compiles to a jump table in .rodata, whose page every forked
        // child of a preloaded shell faulted in when it reset its handlers
        // before `exec` (`perf record -e page-faults`, README
        // "Performance", fourth round).
        Some(req) => match adjusted(sig, req, cfg) {
            Plan::Flags(flags) => {
                // A stack copy: the caller's struct is const and may be shared.
                // Field by field, so the 128-byte mask is copied inline rather
                // than through a memcpy call (profiled: ~20 instructions).
                let mut mine = std::mem::MaybeUninit::<SigAction>::uninit();
                // SAFETY: every field is written before use (padding stays
                // uninitialised, and libc never reads it).
                let mine = unsafe {
                    let m = mine.as_mut_ptr();
                    (*m).sa_sigaction = req.sa_sigaction;
                    (*m).sa_mask = req.sa_mask;
                    (*m).sa_flags = flags;
                    (*m).sa_restorer = req.sa_restorer;
                    mine.assume_init()
                };
                // SAFETY: `mine` is a valid sigaction on our stack.
                unsafe { real_sigaction(sig, &mine, old) }
            }
            Plan::Trampoline(flags) => {
                // Recorded before the install: the stand-in may run as soon
                // as it is in place, and must find the new handler.
                let sa = trampoline::stand_in(sig, req, flags);
                // SAFETY: a valid sigaction on our stack.
                let r = unsafe { real_sigaction(sig, &sa, old) };
                if r != 0 {
                    trampoline::set_record(sig, before);
                }
                r
            }
            plan => {
                // AsIs: pass-through; Keep: a query, so that `old` gets what
                // stays installed.
                let act = if plan == Plan::Keep { ptr::null() } else { act };
                // SAFETY: the caller's arguments, or a query.
                unsafe { real_sigaction(sig, act, old) }
            }
        },
    };
    if r == 0 {
        // SAFETY: `old` is null or valid (caller contract).
        unsafe { trampoline::report(old, before) };
    }
    r
}

/// Re-applies the policy to what is installed on `sig` now.
/// Returns whether what is installed afterwards satisfies the policy's
/// suspend rule (no `SA_ONSTACK` on a foreign suspend handler).
pub fn enforce(sig: c_int) -> bool {
    fix_installed(sig);
    // SAFETY: all-zero is a valid sigaction.
    let mut cur: SigAction = unsafe { std::mem::zeroed() };
    // SAFETY: query into a valid struct on our stack.
    let ok = unsafe { real_sigaction(sig, ptr::null(), &mut cur) } == 0;
    // The trampoline carries SA_ONSTACK by design and runs JSC's handler
    // on the thread's own stack.
    ok && (trampoline::is_trampoline(cur.sa_sigaction)
        || !(classify(cur.sa_sigaction) == Handler::Foreign
            && suspend::is_protected(sig)
            && cur.sa_flags & libc::SA_ONSTACK != 0))
}

/// Re-applies JSC's rule to every suspend signal as installed now: a Go
/// runtime that uses raw system calls instead of libc `sigaction` (every
/// arch but amd64 and arm64 with cgo) is invisible to the sigaction hook.
/// Returns whether every suspend signal is clean afterwards.
pub fn recheck_suspend() -> bool {
    // Every signal is enforced, even after one fails.
    let mut ok = true;
    for sig in suspend::protected().iter() {
        ok &= enforce(sig);
    }
    ok
}

/// Applies the policy to what is installed on `sig` now, as if it had just
/// been installed through the hook (the in-process mode's repair).
pub fn reapply(sig: c_int) {
    fix_installed(sig);
}

/// After a `signal`-style call (which libc implements with its internal,
/// un-interposable `__sigaction`), re-apply the policy to what is installed.
fn fix_installed(sig: c_int) {
    let Some(cfg) = config() else { return };
    // SAFETY: all-zero is a valid sigaction.
    let mut cur: SigAction = unsafe { std::mem::zeroed() };
    // SAFETY: query into a valid struct on our stack.
    if unsafe { real_sigaction(sig, ptr::null(), &mut cur) } != 0 {
        return;
    }
    if trampoline::is_trampoline(cur.sa_sigaction) {
        return; // already standing in
    }
    let mut sa = match adjusted(sig, &cur, cfg) {
        Plan::AsIs | Plan::Keep => return,
        Plan::Flags(flags) => {
            cur.sa_flags = flags;
            cur
        }
        Plan::Trampoline(flags) => trampoline::stand_in(sig, &cur, flags),
    };
    // The restorer libc reported is its own; passing SA_RESTORER back is
    // what glibc itself accepts, but let libc pick it again.
    sa.sa_flags &= !SA_RESTORER;
    // SAFETY: re-installing the same handler (or its stand-in).
    unsafe { real_sigaction(sig, &sa, ptr::null_mut()) };
}

/// The shared body of the `signal` family: the real call, then the fix-up.
fn signal_family(real: &RealFn<SignalFn>, sig: c_int, h: sighandler_t) -> sighandler_t {
    let Some(f) = real.get() else {
        return signal_fallback(sig, h);
    };
    let before = trampoline::record(sig);
    // SAFETY: forwarding the caller's arguments to libc.
    let prev = unsafe { f(sig, h) };
    if prev != libc::SIG_ERR {
        fix_installed(sig);
    }
    // The previous handler as the caller installed it, not its stand-in.
    if trampoline::is_trampoline(prev) && before.0 != 0 {
        before.0
    } else {
        prev
    }
}

/// BSD `signal` semantics (glibc's default: restart, block self) through
/// the policy, when libc's `signal` cannot be found.
fn signal_fallback(sig: c_int, h: sighandler_t) -> sighandler_t {
    // SAFETY: all-zero is a valid sigaction.
    let mut act: SigAction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = h;
    act.sa_flags = libc::SA_RESTART;
    mask_add(&mut act.sa_mask, sig);
    // SAFETY: all-zero is a valid sigaction.
    let mut old: SigAction = unsafe { std::mem::zeroed() };
    // SAFETY: valid structs on our stack; goes through the policy.
    if unsafe { policy_sigaction(sig, &act, &mut old) } != 0 {
        return libc::SIG_ERR;
    }
    old.sa_sigaction
}

/// glibc's `sigaddset` without importing it (an import is a symbol lookup
/// in every process start, README "Performance"): bit sig-1 of the
/// kernel's mask word. An invalid or internal signal is left out, as
/// `sigaddset` refuses it (and installing a handler for it fails anyway).
fn mask_add(set: &mut libc::sigset_t, sig: c_int) {
    if (1..=64).contains(&sig) && sig != 32 && sig != 33 {
        // SAFETY: sigset_t begins with the kernel's 64-bit mask word.
        unsafe { *(set as *mut libc::sigset_t as *mut u64) |= 1 << (sig - 1) };
    }
}

hook! {
    /// sigaction(2) with the signal policy applied to the flags.
    // The hook too: every shell's forked child calls it (build.rs, 4).
    #[unsafe(link_section = ".text.cgofix_startup")]
    fn sigaction(sig: c_int, act: *const SigAction, old: *mut SigAction) -> c_int {
        // SAFETY: caller's contract is sigaction's.
        body => { unsafe { policy_sigaction(sig, act, old) } },
        // SAFETY: as above.
        fallback => { unsafe { real_sigaction(sig, act, old) } },
    }
}

hook! {
    /// glibc's exported alias of sigaction.
    fn __sigaction(sig: c_int, act: *const SigAction, old: *mut SigAction) -> c_int {
        // SAFETY: caller's contract is sigaction's.
        body => { unsafe { policy_sigaction(sig, act, old) } },
        // SAFETY: as above.
        fallback => { unsafe { real_sigaction(sig, act, old) } },
    }
}

/// The `signal` family: each hook is the real call, then the fix-up.
macro_rules! signal_hooks {
    ($($name:ident => $real:ident),* $(,)?) => {$(
        hook! {
            fn $name(sig: c_int, h: sighandler_t) -> sighandler_t {
                body => { signal_family(&$real, sig, h) },
                fallback => { signal_fallback(sig, h) },
            }
        }
    )*};
}

signal_hooks! {
    signal => REAL_SIGNAL,
    // glibc: an alias of `signal` (same address), reached by old SysV code.
    ssignal => REAL_SIGNAL,
    bsd_signal => REAL_BSD_SIGNAL,
    sysv_signal => REAL_SYSV_SIGNAL,
    __sysv_signal => REAL_SYSV_SIGNAL,
    sigset => REAL_SIGSET,
}

#[cfg(test)]
mod tests {
    use super::*;
    const ON: c_int = libc::SA_ONSTACK;
    const BASE: c_int = libc::SA_SIGINFO | libc::SA_RESTART;

    #[test]
    fn foreign_handler_gets_onstack() {
        assert_eq!(
            decide(Handler::Foreign, BASE, false, true),
            (BASE | ON, Change::AddedOnstack)
        );
        assert_eq!(
            decide(Handler::Foreign, BASE | ON, false, true),
            (BASE | ON, Change::Unchanged)
        );
    }

    #[test]
    fn onstack_off_leaves_foreign_alone() {
        assert_eq!(
            decide(Handler::Foreign, BASE, false, false),
            (BASE, Change::Unchanged)
        );
    }

    #[test]
    fn suspend_signal_never_gets_onstack() {
        // Go's setsigstack re-install: same handler, flags | SA_ONSTACK.
        for onstack in [true, false] {
            assert_eq!(
                decide(Handler::Foreign, BASE | ON, true, onstack),
                (BASE, Change::RefusedOnstack)
            );
            assert_eq!(
                decide(Handler::Foreign, BASE, true, onstack),
                (BASE, Change::Unchanged)
            );
        }
    }

    #[test]
    fn go_handlers_and_dispositions_pass_through() {
        for suspend in [true, false] {
            for flags in [BASE, BASE | ON, 0] {
                assert_eq!(
                    decide(Handler::Go, flags, suspend, true),
                    (flags, Change::Unchanged)
                );
                assert_eq!(
                    decide(Handler::NotAFunction, flags, suspend, true),
                    (flags, Change::Unchanged)
                );
            }
        }
    }

    static RAW_HITS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    extern "C" fn raw_handler(_: c_int) {
        RAW_HITS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    #[test]
    fn raw_syscall_fallback_behaves_like_libc() {
        // The path taken when libc's sigaction cannot be found: install,
        // deliver, read back, restore; glibc's reserved signals refused.
        // SAFETY: all-zero is a valid sigaction.
        let mut act: SigAction = unsafe { std::mem::zeroed() };
        act.sa_sigaction = raw_handler as extern "C" fn(c_int) as sighandler_t;
        act.sa_flags = libc::SA_RESTART | libc::SA_ONSTACK;
        // SAFETY: all-zero is a valid sigaction.
        let mut old: SigAction = unsafe { std::mem::zeroed() };
        // SAFETY: valid structs on our stack.
        assert_eq!(unsafe { raw::sigaction(libc::SIGURG, &act, &mut old) }, 0);
        // SAFETY: raising a signal whose handler we just installed.
        unsafe { libc::raise(libc::SIGURG) };
        assert_eq!(RAW_HITS.load(std::sync::atomic::Ordering::SeqCst), 1);
        // SAFETY: all-zero is a valid sigaction.
        let mut cur: SigAction = unsafe { std::mem::zeroed() };
        assert_eq!(
            // SAFETY: a query into a valid struct on our stack.
            unsafe { raw::sigaction(libc::SIGURG, ptr::null(), &mut cur) },
            0
        );
        assert_eq!(cur.sa_sigaction, act.sa_sigaction);
        assert_ne!(cur.sa_flags & libc::SA_ONSTACK, 0);
        // libc sees the same thing.
        // SAFETY: all-zero is a valid sigaction.
        let mut via_libc: SigAction = unsafe { std::mem::zeroed() };
        assert_eq!(
            // SAFETY: a query through libc into a valid struct.
            unsafe { real_sigaction(libc::SIGURG, ptr::null(), &mut via_libc) },
            0
        );
        assert_eq!(via_libc.sa_sigaction, act.sa_sigaction);
        assert_eq!(
            // SAFETY: restoring the previous disposition.
            unsafe { raw::sigaction(libc::SIGURG, &old, ptr::null_mut()) },
            0
        );
        // SAFETY: glibc's reserved signal and an invalid one.
        assert_eq!(unsafe { raw::sigaction(32, &act, ptr::null_mut()) }, -1);
        assert_eq!(unsafe { raw::sigaction(0, &act, ptr::null_mut()) }, -1);
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EINVAL)
        );
    }

    #[test]
    fn mask_add_is_sigaddset() {
        for sig in -1..=70 {
            // SAFETY: all-zero is an empty sigset.
            let (mut got, mut want): (libc::sigset_t, libc::sigset_t) =
                unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
            mask_add(&mut got, sig);
            // SAFETY: a valid sigset; invalid signals only return EINVAL.
            unsafe { libc::sigaddset(&mut want, sig) };
            for s in 1..=64 {
                // SAFETY: valid sigsets, valid signal numbers.
                let (g, w) = unsafe { (libc::sigismember(&got, s), libc::sigismember(&want, s)) };
                assert_eq!(g, w, "sigaddset({sig}): member {s}");
            }
        }
    }

    #[test]
    fn classify_dispositions() {
        assert_eq!(classify(libc::SIG_DFL), Handler::NotAFunction);
        assert_eq!(classify(libc::SIG_IGN), Handler::NotAFunction);
        assert_eq!(classify(2), Handler::NotAFunction);
        assert_eq!(classify(libc::SIG_ERR), Handler::NotAFunction);
        assert_eq!(
            classify(classify as fn(sighandler_t) -> Handler as usize),
            Handler::Foreign
        );
    }
}

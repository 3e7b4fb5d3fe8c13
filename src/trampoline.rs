//! The suspend trampoline (x86_64 and aarch64 Linux): JSC's suspend
//! handler always runs on the interrupted thread's own stack, yet the signal
//! is installed with `SA_ONSTACK` as Go requires.
//!
//! Why: keeping `SA_ONSTACK` off the suspend signal (JSC's rule, see
//! `signals.rs`) means that when the JS thread is running Go code (a cgo
//! callback runs on a goroutine stack of a few KiB), the kernel pushes the
//! signal frame (1-3 KiB with x86_64's xsave state; over 4.5 KiB on aarch64,
//! whose `struct sigcontext` reserves 4 KiB for FP/SIMD and SVE state) and
//! JSC's handler frame onto that goroutine stack and overruns it: Go then
//! dies with "traceback did not unwind completely" / "unknown caller pc".
//! Go's rule (os/signal, "Go programs that use cgo or SWIG") exists exactly
//! for that.
//!
//! So for each suspend signal the shim installs `suspend_trampoline` with
//! `SA_ONSTACK|SA_SIGINFO` and JSC's other flags, and keeps JSC's handler,
//! flags and mask here. The trampoline runs on the sigaltstack and decides
//! (`decide`, a pure function):
//!
//! * no sigaltstack, or not on it: the kernel delivered on the interrupted
//!   stack already; call JSC's handler here.
//! * the interrupted SP is on the sigaltstack (a nested signal inside another
//!   handler), or the interrupted PC is in Go code: call JSC's handler here,
//!   on the sigaltstack. Its check `m_stack.contains(currentStackPointer())`
//!   fails, it sets `m_platformRegisters = nullptr`, posts the semaphore and
//!   returns; `Thread::suspend` yields and sends the signal again
//!   (WebKit Source/WTF/wtf/posix/ThreadingPOSIX.cpp,
//!   `signalHandlerSuspendResume` and `Thread::suspend`). The thread leaves
//!   Go sooner or later, so this is a bounded retry, not the livelock of
//!   oven-sh/bun#31158.
//! * otherwise the thread was on its own stack: switch to the interrupted SP
//!   (128 bytes below it, 16-byte aligned: `switch_sp`), disable the sigaltstack,
//!   call JSC's handler, re-enable the sigaltstack, switch back. Disabling
//!   matters: JSC's handler waits in `sigsuspend` for the *resume* signal,
//!   whose nested delivery with `SA_ONSTACK` would otherwise start at the top
//!   of the sigaltstack, over our frame and over the ucontext that JSC
//!   published as the thread's registers. `sigaltstack(SS_DISABLE)` is
//!   refused only while the SP is on the alternate stack, which it no longer
//!   is.
//!
//! The rule for "on its own stack": the interrupted PC is not in a Go
//! object's text (`registry::is_go_code`). Knowing a thread's stack bounds
//! async-signal-safely is hard; this test is cheap and covers Go's case:
//! Go code runs on goroutine stacks or on g0, and C called from Go on a
//! C-created thread (cgo callbacks) runs on g0, which is the thread's own
//! stack (runtime/cgocall.go: `asmcgocall` switches to g0; Go >= 1.21 takes
//! g0's bounds from `pthread_getattr_np`). The test is conservative: C glue
//! compiled into the Go object, and Go's own g0 code, count as Go and only
//! cost a retry. `SS_AUTODISARM` stacks (not used by Go or Bun) look
//! disabled and get the old behaviour.
//!
//! `sigaction` queries report the recorded handler, flags and mask instead of
//! the trampoline: the trampoline stands in for JSC's handler, and
//! "oldact reports what is really installed" means what the caller
//! installed. Go's `setsigstack` (runtime/os_linux.go) reads the handler and
//! re-installs it with `SA_ONSTACK`: that only updates the record. Installing
//! `SIG_DFL`/`SIG_IGN` or a Go handler replaces the trampoline.
//!
//! Architecture: the policy above is the same on both; what differs is where
//! the kernel's `ucontext_t` keeps the interrupted PC and SP and how to call
//! a function on another stack, one submodule per target
//! (`trampoline/x86_64.rs`, `trampoline/aarch64.rs`; docs/background.md §8
//! for the aarch64 test setup). Elsewhere `arch::AVAILABLE` is false and the
//! protected handler is installed without `SA_ONSTACK` instead. Sources
//! for both: WebKit's handler,
//! https://github.com/WebKit/WebKit/blob/main/Source/WTF/wtf/posix/ThreadingPOSIX.cpp;
//! Go's signal stack rules, https://pkg.go.dev/os/signal and
//! https://github.com/golang/go/blob/master/src/runtime/signal_unix.go;
//! Go's `setsigstack`,
//! https://github.com/golang/go/blob/master/src/runtime/os_linux.go. The mask
//! words are the same on both: glibc's `sigset_t` is `unsigned long
//! __val[16]` on both LP64 targets, signal N at bit N-1 of the first word,
//! which is the kernel's 64-bit mask (glibc
//! https://sourceware.org/git/?p=glibc.git;a=blob;f=sysdeps/unix/sysv/linux/sigsetops.h).
//!
//! SIGNAL-REACHABLE: everything here. Atomics and raw system calls only: no
//! allocation, no locks, no logging.

use crate::lazy_table::LazyTable;
use libc::{c_int, c_void, sigaction as SigAction, siginfo_t};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};

#[cfg(target_arch = "x86_64")]
#[path = "trampoline/x86_64.rs"]
mod arch;
#[cfg(target_arch = "aarch64")]
#[path = "trampoline/aarch64.rs"]
mod arch;
/// Any other target: no trampoline.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod arch {
    use super::OnStack;
    use libc::{c_int, c_void, siginfo_t};
    pub const AVAILABLE: bool = false;
    pub unsafe fn interrupted(_uc: *const c_void) -> (usize, usize) {
        (0, 0)
    }
    pub unsafe fn call_on_stack(
        _sp: usize,
        _f: OnStack,
        _sig: c_int,
        _info: *mut siginfo_t,
        _uc: *mut c_void,
        _st: *const libc::stack_t,
    ) -> c_int {
        -1
    }
}

/// What `arch::call_on_stack` runs on the other stack.
type OnStack =
    unsafe extern "C" fn(c_int, *mut siginfo_t, *mut c_void, *const libc::stack_t) -> c_int;

/// Where JSC's handler must run for this delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Where {
    /// On the current stack (interrupted stack or sigaltstack).
    Here,
    /// Switch back to the interrupted stack first.
    InterruptedStack,
}

/// The enabled sigaltstack, as `sigaltstack(NULL, &old)` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AltStack {
    pub base: usize,
    pub size: usize,
    /// `SS_ONSTACK`: the current SP is on it.
    pub on_it: bool,
}

/// The decision as a pure function (see the module comment).
pub fn decide(alt: Option<AltStack>, interrupted_sp: usize, pc_in_go: bool) -> Where {
    let Some(alt) = alt else {
        return Where::Here; // no sigaltstack: already on the interrupted stack
    };
    let nested = interrupted_sp >= alt.base && interrupted_sp - alt.base <= alt.size;
    if !alt.on_it || nested || pc_in_go || interrupted_sp < 64 << 10 {
        Where::Here
    } else {
        Where::InterruptedStack
    }
}

/// The stack pointer to call JSC's handler with: 128 bytes below the
/// interrupted SP, 16-byte aligned (the entry alignment of both ABIs). On
/// x86_64 the 128 bytes are the System V red zone, which the interrupted
/// function may use without moving RSP. AAPCS64 has no red zone on Linux
/// (the kernel itself pushes the signal frame right below SP), so there the
/// gap is only a margin, and a cheap one.
pub fn switch_sp(interrupted_sp: usize) -> usize {
    (interrupted_sp - 128) & !15
}

const N: usize = 65;
/// JSC's handler, flags (without `SA_ONSTACK`) and mask word for one signal.
struct Entry {
    handler: AtomicUsize,
    flags: AtomicI32,
    mask: AtomicU64,
}
/// One entry per signal, mapped when the first record is taken: only a
/// host with a suspend signal ever needs it, and as a static its 1.5 KiB
/// made the library's data and `.bss` two pages, each written (a page
/// fault) in every process start (README "Performance", sixth round).
// SAFETY: all-zero is a valid `Entry` (three atomics).
static RECORDS: LazyTable<Entry, N> = unsafe { LazyTable::new() };
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Called once from the constructor: `CGOFIX_SUSPEND_TRAMPOLINE`, on the
/// targets that have one (`arch::AVAILABLE`).
pub fn init(on: bool) {
    ENABLED.store(on && arch::AVAILABLE, Ordering::Release);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Acquire)
}

/// The trampoline's address (0 where there is none).
pub fn address() -> usize {
    if arch::AVAILABLE {
        suspend_trampoline as Handler3 as usize
    } else {
        0
    }
}

/// Whether `h` is the trampoline (never true where there is none).
pub fn is_trampoline(h: usize) -> bool {
    address() != 0 && h == address()
}

/// What is recorded for `sig`: (handler, flags, mask word).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record(pub usize, pub c_int, pub u64);

fn slot(sig: c_int) -> Option<usize> {
    usize::try_from(sig).ok().filter(|&s| (1..N).contains(&s))
}

/// Nothing recorded (or no table): all zero. Async-signal-safe.
pub fn record(sig: c_int) -> Record {
    let Some(table) = RECORDS.get() else {
        return Record(0, 0, 0);
    };
    let e = &table[slot(sig).unwrap_or(0)];
    Record(
        e.handler.load(Ordering::Acquire),
        e.flags.load(Ordering::Acquire),
        e.mask.load(Ordering::Acquire),
    )
}

fn mask_word(m: &libc::sigset_t) -> u64 {
    // SAFETY: glibc's sigset_t on x86_64 and aarch64 is an array of u64
    // words, the first of which is the kernel's mask for signals 1..=64
    // (module comment).
    unsafe { *(m as *const libc::sigset_t as *const u64) }
}

fn set_mask_word(m: &mut libc::sigset_t, w: u64) {
    // SAFETY: as in `mask_word`.
    unsafe { *(m as *mut libc::sigset_t as *mut u64) = w };
}

/// Sets what the stand-in runs for `sig`: a new request (`stand_in`), or a
/// record taken with [`record`] put back when the install that replaced it
/// failed, so the kernel still runs what `rec` describes. Returns false
/// when the table could not be mapped (`mmap` failed), leaving nothing
/// recorded. Async-signal-safe.
pub fn set_record(sig: c_int, rec: Record) -> bool {
    let table = if rec == Record(0, 0, 0) {
        // Putting back "nothing": no reason to map the table for that.
        match RECORDS.get() {
            Some(t) => t,
            None => return true,
        }
    } else {
        match RECORDS.get_or_map() {
            Some(t) => t,
            None => return false,
        }
    };
    let e = &table[slot(sig).unwrap_or(0)];
    // The handler last: the stand-in reads it first.
    e.flags.store(rec.1, Ordering::Release);
    e.mask.store(rec.2, Ordering::Release);
    e.handler.store(rec.0, Ordering::Release);
    true
}

/// Records `req` (JSC's handler with the policy's `flags`) and returns the
/// trampoline's sigaction to install in its place. A request carrying the
/// trampoline itself (read back with a raw system call) keeps the record.
pub fn stand_in(sig: c_int, req: &SigAction, flags: c_int) -> SigAction {
    if !is_trampoline(req.sa_sigaction) {
        let rec = Record(
            req.sa_sigaction,
            flags & !libc::SA_ONSTACK,
            mask_word(&req.sa_mask),
        );
        if !set_record(sig, rec) {
            // No memory for the record: the handler itself, off the
            // sigaltstack, as without the trampoline (`signals.rs`).
            let mut sa = *req;
            sa.sa_flags = rec.1;
            return sa;
        }
    }
    let r = record(sig);
    // Every asynchronous signal is blocked while the trampoline runs: from
    // disabling the sigaltstack until JSC's sigsuspend (which sets its own
    // mask), a Go handler landing here would find neither its gsignal stack
    // nor a sigaltstack and abort (runtime/signal_unix.go,
    // adjustSignalStack -> noSignalStack). Faults stay deliverable; glibc's
    // SIGCANCEL/SIGSETXID (32, 33) are left alone like sigfillset does.
    let sync = [
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGFPE,
        libc::SIGILL,
        libc::SIGTRAP,
        libc::SIGSYS,
        32,
        33,
    ];
    let keep = sync.iter().fold(0u64, |m, &s| m | 1 << (s - 1));
    // SAFETY: all-zero is a valid sigaction.
    let mut sa: SigAction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = address();
    sa.sa_flags = r.1 | libc::SA_ONSTACK | libc::SA_SIGINFO;
    set_mask_word(&mut sa.sa_mask, r.2 | !keep);
    sa
}

/// If `old` shows the trampoline, report `rec` (JSC's handler) instead,
/// keeping what libc itself adds (`SA_RESTORER`).
///
/// # Safety
/// `old` is null or valid.
pub unsafe fn report(old: *mut SigAction, rec: Record) {
    // SAFETY: caller's contract.
    let Some(o) = (unsafe { old.as_mut() }) else {
        return;
    };
    if !is_trampoline(o.sa_sigaction) || rec.0 == 0 {
        return;
    }
    use crate::rawsig::SA_RESTORER;
    o.sa_sigaction = rec.0;
    o.sa_flags = rec.1 | (o.sa_flags & SA_RESTORER);
    set_mask_word(&mut o.sa_mask, rec.2);
}

type Handler3 = unsafe extern "C" fn(c_int, *mut siginfo_t, *mut c_void);

/// The stand-in handler.
///
/// # Safety
/// Only the kernel calls it, with `SA_SIGINFO` arguments.
unsafe extern "C" fn suspend_trampoline(sig: c_int, info: *mut siginfo_t, uc: *mut c_void) {
    // SAFETY: this thread's errno slot; restored so the interrupted code
    // never sees JSC's sigsuspend EINTR.
    let errno = unsafe { *libc::__errno_location() };
    let h = record(sig).0;
    if h > 1 {
        // SAFETY: with SA_SIGINFO the kernel passes a valid ucontext_t.
        let (pc, sp) = unsafe { arch::interrupted(uc) };
        // SAFETY: all-zero is a valid stack_t.
        let mut st: libc::stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: a query into a struct on our stack.
        let alt = (unsafe { libc::sigaltstack(std::ptr::null(), &mut st) } == 0
            && st.ss_flags & libc::SS_DISABLE == 0)
            .then_some(AltStack {
                base: st.ss_sp as usize,
                size: st.ss_size,
                on_it: st.ss_flags & libc::SS_ONSTACK != 0,
            });
        // SAFETY: h is the handler JSC installed for this signal.
        let f: Handler3 = unsafe { std::mem::transmute::<usize, Handler3>(h) };
        let switched = decide(alt, sp, crate::registry::is_go_code(pc)) == Where::InterruptedStack
            // SAFETY: sp is the interrupted thread stack (decide), st is the
            // enabled sigaltstack we are on.
            && unsafe { arch::call_on_stack(switch_sp(sp), on_thread_stack, sig, info, uc, &st) } == 0;
        if !switched {
            // SAFETY: JSC's handler with the kernel's arguments.
            unsafe { f(sig, info, uc) };
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// On the interrupted thread stack: sigaltstack off, JSC's handler,
/// sigaltstack back on. Returns -1 (JSC's handler not called) if the
/// sigaltstack could not be disabled.
unsafe extern "C" fn on_thread_stack(
    sig: c_int,
    info: *mut siginfo_t,
    uc: *mut c_void,
    st: *const libc::stack_t,
) -> c_int {
    let off = libc::stack_t {
        ss_sp: std::ptr::null_mut(),
        ss_flags: libc::SS_DISABLE,
        ss_size: 0,
    };
    // SAFETY: our SP is off the sigaltstack now, so the kernel accepts it.
    if unsafe { libc::sigaltstack(&off, std::ptr::null_mut()) } != 0 {
        return -1;
    }
    // SAFETY: the recorded JSC handler, the kernel's arguments.
    unsafe {
        let f: Handler3 = std::mem::transmute::<usize, Handler3>(record(sig).0);
        f(sig, info, uc);
    }
    // SAFETY: `st` is the trampoline's copy on the (intact) sigaltstack.
    let mut on = unsafe { *st };
    on.ss_flags &= !libc::SS_ONSTACK;
    // SAFETY: re-enabling the same stack from off it.
    unsafe { libc::sigaltstack(&on, std::ptr::null_mut()) };
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALT: AltStack = AltStack {
        base: 0x7000_0000,
        size: 0x8000,
        on_it: true,
    };
    const THREAD_SP: usize = 0x7fff_0000_1238;

    #[test]
    fn no_sigaltstack_runs_here() {
        assert_eq!(decide(None, THREAD_SP, false), Where::Here);
        assert_eq!(decide(None, THREAD_SP, true), Where::Here);
        let off = AltStack {
            on_it: false,
            ..ALT
        };
        assert_eq!(decide(Some(off), THREAD_SP, false), Where::Here);
    }

    #[test]
    fn own_stack_switches_back() {
        assert_eq!(decide(Some(ALT), THREAD_SP, false), Where::InterruptedStack);
    }

    #[test]
    fn go_code_backs_off_on_the_sigaltstack() {
        assert_eq!(decide(Some(ALT), THREAD_SP, true), Where::Here);
    }

    #[test]
    fn nested_in_another_handler_stays() {
        for sp in [ALT.base, ALT.base + 0x100, ALT.base + ALT.size] {
            assert_eq!(decide(Some(ALT), sp, false), Where::Here, "{sp:#x}");
        }
        assert_eq!(
            decide(Some(ALT), ALT.base + ALT.size + 0x1000, false),
            Where::InterruptedStack
        );
        assert_eq!(decide(Some(ALT), 0x100, false), Where::Here, "bogus SP");
    }

    #[test]
    fn switch_sp_skips_red_zone_and_aligns() {
        assert_eq!(switch_sp(0x1000), 0xf80);
        assert_eq!(switch_sp(0x1238), 0x11b0);
        for sp in [0x1001usize, 0x100f, 0x7fff_ffff_e4a8] {
            let s = switch_sp(sp);
            assert!(s.is_multiple_of(16) && s <= sp - 128 && s > sp - 128 - 16);
        }
    }

    #[test]
    fn stand_in_records_and_report_restores() {
        let sig = 40;
        // SAFETY: all-zero is a valid sigaction.
        let mut req: SigAction = unsafe { std::mem::zeroed() };
        req.sa_sigaction = 0x1234;
        req.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
        set_mask_word(&mut req.sa_mask, 1 << (sig - 1));
        let sa = stand_in(sig, &req, req.sa_flags);
        assert_eq!(
            record(sig),
            Record(0x1234, libc::SA_SIGINFO | libc::SA_RESTART, 1 << (sig - 1))
        );
        {
            assert_eq!(sa.sa_sigaction, address());
            assert_ne!(address(), 0);
            assert_ne!(sa.sa_flags & libc::SA_ONSTACK, 0);
            assert_eq!(mask_word(&sa.sa_mask) & (1 << (libc::SIGSEGV - 1)), 0);
            assert_ne!(mask_word(&sa.sa_mask) & (1 << (libc::SIGURG - 1)), 0);
            // Re-installing the trampoline itself keeps the record.
            stand_in(sig, &sa, sa.sa_flags);
            assert_eq!(record(sig).0, 0x1234);
            let mut old = sa;
            old.sa_flags |= 0x0400_0000;
            // SAFETY: a valid struct.
            unsafe { report(&mut old, record(sig)) };
            assert_eq!(old.sa_sigaction, 0x1234);
            assert_eq!(
                old.sa_flags,
                libc::SA_SIGINFO | libc::SA_RESTART | 0x0400_0000
            );
            assert_eq!(mask_word(&old.sa_mask), 1 << (sig - 1));
        }
    }

    // ---- The trampoline on a real signal, on this machine's architecture
    // (under qemu-user for aarch64, scripts/test.sh).

    /// A signal no other test of this crate touches.
    const LIVE_SIG: c_int = 50;
    const ALT_SIZE: usize = 64 << 10;

    /// What the stand-in's handler saw on its last delivery.
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    static HANDLER_SP: AtomicUsize = AtomicUsize::new(0);
    static INTERRUPTED_SP: AtomicUsize = AtomicUsize::new(0);
    static ALT_FLAGS: AtomicI32 = AtomicI32::new(0);

    /// JSC's handler in miniature: notes where it runs and what the
    /// sigaltstack looks like, and clobbers errno like its sigsuspend does.
    extern "C" fn probe_handler(_sig: c_int, _info: *mut siginfo_t, uc: *mut c_void) {
        let here = 0u8;
        HANDLER_SP.store(
            std::hint::black_box(&here) as *const u8 as usize,
            Ordering::SeqCst,
        );
        // SAFETY: the kernel's ucontext, passed on by the trampoline.
        INTERRUPTED_SP.store(unsafe { arch::interrupted(uc) }.1, Ordering::SeqCst);
        // SAFETY: all-zero is a valid stack_t; a query into it.
        let mut st: libc::stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        unsafe { libc::sigaltstack(std::ptr::null(), &mut st) };
        ALT_FLAGS.store(st.ss_flags, Ordering::SeqCst);
        // SAFETY: this thread's errno slot.
        unsafe { *libc::__errno_location() = libc::EINTR };
        CALLS.fetch_add(1, Ordering::SeqCst);
    }

    /// Where one delivery of `LIVE_SIG` to this thread ran its handler.
    #[derive(Debug)]
    struct Seen {
        /// The handler's frame lies within 64 KiB below the sender's.
        near_thread_stack: bool,
        /// The handler's frame lies on the sigaltstack.
        on_alt: bool,
        /// The ucontext's SP lies within 64 KiB below the sender's frame.
        uc_sp_near: bool,
        /// `SS_DISABLE` was set while the handler ran.
        alt_disabled_inside: bool,
        /// errno after delivery is what it was before.
        errno_kept: bool,
        /// The sigaltstack after delivery, as before (enabled, same base).
        alt_intact: bool,
    }

    /// On a new thread with a sigaltstack (when `alt`), installs `sa` on
    /// `LIVE_SIG`, sends it to the thread itself and reports what the
    /// handler saw. A thread of its own: sigaltstacks are per thread.
    fn deliver(sa: SigAction, alt: bool) -> Seen {
        std::thread::spawn(move || {
            let mut stack = vec![0u8; ALT_SIZE];
            let base = stack.as_mut_ptr() as usize;
            if alt {
                let st = libc::stack_t {
                    ss_sp: stack.as_mut_ptr().cast(),
                    ss_flags: 0,
                    ss_size: ALT_SIZE,
                };
                // SAFETY: a valid, live buffer, disabled again below.
                assert_eq!(unsafe { libc::sigaltstack(&st, std::ptr::null_mut()) }, 0);
            }
            // SAFETY: installing a handler on a signal only this test uses.
            assert_eq!(
                unsafe { libc::sigaction(LIVE_SIG, &sa, std::ptr::null_mut()) },
                0
            );
            let before = CALLS.load(Ordering::SeqCst);
            let anchor = 0u8;
            let anchor = std::hint::black_box(&anchor) as *const u8 as usize;
            // SAFETY: this thread's errno slot.
            unsafe { *libc::__errno_location() = 77 };
            // SAFETY: a signal to this thread, whose handler is installed.
            assert_eq!(
                unsafe { libc::pthread_kill(libc::pthread_self(), LIVE_SIG) },
                0
            );
            // Delivered before pthread_kill returns on Linux; qemu-user
            // delivers at its next safe point, so wait for it (bounded).
            for _ in 0..1000 {
                if CALLS.load(Ordering::SeqCst) > before {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            assert_eq!(CALLS.load(Ordering::SeqCst), before + 1, "not delivered");
            // SAFETY: this thread's errno slot (a sleep that succeeds leaves
            // it alone).
            let errno_kept = unsafe { *libc::__errno_location() } == 77;
            // SAFETY: all-zero is a valid stack_t; a query into it.
            let mut st: libc::stack_t = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            unsafe { libc::sigaltstack(std::ptr::null(), &mut st) };
            let alt_intact = !alt || (st.ss_flags == 0 && st.ss_sp as usize == base);
            let off = libc::stack_t {
                ss_sp: std::ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: 0,
            };
            // SAFETY: disabling this thread's sigaltstack before freeing it.
            unsafe { libc::sigaltstack(&off, std::ptr::null_mut()) };
            // SAFETY: all-zero is a valid sigaction (SIG_DFL), then SIG_IGN.
            let mut ign: SigAction = unsafe { std::mem::zeroed() };
            ign.sa_sigaction = libc::SIG_IGN;
            // SAFETY: as above.
            unsafe { libc::sigaction(LIVE_SIG, &ign, std::ptr::null_mut()) };
            let near = |sp: usize| sp < anchor && anchor - sp < 64 << 10;
            let h = HANDLER_SP.load(Ordering::SeqCst);
            Seen {
                near_thread_stack: near(h),
                on_alt: h >= base && h < base + ALT_SIZE,
                uc_sp_near: near(INTERRUPTED_SP.load(Ordering::SeqCst)),
                alt_disabled_inside: ALT_FLAGS.load(Ordering::SeqCst) & libc::SS_DISABLE != 0,
                errno_kept,
                alt_intact,
            }
        })
        .join()
        .unwrap()
    }

    fn probe_request() -> SigAction {
        // SAFETY: all-zero is a valid sigaction.
        let mut req: SigAction = unsafe { std::mem::zeroed() };
        req.sa_sigaction = probe_handler as Handler3 as usize;
        req.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        req
    }

    /// One test, so the deliveries on the shared signal run in turn.
    #[test]
    fn live_signal_runs_the_handler_on_the_interrupted_stack() {
        let req = probe_request();
        // Control: JSC's handler installed with SA_ONSTACK (Go's
        // setsigstack) runs on the sigaltstack, which the trampoline fixes.
        let mut plain = req;
        plain.sa_flags |= libc::SA_ONSTACK;
        let s = deliver(plain, true);
        assert!(
            s.on_alt && !s.near_thread_stack && s.uc_sp_near,
            "control: {s:?}"
        );

        // The trampoline: switched back to the interrupted stack, the
        // sigaltstack off meanwhile and back on after, errno kept.
        let sa = stand_in(LIVE_SIG, &req, req.sa_flags | libc::SA_ONSTACK);
        assert_eq!(sa.sa_sigaction, address());
        assert_ne!(sa.sa_flags & libc::SA_ONSTACK, 0);
        let s = deliver(sa, true);
        assert!(
            !s.on_alt
                && s.near_thread_stack
                && s.uc_sp_near
                && s.alt_disabled_inside
                && s.errno_kept
                && s.alt_intact,
            "trampoline: {s:?}"
        );

        // No sigaltstack: the kernel delivered on the thread stack already,
        // and the trampoline calls the handler right there.
        let s = deliver(sa, false);
        assert!(
            s.near_thread_stack && s.uc_sp_near && s.alt_disabled_inside && s.errno_kept,
            "no sigaltstack: {s:?}"
        );
    }
}

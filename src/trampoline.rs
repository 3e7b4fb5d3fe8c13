//! The suspend trampoline (x86_64 Linux): JSC's suspend handler always runs
//! on the interrupted thread's own stack, yet the signal is installed with
//! `SA_ONSTACK` as Go requires.
//!
//! Why: keeping `SA_ONSTACK` off the suspend signal (JSC's rule, see
//! `signals.rs`) means that when the JS thread is running Go code (a cgo
//! callback runs on a goroutine stack of a few KiB), the kernel pushes the
//! signal frame (1-3 KiB with xsave state) and JSC's handler frame onto that
//! goroutine stack and overruns it: Go then dies with "traceback did not
//! unwind completely" / "unknown caller pc". Go's rule (os/signal, "Go
//! programs that use cgo or SWIG") exists exactly for that.
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
//!   (below the 128-byte red zone, 16-byte aligned), disable the sigaltstack,
//!   call JSC's handler, re-enable the sigaltstack, switch back. Disabling
//!   matters: JSC's handler waits in `sigsuspend` for the *resume* signal,
//!   whose nested delivery with `SA_ONSTACK` would otherwise start at the top
//!   of the sigaltstack, over our frame and over the ucontext that JSC
//!   published as the thread's registers. `sigaltstack(SS_DISABLE)` is
//!   refused only while the SP is on the alternate stack, which it no longer
//!   is.
//!
//! The rule for "on its own stack": the interrupted PC is not in a Go
//! object's text (`gomods::is_go_code`). Knowing a thread's stack bounds
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
//! SIGNAL-REACHABLE: everything here. Atomics and raw system calls only: no
//! allocation, no locks, no logging.

use libc::{c_int, sigaction as SigAction};
#[cfg(target_arch = "x86_64")]
use libc::{c_void, siginfo_t};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};

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

/// The stack pointer to call JSC's handler with: below the System V red
/// zone of the interrupted function, 16-byte aligned for the `call`.
pub fn switch_sp(interrupted_sp: usize) -> usize {
    (interrupted_sp - 128) & !15
}

const N: usize = 65;
/// JSC's handler, flags (without `SA_ONSTACK`) and mask word, per signal.
static HANDLER: [AtomicUsize; N] = [const { AtomicUsize::new(0) }; N];
static FLAGS: [AtomicI32; N] = [const { AtomicI32::new(0) }; N];
static MASK: [AtomicU64; N] = [const { AtomicU64::new(0) }; N];
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Called once from the constructor: `CGOFIX_SUSPEND_TRAMPOLINE`, x86_64 only.
pub fn init(on: bool) {
    ENABLED.store(on && cfg!(target_arch = "x86_64"), Ordering::Release);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Acquire)
}

/// The trampoline's address (0 where there is none).
pub fn address() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        suspend_trampoline as unsafe extern "C" fn(c_int, *mut siginfo_t, *mut c_void) as usize
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
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

pub fn record(sig: c_int) -> Record {
    let i = slot(sig).unwrap_or(0);
    Record(
        HANDLER[i].load(Ordering::Acquire),
        FLAGS[i].load(Ordering::Acquire),
        MASK[i].load(Ordering::Acquire),
    )
}

fn mask_word(m: &libc::sigset_t) -> u64 {
    // SAFETY: glibc's x86_64 sigset_t is an array of u64 words, the first
    // of which is the kernel's mask for signals 1..=64.
    unsafe { *(m as *const libc::sigset_t as *const u64) }
}

fn set_mask_word(m: &mut libc::sigset_t, w: u64) {
    // SAFETY: as in `mask_word`.
    unsafe { *(m as *mut libc::sigset_t as *mut u64) = w };
}

/// Sets what the stand-in runs for `sig`: a new request (`stand_in`), or a
/// record taken with [`record`] put back when the install that replaced it
/// failed, so the kernel still runs what `rec` describes.
pub fn set_record(sig: c_int, rec: Record) {
    let i = slot(sig).unwrap_or(0);
    // The handler last: the stand-in reads it first.
    FLAGS[i].store(rec.1, Ordering::Release);
    MASK[i].store(rec.2, Ordering::Release);
    HANDLER[i].store(rec.0, Ordering::Release);
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
        set_record(sig, rec);
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

#[cfg(target_arch = "x86_64")]
type Handler3 = unsafe extern "C" fn(c_int, *mut siginfo_t, *mut c_void);

/// The stand-in handler.
///
/// # Safety
/// Only the kernel calls it, with `SA_SIGINFO` arguments.
#[cfg(target_arch = "x86_64")]
unsafe extern "C" fn suspend_trampoline(sig: c_int, info: *mut siginfo_t, uc: *mut c_void) {
    // SAFETY: this thread's errno slot; restored so the interrupted code
    // never sees JSC's sigsuspend EINTR.
    let errno = unsafe { *libc::__errno_location() };
    let h = record(sig).0;
    if h > 1 {
        // SAFETY: with SA_SIGINFO the kernel passes a valid ucontext_t.
        let (pc, sp) = unsafe {
            let g = &(*(uc as *const libc::ucontext_t)).uc_mcontext.gregs;
            (
                g[libc::REG_RIP as usize] as usize,
                g[libc::REG_RSP as usize] as usize,
            )
        };
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
            && unsafe { call_on_stack(switch_sp(sp), sig, info, uc, &st) } == 0;
        if !switched {
            // SAFETY: JSC's handler with the kernel's arguments.
            unsafe { f(sig, info, uc) };
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Runs `on_thread_stack(sig, info, uc, st)` with the stack pointer at `sp`.
/// Returns its result.
///
/// # Safety
/// `sp` is 16-byte aligned, in mapped stack memory no live frame uses.
#[cfg(target_arch = "x86_64")]
unsafe fn call_on_stack(
    sp: usize,
    sig: c_int,
    info: *mut siginfo_t,
    uc: *mut c_void,
    st: *const libc::stack_t,
) -> c_int {
    let ret: c_int;
    // SAFETY: r12 (callee-saved, declared clobbered) keeps our SP across the
    // call; `sp` is aligned so the callee sees the ABI's entry alignment;
    // nothing of ours lives below the old SP, so nothing is lost.
    unsafe {
        core::arch::asm!(
            "mov r12, rsp",
            "mov rsp, {sp}",
            "call {f}",
            "mov rsp, r12",
            sp = in(reg) sp,
            f = in(reg) on_thread_stack as unsafe extern "C" fn(_, _, _, _) -> _ as usize,
            in("rdi") sig,
            in("rsi") info,
            in("rdx") uc,
            in("rcx") st,
            lateout("eax") ret,
            out("r12") _,
            clobber_abi("C"),
        );
    }
    ret
}

/// On the interrupted thread stack: sigaltstack off, JSC's handler,
/// sigaltstack back on. Returns -1 (JSC's handler not called) if the
/// sigaltstack could not be disabled.
#[cfg(target_arch = "x86_64")]
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
        if cfg!(target_arch = "x86_64") {
            assert_eq!(sa.sa_sigaction, address());
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
}

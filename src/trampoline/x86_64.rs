//! The suspend trampoline's x86_64 Linux mechanism: where the interrupted
//! PC and SP are in the kernel's `ucontext_t`, and a call on another stack.
//! The policy (when to switch, to which SP) is in `trampoline.rs`.
//!
//! SIGNAL-REACHABLE: register moves and one call, nothing else.

use super::OnStack;
use libc::{c_int, c_void, siginfo_t};

pub const AVAILABLE: bool = true;

/// The interrupted (PC, SP): `uc_mcontext.gregs[REG_RIP]` and
/// `[REG_RSP]` (glibc sysdeps/unix/sysv/linux/x86/sys/ucontext.h,
/// https://sourceware.org/git/?p=glibc.git;a=blob;f=sysdeps/unix/sysv/linux/x86/sys/ucontext.h).
///
/// # Safety
/// `uc` is the `ucontext_t` the kernel passed to an `SA_SIGINFO` handler.
pub unsafe fn interrupted(uc: *const c_void) -> (usize, usize) {
    // SAFETY: caller's contract.
    let g = unsafe { &(*(uc as *const libc::ucontext_t)).uc_mcontext.gregs };
    (
        g[libc::REG_RIP as usize] as usize,
        g[libc::REG_RSP as usize] as usize,
    )
}

/// Runs `f(sig, info, uc, st)` with the stack pointer at `sp`; returns its
/// result.
///
/// # Safety
/// `sp` is 16-byte aligned, in mapped stack memory no live frame uses; `f`
/// may be called with these arguments.
pub unsafe fn call_on_stack(
    sp: usize,
    f: OnStack,
    sig: c_int,
    info: *mut siginfo_t,
    uc: *mut c_void,
    st: *const libc::stack_t,
) -> c_int {
    let ret: c_int;
    // SAFETY: r12 (callee-saved, declared clobbered) keeps our SP across the
    // call; `sp` is aligned so the callee sees the ABI's entry alignment
    // (the `call` pushes the return address); nothing of ours lives below
    // the old SP, so nothing is lost.
    unsafe {
        core::arch::asm!(
            "mov r12, rsp",
            "mov rsp, {sp}",
            "call {f}",
            "mov rsp, r12",
            sp = in(reg) sp,
            f = in(reg) f as usize,
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

//! The suspend trampoline's aarch64 Linux mechanism: where the interrupted
//! PC and SP are in the kernel's `ucontext_t`, and a call on another stack.
//! The policy (when to switch, to which SP) is in `trampoline.rs`.
//!
//! SIGNAL-REACHABLE: register moves and one call, nothing else.

use super::OnStack;
use libc::{c_int, c_void, siginfo_t};

pub const AVAILABLE: bool = true;

// The layout the kernel writes and glibc declares: `ucontext_t` is
// {uc_flags, uc_link, uc_stack (24 bytes), uc_sigmask (128 bytes),
// uc_mcontext}, the last 16-byte aligned, so at 176
// (https://sourceware.org/git/?p=glibc.git;a=blob;f=sysdeps/unix/sysv/linux/aarch64/sys/ucontext.h);
// `uc_mcontext` is the kernel's `struct sigcontext` {fault_address,
// regs[31], sp, pc, pstate, __reserved[4096]}
// (https://github.com/torvalds/linux/blob/master/arch/arm64/include/uapi/asm/sigcontext.h),
// so the SP is at 176 + 8 + 31 * 8 = 432 and the PC at 440, the offsets
// `handler_probe` looks for in Bun's handler. Checked at compile time
// against the `libc` crate's declarations.
const _: () = {
    assert!(std::mem::offset_of!(libc::ucontext_t, uc_mcontext) == 176);
    assert!(std::mem::offset_of!(libc::mcontext_t, sp) == 8 + 31 * 8);
    assert!(std::mem::offset_of!(libc::mcontext_t, pc) == 8 + 32 * 8);
};

/// The interrupted (PC, SP): `uc_mcontext.pc` and `uc_mcontext.sp`.
///
/// # Safety
/// `uc` is the `ucontext_t` the kernel passed to an `SA_SIGINFO` handler.
pub unsafe fn interrupted(uc: *const c_void) -> (usize, usize) {
    // SAFETY: caller's contract.
    let m = unsafe { &(*(uc as *const libc::ucontext_t)).uc_mcontext };
    (m.pc as usize, m.sp as usize)
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
    // SAFETY: x20 (callee-saved under AAPCS64, declared clobbered so the
    // compiler saves ours) keeps our SP across the call; x19 and x29 are
    // LLVM's base and frame pointers and cannot be named here, and the callee
    // preserves x29 itself. `blr` overwrites x30 (the link register), which
    // clobber_abi("C") declares, so our own return address is saved by the
    // compiler in our frame. `sp` is 16-byte aligned, which AAPCS64 requires
    // of SP at every access (a misaligned SP faults); nothing of ours lives
    // below the old SP, so nothing is lost.
    unsafe {
        core::arch::asm!(
            "mov x20, sp",
            "mov sp, {sp}",
            "blr {f}",
            "mov sp, x20",
            sp = in(reg) sp,
            f = in(reg) f as usize,
            inlateout("x0") sig => ret,
            in("x1") info,
            in("x2") uc,
            in("x3") st,
            out("x20") _,
            clobber_abi("C"),
        );
    }
    ret
}

//! The `rt_sigaction` system call, for when libc's `sigaction` cannot be
//! found (another preload hid it, or a hook runs before the constructor),
//! and the kernel ABI details both the signal hooks and the suspend
//! trampoline need. Architecture-specific code for signals lives here.
//!
//! SIGNAL-REACHABLE: raw system calls and stack copies only.

use crate::primitives::set_errno;
use libc::{c_int, sigaction as SigAction};

/// The kernel flag for a user-supplied restorer; libc sets it itself.
pub const SA_RESTORER: c_int = 0x0400_0000;

#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    // x86_64 requires a user restorer that calls rt_sigreturn (15);
    // glibc's is private, so we carry our own.
    ".pushsection .text.cgofix_restore_rt,\"ax\",@progbits",
    ".globl cgofix_restore_rt",
    ".hidden cgofix_restore_rt",
    ".p2align 4",
    "cgofix_restore_rt:",
    "mov rax, 15",
    "syscall",
    ".popsection",
);

#[cfg(target_arch = "x86_64")]
unsafe extern "C" {
    fn cgofix_restore_rt();
}

/// The restorer and flags the kernel gets for a handler: x86_64 requires a
/// user restorer (`SA_RESTORER`); aarch64's kernel returns through the
/// vDSO's `__kernel_rt_sigreturn` when none is given, which is what glibc
/// does there too (sysdeps/unix/sysv/linux/aarch64/sigaction.c sets no
/// restorer), so the shim gives none either.
#[cfg(target_arch = "x86_64")]
fn restorer(flags: c_int) -> (u64, usize) {
    (
        (flags | SA_RESTORER) as u32 as u64,
        cgofix_restore_rt as *const () as usize,
    )
}

#[cfg(target_arch = "aarch64")]
fn restorer(flags: c_int) -> (u64, usize) {
    ((flags & !SA_RESTORER) as u32 as u64, 0)
}

/// The kernel's `struct sigaction` on x86_64 and aarch64 (asm-generic
/// layout with `sa_restorer`, mask last).
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// # Safety
/// As sigaction(2).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub unsafe fn sigaction(sig: c_int, act: *const SigAction, old: *mut SigAction) -> c_int {
    // glibc reserves these two for its own thread machinery.
    if sig == 32 || sig == 33 {
        set_errno(libc::EINVAL);
        return -1;
    }
    // SAFETY: caller passes null or a valid pointer.
    let kact = unsafe { act.as_ref() }.map(|a| {
        // SAFETY: sigset_t starts with the kernel's 64-bit mask word.
        let mask = unsafe { *(&a.sa_mask as *const libc::sigset_t as *const u64) };
        let (flags, restorer) = restorer(a.sa_flags);
        KernelSigaction {
            handler: a.sa_sigaction,
            flags,
            restorer,
            mask,
        }
    });
    let mut kold = KernelSigaction {
        handler: 0,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    let kp = kact
        .as_ref()
        .map_or(std::ptr::null(), |k| k as *const KernelSigaction);
    // SAFETY: both pointers are null or valid kernel structs; 8 is the
    // kernel's sigset size.
    let r = unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, kp, &mut kold, 8usize) };
    if r != 0 {
        return -1; // errno set by syscall()
    }
    // SAFETY: caller passes null or a valid pointer.
    if let Some(o) = unsafe { old.as_mut() } {
        // SAFETY: all-zero is a valid sigaction.
        *o = unsafe { std::mem::zeroed() };
        o.sa_sigaction = kold.handler;
        o.sa_flags = kold.flags as c_int;
        // SAFETY: writing the kernel mask word into the sigset_t.
        unsafe { *(&mut o.sa_mask as *mut libc::sigset_t as *mut u64) = kold.mask };
    }
    0
}

/// # Safety
/// As sigaction(2).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub unsafe fn sigaction(_sig: c_int, _act: *const SigAction, _old: *mut SigAction) -> c_int {
    set_errno(libc::ENOSYS);
    -1
}

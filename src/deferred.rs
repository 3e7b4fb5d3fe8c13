//! Deferred binding of the libc functions only Rust's standard library
//! calls (allocation, files, panics): bound at their first call, not by the
//! loader in every process start.
//!
//! Why: Rust compiles calls to other objects' functions through GOT entries
//! (no PLT), so `-z lazy` would change nothing, and the loader looked every
//! import up in every process that loads the library: ~700 instructions
//! per name (callgrind, a `/bin/true` start), for ~25 names that a shell's
//! children never call (README "Performance", fourth round). Here each
//! such name is defined in this library, hidden (bound at link time, never
//! exported: an exported `malloc` would take over the process's), as a stub
//! that jumps through a slot in `.bss`; an empty slot first goes through
//! [`bind`], which finds the function and fills the slot. That is what the
//! loader's lazy binding does through the PLT.
//!
//! [`bind`] finds the definition the loader would have bound the import to:
//! the first loaded object, in load order, that defines the name under its
//! default version (`interpose::elf::first_definition`, tested against
//! `dlsym`), so a preloaded allocator or a program's own `malloc` is still
//! the one used, as with the import. Every name here keeps, under its
//! default version, the interface the library was linked against, and is
//! in libc.so.6 of every glibc from 2.17 (the zig build's floor) on, except
//! the four `pthread_*` ones only the plain build (floor 2.35) references;
//! `fstat64` and `stat64`, which are not (2.33), are `primitives.rs`'s.
//!
//! Not deferred: `__errno_location`, which signal-reachable code calls,
//! because binding takes the loader's lock (`dl_iterate_phdr`; the other
//! functions such code calls are the library's own, `primitives.rs`); the
//! two binding itself needs (`dl_iterate_phdr`, `dlsym`); data (`environ`,
//! `stderr`); ld.so's `__tls_get_addr`; and
//! `_dl_find_object` (glibc 2.35), which the unwinder calls: it is what
//! makes 2.35 the plain build's floor, so that a libc without it refuses
//! the library at load time rather than ending the process at a panic. Binding takes only the loader's
//! innermost, recursive lock, the one `dl_iterate_phdr` takes: the library
//! already takes it with its own locks held (`registry`), so no new lock
//! order appears. No name here may be called from a signal handler.
//!
//! A name no loaded object defines (a libc older than the one the library
//! was linked against) ends the process with one line on stderr at its
//! first call, where the loader would have refused to load the library.

use crate::names::Names;
use std::ffi::CStr;
use std::sync::atomic::{AtomicUsize, Ordering};

macro_rules! deferred {
    ($($index:literal $name:ident)*) => {
        /// The names by index, as C strings without relocations.
        static NAMES: Names<21, COUNT> = Names::new([$(stringify!($name)),*]);

        #[cfg(target_arch = "x86_64")]
        core::arch::global_asm!(
            ".pushsection .text.cgofix_deferred,\"ax\",@progbits",
            $(
                concat!(".globl ", stringify!($name)),
                concat!(".hidden ", stringify!($name)),
                concat!(".type ", stringify!($name), ",@function"),
                ".p2align 4",
                concat!(stringify!($name), ":"),
                // r11: scratch, no argument lives there (SysV ABI 3.2.3).
                concat!("mov r11, qword ptr [rip + {slots} + ", $index, "*8]"),
                "test r11, r11",
                "jz 8f",
                "jmp r11",
                "8:",
                concat!("mov r11d, ", $index),
                "jmp cgofix_deferred_common",
                concat!(".size ", stringify!($name), ", . - ", stringify!($name)),
            )*
            ".popsection",
            slots = sym SLOTS,
        );

        #[cfg(target_arch = "aarch64")]
        core::arch::global_asm!(
            ".pushsection .text.cgofix_deferred,\"ax\",%progbits",
            $(
                concat!(".globl ", stringify!($name)),
                concat!(".hidden ", stringify!($name)),
                concat!(".type ", stringify!($name), ",%function"),
                ".p2align 4",
                concat!(stringify!($name), ":"),
                // x16/x17: the intra-procedure-call scratch registers
                // (AAPCS64 6.1.1), what a PLT stub uses too.
                concat!("adrp x16, {slots} + ", $index, "*8"),
                concat!("ldr x16, [x16, :lo12:{slots} + ", $index, "*8]"),
                "cbz x16, 8f",
                "br x16",
                "8:",
                concat!("mov x17, #", $index),
                "b cgofix_deferred_common",
                concat!(".size ", stringify!($name), ", . - ", stringify!($name)),
            )*
            ".popsection",
            slots = sym SLOTS,
        );
    };
}

deferred! {
    0 abort 1 calloc 2 close 3 free 4 getcwd 5 getenv 6 lseek64 7 malloc
    8 mmap64 9 munmap 10 open64 11 posix_memalign 12 __pthread_key_create
    13 pthread_mutex_lock 14 pthread_mutex_unlock 15 pthread_once 16 read
    17 readlink 18 realloc 19 realpath 20 __register_atfork 21 fprintf
    22 fflush 23 snprintf 24 fwrite
}

const COUNT: usize = 25;

/// Filled by [`bind`]; zero (in `.bss`: no relocation, no page touched at
/// start-up) until the name's first call.
static SLOTS: [AtomicUsize; COUNT] = [const { AtomicUsize::new(0) }; COUNT];

// The common path of an empty slot: saves every register that can carry an
// argument (integer, vector, and x86_64's `al` for variadic calls such as
// `fprintf`), binds, restores them and jumps to the function with the
// caller's return address still on top: the stub is invisible to both.
#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".pushsection .text.cgofix_deferred,\"ax\",@progbits",
    ".p2align 4",
    "cgofix_deferred_common:",
    "push rbp",
    "mov rbp, rsp",
    "push rdi",
    "push rsi",
    "push rdx",
    "push rcx",
    "push r8",
    "push r9",
    "push rax",
    "push r11",
    // rsp is 16-byte aligned here (8 at entry, 9 pushes): room for xmm0-7.
    "sub rsp, 128",
    "movdqu [rsp], xmm0",
    "movdqu [rsp + 16], xmm1",
    "movdqu [rsp + 32], xmm2",
    "movdqu [rsp + 48], xmm3",
    "movdqu [rsp + 64], xmm4",
    "movdqu [rsp + 80], xmm5",
    "movdqu [rsp + 96], xmm6",
    "movdqu [rsp + 112], xmm7",
    "mov edi, r11d",
    "call {bind}",
    "mov r11, rax",
    "movdqu xmm0, [rsp]",
    "movdqu xmm1, [rsp + 16]",
    "movdqu xmm2, [rsp + 32]",
    "movdqu xmm3, [rsp + 48]",
    "movdqu xmm4, [rsp + 64]",
    "movdqu xmm5, [rsp + 80]",
    "movdqu xmm6, [rsp + 96]",
    "movdqu xmm7, [rsp + 112]",
    "add rsp, 136",
    "pop rax",
    "pop r9",
    "pop r8",
    "pop rcx",
    "pop rdx",
    "pop rsi",
    "pop rdi",
    "pop rbp",
    "jmp r11",
    ".popsection",
    bind = sym bind,
);

#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    ".pushsection .text.cgofix_deferred,\"ax\",%progbits",
    ".p2align 4",
    "cgofix_deferred_common:",
    "stp x29, x30, [sp, #-224]!",
    "mov x29, sp",
    "stp x0, x1, [sp, #16]",
    "stp x2, x3, [sp, #32]",
    "stp x4, x5, [sp, #48]",
    "stp x6, x7, [sp, #64]",
    // x8: the indirect result register.
    "str x8, [sp, #80]",
    "stp q0, q1, [sp, #96]",
    "stp q2, q3, [sp, #128]",
    "stp q4, q5, [sp, #160]",
    "stp q6, q7, [sp, #192]",
    "mov x0, x17",
    "bl {bind}",
    "mov x16, x0",
    "ldp q0, q1, [sp, #96]",
    "ldp q2, q3, [sp, #128]",
    "ldp q4, q5, [sp, #160]",
    "ldp q6, q7, [sp, #192]",
    "ldr x8, [sp, #80]",
    "ldp x6, x7, [sp, #64]",
    "ldp x4, x5, [sp, #48]",
    "ldp x2, x3, [sp, #32]",
    "ldp x0, x1, [sp, #16]",
    "ldp x29, x30, [sp], #224",
    "br x16",
    ".popsection",
    bind = sym bind,
);

/// The address of `NAMES[index]` the loader would have bound, stored in
/// its slot. Called by the stubs only, with the caller's arguments saved;
/// must not call any deferred name (it would recurse), and cannot panic:
/// an `extern "C"` fn aborts rather than unwind.
extern "C" fn bind(index: usize) -> usize {
    let (Some(name), Some(slot)) = (NAMES.c_str(index), SLOTS.get(index)) else {
        die(b"?");
    };
    let addr = resolve(name);
    if addr == 0 {
        die(name.to_bytes());
    }
    slot.store(addr, Ordering::Release);
    addr
}

/// What the loader would bind an import of `name` to; 0 if nothing
/// defines it. `dlsym` only for an IFUNC (which `first_definition` skips:
/// its symbol is the resolver); none of the names is one on glibc 2.36.
fn resolve(name: &CStr) -> usize {
    interpose::elf::first_definition(name.to_bytes(), None)
        .or_else(|| interpose::global_symbol(name))
        .unwrap_or(0)
}

/// One line on stderr, then SIGABRT as `abort` (itself deferred) would.
fn die(name: &[u8]) -> ! {
    let parts: [&[u8]; 3] = [b"cgofix: no loaded object defines ", name, b"\n"];
    for p in parts {
        // SAFETY: writing a valid buffer to fd 2; the result is irrelevant.
        unsafe { libc::write(2, p.as_ptr().cast(), p.len()) };
    }
    // SAFETY: raw system calls with valid arguments; tgkill to ourselves.
    unsafe {
        let pid = libc::syscall(libc::SYS_getpid);
        let tid = libc::syscall(libc::SYS_gettid);
        libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGABRT);
        libc::syscall(libc::SYS_exit_group, 134);
        // SAFETY: exit_group does not return.
        core::hint::unreachable_unchecked()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_binds_to_what_dlsym_returns() {
        assert_eq!(NAMES.iter().count(), COUNT);
        for name in (0..COUNT).filter_map(|i| NAMES.c_str(i)) {
            // SAFETY: a NUL-terminated name; RTLD_DEFAULT is a pseudo-handle.
            let want = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) } as usize;
            if want == 0 {
                // Only the zig build's names may be absent (e.g. none on
                // glibc 2.36); every name the plain build imports exists.
                continue;
            }
            assert_eq!(resolve(name), want, "{name:?}");
        }
    }
}

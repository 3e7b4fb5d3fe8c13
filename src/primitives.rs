//! The library's own memory and string primitives (`memcpy`, `memmove`,
//! `memset`, `memcmp`, `bcmp`, `strlen`) and system call wrappers
//! (`syscall`, `write`, `sigaltstack`, `gettid`, `statx`, `fstat64`,
//! `stat64`), defined hidden:
//! the library's calls (and Rust std's, linked into it) bind to them at
//! link time instead of importing libc's.
//!
//! Why: every import is a symbol lookup by the loader in every process that
//! loads the library, ~700 instructions each, and for the `mem*`/`str*`
//! family also a call of libc's IFUNC resolver (callgrind, a `/bin/true`
//! start; README "Performance", fourth round). These are the imports that
//! `deferred.rs` cannot bind lazily, because signal-reachable code
//! (the `sigaction` hook, the suspend trampoline) calls them: here there
//! is nothing to bind, and each is async-signal-safe by construction.
//!
//! The copies are `rep movsb`/`rep stosb` on x86_64 (fast-string microcode
//! on every x86_64 since Ivy Bridge and Zen; Intel SDM vol. 1, 7.3.9.3) and
//! byte loops on aarch64: the library copies small structures, not bulk
//! data. Direction flag: clear at every function entry (SysV x86_64 ABI
//! 3.4.1), including a signal handler's (the kernel clears it). The system
//! call wrappers are what glibc's are on Linux: the kernel's call, and on
//! a result in [-4095, -1] `errno` set and -1 returned
//! (sysdeps/unix/sysv/linux/x86_64/syscall.S,
//! https://sourceware.org/git/?p=glibc.git;a=blob;f=sysdeps/unix/sysv/linux/x86_64/syscall.S).
//! `statx` differs from glibc's only on kernels older than 4.11, where
//! this one fails with `ENOSYS` instead of emulating it; std then falls
//! back to `stat64` itself. `fstat64` and `stat64` exist in libc.so.6 only
//! since glibc 2.33 (before, `<sys/stat.h>` made them inline calls of
//! `__fxstat64`/`__xstat64`), so the zig build, linked for glibc 2.17, could
//! not bind them at run time there; glibc's `struct stat64` is the kernel's
//! `struct stat` on x86_64 and aarch64, which both have `fstat` and
//! `newfstatat`.

use libc::{c_int, c_uint, c_void};

/// `errno = e`; called by the assembly on a failed system call, and by
/// `rawsig`.
pub(crate) extern "C" fn set_errno(e: c_int) {
    // SAFETY: __errno_location always returns this thread's errno slot.
    unsafe { *libc::__errno_location() = e };
}

#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".pushsection .text.cgofix_primitives,\"ax\",@progbits",
    ".globl memcpy",
    ".hidden memcpy",
    ".type memcpy,@function",
    ".p2align 4",
    "memcpy:",
    "mov rax, rdi",
    "mov rcx, rdx",
    "rep movsb",
    "ret",
    ".size memcpy, . - memcpy",
    // Backwards only when the destination starts inside the source.
    ".globl memmove",
    ".hidden memmove",
    ".type memmove,@function",
    ".p2align 4",
    "memmove:",
    "mov rax, rdi",
    "mov rcx, rdx",
    "cmp rdi, rsi",
    "jbe 2f",
    "lea r8, [rsi + rdx]",
    "cmp rdi, r8",
    "jae 2f",
    "lea rsi, [rsi + rdx - 1]",
    "lea rdi, [rdi + rdx - 1]",
    "std",
    "rep movsb",
    "cld",
    "ret",
    "2:",
    "rep movsb",
    "ret",
    ".size memmove, . - memmove",
    ".globl memset",
    ".hidden memset",
    ".type memset,@function",
    ".p2align 4",
    "memset:",
    "mov r9, rdi",
    "mov eax, esi",
    "mov rcx, rdx",
    "rep stosb",
    "mov rax, r9",
    "ret",
    ".size memset, . - memset",
    // cmpsb compares [rsi] with [rdi] and steps both past the pair; the
    // result is the first differing byte of `a` (rdi) minus that of `b`.
    ".globl memcmp",
    ".hidden memcmp",
    ".type memcmp,@function",
    ".globl bcmp",
    ".hidden bcmp",
    ".type bcmp,@function",
    ".p2align 4",
    "memcmp:",
    "bcmp:",
    "xor eax, eax",
    "mov rcx, rdx",
    "test rcx, rcx",
    "jz 3f",
    "repe cmpsb",
    "je 3f",
    "movzx eax, byte ptr [rdi - 1]",
    "movzx ecx, byte ptr [rsi - 1]",
    "sub eax, ecx",
    "3:",
    "ret",
    ".size memcmp, . - memcmp",
    ".size bcmp, . - bcmp",
    ".globl strlen",
    ".hidden strlen",
    ".type strlen,@function",
    ".p2align 4",
    "strlen:",
    "mov rdx, rdi",
    "xor eax, eax",
    "mov rcx, -1",
    "repne scasb",
    "lea rax, [rdi - 1]",
    "sub rax, rdx",
    "ret",
    ".size strlen, . - strlen",
    // long syscall(long number, ...): the number and six arguments move
    // from the C convention (rdi, rsi, rdx, rcx, r8, r9, stack) to the
    // kernel's (rax; rdi, rsi, rdx, r10, r8, r9).
    ".globl syscall",
    ".hidden syscall",
    ".type syscall,@function",
    ".p2align 4",
    "syscall:",
    "mov rax, rdi",
    "mov rdi, rsi",
    "mov rsi, rdx",
    "mov rdx, rcx",
    "mov r10, r8",
    "mov r8, r9",
    "mov r9, qword ptr [rsp + 8]",
    "syscall",
    "cmp rax, -4095",
    "jae 4f",
    "ret",
    "4:",
    // rsp is 8 mod 16 here; one push aligns it for the call.
    "push rax",
    "mov edi, eax",
    "neg edi",
    "call {set_errno}",
    "pop rax",
    "mov rax, -1",
    "ret",
    ".size syscall, . - syscall",
    ".popsection",
    set_errno = sym set_errno,
);

#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    ".pushsection .text.cgofix_primitives,\"ax\",%progbits",
    ".globl memcpy",
    ".hidden memcpy",
    ".type memcpy,%function",
    ".p2align 4",
    "memcpy:",
    "mov x3, x0",
    "cbz x2, 2f",
    "1:",
    "ldrb w4, [x1], #1",
    "strb w4, [x3], #1",
    "subs x2, x2, #1",
    "b.ne 1b",
    "2:",
    "ret",
    ".size memcpy, . - memcpy",
    // Backwards only when the destination starts inside the source.
    ".globl memmove",
    ".hidden memmove",
    ".type memmove,%function",
    ".p2align 4",
    "memmove:",
    "cmp x0, x1",
    "b.ls memcpy",
    "add x4, x1, x2",
    "cmp x0, x4",
    "b.hs memcpy",
    "add x3, x0, x2",
    "cbz x2, 2f",
    "1:",
    "ldrb w5, [x4, #-1]!",
    "strb w5, [x3, #-1]!",
    "subs x2, x2, #1",
    "b.ne 1b",
    "2:",
    "ret",
    ".size memmove, . - memmove",
    ".globl memset",
    ".hidden memset",
    ".type memset,%function",
    ".p2align 4",
    "memset:",
    "mov x3, x0",
    "cbz x2, 2f",
    "1:",
    "strb w1, [x3], #1",
    "subs x2, x2, #1",
    "b.ne 1b",
    "2:",
    "ret",
    ".size memset, . - memset",
    ".globl memcmp",
    ".hidden memcmp",
    ".type memcmp,%function",
    ".globl bcmp",
    ".hidden bcmp",
    ".type bcmp,%function",
    ".p2align 4",
    "memcmp:",
    "bcmp:",
    "cbz x2, 2f",
    "1:",
    "ldrb w3, [x0], #1",
    "ldrb w4, [x1], #1",
    "subs w3, w3, w4",
    "b.ne 3f",
    "subs x2, x2, #1",
    "b.ne 1b",
    "2:",
    "mov w0, #0",
    "ret",
    "3:",
    "mov w0, w3",
    "ret",
    ".size memcmp, . - memcmp",
    ".size bcmp, . - bcmp",
    ".globl strlen",
    ".hidden strlen",
    ".type strlen,%function",
    ".p2align 4",
    "strlen:",
    "mov x1, x0",
    "1:",
    "ldrb w2, [x1], #1",
    "cbnz w2, 1b",
    "sub x0, x1, x0",
    "sub x0, x0, #1",
    "ret",
    ".size strlen, . - strlen",
    // long syscall(long number, ...): variadic arguments travel in x1-x6
    // on Linux's AAPCS64, the number goes to x8, the arguments to x0-x5.
    ".globl syscall",
    ".hidden syscall",
    ".type syscall,%function",
    ".p2align 4",
    "syscall:",
    "mov x8, x0",
    "mov x0, x1",
    "mov x1, x2",
    "mov x2, x3",
    "mov x3, x4",
    "mov x4, x5",
    "mov x5, x6",
    "svc #0",
    "cmn x0, #4095",
    "b.hs 4f",
    "ret",
    "4:",
    "stp x29, x30, [sp, #-16]!",
    "mov x29, sp",
    "neg w0, w0",
    "bl {set_errno}",
    "mov x0, #-1",
    "ldp x29, x30, [sp], #16",
    "ret",
    ".size syscall, . - syscall",
    ".popsection",
    set_errno = sym set_errno,
);

extern "C" fn write(fd: c_int, buf: *const c_void, n: usize) -> isize {
    // SAFETY: the caller's arguments, as for write(2).
    unsafe { libc::syscall(libc::SYS_write, fd, buf, n) as isize }
}

extern "C" fn sigaltstack(ss: *const libc::stack_t, old: *mut libc::stack_t) -> c_int {
    // SAFETY: the caller's arguments, as for sigaltstack(2).
    unsafe { libc::syscall(libc::SYS_sigaltstack, ss, old) as c_int }
}

extern "C" fn gettid() -> libc::pid_t {
    // SAFETY: gettid(2) takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as libc::pid_t }
}

extern "C" fn statx(
    dirfd: c_int,
    path: *const libc::c_char,
    flags: c_int,
    mask: c_uint,
    buf: *mut c_void,
) -> c_int {
    // SAFETY: the caller's arguments, as for statx(2).
    unsafe { libc::syscall(libc::SYS_statx, dirfd, path, flags, mask, buf) as c_int }
}

extern "C" fn fstat64(fd: c_int, buf: *mut libc::stat64) -> c_int {
    // SAFETY: the caller's arguments, as for fstat(2).
    unsafe { libc::syscall(libc::SYS_fstat, fd, buf) as c_int }
}

extern "C" fn stat64(path: *const libc::c_char, buf: *mut libc::stat64) -> c_int {
    // SAFETY: the caller's arguments, as for stat(2).
    unsafe { libc::syscall(libc::SYS_newfstatat, libc::AT_FDCWD, path, buf, 0) as c_int }
}

/// Defines C symbols `$name` as hidden aliases of Rust functions: the
/// library's calls to `$name` bind to them at link time and nothing is
/// exported (an exported `write` or `dlsym` would take over the whole
/// process's). `weak` for a name std references weakly (it tests such a
/// name's address for null). Also used by src/zig_imports.rs.
macro_rules! hidden_alias {
    ($($bind:ident $name:ident = $f:path;)*) => {$(
        core::arch::global_asm!(
            concat!(".", stringify!($bind), " ", stringify!($name)),
            concat!(".hidden ", stringify!($name)),
            concat!(".set ", stringify!($name), ", {f}"),
            f = sym $f,
        );
    )*};
}
// Only the zig build (src/zig_imports.rs) uses it outside this file.
#[cfg_attr(not(cgofix_llvm_libunwind), allow(unused_imports))]
pub(crate) use hidden_alias;

hidden_alias! {
    globl write = write;
    globl sigaltstack = sigaltstack;
    weak gettid = gettid;
    weak statx = statx;
    globl fstat64 = fstat64;
    globl stat64 = stat64;
}

#[cfg(test)]
mod tests {
    // In the test program, as in the library, these calls bind to the
    // definitions above (the program imports none of them).
    use libc::{c_int, c_void};

    unsafe extern "C" {
        // Not in the libc crate.
        fn bcmp(a: *const c_void, b: *const c_void, n: usize) -> c_int;
    }

    fn buf(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + 3) as u8).collect()
    }

    #[test]
    fn copies_and_fills() {
        for n in [0, 1, 7, 16, 33, 152, 4097] {
            let src = buf(n);
            let mut dst = vec![0u8; n + 2];
            // SAFETY: both buffers hold at least n bytes.
            let r = unsafe { libc::memcpy(dst.as_mut_ptr().add(1).cast(), src.as_ptr().cast(), n) };
            assert_eq!(r as usize, dst.as_ptr() as usize + 1);
            assert_eq!(&dst[1..=n], &src[..], "memcpy {n}");
            assert_eq!((dst[0], dst[n + 1]), (0, 0), "memcpy {n} wrote outside");
            // SAFETY: dst holds n + 2 bytes.
            let r = unsafe { libc::memset(dst.as_mut_ptr().add(1).cast(), 0x1ab, n) };
            assert_eq!(r as usize, dst.as_ptr() as usize + 1);
            assert!(dst[1..=n].iter().all(|&b| b == 0xab), "memset {n}");
            assert_eq!((dst[0], dst[n + 1]), (0, 0), "memset {n} wrote outside");
        }
    }

    #[test]
    fn moves_overlapping_both_ways() {
        for (n, shift) in [(0, 1), (1, 1), (10, 3), (100, 1), (100, 99), (300, 40)] {
            let orig = buf(n + shift);
            for forward in [true, false] {
                let mut b = orig.clone();
                let (d, s) = if forward { (0, shift) } else { (shift, 0) };
                // SAFETY: both ranges lie inside b (n + shift bytes).
                let r = unsafe {
                    libc::memmove(
                        b.as_mut_ptr().add(d).cast(),
                        b.as_ptr().add(s).cast::<c_void>(),
                        n,
                    )
                };
                assert_eq!(r as usize, b.as_ptr() as usize + d);
                let mut want = orig.clone();
                want.copy_within(s..s + n, d);
                assert_eq!(b, want, "memmove n={n} shift={shift} forward={forward}");
            }
        }
    }

    #[test]
    fn compares_like_libc() {
        let a = buf(64);
        for i in [0, 1, 31, 63] {
            for delta in [1u8, 0x80, 0xff] {
                let mut b = a.clone();
                b[i] = b[i].wrapping_add(delta);
                let want = a[i] as i32 - b[i] as i32;
                // SAFETY: both buffers hold 64 bytes.
                let (m, c) = unsafe {
                    (
                        libc::memcmp(a.as_ptr().cast(), b.as_ptr().cast(), 64),
                        bcmp(a.as_ptr().cast(), b.as_ptr().cast(), 64),
                    )
                };
                assert_eq!(m.signum(), want.signum(), "memcmp at {i} +{delta}");
                assert_ne!(c, 0, "bcmp at {i}");
                // SAFETY: the first i bytes are equal and in bounds.
                assert_eq!(
                    unsafe { libc::memcmp(a.as_ptr().cast(), b.as_ptr().cast(), i) },
                    0
                );
            }
        }
        // SAFETY: n = 0 reads nothing.
        assert_eq!(
            unsafe { libc::memcmp(std::ptr::null(), std::ptr::null(), 0) },
            0
        );
    }

    #[test]
    fn measures_strings() {
        for s in ["", "a", "sigaction", "0123456789abcdef0123456789abcdef!"] {
            let mut bytes = s.as_bytes().to_vec();
            bytes.extend_from_slice(b"\0tail");
            // SAFETY: a NUL-terminated buffer.
            assert_eq!(unsafe { libc::strlen(bytes.as_ptr().cast()) }, s.len());
        }
    }

    #[test]
    fn stats_like_the_kernel() {
        // A file of our own (under qemu-user, /proc/self/exe by path would
        // be the emulator).
        let path = std::env::temp_dir().join(format!("cgofix-stat-{}", std::process::id()));
        std::fs::write(&path, [7u8; 1234]).unwrap();
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: valid paths and buffers; errno is this thread's.
        unsafe {
            let mut a: libc::stat64 = std::mem::zeroed();
            let mut b: libc::stat64 = std::mem::zeroed();
            assert_eq!(libc::stat64(c.as_ptr(), &mut a), 0);
            let fd = libc::open(c.as_ptr(), libc::O_RDONLY);
            assert!(fd >= 0);
            assert_eq!(libc::fstat64(fd, &mut b), 0);
            libc::close(fd);
            assert_eq!((a.st_dev, a.st_ino, a.st_size), (b.st_dev, b.st_ino, 1234));
            assert_eq!(a.st_mode & libc::S_IFMT, libc::S_IFREG);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), 1234);
            assert_eq!(libc::stat64(c"/nonexistent/x".as_ptr(), &mut a), -1);
            assert_eq!(*libc::__errno_location(), libc::ENOENT);
            assert_eq!(libc::fstat64(-1, &mut a), -1);
            assert_eq!(*libc::__errno_location(), libc::EBADF);
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn system_calls_set_errno() {
        // SAFETY: a closed descriptor; errno is this thread's.
        unsafe {
            *libc::__errno_location() = 0;
            assert_eq!(libc::write(-1, c"x".as_ptr().cast(), 1), -1);
            assert_eq!(*libc::__errno_location(), libc::EBADF);
            assert_eq!(libc::syscall(libc::SYS_close, -1), -1);
            assert_eq!(*libc::__errno_location(), libc::EBADF);
            assert_eq!(
                libc::gettid() as libc::c_long,
                libc::syscall(libc::SYS_gettid)
            );
            // Six arguments, the last from the stack on x86_64:
            // rt_sigprocmask(SIG_BLOCK, NULL, &old, 8) ignores the rest.
            let mut old: libc::sigset_t = std::mem::zeroed();
            let r = libc::syscall(
                libc::SYS_rt_sigprocmask,
                0,
                0usize,
                &mut old,
                8usize,
                0usize,
                0usize,
            );
            assert_eq!(r, 0);
            let mut st: libc::stack_t = std::mem::zeroed();
            st.ss_flags = -1;
            assert_eq!(libc::sigaltstack(std::ptr::null(), &mut st), 0);
            assert_ne!(st.ss_flags, -1, "sigaltstack wrote nothing");
            assert_eq!(
                libc::sigaltstack(std::ptr::null(), std::ptr::dangling_mut()),
                -1
            );
            assert_eq!(*libc::__errno_location(), libc::EFAULT);
        }
    }
}

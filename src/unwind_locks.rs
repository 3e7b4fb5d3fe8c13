//! The three `pthread_rwlock_*` functions LLVM's libunwind calls, defined
//! here, hidden, for the zig build only (build.rs sets
//! `cgofix_llvm_libunwind`).
//!
//! Why: zig links LLVM's libunwind into the library, and its cache of
//! unwind tables (`DwarfFDECache`) takes a `pthread_rwlock_t`. Targeting
//! glibc 2.17, those functions live in libpthread.so.0, so the library
//! depended on it and every process in a container loaded it, even on a
//! glibc >= 2.34 where it is an empty stub (README "Performance", third
//! round). Hidden definitions bind libunwind's calls at link time: no
//! import, no `DT_NEEDED`, nothing exported (an exported `pthread_rwlock_*`
//! would take over every rwlock in the process).
//!
//! The lock is only taken while unwinding (a panic in the shim, which every
//! entry point catches) and is libunwind's own static lock, zero-filled
//! like glibc's `PTHREAD_RWLOCK_INITIALIZER`; its first word is the state
//! here. Like glibc's, a read lock asked for by the thread that holds the
//! write lock (a signal handler interrupting it) returns `EDEADLK` instead
//! of waiting forever; libunwind ignores the result either way.
use std::sync::atomic::{AtomicU32, Ordering};

const WRITER: u32 = 1 << 31;

/// The state word and the writer's thread id, at the start of the
/// caller's `pthread_rwlock_t` (56 bytes, 8-aligned).
fn words(lock: *mut libc::pthread_rwlock_t) -> (&'static AtomicU32, &'static AtomicU32) {
    // SAFETY: `lock` is libunwind's static, 8-aligned `pthread_rwlock_t`,
    // at least 8 bytes, only ever accessed through these functions.
    unsafe {
        let p = lock.cast::<AtomicU32>();
        (&*p, &*p.add(1))
    }
}

fn tid() -> u32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

extern "C" fn rdlock(lock: *mut libc::pthread_rwlock_t) -> libc::c_int {
    let (state, owner) = words(lock);
    loop {
        let s = state.load(Ordering::Relaxed);
        if s & WRITER == 0 {
            if state
                .compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return 0;
            }
            continue;
        }
        if owner.load(Ordering::Relaxed) == tid() {
            return libc::EDEADLK;
        }
        interpose::yield_now();
    }
}

extern "C" fn wrlock(lock: *mut libc::pthread_rwlock_t) -> libc::c_int {
    let (state, owner) = words(lock);
    while state
        .compare_exchange_weak(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        interpose::yield_now();
    }
    owner.store(tid(), Ordering::Relaxed);
    0
}

extern "C" fn unlock(lock: *mut libc::pthread_rwlock_t) -> libc::c_int {
    let (state, owner) = words(lock);
    if state.load(Ordering::Relaxed) == WRITER {
        owner.store(0, Ordering::Relaxed);
        state.store(0, Ordering::Release);
    } else {
        state.fetch_sub(1, Ordering::Release);
    }
    0
}

// Hidden aliases under the names libunwind calls (as interpose's `hook!`
// does for `own!`): bound inside this library at link time, never exported.
core::arch::global_asm!(
    ".globl pthread_rwlock_rdlock",
    ".hidden pthread_rwlock_rdlock",
    ".set pthread_rwlock_rdlock, {rd}",
    ".globl pthread_rwlock_wrlock",
    ".hidden pthread_rwlock_wrlock",
    ".set pthread_rwlock_wrlock, {wr}",
    ".globl pthread_rwlock_unlock",
    ".hidden pthread_rwlock_unlock",
    ".set pthread_rwlock_unlock, {un}",
    rd = sym rdlock,
    wr = sym wrlock,
    un = sym unlock,
);

//! Functions the zig build defines itself, hidden, instead of importing
//! them (build.rs sets `cgofix_llvm_libunwind` for that build only).
//!
//! Why: targeting glibc 2.17, `pthread_rwlock_*` (which LLVM's libunwind,
//! linked in by zig, calls for its cache of unwind tables) live in
//! libpthread.so.0, and `dlsym` and `dladdr` in libdl.so.2. Importing them
//! made both libraries dependencies of the shim, so every process of a
//! container loaded them, even on a glibc >= 2.34 where they are empty stubs
//! (+17k instructions and +5 page faults for libpthread, +10k and +4 for
//! libdl, a `/bin/true` start: README "Performance", third round). Hidden
//! definitions bind the library's calls at link time: no import, no
//! `DT_NEEDED`, nothing exported (an exported `pthread_rwlock_*` or `dlsym`
//! would take over the whole process's).
//!
//! # The rwlock
//!
//! Only taken while unwinding (a panic in the shim, which every entry point
//! catches), on libunwind's own static lock, zero-filled like glibc's
//! `PTHREAD_RWLOCK_INITIALIZER`; its first two words are the state and the
//! writer here. Like glibc's, a read lock asked for by the thread that
//! holds the write lock (a signal handler interrupting it) returns
//! `EDEADLK` instead of waiting forever; libunwind ignores the result
//! either way.
//!
//! # `dlsym` and `dladdr`
//!
//! Forwarded to the definition the loader would have bound the import to:
//! the first loaded object, in load order, that defines the name (libc.so.6
//! on glibc >= 2.34, else libdl.so.2 when the process loads it: Bun, Node,
//! Python and anything that calls `dlopen` link it). Called from this
//! library, the real `dlsym` sees this library as its caller, so
//! `RTLD_NEXT` means what it meant with the import.
//!
//! On a glibc < 2.34 whose process loads no libdl.so.2 (a shell, coreutils),
//! no `dlsym` exists; `RTLD_NEXT` and `RTLD_DEFAULT` are then answered from
//! the symbol tables of the loaded objects: the first definition (default
//! version) after this library, or from the program on. In such a process
//! every object is in the global scope (nothing can have been `dlopen`ed
//! without libdl), which is the order `dlsym` searches. An IFUNC is not
//! returned (its symbol is the resolver); none of the functions the shim
//! looks up is one. Any other handle came from `dlopen`, which needs libdl.
use interpose::elf;
use std::ffi::CStr;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

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

type DlsymFn = unsafe extern "C" fn(*mut libc::c_void, *const libc::c_char) -> *mut libc::c_void;
type DladdrFn = unsafe extern "C" fn(*const libc::c_void, *mut libc::Dl_info) -> libc::c_int;

static REAL_DLSYM: AtomicUsize = AtomicUsize::new(0);
static REAL_DLADDR: AtomicUsize = AtomicUsize::new(0);

/// The definition of `name` the loader would bind an import of it to (not
/// ours: this library's `dlsym` and `dladdr` are hidden), cached in `slot`;
/// 0 if none is loaded.
fn provided(slot: &AtomicUsize, name: &[u8]) -> usize {
    let p = slot.load(Ordering::Acquire);
    if p != 0 {
        return p;
    }
    let found = elf::first_definition(name, None).unwrap_or(0);
    if found != 0 {
        slot.store(found, Ordering::Release);
    }
    found
}

/// `dlsym` without libdl: see the module comment.
fn lookup_without_dlsym(handle: *mut libc::c_void, name: &[u8]) -> usize {
    let here = &REAL_DLSYM as *const AtomicUsize as usize;
    let found = if handle == libc::RTLD_NEXT {
        elf::first_definition(name, Some(here))
    } else if handle.is_null() {
        elf::first_definition(name, None)
    } else {
        None
    };
    found.unwrap_or(0)
}

unsafe extern "C" fn dlsym(
    handle: *mut libc::c_void,
    name: *const libc::c_char,
) -> *mut libc::c_void {
    match provided(&REAL_DLSYM, b"dlsym") {
        0 => {
            // SAFETY: `name` is the caller's NUL-terminated string, as dlsym requires.
            let name = unsafe { CStr::from_ptr(name) };
            lookup_without_dlsym(handle, name.to_bytes()) as *mut libc::c_void
        }
        p => {
            // SAFETY: `p` is the loaded dlsym, called with the caller's arguments.
            unsafe { std::mem::transmute::<usize, DlsymFn>(p)(handle, name) }
        }
    }
}

unsafe extern "C" fn dladdr(addr: *const libc::c_void, info: *mut libc::Dl_info) -> libc::c_int {
    match provided(&REAL_DLADDR, b"dladdr") {
        // No libdl: no name for `addr` (libunwind's `unw_get_proc_name` then
        // reports none; Rust's backtraces do not use it).
        0 => 0,
        // SAFETY: `p` is the loaded dladdr, called with the caller's arguments.
        p => unsafe { std::mem::transmute::<usize, DladdrFn>(p)(addr, info) },
    }
}

// Under the names the library calls (as interpose's `hook!` does for
// `own!`).
crate::primitives::hidden_alias! {
    globl pthread_rwlock_rdlock = rdlock;
    globl pthread_rwlock_wrlock = wrlock;
    globl pthread_rwlock_unlock = unlock;
    globl dlsym = dlsym;
    globl dladdr = dladdr;
}

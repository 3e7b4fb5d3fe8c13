//! The `dlopen` hook: learns about objects as they are loaded (Go runtimes,
//! N-API modules). Not signal-reachable.

use crate::gomods;
use interpose::{RealFn, hook};
use libc::{c_char, c_int, c_long, c_void};
use std::cell::Cell;

type DlopenFn = unsafe extern "C" fn(*const c_char, c_int) -> *mut c_void;
type DlmopenFn = unsafe extern "C" fn(c_long, *const c_char, c_int) -> *mut c_void;

static REAL_DLOPEN: RealFn<DlopenFn> = RealFn::new(c"dlopen");
static REAL_DLMOPEN: RealFn<DlmopenFn> = RealFn::new(c"dlmopen");

thread_local! {
    // const-initialised, no destructor: a plain TLS slot, no lazy
    // registration or allocation on first use.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// How many `dlopen` calls this thread is inside (library constructors run
/// within them).
pub fn depth() -> u32 {
    DEPTH.with(|d| d.get())
}

pub fn resolve() {
    REAL_DLOPEN.resolve(dlopen as DlopenFn as usize, &[]);
    REAL_DLMOPEN.resolve(dlmopen as DlmopenFn as usize, &[]);
}

/// Runs the real loader call with the depth counter raised, then looks at
/// what was loaded.
fn around<T>(call: impl FnOnce() -> *mut T) -> *mut T {
    if crate::config().is_none_or(|c| c.disable) {
        return call();
    }
    DEPTH.with(|d| d.set(d.get() + 1));
    let h = call();
    DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    if !h.is_null() {
        gomods::scan_loaded();
        crate::after_load();
    }
    h
}

fn real_dlopen() -> Option<DlopenFn> {
    REAL_DLOPEN.get().or_else(|| {
        REAL_DLOPEN.resolve(dlopen as DlopenFn as usize, &[]);
        REAL_DLOPEN.get()
    })
}

hook! {
    fn dlopen(file: *const c_char, mode: c_int) -> *mut c_void {
        body => {
            match real_dlopen() {
                // SAFETY: forwarding the caller's arguments.
                Some(f) => around(|| unsafe { f(file, mode) }),
                None => std::ptr::null_mut(),
            }
        },
        fallback => {
            match REAL_DLOPEN.get() {
                // SAFETY: forwarding the caller's arguments.
                Some(f) => unsafe { f(file, mode) },
                None => std::ptr::null_mut(),
            }
        },
    }
}

hook! {
    fn dlmopen(lmid: c_long, file: *const c_char, mode: c_int) -> *mut c_void {
        body => {
            match REAL_DLMOPEN.get() {
                // SAFETY: forwarding the caller's arguments.
                Some(f) => around(|| unsafe { f(lmid, file, mode) }),
                None => std::ptr::null_mut(),
            }
        },
        fallback => {
            match REAL_DLMOPEN.get() {
                // SAFETY: forwarding the caller's arguments.
                Some(f) => unsafe { f(lmid, file, mode) },
                None => std::ptr::null_mut(),
            }
        },
    }
}

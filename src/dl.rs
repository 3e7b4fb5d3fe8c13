//! The `dlopen` family's hooks: run the real call, then hand what was
//! loaded or unloaded to `loader.rs`, saying whether this was the outermost
//! `dlopen` on the thread. Not signal-reachable.

use crate::{loader, loading, state};
use interpose::{RealFn, hook, own};
use libc::{c_char, c_int, c_long, c_void};

type DlopenFn = unsafe extern "C" fn(*const c_char, c_int) -> *mut c_void;
type DlmopenFn = unsafe extern "C" fn(c_long, *const c_char, c_int) -> *mut c_void;
type DlcloseFn = unsafe extern "C" fn(*mut c_void) -> c_int;

static REAL_DLOPEN: RealFn<DlopenFn> = RealFn::new(c"dlopen");
static REAL_DLMOPEN: RealFn<DlmopenFn> = RealFn::new(c"dlmopen");
static REAL_DLCLOSE: RealFn<DlcloseFn> = RealFn::new(c"dlclose");

/// Runs the real loader call with the depth counter raised, then looks at
/// what was loaded.
fn around<T>(call: impl FnOnce() -> *mut T) -> *mut T {
    let Some(cfg) = state::active() else {
        return call();
    };
    if !loading::inside_dlopen() {
        loader::before_dlopen(cfg);
    }
    loading::enter();
    let h = call();
    let depth = loading::leave();
    if !h.is_null() {
        // The object is open: a bug in what follows must not make the
        // hook's fallback open it a second time.
        let _ = std::panic::catch_unwind(|| loader::after_dlopen(cfg, depth == 0));
    }
    h
}

/// The real functions are resolved at their first call (never from a
/// signal handler: none of them is async-signal-safe), not by the
/// constructor: most processes never call them, and each `dlsym` costs
/// every process start ~1k instructions.
fn real_dlopen() -> Option<DlopenFn> {
    REAL_DLOPEN.get_or_resolve(own!(dlopen), &[])
}

fn real_dlmopen() -> Option<DlmopenFn> {
    REAL_DLMOPEN.get_or_resolve(own!(dlmopen), &[])
}

fn real_dlclose() -> Option<DlcloseFn> {
    REAL_DLCLOSE.get_or_resolve(own!(dlclose), &[])
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
            match real_dlmopen() {
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

hook! {
    /// dlclose: after an object is really unmapped, forget it, so whatever
    /// the loader maps at its address later is examined and patched afresh.
    fn dlclose(handle: *mut c_void) -> c_int {
        body => {
            let Some(f) = real_dlclose() else { return -1 };
            // SAFETY: forwarding the caller's handle.
            let r = unsafe { f(handle) };
            if r == 0 && state::active().is_some() {
                // Never let the fallback close the handle a second time.
                let _ = std::panic::catch_unwind(loader::after_dlclose);
            }
            r
        },
        fallback => {
            match REAL_DLCLOSE.get() {
                // SAFETY: forwarding the caller's handle.
                Some(f) => unsafe { f(handle) },
                None => -1,
            }
        },
    }
}

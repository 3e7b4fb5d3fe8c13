//! The thread policy (`StackPolicy` and `MaskPolicy`) on `pthread_create`.
//!
//! * Stack floor: Bun's pool, Worker and HTTP threads get 4 MiB stacks; a
//!   Go callback on them (Go >= 1.21 reads the real bounds with
//!   `pthread_getattr_np`) and deep foreign handlers need more. We raise the
//!   requested size to `CGOFIX_STACK_MIN`, never shrink it, and never touch
//!   a thread whose caller supplied the stack memory (`pthread_attr_setstack`:
//!   its size is a fact, not a request).
//! * The caller's `pthread_attr_t` is never written: we pass a byte copy with
//!   a different size. A glibc attr may point to an extension block
//!   (affinity, signal mask); the copy shares it read-only, so every other
//!   property still applies, and the copy is never destroyed.
//! * Signals: all are blocked in the creator across the real call (as Go's
//!   `_cgo_sys_thread_start` does), so no handler runs on a half-made
//!   thread. glibc then starts the child with that all-blocked mask, so the
//!   child's first act, in `start_with_mask`, is to restore its creator's
//!   pre-call mask: a child left fully blocked can never be suspended by
//!   JavaScriptCore. A mask set on the attr (`pthread_attr_setsigmask_np`)
//!   is the caller's explicit choice, and glibc applies it unaided.
//!
//! Not signal-reachable (pthread_create is not async-signal-safe), but it may
//! run in constructors, forked children and many threads at once: no locks;
//! the only allocation is the child's start record, via malloc, which
//! pthread_create itself also uses.

use crate::log::Size;
use crate::{gomods, stats};
use interpose::{RealFn, hook};
use libc::{c_int, c_void, pthread_attr_t, pthread_t, sigset_t};
use std::mem::MaybeUninit;
use std::ptr;

/// "C-unwind": the caller's routine may leave through `pthread_exit` or
/// cancellation, a forced unwind that passes through `start_with_mask`.
type StartFn = unsafe extern "C-unwind" fn(*mut c_void) -> *mut c_void;
type CreateFn = unsafe extern "C" fn(
    *mut pthread_t,
    *const pthread_attr_t,
    Option<StartFn>,
    *mut c_void,
) -> c_int;
type GetSigmaskFn = unsafe extern "C" fn(*const pthread_attr_t, *mut sigset_t) -> c_int;
type GetStackaddrFn = unsafe extern "C" fn(*const pthread_attr_t, *mut *mut c_void) -> c_int;

static REAL_CREATE: RealFn<CreateFn> = RealFn::new(c"pthread_create");
/// glibc >= 2.32 only; absent elsewhere (then no attr carries a mask).
static ATTR_GETSIGMASK: RealFn<GetSigmaskFn> = RealFn::new(c"pthread_attr_getsigmask_np");
/// Deprecated in POSIX but the one call that says whether the caller set the
/// stack address (NULL when not set), which `pthread_attr_getstack` does not.
static ATTR_GETSTACKADDR: RealFn<GetStackaddrFn> = RealFn::new(c"pthread_attr_getstackaddr");

unsafe extern "C" {
    /// glibc >= 2.18; the attributes a NULL attr stands for.
    fn pthread_getattr_default_np(attr: *mut pthread_attr_t) -> c_int;
}

pub fn resolve() {
    REAL_CREATE.resolve(pthread_create as CreateFn as usize, &[]);
    ATTR_GETSIGMASK.resolve(0, &[]);
    ATTR_GETSTACKADDR.resolve(0, &[]);
}

/// The stack-size decision as a pure function: `Some(new size)` when the
/// thread must be created with a larger stack.
pub fn stack_decision(
    requested: usize,
    caller_stack: bool,
    floor: usize,
    page: usize,
) -> Option<usize> {
    if floor == 0 || caller_stack || requested >= floor {
        return None;
    }
    let page = page.max(1);
    Some(floor.div_ceil(page) * page)
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as usize } else { 4096 }
}

/// What the child needs before running the caller's code.
#[repr(C)]
struct StartRecord {
    start: StartFn,
    arg: *mut c_void,
    mask: sigset_t,
}

unsafe extern "C-unwind" fn start_with_mask(p: *mut c_void) -> *mut c_void {
    let rec = p as *mut StartRecord;
    // SAFETY: `p` is the record `create` malloc'ed and initialised for this
    // thread only; we read it, free it, restore the mask, then run the
    // caller's routine. Its return value flows back to pthread_join, and
    // pthread_exit/cancellation unwind through here like any frame.
    unsafe {
        let StartRecord { start, arg, mask } = ptr::read(rec);
        libc::free(rec as *mut c_void);
        libc::pthread_sigmask(libc::SIG_SETMASK, &mask, ptr::null_mut());
        start(arg)
    }
}

/// Does `attr` carry a caller-chosen signal mask?
fn attr_has_sigmask(attr: *const pthread_attr_t) -> bool {
    let (Some(get), false) = (ATTR_GETSIGMASK.get(), attr.is_null()) else {
        return false;
    };
    let mut s = MaybeUninit::<sigset_t>::uninit();
    // SAFETY: attr is a valid initialised attr (caller contract); s is
    // writable storage.
    let r = unsafe { get(attr, s.as_mut_ptr()) };
    r == 0
}

/// Did the caller supply the stack memory?
fn attr_has_stack(attr: *const pthread_attr_t) -> bool {
    let Some(get) = ATTR_GETSTACKADDR.get() else {
        return false;
    };
    let mut addr: *mut c_void = ptr::null_mut();
    // SAFETY: attr is a valid initialised attr; addr is writable.
    unsafe { get(attr, &mut addr) == 0 && !addr.is_null() }
}

/// # Safety
/// As pthread_create(3).
unsafe fn create(
    real: CreateFn,
    thread: *mut pthread_t,
    attr: *const pthread_attr_t,
    start: Option<StartFn>,
    arg: *mut c_void,
) -> c_int {
    let Some(cfg) = crate::config().filter(|c| !c.disable) else {
        // SAFETY: pass-through.
        return unsafe { real(thread, attr, start, arg) };
    };
    stats::THREADS_CREATED.inc();
    if crate::dlopen_depth() > 0 {
        // A library constructor is starting a thread (a Go runtime's init
        // thread, which will install Go's handlers): learn its code range
        // before it runs.
        gomods::scan_loaded();
    }

    // --- stack floor, on a private copy of the attributes ---
    let mut copy = MaybeUninit::<pthread_attr_t>::uninit();
    let mut use_attr = attr;
    let mut fresh = false; // `copy` came from pthread_getattr_default_np
    if cfg.stack_min > 0 {
        let mut size: usize = 0;
        let ok = if attr.is_null() {
            // SAFETY: initialises `copy` from the process defaults.
            fresh = unsafe { pthread_getattr_default_np(copy.as_mut_ptr()) } == 0;
            // SAFETY: `copy` is initialised when `fresh`.
            fresh && unsafe { libc::pthread_attr_getstacksize(copy.as_ptr(), &mut size) } == 0
        } else {
            // SAFETY: caller's attr is initialised (their contract).
            unsafe { libc::pthread_attr_getstacksize(attr, &mut size) == 0 }
        };
        let caller_stack = !attr.is_null() && attr_has_stack(attr);
        if let (true, Some(new)) = (
            ok,
            stack_decision(size, caller_stack, cfg.stack_min, page_size()),
        ) {
            if !attr.is_null() {
                // SAFETY: a byte copy of an initialised attr; it is never
                // destroyed, so a shared extension block is never freed.
                unsafe { ptr::copy_nonoverlapping(attr, copy.as_mut_ptr(), 1) };
            }
            // SAFETY: `copy` is initialised (either branch above).
            if unsafe { libc::pthread_attr_setstacksize(copy.as_mut_ptr(), new) } == 0 {
                use_attr = copy.as_ptr();
                stats::STACK_RAISED.inc();
                crate::log!(Debug, "thread {} -> {}", Size(size), Size(new));
            }
        }
    }

    // --- signal mask ---
    let result = if let (true, false, Some(start)) = (cfg.sigmask, attr_has_sigmask(attr), start) {
        // SAFETY: see each step.
        unsafe { create_masked(real, thread, use_attr, start, arg) }
    } else {
        // SAFETY: forwarding with possibly a larger-stack copy of the attr.
        unsafe { real(thread, use_attr, start, arg) }
    };
    if fresh {
        // SAFETY: `copy` was initialised by pthread_getattr_default_np and
        // owns its extension (if any).
        unsafe { libc::pthread_attr_destroy(copy.as_mut_ptr()) };
    }
    result
}

/// # Safety
/// As pthread_create(3).
unsafe fn create_masked(
    real: CreateFn,
    thread: *mut pthread_t,
    attr: *const pthread_attr_t,
    start: StartFn,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: malloc of a plain struct; checked for NULL below.
    let rec = unsafe { libc::malloc(size_of::<StartRecord>()) } as *mut StartRecord;
    if rec.is_null() {
        // SAFETY: without memory for the record, behave as without the shim.
        return unsafe { real(thread, attr, Some(start), arg) };
    }
    let mut all = MaybeUninit::<sigset_t>::uninit();
    let mut old = MaybeUninit::<sigset_t>::uninit();
    // SAFETY: valid writable sigsets; pthread_sigmask only fails on bad `how`.
    unsafe {
        libc::sigfillset(all.as_mut_ptr());
        libc::pthread_sigmask(libc::SIG_SETMASK, all.as_ptr(), old.as_mut_ptr());
        ptr::write(
            rec,
            StartRecord {
                start,
                arg,
                mask: old.assume_init(),
            },
        );
    }
    // SAFETY: forwarding; the record is handed to the child on success.
    let r = unsafe { real(thread, attr, Some(start_with_mask), rec as *mut c_void) };
    // SAFETY: restoring the mask saved above; on failure the child never
    // ran, so the record is still ours to free.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, old.as_ptr(), ptr::null_mut());
        if r != 0 {
            libc::free(rec as *mut c_void);
        }
    }
    r
}

/// Fallback when libc's pthread_create was not resolved before the first call
/// (a constructor that ran before ours): resolve now, outside any signal
/// handler since pthread_create is not async-signal-safe anyway.
fn real_create() -> Option<CreateFn> {
    REAL_CREATE.get().or_else(|| {
        REAL_CREATE.resolve(pthread_create as CreateFn as usize, &[]);
        REAL_CREATE.get()
    })
}

hook! {
    fn pthread_create(
        thread: *mut pthread_t,
        attr: *const pthread_attr_t,
        start: Option<StartFn>,
        arg: *mut c_void,
    ) -> c_int {
        body => {
            match real_create() {
                // SAFETY: caller's contract is pthread_create's.
                Some(real) => unsafe { create(real, thread, attr, start, arg) },
                None => libc::EAGAIN,
            }
        },
        fallback => {
            match REAL_CREATE.get() {
                // SAFETY: plain pass-through.
                Some(real) => unsafe { real(thread, attr, start, arg) },
                None => libc::EAGAIN,
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const M: usize = 1 << 20;

    #[test]
    fn floor_raises_small_requests_only() {
        assert_eq!(stack_decision(64 << 10, false, 8 * M, 4096), Some(8 * M));
        assert_eq!(stack_decision(4 * M, false, 8 * M, 4096), Some(8 * M));
        assert_eq!(stack_decision(8 * M, false, 8 * M, 4096), None);
        assert_eq!(stack_decision(24 * M, false, 8 * M, 4096), None);
    }

    #[test]
    fn caller_stack_and_off_are_untouched() {
        assert_eq!(stack_decision(256 << 10, true, 8 * M, 4096), None);
        assert_eq!(stack_decision(64 << 10, false, 0, 4096), None);
    }

    #[test]
    fn rounds_to_pages() {
        assert_eq!(
            stack_decision(1, false, 8 * M + 1, 4096),
            Some(8 * M + 4096)
        );
        assert_eq!(stack_decision(1, false, 100_000, 65536), Some(131072));
    }
}

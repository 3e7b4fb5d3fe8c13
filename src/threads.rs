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
//! run in constructors, forked children and many threads at once: no locks,
//! and no allocation on the common path. The child's start record comes from
//! a static lock-free pool: with malloc, the child's free() would set up
//! that thread's malloc cache and flush it at exit, ~500 instructions per
//! thread (measured with callgrind). Only when all pool slots are in flight
//! does the record come from malloc.

use crate::lazy_table::LazyTable;
use crate::log::Size;
use crate::{loading, registry, state, stats};
use interpose::{RealFn, hook, own, page_size};
use libc::{c_int, c_void, pthread_attr_t, pthread_t, sigset_t};
use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

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

type GetDefaultFn = unsafe extern "C" fn(*mut pthread_attr_t) -> c_int;
/// glibc >= 2.18: the attributes a NULL attr stands for. Looked up, not
/// linked: a direct reference is an unversioned import in the glibc-2.17
/// build (zig's 2.17 stubs lack it) that fails the load under `-z now` on
/// a glibc that lacks it. Without it there is no `pthread_setattr_default_np`
/// either, so a fresh attr *is* the default.
static ATTR_GETDEFAULT: RealFn<GetDefaultFn> = RealFn::new(c"pthread_getattr_default_np");

type AttrFn = unsafe extern "C" fn(*mut pthread_attr_t) -> c_int;
type GetStacksizeFn = unsafe extern "C" fn(*const pthread_attr_t, *mut usize) -> c_int;
type SetStacksizeFn = unsafe extern "C" fn(*mut pthread_attr_t, usize) -> c_int;
type SigmaskFn = unsafe extern "C" fn(c_int, *const sigset_t, *mut sigset_t) -> c_int;

// libc functions only this file calls, looked up at the first
// `pthread_create` the way the loader would bind them
// (`RealFn::resolve_global`), not imported: each import is a symbol lookup
// in every process start, threads or not (README "Performance").
static ATTR_INIT: RealFn<AttrFn> = RealFn::new(c"pthread_attr_init");
static ATTR_DESTROY: RealFn<AttrFn> = RealFn::new(c"pthread_attr_destroy");
static ATTR_GETSTACKSIZE: RealFn<GetStacksizeFn> = RealFn::new(c"pthread_attr_getstacksize");
static ATTR_SETSTACKSIZE: RealFn<SetStacksizeFn> = RealFn::new(c"pthread_attr_setstacksize");
static SIGMASK: RealFn<SigmaskFn> = RealFn::new(c"pthread_sigmask");

/// Resolves the real functions; called at the first `pthread_create`, not
/// from the constructor (see `real_create`).
fn resolve() {
    REAL_CREATE.resolve(own!(pthread_create), &[]);
    ATTR_GETSIGMASK.resolve(0, &[]);
    ATTR_GETSTACKADDR.resolve(0, &[]);
    ATTR_GETDEFAULT.resolve(0, &[]);
    ATTR_INIT.resolve_global();
    ATTR_DESTROY.resolve_global();
    ATTR_GETSTACKSIZE.resolve_global();
    ATTR_SETSTACKSIZE.resolve_global();
    SIGMASK.resolve_global();
}

/// The libc helpers the policy calls, all resolved, or `None` (the policy
/// then stands aside: without them it cannot work on a copy of the attr).
#[derive(Clone, Copy)]
struct Helpers {
    init: AttrFn,
    destroy: AttrFn,
    getstacksize: GetStacksizeFn,
    setstacksize: SetStacksizeFn,
    sigmask: SigmaskFn,
}

fn helpers() -> Option<Helpers> {
    Some(Helpers {
        init: ATTR_INIT.get()?,
        destroy: ATTR_DESTROY.get()?,
        getstacksize: ATTR_GETSTACKSIZE.get()?,
        setstacksize: ATTR_SETSTACKSIZE.get()?,
        sigmask: SIGMASK.get()?,
    })
}

/// A full signal set, as glibc's `sigfillset` makes it, without importing
/// it: every bit set but glibc's two internal signals (32, 33), which
/// `pthread_sigmask` would drop anyway.
fn all_signals() -> sigset_t {
    let mut set = MaybeUninit::<sigset_t>::uninit();
    let words = size_of::<sigset_t>() / size_of::<u64>();
    // SAFETY: sigset_t is an array of `words` 64-bit words on Linux (bit
    // n-1 of the first words is signal n), all written here.
    unsafe {
        let w = set.as_mut_ptr() as *mut u64;
        for i in 0..words {
            w.add(i).write(!0);
        }
        *w &= !(3u64 << 31);
        set.assume_init()
    }
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

/// The stack size a NULL attr stands for (glibc: a fresh attr reports the
/// process default, `pthread_setattr_default_np` included).
fn default_stack_size(h: Helpers) -> usize {
    let mut a = MaybeUninit::<pthread_attr_t>::uninit();
    let mut size = 0usize;
    // SAFETY: init/get/destroy on our own attr; a fresh attr owns nothing.
    unsafe {
        if (h.init)(a.as_mut_ptr()) != 0 {
            return 0;
        }
        (h.getstacksize)(a.as_ptr(), &mut size);
        (h.destroy)(a.as_mut_ptr());
    }
    size
}

/// What the child needs before running the caller's code.
#[repr(C)]
struct StartRecord {
    start: StartFn,
    arg: *mut c_void,
    mask: sigset_t,
}

const POOL_SLOTS: usize = 128;

/// Start records in flight, creator -> child. A slot is claimed with a CAS
/// on `busy` and released by the child once it has copied the record out.
/// A forked child may inherit slots claimed by threads that do not exist in
/// it; they stay busy, which at worst sends records to malloc.
struct RecordPool {
    busy: [AtomicBool; POOL_SLOTS],
    recs: [UnsafeCell<MaybeUninit<StartRecord>>; POOL_SLOTS],
    hint: AtomicUsize,
}

// SAFETY: a record slot is only touched by the thread that claimed it (via
// `busy`) and then by the one child it was handed to.
unsafe impl Sync for RecordPool {}

// SAFETY: an all-zero pool has every slot free (`busy` false, `hint` 0,
// records uninitialised). Mapped at the first `pthread_create`, not a
// static (`LazyTable`, README "Performance").
static POOL: LazyTable<RecordPool, 1> = unsafe { LazyTable::new() };

/// A start record from the pool, or a malloc'ed one, or null.
fn claim_record() -> *mut StartRecord {
    match POOL.get_or_map() {
        Some([pool]) => pool.claim(),
        // SAFETY: malloc of a plain struct; the caller checks for null.
        None => unsafe { libc::malloc(size_of::<StartRecord>()) as *mut StartRecord },
    }
}

/// Returns a record obtained from `claim_record`.
fn release_record(rec: *mut StartRecord) {
    match POOL.get() {
        Some([pool]) => pool.release(rec),
        // SAFETY: no pool, so it came from malloc in `claim_record`.
        None => unsafe { libc::free(rec as *mut c_void) },
    }
}

impl RecordPool {
    /// A free slot's record pointer, or a malloc'ed one, or null.
    fn claim(&self) -> *mut StartRecord {
        let first = self.hint.fetch_add(1, Ordering::Relaxed);
        for k in 0..POOL_SLOTS {
            let i = (first + k) % POOL_SLOTS;
            if !self.busy[i].load(Ordering::Relaxed)
                && self.busy[i]
                    .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return self.recs[i].get() as *mut StartRecord;
            }
        }
        // SAFETY: malloc of a plain struct; the caller checks for null.
        unsafe { libc::malloc(size_of::<StartRecord>()) as *mut StartRecord }
    }

    /// Returns a record obtained from `claim`.
    fn release(&self, rec: *mut StartRecord) {
        let base = self.recs.as_ptr() as usize;
        let at = rec as usize;
        let size = size_of::<UnsafeCell<MaybeUninit<StartRecord>>>();
        if at >= base && at < base + POOL_SLOTS * size {
            self.busy[(at - base) / size].store(false, Ordering::Release);
        } else {
            // SAFETY: not a pool slot, so it came from malloc in `claim`.
            unsafe { libc::free(rec as *mut c_void) };
        }
    }
}

unsafe extern "C-unwind" fn start_with_mask(p: *mut c_void) -> *mut c_void {
    let rec = p as *mut StartRecord;
    // SAFETY: `p` is the record `create_masked` claimed and initialised for
    // this thread only; we copy it out, release it, restore the mask, then
    // run the caller's routine. Its return value flows back to pthread_join,
    // and pthread_exit/cancellation unwind through here like any frame.
    unsafe {
        let StartRecord { start, arg, mask } = ptr::read(rec);
        release_record(rec);
        // Resolved: `create_masked` only runs with every helper.
        if let Some(sigmask) = SIGMASK.get() {
            sigmask(libc::SIG_SETMASK, &mask, ptr::null_mut());
        }
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
    let (Some(cfg), Some(h)) = (state::active(), helpers()) else {
        // SAFETY: pass-through.
        return unsafe { real(thread, attr, start, arg) };
    };
    stats::THREADS_CREATED.inc();
    if loading::inside_dlopen() {
        // A library constructor is starting a thread (a Go runtime's init
        // thread, which will install Go's handlers): learn its code range
        // before it runs.
        registry::classify_loaded();
    }

    // --- stack floor, on a private copy of the attributes ---
    let mut copy = MaybeUninit::<pthread_attr_t>::uninit();
    let mut use_attr = attr;
    let mut fresh = false; // `copy` holds the process defaults
    if cfg.stack_min > 0 {
        let mut size: usize = 0;
        let ok = if attr.is_null() {
            // The process default size, cheaply: a fresh attr reports it.
            // Only when it must be raised do we copy the full defaults.
            let default = default_stack_size(h);
            if stack_decision(default, false, cfg.stack_min, page_size()).is_some() {
                fresh = match ATTR_GETDEFAULT.get() {
                    // SAFETY: initialises `copy` from the process defaults.
                    Some(get_default) => (unsafe { get_default(copy.as_mut_ptr()) }) == 0,
                    // SAFETY: initialises `copy` (glibc < 2.18: the defaults).
                    None => (unsafe { (h.init)(copy.as_mut_ptr()) }) == 0,
                };
                // SAFETY: `copy` is initialised when `fresh`.
                fresh && unsafe { (h.getstacksize)(copy.as_ptr(), &mut size) } == 0
            } else {
                false
            }
        } else {
            // SAFETY: caller's attr is initialised (their contract).
            unsafe { (h.getstacksize)(attr, &mut size) == 0 }
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
            if unsafe { (h.setstacksize)(copy.as_mut_ptr(), new) } == 0 {
                use_attr = copy.as_ptr();
                stats::STACK_RAISED.inc();
                crate::log!(Debug, "thread {} -> {}", Size(size), Size(new));
            }
        }
    }

    // --- signal mask ---
    let result = if let (true, false, Some(start)) = (cfg.sigmask, attr_has_sigmask(attr), start) {
        // SAFETY: see each step.
        unsafe { create_masked(real, h, thread, use_attr, start, arg) }
    } else {
        // SAFETY: forwarding with possibly a larger-stack copy of the attr.
        unsafe { real(thread, use_attr, start, arg) }
    };
    if fresh {
        // SAFETY: `copy` was initialised by pthread_getattr_default_np and
        // owns its extension (if any).
        unsafe { (h.destroy)(copy.as_mut_ptr()) };
    }
    result
}

/// # Safety
/// As pthread_create(3).
unsafe fn create_masked(
    real: CreateFn,
    h: Helpers,
    thread: *mut pthread_t,
    attr: *const pthread_attr_t,
    start: StartFn,
    arg: *mut c_void,
) -> c_int {
    let rec = claim_record();
    if rec.is_null() {
        // SAFETY: without memory for the record, behave as without the shim.
        return unsafe { real(thread, attr, Some(start), arg) };
    }
    let all = all_signals();
    let mut old = MaybeUninit::<sigset_t>::uninit();
    // SAFETY: valid writable sigsets; pthread_sigmask only fails on bad `how`.
    unsafe {
        (h.sigmask)(libc::SIG_SETMASK, &all, old.as_mut_ptr());
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
    // SAFETY: restoring the mask saved above.
    unsafe { (h.sigmask)(libc::SIG_SETMASK, old.as_ptr(), ptr::null_mut()) };
    if r != 0 {
        // The child never ran: the record is still ours.
        release_record(rec);
    }
    r
}

/// libc's pthread_create, resolved (with the attr helpers) at the first
/// call: outside any signal handler since pthread_create is not
/// async-signal-safe, and never in the processes that create no thread
/// (four `dlsym` calls fewer in every process start; a constructor that
/// runs before ours is served the same way).
fn real_create() -> Option<CreateFn> {
    REAL_CREATE.get().or_else(|| {
        resolve();
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
    fn record_pool_falls_back_to_malloc_and_recycles() {
        let pool = RecordPool {
            busy: [const { AtomicBool::new(false) }; POOL_SLOTS],
            recs: [const { UnsafeCell::new(MaybeUninit::uninit()) }; POOL_SLOTS],
            hint: AtomicUsize::new(0),
        };
        let base = pool.recs.as_ptr() as usize;
        let end = base + size_of_val(&pool.recs);
        let in_pool = |p: *mut StartRecord| (base..end).contains(&(p as usize));
        let recs: Vec<_> = (0..POOL_SLOTS + 10).map(|_| pool.claim()).collect();
        assert!(recs.iter().all(|p| !p.is_null()));
        assert_eq!(recs.iter().filter(|p| in_pool(**p)).count(), POOL_SLOTS);
        let mut distinct = recs.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), recs.len(), "a slot handed out twice");
        for r in &recs {
            pool.release(*r);
        }
        assert!(pool.busy.iter().all(|b| !b.load(Ordering::Relaxed)));
        assert!(in_pool(pool.claim()), "released slots are reused");
    }

    #[test]
    fn all_signals_is_sigfillset() {
        let mut want = MaybeUninit::<sigset_t>::uninit();
        // SAFETY: a writable sigset.
        assert_eq!(unsafe { libc::sigfillset(want.as_mut_ptr()) }, 0);
        // SAFETY: initialised above.
        let want = unsafe { want.assume_init() };
        let got = all_signals();
        for sig in 1..=64 {
            // SAFETY: valid sigsets, valid signal numbers.
            let (g, w) = unsafe { (libc::sigismember(&got, sig), libc::sigismember(&want, sig)) };
            assert_eq!(g, w, "signal {sig}");
        }
        // SAFETY: as above.
        assert_eq!(unsafe { libc::sigismember(&got, 32) }, 0);
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

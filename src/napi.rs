//! The N-API hook: a per-module wrapper for `napi_queue_async_work`,
//! installed by rewriting the module's own GOT slot.
//!
//! Bun (and Node) define `napi_queue_async_work` in the executable, which the
//! dynamic linker searches before any preload, so exporting a function of
//! that name does nothing (docs/background.md §3). After each `dlopen` the
//! loaded object's own GOT slot for it is rewritten instead (the technique of
//! the plthook library, https://github.com/kubo/plthook).
//!
//! Each module gets its own wrapper (`queue_async_work::<N>`, one
//! monomorphised function per registry slot), so the wrapper knows which
//! module called it without inspecting return addresses. The wrapper counts
//! the call and gives the Go init hook its chance (`goinit.rs`).
//!
//! Limit: calls an addon makes from its own ELF constructors happen inside
//! the real `dlopen`, before the rewrite, and are not seen. N-API modules are
//! registered after `dlopen` returns (`napi_register_module_v1` is looked up
//! and called by the host), so in practice every async work is seen.
//!
//! Not signal-reachable.

use crate::registry::{self, MAX_TRACKED};
use crate::{goinit, stats};
use interpose::elf::LoadedObject;
use interpose::got;
use libc::{c_int, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

type QueueFn = unsafe extern "C" fn(*mut c_void, *mut c_void) -> c_int;

pub const SYMBOL: &[u8] = b"napi_queue_async_work";
/// `napi_generic_failure`, for the impossible case of no real function.
const NAPI_GENERIC_FAILURE: c_int = 9;
static REAL_QUEUE: AtomicUsize = AtomicUsize::new(0);

/// The wrapper for module slot `N`.
unsafe extern "C" fn queue_async_work<const N: usize>(
    env: *mut c_void,
    work: *mut c_void,
) -> c_int {
    let _ = std::panic::catch_unwind(|| {
        stats::NAPI_ASYNC_CALLS.inc();
        registry::slot(N).calls.fetch_add(1, Ordering::Relaxed);
        goinit::on_async_work(N);
    });
    let real = REAL_QUEUE.load(Ordering::Acquire);
    if real == 0 {
        return NAPI_GENERIC_FAILURE;
    }
    // SAFETY: `real` is the host's napi_queue_async_work (dlsym), called with
    // the caller's own arguments.
    unsafe { std::mem::transmute::<usize, QueueFn>(real)(env, work) }
}

/// The wrapper for module slot `slot`. A `match`, not a table of function
/// pointers: a table was 64 pointers for the loader to relocate in every
/// process start and 512 bytes of RELRO data (README "Performance",
/// fourth round); LLVM turns the match into position-relative offsets.
fn wrapper(slot: usize) -> Option<usize> {
    macro_rules! pick {
        ($($n:literal)*) => {
            match slot {
                $($n => queue_async_work::<$n> as QueueFn as usize,)*
                _ => return None,
            }
        };
    }
    const _: () = assert!(MAX_TRACKED == 64, "one wrapper per tracked slot");
    Some(pick!(
        0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
        32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63
    ))
}

/// The host's `napi_queue_async_work`, looked up once it exists (the host
/// may not be an N-API host at all: then 0 and nothing is patched).
fn real() -> usize {
    if REAL_QUEUE.load(Ordering::Acquire) == 0 {
        // SAFETY: dlsym with a constant name; the executable's definition
        // (Bun, Node) is found first in the default scope.
        let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"napi_queue_async_work".as_ptr()) };
        REAL_QUEUE.store(p as usize, Ordering::Release);
    }
    REAL_QUEUE.load(Ordering::Acquire)
}

/// Looks up the host's function before the registry lock is taken (`dlsym`
/// takes the loader lock, which must never be waited for under it).
pub fn prepare() -> bool {
    real() != 0
}

/// What patching one object did.
pub struct Patch {
    /// Some slot now calls the wrapper (or already did).
    pub patched: bool,
    /// `mprotect` refused to make a slot writable (errno): the module keeps
    /// the host's function there and works, unseen by the Go init hook.
    pub protect_errno: Option<i32>,
}

/// Points `obj`'s GOT slots for `napi_queue_async_work` at `slot`'s wrapper.
/// Call only after `prepare()` returned true.
pub fn patch(obj: &LoadedObject, slot: usize) -> Patch {
    let Some(wrapper) = wrapper(slot) else {
        return Patch {
            patched: false,
            protect_errno: None,
        };
    };
    let result = got::patch_imports(obj, SYMBOL, wrapper);
    let stats = result.stats().unwrap_or_default();
    Patch {
        patched: stats.slots_written + stats.already_patched > 0,
        protect_errno: match result {
            got::PatchResult::ProtectFailed { errno, .. } => Some(errno),
            _ => None,
        },
    }
}

/// Whether `obj` imports the symbol (it would have been patched).
pub fn imports(obj: &LoadedObject) -> bool {
    got::imports(obj, SYMBOL)
}

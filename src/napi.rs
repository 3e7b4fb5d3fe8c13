//! The N-API hook and the Go init hook.
//!
//! Bun (and Node) define `napi_queue_async_work` in the executable, which the
//! dynamic linker searches before any preload, so exporting a function of
//! that name does nothing. After each `dlopen` we instead rewrite the loaded
//! object's own GOT slot for it (BACKGROUND.md §3, the plthook technique).
//!
//! Each module gets its own wrapper (`queue_async_work::<N>`, one
//! monomorphised function per table slot), so the wrapper knows which module
//! called it without inspecting return addresses. On a Go module's first
//! call the Go init hook runs on that (JS) thread, exactly once.
//!
//! Limit: calls an addon makes from its own ELF constructors happen inside
//! the real `dlopen`, before the rewrite, and are not seen. N-API modules
//! are registered after `dlopen` returns (`napi_register_module_v1` is looked
//! up and called by the host), so in practice every async work is seen.
//!
//! Not signal-reachable. The table is written only under `TABLE_LOCK` (a spin
//! lock reset in forked children) and read with atomics.

use crate::stats;
use interpose::elf::{self, LoadedObject};
use interpose::got;
use libc::{c_int, c_void};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};

type QueueFn = unsafe extern "C" fn(*mut c_void, *mut c_void) -> c_int;
type WaitFn = unsafe extern "C" fn() -> usize;

/// `napi_generic_failure`, for the impossible case of no real function.
const NAPI_GENERIC_FAILURE: c_int = 9;
pub const MAX_MODULES: usize = 64;

/// Go init hook states, as reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum InitState {
    Pending = 0,
    Running = 1,
    Ran = 2,
    Skipped = 3,
    Failed = 4,
    NotGo = 5,
}

impl InitState {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => InitState::Running,
            2 => InitState::Ran,
            3 => InitState::Skipped,
            4 => InitState::Failed,
            5 => InitState::NotGo,
            _ => InitState::Pending,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            InitState::Ran => "ran",
            InitState::Failed => "failed",
            InitState::NotGo => "not-go",
            // Pending at exit: the module never entered Go through N-API.
            InitState::Skipped | InitState::Pending | InitState::Running => "skipped",
        }
    }
}

/// What the report says about one module.
#[derive(Clone, Debug)]
pub struct ModuleInfo {
    pub base: usize,
    /// The wrapper slot while loaded; `None` once unloaded (or beyond
    /// `MAX_MODULES`).
    pub slot: Option<usize>,
    pub live: bool,
    pub path: String,
    pub go_version: Option<String>,
    pub buildmode: Option<String>,
    pub napi_patched: bool,
    pub init: InitState,
    pub napi_async_calls: u64,
}

struct Slot {
    calls: AtomicU64,
    state: AtomicU8,
    wait: AtomicUsize,
    /// A Go object opened directly (not an N-API module): its init hook
    /// runs when the outermost `dlopen` returns.
    direct: AtomicBool,
}

static SLOTS: [Slot; MAX_MODULES] = [const {
    Slot {
        calls: AtomicU64::new(0),
        state: AtomicU8::new(InitState::NotGo as u8),
        wait: AtomicUsize::new(0),
        direct: AtomicBool::new(false),
    }
}; MAX_MODULES];
static REAL_QUEUE: AtomicUsize = AtomicUsize::new(0);

/// The descriptive table, touched only at `dlopen` and at exit: the modules
/// we report, and every object already examined (by load address; an
/// object loaded at the address of a dlclose'd one is not re-examined).
#[derive(Default)]
struct Tables {
    modules: Vec<ModuleInfo>,
    /// Load addresses of the live objects already examined.
    seen: Vec<usize>,
    /// Wrapper slots given back by unloaded modules, and the next unused.
    free_slots: Vec<usize>,
    next_slot: usize,
}
struct Table(UnsafeCell<Tables>);
// SAFETY: every access goes through `with_table`, which holds TABLE_LOCK.
unsafe impl Sync for Table {}
static TABLE: Table = Table(UnsafeCell::new(Tables {
    modules: Vec::new(),
    seen: Vec::new(),
    free_slots: Vec::new(),
    next_slot: 0,
}));
static TABLE_LOCK: AtomicBool = AtomicBool::new(false);

fn with_table<R>(f: impl FnOnce(&mut Tables) -> R) -> R {
    while TABLE_LOCK
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::thread::yield_now();
    }
    struct Unlock;
    impl Drop for Unlock {
        fn drop(&mut self) {
            TABLE_LOCK.store(false, Ordering::Release);
        }
    }
    let _u = Unlock;
    // SAFETY: TABLE_LOCK is held, so this is the only reference.
    f(unsafe { &mut *TABLE.0.get() })
}

extern "C" fn reset_after_fork() {
    // The child has one thread: whoever held the lock in the parent is gone.
    TABLE_LOCK.store(false, Ordering::Release);
}

pub fn init() {
    // SAFETY: registering a plain function; pthread_atfork does not call it now.
    unsafe { libc::pthread_atfork(None, None, Some(reset_after_fork)) };
}

/// The wrapper for module slot `N`.
unsafe extern "C" fn queue_async_work<const N: usize>(
    env: *mut c_void,
    work: *mut c_void,
) -> c_int {
    match std::panic::catch_unwind(|| on_queue(N)) {
        Ok(()) | Err(_) => {}
    }
    let real = REAL_QUEUE.load(Ordering::Acquire);
    if real == 0 {
        return NAPI_GENERIC_FAILURE;
    }
    // SAFETY: `real` is the host's napi_queue_async_work (dlsym), called with
    // the caller's own arguments.
    unsafe { std::mem::transmute::<usize, QueueFn>(real)(env, work) }
}

macro_rules! wrappers {
    ($($n:literal)*) => { [$(queue_async_work::<$n> as QueueFn),*] };
}
static WRAPPERS: [QueueFn; MAX_MODULES] = wrappers!(
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
    32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63
);

fn on_queue(slot: usize) {
    stats::NAPI_ASYNC_CALLS.inc();
    let s = &SLOTS[slot];
    s.calls.fetch_add(1, Ordering::Relaxed);
    if s.state.load(Ordering::Acquire) == InitState::Pending as u8 {
        run_go_init(slot);
    }
}

/// Runs the Go init hook for `slot` exactly once; concurrent callers wait
/// for the winner to finish.
fn run_go_init(slot: usize) {
    let s = &SLOTS[slot];
    let pending = InitState::Pending as u8;
    match s.state.compare_exchange(
        pending,
        InitState::Running as u8,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => {
            let wait = s.wait.load(Ordering::Acquire);
            let ran = std::panic::catch_unwind(|| {
                if wait != 0 {
                    // SAFETY: the module's exported `_cgo_wait_runtime_init_done`,
                    // which takes no arguments; every exported Go function calls
                    // it first, so calling it from a C thread is its normal use.
                    unsafe { std::mem::transmute::<usize, WaitFn>(wait)() };
                }
                crate::recheck_suspend_signals()
            });
            // "failed": the suspend handler could not be repaired.
            let state = if ran.unwrap_or(false) {
                InitState::Ran
            } else {
                InitState::Failed
            };
            s.state.store(state as u8, Ordering::Release);
            if state == InitState::Failed {
                // The suspend handler still carries SA_ONSTACK: the hang
                // this shim exists to prevent is possible again.
                crate::log!(
                    Warn,
                    "Go init hook for module {slot} failed: the suspend signal's handler could not be repaired"
                );
            } else {
                crate::log!(Debug, "Go init hook for module {slot}: {}", state.as_str());
            }
        }
        Err(_) => {
            while s.state.load(Ordering::Acquire) == InitState::Running as u8 {
                std::thread::yield_now();
            }
        }
    }
}

fn path_of(obj: &LoadedObject) -> String {
    String::from_utf8_lossy(obj.name_bytes()).into_owned()
}

/// Looks at every object loaded now; new ones are identified, patched and,
/// when a Go object was opened directly (not an N-API module), get the Go
/// init hook at once.
pub fn after_dlopen() {
    let Some(cfg) = crate::config() else { return };
    if REAL_QUEUE.load(Ordering::Acquire) == 0 {
        // SAFETY: dlsym with a constant name; the executable's definition
        // (Bun, Node) is found first in the default scope.
        let p =
            unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"napi_queue_async_work".as_ptr()) } as usize;
        REAL_QUEUE.store(p, Ordering::Release);
    }
    let real = REAL_QUEUE.load(Ordering::Acquire);
    let mut first = true;
    with_table(|table| {
        elf::for_each_object(|obj| {
            // Skip the executable: it is loaded before us and is the host.
            if std::mem::take(&mut first) || obj.name_bytes().is_empty() {
                return true;
            }
            if table.seen.contains(&obj.base) {
                return true;
            }
            table.seen.push(obj.base);
            let is_go = elf::is_go_object(obj);
            if is_go {
                crate::gomods::register_object(obj);
            }
            // Reading the version scans the object's data: only when someone
            // will read it (the exit report or debug logging).
            let describe =
                cfg.report.is_some() || crate::log::enabled(crate::config::LogLevel::Debug);
            let version = if is_go && describe {
                elf::go_version_from_memory(obj)
            } else {
                None
            };
            let buildmode = version
                .and_then(|v| elf::go_modinfo_from_memory(obj, v))
                .and_then(|m| {
                    let m = String::from_utf8_lossy(m);
                    let at = m.find("-buildmode=")? + "-buildmode=".len();
                    Some(m[at..].split(['\n', ' ', '\t']).next()?.to_string())
                });
            let mut patched = false;
            let slot = match table.free_slots.pop() {
                Some(s) => s,
                None => {
                    table.next_slot += 1;
                    table.next_slot - 1
                }
            };
            if cfg.napi && real != 0 && slot < MAX_MODULES {
                let result =
                    got::patch_imports(obj, b"napi_queue_async_work", WRAPPERS[slot] as usize);
                let stats = result.stats().unwrap_or_default();
                patched = stats.slots_written + stats.already_patched > 0;
                if let got::PatchResult::ProtectFailed { errno, .. } = result {
                    // The module still works (its slot keeps the host's
                    // function), but the Go init hook will not run from it.
                    crate::log!(
                        Warn,
                        "could not patch napi_queue_async_work in {} (mprotect errno {errno})",
                        path_of(obj)
                    );
                } else if patched {
                    crate::log!(
                        Debug,
                        "patched napi_queue_async_work in {} ({})",
                        path_of(obj),
                        version.map_or("not Go", |v| std::str::from_utf8(v).unwrap_or("go?"))
                    );
                }
            } else if slot >= MAX_MODULES && (is_go || got::imports(obj, b"napi_queue_async_work"))
            {
                // Only objects we would have patched are worth a line:
                // unrelated libraries must not make the shim noisy.
                crate::log!(
                    Warn,
                    "more than {MAX_MODULES} modules: {} not patched",
                    path_of(obj)
                );
            }
            if !is_go && !patched {
                // Neither Go nor N-API: not ours to report; keep the slot.
                if slot < MAX_MODULES {
                    table.free_slots.push(slot);
                }
                return true;
            }
            let state = match (is_go, cfg.go_init) {
                (false, _) => InitState::NotGo,
                (true, false) => InitState::Skipped,
                (true, true) => InitState::Pending,
            };
            if slot < MAX_MODULES {
                let s = &SLOTS[slot];
                s.calls.store(0, Ordering::Relaxed);
                let wait = elf::lookup_dynsym(obj, b"_cgo_wait_runtime_init_done").unwrap_or(0);
                s.wait.store(wait, Ordering::Release);
                s.state.store(state as u8, Ordering::Release);
                let is_napi_module = elf::lookup_dynsym(obj, b"napi_register_module_v1").is_some();
                s.direct.store(
                    state == InitState::Pending && !is_napi_module,
                    Ordering::Release,
                );
            }
            let path = path_of(obj);
            let row = ModuleInfo {
                base: obj.base,
                slot: (slot < MAX_MODULES).then_some(slot),
                live: true,
                path,
                go_version: version.map(|v| String::from_utf8_lossy(v).into_owned()),
                buildmode,
                napi_patched: patched,
                init: state,
                napi_async_calls: 0,
            };
            // The same file loaded again after a dlclose: one row, counts
            // added up.
            match table
                .modules
                .iter_mut()
                .find(|m| !m.live && m.path == row.path)
            {
                Some(old) => {
                    let calls = old.napi_async_calls;
                    let was = old.init;
                    *old = row;
                    old.napi_async_calls = calls;
                    if was == InitState::Ran && old.init == InitState::Pending {
                        old.init = InitState::Ran;
                    }
                }
                None => table.modules.push(row),
            }
            true
        });
    });
    // Outside the lock: waiting for a Go runtime can take a while. And only
    // from the outermost dlopen: a nested one (a library constructor opening
    // a Go library) still holds the loader lock, which the Go runtime's own
    // init thread may need, so waiting there could deadlock.
    if crate::dl::depth() == 0 {
        for (slot, s) in SLOTS.iter().enumerate() {
            if s.direct.load(Ordering::Acquire)
                && s.state.load(Ordering::Acquire) == InitState::Pending as u8
            {
                run_go_init(slot);
            }
        }
    }
}

/// After a successful `dlclose`: modules no longer mapped keep their row
/// (counts so far) but give back their wrapper slot, and their address is
/// forgotten, so an object loaded there later is examined afresh.
pub fn after_dlclose() {
    let mut present = Vec::new();
    elf::for_each_object(|obj| {
        present.push(obj.base);
        true
    });
    with_table(|t| {
        t.seen.retain(|b| present.contains(b));
        for m in t.modules.iter_mut().filter(|m| m.live) {
            if present.contains(&m.base) {
                continue;
            }
            m.live = false;
            if let Some(slot) = m.slot.take() {
                let s = &SLOTS[slot];
                m.napi_async_calls += s.calls.swap(0, Ordering::Relaxed);
                let state = InitState::from_u8(s.state.load(Ordering::Acquire));
                if state != InitState::Pending || m.init != InitState::Ran {
                    m.init = state;
                }
                s.state.store(InitState::NotGo as u8, Ordering::Release);
                s.direct.store(false, Ordering::Release);
                t.free_slots.push(slot);
            }
        }
    });
    crate::gomods::forget_unloaded(&present);
}

/// A snapshot for the exit report.
pub fn modules() -> Vec<ModuleInfo> {
    with_table(|t| {
        t.modules
            .iter()
            .map(|m| {
                let mut m = m.clone();
                if let Some(s) = m.slot.map(|i| &SLOTS[i]) {
                    m.napi_async_calls += s.calls.load(Ordering::Relaxed);
                    m.init = InitState::from_u8(s.state.load(Ordering::Acquire));
                }
                m
            })
            .collect()
    })
}

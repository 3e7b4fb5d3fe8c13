//! The one table of loaded objects the shim knows about.
//!
//! Three views of the same objects, each with the access discipline its
//! readers need:
//!
//! * **Entries** (`ENTRIES`): every object classified so far, by load
//!   address, with its code range when it is a Go object and whether the
//!   `dlopen` path has examined it (patched, described). Readers are
//!   lock-free: [`is_go_code`] is SIGNAL-REACHABLE (the sigaction policy and
//!   the suspend trampoline ask it). Writers are serialised by `LOCK`.
//! * **Slots** (`SLOTS`): up to [`MAX_TRACKED`] Go or N-API objects get a
//!   slot index, which selects their `napi_queue_async_work` wrapper
//!   (`napi.rs`) and holds their Go-init state (`goinit.rs`). Atomics only.
//! * **Rows** (`ROWS`): what the exit report says about each tracked object
//!   (path, Go version, ...), kept after `dlclose` with its counts. Touched
//!   only at `dlopen`, `dlclose` and exit, under `LOCK`.
//!
//! `LOCK` is a spin lock (reset in forked children, once a process has used
//! it), never held across a
//! call that can take the loader's `dl_load_lock`: only `dl_iterate_phdr`
//! (which takes `dl_load_write_lock`) and reads of mapped ELF data happen
//! under it, so a library constructor that creates a thread inside `dlopen`
//! cannot deadlock against another thread's `dlopen` bookkeeping.

use crate::lazy_table::LazyTable;
use interpose::elf::{self, LoadedObject};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};

/// Objects that can be classified (Go or not). Beyond this, objects are
/// treated as foreign code and re-examined on every scan.
pub const CAPACITY: usize = 256;
/// Objects that can get an N-API wrapper and a Go-init state.
pub const MAX_TRACKED: usize = 64;

/// An entry no longer in use (its object was unloaded); reusable.
/// Zero, so that a freshly mapped table is all free (`LazyTable`: mapped
/// at the first classification, not a static, README "Performance").
const FREE: usize = 0;

struct Entry {
    /// Load address; `FREE` (0) when unused. Only the non-PIE executable
    /// has base 0, and it is never a Go library nor classified.
    base: AtomicUsize,
    /// Go code range, `[start, end)`; start 0 when not Go. Published end
    /// first, then start, so a reader that sees a start sees its end.
    go_start: AtomicUsize,
    go_end: AtomicUsize,
    /// The `dlopen` path has patched and described it.
    examined: AtomicBool,
}

// SAFETY: an all-zero Entry is a free entry (atomics; FREE is 0).
static ENTRIES: LazyTable<Entry, CAPACITY> = unsafe { LazyTable::new() };
/// Entries ever used: the prefix readers scan.
static HIGH: AtomicUsize = AtomicUsize::new(0);

/// Go init hook states, as reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum InitState {
    /// Zero: the state of a slot in a freshly mapped table.
    NotGo = 0,
    Pending = 1,
    Running = 2,
    Ran = 3,
    Skipped = 4,
    Failed = 5,
}

impl InitState {
    pub fn from_u8(v: u8) -> Self {
        match v {
            0 => InitState::NotGo,
            2 => InitState::Running,
            3 => InitState::Ran,
            4 => InitState::Skipped,
            5 => InitState::Failed,
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

/// The live state of one tracked object.
pub struct Slot {
    /// `napi_queue_async_work` calls through this slot's wrapper.
    pub calls: AtomicU64,
    /// An `InitState`.
    pub state: AtomicU8,
    /// The object's `_cgo_wait_runtime_init_done`, or 0.
    pub wait: AtomicUsize,
    /// A Go object opened directly (not an N-API module): its init hook runs
    /// when the outermost `dlopen` returns.
    pub direct: AtomicBool,
}

// SAFETY: an all-zero Slot is an untracked one (no calls, NotGo, no wait).
// Mapped when the first object gets a slot (`take_slot`), not a static
// (`LazyTable`, README "Performance").
static SLOTS: LazyTable<Slot, MAX_TRACKED> = unsafe { LazyTable::new() };

/// Slot `i`. Only indices `take_slot` handed out are backed by the table;
/// any other reads and writes a slot of its own that nothing reports.
pub fn slot(i: usize) -> &'static Slot {
    static UNTRACKED: Slot = Slot {
        calls: AtomicU64::new(0),
        state: AtomicU8::new(InitState::NotGo as u8),
        wait: AtomicUsize::new(0),
        direct: AtomicBool::new(false),
    };
    SLOTS.get().and_then(|t| t.get(i)).unwrap_or(&UNTRACKED)
}

pub fn slots() -> impl Iterator<Item = (usize, &'static Slot)> {
    SLOTS.get().into_iter().flat_map(|t| t.iter().enumerate())
}

/// What the report says about one tracked object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub base: usize,
    /// The slot while loaded; `None` once unloaded (or beyond `MAX_TRACKED`).
    pub slot: Option<usize>,
    pub live: bool,
    pub path: String,
    pub go_version: Option<String>,
    pub buildmode: Option<String>,
    pub napi_patched: bool,
    pub init: InitState,
    pub napi_async_calls: u64,
}

/// The rows and the slot allocator.
#[derive(Default)]
pub struct Rows {
    rows: Vec<Row>,
    /// Slots given back by unloaded objects, and the next never used.
    free_slots: Vec<usize>,
    next_slot: usize,
}

impl Rows {
    pub const fn new() -> Self {
        Rows {
            rows: Vec::new(),
            free_slots: Vec::new(),
            next_slot: 0,
        }
    }

    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// A free slot, or `None` when all `MAX_TRACKED` are in use.
    pub fn take_slot(&mut self) -> Option<usize> {
        // No table (mmap failed): no slot, as when all are taken.
        SLOTS.get_or_map()?;
        self.free_slots.pop().or_else(|| {
            (self.next_slot < MAX_TRACKED).then(|| {
                self.next_slot += 1;
                self.next_slot - 1
            })
        })
    }

    pub fn give_back(&mut self, slot: usize) {
        self.free_slots.push(slot);
    }

    /// Adds a row. The same file loaded again after a `dlclose` keeps one
    /// row: counts add up, and a hook that ran before is still reported as run.
    pub fn add(&mut self, row: Row) {
        match self.rows.iter_mut().find(|m| !m.live && m.path == row.path) {
            Some(old) => {
                let calls = old.napi_async_calls;
                let was = old.init;
                *old = row;
                old.napi_async_calls += calls;
                if was == InitState::Ran && old.init == InitState::Pending {
                    old.init = InitState::Ran;
                }
            }
            None => self.rows.push(row),
        }
    }

    /// After a `dlclose`: rows of objects no longer at an address in
    /// `present` stop being live, take their final counts and state from
    /// their slot (`settle`), and give the slot back.
    pub fn unloaded(&mut self, present: &[usize], settle: impl Fn(usize) -> (u64, InitState)) {
        for m in self.rows.iter_mut().filter(|m| m.live) {
            if present.contains(&m.base) {
                continue;
            }
            m.live = false;
            if let Some(slot) = m.slot.take() {
                let (calls, state) = settle(slot);
                m.napi_async_calls += calls;
                if state != InitState::Pending || m.init != InitState::Ran {
                    m.init = state;
                }
                self.free_slots.push(slot);
            }
        }
    }

    /// The rows, with live ones completed by `current(slot)`.
    pub fn snapshot(&self, current: impl Fn(usize) -> (u64, InitState)) -> Vec<Row> {
        self.rows
            .iter()
            .map(|m| {
                let mut m = m.clone();
                if let Some(slot) = m.slot {
                    let (calls, state) = current(slot);
                    m.napi_async_calls += calls;
                    m.init = state;
                }
                m
            })
            .collect()
    }
}

struct Shared(UnsafeCell<Rows>);
// SAFETY: every access goes through `locked`, which holds LOCK.
unsafe impl Sync for Shared {}
static ROWS: Shared = Shared(UnsafeCell::new(Rows::new()));
static LOCK: AtomicBool = AtomicBool::new(false);

/// Runs `f` with the writer lock held: the only way to change entries or
/// touch the rows.
pub fn locked<R>(f: impl FnOnce(&mut Rows) -> R) -> R {
    reset_in_forked_children();
    while LOCK
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        interpose::yield_now();
    }
    struct Unlock;
    impl Drop for Unlock {
        fn drop(&mut self) {
            LOCK.store(false, Ordering::Release);
        }
    }
    let _u = Unlock;
    // SAFETY: LOCK is held, so this is the only reference.
    f(unsafe { &mut *ROWS.0.get() })
}

extern "C" fn reset_after_fork() {
    // The child has one thread: whoever held the lock in the parent is gone.
    LOCK.store(false, Ordering::Release);
}

unsafe extern "C" {
    /// What `pthread_atfork` is (glibc's libc_nonshared.a wrapper passes
    /// its caller's `__dso_handle`), in libc.so.6 since glibc 2.3.2. Called
    /// directly because the zig build targeting glibc 2.17 finds
    /// `pthread_atfork` in libpthread.so.0, and that dependency alone made
    /// every process load libpthread (README "Performance", third round).
    fn __register_atfork(
        prepare: Option<unsafe extern "C" fn()>,
        parent: Option<unsafe extern "C" fn()>,
        child: Option<unsafe extern "C" fn()>,
        dso_handle: *const u8,
    ) -> libc::c_int;
    static __dso_handle: u8;
}

/// 0: not registered, 1: being registered, 2: registered.
static ATFORK: AtomicU8 = AtomicU8::new(0);

/// Registers `reset_after_fork` before the lock is first taken, not in the
/// constructor: most processes a container starts (shells, git, compilers)
/// never take it, and a registered child handler costs every `fork` page
/// faults in the child (it runs the shim's code and writes its data:
/// ~3 faults per fork in a bash spawn storm, perf record). Until the lock
/// has been taken once, no fork can inherit it held.
fn reset_in_forked_children() {
    if ATFORK.load(Ordering::Acquire) == 2 {
        return;
    }
    if ATFORK
        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        // SAFETY: registering a plain function; __register_atfork does not
        // call it now, and `__dso_handle` is this library's (lld defines it).
        unsafe { __register_atfork(None, None, Some(reset_after_fork), &raw const __dso_handle) };
        ATFORK.store(2, Ordering::Release);
        return;
    }
    // Another thread is registering: nobody may hold the lock before the
    // handler is in place.
    while ATFORK.load(Ordering::Acquire) != 2 {
        std::hint::spin_loop();
    }
}

/// The entry for `base`, if classified. Lock-free.
fn find(base: usize) -> Option<&'static Entry> {
    if base == FREE {
        return None;
    }
    let n = HIGH.load(Ordering::Acquire).min(CAPACITY);
    ENTRIES.get()?[..n]
        .iter()
        .find(|e| e.base.load(Ordering::Acquire) == base)
}

/// Classifies an object at `base` with Go code range `go` (`None`: not Go),
/// once. Returns its entry, or `None` when the table is full.
/// Caller holds `LOCK`.
fn insert(base: usize, go: Option<(usize, usize)>) -> Option<&'static Entry> {
    if base == FREE {
        return None;
    }
    if let Some(e) = find(base) {
        return Some(e);
    }
    let n = HIGH.load(Ordering::Acquire);
    let entries = ENTRIES.get_or_map()?;
    let e = match entries[..n.min(CAPACITY)]
        .iter()
        .find(|e| e.base.load(Ordering::Acquire) == FREE)
    {
        Some(e) => e,
        None if n < CAPACITY => {
            HIGH.store(n + 1, Ordering::Release);
            &entries[n]
        }
        None => return None,
    };
    // Start (the field readers test) is 0 from `forget`/initially; publish
    // the range end first, then the start, then the base.
    e.examined.store(false, Ordering::Release);
    let (s, end) = go.unwrap_or((0, 0));
    e.go_end.store(end, Ordering::Release);
    e.go_start.store(s, Ordering::Release);
    e.base.store(base, Ordering::Release);
    Some(e)
}

/// Whether `addr` lies in a Go object's code. Async-signal-safe (atomic
/// loads over a table mapped once). An entry being reused for a newly loaded
/// object may be missed for the instant of its rewrite; that object's own
/// handlers are not installed yet.
pub fn is_go_code(addr: usize) -> bool {
    let n = HIGH.load(Ordering::Acquire).min(CAPACITY);
    let Some(entries) = ENTRIES.get() else {
        return false;
    };
    entries[..n].iter().any(|e| {
        let s = e.go_start.load(Ordering::Acquire);
        s != 0 && addr >= s && addr < e.go_end.load(Ordering::Acquire)
    })
}

/// The code range of `obj` if it is a Go object.
fn go_range(obj: &LoadedObject) -> Option<(usize, usize)> {
    elf::is_go_object(obj)
        .then(|| elf::text_range(obj))
        .filter(|r| r.0 != 0)
}

/// Classifies every loaded object not seen yet, so Go handlers are known
/// before they are installed: from the constructor, and when a thread is
/// created inside `dlopen` (a Go library's constructor starting its
/// runtime's init thread, where `initsig` runs before our `dlopen` hook
/// regains control). Not signal-safe (`dl_iterate_phdr`).
pub fn classify_loaded() {
    locked(|_| {
        elf::for_each_object(|obj| {
            // The executable (base 0 when not PIE) is never a Go library.
            if obj.base != 0 && find(obj.base).is_none() {
                insert(obj.base, go_range(obj));
            }
            true
        });
    });
}

/// What `for_each_new` tells its callback about an object.
pub struct NewObject<'a> {
    pub obj: &'a LoadedObject,
    pub is_go: bool,
}

/// Calls `f` once for every loaded library (not the executable) that the
/// `dlopen` path has not examined yet, with the lock held; classifies it
/// first if needed. Objects beyond `CAPACITY` are passed every time.
pub fn for_each_new(mut f: impl FnMut(&mut Rows, NewObject<'_>)) {
    locked(|rows| {
        let mut first = true;
        elf::for_each_object(|obj| {
            // dl_iterate_phdr reports the executable first: it is the host.
            if std::mem::take(&mut first) || obj.name_bytes().is_empty() {
                return true;
            }
            let entry = match find(obj.base) {
                Some(e) => Some(e),
                None => insert(obj.base, go_range(obj)),
            };
            let is_go = match entry {
                Some(e) if e.examined.swap(true, Ordering::AcqRel) => return true,
                Some(e) => e.go_start.load(Ordering::Acquire) != 0,
                None => go_range(obj).is_some(),
            };
            f(rows, NewObject { obj, is_go });
            true
        });
    });
}

/// After a `dlclose`: objects no longer mapped are forgotten (an object
/// loaded at their address later is classified afresh), their rows settled
/// and their slots released (`settle` reads and resets a slot).
pub fn after_dlclose(settle: impl Fn(usize) -> (u64, InitState)) {
    let mut present = Vec::new();
    elf::for_each_object(|obj| {
        present.push(obj.base);
        true
    });
    locked(|rows| {
        forget_absent(&present);
        rows.unloaded(&present, settle);
    });
}

/// Caller holds `LOCK`.
fn forget_absent(present: &[usize]) {
    let n = HIGH.load(Ordering::Acquire).min(CAPACITY);
    let Some(entries) = ENTRIES.get() else {
        return;
    };
    for e in &entries[..n] {
        let b = e.base.load(Ordering::Acquire);
        if b != FREE && !present.contains(&b) {
            // Start first: readers stop matching the range before the
            // entry can be reused.
            e.go_start.store(0, Ordering::Release);
            e.base.store(FREE, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The static entry table is process-wide; these tests use addresses no
    // real object has and run one at a time (each forgets what it added).
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn classify_dedupe_and_forget() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        locked(|_| {
            let a = insert(0x100, Some((0x1000, 0x2000))).unwrap();
            let again = insert(0x100, Some((0x5000, 0x6000))).unwrap();
            assert!(std::ptr::eq(a, again), "one entry per load address");
            assert_eq!(a.go_start.load(Ordering::Acquire), 0x1000, "first wins");
            insert(0x200, None).unwrap();
        });
        assert!(is_go_code(0x1000) && is_go_code(0x1fff));
        assert!(!is_go_code(0x2000) && !is_go_code(0xfff));
        // 0x100 unloaded, 0x200 still there (plus every real object).
        let mut present = vec![0x200];
        elf::for_each_object(|o| {
            present.push(o.base);
            true
        });
        locked(|_| forget_absent(&present));
        assert!(!is_go_code(0x1000), "unloaded range still Go");
        assert!(find(0x100).is_none() && find(0x200).is_some());
        // Reopened at the same address: classified afresh, entry reused.
        let used = HIGH.load(Ordering::Acquire);
        locked(|_| insert(0x100, Some((0x3000, 0x3100))));
        assert!(is_go_code(0x3000) && !is_go_code(0x1000));
        assert_eq!(HIGH.load(Ordering::Acquire), used, "freed entry reused");
    }

    fn row(base: usize, path: &str, slot: Option<usize>) -> Row {
        Row {
            base,
            slot,
            live: true,
            path: path.to_string(),
            go_version: Some("go1.27.3".into()),
            buildmode: Some("c-shared".into()),
            napi_patched: true,
            init: InitState::Pending,
            napi_async_calls: 0,
        }
    }

    #[test]
    fn rows_reopen_and_dlclose() {
        let mut rows = Rows::new();
        let s = rows.take_slot().unwrap();
        rows.add(row(0xa000, "/m/addon.node", Some(s)));
        // Live rows read their slot.
        let snap = rows.snapshot(|_| (7, InitState::Ran));
        assert_eq!(snap[0].napi_async_calls, 7);
        assert_eq!(snap[0].init, InitState::Ran);
        // dlclose: row settled, slot given back and reused.
        rows.unloaded(&[0xb000], |_| (7, InitState::Ran));
        let snap = rows.snapshot(|_| unreachable!("no live rows"));
        assert_eq!((snap[0].live, snap[0].slot), (false, None));
        assert_eq!(rows.take_slot(), Some(s));
        // Reopened elsewhere: one row, counts add up, still "ran".
        rows.add(row(0xc000, "/m/addon.node", Some(s)));
        let snap = rows.snapshot(|_| (3, InitState::Pending));
        assert_eq!(snap.len(), 1);
        assert_eq!(snap[0].napi_async_calls, 10);
        assert_eq!(snap[0].base, 0xc000);
        // A different file is a new row.
        rows.add(row(0xd000, "/m/other.node", None));
        assert_eq!(rows.snapshot(|_| (0, InitState::Pending)).len(), 2);
    }

    #[test]
    fn more_than_max_tracked() {
        let mut rows = Rows::new();
        let slots: Vec<_> = (0..100).map(|_| rows.take_slot()).collect();
        assert!(slots[..MAX_TRACKED].iter().all(Option::is_some));
        assert!(slots[MAX_TRACKED..].iter().all(Option::is_none));
        for (i, s) in slots.iter().enumerate() {
            rows.add(row(0x10_0000 + i, &format!("/m/{i}.node"), *s));
        }
        assert_eq!(rows.snapshot(|_| (0, InitState::Pending)).len(), 100);
        // Closing one frees exactly one slot.
        let present: Vec<usize> = (1..100).map(|i| 0x10_0000 + i).collect();
        rows.unloaded(&present, |_| (0, InitState::NotGo));
        assert_eq!(rows.take_slot(), Some(0));
        assert_eq!(rows.take_slot(), None);
    }

    #[test]
    fn entries_beyond_capacity_are_refused_not_corrupted() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let base = 0x40_0000;
        locked(|_| {
            let mut got = 0;
            for i in 0..CAPACITY + 10 {
                if insert(base + i, Some((base + i * 16, base + i * 16 + 8))).is_some() {
                    got += 1;
                }
            }
            assert!(got <= CAPACITY);
        });
        assert!(HIGH.load(Ordering::Acquire) <= CAPACITY);
        let mut present = Vec::new();
        elf::for_each_object(|o| {
            present.push(o.base);
            true
        });
        locked(|_| forget_absent(&present));
        assert!(!is_go_code(base));
    }
}

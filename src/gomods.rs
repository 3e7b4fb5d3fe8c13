//! Which code belongs to a Go runtime, so that Go's own handlers pass the
//! signal policy unchanged.
//!
//! A fixed table of code ranges, filled outside signal context (constructor,
//! after `dlopen`, and when a thread is created while a `dlopen` is running:
//! a Go library's constructor starts the runtime's init thread, and `initsig`
//! runs there, before our `dlopen` wrapper regains control). Lookups are
//! lock-free and async-signal-safe (SIGNAL-REACHABLE: `is_go_code`).

use interpose::elf;
use std::sync::atomic::{AtomicUsize, Ordering};

const SLOTS: usize = 32;
static STARTS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
/// The load address of each range's object, to forget it after dlclose.
static BASES: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static ENDS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static USED: AtomicUsize = AtomicUsize::new(0);

/// Records a Go object's code range (idempotent). Publication order: the end
/// is written before the start, and readers skip slots whose start is 0.
fn register(base: usize, start: usize, end: usize) {
    let n = USED.load(Ordering::Acquire).min(SLOTS);
    if (0..n).any(|i| STARTS[i].load(Ordering::Acquire) == start) {
        return;
    }
    let i = USED.fetch_add(1, Ordering::AcqRel);
    if i >= SLOTS {
        return; // more than 32 Go runtimes: treat the rest as foreign
    }
    BASES[i].store(base, Ordering::Release);
    ENDS[i].store(end, Ordering::Release);
    STARTS[i].store(start, Ordering::Release);
}

/// After a dlclose: ranges and addresses of objects no longer in
/// `present` (the live load addresses) are dropped, so an object mapped
/// there later is classified afresh. A dropped range slot is not reused.
pub fn forget_unloaded(present: &[usize]) {
    let n = USED.load(Ordering::Acquire).min(SLOTS);
    for i in 0..n {
        if !present.contains(&BASES[i].load(Ordering::Acquire)) {
            STARTS[i].store(0, Ordering::Release);
        }
    }
    let n = SEEN_USED.load(Ordering::Acquire).min(SEEN_SLOTS);
    for slot in &SEEN[..n] {
        if !present.contains(&slot.load(Ordering::Acquire)) {
            slot.store(usize::MAX, Ordering::Release);
        }
    }
}

/// Async-signal-safe.
pub fn is_go_code(addr: usize) -> bool {
    let n = USED.load(Ordering::Acquire).min(SLOTS);
    (0..n).any(|i| {
        let s = STARTS[i].load(Ordering::Acquire);
        s != 0 && addr >= s && addr < ENDS[i].load(Ordering::Acquire)
    })
}

/// Objects already classified (by load address), so repeated scans cost one
/// comparison per object. A full table only means re-classifying.
const SEEN_SLOTS: usize = 256;
static SEEN: [AtomicUsize; SEEN_SLOTS] = [const { AtomicUsize::new(0) }; SEEN_SLOTS];
static SEEN_USED: AtomicUsize = AtomicUsize::new(0);

fn seen_before(base: usize) -> bool {
    let n = SEEN_USED.load(Ordering::Acquire).min(SEEN_SLOTS);
    if (0..n).any(|i| SEEN[i].load(Ordering::Acquire) == base) {
        return true;
    }
    let i = SEEN_USED.fetch_add(1, Ordering::AcqRel);
    if i < SEEN_SLOTS {
        SEEN[i].store(base, Ordering::Release);
    }
    false
}

/// Scans every loaded object and registers the Go ones. Not signal-safe
/// (dl_iterate_phdr takes the loader's list lock), fine from a constructor,
/// a `dlopen` wrapper or `pthread_create`.
pub fn scan_loaded() {
    elf::for_each_object(|obj| {
        // The executable (base 0 when not PIE) is never a Go library.
        if obj.base == 0 || seen_before(obj.base) {
            return true;
        }
        if elf::is_go_object(obj) {
            register_object(obj);
        }
        true
    });
}

/// Records `obj`, known to be a Go object, as Go code.
pub fn register_object(obj: &elf::LoadedObject) {
    let (s, e) = elf::text_range(obj);
    if s != 0 {
        register(obj.base, s, e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        register(0x100, 0x1000, 0x2000);
        register(0x100, 0x1000, 0x2000);
        assert!(is_go_code(0x1000) && is_go_code(0x1fff));
        assert!(!is_go_code(0x2000) && !is_go_code(0xfff));
        forget_unloaded(&[0x200]);
        assert!(!is_go_code(0x1000), "unloaded range still Go");
    }
}

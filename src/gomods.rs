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
static ENDS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static USED: AtomicUsize = AtomicUsize::new(0);

/// Records a Go object's code range (idempotent). Publication order: the end
/// is written before the start, and readers skip slots whose start is 0.
fn register(start: usize, end: usize) {
    let n = USED.load(Ordering::Acquire).min(SLOTS);
    if (0..n).any(|i| STARTS[i].load(Ordering::Acquire) == start) {
        return;
    }
    let i = USED.fetch_add(1, Ordering::AcqRel);
    if i >= SLOTS {
        return; // more than 32 Go runtimes: treat the rest as foreign
    }
    ENDS[i].store(end, Ordering::Release);
    STARTS[i].store(start, Ordering::Release);
}

/// Async-signal-safe.
pub fn is_go_code(addr: usize) -> bool {
    let n = USED.load(Ordering::Acquire).min(SLOTS);
    (0..n).any(|i| {
        let s = STARTS[i].load(Ordering::Acquire);
        s != 0 && addr >= s && addr < ENDS[i].load(Ordering::Acquire)
    })
}

/// Scans every loaded object and registers the Go ones. Not signal-safe
/// (dl_iterate_phdr takes the loader's list lock), fine from a constructor,
/// a `dlopen` wrapper or `pthread_create`.
pub fn scan_loaded() {
    elf::for_each_object(|obj| {
        if elf::is_go_object(obj) {
            let (s, e) = elf::text_range(obj);
            if s != 0 {
                register(s, e);
            }
        }
        true
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        register(0x1000, 0x2000);
        register(0x1000, 0x2000);
        assert!(is_go_code(0x1000) && is_go_code(0x1fff));
        assert!(!is_go_code(0x2000) && !is_go_code(0xfff));
    }
}

//! A fixed-size table that costs a process nothing until it is first
//! needed: its memory is mapped (zero-filled) at first use instead of
//! being a static.
//!
//! Why: the two large tables (the registry's entries, 8 KiB; the thread
//! start records, 18 KiB) made `.bss` larger than the rest of the library's
//! last data page, so the loader mapped an anonymous region for it in every
//! process, and wherever the linker put small statics written at start-up
//! (std's among them) behind the tables, one more page was faulted in
//! (`perf record -e page-faults`; README "Performance", fourth round).
//! Most processes that load the library (a shell's children) never create
//! a thread or classify an object. The trampoline's per-signal records
//! (1.5 KiB) followed in the sixth round: with them, `.data` and `.bss`
//! did not fit one page.
//!
//! Mapped with the raw `mmap` system call: async-signal-safe and lock-free.
//! Concurrent first users race with a compare-and-swap; the loser unmaps
//! its copy. A failed mapping leaves the table absent, which each user
//! treats as "full". Never unmapped.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicPtr, Ordering};

pub struct LazyTable<T, const N: usize> {
    ptr: AtomicPtr<[T; N]>,
    _owns: PhantomData<[T; N]>,
}

// SAFETY: the table is only handed out as a shared reference to `T`s that
// are themselves shared between threads (atomics, or cells whose users
// synchronise); the pointer is published with release/acquire.
unsafe impl<T: Sync, const N: usize> Sync for LazyTable<T, N> {}

impl<T, const N: usize> LazyTable<T, N> {
    /// # Safety
    /// An all-zero `[T; N]` must be a valid value (atomics, `MaybeUninit`).
    pub const unsafe fn new() -> Self {
        LazyTable {
            ptr: AtomicPtr::new(std::ptr::null_mut()),
            _owns: PhantomData,
        }
    }

    /// The table, if it has been mapped. Async-signal-safe.
    pub fn get(&'static self) -> Option<&'static [T; N]> {
        // SAFETY: non-null only once a zero-filled, never unmapped mapping
        // of the right size was published (`get_or_map`); zero is a valid
        // `[T; N]` (contract of `new`).
        unsafe { self.ptr.load(Ordering::Acquire).as_ref() }
    }

    /// The table, mapped now if it was not; `None` if `mmap` fails.
    /// Async-signal-safe.
    pub fn get_or_map(&'static self) -> Option<&'static [T; N]> {
        if let Some(t) = self.get() {
            return Some(t);
        }
        let len = size_of::<[T; N]>();
        // SAFETY: an anonymous private mapping; the kernel zero-fills it.
        let p = unsafe {
            libc::syscall(
                libc::SYS_mmap,
                0usize,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0usize,
            )
        };
        if p == -1 || p == 0 {
            return None;
        }
        let fresh = p as *mut [T; N];
        if let Err(won) = self.ptr.compare_exchange(
            std::ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // Another thread mapped it first: use theirs, drop ours.
            // SAFETY: our own mapping, never published.
            unsafe { libc::syscall(libc::SYS_munmap, p, len) };
            // SAFETY: as in `get`.
            return unsafe { won.as_ref() };
        }
        // SAFETY: as in `get`.
        unsafe { fresh.as_ref() }
    }
}

#[cfg(test)]
mod tests {
    use super::LazyTable;
    use std::sync::atomic::{AtomicUsize, Ordering};

    // SAFETY: zero is a valid AtomicUsize.
    static T: LazyTable<AtomicUsize, 1000> = unsafe { LazyTable::new() };

    #[test]
    fn mapped_once_at_first_use_zeroed() {
        assert!(T.get().is_none());
        let seen: Vec<usize> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| s.spawn(|| T.get_or_map().unwrap().as_ptr() as usize))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
        let t = T.get().unwrap();
        assert!(t.iter().all(|a| a.load(Ordering::Relaxed) == 0));
        t[999].store(7, Ordering::Relaxed);
        assert_eq!(T.get_or_map().unwrap()[999].load(Ordering::Relaxed), 7);
    }
}

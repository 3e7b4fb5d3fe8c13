//! Counters for the exit report: relaxed atomics, safe from any context.
//!
//! They count only when a report was asked for (`CGOFIX_REPORT`, switched
//! on by the constructor before any hook applies its policy). Otherwise
//! `inc` writes nothing: a write to the shim's data in a forked child (bash
//! resets its handlers between `fork` and `exec`, and the policy adds
//! `SA_ONSTACK` to each) copies the page, one page fault per child that
//! nothing would ever read (perf record, bash spawn storm).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static COUNTING: AtomicBool = AtomicBool::new(false);

/// Called by the constructor when the exit report is on.
pub fn start_counting() {
    COUNTING.store(true, Ordering::Relaxed);
}

pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Self {
        Counter(AtomicU64::new(0))
    }
    #[inline]
    pub fn inc(&self) {
        if COUNTING.load(Ordering::Relaxed) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Default for Counter {
    fn default() -> Self {
        Self::new()
    }
}

pub static ONSTACK_ADDED: Counter = Counter::new();
pub static ONSTACK_REFUSED: Counter = Counter::new();
pub static SIGPIPE_KEPT: Counter = Counter::new();
pub static THREADS_CREATED: Counter = Counter::new();
pub static STACK_RAISED: Counter = Counter::new();
pub static NAPI_ASYNC_CALLS: Counter = Counter::new();

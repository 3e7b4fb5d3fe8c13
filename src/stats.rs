//! Counters for the exit report: relaxed atomics, safe from any context.

use std::sync::atomic::{AtomicU64, Ordering};

pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Self {
        Counter(AtomicU64::new(0))
    }
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
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

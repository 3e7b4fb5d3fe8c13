//! Whether this thread is inside a `dlopen`: library constructors (and a Go
//! c-shared/c-archive runtime's `initsig`, which runs synchronously in its
//! constructor, runtime/asm_amd64.s `_rt0_amd64_lib` -> `libpreinit`) run
//! within it. Written by the `dl.rs` hooks; read by `threads.rs` and
//! `signals.rs`. A plain TLS slot: async-signal-safe.

use std::cell::Cell;

thread_local! {
    // const-initialised, no destructor: a plain TLS slot, no lazy
    // registration or allocation on first use.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

pub fn enter() {
    DEPTH.with(|d| d.set(d.get() + 1));
}

/// Returns the depth left (0: the outermost `dlopen` returned).
pub fn leave() -> u32 {
    DEPTH.with(|d| {
        d.set(d.get().saturating_sub(1));
        d.get()
    })
}

pub fn inside_dlopen() -> bool {
    DEPTH.with(|d| d.get()) > 0
}

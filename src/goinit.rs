//! The Go init hook: after a Go runtime in a loaded object has finished
//! starting, re-check the host's suspend-signal handlers, because the
//! runtime's `initsig` may have changed them (docs/background.md §1) in
//! ways the sigaction hook could not see (a runtime that uses raw system
//! calls) or that happened on its init thread while `dlopen` was running.
//!
//! One state machine per tracked object (its `registry::Slot`):
//! `Pending` -> `Running` -> `Ran` | `Failed`, exactly once, whoever gets
//! there first; `Skipped` (`CGOFIX_GO_INIT=off`) and `NotGo` never run.
//! When it runs:
//!
//! * an N-API module: on its first `napi_queue_async_work`, on the JS
//!   thread (`on_async_work`, called from the module's wrapper);
//! * a Go library opened directly (`bun:ffi`, a `DT_NEEDED` of an addon):
//!   when the outermost `dlopen` returns (`run_direct`). Never from a nested
//!   `dlopen`: a library constructor that opens a Go library still holds the
//!   loader lock, which the Go runtime's own init thread may need.
//!
//! Not signal-reachable.

use crate::registry::{self, InitState};
use crate::signals;
use std::sync::atomic::Ordering;

type WaitFn = unsafe extern "C" fn() -> usize;

/// The initial state of a newly loaded object.
pub fn initial_state(is_go: bool, hook_on: bool) -> InitState {
    match (is_go, hook_on) {
        (false, _) => InitState::NotGo,
        (true, false) => InitState::Skipped,
        (true, true) => InitState::Pending,
    }
}

/// Arms `slot` for a newly loaded object. `wait` is its
/// `_cgo_wait_runtime_init_done` (0 if none); `direct` says the hook runs
/// when `dlopen` returns rather than on the first async work.
pub fn arm(slot: usize, state: InitState, wait: usize, direct: bool) {
    let s = registry::slot(slot);
    s.calls.store(0, Ordering::Relaxed);
    s.wait.store(wait, Ordering::Release);
    s.state.store(state as u8, Ordering::Release);
    s.direct
        .store(direct && state == InitState::Pending, Ordering::Release);
}

/// Reads and resets `slot` when its object is unloaded: (calls, state).
pub fn settle(slot: usize) -> (u64, InitState) {
    let s = registry::slot(slot);
    let calls = s.calls.swap(0, Ordering::Relaxed);
    let state = InitState::from_u8(s.state.load(Ordering::Acquire));
    s.state.store(InitState::NotGo as u8, Ordering::Release);
    s.direct.store(false, Ordering::Release);
    (calls, state)
}

/// The live (calls, state) of `slot`, for the report.
pub fn current(slot: usize) -> (u64, InitState) {
    let s = registry::slot(slot);
    (
        s.calls.load(Ordering::Relaxed),
        InitState::from_u8(s.state.load(Ordering::Acquire)),
    )
}

/// From a module's `napi_queue_async_work` wrapper.
pub fn on_async_work(slot: usize) {
    if registry::slot(slot).state.load(Ordering::Acquire) == InitState::Pending as u8 {
        run(slot);
    }
}

/// When the outermost `dlopen` returns: the hook for every Go library that
/// was opened directly and has not run it yet.
pub fn run_direct() {
    for (i, s) in registry::slots() {
        if s.direct.load(Ordering::Acquire)
            && s.state.load(Ordering::Acquire) == InitState::Pending as u8
        {
            run(i);
        }
    }
}

/// Runs the hook for `slot` exactly once; concurrent callers wait for the
/// winner to finish.
fn run(slot: usize) {
    let s = registry::slot(slot);
    let won = s.state.compare_exchange(
        InitState::Pending as u8,
        InitState::Running as u8,
        Ordering::AcqRel,
        Ordering::Acquire,
    );
    if won.is_err() {
        while s.state.load(Ordering::Acquire) == InitState::Running as u8 {
            interpose::yield_now();
        }
        return;
    }
    let wait = s.wait.load(Ordering::Acquire);
    let ok = std::panic::catch_unwind(|| {
        if wait != 0 {
            // SAFETY: the module's exported `_cgo_wait_runtime_init_done`,
            // which takes no arguments; every exported Go function calls it
            // first, so calling it from a C thread is its normal use.
            unsafe { std::mem::transmute::<usize, WaitFn>(wait)() };
        }
        let clean = signals::recheck_suspend();
        // In-process mode: the runtime's second initsig (its init thread)
        // may have run before its slots were rewritten.
        if let Some(cfg) = crate::state::active() {
            crate::inprocess::repair(cfg);
        }
        clean
    });
    // "failed": the suspend handler could not be repaired.
    let state = if ok.unwrap_or(false) {
        InitState::Ran
    } else {
        InitState::Failed
    };
    s.state.store(state as u8, Ordering::Release);
    if state == InitState::Failed {
        // The suspend handler still carries SA_ONSTACK: the hang this shim
        // exists to prevent is possible again.
        crate::log!(
            Warn,
            "Go init hook for module {slot} failed: the suspend signal's handler could not be repaired"
        );
    } else {
        crate::log!(Debug, "Go init hook for module {slot}: {}", state.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_states() {
        assert_eq!(initial_state(false, true), InitState::NotGo);
        assert_eq!(initial_state(false, false), InitState::NotGo);
        assert_eq!(initial_state(true, false), InitState::Skipped);
        assert_eq!(initial_state(true, true), InitState::Pending);
    }

    #[test]
    fn runs_once_and_settles() {
        // The last slot: no real object gets it in a unit-test process.
        // Taking a slot maps the table (a slot no `take_slot` backs is
        // nobody's: `run_direct` would not see it).
        assert!(registry::Rows::new().take_slot().is_some());
        let slot = registry::MAX_TRACKED - 1;
        arm(slot, InitState::Pending, 0, true);
        run_direct();
        let (_, state) = current(slot);
        // Without a configured host no signal is a suspend signal, so the
        // re-check has nothing to repair.
        assert_eq!(state, InitState::Ran);
        on_async_work(slot);
        assert_eq!(current(slot).1, InitState::Ran, "runs once");
        registry::slot(slot).calls.store(5, Ordering::Relaxed);
        assert_eq!(settle(slot), (5, InitState::Ran));
        assert_eq!(current(slot), (0, InitState::NotGo));
        // Not armed as direct: dlopen's return does not run it.
        arm(slot, InitState::Pending, 0, false);
        run_direct();
        assert_eq!(current(slot).1, InitState::Pending);
        settle(slot);
    }
}

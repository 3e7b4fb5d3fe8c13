//! What happens to each object a `dlopen` brings in: classify it (Go or
//! not, `registry.rs`), describe it for the report, patch its N-API import
//! (`napi.rs`), arm its Go init hook (`goinit.rs`); then, when the outermost
//! `dlopen` returns, run the hook for Go libraries opened directly and
//! re-check the suspend signals (`signals.rs`). Called by the `dl.rs` hooks,
//! which say whether this is the outermost `dlopen`.
//!
//! Not signal-reachable.

use crate::config::{Config, LogLevel};
use crate::registry::{self, InitState, Row, Rows};
use std::sync::atomic::{AtomicBool, Ordering};

/// The two-runtimes warning is said once per process.
static SECOND_WARNED: AtomicBool = AtomicBool::new(false);
use crate::{goinit, inprocess, log, napi, signals};
use interpose::elf::{self, LoadedObject};
use interpose::goinfo;

fn path_of(obj: &LoadedObject) -> String {
    String::from_utf8_lossy(obj.name_bytes()).into_owned()
}

/// Go version and build mode of a Go object, as the report shows them: the
/// same definition `cgofix doctor` uses (`interpose::goinfo`; for Go < 1.20,
/// which records no build mode, inferred from how the object was linked).
fn describe(obj: &LoadedObject) -> (Option<String>, Option<String>) {
    let version = elf::go_version_from_memory(obj);
    let recorded = version
        .and_then(|v| elf::go_modinfo_from_memory(obj, v))
        .and_then(goinfo::recorded_buildmode);
    let buildmode = goinfo::buildmode(
        recorded,
        elf::lookup_dynsym(obj, goinfo::CGO_WAIT).is_some(),
        elf::is_symbolic(obj),
    );
    (
        version.map(|v| String::from_utf8_lossy(v).into_owned()),
        buildmode.map(str::to_owned),
    )
}

/// One newly loaded object. Returns nothing: what it did is in `rows`.
fn examine(cfg: &Config, rows: &mut Rows, obj: &LoadedObject, is_go: bool, napi_host: bool) {
    // In-process mode: the new object's own calls reach the hooks too.
    if let Err(errno) = inprocess::patch(obj) {
        crate::log!(
            Warn,
            "in-process: could not rewrite the slots of {} (mprotect errno {errno})",
            path_of(obj)
        );
    }
    // Reading the version scans the object's data: only when someone will
    // read it (the exit report or debug logging).
    let (go_version, buildmode) =
        if is_go && (cfg.report.is_some() || log::enabled(LogLevel::Debug)) {
            describe(obj)
        } else {
            (None, None)
        };
    let slot = rows.take_slot();
    let mut patched = false;
    match slot {
        Some(slot) if cfg.napi && napi_host => {
            let p = napi::patch(obj, slot);
            patched = p.patched;
            if let Some(errno) = p.protect_errno {
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
                    go_version
                        .as_deref()
                        .unwrap_or(if is_go { "Go" } else { "not Go" })
                );
            }
        }
        Some(_) => {}
        None if is_go || napi::imports(obj) => {
            // Only objects we would have patched are worth a line:
            // unrelated libraries must not make the shim noisy.
            crate::log!(
                Warn,
                "more than {} modules: {} not patched",
                registry::MAX_TRACKED,
                path_of(obj)
            );
        }
        None => {}
    }
    if !is_go && !patched {
        // Neither Go nor N-API: not ours to report; keep the slot.
        if let Some(s) = slot {
            rows.give_back(s);
        }
        return;
    }
    let state = goinit::initial_state(is_go, cfg.go_init);
    if let Some(slot) = slot {
        let wait = elf::lookup_dynsym(obj, goinfo::CGO_WAIT).unwrap_or(0);
        let napi_module = elf::lookup_dynsym(obj, b"napi_register_module_v1").is_some();
        goinit::arm(slot, state, wait, !napi_module);
    }
    let path = path_of(obj);
    // At the second distinct Go runtime: one warning naming both. Go
    // supports one runtime per process (golang/go#18976, golang/go#65050);
    // two crash in practice (apache/arrow-adbc#1841, go-python/gopy#370).
    // The shim cannot make them coexist (docs/background.md §7).
    if is_go && !SECOND_WARNED.load(Ordering::Relaxed) {
        let live_go = |r: &&Row| r.live && r.init != InitState::NotGo && r.path != path;
        if let Some(first) = rows.rows().iter().find(live_go) {
            SECOND_WARNED.store(true, Ordering::Relaxed);
            crate::log!(
                Warn,
                "a second Go runtime was loaded: {path} next to {}; Go supports one runtime per process and two are known to crash (https://github.com/golang/go/issues/18976)",
                first.path
            );
        }
    }
    rows.add(Row {
        base: obj.base,
        slot,
        live: true,
        path,
        go_version,
        buildmode,
        napi_patched: patched,
        init: state,
        napi_async_calls: 0,
    });
}

/// After every successful `dlopen`/`dlmopen`. `outermost`: no other
/// `dlopen` is running on this thread (see `goinit.rs` for why the hook
/// only runs then).
pub fn after_dlopen(cfg: &Config, outermost: bool) {
    let napi_host = napi::prepare();
    registry::for_each_new(|rows, new| examine(cfg, rows, new.obj, new.is_go, napi_host));
    // Outside the registry lock: waiting for a Go runtime can take a while.
    if outermost {
        goinit::run_direct();
    }
    // Part of the Go init hook: anything loaded may have started a runtime
    // that changed dispositions behind libc's back.
    if cfg.go_init && !signals::recheck_suspend() {
        crate::log!(
            Warn,
            "a suspend signal's handler still has SA_ONSTACK after dlopen and could not be repaired"
        );
    }
    // In-process mode: what a Go runtime's initsig did inside the dlopen,
    // through slots no rewrite had reached yet.
    if outermost {
        inprocess::repair(cfg);
    }
}

/// Before the real call of an outermost `dlopen`.
pub fn before_dlopen(cfg: &Config) {
    if inprocess::attached() {
        inprocess::before_dlopen(cfg);
    }
}

/// After a successful `dlclose`: unmapped objects are forgotten (whatever is
/// mapped at their address later is examined and patched afresh).
pub fn after_dlclose() {
    registry::after_dlclose(goinit::settle);
}

/// Distinct Go runtimes among `rows`: Go objects, one per file (a file
/// reopened after `dlclose` has one row).
pub fn go_runtimes(rows: &[Row]) -> usize {
    rows.iter().filter(|r| r.init != InitState::NotGo).count()
}

/// The rows for the exit report.
pub fn modules() -> Vec<Row> {
    registry::locked(|rows| rows.snapshot(goinit::current))
}

//! `CGOFIX_REPORT=PATH|stderr`: one JSON object per process, written at
//! exit. Counters are atomics; the JSON is built only here.
//!
//! Bun leaves through `quick_exit()` (measured on 1.3.14 and 1.4.5), which
//! skips `atexit` handlers and ELF destructors, so the writer is registered
//! with both `atexit` and `at_quick_exit`; a flag makes it run once.
//!
//! Keys are stable API (README.md "Exit report").

use crate::{loader, sigset, state, stats, suspend};
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

static WRITTEN: AtomicBool = AtomicBool::new(false);

/// `__cxa_atexit` / `__cxa_at_quick_exit`: (handler, argument, DSO handle).
type Register = unsafe extern "C" fn(
    extern "C" fn(*mut libc::c_void),
    *mut libc::c_void,
    *mut libc::c_void,
) -> libc::c_int;

pub fn init() {
    if state::config().and_then(|c| c.report.as_ref()).is_none() {
        return;
    }
    // What `atexit` and `at_quick_exit` (static stubs in libc_nonshared)
    // call, looked up here rather than linked: linked, they were two more
    // symbol lookups (and a GLIBC_2.10 version check) in every process
    // start, for the few that ask for a report. No DSO handle: the shim is
    // never unloaded, and a null handle is never matched by
    // `__cxa_finalize`.
    for name in [c"__cxa_atexit", c"__cxa_at_quick_exit"] {
        // SAFETY: RTLD_DEFAULT lookup of a NUL-terminated name.
        let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
        if !f.is_null() {
            // SAFETY: glibc's registration functions have this signature.
            let register: Register = unsafe { std::mem::transmute(f) };
            // SAFETY: registering a plain function with libc's exit machinery.
            unsafe { register(write_at_exit, std::ptr::null_mut(), std::ptr::null_mut()) };
        }
    }
}

extern "C" fn write_at_exit(_: *mut libc::c_void) {
    if WRITTEN.swap(true, Ordering::AcqRel) {
        return;
    }
    let _ = std::panic::catch_unwind(write);
}

/// JSON string literal.
fn js(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn opt(s: &Option<String>) -> String {
    s.as_deref().map_or_else(|| "null".to_string(), js)
}

/// The report as one line of JSON.
pub fn render() -> String {
    let exe = std::fs::read_link("/proc/self/exe")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let suspend: Vec<String> = suspend::current()
        .iter()
        .map(|s| {
            js(sigset::signal_name(s)
                .map_or_else(|| s.to_string(), str::to_string)
                .as_str())
        })
        .collect();
    let rows = loader::modules();
    let go_runtimes = loader::go_runtimes(&rows);
    let suspend_fix = state::config().map_or("off", suspend::fix_status);
    let modules: Vec<String> = rows
        .iter()
        .map(|m| {
            format!(
                "{{\"path\":{},\"go_version\":{},\"buildmode\":{},\"napi_patched\":{},\"go_init_hook\":{},\"napi_async_calls\":{}}}",
                js(&m.path),
                opt(&m.go_version),
                opt(&m.buildmode),
                m.napi_patched,
                js(m.init.as_str()),
                m.napi_async_calls
            )
        })
        .collect();
    format!(
        "{{\"cgofix\":{},\"mode\":{},\"inactive_copies\":{},\"pid\":{},\"exe\":{},\"signals\":{{\"suspend_signals\":[{}],\"suspend_fix\":{},\"onstack_added\":{},\"onstack_refused\":{},\"sigpipe_kept\":{}}},\"threads\":{{\"created\":{},\"stack_raised\":{}}},\"napi\":{{\"queue_async_work_calls\":{}}},\"go_runtimes\":{},\"modules\":[{}]}}",
        js(env!("CARGO_PKG_VERSION")),
        js(state::mode().as_str()),
        crate::inprocess::inactive_copies(),
        crate::log::pid(),
        js(&exe),
        suspend.join(","),
        js(suspend_fix),
        stats::ONSTACK_ADDED.get(),
        stats::ONSTACK_REFUSED.get(),
        stats::SIGPIPE_KEPT.get(),
        stats::THREADS_CREATED.get(),
        stats::STACK_RAISED.get(),
        stats::NAPI_ASYNC_CALLS.get(),
        go_runtimes,
        modules.join(",")
    )
}

fn write() {
    let Some(dest) = state::config().and_then(|c| c.report.clone()) else {
        return;
    };
    let line = render() + "\n";
    if dest == "stderr" {
        crate::log::write_all(2, line.as_bytes());
        return;
    }
    // One write with O_APPEND: children inherit the variable and append
    // their own line to the same file.
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&dest);
    match f {
        Ok(mut f) => {
            let _ = f.write_all(line.as_bytes());
        }
        Err(e) => {
            let err = crate::log::os_error(e.raw_os_error().unwrap_or(0));
            crate::log::write_all(
                2,
                format!("cgofix: CGOFIX_REPORT={dest}: {err}\n").as_bytes(),
            );
        }
    }
}

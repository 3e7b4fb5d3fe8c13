//! In-process mode: the library loaded late (`dlopen`ed by
//! `cgofix/register`, not preloaded) hooks the process by rewriting the GOT
//! slots through which every loaded object calls the hooked libc functions
//! (the technique `napi.rs` uses for `napi_queue_async_work`,
//! docs/background.md §3, §10).
//!
//! * Which mode (`detect`, in the constructor): preloaded when a global
//!   lookup of `sigaction` finds our own hook, or finds another wrapper
//!   while our own marker is global (a preload listed after another); inactive when it, or the
//!   executable's `sigaction` slot, leads into another copy of the library
//!   (an object exporting [`cgofix_instance`]), and when any loaded
//!   object's slot for a hooked name does (a copy attached in-process
//!   before, another package's register); else in-process.
//! * Attach (`attach`): every loaded object's slots for the hooked names
//!   point at our hooks, except in the objects that define the real
//!   functions (libc, libpthread/libdl of old glibc, ld.so), whose internal
//!   references must keep reaching the real code, and in this library.
//!   Objects loaded afterwards are patched by the `dlopen` hook
//!   (`loader.rs`), which the host now reaches through its rewritten slot.
//!   The suspend signal is latched from what the host installed at start-up
//!   and the policy is applied once to every installed handler, giving the
//!   state the preload would have produced.
//! * Repair (`repair`): a Go runtime's `initsig` runs in the Go library's
//!   constructor (`libpreinit`, runtime/os_linux.go), inside the real
//!   `dlopen`, through the new object's own slots, which no rewrite can have
//!   reached yet: it cannot be prevented, only undone. After each `dlopen`,
//!   and after each Go init hook (the runtime's second `initsig` runs on its
//!   init thread), the policy is applied again to every handler, and a
//!   SIGPIPE that was ignored before the `dlopen` and now runs Go's handler
//!   is ignored again (`CGOFIX_KEEP_SIGPIPE`, what the preload keeps).
//!
//! The library is linked `-z nodelete` (build.rs): once slots point into
//! it, it must never be unmapped.
//!
//! Not signal-reachable.

use crate::config::Config;
use crate::state;
use crate::{registry, signals, stats, suspend};
use interpose::elf::{self, LoadedObject};
use interpose::{got, own};
use libc::c_int;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

/// The exported marker that tells copies of the library apart, and what a
/// late copy calls to be counted in the active copy's report
/// (`inactive_copies`). `note_late != 0`: a late copy found this one
/// active and stays inactive. Returns this copy's mode (1 preload,
/// 2 in-process, 3 inactive; `cgofix/register` reads it under Bun).
#[unsafe(no_mangle)]
pub extern "C" fn cgofix_instance(note_late: c_int) -> c_int {
    if note_late != 0 {
        INACTIVE_COPIES.fetch_add(1, Ordering::Relaxed);
    }
    state::mode() as c_int
}

static INACTIVE_COPIES: AtomicU32 = AtomicU32::new(0);

/// Late copies that found this one active (the report's `inactive_copies`).
pub fn inactive_copies() -> u32 {
    INACTIVE_COPIES.load(Ordering::Relaxed)
}

const MARKER: &[u8] = b"cgofix_instance";

/// The hooks and the names whose slots they take over: every entry point
/// the preload interposes.
fn hooks() -> [(&'static [u8], usize); 12] {
    [
        (b"sigaction", own!(sigaction)),
        (b"__sigaction", own!(__sigaction)),
        (b"signal", own!(signal)),
        (b"ssignal", own!(ssignal)),
        (b"bsd_signal", own!(bsd_signal)),
        (b"sysv_signal", own!(sysv_signal)),
        (b"__sysv_signal", own!(__sysv_signal)),
        (b"sigset", own!(sigset)),
        (b"pthread_create", own!(pthread_create)),
        (b"dlopen", own!(dlopen)),
        (b"dlmopen", own!(dlmopen)),
        (b"dlclose", own!(dlclose)),
    ]
}

fn global(name: &std::ffi::CStr) -> usize {
    // SAFETY: RTLD_DEFAULT lookup of a NUL-terminated name.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) as usize }
}

/// The path of the other copy of the library whose code holds `addr`.
/// Compared by object, not by the marker's address: `cgofix_instance` as
/// a value would be looked up globally and could be the other copy's.
/// `own_base`: this copy's load address ([`own_base`]).
fn other_copy(addr: usize, own_base: usize) -> Option<String> {
    let obj = elf::object_at(addr)?;
    elf::lookup_dynsym(&obj, MARKER)?;
    (obj.base != own_base).then(|| String::from_utf8_lossy(obj.name_bytes()).into_owned())
}

/// This copy's load address, found once per detection (each
/// `elf::object_at` is a walk of the loaded objects under the loader lock).
fn own_base() -> usize {
    elf::object_at(own!(sigaction)).map_or(0, |o| o.base)
}

/// How this copy must work; `Inactive` carries the active copy's path.
pub enum Detected {
    Preload,
    InProcess,
    Inactive(String),
}

/// Decides the mode (see the module comment). Costs every preloaded
/// process start one `dlsym` (~1k instructions, README "Performance").
pub fn detect() -> Detected {
    let g = global(c"sigaction");
    if g == own!(sigaction) {
        return Detected::Preload;
    }
    let own_base = own_base();
    if let Some(p) = other_copy(g, own_base) {
        return Detected::Inactive(p);
    }
    let marker = global(c"cgofix_instance");
    if marker != 0 {
        if let Some(p) = other_copy(marker, own_base) {
            return Detected::Inactive(p);
        }
        // Our own marker is global: this copy is in the global scope, yet
        // `sigaction` is found elsewhere first. When that is not the
        // definition that follows us (libc's), an object before us wraps
        // it: another preload listed before this one (tests/reliability.rs,
        // `another_sigaction_preload_before_and_after`), whose wrapper must
        // keep seeing every call. Otherwise this copy came late with
        // RTLD_GLOBAL, after the existing objects were bound to libc.
        if interpose::next_symbol(c"sigaction", own!(sigaction)) != Some(g) {
            return Detected::Preload;
        }
    }
    // Another copy attached in-process (another package's register): some
    // object's slot for a hooked name leads into it.
    let mut objects = Vec::new();
    elf::for_each_object(|o| {
        if o.base != own_base {
            objects.push(*o);
        }
        true
    });
    for o in &objects {
        for (name, _) in hooks() {
            if let Some(p) = got::slot_value(o, name).and_then(|a| other_copy(a, own_base)) {
                return Detected::Inactive(p);
            }
        }
    }
    Detected::InProcess
}

/// Tells the active copy at `path` that this one stays inactive.
pub fn note_inactive(path: &str) {
    let mut f = 0;
    elf::for_each_object(|o| {
        if o.name_bytes() == path.as_bytes() {
            f = elf::lookup_dynsym(o, MARKER).unwrap_or(0);
        }
        f == 0
    });
    if f != 0 {
        // SAFETY: the other copy's exported `cgofix_instance`, same signature.
        unsafe { std::mem::transmute::<usize, extern "C" fn(c_int) -> c_int>(f)(1) };
    }
}

/// Load addresses of the objects whose slots are never rewritten.
const SKIPS: usize = 8;
static SKIP: [AtomicUsize; SKIPS] = [const { AtomicUsize::new(usize::MAX) }; SKIPS];
static ATTACHED: AtomicBool = AtomicBool::new(false);

fn skipped(obj: &LoadedObject) -> bool {
    SKIP.iter().any(|s| s.load(Ordering::Acquire) == obj.base)
}

/// Whether the in-process mode is on (slots of new objects are patched).
pub fn attached() -> bool {
    ATTACHED.load(Ordering::Acquire)
}

/// Points `obj`'s slots for the hooked names at our hooks. Returns the
/// slots written, or the `mprotect` errno that stopped it.
pub fn patch(obj: &LoadedObject) -> Result<usize, i32> {
    if !attached() || skipped(obj) {
        return Ok(0);
    }
    let table = hooks();
    let r = got::patch_imports_with(obj, |name| {
        table.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
    });
    match r {
        got::PatchResult::ProtectFailed { errno, .. } => Err(errno),
        r => Ok(r.stats().map_or(0, |s| s.slots_written)),
    }
}

/// Attaches (constructor, in-process mode, after `state::publish`): the
/// skip list, the suspend signal as the host installed it, every loaded
/// object's slots, then the policy on every installed handler.
pub fn attach() {
    // The objects that define the real functions (and the loader and this
    // library): their own references stay as they are.
    let mut bases = Vec::new();
    let mut add = |addr: usize| {
        if addr != 0
            && let Some(o) = elf::object_at(addr)
            && !bases.contains(&o.base)
        {
            bases.push(o.base);
        }
    };
    add(own!(sigaction));
    add(global(c"_r_debug"));
    for (name, own) in [
        (c"sigaction", own!(sigaction)),
        (c"signal", own!(signal)),
        (c"pthread_create", own!(pthread_create)),
        (c"dlopen", own!(dlopen)),
        (c"dlclose", own!(dlclose)),
    ] {
        add(interpose::next_symbol(name, own).unwrap_or(0));
    }
    for (slot, b) in SKIP.iter().zip(bases) {
        slot.store(b, Ordering::Release);
    }
    registry::classify_loaded();
    latch_suspend();
    ATTACHED.store(true, Ordering::Release);
    let mut written = 0;
    let mut objects = Vec::new();
    elf::for_each_object(|o| {
        objects.push(*o);
        true
    });
    for o in &objects {
        match patch(o) {
            Ok(n) => written += n,
            Err(errno) => crate::log!(
                Warn,
                "in-process: could not rewrite the slots of {} (mprotect errno {errno})",
                String::from_utf8_lossy(o.name_bytes())
            ),
        }
    }
    reapply_all();
    crate::log!(
        Info,
        "in-process: attached without LD_PRELOAD ({written} slots in {} objects); calls made before this point were not seen",
        objects.len()
    );
}

/// The suspend signal as the host installed it at start-up, before this
/// library existed: the handler the preload would have seen installed.
/// SIGPWR first: Bun >= 1.2.2 uses it, and a `process.on('SIGUSR1')` may
/// since have put a handler from the executable on SIGUSR1.
fn latch_suspend() {
    for sig in [libc::SIGPWR, libc::SIGUSR1]
        .into_iter()
        .chain(suspend::current().iter())
    {
        // SAFETY: all-zero is a valid sigaction.
        let mut cur: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a query into a valid struct on our stack.
        if unsafe { signals::real_sigaction(sig, std::ptr::null(), &mut cur) } == 0
            && cur.sa_sigaction > 2
            && cur.sa_sigaction != libc::SIG_ERR
        {
            suspend::observe_install(sig, cur.sa_sigaction);
        }
    }
}

/// Applies the policy to every signal's installed handler (what the preload
/// would have done at each install this library did not see).
pub fn reapply_all() {
    for sig in 1..=64 {
        if matches!(sig, libc::SIGKILL | libc::SIGSTOP | 32 | 33) {
            continue;
        }
        signals::reapply(sig);
    }
}

/// Whether SIGPIPE was ignored before the last outermost `dlopen`.
static PIPE_IGNORED_BEFORE: AtomicBool = AtomicBool::new(false);

/// Before the real `dlopen` (outermost, in-process mode).
pub fn before_dlopen(cfg: &Config) {
    if cfg.keep_sigpipe {
        PIPE_IGNORED_BEFORE.store(signals::ignored_now(libc::SIGPIPE), Ordering::Release);
    }
}

/// After an outermost `dlopen` and after each Go init hook, in in-process
/// mode: undoes what a Go runtime's `initsig` did behind the hooks.
pub fn repair(cfg: &Config) {
    if !attached() {
        return;
    }
    if cfg.keep_sigpipe && PIPE_IGNORED_BEFORE.load(Ordering::Acquire) {
        // SAFETY: all-zero is a valid sigaction.
        let mut cur: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a query into a valid struct on our stack.
        let ok = unsafe { signals::real_sigaction(libc::SIGPIPE, std::ptr::null(), &mut cur) };
        if ok == 0 && registry::is_go_code(cur.sa_sigaction) {
            // SAFETY: all-zero is a valid sigaction (empty mask, no flags).
            let mut ign: libc::sigaction = unsafe { std::mem::zeroed() };
            ign.sa_sigaction = libc::SIG_IGN;
            // SAFETY: installing SIG_IGN, as the host had it.
            if unsafe { signals::real_sigaction(libc::SIGPIPE, &ign, std::ptr::null_mut()) } == 0 {
                stats::SIGPIPE_KEPT.inc();
                crate::log!(
                    Debug,
                    "SIGPIPE (13): in-process: put the host's SIG_IGN back over Go's handler"
                );
            }
        }
    }
    reapply_all();
}

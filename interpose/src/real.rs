//! Real-function slots: `dlsym(RTLD_NEXT, name)` once, then atomic loads.

use crate::elf::{self, DynInfo, LoadedObject};
use std::ffi::CStr;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The next definition of `name` after the calling object in the lookup
/// order (`dlsym(RTLD_NEXT)`), or `None`. A result equal to `own` (our own
/// wrapper, which happens when the shim is loaded twice or the symbol is
/// searched from an unexpected scope) is rejected, as compiler-rt's
/// interceptors do, because calling it would recurse forever.
///
/// Not async-signal-safe (`dlsym` takes the loader lock): call it from a
/// constructor or another non-signal context.
pub fn next_symbol(name: &CStr, own: usize) -> Option<usize> {
    // SAFETY: `name` is a valid NUL-terminated string; RTLD_NEXT is a valid
    // pseudo-handle for dlsym called from a shared object.
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) } as usize;
    (p != 0 && p != own).then_some(p)
}

/// The loaded object that defines an already resolved function, for
/// looking up the rest of its family in the same object's symbol table
/// instead of one `dlsym(RTLD_NEXT)` each ([`RealFn::resolve_from`]).
///
/// Why: `dlsym` costs ~1000 instructions a call (the loader lock, an error
/// catcher, finding the caller's object, a scope search); a hash lookup in
/// one known object costs a tenth of that.
pub struct Provider {
    obj: LoadedObject,
    info: DynInfo,
}

impl Provider {
    /// The object whose mapped segments hold `addr`. Not async-signal-safe
    /// (`dl_iterate_phdr` takes the loader lock).
    pub fn of(addr: usize) -> Option<Provider> {
        let obj = elf::object_at(addr)?;
        Some(Provider {
            info: elf::dynamic_info(&obj)?,
            obj,
        })
    }

    /// `name`'s definition in this object as `dlsym` would return it (its
    /// default version). `None` for an IFUNC, whose symbol value is the
    /// resolver rather than the function: `dlsym` would call the resolver.
    /// No allocation, no locking.
    pub fn lookup(&self, name: &CStr) -> Option<usize> {
        elf::lookup_dynsym_default(&self.obj, &self.info, name.to_bytes())
            .filter(|s| s.st_type != STT_GNU_IFUNC)
            .map(|s| s.addr)
    }
}

const STT_GNU_IFUNC: u8 = 10;

/// The definition a load-time import of `name` would bind to:
/// `dlsym(RTLD_DEFAULT)` (the global lookup order, from the program on),
/// else `dlsym(RTLD_NEXT)`, which also searches the library's own
/// dependencies when it was `dlopen`ed without `RTLD_GLOBAL`, else the
/// first definition in any loaded object (see [`RealFn::resolve`]).
/// Not async-signal-safe (`dlsym` takes the loader lock).
pub fn global_symbol(name: &CStr) -> Option<usize> {
    // SAFETY: `name` is a valid NUL-terminated string; RTLD_DEFAULT is a
    // valid pseudo-handle.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) } as usize;
    if p != 0 {
        return Some(p);
    }
    next_symbol(name, 0).or_else(|| elf::first_definition(name.to_bytes(), None))
}

/// The page size, `sysconf(_SC_PAGESIZE)`; 4096 if that fails. `sysconf`
/// is looked up at the first call instead of imported: every import is a
/// symbol lookup by the loader in every process that loads the library
/// (~760 instructions each, callgrind), and the page size is only needed
/// off the start-up path. Not async-signal-safe on the first call.
pub fn page_size() -> usize {
    type SysconfFn = unsafe extern "C" fn(libc::c_int) -> libc::c_long;
    static SYSCONF: RealFn<SysconfFn> = RealFn::new(c"sysconf");
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    match PAGE.load(Ordering::Relaxed) {
        0 => {
            // SAFETY: libc's sysconf, which has no preconditions.
            let p = SYSCONF
                .get_or_resolve_global()
                .map_or(0, |f| unsafe { f(libc::_SC_PAGESIZE) });
            let p = if p > 0 { p as usize } else { 4096 };
            PAGE.store(p, Ordering::Relaxed);
            p
        }
        p => p,
    }
}

/// `sched_yield(2)` by the system call, which is all libc's does: one
/// import fewer (see [`page_size`]) for the shim's spin-waits, which
/// `std::thread::yield_now` would link to libc's. Async-signal-safe.
pub fn yield_now() {
    // SAFETY: sched_yield takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_sched_yield) };
}

/// A slot holding the real address of a hooked function.
///
/// `F` is the function-pointer type (`unsafe extern "C" fn(...) -> ...`).
/// Loading is one `Acquire` load: lock-free and async-signal-safe.
pub struct RealFn<F> {
    addr: AtomicUsize,
    name: &'static CStr,
    _f: PhantomData<F>,
}

impl<F: Copy> RealFn<F> {
    const SIZE_OK: () = assert!(size_of::<F>() == size_of::<usize>());

    pub const fn new(name: &'static CStr) -> Self {
        #[allow(clippy::let_unit_value)]
        let _ = Self::SIZE_OK;
        RealFn {
            addr: AtomicUsize::new(0),
            name,
            _f: PhantomData,
        }
    }

    pub fn name(&self) -> &'static CStr {
        self.name
    }

    /// Resolves the slot: `name` first, then each alias, through
    /// [`next_symbol`], rejecting `own`. Returns whether a target was found.
    /// Idempotent; not async-signal-safe.
    // Start-up code kept together (build.rs, 4).
    #[unsafe(link_section = ".text.cgofix_startup")]
    pub fn resolve(&self, own: usize, aliases: &[&CStr]) -> bool {
        if self.addr.load(Ordering::Acquire) != 0 {
            return true;
        }
        let names = || std::iter::once(self.name).chain(aliases.iter().copied());
        // Not found next in our scope: an object loaded since without
        // RTLD_GLOBAL may define it, e.g. libpthread.so.0 on a glibc < 2.34
        // pulled in by a plugin a non-threaded program `dlopen`ed, whose
        // `pthread_create` calls reach our export (the zig build no longer
        // depends on libpthread, which put it in the global scope).
        let found = names().find_map(|n| next_symbol(n, own)).or_else(|| {
            // After our object (a hook's `own` is in it), as RTLD_NEXT.
            let after = (own != 0).then_some(own);
            names().find_map(|n| elf::first_definition(n.to_bytes(), after).filter(|&a| a != own))
        });
        if let Some(p) = found {
            self.addr.store(p, Ordering::Release);
        }
        found.is_some()
    }

    /// Resolves the slot like [`resolve`](Self::resolve), looking `name`
    /// and then each alias up in `from` first (rejecting `own` the same
    /// way), and through `dlsym(RTLD_NEXT)` only when `from` is `None` or
    /// defines none of them.
    ///
    /// Not the same search as [`resolve`](Self::resolve): `dlsym(RTLD_NEXT)`
    /// finds the first definition after the caller in the lookup order,
    /// which is `from`'s only when no object between the caller and `from`
    /// defines the name. The caller decides that the difference does not
    /// matter for this family. Idempotent; not async-signal-safe.
    // Start-up code kept together (build.rs, 4).
    #[unsafe(link_section = ".text.cgofix_startup")]
    pub fn resolve_from(&self, from: Option<&Provider>, own: usize, aliases: &[&CStr]) -> bool {
        if self.addr.load(Ordering::Acquire) != 0 {
            return true;
        }
        let found = from.and_then(|p| {
            std::iter::once(self.name)
                .chain(aliases.iter().copied())
                .find_map(|n| p.lookup(n).filter(|&a| a != own))
        });
        match found {
            Some(a) => {
                self.addr.store(a, Ordering::Release);
                true
            }
            None => self.resolve(own, aliases),
        }
    }

    /// Resolves the slot the way a load-time import of `name` binds
    /// ([`global_symbol`]), for a libc function that is not hooked but is
    /// only called off the start-up path: looked up where it is first
    /// needed instead of by the loader in every process start. Idempotent;
    /// not async-signal-safe.
    pub fn resolve_global(&self) -> bool {
        if self.addr.load(Ordering::Acquire) != 0 {
            return true;
        }
        let found = global_symbol(self.name);
        if let Some(p) = found {
            self.addr.store(p, Ordering::Release);
        }
        found.is_some()
    }

    /// [`get`](Self::get), after [`resolve_global`](Self::resolve_global)
    /// if the slot is still empty. Not async-signal-safe on that first call.
    pub fn get_or_resolve_global(&self) -> Option<F> {
        self.get().or_else(|| {
            self.resolve_global();
            self.get()
        })
    }

    /// The real function, resolving it first if that has not happened yet
    /// (for hooks whose real function is looked up at its first call rather
    /// than by the constructor). Not async-signal-safe on that first call.
    pub fn get_or_resolve(&self, own: usize, aliases: &[&CStr]) -> Option<F> {
        self.get().or_else(|| {
            self.resolve(own, aliases);
            self.get()
        })
    }

    /// The raw address, 0 when unresolved.
    pub fn addr(&self) -> usize {
        self.addr.load(Ordering::Acquire)
    }

    /// The real function, if resolved. Async-signal-safe.
    #[inline]
    pub fn get(&self) -> Option<F> {
        let p = self.addr.load(Ordering::Acquire);
        if p == 0 {
            return None;
        }
        // SAFETY: F is a function-pointer type of pointer size (checked at
        // compile time) and `p` is a non-null address that `resolve`
        // obtained for a function with F's signature.
        Some(unsafe { std::mem::transmute_copy::<usize, F>(&p) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type GetPid = unsafe extern "C" fn() -> libc::pid_t;

    #[test]
    fn resolves_next_libc_symbol() {
        static REAL: RealFn<GetPid> = RealFn::new(c"getpid");
        assert!(REAL.resolve(0, &[]));
        // SAFETY: the slot holds libc's getpid.
        let pid = unsafe { REAL.get().unwrap()() };
        assert_eq!(pid as u32, std::process::id());
    }

    #[test]
    fn resolves_from_an_object_loaded_without_rtld_global() {
        // libitm (GCC's transactional-memory runtime): installed with every
        // GCC (libgcc-12-dev depends on libitm1, the aarch64 cross compiler
        // on libitm1-arm64-cross), so present natively and in the qemu
        // sysroot, and not a dependency of this test program.
        type Version = unsafe extern "C" fn() -> *const libc::c_char;
        // SAFETY: a valid NUL-terminated name; RTLD_NEXT from the program.
        let before = unsafe { libc::dlsym(libc::RTLD_NEXT, c"_ITM_libraryVersion".as_ptr()) };
        assert!(before.is_null(), "precondition: libitm not loaded globally");
        // SAFETY: loading a system library; it stays loaded (never closed).
        let h = unsafe { libc::dlopen(c"libitm.so.1".as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        assert!(!h.is_null(), "libitm.so.1 not found");
        // SAFETY: as above; RTLD_NEXT still cannot see a local object.
        let next = unsafe { libc::dlsym(libc::RTLD_NEXT, c"_ITM_libraryVersion".as_ptr()) };
        assert!(next.is_null(), "RTLD_NEXT sees an RTLD_LOCAL object");
        static REAL: RealFn<Version> = RealFn::new(c"_ITM_libraryVersion");
        // As a hook's slot (own: an address in this program) and as a plain one.
        let own = resolves_next_libc_symbol as fn() as usize;
        assert!(REAL.resolve(own, &[]));
        // SAFETY: `h` is the handle dlopen returned.
        let want = unsafe { libc::dlsym(h, c"_ITM_libraryVersion".as_ptr()) } as usize;
        assert_eq!(REAL.addr(), want);
        assert_eq!(global_symbol(c"_ITM_libraryVersion"), Some(want));
    }

    #[test]
    fn rejects_own_wrapper_and_uses_alias() {
        static REAL: RealFn<GetPid> = RealFn::new(c"getpid");
        let libc_getpid = next_symbol(c"getpid", 0).unwrap();
        // Pretend libc's getpid is "our wrapper": it must be rejected and
        // the alias tried instead.
        assert!(!REAL.resolve(libc_getpid, &[c"no_such_symbol_cgofix"]));
        assert!(REAL.get().is_none());
        // An alias at the same address is our wrapper too: still rejected.
        assert!(!REAL.resolve(libc_getpid, &[c"__getpid"]));
        // A different function under an alias name is accepted.
        assert!(REAL.resolve(libc_getpid, &[c"getuid"]));
        assert_eq!(REAL.addr(), next_symbol(c"getuid", 0).unwrap());
    }

    #[test]
    fn provider_lookup_matches_dlsym() {
        static REAL: RealFn<GetPid> = RealFn::new(c"getpid");
        assert!(REAL.resolve(0, &[]));
        let libc = Provider::of(REAL.addr()).expect("the object that defines getpid");
        // Same object, same versions: the same answers as dlsym(RTLD_NEXT).
        for name in [c"getuid", c"signal", c"sigset", c"sysv_signal", c"realpath"] {
            assert_eq!(libc.lookup(name), next_symbol(name, 0), "{name:?}");
        }
        assert_eq!(libc.lookup(c"cgofix_definitely_missing"), None);
        // An address in no object.
        assert!(Provider::of(8).is_none());

        static FROM: RealFn<GetPid> = RealFn::new(c"getuid");
        assert!(FROM.resolve_from(Some(&libc), 0, &[]));
        assert_eq!(FROM.addr(), next_symbol(c"getuid", 0).unwrap());
        // `own` rejected in the provider too, then the alias.
        static ALIAS: RealFn<GetPid> = RealFn::new(c"getuid");
        let getuid = FROM.addr();
        assert!(ALIAS.resolve_from(Some(&libc), getuid, &[c"getgid"]));
        assert_eq!(ALIAS.addr(), next_symbol(c"getgid", 0).unwrap());
        // Not in the provider: dlsym(RTLD_NEXT) decides.
        static MISSING: RealFn<GetPid> = RealFn::new(c"cgofix_definitely_missing");
        assert!(!MISSING.resolve_from(Some(&libc), 0, &[]));
        assert!(!MISSING.resolve_from(None, 0, &[]));
    }

    #[test]
    fn global_lookup_and_page_size() {
        static UID: RealFn<GetPid> = RealFn::new(c"getuid");
        assert!(UID.resolve_global());
        // SAFETY: the slot holds libc's getuid.
        assert_eq!(unsafe { UID.get().unwrap()() }, unsafe { libc::getuid() }
            as i32);
        static MISSING: RealFn<GetPid> = RealFn::new(c"cgofix_definitely_missing");
        assert!(MISSING.get_or_resolve_global().is_none());
        // SAFETY: sysconf has no preconditions.
        let want = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        assert_eq!(page_size() as libc::c_long, want);
        assert_eq!(page_size() as libc::c_long, want, "cached");
    }

    #[test]
    fn missing_symbol_is_none() {
        assert!(next_symbol(c"cgofix_definitely_missing", 0).is_none());
    }
}

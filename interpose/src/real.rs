//! Real-function slots: `dlsym(RTLD_NEXT, name)` once, then atomic loads.

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
    pub fn resolve(&self, own: usize, aliases: &[&CStr]) -> bool {
        if self.addr.load(Ordering::Acquire) != 0 {
            return true;
        }
        let found = std::iter::once(self.name)
            .chain(aliases.iter().copied())
            .find_map(|n| next_symbol(n, own));
        if let Some(p) = found {
            self.addr.store(p, Ordering::Release);
        }
        found.is_some()
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
    fn missing_symbol_is_none() {
        assert!(next_symbol(c"cgofix_definitely_missing", 0).is_none());
    }
}

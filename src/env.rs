//! The environment as the constructor reads it: straight from the block
//! the loader hands it, copying only the entries it wants (`std::env::vars_os` copies every
//! variable, which was ~70k of the ~170k instructions the shim added to a
//! process start, measured with callgrind on `/bin/true`).
//!
//! Entries are compared byte by byte with the wanted prefix, so most are
//! rejected at their first byte without measuring their length, and no std
//! environment code runs: `std::env::var` (lock, `CString`, `getenv`) was
//! three more pages of the shim's code faulted in by every process start
//! (perf record -e page-faults).
//!
//! The block is the constructor's third argument: glibc calls every
//! `.init_array` function with `argc`, `argv` and the environment (elf/dl-init.c,
//! `call_init`; `__environ` at the time, for a library `dlopen`ed later).
//! Importing libc's `environ` instead was one more symbol the loader looked
//! up in every process start (README "Performance", sixth round); it is
//! looked up only when the call does not look like glibc's
//! ([`Environ::from_init`]).

use libc::{c_char, c_int};

/// A `KEY=VALUE` array, NULL-terminated, as the loader passes it.
#[derive(Clone, Copy, Debug)]
pub struct Environ(*const *const c_char);

impl Environ {
    /// # Safety
    /// `envp` is null, or a NULL-terminated array of NUL-terminated strings
    /// that stays valid while the `Environ` is used (the constructor's
    /// argument, read before it returns).
    pub unsafe fn new(envp: *const *const c_char) -> Self {
        Environ(envp)
    }

    /// The block the constructor was called with, when the call has the
    /// shape glibc gives it at start-up: the environment right after
    /// `argv`'s NULL (the initial stack), compared without reading
    /// anything. Otherwise libc's `environ`, looked up: a library
    /// `dlopen`ed after a `setenv`, `ld.so ./program` (the loader shifts
    /// `argv`), or a loader that passes no arguments at all (musl's), whose
    /// registers must not be read as pointers.
    pub fn from_init(argc: c_int, argv: *const *const c_char, envp: *const *const c_char) -> Self {
        let after_argv = (argv as usize).wrapping_add(
            (argc as usize)
                .wrapping_add(1)
                .wrapping_mul(size_of::<usize>()),
        );
        if !envp.is_null() && envp as usize == after_argv {
            return Environ(envp);
        }
        // SAFETY: a valid NUL-terminated name; RTLD_DEFAULT.
        let var = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"environ".as_ptr()) };
        // SAFETY: `environ` is libc's `char **` variable; null if not found.
        Environ(
            unsafe { (var as *const *const *const c_char).as_ref() }
                .map_or(std::ptr::null(), |p| *p),
        )
    }

    /// libc's `environ`, for tests (the library itself never imports it).
    #[cfg(test)]
    pub fn current() -> Self {
        unsafe extern "C" {
            static environ: *const *const c_char;
        }
        // SAFETY: libc's environment block, valid while the test runs
        // (no test here changes the environment).
        Environ(unsafe { environ })
    }
}

/// Calls `f` with every entry of `env` that starts with `prefix`.
fn scan(env: Environ, prefix: &[u8], mut f: impl FnMut(&[u8])) {
    // SAFETY: `env` is null or an array of NUL-terminated strings ending in
    // NULL (`Environ::new`'s contract). A prefix byte is compared only after
    // the previous one matched, so no read passes an entry's NUL.
    unsafe {
        let mut p = env.0;
        while !p.is_null() && !(*p).is_null() {
            let entry = (*p).cast::<u8>();
            p = p.add(1);
            if prefix.iter().enumerate().all(|(i, &b)| *entry.add(i) == b) {
                f(std::ffi::CStr::from_ptr(entry as *const libc::c_char).to_bytes());
            }
        }
    }
}

fn split(entry: &[u8]) -> (&[u8], &[u8]) {
    match entry.iter().position(|&b| b == b'=') {
        Some(eq) => (&entry[..eq], &entry[eq + 1..]),
        None => (entry, &b""[..]),
    }
}

/// Every `CGOFIX_*` variable. Lossy, not skipped: a value that is not UTF-8
/// is malformed input and gets its warning line from `config::parse`.
pub fn cgofix_vars(env: Environ) -> Vec<(String, String)> {
    let mut out = Vec::new();
    scan(env, b"CGOFIX_", |entry| {
        let (k, v) = split(entry);
        out.push((
            String::from_utf8_lossy(k).into_owned(),
            String::from_utf8_lossy(v).into_owned(),
        ));
    });
    out
}

/// One variable's value, as `std::env::var(name).ok()` gives it (the first
/// entry, `None` when absent or not UTF-8).
pub fn var(env: Environ, name: &str) -> Option<String> {
    let mut found = None;
    scan(env, name.as_bytes(), |entry| {
        let (k, v) = split(entry);
        if found.is_none() && k == name.as_bytes() {
            found = Some(std::str::from_utf8(v).ok().map(str::to_string));
        }
    });
    found.flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn var_reads_like_std() {
        // PATH is set under cargo test; a name that is only a prefix of
        // another variable must not match it.
        let env = Environ::current();
        assert_eq!(var(env, "PATH"), std::env::var("PATH").ok());
        assert_eq!(var(env, "PAT"), None);
        assert_eq!(var(env, "CGOFIX_NO_SUCH_VARIABLE_EVER"), None);
        // SAFETY: null is allowed (an empty environment).
        assert_eq!(var(unsafe { Environ::new(std::ptr::null()) }, "PATH"), None);
        // A call of another shape (here: no arguments at all) falls back to
        // libc's `environ`; one of glibc's start-up shape is taken as is.
        let lookup = Environ::from_init(0x1234, 8 as _, 16 as _);
        assert_eq!(var(lookup, "PATH"), std::env::var("PATH").ok());
        let argv = [
            c"prog".as_ptr(),
            std::ptr::null(),
            c"CGOFIX_T=1".as_ptr(),
            std::ptr::null(),
        ];
        let start = Environ::from_init(1, argv.as_ptr(), argv[2..].as_ptr());
        assert_eq!(var(start, "CGOFIX_T"), Some("1".to_string()));
        assert_eq!(var(start, "PATH"), None);
    }
}

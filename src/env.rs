//! The environment as the constructor reads it: straight from `environ`,
//! copying only the entries it wants (`std::env::vars_os` copies every
//! variable, which was ~70k of the ~170k instructions the shim added to a
//! process start, measured with callgrind on `/bin/true`).
//!
//! Entries are compared byte by byte with the wanted prefix, so most are
//! rejected at their first byte without measuring their length, and no std
//! environment code runs: `std::env::var` (lock, `CString`, `getenv`) was
//! three more pages of the shim's code faulted in by every process start
//! (perf record -e page-faults).

unsafe extern "C" {
    /// libc's `KEY=VALUE` array, NULL-terminated.
    static environ: *const *const libc::c_char;
}

/// Calls `f` with every `environ` entry that starts with `prefix`.
fn scan(prefix: &[u8], mut f: impl FnMut(&[u8])) {
    // SAFETY: `environ` is libc's array of NUL-terminated strings ending in
    // NULL; the constructor reads it before `main`, as std::env would. A
    // prefix byte is compared only after the previous one matched, so no
    // read passes an entry's NUL.
    unsafe {
        let mut p = environ;
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
pub fn cgofix_vars() -> Vec<(String, String)> {
    let mut out = Vec::new();
    scan(b"CGOFIX_", |entry| {
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
pub fn var(name: &str) -> Option<String> {
    let mut found = None;
    scan(name.as_bytes(), |entry| {
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
        assert_eq!(var("PATH"), std::env::var("PATH").ok());
        assert_eq!(var("PAT"), None);
        assert_eq!(var("CGOFIX_NO_SUCH_VARIABLE_EVER"), None);
    }
}

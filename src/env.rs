//! The `CGOFIX_*` variables, read straight from `environ` by the
//! constructor: only matching entries are copied (`std::env::vars_os`
//! copies every variable, which was ~70k of the ~170k instructions the shim
//! added to a process start, measured with callgrind on `/bin/true`).
//! Lossy, not skipped: a value that is not UTF-8 is malformed input and gets
//! its warning line from `config::parse`.

unsafe extern "C" {
    /// libc's `KEY=VALUE` array, NULL-terminated.
    static environ: *const *const libc::c_char;
}

pub fn cgofix_vars() -> Vec<(String, String)> {
    let mut out = Vec::new();
    // SAFETY: `environ` is libc's array of NUL-terminated strings ending in
    // NULL; the constructor reads it before `main`, as std::env would.
    unsafe {
        let mut p = environ;
        while !p.is_null() && !(*p).is_null() {
            let entry = std::ffi::CStr::from_ptr(*p).to_bytes();
            p = p.add(1);
            if !entry.starts_with(b"CGOFIX_") {
                continue;
            }
            let (k, v) = match entry.iter().position(|&b| b == b'=') {
                Some(eq) => (&entry[..eq], &entry[eq + 1..]),
                None => (entry, &b""[..]),
            };
            out.push((
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            ));
        }
    }
    out
}

//! `cargo +nightly fuzz run config`: the CGOFIX_* parser on arbitrary
//! environments. Invariants: no panic; every warning is one line that starts
//! with "cgofix: " and names a CGOFIX_ variable.
#![no_main]
use libfuzzer_sys::fuzz_target;

// The parser's own source files, not the cgofix crate: linking the crate
// would export its pthread_create/sigaction/dlopen hooks from this binary,
// ahead of AddressSanitizer's interceptors, and break ASan's thread tracking.
#[path = "../../src/config.rs"]
mod config;
#[path = "../../src/names.rs"]
mod names;
#[path = "../../src/sigset.rs"]
mod sigset;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // "NAME=VALUE" records separated by NUL, like an environment block.
    let pairs: Vec<(String, String)> = text
        .split('\0')
        .filter_map(|r| r.split_once('='))
        .map(|(k, v)| (format!("CGOFIX_{k}"), v.to_string()))
        .collect();
    let (_, warnings) = config::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    for w in &warnings {
        assert!(w.starts_with("cgofix: ") && w.contains("CGOFIX_"), "{w}");
        assert!(!w.contains('\n') && !w.contains('\r'), "{w:?}");
    }
    assert!(warnings.len() <= pairs.len());
});

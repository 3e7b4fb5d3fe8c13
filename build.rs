//! Link-time choices that make loading libcgofix.so cheap: it is preloaded
//! into every process of a container (README "Performance", start-up rows).
//!
//! 1. The shim's references to its own exported hooks (the `own` addresses
//!    that `RealFn::resolve` rejects) bind at link time through the hidden
//!    aliases of interpose's `hook!`/`own!`, in this build and the zig one.
//!    As references to preemptible symbols they were GOT entries that the
//!    loader looked up by name in every process start (9 symbol lookups;
//!    callgrind, a `/bin/true` start of the zig build: -5.1k instructions).
//!    That replaced `-Bsymbolic-functions`, which did the same for this
//!    build only (zig cc accepts neither it nor `--dynamic-list`) and now
//!    changes nothing (same relocations, same instruction count). Not plain
//!    `-Bsymbolic` either: it also sets DF_SYMBOLIC, which makes the loader
//!    search the shim first for every symbol it imports (+1.8k).
//!
//! 2. `-nostartfiles`: no crti/crtn/crtbeginS/crtendS. Their
//!    `frame_dummy`, `__do_global_dtors_aux` and `_init`/`_fini` (TM clone
//!    registration, `__cxa_finalize` at unload) do nothing for a library
//!    that is never unloaded, yet cost every process start three weak
//!    lookups that fail after searching every object (`__gmon_start__`,
//!    `_ITM_registerTMCloneTable`, `_ITM_deregisterTMCloneTable`), the
//!    `__cxa_finalize` lookup and a code page faulted in at exit (callgrind,
//!    a `/bin/true` start: -3.4k instructions; 2 page faults fewer). lld
//!    defines `__dso_handle` itself and terminates `.eh_frame`; unwinding
//!    finds FDEs through `.eh_frame_hdr` (checked: a panic in the
//!    constructor is caught and backtraced). x86_64 only, where that was
//!    verified with rustc's default linker (rust-lld). The zig build has
//!    none of these imports (zig links no crtbegin).
//!
//! 3. The unwinder is linked in privately instead of depending on
//!    libgcc_s.so.1.
//!
//! 4. (In the source, not here.) The code every process start runs, the
//!    constructor and what it calls, and the `sigaction` hook every forked
//!    child of a shell calls, is placed in one section,
//!    `.text.cgofix_startup` (`#[link_section]`), so that it lies in one or
//!    two of the kernel's 64 KiB fault-around windows instead of being
//!    spread over 100 KiB of `.text`: every window touched is a page fault
//!    in every process (a `/bin/true` start: -1.2 faults on average;
//!    README "Performance", third round). The `ctor` crate's wrapper
//!    function could not be placed, hence the hand-written `.init_array`
//!    entry in src/lib.rs.
//!
//! 5. std's own `.init_array` function (`ARGV_INIT_ARRAY::init_wrapper`,
//!    which saves argc/argv) runs in every process start too, and LTO put
//!    it near the end of `.text`, one more window: a symbol ordering file
//!    moves it to the start of `.text`, next to the start-up section
//!    (`/bin/true`: -1.0 fault on average). Its mangled name carries std's
//!    crate hash, so it is read from the toolchain's `libstd-*.so`; when it
//!    is not found nothing is ordered, and lld is told not to warn about a
//!    name it does not know. x86_64 with rust-lld only, as 2.
//!
//! 6. `-z separate-code`: code gets pages of its own in the file, so the
//!    writable segments start page-aligned. Without it, the relocated data
//!    (RELRO, 6.7 KiB after the fourth round) began wherever `.text` ended
//!    in its page and spilled into a third page by 64 bytes, which the
//!    loader zero-fills (`.relro_padding`) and the relocations write: one
//!    page fault more in every process, decided by the size of the code.
//!    Page-aligned, RELRO is two pages with 1.4 KiB to spare and the data
//!    and `.bss` two more (a `/bin/true` start over the empty preload:
//!    +3.1 -> +1.1 minor faults, with `src/lazy_table.rs`; README
//!    "Performance", fourth round). It also keeps code out of the pages
//!    that hold data, the hardening it was made for. Costs up to two pages
//!    of padding in the file, none in memory. Since the sixth round also
//!    `-z separate-loadable-segments` (lld), which starts the writable data
//!    after RELRO on a page: begun where RELRO ended in its page, `.data`
//!    and `.bss` took two pages where one holds them, both written in every
//!    process (one page fault fewer; README "Performance", sixth round).
//!    The zig build: 7.
//!
//! 7. The zig build gets 5 and 6 from a linker script instead,
//!    link/zig-layout.ld (zig cc hands lld a `-T` script, while it rejects
//!    both options): std's argv function and the start-up section first in
//!    the code, RELRO page-aligned. A `/bin/true` start over the empty
//!    preload: +4.2 -> +1.1 minor faults, the plain build's figure; storm
//!    1.027 -> 1.020 (README "Performance", fifth round).
//!
//! Why: Bun does not otherwise load libgcc_s, and loading it was most of the
//! shim's start-up cost (measured: `/bin/true` +0.24 ms per process with
//! the dependency, +0.11 ms without; `bun -e 0` ratio 1.051 -> 1.024). The
//! unwinder must stay (every hook catches panics; `panic = "abort"` would
//! turn a shim bug into a host crash), so it comes from GCC's static
//! `libgcc_eh.a`, the archive `gcc -static-libgcc` itself uses.
//!
//! How: std's `unwind` crate asks the linker for `-lgcc_s`. A directory
//! searched first that holds a `libgcc_s.a` (a link to `libgcc_eh.a`)
//! satisfies that request statically; rustc's version script for a cdylib
//! keeps the `_Unwind_*` symbols local, so the host's own exception
//! handling never binds to ours (tests/packaging.rs checks both: no
//! `libgcc_s` dependency, no `_Unwind_*` export). This is what the zig
//! build already does with LLVM's libunwind.
//!
//! Skipped, leaving the usual dynamic dependency, when a linker was chosen
//! for the target by cargo-zigbuild (`RUSTC_LINKER` names its `zigcc` wrapper: zig brings its own unwinder),
//! when the target is not *-linux-gnu, or when the compiler has no
//! `libgcc_eh.a`.
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    println!("cargo:rerun-if-env-changed=CC");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    // cargo-zigbuild sets the linker to its `zigcc-<target>` wrapper; any
    // other configured linker (the aarch64 cross gcc in .cargo/config.toml)
    // is an ordinary GNU toolchain and gets the same treatment as `cc`.
    let zig = var("RUSTC_LINKER").contains("zigcc");
    // zig links LLVM's libunwind; src/zig_imports.rs defines (hidden) its
    // rwlock calls and `dlsym`/`dladdr`, so that a glibc-2.17 build needs
    // neither libpthread.so.0 nor libdl.so.2.
    println!("cargo::rustc-check-cfg=cfg(cgofix_llvm_libunwind)");
    if zig && var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu" {
        println!("cargo:rustc-cfg=cgofix_llvm_libunwind");
    }
    // Never unloaded: in the in-process mode (src/inprocess.rs) other
    // objects' GOT slots point at the hooks, so a `dlclose` (Node's
    // `process.dlopen` closes a library that registers no module) must
    // not unmap it. DF_1_NODELETE makes glibc keep it; preloaded, it
    // changes nothing (a preload is never unloaded).
    if var("CARGO_CFG_TARGET_OS") == "linux" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    }
    // 6 above; zig cc rejects the option ("unsupported linker extension
    // flag").
    if var("CARGO_CFG_TARGET_OS") == "linux" && !zig {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,separate-code");
    }
    // 7 above.
    if var("CARGO_CFG_TARGET_OS") == "linux" && zig {
        let script = PathBuf::from(var("CARGO_MANIFEST_DIR")).join("link/zig-layout.ld");
        println!("cargo:rerun-if-changed={}", script.display());
        println!("cargo:rustc-cdylib-link-arg=-Wl,-T,{}", script.display());
    }
    // Verified with rust-lld, rustc's default linker there. (GNU ld, the
    // aarch64 cross build's, ignores `-z separate-loadable-segments` with a
    // warning; it starts the data after RELRO on a page by itself.)
    if var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ARCH") == "x86_64" && !zig {
        println!("cargo:rustc-cdylib-link-arg=-nostartfiles");
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,separate-loadable-segments");
        order_std_argv_init(&var("TARGET"));
    }
    if var("CARGO_CFG_TARGET_OS") != "linux" || var("CARGO_CFG_TARGET_ENV") != "gnu" || zig {
        return;
    }
    // The compiler of the *target*: a cross build must not pick the host's
    // libgcc_eh.a. `CC_<target>` (the cc crate's convention) first; plain
    // `CC` only for a native build; else Debian's cross compiler name.
    let (target, host) = (var("TARGET"), var("HOST"));
    let target_cc = format!("CC_{}", target.replace('-', "_"));
    println!("cargo:rerun-if-env-changed={target_cc}");
    let native = target == host;
    let cc = std::env::var(&target_cc)
        .ok()
        .or_else(|| native.then(|| std::env::var("CC").ok()).flatten())
        .unwrap_or_else(|| {
            if native {
                "cc".to_string()
            } else {
                format!("{}-linux-gnu-gcc", var("CARGO_CFG_TARGET_ARCH"))
            }
        });
    let Some(eh) = Command::new(&cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|p| p.is_absolute() && p.is_file())
    else {
        println!("cargo:warning=libgcc_eh.a not found: linking libgcc_s.so.1 dynamically");
        return;
    };
    let dir = PathBuf::from(var("OUT_DIR")).join("static-unwinder");
    std::fs::create_dir_all(&dir).expect("create OUT_DIR/static-unwinder");
    let link = dir.join("libgcc_s.a");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&eh, &link).expect("link libgcc_s.a -> libgcc_eh.a");
    println!("cargo:rustc-link-search=native={}", dir.display());
}

/// Item 5 of the module comment: `--symbol-ordering-file` naming std's
/// argv `.init_array` function, found in the toolchain's std dylib (the
/// same build of std as the rlib that is linked, so the same mangled name).
fn order_std_argv_init(target: &str) {
    const NEEDLE: &[u8] = b"ARGV_INIT_ARRAY12init_wrapper";
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Some(sysroot) = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
    else {
        return;
    };
    let libdir = sysroot.join("lib/rustlib").join(target).join("lib");
    let Some(dylib) = std::fs::read_dir(&libdir).ok().and_then(|d| {
        d.flatten().map(|e| e.path()).find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libstd-") && n.ends_with(".so"))
        })
    }) else {
        return;
    };
    let Ok(bytes) = std::fs::read(&dylib) else {
        return;
    };
    // The whole NUL-terminated symbol name around the needle (.strtab).
    let Some(at) = bytes.windows(NEEDLE.len()).position(|w| w == NEEDLE) else {
        return;
    };
    let start = bytes[..at]
        .iter()
        .rposition(|&b| b == 0)
        .map_or(0, |i| i + 1);
    let end = at + NEEDLE.len();
    // std's v0-mangled name ends with the needle; anything else (another
    // mangling, a string that merely contains it) orders nothing.
    if !bytes[start..].starts_with(b"_R") || bytes.get(end) != Some(&0) {
        return;
    }
    let name = String::from_utf8_lossy(&bytes[start..end]).into_owned();
    let file = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("symbol-order.txt");
    std::fs::write(&file, format!("{name}\n")).expect("write OUT_DIR/symbol-order.txt");
    println!("cargo:rerun-if-changed={}", dylib.display());
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--symbol-ordering-file={}",
        file.display()
    );
    println!("cargo:rustc-cdylib-link-arg=-Wl,--no-warn-symbol-ordering");
}

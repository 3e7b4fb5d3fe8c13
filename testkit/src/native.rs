//! Native code the tests run: the release shim, the Go/N-API fixtures
//! (tests/fixtures/build.sh) and the C probes (tests/programs).

use crate::deps::{Go, deps};
use crate::proc::run;
use crate::root;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const CC_TIMEOUT: Duration = Duration::from_secs(120);
/// A cold build of the fixtures with one Go toolchain takes about a minute.
const FIXTURE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The release shim the tests preload: `CGOFIXTEST_LIB`, else this
/// checkout's target/release/libcgofix.so (scripts/test.sh builds it).
pub fn shim() -> PathBuf {
    let p = std::env::var_os("CGOFIXTEST_LIB")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/release/libcgofix.so"));
    assert!(
        p.exists(),
        "{} missing: run `cargo build --release -p cgofix` (scripts/test.sh does)",
        p.display()
    );
    p
}

/// The architecture a fixture is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    /// The host's (the tests run on x86_64 machines).
    X86_64,
    /// Cross-built with Debian's aarch64-linux-gnu-gcc, run under qemu-user
    /// (docs/background.md §8; [`crate::aarch64`]).
    Aarch64,
}

impl Arch {
    /// Go's name for it (`GOARCH`), as tests/fixtures/build.sh takes it.
    pub fn goarch(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }
    /// ELF `e_machine`: EM_X86_64 (62), EM_AARCH64 (183).
    pub fn elf_machine(self) -> u16 {
        match self {
            Arch::X86_64 => 62,
            Arch::Aarch64 => 183,
        }
    }
}

/// Builds tests/fixtures for `go` once per test process; returns the dir.
pub fn fixtures(go: Go) -> PathBuf {
    fixtures_for(go, Arch::X86_64)
}

/// tests/fixtures built for `arch` with `go` (cshared.node, carchive.node,
/// ffi.so, plain.node), once per test process, under
/// target/fixtures/LABEL (x86_64) or target/fixtures-arm64/LABEL.
pub fn fixtures_for(go: Go, arch: Arch) -> PathBuf {
    static BUILT: Mutex<Vec<(Go, Arch, PathBuf)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, _, p)) = built.iter().find(|(g, a, _)| *g == go && *a == arch) {
        return p.clone();
    }
    let dir = match arch {
        Arch::X86_64 => "target/fixtures",
        Arch::Aarch64 => "target/fixtures-arm64",
    };
    let out = root().join(dir).join(go.label());
    let mut c = Command::new("bash");
    c.arg(root().join("tests/fixtures/build.sh"))
        .arg(&out)
        .arg(go.binary())
        .arg(arch.goarch())
        .env("CGOFIXTEST_NAPI_INCLUDE", &deps().napi_include);
    run(
        format!(
            "tests/fixtures/build.sh with {} for {}",
            go.label(),
            arch.goarch()
        ),
        c,
        FIXTURE_TIMEOUT,
    )
    .expect_success();
    built.push((go, arch, out.clone()));
    out
}

/// Async works tests/fixtures/js/mix.js queues per module it loads: 20
/// `asyncWork` calls and one `probeStackSize`, each one call of
/// `napi_queue_async_work`.
pub const MIX_WORKS_PER_MODULE: u64 = 21;

/// tests/fixtures/js/NAME.
pub fn js(name: &str) -> PathBuf {
    root().join("tests/fixtures/js").join(name)
}

/// tests/programs/NAME.c.
pub fn program_source(name: &str) -> PathBuf {
    root().join("tests/programs").join(format!("{name}.c"))
}

/// Compiles tests/programs/NAME.c (with `-Wall -Werror`) once into
/// target/programs/NAME; rebuilt when the source is newer.
pub fn c_program(name: &str, flags: &[&str]) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let src = program_source(name);
    let out = root().join("target/programs").join(name);
    let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let fresh = matches!((m(&out), m(&src)), (Some(a), Some(b)) if a > b);
    if !fresh {
        let mut all = vec!["-Wall", "-Werror"];
        all.extend(flags);
        cc(name, &[src], &all);
    }
    out
}

/// `cc -O2 -pthread SOURCES FLAGS -o target/programs/OUT`, always rebuilt
/// (cheap, never stale), through a unique temporary name so parallel tests
/// never see a half-written file.
pub fn cc(out: &str, sources: &[PathBuf], flags: &[&str]) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = root().join("target/programs");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(out);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(
        ".{}.tmp{}-{n}",
        out.file_name().unwrap().to_string_lossy(),
        std::process::id()
    ));
    let mut c = Command::new("cc");
    c.args(["-O2", "-pthread"])
        .args(sources)
        .args(flags)
        .arg("-o")
        .arg(&tmp);
    run(format!("cc {}", out.display()), c, CC_TIMEOUT).expect_success();
    std::fs::rename(&tmp, &out).unwrap();
    out
}

/// The C compiler for the architecture these tests were built for: `cc`,
/// or, in an aarch64 test binary on a machine with Debian's cross compiler
/// (the tests then run under qemu-user, .cargo/config.toml), that compiler.
pub fn target_cc() -> &'static str {
    let cross = "aarch64-linux-gnu-gcc";
    if cfg!(target_arch = "aarch64")
        && std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(cross).is_file()))
    {
        cross
    } else {
        "cc"
    }
}

//! `cgofix doctor`: which native modules under a directory carry a Go
//! runtime, which Bun would run them, and whether that combination needs the
//! shim.

use crate::elfscan::{self, ElfInfo};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Module {
    pub path: PathBuf,
    pub info: ElfInfo,
}

#[derive(Default)]
pub struct Scan {
    pub modules: Vec<Module>,
    /// Problems met on the way (unreadable entries, symlink loops skipped, ...).
    pub notes: Vec<String>,
    pub files: u64,
    pub dirs: u64,
}

/// Names that may hold native code: `*.node`, `*.so`, `*.so.N[.M...]`.
fn candidate(name: &[u8]) -> bool {
    if name.ends_with(b".node") || name.ends_with(b".so") {
        return true;
    }
    // libfoo.so.1.2
    let Some(at) = name.windows(4).position(|w| w == b".so.") else {
        return false;
    };
    name[at + 4..]
        .iter()
        .all(|&c| c.is_ascii_digit() || c == b'.')
}

fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => {
            let s = e.to_string();
            s.split(" (os error").next().unwrap_or(&s).to_string()
        }
    }
}

/// Walks `root` (following symlinks, but entering each directory, by
/// device and inode, once) and inspects every candidate file. Never fails:
/// whatever cannot be read becomes a note.
pub fn scan(root: &Path) -> Scan {
    let mut out = Scan::default();
    let mut seen_dirs: HashSet<(u64, u64)> = HashSet::new();
    let mut seen_files: HashSet<(u64, u64)> = HashSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        match fs::metadata(&dir) {
            Ok(m) if !seen_dirs.insert((m.dev(), m.ino())) => {
                out.notes.push(format!(
                    "{}: directory already visited (symlink loop or second link), skipped",
                    dir.display()
                ));
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                out.notes
                    .push(format!("{}: {}", dir.display(), describe(&e)));
                continue;
            }
        }
        let entries = match fs::read_dir(&dir) {
            Ok(rd) => {
                out.dirs += 1;
                rd
            }
            Err(e) => {
                out.notes.push(format!(
                    "{}: cannot read directory ({})",
                    dir.display(),
                    describe(&e)
                ));
                continue;
            }
        };
        let mut subdirs = Vec::new();
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    out.notes.push(format!(
                        "{}: cannot list an entry ({})",
                        dir.display(),
                        describe(&e)
                    ));
                    continue;
                }
            };
            let name = entry.file_name();
            let path = entry.path();
            let Ok(mut ft) = entry.file_type() else {
                continue;
            };
            if ft.is_symlink() {
                match fs::metadata(&path) {
                    Ok(m) => ft = m.file_type(),
                    Err(_) => continue, // dangling link: nothing to inspect
                }
            }
            if ft.is_dir() {
                if name != ".git" {
                    subdirs.push(path);
                }
            } else if ft.is_file() {
                out.files += 1;
                if candidate(name.as_encoded_bytes()) {
                    inspect_into(&path, &mut out, &mut seen_files);
                }
            }
        }
        // Visit in name order (stack: reversed) so output is stable.
        subdirs.sort();
        stack.extend(subdirs.into_iter().rev());
    }
    out.modules.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn inspect_into(path: &Path, out: &mut Scan, seen: &mut HashSet<(u64, u64)>) {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) => {
            out.notes.push(format!(
                "{}: cannot read ({})",
                path.display(),
                describe(&e)
            ));
            return;
        }
    };
    if let Ok(m) = f.metadata()
        && !seen.insert((m.dev(), m.ino()))
    {
        return; // the same file under another name (pnpm-style links)
    }
    match elfscan::inspect_file(&f) {
        Ok(Some(info)) => out.modules.push(Module {
            path: path.to_path_buf(),
            info,
        }),
        Ok(None) => {}
        Err(e) => out.notes.push(format!(
            "{}: cannot read ({})",
            path.display(),
            describe(&e)
        )),
    }
}

/// How a Bun version fares, from what this project measured.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    /// `Some(true)` affected, `Some(false)` not, `None` unknown (treated as affected).
    pub affected: Option<bool>,
    pub summary: &'static str,
    pub evidence: &'static str,
}

const EVIDENCE_HANG: &str = "measured by this project on every Bun from 1.0.36 to 1.3.14 \
(bun:ffi + WebAssembly repro; docs/background.md §1); oven-sh/bun#31158, PR #31161, PR #21821";
const EVIDENCE_PROF: &str = "measured by this project: 1.4.0 and 1.4.3 hang under --cpu-prof \
(docs/background.md §1); oven-sh/bun#31158";
const EVIDENCE_FIXED: &str = "measured by this project: 1.4.4 and 1.4.5 no longer hang; JSC's suspend \
handler reads the interrupted stack pointer from its ucontext since 1.4.4 (docs/background.md §7); \
oven-sh/bun#31158, PR #31161";

/// Parses `1.3.14`, `v1.3.14`, `1.4.0-canary.5+abc` into (major, minor, patch).
pub fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let v = v.trim().trim_start_matches('v');
    let core = v.split(['-', '+', ' ']).next()?;
    let mut it = core.split('.').map(|p| p.parse::<u64>().ok());
    let t = (it.next()??, it.next()??, it.next()??);
    it.next().is_none().then_some(t)
}

pub fn assess(version: Option<&str>) -> Verdict {
    let unknown = Verdict {
        affected: None,
        summary: "version unknown: assuming affected",
        evidence: EVIDENCE_HANG,
    };
    let Some((maj, min, patch)) = version.and_then(parse_version) else {
        return unknown;
    };
    match (maj, min, patch) {
        (0, _, _) => Verdict {
            affected: None,
            summary: "Bun 0.x was never measured; it uses the same JavaScriptCore suspend mechanism, assume affected",
            evidence: EVIDENCE_HANG,
        },
        (1, 0..=3, _) => Verdict {
            affected: Some(true),
            summary: "AFFECTED: once a Go module is loaded, any WebAssembly call (also --cpu-prof, GC under Workers) \
                      hangs the process in a SIGPWR storm at 100 % CPU",
            evidence: EVIDENCE_HANG,
        },
        (1, 4, 0..=3) => Verdict {
            affected: Some(true),
            summary: "AFFECTED under `bun --cpu-prof` (and possibly GC under Workers) once a Go module is loaded",
            evidence: EVIDENCE_PROF,
        },
        _ => Verdict {
            affected: Some(false),
            summary: "not affected: fixed upstream in Bun 1.4.4",
            evidence: EVIDENCE_FIXED,
        },
    }
}

pub struct Bun {
    pub path: PathBuf,
    pub version: Option<String>,
    /// Why the version is missing.
    pub version_error: Option<String>,
}

/// The `bun` that `PATH` lookup would run.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| {
            if d.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                d
            }
        })
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs `bun --version`, killing it after `timeout`.
pub fn bun_version(bun: &Path, timeout: Duration) -> Result<String, String> {
    let mut child = Command::new(bun)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .env_remove("LD_PRELOAD")
        .spawn()
        .map_err(|e| format!("cannot run `{} --version`: {}", bun.display(), describe(&e)))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{} --version` did not finish within {} s",
                    bun.display(),
                    timeout.as_secs()
                ));
            }
            Err(e) => return Err(format!("waiting for bun: {e}")),
        }
    };
    let mut text = String::new();
    if let Some(mut out) = child.stdout.take() {
        use std::io::Read;
        let _ = out.read_to_string(&mut text);
    }
    let v = text.lines().next().unwrap_or("").trim().to_string();
    if !status.success() || v.is_empty() {
        return Err(format!(
            "`{} --version` failed ({status}) without printing a version",
            bun.display()
        ));
    }
    Ok(v)
}

/// The part of package.json doctor reads.
#[derive(Deserialize)]
struct Package {
    main: Option<String>,
}

/// The app's entry point for the printed command: `main` from package.json,
/// else the first of a few usual names that exists.
fn entry_point(dir: &Path) -> String {
    if let Ok(text) = fs::read_to_string(dir.join("package.json"))
        && let Ok(Package { main: Some(main) }) = serde_json::from_str(&text)
        && !main.is_empty()
    {
        return main;
    }
    ["index.ts", "index.js", "app.js", "server.js", "main.js"]
        .iter()
        .find(|n| dir.join(n).is_file())
        .map_or_else(|| "app.js".into(), |n| n.to_string())
}

/// Single-quotes `s` for a POSIX shell when it needs quoting.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

pub struct Options {
    pub dir: PathBuf,
    pub bun: Option<PathBuf>,
    pub json: bool,
}

/// `doctor --json`, in this key order. `None` is written as `null`.
#[derive(Serialize)]
struct DoctorJson<'a> {
    cgofix: &'static str,
    dir: String,
    files_scanned: u64,
    dirs_scanned: u64,
    scan_ms: u64,
    modules: Vec<ModuleJson<'a>>,
    go_modules: u64,
    /// Risks the shim cannot fix (today: more than one Go runtime).
    warnings: &'a [String],
    notes: &'a [String],
    bun: Option<BunJson<'a>>,
    shim_needed: bool,
    library: Option<String>,
    /// The command to run the app with the shim (LD_PRELOAD when the library
    /// was found, else `cgofix run`).
    command: &'a str,
    run_command: &'a str,
}

#[derive(Serialize)]
struct ModuleJson<'a> {
    path: String,
    go: bool,
    go_version: Option<&'a str>,
    buildmode: Option<&'static str>,
    exports_cgo_wait_runtime_init_done: bool,
    problem: Option<&'a str>,
}

#[derive(Serialize)]
struct BunJson<'a> {
    path: String,
    version: Option<&'a str>,
    version_error: Option<&'a str>,
    affected: Option<bool>,
    summary: &'static str,
    evidence: &'static str,
}

/// More than one Go object in a project means more than one Go runtime if
/// a process loads them together, which Go does not support
/// (https://github.com/golang/go/issues/18976); in practice it crashes
/// (apache/arrow-adbc#1841, go-python/gopy#370). The shim reports it at run
/// time too (`go_runtimes` in the exit report) but cannot make it work.
fn runtime_warnings(scan: &Scan) -> Vec<String> {
    let go: Vec<String> = scan
        .modules
        .iter()
        .filter(|m| m.info.is_go)
        .map(|m| m.path.display().to_string())
        .collect();
    if go.len() < 2 {
        return Vec::new();
    }
    vec![format!(
        "{} Go modules ({}): each carries its own Go runtime; a process that loads two of them is \
         unsupported by Go and known to crash (golang/go#18976, apache/arrow-adbc#1841). The shim cannot fix that.",
        go.len(),
        go.join(", ")
    )]
}

/// Runs the whole diagnosis and prints it. Returns the exit code.
pub fn run(opts: &Options) -> Result<i32, String> {
    let started = Instant::now();
    let dir = &opts.dir;
    let meta = fs::metadata(dir).map_err(|e| format!("{}: {}", dir.display(), describe(&e)))?;
    let scan = if meta.is_dir() {
        scan(dir)
    } else {
        // A single file: inspect just that.
        let mut s = Scan {
            files: 1,
            ..Scan::default()
        };
        inspect_into(dir, &mut s, &mut HashSet::new());
        s
    };
    let scan_time = started.elapsed();

    let bun_path = match &opts.bun {
        Some(p) => {
            let p = if p.components().count() == 1 && !p.exists() {
                find_on_path(&p.to_string_lossy())
                    .ok_or_else(|| format!("--bun {}: not found on PATH", p.display()))?
            } else {
                p.clone()
            };
            if !is_executable(&p) {
                return Err(format!("--bun {}: not an executable file", p.display()));
            }
            Some(p)
        }
        None => find_on_path("bun"),
    };
    let bun = bun_path.map(|path| {
        let (version, version_error) = match bun_version(&path, Duration::from_secs(5)) {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(e)),
        };
        Bun {
            path,
            version,
            version_error,
        }
    });
    let verdict = bun.as_ref().map(|b| assess(b.version.as_deref()));
    let go_modules = scan.modules.iter().filter(|m| m.info.is_go).count();
    let needed = go_modules > 0 && verdict.as_ref().is_some_and(|v| v.affected != Some(false));
    let warnings = runtime_warnings(&scan);

    let lib = crate::find_library().ok();
    let bun_cmd = bun.as_ref().map_or("bun".to_string(), |b| {
        shell_quote(&b.path.to_string_lossy())
    });
    let abs_dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
    let app_dir = if meta.is_dir() {
        abs_dir.clone()
    } else {
        abs_dir.parent().map_or(abs_dir.clone(), Path::to_path_buf)
    };
    let entry = shell_quote(&entry_point(&app_dir));
    let cd = match std::env::current_dir() {
        Ok(cwd) if fs::canonicalize(&cwd).ok().as_deref() == Some(app_dir.as_path()) => {
            String::new()
        }
        _ => format!("cd {} && ", shell_quote(&app_dir.to_string_lossy())),
    };
    let self_exe = std::env::current_exe()
        .map(|p| shell_quote(&p.to_string_lossy()))
        .unwrap_or_else(|_| "cgofix".into());
    let preload_cmd = lib.as_ref().map(|l| {
        format!(
            "{cd}LD_PRELOAD={} {bun_cmd} {entry}",
            shell_quote(&l.to_string_lossy())
        )
    });
    let run_cmd = format!("{cd}{self_exe} run -- {bun_cmd} {entry}");

    if opts.json {
        let lossy = |p: &Path| p.to_string_lossy().into_owned();
        let doc = DoctorJson {
            cgofix: env!("CARGO_PKG_VERSION"),
            dir: lossy(&abs_dir),
            files_scanned: scan.files,
            dirs_scanned: scan.dirs,
            scan_ms: scan_time.as_millis() as u64,
            modules: scan
                .modules
                .iter()
                .map(|m| ModuleJson {
                    path: lossy(&m.path),
                    go: m.info.is_go,
                    go_version: m.info.go_version.as_deref(),
                    buildmode: m.info.buildmode(),
                    exports_cgo_wait_runtime_init_done: m.info.exports_cgo_wait,
                    problem: m.info.problem.as_deref(),
                })
                .collect(),
            go_modules: go_modules as u64,
            warnings: &warnings,
            notes: &scan.notes,
            bun: bun.as_ref().zip(verdict.as_ref()).map(|(b, v)| BunJson {
                path: lossy(&b.path),
                version: b.version.as_deref(),
                version_error: b.version_error.as_deref(),
                affected: v.affected,
                summary: v.summary,
                evidence: v.evidence,
            }),
            shim_needed: needed,
            library: lib.as_deref().map(lossy),
            command: preload_cmd.as_deref().unwrap_or(&run_cmd),
            run_command: &run_cmd,
        };
        let text = serde_json::to_string_pretty(&doc).expect("doctor's report always serialises");
        println!("{text}");
        return Ok(i32::from(needed));
    }

    let mut o = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(
        o,
        "cgofix doctor: {} ({} files in {} directories scanned in {} ms)",
        abs_dir.display(),
        scan.files,
        scan.dirs,
        scan_time.as_millis()
    );
    let _ = writeln!(o);
    if scan.modules.is_empty() {
        let _ = writeln!(o, "Native modules: none (no ELF .node/.so files)");
    } else {
        let _ = writeln!(
            o,
            "Native modules: {} ELF file(s), {} with a Go runtime",
            scan.modules.len(),
            go_modules
        );
        for m in &scan.modules {
            let i = &m.info;
            let what = if let Some(p) = &i.problem {
                p.clone()
            } else if i.is_go {
                format!(
                    "Go {}, {}, {} _cgo_wait_runtime_init_done",
                    i.go_version.as_deref().unwrap_or("(version unreadable)"),
                    i.buildmode().unwrap_or("?"),
                    if i.exports_cgo_wait {
                        "exports"
                    } else {
                        "does not export"
                    }
                )
            } else {
                "not Go".to_string()
            };
            let _ = writeln!(o, "  {}\n      {what}", m.path.display());
        }
    }
    for w in &warnings {
        let _ = writeln!(o, "WARNING: {w}");
    }
    if !scan.notes.is_empty() {
        let _ = writeln!(o, "Notes ({}):", scan.notes.len());
        for n in scan.notes.iter().take(20) {
            let _ = writeln!(o, "  {n}");
        }
        if scan.notes.len() > 20 {
            let _ = writeln!(o, "  ... and {} more (see --json)", scan.notes.len() - 20);
        }
    }
    let _ = writeln!(o);
    match (&bun, &verdict) {
        (Some(b), Some(v)) => {
            let _ = writeln!(
                o,
                "Bun: {}, version {}",
                b.path.display(),
                b.version.as_deref().unwrap_or("unknown")
            );
            if let Some(e) = &b.version_error {
                let _ = writeln!(o, "  {e}");
            }
            let _ = writeln!(o, "  {}", v.summary);
            let _ = writeln!(o, "  Evidence: {}", v.evidence);
        }
        _ => {
            let _ = writeln!(
                o,
                "Bun: not found on PATH (pass --bun PATH to check a specific one)"
            );
        }
    }
    let _ = writeln!(o);
    let verdict_line = match (go_modules > 0, &verdict) {
        (false, _) => "Verdict: the shim is not needed (no Go native module found).",
        (true, None) => {
            "Verdict: Go modules found but no Bun to check; under an affected Bun they need the shim."
        }
        (true, Some(v)) if v.affected == Some(false) => {
            "Verdict: the shim is not needed for this Bun (it still adds SA_ONSTACK to \
             handlers installed after Go started, which Go's os/signal docs require)."
        }
        (true, Some(_)) => "Verdict: the shim is NEEDED (Go native module + affected Bun).",
    };
    let _ = writeln!(o, "{verdict_line}");
    if go_modules > 0 {
        let _ = writeln!(o, "Run the app with the shim:");
        match &preload_cmd {
            Some(c) => {
                let _ = writeln!(o, "  {c}");
                let _ = writeln!(o, "  or: {run_cmd}");
            }
            None => {
                let _ = writeln!(o, "  {run_cmd}");
                let _ = writeln!(
                    o,
                    "  (libcgofix.so not found next to this binary: build it with \
                     `cargo build --release -p cgofix` or set CGOFIX_LIB)"
                );
            }
        }
    }
    print!("{o}");
    Ok(i32::from(needed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates() {
        for yes in ["a.node", "libx.so", "libx.so.1", "libx.so.1.2.3"] {
            assert!(candidate(yes.as_bytes()), "{yes}");
        }
        for no in ["a.js", "node", "x.so.bak", "x.sox", "so", "x.nodes"] {
            assert!(!candidate(no.as_bytes()), "{no}");
        }
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("1.3.14"), Some((1, 3, 14)));
        assert_eq!(parse_version("v1.4.0-canary.5+abc\n"), Some((1, 4, 0)));
        assert_eq!(parse_version("1.4"), None);
        assert_eq!(parse_version("1.4.5.6"), None);
        assert_eq!(parse_version("banana"), None);
    }

    #[test]
    fn verdicts() {
        let a = |v: &str| assess(Some(v)).affected;
        for v in ["1.0.0", "1.0.36", "1.1.45", "1.2.0", "1.3.14", "1.3.99"] {
            assert_eq!(a(v), Some(true), "{v}");
        }
        for v in ["1.4.0", "1.4.3"] {
            assert_eq!(a(v), Some(true), "{v}");
            assert!(assess(Some(v)).evidence.contains("1.4.0 and 1.4.3"));
        }
        for v in ["1.4.4", "1.4.5", "1.4.10", "1.5.0", "2.0.0"] {
            assert_eq!(a(v), Some(false), "{v}");
        }
        assert_eq!(a("0.8.1"), None);
        assert_eq!(assess(None).affected, None);
        assert!(
            assess(Some("1.3.14"))
                .evidence
                .contains("oven-sh/bun#31158")
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/usr/bin/bun"), "/usr/bin/bun");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}

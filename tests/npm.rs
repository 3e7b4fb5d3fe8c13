//! The npm packages (scripts/pack-npm.sh, templates in npm/): packed once
//! per test process, then installed from the two tarball files into fresh
//! projects with npm (`npm install --offline`) and Bun (`bun add`), with the
//! registry pointed at a closed port so nothing can come from it. On the
//! installed project:
//!
//! * `npx cgofix doctor` / `bunx cgofix doctor` give the built CLI's verdict;
//! * `cgofix run -- bun livelock.js` (Bun 1.3.14, a Go `.node`) finishes,
//!   and the same command without cgofix hangs (the control);
//! * `require("cgofix").libraryPath()` is the x86-64 ELF library;
//! * the arm64 package holds an aarch64 library and CLI; under qemu-user
//!   (docs/background.md §8) its `cgofix doctor` finds a Go module and its
//!   `cgofix run` fixes the livelock in aarch64 Bun 1.3.14;
//! * the `cgofix` launcher passes exit codes and signals through, forwards
//!   SIGTERM, and on an unsupported platform (CGOFIXTEST_PLATFORM) or
//!   without the platform package prints one line and exits 3.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use testkit::npm::*;
use testkit::*;

/// The packages' version: Cargo.toml's, the one source of truth.
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The launcher's exit status on an unsupported platform (README, Usage).
const UNSUPPORTED_EXIT: i32 = 3;
/// Bun that installs (`bun add`) and runs `bunx`; Bun the livelock needs.
const INSTALL_BUN: &str = "1.4.5";
const AFFECTED_BUN: &str = "1.3.14";

const QUICK: Duration = Duration::from_secs(60);
/// As in tests/livelock.rs: a fixed run finishes in well under a second.
const HANG_AFTER: Duration = Duration::from_secs(6);
const FINISH_WITHIN: Duration = Duration::from_secs(60);

/// A tarball unpacked into `dir/package`.
fn unpack(case: &str, tgz: &Path, dir: &Path) -> PathBuf {
    let mut c = Command::new("tar");
    c.arg("xzf").arg(tgz).arg("-C").arg(dir);
    run(format!("{case}: tar xzf {}", tgz.display()), c, QUICK).expect_success();
    dir.join("package")
}

fn read_json(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// (e_type, e_machine) of a 64-bit little-endian ELF file.
fn elf_kind(p: &Path) -> (u16, u16) {
    let d = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert!(
        d.len() > 64 && &d[..4] == b"\x7fELF" && d[4] == 2 && d[5] == 1,
        "{}: not a 64-bit little-endian ELF file",
        p.display()
    );
    (
        u16::from_le_bytes([d[16], d[17]]),
        u16::from_le_bytes([d[18], d[19]]),
    )
}
const ET_DYN: u16 = 3;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

/// The newest GLIBC_x.y that `objdump -T` lists for `p`.
fn glibc_floor(p: &Path) -> (u32, u32) {
    let mut c = Command::new("objdump");
    c.arg("-T").arg(p);
    let o = run(format!("objdump -T {}", p.display()), c, QUICK);
    o.expect_success();
    o.stdout()
        .split(|c: char| c == '(' || c == ')' || c.is_whitespace())
        .filter_map(|w| {
            let mut it = w.strip_prefix("GLIBC_")?.split('.');
            Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
        })
        .max()
        .unwrap_or_else(|| panic!("{}: no GLIBC_ versions", p.display()))
}

/// Sum of the sizes of the files under `dir`.
fn tree_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                tree_size(&e.path())
            } else {
                m.len()
            }
        })
        .sum()
}

/// Both packages are in node_modules, at the version packed, with an
/// executable `cgofix` and the library beside it.
fn assert_installed(case: &str, p: &Project) {
    let main = read_json(&p.app.join("node_modules/cgofix/package.json"));
    assert_eq!(main["version"], VERSION, "{case}: cgofix version");
    let plat = read_json(&p.platform_dir().join("package.json"));
    assert_eq!(plat["name"], PLATFORM_PACKAGE, "{case}");
    assert_eq!(
        plat["version"], VERSION,
        "{case}: {PLATFORM_PACKAGE} version"
    );
    use std::os::unix::fs::PermissionsExt;
    let cli = p.platform_dir().join("cgofix");
    let mode = std::fs::metadata(&cli)
        .unwrap_or_else(|e| panic!("{case}: {}: {e}", cli.display()))
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o111,
        0o111,
        "{case}: {} mode {mode:o}",
        cli.display()
    );
    assert!(p.platform_dir().join("libcgofix.so").is_file(), "{case}");
    assert!(p.bin().exists(), "{case}: no node_modules/.bin/cgofix");
}

// ---------------------------------------------------------------------------
// The packages themselves

#[test]
fn packages_hold_what_they_promise() {
    let p = packed(VERSION);
    let tmp = tempdir("npm contents");
    let main_dir = tmp.join("main");
    let plat_dir = tmp.join("platform");
    std::fs::create_dir(&main_dir).unwrap();
    std::fs::create_dir(&plat_dir).unwrap();
    let main = unpack("npm contents", &p.main, &main_dir);
    let plat = unpack("npm contents", &p.platform, &plat_dir);

    let m = read_json(&main.join("package.json"));
    assert_eq!(m["name"], "cgofix");
    assert_eq!(m["version"], VERSION, "version from Cargo.toml");
    assert_eq!(m["bin"]["cgofix"], "bin/cgofix.js");
    assert_eq!(m["main"], "index.js");
    assert_eq!(m["types"], "index.d.ts");
    assert_eq!(
        m["optionalDependencies"],
        serde_json::json!({ PLATFORM_PACKAGE: VERSION, ARM64_PACKAGE: VERSION }),
        "the platform packages, at the same version"
    );
    let x = read_json(&plat.join("package.json"));
    assert_eq!(x["name"], PLATFORM_PACKAGE);
    assert_eq!(x["version"], VERSION);
    assert_eq!(x["os"], serde_json::json!(["linux"]));
    assert_eq!(x["cpu"], serde_json::json!(["x64"]));
    assert_eq!(x["libc"], serde_json::json!(["glibc"]));
    // Two `cgofix` bins would clash in node_modules/.bin: the main package's.
    assert!(x.get("bin").is_none(), "{PLATFORM_PACKAGE} declares a bin");
    // Nothing runs or downloads at install time.
    for (name, pkg) in [("cgofix", &m), (PLATFORM_PACKAGE, &x)] {
        assert!(pkg.get("scripts").is_none(), "{name} has scripts: {pkg}");
        assert!(pkg.get("dependencies").is_none(), "{name} has dependencies");
    }
    // `cgofix/register` (the in-process mode, tests/inprocess.rs) resolves
    // through the exports map, for ESM (`node --import`) as well.
    assert_eq!(m["exports"]["./register"]["default"], "./register.js");
    assert_eq!(m["exports"]["./register"]["types"], "./register.d.ts");
    assert_eq!(m["exports"]["."]["default"], "./index.js");
    for f in [
        "index.js",
        "index.d.ts",
        "register.js",
        "register.d.ts",
        "bin/cgofix.js",
        "package.json",
    ] {
        assert!(main.join(f).is_file(), "cgofix package lacks {f}");
    }

    // The files: an x86-64 ELF library and executable at the glibc 2.17 floor.
    let (lib, cli) = platform_files(&plat, EM_X86_64);
    let o = run(
        "packaged cgofix --help",
        command(&cli, false).arg("--help"),
        QUICK,
    );
    o.expect_success();
    assert!(o.stdout().contains("cgofix run"), "{o:?}");

    // index.d.ts declares exactly what index.js exports.
    let mut c = command(&node(), false);
    c.arg("-e")
        .arg("console.log(Object.keys(require(process.argv[1])).sort().join(' '))")
        .arg(main.join("index.js"))
        .env_remove("CGOFIXTEST_PLATFORM");
    let o = run("index.js exports", c, QUICK);
    o.expect_success();
    let exports: Vec<&str> = o.stdout().split_whitespace().collect();
    for want in ["libraryPath", "cliPath", "platformPackage"] {
        assert!(exports.contains(&want), "index.js does not export {want}");
    }
    let dts = std::fs::read_to_string(main.join("index.d.ts")).unwrap();
    let mut declared: Vec<&str> = dts
        .lines()
        .filter_map(|l| {
            let rest = l
                .strip_prefix("export declare const ")
                .or_else(|| l.strip_prefix("export declare function "))?;
            rest.split([':', '(']).next()
        })
        .collect();
    declared.sort();
    assert_eq!(declared, exports, "index.d.ts vs index.js exports");

    let (packed_main, packed_plat) = (
        std::fs::metadata(&p.main).unwrap().len(),
        std::fs::metadata(&p.platform).unwrap().len(),
    );
    println!(
        "sizes: cgofix-{VERSION}.tgz {packed_main} B packed, {} B unpacked; \
         cgofix-{PLATFORM}-{VERSION}.tgz {packed_plat} B packed, {} B unpacked \
         (libcgofix.so {} B, cgofix {} B)",
        tree_size(&main),
        tree_size(&plat),
        std::fs::metadata(&lib).unwrap().len(),
        std::fs::metadata(&cli).unwrap().len()
    );
}

/// A command for the aarch64 CLI at `cli`, under qemu-user.
fn arm64_cli(cli: &Path) -> Command {
    testkit::aarch64::command(cli, &[])
}

/// A platform package's library and executable: ELF files for `machine`
/// that need no glibc above 2.17.
fn platform_files(plat: &Path, machine: u16) -> (PathBuf, PathBuf) {
    let lib = plat.join("libcgofix.so");
    let cli = plat.join("cgofix");
    assert_eq!(elf_kind(&lib), (ET_DYN, machine), "{}", lib.display());
    // A PIE executable is ET_DYN too; what tells it from the library is
    // that it runs (the callers run it).
    assert_eq!(elf_kind(&cli).1, machine, "{}", cli.display());
    for f in [&lib, &cli] {
        let floor = glibc_floor(f);
        assert!(
            floor <= (2, 17),
            "{} requires GLIBC_{}.{}, above the packages' 2.17 (README, glibc)",
            f.display(),
            floor.0,
            floor.1
        );
    }
    (lib, cli)
}

#[test]
fn arm64_package_holds_aarch64_files_that_run() {
    let p = packed(VERSION);
    let tmp = tempdir("npm arm64");
    let plat = unpack("npm arm64", &p.arm64, &tmp);
    let x = read_json(&plat.join("package.json"));
    assert_eq!(x["name"], ARM64_PACKAGE);
    assert_eq!(x["version"], VERSION);
    assert_eq!(x["os"], serde_json::json!(["linux"]));
    assert_eq!(x["cpu"], serde_json::json!(["arm64"]));
    assert_eq!(x["libc"], serde_json::json!(["glibc"]));
    assert!(x.get("bin").is_none(), "{ARM64_PACKAGE} declares a bin");
    assert!(x.get("scripts").is_none(), "{ARM64_PACKAGE} has scripts");
    assert!(
        x.get("dependencies").is_none(),
        "{ARM64_PACKAGE} has dependencies"
    );

    // An aarch64 ELF library and executable at the glibc 2.17 floor.
    let (lib, cli) = platform_files(&plat, EM_AARCH64);
    println!(
        "sizes: cgofix-{ARM64_PLATFORM}-{VERSION}.tgz {} B packed, {} B unpacked \
         (libcgofix.so {} B, cgofix {} B)",
        std::fs::metadata(&p.arm64).unwrap().len(),
        tree_size(&plat),
        std::fs::metadata(&lib).unwrap().len(),
        std::fs::metadata(&cli).unwrap().len()
    );

    // The CLI runs (qemu-user), and its doctor finds an arm64 Go module
    // and the library in its own package.
    let o = run(
        "arm64 cgofix --help (qemu)",
        arm64_cli(&cli).arg("--help"),
        QUICK,
    );
    o.expect_success();
    assert!(o.stdout().contains("cgofix run"), "{o:?}");
    let app = tmp.join("app");
    std::fs::create_dir(&app).unwrap();
    let go = testkit::aarch64::fixtures(Go::Newest);
    std::fs::copy(go.join("cshared.node"), app.join("cshared.node")).unwrap();
    let mut c = arm64_cli(&cli);
    c.args(["doctor", "--json"]).current_dir(&app);
    let o = run("arm64 cgofix doctor (qemu)", c, QUICK);
    o.expect_success();
    let v: Value = serde_json::from_str(o.stdout()).unwrap_or_else(|e| panic!("{e}: {o:?}"));
    assert_eq!(v["cgofix"], VERSION, "{v}");
    assert_eq!(v["go_modules"], 1, "{v}");
    assert_eq!(v["modules"][0]["buildmode"], "c-shared", "{v}");
    assert!(
        testkit::report::text(&v["modules"][0], "go_version").starts_with("go1."),
        "{v}"
    );
    assert_eq!(
        v["library"]
            .as_str()
            .map(|l| std::fs::canonicalize(l).unwrap()),
        Some(std::fs::canonicalize(&lib).unwrap()),
        "{v}"
    );

    // `cgofix run` fixes the livelock in aarch64 Bun 1.3.14 (the control
    // without it: tests/aarch64.rs). Without binfmt_misc, qemu-user cannot
    // exec an aarch64 program from the guest, so the command is qemu again:
    // the host loader skips the aarch64 LD_PRELOAD entry the CLI set ("cannot
    // be preloaded ... ignored"), and qemu hands the environment to the
    // guest Bun, whose loader preloads it.
    let mut c = arm64_cli(&cli);
    c.args(["run", "--", "qemu-aarch64", "-L", testkit::aarch64::SYSROOT])
        .arg(testkit::aarch64::bun(AFFECTED_BUN))
        .arg(js("livelock.js"))
        .arg(go.join("cshared.node"))
        .arg("node");
    check_livelock_fixed(&run(
        format!("arm64 package: cgofix run -- bun{AFFECTED_BUN} livelock.js (qemu)"),
        c,
        FINISH_WITHIN,
    ));
}

// ---------------------------------------------------------------------------
// Installed with npm and with Bun

/// `require("cgofix")` in the app, through `runtime` (node or bun): the
/// platform it detects and the two paths.
fn require_cgofix(case: &str, p: &Project, runtime: &Path) -> Value {
    let mut c = p.cmd(runtime);
    c.arg("-e").arg(
        "const c = require('cgofix'); console.log(JSON.stringify({platform: c.platform, \
         pkg: c.platformPackage, version: c.version, lib: c.libraryPath(), cli: c.cliPath()}))",
    );
    let o = run(format!("{case}: require('cgofix')"), c, QUICK);
    o.expect_success();
    serde_json::from_str(o.stdout().trim()).unwrap_or_else(|e| panic!("{case}: {e}: {o:?}"))
}

fn check_require(case: &str, p: &Project, packed_lib: &[u8]) {
    for runtime in [node(), bun(INSTALL_BUN)] {
        let case = format!("{case} via {}", runtime.display());
        let v = require_cgofix(&case, p, &runtime);
        assert_eq!(v["platform"], PLATFORM, "{case}: detected platform");
        assert_eq!(v["pkg"], PLATFORM_PACKAGE, "{case}");
        assert_eq!(v["version"], VERSION, "{case}");
        let lib = PathBuf::from(v["lib"].as_str().unwrap());
        assert_eq!(
            std::fs::canonicalize(&lib).unwrap(),
            std::fs::canonicalize(p.platform_dir().join("libcgofix.so")).unwrap(),
            "{case}: libraryPath()"
        );
        assert!(lib.is_absolute(), "{case}: {}", lib.display());
        assert_eq!(
            elf_kind(&lib),
            (ET_DYN, EM_X86_64),
            "{case}: {}",
            lib.display()
        );
        assert!(
            std::fs::read(&lib).unwrap() == packed_lib,
            "{case}: {} is not the packed library",
            lib.display()
        );
        let cli = PathBuf::from(v["cli"].as_str().unwrap());
        assert_eq!(
            cli.parent(),
            lib.parent(),
            "{case}: cliPath() beside the library"
        );
    }
}

/// The CLI cargo builds (`cargo build --release -p cgofix-cli`; a no-op
/// when `cargo test --workspace` built it already).
fn built_cli() -> PathBuf {
    static CLI: OnceLock<PathBuf> = OnceLock::new();
    CLI.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut c = command(Path::new(&cargo), false);
        c.args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "cgofix-cli",
            "--bin",
            "cgofix",
        ])
        .current_dir(root());
        run("cargo build -p cgofix-cli", c, PACK_TIMEOUT).expect_success();
        let p = root().join("target/release/cgofix");
        assert!(p.is_file(), "{} missing", p.display());
        p
    })
    .clone()
}

/// `doctor --json --bun BUN` run through `cmd` (+ args) in the app.
fn doctor(case: &str, p: &Project, cmd: &[&Path], bun_bin: &Path) -> (i32, Value) {
    let mut c = p.cmd(cmd[0]);
    c.args(&cmd[1..])
        .args(["doctor", "--json", "--bun"])
        .arg(bun_bin);
    let o = run(format!("{case}: doctor"), c, QUICK);
    let code = o.finished().code().unwrap_or_else(|| panic!("{o:?}"));
    let v: Value =
        serde_json::from_str(o.stdout()).unwrap_or_else(|e| panic!("{case}: {e}: {o:?}"));
    (code, v)
}

/// The packaged doctor, reached as `launcher`, against the built CLI, on
/// an app holding a Go c-shared `.node`: the same verdict, exit code and
/// findings for an affected and a fixed Bun.
fn check_doctor(case: &str, p: &Project, launcher: &[&Path]) {
    p.add_go_module();
    let cli = built_cli();
    for (bun_version, needed) in [(AFFECTED_BUN, true), (INSTALL_BUN, false)] {
        let b = bun(bun_version);
        let case = format!("{case} bun{bun_version}");
        let (code, mut got) = doctor(&case, p, launcher, &b);
        let (want_code, mut want) = doctor(&format!("{case} built CLI"), p, &[&cli], &b);
        assert_eq!(code, want_code, "{case}: exit code, packaged vs built");
        assert_eq!(code, i32::from(needed), "{case}: exit code");
        assert_eq!(got["shim_needed"], needed, "{case}: {got}");
        assert_eq!(got["go_modules"], 1, "{case}: {got}");
        // The packaged CLI finds the library in its own package.
        assert_eq!(
            got["library"]
                .as_str()
                .map(|l| std::fs::canonicalize(l).unwrap()),
            Some(std::fs::canonicalize(p.platform_dir().join("libcgofix.so")).unwrap()),
            "{case}: library"
        );
        // Where each binary lives, and how long the scan took, differ.
        for v in [&mut got, &mut want] {
            let o = v.as_object_mut().unwrap();
            for k in ["library", "command", "run_command", "scan_ms"] {
                assert!(o.remove(k).is_some(), "{case}: no {k}");
            }
        }
        assert_eq!(got, want, "{case}: packaged vs built doctor");
    }
}

#[test]
fn npm_install_offline_from_the_tarballs() {
    let packed = packed(VERSION);
    let (p, took) = npm_install("npm install", &both(packed));
    println!("install time: npm install --offline of both tarballs: {took:?}");
    assert_installed("npm install", &p);
    let tmp = tempdir("npm packed lib");
    let lib = unpack("npm packed lib", &packed.platform, &tmp).join("libcgofix.so");
    check_require("npm", &p, &std::fs::read(lib).unwrap());
    check_doctor("npx cgofix", &p, &[Path::new("npx"), Path::new("cgofix")]);
}

#[test]
fn bun_add_from_the_tarballs() {
    // `bun add ./cgofix.tgz` alone asks the registry for the optional
    // dependency (and skips it when that fails): give both files.
    let packed = packed(VERSION);
    let tmp = tempdir("bun packed lib");
    let lib = unpack("bun packed lib", &packed.platform, &tmp).join("libcgofix.so");
    let lib = std::fs::read(lib).unwrap();
    for version in [INSTALL_BUN, AFFECTED_BUN] {
        let case = format!("bun {version} add");
        let (p, took) = bun_add(&case, version, &both(packed));
        println!("install time: bun {version} add of both tarballs: {took:?}");
        assert_installed(&case, &p);
        check_require(&case, &p, &lib);
        let b = bun(version);
        // bunx runs the launcher with node (its shebang); --bun with Bun itself.
        check_doctor(
            &format!("bun {version} x cgofix"),
            &p,
            &[b.as_path(), Path::new("x"), Path::new("cgofix")],
        );
        check_doctor(
            &format!("bun {version} x --bun cgofix"),
            &p,
            &[
                b.as_path(),
                Path::new("x"),
                Path::new("--bun"),
                Path::new("cgofix"),
            ],
        );
    }
}

// ---------------------------------------------------------------------------
// The fix, through the package

fn check_livelock_fixed(o: &Outcome) {
    o.expect_success();
    let case = o.case();
    assert!(
        o.stdout().contains("CGOFIX-OK livelock"),
        "{case}: no marker: {o:?}"
    );
    // As tests/livelock.rs: no SA_ONSTACK (0x08000000) on the suspend signal.
    let flags = testkit::printed_flags(o.stdout());
    assert_eq!(
        flags & 0x0800_0000,
        0,
        "{case}: SA_ONSTACK on the suspend signal"
    );
}

#[test]
fn cgofix_run_from_the_package_fixes_the_livelock() {
    let packed = packed(VERSION);
    let (np, _) = npm_install("npm livelock", &both(packed));
    let (bp, _) = bun_add("bun livelock", INSTALL_BUN, &both(packed));
    let module = np.add_go_module();
    let affected = bun(AFFECTED_BUN);
    let script = js("livelock.js");
    let app_args = |c: &mut Command| {
        c.arg(&affected).arg(&script).arg(&module).arg("node");
    };

    // The control: the same app without cgofix hangs.
    let mut c = np.cmd(&affected);
    c.arg(&script).arg(&module).arg("node");
    let o = run(
        format!("npm livelock bun{AFFECTED_BUN} without cgofix"),
        c,
        HANG_AFTER,
    );
    assert!(o.hung(), "expected the run without cgofix to hang: {o:?}");

    let mut c = np.cmd(np.bin());
    c.args(["run", "--"]);
    app_args(&mut c);
    check_livelock_fixed(&run(
        format!("node_modules/.bin/cgofix run -- bun{AFFECTED_BUN} livelock.js"),
        c,
        FINISH_WITHIN,
    ));

    let mut c = np.cmd("npx");
    c.args(["cgofix", "run", "--"]);
    app_args(&mut c);
    check_livelock_fixed(&run(
        format!("npx cgofix run -- bun{AFFECTED_BUN} livelock.js"),
        c,
        FINISH_WITHIN,
    ));

    let mut c = bp.cmd(bun(INSTALL_BUN));
    c.args(["x", "cgofix", "run", "--"]);
    app_args(&mut c);
    check_livelock_fixed(&run(
        format!("bunx cgofix run -- bun{AFFECTED_BUN} livelock.js"),
        c,
        FINISH_WITHIN,
    ));
}

// ---------------------------------------------------------------------------
// The launcher

#[test]
fn launcher_passes_status_signals_and_the_library() {
    let (p, _) = npm_install("npm launcher", &both(packed(VERSION)));
    let lib = std::fs::canonicalize(p.platform_dir().join("libcgofix.so")).unwrap();
    for runtime in [node(), bun(INSTALL_BUN)] {
        let rt = runtime.file_name().unwrap().to_string_lossy().into_owned();
        let launcher = |script: &str| {
            let mut c = p.cmd(&runtime);
            c.arg(p.bin()).args(["run", "--", "sh", "-c", script]);
            c
        };
        let o = run(
            format!("launcher ({rt}): exit 7"),
            launcher("exit 7"),
            QUICK,
        );
        o.expect_code(7);
        let o = run(
            format!("launcher ({rt}): stdout and LD_PRELOAD"),
            launcher("echo \"preload=$LD_PRELOAD\"; echo err >&2"),
            QUICK,
        );
        o.expect_success();
        assert_eq!(o.stdout(), format!("preload={}\n", lib.display()), "{o:?}");
        assert!(o.stderr().contains("err"), "stderr not inherited: {o:?}");
        for sig in [libc::SIGTERM, libc::SIGHUP, libc::SIGSEGV] {
            let o = run(
                format!("launcher ({rt}): child killed by signal {sig}"),
                launcher(&format!("kill -{sig} $$")),
                QUICK,
            );
            assert_eq!(o.exit(), (None, Some(sig)), "{o:?}");
        }
        // A runtime that ignores the signal (both ignore SIGPIPE) reports
        // it as a shell does.
        let o = run(
            format!("launcher ({rt}): child killed by SIGPIPE"),
            launcher("kill -PIPE $$"),
            QUICK,
        );
        o.expect_code(128 + libc::SIGPIPE);

        // SIGTERM at the launcher alone reaches the program, and the
        // launcher leaves with its status once it has gone.
        let pidfile = p.tmp.join(format!("child-{rt}.pid"));
        let _ = std::fs::remove_file(&pidfile);
        let script = format!(
            "\"$0\" \"$1\" run -- sh -c 'echo $$ > {pf}.tmp; mv {pf}.tmp {pf}; exec sleep 30' & l=$!; \
             while [ ! -s {pf} ]; do sleep 0.05; done; kill -TERM $l; wait $l; echo launcher=$?; \
             if kill -0 $(cat {pf}) 2>/dev/null; then echo child=alive; else echo child=gone; fi",
            pf = pidfile.display()
        );
        let mut c = p.cmd("sh");
        c.arg("-c").arg(&script).arg(&runtime).arg(p.bin());
        let o = run(format!("launcher ({rt}): SIGTERM forwarded"), c, QUICK);
        o.expect_success();
        assert_eq!(
            o.stdout(),
            format!("launcher={}\nchild=gone\n", 128 + libc::SIGTERM),
            "{o:?}"
        );
        assert!(
            o.finished().elapsed < Duration::from_secs(20),
            "the child outlived the SIGTERM: {o:?}"
        );
    }
}

/// Runs the launcher (`cgofix doctor`) and `libraryPath()` under `runtime`
/// with CGOFIXTEST_PLATFORM=`platform` (None: detected) and expects exit 3
/// with one line on stderr containing every word of `want`.
fn expect_unsupported(p: &Project, runtime: &Path, platform: Option<&str>, want: &[&str]) {
    let rt = runtime.file_name().unwrap().to_string_lossy().into_owned();
    let case = format!("unsupported {} ({rt})", platform.unwrap_or("detected"));
    let set = |c: &mut Command| {
        if let Some(pl) = platform {
            c.env("CGOFIXTEST_PLATFORM", pl);
        }
    };
    let mut c = p.cmd(runtime);
    c.arg(p.bin()).arg("doctor");
    set(&mut c);
    let o = run(format!("{case}: launcher"), c, QUICK);
    o.expect_code(UNSUPPORTED_EXIT);
    assert_eq!(o.stdout(), "", "{case}: {o:?}");
    let err = o.stderr();
    assert_eq!(err.lines().count(), 1, "{case}: one line: {o:?}");
    assert!(err.starts_with("cgofix: "), "{case}: {err}");
    for w in want {
        assert!(err.contains(w), "{case}: no {w:?} in {err}");
    }
    // The JS API throws the same line, with a code to test for.
    let mut c = p.cmd(runtime);
    c.arg("-e").arg(
        "try { require('cgofix').libraryPath(); console.log('returned') } \
         catch (e) { console.log(e.code + ' ' + e.message) }",
    );
    set(&mut c);
    let o = run(format!("{case}: libraryPath()"), c, QUICK);
    o.expect_success();
    assert_eq!(
        o.stdout().trim(),
        format!("CGOFIX_UNSUPPORTED {}", err.trim()),
        "{case}"
    );
}

#[test]
fn unsupported_platforms_say_so_and_exit_3() {
    let (p, _) = npm_install("npm unsupported", &both(packed(VERSION)));
    for runtime in [node(), bun(INSTALL_BUN)] {
        // docs/background.md §9: Go c-shared libraries never load on musl.
        expect_unsupported(
            &p,
            &runtime,
            Some("linux-x64-musl"),
            &["linux-x64-musl", "musl", "golang/go#54805", "glibc"],
        );
        for pl in ["darwin-arm64", "darwin-x64", "win32-x64", "freebsd-x64"] {
            expect_unsupported(&p, &runtime, Some(pl), &[pl, "not supported", "Linux"]);
        }
        // Another CPU without a package.
        for pl in ["linux-ia32-gnu", "linux-riscv64-gnu"] {
            expect_unsupported(&p, &runtime, Some(pl), &[pl, "not supported", PLATFORM]);
        }
        // arm64 has one, but npm installs it only on arm64 machines.
        expect_unsupported(
            &p,
            &runtime,
            Some(ARM64_PLATFORM),
            &[ARM64_PLATFORM, ARM64_PACKAGE, "not installed"],
        );
    }
    // The override is what made those fail: without it, it works here.
    let o = run("supported (node)", p.cmd(p.bin()).arg("--help"), QUICK);
    o.expect_success();
}

#[test]
fn missing_platform_package_says_so_and_exits_3() {
    let packed = packed(VERSION);
    let want = [PLATFORM, PLATFORM_PACKAGE, "not installed"];
    // Removed after a full install.
    let (p, _) = npm_install("npm removed platform", &both(packed));
    std::fs::remove_dir_all(p.platform_dir()).unwrap();
    for runtime in [node(), bun(INSTALL_BUN)] {
        expect_unsupported(&p, &runtime, None, &want);
    }
    // Only the main tarball, offline: both installers skip the optional
    // dependency they cannot fetch, and say nothing about it.
    let (p, _) = npm_install("npm main only", &[&packed.main]);
    assert!(
        !p.platform_dir().exists(),
        "npm installed {PLATFORM_PACKAGE}?"
    );
    expect_unsupported(&p, &node(), None, &want);
    let (p, _) = bun_add("bun main only", INSTALL_BUN, &[&packed.main]);
    assert!(
        !p.platform_dir().exists(),
        "bun installed {PLATFORM_PACKAGE}?"
    );
    expect_unsupported(&p, &bun(INSTALL_BUN), None, &want);
}

// ---------------------------------------------------------------------------
// README

#[test]
fn readme_install_section_matches_the_packages() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let usage = readme
        .split("\n## Usage\n")
        .nth(1)
        .expect("README has no ## Usage");
    let first = usage
        .lines()
        .find(|l| l.starts_with('#'))
        .unwrap_or_default();
    assert_eq!(
        first, "### Install (JavaScript)",
        "the first part of Usage installs from npm"
    );
    let section = usage
        .split("### Install (JavaScript)\n")
        .nth(1)
        .and_then(|s| s.split("\n### ").next())
        .unwrap();
    for want in [
        "bun add -d cgofix",
        "npm i -D cgofix",
        "bunx cgofix doctor",
        "bunx cgofix run -- bun app.js",
        "exits 3",
        "CGOFIXTEST_PLATFORM",
        // The path the Docker snippet copies is where the package puts it.
        &format!("COPY node_modules/{PLATFORM_PACKAGE}/libcgofix.so "),
    ] {
        assert!(
            section.contains(want),
            "README \"Install (JavaScript)\" lacks {want:?}"
        );
    }
}

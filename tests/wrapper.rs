//! scripts/run-with-shim.sh: from any directory (and through a symlink),
//! relative and absolute CGOFIX_LIB, an existing LD_PRELOAD (prepended, no
//! duplicates), arguments with spaces and quotes, exit codes and signals
//! passed through, one clear error for a bad CGOFIX_LIB.
//!
//! Every child runs under `testkit::run` with a timeout.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use testkit::{Outcome, is_root, root, run, shim, tempdir};

const TIMEOUT: Duration = Duration::from_secs(30);

fn script() -> PathBuf {
    root().join("scripts/run-with-shim.sh")
}

/// The library the wrapper uses when CGOFIX_LIB is unset.
fn default_lib() -> PathBuf {
    let p = root().join("target/release/libcgofix.so");
    assert!(
        p.is_file(),
        "{} missing: run `cargo build --release` first (scripts/test.sh does); \
         the wrapper would otherwise start a build inside the test",
        p.display()
    );
    std::fs::canonicalize(p).unwrap()
}

/// The shim the tests preload, by its canonical path (what the wrapper puts
/// into LD_PRELOAD).
fn lib() -> PathBuf {
    std::fs::canonicalize(shim()).unwrap()
}

/// `run-with-shim.sh ARGS...` (via `script_path`, from `cwd`) with a clean
/// environment for the variables the wrapper reads.
fn wrapper(
    script_path: &Path,
    cwd: &Path,
    cgofix_lib: Option<&str>,
    ld_preload: Option<&str>,
    args: &[&str],
) -> Outcome {
    let mut c = Command::new(script_path);
    c.current_dir(cwd).args(args);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CGOFIX_") {
            c.env_remove(&k);
        }
    }
    c.env_remove("LD_PRELOAD");
    if let Some(l) = cgofix_lib {
        c.env("CGOFIX_LIB", l);
    }
    if let Some(p) = ld_preload {
        c.env("LD_PRELOAD", p);
    }
    let case = format!(
        "{} {args:?} from {} with CGOFIX_LIB={cgofix_lib:?} LD_PRELOAD={ld_preload:?}",
        script_path.display(),
        cwd.display()
    );
    run(case, c, TIMEOUT)
}

/// Prints the child's LD_PRELOAD, then whether the shim is mapped into it.
const PROBE: &[&str] = &[
    "sh",
    "-c",
    r#"printf 'LD_PRELOAD=%s\n' "$LD_PRELOAD"; if grep -q 'libcgofix[^/]*\.so' /proc/$$/maps; then echo MAPPED; else echo NOT-MAPPED; fi"#,
];

fn expect_ok(o: &Outcome, case: &str) -> (String, bool) {
    o.expect_success();
    let out = o.stdout();
    let preload = out
        .lines()
        .find_map(|l| l.strip_prefix("LD_PRELOAD="))
        .unwrap_or_else(|| panic!("{case}: no LD_PRELOAD line in {out:?}"))
        .to_string();
    let mapped = out.lines().any(|l| l == "MAPPED");
    (preload, mapped)
}

#[test]
fn absolute_lib_from_other_directories() {
    let lib = lib();
    let lib_s = lib.to_str().unwrap();
    let away = tempdir("absolute");
    for cwd in [Path::new("/"), away.path(), root().join("tests").as_path()] {
        let case = format!("absolute CGOFIX_LIB from {}", cwd.display());
        let (preload, mapped) =
            expect_ok(&wrapper(&script(), cwd, Some(lib_s), None, PROBE), &case);
        assert_eq!(preload, lib_s, "{case}");
        assert!(mapped, "{case}: shim not mapped into the child");
    }
}

#[test]
fn script_called_by_relative_path_and_through_a_symlink() {
    // No CGOFIX_LIB: the wrapper must find its own checkout's library.
    let want = default_lib();
    let want = want.to_str().unwrap();

    let o = wrapper(
        Path::new("../scripts/run-with-shim.sh"),
        &root().join("tests"),
        None,
        None,
        PROBE,
    );
    let (preload, mapped) = expect_ok(&o, "relative script path");
    assert_eq!(preload, want);
    assert!(mapped);

    let dir = tempdir("symlink");
    let link = dir.join("run-with-shim");
    std::os::unix::fs::symlink(script(), &link).unwrap();
    let o = wrapper(&link, Path::new("/"), None, None, PROBE);
    let (preload, mapped) = expect_ok(&o, "script through a symlink");
    assert_eq!(
        preload, want,
        "symlinked script resolved the wrong checkout"
    );
    assert!(mapped);
}

#[test]
fn relative_lib_is_taken_from_the_current_directory() {
    let lib = lib();
    let dir = lib.parent().unwrap();
    let name = lib.file_name().unwrap().to_str().unwrap();
    let want = lib.to_str().unwrap();
    // Plain, ./-prefixed and ..-containing spellings all become one path.
    let parent_name = dir.file_name().unwrap().to_str().unwrap();
    let spellings = [
        (dir.to_path_buf(), name.to_string()),
        (dir.to_path_buf(), format!("./{name}")),
        (
            dir.parent().unwrap().to_path_buf(),
            format!("{parent_name}/../{parent_name}/{name}"),
        ),
    ];
    for (cwd, rel) in spellings {
        let case = format!("CGOFIX_LIB={rel} from {}", cwd.display());
        let (preload, mapped) =
            expect_ok(&wrapper(&script(), &cwd, Some(&rel), None, PROBE), &case);
        assert_eq!(preload, want, "{case}");
        assert!(mapped, "{case}");
    }
}

#[test]
fn existing_ld_preload_is_kept_after_the_shim_without_duplicates() {
    let lib = lib();
    let l = lib.to_str().unwrap();
    // A second spelling of the same file.
    let parent = lib.parent().unwrap();
    let other_spelling = format!(
        "{}/../{}/{}",
        parent.display(),
        parent.file_name().unwrap().to_str().unwrap(),
        lib.file_name().unwrap().to_str().unwrap()
    );
    let cases: Vec<(String, String)> = vec![
        ("/x/a.so".into(), format!("{l}:/x/a.so")),
        ("/x/a.so /x/b.so".into(), format!("{l}:/x/a.so:/x/b.so")),
        ("/x/a.so::/x/b.so".into(), format!("{l}:/x/a.so:/x/b.so")),
        (l.to_string(), l.to_string()),
        (format!("{l}:/x/a.so"), format!("{l}:/x/a.so")),
        (format!("/x/a.so:{l}"), format!("{l}:/x/a.so")),
        (
            format!("/x/a.so {l} /x/b.so {l}"),
            format!("{l}:/x/a.so:/x/b.so"),
        ),
        (format!("{other_spelling}:/x/a.so"), format!("{l}:/x/a.so")),
    ];
    for (before, want) in cases {
        let case = format!("LD_PRELOAD={before:?}");
        let o = wrapper(&script(), Path::new("/"), Some(l), Some(&before), PROBE);
        let (preload, mapped) = expect_ok(&o, &case);
        assert_eq!(preload, want, "{case}");
        assert!(mapped, "{case}");
    }
}

#[test]
fn arguments_reach_the_command_unchanged() {
    let lib = lib();
    let args = [
        "plain",
        "two words",
        "",
        "it's",
        r#"say "hi""#,
        r"back\slash",
        "$HOME",
        "*",
        "  lead and trail  ",
        "tab\there",
        "new\nline",
        "-n",
    ];
    let mut argv = vec![
        "sh",
        "-c",
        r#"for a in "$@"; do printf '[%s]\n' "$a"; done"#,
        "sh",
    ];
    argv.extend(args);
    let o = wrapper(
        &script(),
        Path::new("/"),
        Some(lib.to_str().unwrap()),
        None,
        &argv,
    );
    o.expect_success();
    let want: String = args.iter().map(|a| format!("[{a}]\n")).collect();
    assert_eq!(o.stdout(), want);
}

#[test]
fn exit_codes_pass_through() {
    let lib = lib();
    for code in [0, 1, 7, 126, 255] {
        let cmd = format!("exit {code}");
        let o = wrapper(
            &script(),
            Path::new("/"),
            Some(lib.to_str().unwrap()),
            None,
            &["sh", "-c", &cmd],
        );
        assert_eq!(o.exit(), (Some(code), None), "{cmd}: {o:?}");
    }
}

#[test]
fn signals_pass_through() {
    let lib = lib();
    for (sig, name) in [(libc::SIGTERM, "TERM"), (libc::SIGKILL, "KILL")] {
        // The command kills itself: the wrapper's caller must see a death by
        // that signal, not a shell's 128+N exit code.
        let cmd = format!("kill -{name} $$; sleep 5");
        let o = wrapper(
            &script(),
            Path::new("/"),
            Some(lib.to_str().unwrap()),
            None,
            &["sh", "-c", &cmd],
        );
        assert_eq!(o.exit(), (None, Some(sig)), "{cmd}: {o:?}");
    }
}

#[test]
fn the_command_is_execed_not_a_child() {
    // Same pid: signals sent to the wrapper's pid reach the command itself.
    let lib = lib();
    let o = wrapper(
        &script(),
        Path::new("/"),
        Some(lib.to_str().unwrap()),
        None,
        &["sh", "-c", "echo $$ $PPID"],
    );
    o.expect_success();
    // testkit::run puts the child in its own process group, so the wrapper's
    // pid is the group id; the command must have that pid.
    let mut it = o.stdout().split_whitespace();
    let pid: i32 = it.next().unwrap().parse().unwrap();
    let ppid: i32 = it.next().unwrap().parse().unwrap();
    assert_eq!(
        ppid,
        std::process::id() as i32,
        "the command's parent is not the test: the wrapper forked instead of exec'ing (pid {pid})"
    );
}

#[test]
fn bad_cgofix_lib_is_one_clear_error() {
    let dir = tempdir("badlib");
    let not_elf = dir.join("not-elf.so");
    std::fs::write(&not_elf, "not a library\n").unwrap();
    let marker = dir.join("ran");
    let touch = format!("touch '{}'", marker.display());
    let cases = [
        dir.join("missing.so").to_str().unwrap().to_string(),
        "relative/missing.so".to_string(),
        dir.to_str().unwrap().to_string(),
        not_elf.to_str().unwrap().to_string(),
    ];
    for bad in &cases {
        let o = wrapper(&script(), &dir, Some(bad), None, &["sh", "-c", &touch]);
        let (code, stderr) = (o.finished().code(), o.stderr());
        assert!(
            matches!(code, Some(c) if c != 0),
            "CGOFIX_LIB={bad}: exit {code:?}"
        );
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "CGOFIX_LIB={bad}: stderr {stderr:?}");
        assert!(
            lines[0].starts_with("run-with-shim:")
                && lines[0].contains(&format!("CGOFIX_LIB={bad}")),
            "CGOFIX_LIB={bad}: unclear error {:?}",
            lines[0]
        );
        assert!(!marker.exists(), "CGOFIX_LIB={bad}: the command ran anyway");
    }
    // A file without read permission (root reads everything: only as a user).
    if !is_root() {
        let unreadable = dir.join("unreadable.so");
        std::fs::copy(lib(), &unreadable).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o000)).unwrap();
        let u = unreadable.to_str().unwrap();
        let o = wrapper(&script(), &dir, Some(u), None, &["sh", "-c", &touch]);
        let code = o.finished().code();
        assert!(
            matches!(code, Some(c) if c != 0) && o.stderr().lines().count() == 1,
            "unreadable CGOFIX_LIB: {o:?}"
        );
        assert!(!marker.exists());
    } else {
        println!(
            "note: running as root, the unreadable-file case is not checkable (root reads any file)"
        );
    }
}

#[test]
fn no_command_is_a_usage_error() {
    let lib = lib();
    let o = wrapper(
        &script(),
        Path::new("/"),
        Some(lib.to_str().unwrap()),
        None,
        &[],
    );
    assert_eq!(o.exit(), (Some(2), None), "{o:?}");
    assert!(o.stderr().contains("usage:"), "{o:?}");
}

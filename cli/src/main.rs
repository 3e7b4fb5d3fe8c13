//! The `cgofix` command: `run`, `doctor`, `report`.
//!
//! This binary must not link the `cgofix` library crate: that crate exports
//! the LD_PRELOAD hooks (`sigaction`, `pthread_create`, `dlopen`, ...) and a
//! constructor, which would interpose this process itself.
//!
//! Exit codes: `run` exits with the command's own status (it `exec`s it), or
//! 127/126 when it cannot start it (as shells and scripts/run-with-shim.sh
//! do); `doctor` exits 0 (shim not needed), 1 (needed) or 2 (error); every
//! command exits 2 on a usage error and 0 after `--help`.

mod doctor;
mod elfscan;
mod report;

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

const USAGE: &str = "\
cgofix: run programs with the cgofix shim (libcgofix.so), check projects for Go native modules

Usage:
  cgofix run [--report FILE] -- CMD [ARGS...]   run CMD with libcgofix.so preloaded
  cgofix doctor [DIR] [--bun PATH] [--json]     does this project need the shim?
  cgofix report FILE                            summarise a report written by the shim
  cgofix help [COMMAND]                         this text, or a command's help

Run `cgofix COMMAND --help` for details.
";

const RUN_HELP: &str = "\
Usage: cgofix run [--report FILE] [--] CMD [ARGS...]

Runs CMD with libcgofix.so prepended to LD_PRELOAD (an existing copy of the
same library is not added twice), replacing this process (exec), so the
exit status and signals are CMD's own.

The library is $CGOFIX_LIB if set (relative to the current directory), else
libcgofix.so next to the cgofix executable, else ../lib/libcgofix.so.

Options:
  --report FILE   set CGOFIX_REPORT=FILE: the shim writes a JSON report there
                  at exit (read it with `cgofix report FILE`)
  -h, --help      this text

Exit status: CMD's; 127 when the library or CMD is missing, 126 when CMD
cannot be executed, 2 on a usage error.
";

const DOCTOR_HELP: &str = "\
Usage: cgofix doctor [DIR] [--bun PATH] [--json]

Looks for native modules (*.node, *.so) under DIR (default: the current
directory; node_modules included, .git skipped; symlinks followed, each
directory visited once) and reports for each ELF file its Go version, build
mode (c-shared, c-archive, ...: as recorded by Go >= 1.20, inferred from the
linker flags before; none when not Go) and whether it exports
_cgo_wait_runtime_init_done. Then checks the Bun that would run the app
(the first `bun` on PATH, or --bun PATH) against what the cgofix project
measured, and prints the command that runs the app with the shim.

Options:
  --bun PATH   check this Bun binary instead of the one on PATH
  --json       machine-readable output on stdout
  -h, --help   this text

Exit status: 0 when the shim is not needed (no Go module, or a fixed Bun),
1 when it is (Go module + affected Bun), 2 on error.
";

const REPORT_HELP: &str = "\
Usage: cgofix report [--json] FILE

Summarises the JSON report(s) the shim wrote at exit to FILE (set with
CGOFIX_REPORT=FILE or `cgofix run --report FILE`). A file may hold one
report per line: child processes inherit CGOFIX_REPORT and append theirs.

Options:
  --json       print the reports as one JSON array instead
  -h, --help   this text

Exit status: 0, or 2 when FILE cannot be read or is not a cgofix report.
";

/// Error for the user: one line on stderr, then this exit code.
struct Fail(u8, String);

fn usage_err(cmd: &str, msg: impl std::fmt::Display) -> Fail {
    let hint = if cmd.is_empty() {
        "cgofix --help".to_string()
    } else {
        format!("cgofix {cmd} --help")
    };
    Fail(2, format!("{msg} (see `{hint}`)"))
}

// Arguments are parsed by hand: four commands with at most two options each
// fit in a few dozen lines, and every usage error stays one line
// (`cgofix: unknown option '--x' (see `cgofix doctor --help`)`) that scripts
// and cli/tests match, which clap's own error and help formats would change.

/// Splits `--opt=value` / `--opt value`.
fn take_value(
    cmd: &str,
    arg: &str,
    name: &str,
    it: &mut impl Iterator<Item = OsString>,
) -> Result<Option<OsString>, Fail> {
    if arg == name {
        return it
            .next()
            .map(Some)
            .ok_or_else(|| usage_err(cmd, format!("{name} needs a value")));
    }
    Ok(arg
        .strip_prefix(name)
        .and_then(|r| r.strip_prefix('='))
        .map(OsString::from))
}

/// Whether `p` is a regular, readable ELF file: ld.so would otherwise print
/// an error and run the command *without* the shim.
fn check_elf(p: &std::path::Path) -> Result<(), String> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(p).map_err(|e| {
        e.to_string()
            .split(" (os error")
            .next()
            .unwrap_or("")
            .to_string()
    })?;
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return Err("not a regular file".into());
    }
    match f.read_exact(&mut magic) {
        Ok(()) if &magic == b"\x7fELF" => Ok(()),
        _ => Err("not an ELF shared library".into()),
    }
}

/// Where libcgofix.so is, by the rules in RUN_HELP, in one canonical spelling
/// (no `..` or symlinks) so that other spellings in LD_PRELOAD are recognised.
pub fn find_library() -> Result<PathBuf, String> {
    let canonical = |p: PathBuf| std::fs::canonicalize(&p).unwrap_or(p);
    if let Some(lib) = std::env::var_os("CGOFIX_LIB").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(&lib);
        let p = if p.is_absolute() {
            p
        } else {
            std::env::current_dir().map_err(|e| e.to_string())?.join(p)
        };
        return match check_elf(&p) {
            Ok(()) => Ok(canonical(p)),
            Err(e) => Err(format!(
                "CGOFIX_LIB={}: no readable ELF library there ({e})",
                lib.to_string_lossy()
            )),
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate this executable: {e}"))?;
    let dir = exe.parent().unwrap_or(std::path::Path::new("/"));
    let tries = [dir.join("libcgofix.so"), dir.join("../lib/libcgofix.so")];
    for t in &tries {
        if t.exists() {
            return match check_elf(t) {
                Ok(()) => Ok(canonical(t.clone())),
                Err(e) => Err(format!("{}: {e}", t.display())),
            };
        }
    }
    Err(format!(
        "libcgofix.so not found ({} or {}); build it with `cargo build --release -p cgofix` or set CGOFIX_LIB",
        tries[0].display(),
        tries[1].display()
    ))
}

/// `LD_PRELOAD` with `lib` first and any other copy of it removed (entries
/// are separated by colons or spaces, as ld.so accepts).
fn preload_value(lib: &str, existing: Option<&str>) -> String {
    let same = |e: &str| {
        e == lib
            || std::fs::canonicalize(e)
                .ok()
                .is_some_and(|c| c.to_str() == Some(lib))
    };
    let mut out = lib.to_string();
    for e in existing.unwrap_or("").split([':', ' ']) {
        if !e.is_empty() && !same(e) {
            out.push(':');
            out.push_str(e);
        }
    }
    out
}

fn cmd_run(mut args: impl Iterator<Item = OsString>) -> Result<u8, Fail> {
    let mut report: Option<OsString> = None;
    let mut command: Vec<OsString> = Vec::new();
    while let Some(a) = args.next() {
        let s = a.to_string_lossy().into_owned();
        if s == "--" {
            command.extend(args.by_ref());
            break;
        }
        if s == "-h" || s == "--help" {
            print!("{RUN_HELP}");
            return Ok(0);
        }
        if let Some(v) = take_value("run", &s, "--report", &mut args)? {
            if v.is_empty() {
                return Err(usage_err("run", "--report needs a file name"));
            }
            report = Some(v);
            continue;
        }
        if s.starts_with('-') {
            return Err(usage_err("run", format!("unknown option '{s}'")));
        }
        command.push(a);
        command.extend(args.by_ref());
        break;
    }
    if command.is_empty() {
        return Err(usage_err("run", "no command given"));
    }
    let lib = find_library().map_err(|e| Fail(127, e))?;
    let lib = lib.to_string_lossy().into_owned();
    let existing = std::env::var("LD_PRELOAD").ok();
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..])
        .env("LD_PRELOAD", preload_value(&lib, existing.as_deref()));
    if let Some(r) = report {
        cmd.env("CGOFIX_REPORT", r);
    }
    // Only returns on failure.
    let err = cmd.exec();
    let code = if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    };
    Err(Fail(
        code,
        format!("cannot run {}: {}", command[0].to_string_lossy(), err),
    ))
}

fn cmd_doctor(mut args: impl Iterator<Item = OsString>) -> Result<u8, Fail> {
    let mut dir: Option<PathBuf> = None;
    let mut bun = None;
    let mut json = false;
    while let Some(a) = args.next() {
        let s = a.to_string_lossy().into_owned();
        match s.as_str() {
            "-h" | "--help" => {
                print!("{DOCTOR_HELP}");
                return Ok(0);
            }
            "--json" => json = true,
            _ => {
                if let Some(v) = take_value("doctor", &s, "--bun", &mut args)? {
                    bun = Some(PathBuf::from(v));
                } else if s.starts_with('-') && s != "-" {
                    return Err(usage_err("doctor", format!("unknown option '{s}'")));
                } else if dir.is_some() {
                    return Err(usage_err("doctor", format!("unexpected argument '{s}'")));
                } else {
                    dir = Some(PathBuf::from(a));
                }
            }
        }
    }
    let opts = doctor::Options {
        dir: dir.unwrap_or_else(|| PathBuf::from(".")),
        bun,
        json,
    };
    doctor::run(&opts).map(|c| c as u8).map_err(|e| Fail(2, e))
}

fn cmd_report(args: impl Iterator<Item = OsString>) -> Result<u8, Fail> {
    let mut file = None;
    let mut json = false;
    for a in args {
        let s = a.to_string_lossy().into_owned();
        match s.as_str() {
            "-h" | "--help" => {
                print!("{REPORT_HELP}");
                return Ok(0);
            }
            "--json" => json = true,
            _ if s.starts_with('-') => {
                return Err(usage_err("report", format!("unknown option '{s}'")));
            }
            _ if file.is_some() => {
                return Err(usage_err("report", format!("unexpected argument '{s}'")));
            }
            _ => file = Some(PathBuf::from(a)),
        }
    }
    let file = file.ok_or_else(|| usage_err("report", "no report file given"))?;
    let bytes = std::fs::read(&file).map_err(|e| {
        Fail(
            2,
            format!(
                "{}: {}",
                file.display(),
                e.to_string().split(" (os error").next().unwrap_or("")
            ),
        )
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        Fail(
            2,
            format!("{}: not valid JSON: not UTF-8 text", file.display()),
        )
    })?;
    let (summary, values) =
        report::summarise_all(&text).map_err(|e| Fail(2, format!("{}: {e}", file.display())))?;
    if json {
        let text = serde_json::to_string_pretty(&values).expect("JSON values always serialise");
        println!("{text}");
    } else {
        print!("{summary}");
    }
    Ok(0)
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(sub) = args.next() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let sub = sub.to_string_lossy().into_owned();
    let result = match sub.as_str() {
        "run" => cmd_run(args),
        "doctor" => cmd_doctor(args),
        "report" => cmd_report(args),
        "-h" | "--help" => {
            print!("{USAGE}");
            Ok(0)
        }
        "help" => match args
            .next()
            .map(|a| a.to_string_lossy().into_owned())
            .as_deref()
        {
            None => {
                print!("{USAGE}");
                Ok(0)
            }
            Some("run") => cmd_run(["--help".into()].into_iter()),
            Some("doctor") => cmd_doctor(["--help".into()].into_iter()),
            Some("report") => cmd_report(["--help".into()].into_iter()),
            Some(other) => Err(usage_err("", format!("unknown command '{other}'"))),
        },
        "-V" | "--version" => {
            println!("cgofix {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        other => Err(usage_err("", format!("unknown command '{other}'"))),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Fail(code, msg)) => {
            eprintln!("cgofix: {msg}");
            ExitCode::from(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preload_order_and_dedup() {
        assert_eq!(preload_value("/l/libcgofix.so", None), "/l/libcgofix.so");
        assert_eq!(
            preload_value("/l/libcgofix.so", Some("")),
            "/l/libcgofix.so"
        );
        assert_eq!(
            preload_value("/l/libcgofix.so", Some("/a.so /l/libcgofix.so:/b.so")),
            "/l/libcgofix.so:/a.so:/b.so"
        );
        assert_eq!(
            preload_value("/l/libcgofix.so", Some("/l/libcgofix.so::/l/libcgofix.so")),
            "/l/libcgofix.so"
        );
    }

    #[test]
    fn option_values() {
        let mut none = std::iter::empty();
        assert_eq!(
            take_value("run", "--report=x", "--report", &mut none)
                .ok()
                .flatten(),
            Some("x".into())
        );
        let mut next = std::iter::once(OsString::from("y"));
        assert_eq!(
            take_value("run", "--report", "--report", &mut next)
                .ok()
                .flatten(),
            Some("y".into())
        );
        assert!(take_value("run", "--report", "--report", &mut none).is_err());
        assert!(
            take_value("run", "--reportx", "--report", &mut none)
                .ok()
                .flatten()
                .is_none()
        );
    }
}

//! Shared harness for the integration tests: locating the shim, the Bun
//! binaries and Go toolchains installed by `scripts/setup-deps.sh`, building
//! the fixtures once per toolchain, and running real processes with a
//! timeout that is reported as a hang with the case name.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Paths printed by scripts/setup-deps.sh (`KEY=VALUE` lines), installing on
/// first use when the tests are run without scripts/test.sh.
pub struct Deps {
    pub go119: PathBuf,
    pub go123: PathBuf,
    pub gonew: PathBuf,
    pub napi_include: PathBuf,
    pub buns: HashMap<String, PathBuf>,
}

pub fn deps() -> &'static Deps {
    static D: OnceLock<Deps> = OnceLock::new();
    D.get_or_init(|| {
        let mut vars: HashMap<String, String> = [
            "CGOFIX_GO119",
            "CGOFIX_GO123",
            "CGOFIX_GONEW",
            "CGOFIX_NAPI_INCLUDE",
            "CGOFIX_BUNS",
        ]
        .iter()
        .filter_map(|k| Some((k.to_string(), std::env::var(k).ok()?)))
        .collect();
        if vars.len() < 5 {
            let out = Command::new("bash")
                .arg(root().join("scripts/setup-deps.sh"))
                .stderr(Stdio::inherit())
                .output()
                .expect("run scripts/setup-deps.sh");
            assert!(out.status.success(), "scripts/setup-deps.sh failed");
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if let Some((k, v)) = line.split_once('=') {
                    vars.insert(k.to_string(), v.trim_matches('"').to_string());
                }
            }
        }
        let buns = vars["CGOFIX_BUNS"]
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(v, p)| (v.to_string(), PathBuf::from(p)))
            .collect();
        Deps {
            go119: vars["CGOFIX_GO119"].clone().into(),
            go123: vars["CGOFIX_GO123"].clone().into(),
            gonew: vars["CGOFIX_GONEW"].clone().into(),
            napi_include: vars["CGOFIX_NAPI_INCLUDE"].clone().into(),
            buns,
        }
    })
}

pub fn bun(version: &str) -> PathBuf {
    deps()
        .buns
        .get(version)
        .unwrap_or_else(|| panic!("bun {version} not installed by setup-deps.sh"))
        .clone()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Go {
    V119,
    /// Debian's bookworm-backports build: a middle toolchain, used by a few
    /// cases (not `ALL`, to keep CI time down).
    V123,
    Newest,
}

impl Go {
    /// The two ends of the range every matrix test covers.
    pub const ALL: [Go; 2] = [Go::V119, Go::Newest];
    pub fn binary(self) -> PathBuf {
        match self {
            Go::V119 => deps().go119.clone(),
            Go::V123 => deps().go123.clone(),
            Go::Newest => deps().gonew.clone(),
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Go::V119 => "go1.19",
            Go::V123 => "go1.23",
            Go::Newest => "go-newest",
        }
    }
}

/// The release shim the tests preload (scripts/test.sh builds it).
pub fn shim() -> PathBuf {
    let p = std::env::var_os("CGOFIX_TEST_LIB")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/release/libcgofix.so"));
    assert!(
        p.exists(),
        "{} missing: run `cargo build --release` (scripts/test.sh does)",
        p.display()
    );
    p
}

/// Builds tests/fixtures for `go` once per test process; returns the dir.
pub fn fixtures(go: Go) -> PathBuf {
    static BUILT: Mutex<Vec<(Go, PathBuf)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = built.iter().find(|(g, _)| *g == go) {
        return p.clone();
    }
    let out = root().join("target/fixtures").join(go.label());
    let status = Command::new("bash")
        .arg(root().join("tests/fixtures/build.sh"))
        .arg(&out)
        .arg(go.binary())
        .env("CGOFIX_NAPI_INCLUDE", &deps().napi_include)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .expect("run tests/fixtures/build.sh");
    assert!(status.success(), "fixture build failed for {}", go.label());
    built.push((go, out.clone()));
    out
}

pub fn js(name: &str) -> PathBuf {
    root().join("tests/fixtures/js").join(name)
}

#[derive(Debug)]
pub enum Outcome {
    Finished {
        code: Option<i32>,
        signal: Option<i32>,
        stdout: String,
        stderr: String,
        elapsed: Duration,
    },
    Hung {
        stdout: String,
        stderr: String,
    },
}

impl Outcome {
    pub fn hung(&self) -> bool {
        matches!(self, Outcome::Hung { .. })
    }
    pub fn stdout(&self) -> &str {
        match self {
            Outcome::Finished { stdout, .. } | Outcome::Hung { stdout, .. } => stdout,
        }
    }
    pub fn stderr(&self) -> &str {
        match self {
            Outcome::Finished { stderr, .. } | Outcome::Hung { stderr, .. } => stderr,
        }
    }
    /// Panics with the case name unless the process exited 0.
    pub fn expect_success(&self, case: &str) -> &Self {
        match self {
            Outcome::Hung { stdout, stderr } => {
                panic!("HANG: {case}\n--- stdout\n{stdout}\n--- stderr\n{stderr}")
            }
            Outcome::Finished {
                code,
                signal,
                stdout,
                stderr,
                ..
            } => assert!(
                *code == Some(0),
                "FAILED: {case}: exit {code:?} signal {signal:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
            ),
        }
        self
    }
}

/// Runs `cmd` with a timeout in its own process group; on timeout the whole
/// group is killed and the outcome is `Hung`.
pub fn run(mut cmd: Command, timeout: Duration) -> Outcome {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let pgid = child.id() as i32;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            // Grandchildren keep the pipes open; make sure they are gone.
            // SAFETY: signalling our own child's process group.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            return Outcome::Finished {
                code: status.code(),
                signal: status.signal(),
                elapsed: start.elapsed(),
                stdout: t_out.join().unwrap(),
                stderr: t_err.join().unwrap(),
            };
        }
        if start.elapsed() > timeout {
            // SAFETY: signalling our own child's process group.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = child.wait();
            return Outcome::Hung {
                stdout: t_out.join().unwrap(),
                stderr: t_err.join().unwrap(),
            };
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A command with the shim preloaded (or not), and a clean CGOFIX_* env.
pub fn command(program: &Path, with_shim: bool) -> Command {
    let mut c = Command::new(program);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CGOFIX_") {
            c.env_remove(&k);
        }
    }
    c.env_remove("LD_PRELOAD");
    c.env_remove("JSC_SIGNAL_FOR_GC");
    if with_shim {
        c.env("LD_PRELOAD", shim());
    }
    c
}

pub fn node() -> PathBuf {
    PathBuf::from("/usr/bin/node")
}

/// Compiles tests/programs/NAME.c once into target/programs/NAME.
pub fn c_program(name: &str, flags: &[&str]) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let src = root().join("tests/programs").join(format!("{name}.c"));
    let dir = root().join("target/programs");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(name);
    let fresh = |o: &Path| {
        let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        matches!((m(o), m(&src)), (Some(a), Some(b)) if a > b)
    };
    if !fresh(&out) {
        let tmp = dir.join(format!("{name}.tmp"));
        let st = Command::new("cc")
            .args(["-O2", "-Wall", "-Werror", "-pthread"])
            .args(flags)
            .arg(&src)
            .arg("-o")
            .arg(&tmp)
            .status()
            .expect("run cc");
        assert!(st.success(), "compiling {}", src.display());
        std::fs::rename(&tmp, &out).unwrap();
    }
    out
}

/// `KEY rest...` lines of a probe's output, as a map.
pub fn lines_by_key(out: &str) -> HashMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

// ------------------------------------------------------------- signal storms

pub fn threads_of(pid: u32) -> Vec<i32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

pub struct Storm {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub sent: u64,
}

/// Runs `c` (which prints "READY <pid>" once its handlers are installed),
/// tgkill-ing `signals` round-robin at every thread until it exits. Panics
/// with the case name on a hang.
pub fn storm(case: &str, mut c: Command, signals: &[i32], timeout: Duration) -> Storm {
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = c.spawn().unwrap_or_else(|e| panic!("{case}: spawn: {e}"));
    let pid = child.id();
    let mut err = child.stderr.take().unwrap();
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut stdout = String::new();
    let ready = out.read_line(&mut stdout).is_ok() && stdout.starts_with("READY");
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let mut sent = 0u64;
    let mut k = 0usize;
    let st = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            // SAFETY: killing our own child's process group.
            unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            let _ = child.wait();
            panic!(
                "HANG: {case}\n--- stdout\n{stdout}{}\n--- stderr\n{}",
                out_t.join().unwrap(),
                err_t.join().unwrap()
            );
        }
        if ready {
            for tid in threads_of(pid) {
                let sig = signals[k % signals.len()];
                k += 1;
                // SAFETY: tgkill on our own child's threads.
                if unsafe { libc::syscall(libc::SYS_tgkill, pid as i32, tid, sig) } == 0 {
                    sent += 1;
                }
            }
        } else {
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    // SAFETY: our own child's process group (stray grandchildren).
    unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
    stdout.push_str(&out_t.join().unwrap());
    Storm {
        code: st.code(),
        signal: st.signal(),
        stdout,
        stderr: err_t.join().unwrap(),
        sent,
    }
}

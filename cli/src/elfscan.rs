//! Inspecting ELF files on disk with the `object` crate, reading only what
//! is needed: the first bytes (ELF magic) of every candidate, then, through
//! `object`'s `ReadCache` (positioned reads, each cached), the headers and a
//! few small sections (`.dynamic`, `.dynsym`, `.dynstr`, `.go.buildinfo`).
//! 32- and 64-bit, either byte order.
//!
//! An object is **Go** when it has a `.go.buildinfo` section (or, without
//! section headers, a buildinfo blob in a data segment), the Go build-ID
//! note, or exports `_cgo_wait_runtime_init_done` (docs/background.md §5).
//! Its version and build mode are `interpose::goinfo`'s, the definition the
//! shim's exit report uses too: the recorded `-buildmode=` (Go >= 1.20),
//! else inferred from `-Bsymbolic` and that export (see that module).

use interpose::goinfo;
use object::read::elf::{Dyn, FileHeader, ProgramHeader, SectionHeader, Sym};
use object::{Endianness, ReadCache, ReadRef, SectionIndex, elf};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// What one ELF file holds. `go_version` may be `None` for a Go object whose
/// version could not be read (e.g. a stripped buildinfo).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ElfInfo {
    pub is_go: bool,
    pub go_version: Option<String>,
    /// The `-buildmode=` recorded in the module info (Go >= 1.20).
    pub recorded_buildmode: Option<String>,
    pub exports_cgo_wait: bool,
    pub symbolic: bool,
    /// Why the file could not be inspected fully (corrupt or truncated headers).
    pub problem: Option<String>,
}

impl ElfInfo {
    /// `"c-shared"`, `"c-archive"`, another recorded mode, or `None` (not
    /// Go, or a recorded mode `go build` does not know): `goinfo::buildmode`.
    pub fn buildmode(&self) -> Option<&'static str> {
        if !self.is_go {
            return None;
        }
        goinfo::buildmode(
            self.recorded_buildmode.as_deref().map(str::as_bytes),
            self.exports_cgo_wait,
            self.symbolic,
        )
    }

    fn set_buildinfo(&mut self, b: goinfo::BuildInfo) {
        let text = |s: &[u8]| String::from_utf8_lossy(s).into_owned();
        self.go_version = Some(text(b.version));
        self.recorded_buildmode = b.modinfo.and_then(goinfo::recorded_buildmode).map(text);
    }
}

/// Bytes of `.go.buildinfo` worth reading: the 32-byte header, the version
/// and the module info (a few KiB even for big dependency lists).
const MAX_BUILDINFO: u64 = 1 << 20;

/// Inspects an open file. `Ok(None)` when it is not ELF at all (checked on
/// its first bytes before anything else is read).
pub fn inspect_file(f: &File) -> io::Result<Option<ElfInfo>> {
    let mut head = [0u8; 5];
    let n = f.read_at(&mut head, 0)?;
    if n < 4 || !head.starts_with(b"\x7fELF") {
        return Ok(None);
    }
    let data = ReadCache::new(f);
    let mut info = ElfInfo::default();
    let result = match head[4] {
        1 /* ELFCLASS32 */ => inspect::<elf::FileHeader32<Endianness>>(&data, &mut info),
        _ => inspect::<elf::FileHeader64<Endianness>>(&data, &mut info),
    };
    if let Err(e) = result {
        info.problem = Some(format!("corrupt ELF file ({e})"));
    }
    Ok(Some(info))
}

fn inspect<'d, Elf: FileHeader<Endian = Endianness>>(
    data: &'d ReadCache<&File>,
    info: &mut ElfInfo,
) -> Result<(), Box<dyn std::error::Error>> {
    let header = Elf::parse(data)?;
    let endian = header.endian()?;
    let segments = header.program_headers(endian, data)?;
    let sections = header.sections(endian, data)?;
    let loads = || {
        segments
            .iter()
            .filter(move |p| p.p_type(endian) == elf::PT_LOAD)
    };
    // The file bytes behind a virtual address range (for the pre-Go-1.18
    // pointer format and for tables found through the dynamic segment).
    let deref = |addr: u64, len: usize| -> Option<&'d [u8]> {
        let end = addr.checked_add(len as u64)?;
        let p = loads().find(|p| {
            let va: u64 = p.p_vaddr(endian).into();
            va <= addr && end <= va + p.p_filesz(endian).into()
        })?;
        let off = p.p_offset(endian).into() + (addr - p.p_vaddr(endian).into());
        data.read_bytes_at(off, len as u64).ok()
    };
    if !sections.is_empty() {
        if let Some((_, sh)) = sections.section_by_name(endian, b".go.buildinfo") {
            info.is_go = true;
            if let Some((off, size)) = sh.file_range(endian) {
                let blob = data
                    .read_bytes_at(off, size.min(MAX_BUILDINFO))
                    .map_err(|()| "cannot read .go.buildinfo")?;
                if let Some(b) = goinfo::parse_buildinfo(blob, deref) {
                    info.set_buildinfo(b);
                }
            }
        }
        info.is_go |= sections
            .section_by_name(endian, b".note.go.buildid")
            .is_some();
        if let Some((dynamic, _)) = sections.dynamic(endian, data)? {
            info.symbolic = symbolic(dynamic, endian);
        }
        if let Some(dynsym) = sections
            .iter()
            .find(|s| s.sh_type(endian) == elf::SHT_DYNSYM)
        {
            let syms: &[Elf::Sym] = dynsym.data_as_array(endian, data)?;
            let link = SectionIndex(dynsym.sh_link(endian) as usize);
            let strtab = sections.section(link)?.data(endian, data)?;
            info.exports_cgo_wait = defines(syms, strtab, endian, goinfo::CGO_WAIT);
        }
    } else {
        // No section headers (e.g. sstrip'ed): the segments are all there is.
        for p in segments {
            if let Some(dynamic) = p.dynamic(endian, data)? {
                info.symbolic = symbolic(dynamic, endian);
                let tag = |t: elf::DynamicTag| {
                    dynamic
                        .iter()
                        .find(|d| d.tag(endian) == t)
                        .map(|d| d.val(endian))
                };
                // GNU ld places .dynstr right after .dynsym, which gives the
                // symbol count the dynamic section does not state.
                if let (Some(symtab), Some(strtab), Some(strsz)) =
                    (tag(elf::DT_SYMTAB), tag(elf::DT_STRTAB), tag(elf::DT_STRSZ))
                    && strtab > symtab
                    && let Some(syms) = deref(symtab, (strtab - symtab) as usize)
                    && let Some(strs) = deref(strtab, strsz as usize)
                {
                    let syms = object::pod::slice_from_bytes::<Elf::Sym>(
                        syms,
                        syms.len() / size_of::<Elf::Sym>(),
                    )
                    .map_err(|()| "misaligned dynamic symbols")?
                    .0;
                    info.exports_cgo_wait = defines(syms, strs, endian, goinfo::CGO_WAIT);
                }
            }
            if let Some(mut notes) = p.notes(endian, data)? {
                while let Some(note) = notes.next()? {
                    info.is_go |= note.name() == b"Go" && note.n_type(endian).0 == NT_GO_BUILDID;
                }
            }
        }
        // Where Go's linker puts .go.buildinfo: a writable data segment
        // (read-only ones are tried too), 16-aligned.
        'scan: for writable in [true, false] {
            for p in loads() {
                let flags = p.p_flags(endian).0;
                let (r, w, x) = (elf::PF_R.0, elf::PF_W.0, elf::PF_X.0);
                if flags & (r | x) != r || (flags & w != 0) != writable {
                    continue;
                }
                let seg = p
                    .data(endian, data)
                    .map_err(|()| "cannot read a data segment")?;
                let vaddr: u64 = p.p_vaddr(endian).into();
                let first = ((16 - vaddr % 16) % 16) as usize;
                let found = (first..seg.len())
                    .step_by(16)
                    .filter(|&o| seg[o] == 0xff)
                    .find_map(|o| goinfo::parse_buildinfo(&seg[o..], deref));
                if let Some(b) = found {
                    info.is_go = true;
                    info.set_buildinfo(b);
                    break 'scan;
                }
            }
        }
    }
    info.is_go |= info.exports_cgo_wait;
    Ok(())
}

/// Go's build-ID note type (owner "Go", cmd/link/internal/ld/elf.go).
const NT_GO_BUILDID: u32 = 4;

/// Whether a dynamic section says `-Bsymbolic` (DT_SYMBOLIC, or DF_SYMBOLIC in DT_FLAGS).
fn symbolic<D: Dyn>(dynamic: &[D], endian: D::Endian) -> bool {
    dynamic
        .iter()
        .take_while(|d| d.tag(endian) != elf::DT_NULL)
        .any(|d| match d.tag(endian) {
            elf::DT_SYMBOLIC => true,
            elf::DT_FLAGS => d.val(endian) & elf::DF_SYMBOLIC.0 != 0,
            _ => false,
        })
}

/// Whether `syms` has a defined, non-local symbol called `name` (compared in
/// place in `strtab`: linkers merge string tails, so a name may start inside
/// a longer string).
fn defines<S: Sym>(syms: &[S], strtab: &[u8], endian: S::Endian, name: &[u8]) -> bool {
    syms.iter().any(|s| {
        let at = s.st_name(endian) as usize;
        s.st_shndx(endian) != elf::SHN_UNDEF
            && s.st_bind() != elf::STB_LOCAL
            && strtab
                .get(at..)
                .is_some_and(|t| t.strip_prefix(name).is_some_and(|r| r.first() == Some(&0)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::{U16, U32, U64};
    use std::process::Command;
    use std::time::Duration;

    /// Inspects the file at `path`; `Ok(None)` when it is not ELF.
    pub fn inspect(path: &std::path::Path) -> io::Result<Option<ElfInfo>> {
        inspect_file(&File::open(path)?)
    }

    fn sym(name: u32, info: u8, shndx: u16) -> elf::Sym64<Endianness> {
        let e = Endianness::Little;
        elf::Sym64 {
            st_name: U32::new(e, name),
            st_info: elf::SymbolInfo(info),
            st_other: elf::SymbolOther(0),
            st_shndx: U16::new(e, elf::SymbolSection(shndx)),
            st_value: U64::new(e, 0),
            st_size: U64::new(e, 0),
        }
    }

    #[test]
    fn tail_merged_names() {
        let e = Endianness::Little;
        let strtab = b"\0x_cgo_wait_runtime_init_done\0_cgo_wait_runtime_init_done_not\0";
        let (w, not) = (goinfo::CGO_WAIT, 2);
        // GLOBAL FUNC defined in section 9, named from inside "x_cgo_wait...".
        assert!(defines(&[sym(not, 0x12, 9)], strtab, e, w));
        // Undefined: an import, not an export.
        assert!(!defines(&[sym(not, 0x12, 0)], strtab, e, w));
        // LOCAL.
        assert!(!defines(&[sym(not, 0x02, 9)], strtab, e, w));
        // A longer name, and "x_cgo..." itself, are not the name.
        assert!(!defines(&[sym(30, 0x12, 9), sym(1, 0x12, 9)], strtab, e, w));
        // Out of the table.
        assert!(!defines(&[sym(999, 0x12, 9)], strtab, e, w));
    }

    #[test]
    fn buildmode_rule() {
        let mut i = ElfInfo::default();
        assert_eq!(i.buildmode(), None);
        i.is_go = true;
        assert_eq!(i.buildmode(), Some("c-archive"));
        i.exports_cgo_wait = true;
        assert_eq!(i.buildmode(), Some("c-archive"));
        i.symbolic = true;
        assert_eq!(i.buildmode(), Some("c-shared"));
        // Recorded (Go >= 1.20): that, whatever the linker flags.
        i.recorded_buildmode = Some("c-archive".into());
        assert_eq!(i.buildmode(), Some("c-archive"));
        i.recorded_buildmode = Some("no-such-mode".into());
        assert_eq!(i.buildmode(), None);
        i.is_go = false;
        i.recorded_buildmode = Some("c-shared".into());
        assert_eq!(i.buildmode(), None);
    }

    #[test]
    fn non_elf_and_truncated() {
        let dir = std::env::temp_dir().join(format!("cgofix-elfscan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.so");
        std::fs::write(&p, b"/* GNU ld script */").unwrap();
        assert_eq!(inspect(&p).unwrap(), None);
        std::fs::write(&p, b"\x7fEL").unwrap();
        assert_eq!(inspect(&p).unwrap(), None);
        let mut trunc = b"\x7fELF\x02\x01\x01".to_vec();
        trunc.resize(64, 0);
        trunc[0x28] = 0xff; // shoff far beyond the end
        trunc[0x3c] = 3;
        trunc[0x3a] = 64;
        std::fs::write(&p, &trunc).unwrap();
        let info = inspect(&p).unwrap().unwrap();
        assert!(info.problem.unwrap().starts_with("corrupt ELF"));
        std::fs::write(&p, b"\x7fELF\x01\x01").unwrap();
        assert!(inspect(&p).unwrap().unwrap().problem.is_some());
        std::fs::write(&p, b"\x7fELF").unwrap();
        assert!(inspect(&p).unwrap().unwrap().problem.is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn own_executable_is_not_go() {
        let exe = std::env::current_exe().unwrap();
        let info = inspect(&exe).unwrap().expect("ELF");
        assert!(!info.is_go && !info.exports_cgo_wait, "{info:?}");
        assert_eq!(info.problem, None);
    }

    const GO_SRC: &str = "package main\n\nimport \"C\"\n\n//export GoAdd\nfunc GoAdd(a, b C.int) C.int { return a + b }\n\nfunc main() {}\n";

    /// What the shim would report for `lib`, from memory: loaded in a child
    /// copy of this test binary (running only the ignored [`memory_child`])
    /// so no Go runtime starts in the harness. `"version buildmode"`.
    fn from_memory(lib: &std::path::Path) -> String {
        let out = testkit::proc::output(
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "elfscan::tests::memory_child",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("CGOFIXTEST_ELF_LIB", lib),
            Duration::from_secs(120),
            &format!("memory_child {}", lib.display()),
        );
        let log = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && log.contains("test result: ok. 1 passed"),
            "{lib:?}: {log}"
        );
        let line = log
            .lines()
            .find_map(|l| l.split_once("memory: ").map(|(_, r)| r))
            .unwrap_or_else(|| panic!("{lib:?}: no result in {log}"));
        line.to_string()
    }

    /// The shim's computation (interpose's memory readers and
    /// `goinfo::buildmode`) on a library loaded here; run by [`from_memory`].
    #[test]
    #[ignore = "run by file_and_memory_agree in a child process"]
    fn memory_child() {
        use interpose::elf;
        let lib = std::env::var_os("CGOFIXTEST_ELF_LIB")
            .expect("CGOFIXTEST_ELF_LIB unset: memory_child is run by file_and_memory_agree");
        let c = std::ffi::CString::new(lib.as_encoded_bytes()).unwrap();
        // SAFETY: loads a Go library built by file_and_memory_agree, in this child only.
        assert!(!unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW) }.is_null());
        let mut obj = None;
        elf::for_each_object(|o| {
            if o.name_bytes() == lib.as_encoded_bytes() {
                obj = Some(*o);
            }
            obj.is_none()
        });
        let obj = obj.expect("library not among the loaded objects");
        assert!(elf::is_go_object(&obj));
        let version = elf::go_version_from_memory(&obj).expect("no buildinfo in memory");
        let recorded =
            elf::go_modinfo_from_memory(&obj, version).and_then(goinfo::recorded_buildmode);
        let mode = goinfo::buildmode(
            recorded,
            elf::lookup_dynsym(&obj, goinfo::CGO_WAIT).is_some(),
            elf::is_symbolic(&obj),
        );
        println!(
            "memory: {} {}",
            String::from_utf8_lossy(version),
            mode.unwrap_or("None")
        );
    }

    /// Go 1.19 (build mode inferred) and the newest Go (recorded), c-shared
    /// and a c-archive linked into a C library: doctor's file reading and the
    /// shim's memory reading give the same version and build mode, the
    /// expected ones, also with the section headers stripped.
    #[test]
    fn file_and_memory_agree() {
        let (go119, gonew) = testkit::deps::go_toolchains();
        for (go, old) in [(go119, true), (gonew, false)] {
            let version = testkit::deps::go_version(&go);
            assert_eq!(version.starts_with("go1.19."), old, "{}", go.display());
            let dir = std::env::temp_dir().join(format!(
                "cgofix-elfscan-go-{}-{version}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("main.go"), GO_SRC).unwrap();
            let go_build = |mode: &str, out: &str| {
                let o = testkit::proc::output(
                    Command::new(&go)
                        .current_dir(&dir)
                        .args(["build", &format!("-buildmode={mode}"), "-o", out, "main.go"])
                        .env("CGO_ENABLED", "1")
                        .env("GO111MODULE", "off")
                        .env("GOTOOLCHAIN", "local")
                        .env("GOFLAGS", "")
                        .env("GOCACHE", std::env::temp_dir().join("cgofix-cli-go-cache")),
                    Duration::from_secs(600),
                    &format!("file_and_memory_agree: {version} build -buildmode={mode}"),
                );
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            };
            go_build("c-shared", "libgo.so");
            go_build("c-archive", "libgo.a");
            std::fs::write(
                dir.join("addon.c"),
                "int GoAdd(int, int);\nint napi_register_module_v1(void) { return GoAdd(1, 2); }\n",
            )
            .unwrap();
            // Exported Go symbols (the default) and hidden ones (--exclude-libs).
            for (out, hide) in [("carchive.node", false), ("hidden.node", true)] {
                let mut args = vec!["-shared", "-fPIC", "-o", out, "addon.c", "libgo.a"];
                args.extend(hide.then_some("-Wl,--exclude-libs,ALL"));
                args.push("-lpthread");
                let cc = testkit::proc::output(
                    Command::new("cc").current_dir(&dir).args(&args),
                    Duration::from_secs(120),
                    &format!("file_and_memory_agree: cc {out}"),
                );
                assert!(
                    cc.status.success(),
                    "{}",
                    String::from_utf8_lossy(&cc.stderr)
                );
            }
            for (file, mode, exports) in [
                ("libgo.so", "c-shared", true),
                ("carchive.node", "c-archive", true),
                ("hidden.node", "c-archive", false),
            ] {
                let path = dir.join(file);
                let info = inspect(&path).unwrap().expect("ELF");
                let case = format!("{version} {file}: {info:?}");
                assert!(info.is_go && info.problem.is_none(), "{case}");
                assert_eq!(info.go_version.as_deref(), Some(version.as_str()), "{case}");
                assert_eq!(info.buildmode(), Some(mode), "{case}");
                assert_eq!(info.exports_cgo_wait, exports, "{case}");
                assert_eq!(info.symbolic, mode == "c-shared", "{case}");
                // Go >= 1.20 records the mode; 1.19 leaves it to the rule.
                let recorded = (!old).then(|| mode.to_string());
                assert_eq!(info.recorded_buildmode, recorded, "{case}");
                assert_eq!(from_memory(&path), format!("{version} {mode}"), "{case}");
                // Without section headers (as sstrip leaves a file): the
                // segments alone give the same answers.
                let mut bytes = std::fs::read(&path).unwrap();
                bytes[0x28..0x30].fill(0); // e_shoff
                bytes[0x3c..0x40].fill(0); // e_shnum, e_shstrndx
                let stripped = dir.join(format!("stripped-{file}"));
                std::fs::write(&stripped, bytes).unwrap();
                let s = inspect(&stripped).unwrap().expect("ELF");
                assert_eq!(s, info, "{case}: without section headers");
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

//! Inspecting ELF files on disk without reading them whole: the ELF header,
//! the section headers and a few small sections (`.dynamic`, `.dynsym`,
//! `.dynstr`, `.go.buildinfo`) are read with `pread`.
//!
//! # Build-mode rule
//!
//! An object is **Go** when it has a `.go.buildinfo` section (or, without
//! section headers, a buildinfo blob in its data segment), a
//! `.note.go.buildid` section, or exports `_cgo_wait_runtime_init_done`
//! (BACKGROUND.md §5). Of those, it is **c-shared** when it exports
//! `_cgo_wait_runtime_init_done` *and* was linked with `-Bsymbolic`
//! (`DT_SYMBOLIC`, or `DF_SYMBOLIC` in `DT_FLAGS`): Go's linker always passes
//! `-Wl,-z,nodelete -Wl,-Bsymbolic` for `-buildmode=c-shared` on ELF
//! (cmd/link/internal/ld/lib.go, `case BuildModeCShared`), while a C/C++
//! addon that links a Go `c-archive` is linked by the addon's own build
//! (node-gyp, cmake) without it. Every other Go object is **c-archive**: Go
//! code linked into a library built by something else (with its Go symbols
//! exported or hidden). An addon deliberately linked with `-Bsymbolic` around
//! a c-archive would be misreported as c-shared; both kinds carry a Go runtime
//! and need the shim alike, so the distinction is informational.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// What one ELF file holds. `go_version` may be `None` for a Go object whose
/// version could not be read (e.g. a stripped buildinfo).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ElfInfo {
    pub is_go: bool,
    pub go_version: Option<String>,
    pub exports_cgo_wait: bool,
    pub symbolic: bool,
    /// Why the file could not be inspected fully (unsupported class, corrupt headers).
    pub problem: Option<String>,
}

impl ElfInfo {
    /// `"c-shared"`, `"c-archive"` or `None` (not Go); see the module docs.
    pub fn buildmode(&self) -> Option<&'static str> {
        match (self.is_go, self.exports_cgo_wait && self.symbolic) {
            (false, _) => None,
            (true, true) => Some("c-shared"),
            (true, false) => Some("c-archive"),
        }
    }
}

pub const CGO_WAIT: &[u8] = b"_cgo_wait_runtime_init_done";
const BUILDINFO_MAGIC: &[u8] = b"\xff Go buildinf:";
/// Upper bound for any single table read from a file; larger means corrupt.
const MAX_READ: u64 = 256 << 20;

const SHT_DYNSYM: u64 = 11;
const SHT_DYNAMIC: u64 = 6;
const PT_LOAD: u64 = 1;
const PT_DYNAMIC: u64 = 2;
const DT_NULL: u64 = 0;
const DT_STRTAB: u64 = 5;
const DT_SYMTAB: u64 = 6;
const DT_STRSZ: u64 = 10;
const DT_SYMBOLIC: u64 = 16;
const DT_FLAGS: u64 = 30;
const DF_SYMBOLIC: u64 = 0x2;

/// Whether the first bytes are the ELF magic.
pub fn is_elf_magic(head: &[u8]) -> bool {
    head.starts_with(b"\x7fELF")
}

struct Reader<'a> {
    f: &'a File,
    len: u64,
}

impl Reader<'_> {
    fn read(&self, off: u64, len: u64) -> io::Result<Vec<u8>> {
        let end = off
            .checked_add(len)
            .filter(|&e| e <= self.len && len <= MAX_READ);
        if end.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "ELF table lies outside the file",
            ));
        }
        let mut buf = vec![0u8; len as usize];
        self.f.read_exact_at(&mut buf, off)?;
        Ok(buf)
    }
}

fn u16_at(b: &[u8], o: usize) -> u64 {
    b.get(o..o + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]) as u64)
}
fn u32_at(b: &[u8], o: usize) -> u64 {
    b.get(o..o + 4)
        .map_or(0, |s| u32::from_le_bytes(s.try_into().unwrap()) as u64)
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    b.get(o..o + 8)
        .map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap()))
}

/// Version string of a Go >= 1.18 buildinfo blob (flag 0x2: varint-prefixed
/// strings follow the 32-byte header). `None` for the older pointer format.
fn inline_buildinfo_version(blob: &[u8]) -> Option<String> {
    if blob.len() < 33 || !blob.starts_with(BUILDINFO_MAGIC) || blob[15] & 0x2 == 0 {
        return None;
    }
    let (mut len, mut shift, mut i) = (0u64, 0, 32);
    loop {
        let b = *blob.get(i)?;
        len |= u64::from(b & 0x7f) << shift;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 56 {
            return None;
        }
    }
    let v = blob.get(i..i.checked_add(usize::try_from(len).ok()?)?)?;
    (v.starts_with(b"go") || v.starts_with(b"devel"))
        .then(|| String::from_utf8_lossy(v).into_owned())
}

/// Offsets in `strtab` where `name` followed by NUL starts (linkers merge
/// string tails, so a name may start inside a longer string).
fn name_offsets(strtab: &[u8], name: &[u8]) -> Vec<u64> {
    let mut pat = name.to_vec();
    pat.push(0);
    strtab
        .windows(pat.len())
        .enumerate()
        .filter(|(_, w)| *w == pat.as_slice())
        .map(|(i, _)| i as u64)
        .collect()
}

/// Whether a defined, non-local symbol in `symtab` (Elf64_Sym entries) has a
/// name offset in `offsets`.
fn defines(symtab: &[u8], offsets: &[u64]) -> bool {
    symtab.chunks_exact(24).any(|s| {
        let (name, info, shndx) = (u32_at(s, 0), s[4], u16_at(s, 6));
        offsets.contains(&name) && shndx != 0 && info >> 4 != 0
    })
}

/// Inspects the ELF file at `path`. `Ok(None)` when it is not ELF at all.
#[cfg(test)]
pub fn inspect(path: &Path) -> io::Result<Option<ElfInfo>> {
    let f = File::open(path)?;
    inspect_file(&f, path)
}

/// [`inspect`] on an open file (`path` only for the pre-Go-1.18 fallback).
pub fn inspect_file(f: &File, path: &Path) -> io::Result<Option<ElfInfo>> {
    let len = f.metadata()?.len();
    let mut head = [0u8; 64];
    let n = f.read_at(&mut head, 0)?;
    if n < 4 || !is_elf_magic(&head) {
        return Ok(None);
    }
    let mut info = ElfInfo::default();
    if n < 64 || head[4] != 2 || head[5] != 1 {
        info.problem = Some("not a 64-bit little-endian ELF file; not inspected".into());
        return Ok(Some(info));
    }
    let r = Reader { f, len };
    match inspect_elf64(&r, &head, path, &mut info) {
        Ok(()) => {}
        Err(e)
            if e.kind() == io::ErrorKind::InvalidData
                || e.kind() == io::ErrorKind::UnexpectedEof =>
        {
            info.problem = Some(format!("corrupt ELF file ({e})"));
        }
        Err(e) => return Err(e),
    }
    Ok(Some(info))
}

fn inspect_elf64(r: &Reader, head: &[u8], path: &Path, info: &mut ElfInfo) -> io::Result<()> {
    let (phoff, shoff) = (u64_at(head, 0x20), u64_at(head, 0x28));
    let (phnum, shentsize, shnum, shstrndx) = (
        u16_at(head, 0x38),
        u16_at(head, 0x3a),
        u16_at(head, 0x3c),
        u16_at(head, 0x3e),
    );
    if shoff != 0 && shnum != 0 && shentsize == 64 && shstrndx < shnum {
        let sh = r.read(shoff, shnum * 64)?;
        let hdr = |i: u64| &sh[(i * 64) as usize..(i * 64 + 64) as usize];
        let (name_off, name_len) = (u64_at(hdr(shstrndx), 0x18), u64_at(hdr(shstrndx), 0x20));
        let names = r.read(name_off, name_len)?;
        let mut dynsym = None;
        let mut dynamic = None;
        for i in 0..shnum {
            let s = hdr(i);
            let name_at = u32_at(s, 0) as usize;
            let name = names
                .get(name_at..)
                .and_then(|n| n.split(|&c| c == 0).next())
                .unwrap_or(b"");
            let (ty, off, size, link) = (
                u32_at(s, 4),
                u64_at(s, 0x18),
                u64_at(s, 0x20),
                u32_at(s, 0x28),
            );
            match (name, ty) {
                (b".go.buildinfo", _) => {
                    info.is_go = true;
                    let blob = r.read(off, size.min(64 << 10))?;
                    info.go_version = inline_buildinfo_version(&blob);
                    if info.go_version.is_none() && blob.starts_with(BUILDINFO_MAGIC) {
                        // Pre-1.18 pointer format: let interpose resolve the pointers.
                        info.go_version = interpose::elf::go_version_from_file(path);
                    }
                }
                (b".note.go.buildid", _) => info.is_go = true,
                (_, SHT_DYNSYM) => dynsym = Some((off, size, link)),
                (_, SHT_DYNAMIC) => dynamic = Some((off, size)),
                _ => {}
            }
        }
        if let Some((off, size)) = dynamic {
            info.symbolic = dynamic_is_symbolic(&r.read(off, size)?).0;
        }
        if let Some((off, size, link)) = dynsym
            && link < shnum
        {
            let strtab = r.read(u64_at(hdr(link), 0x18), u64_at(hdr(link), 0x20))?;
            let offsets = name_offsets(&strtab, CGO_WAIT);
            info.exports_cgo_wait = !offsets.is_empty() && defines(&r.read(off, size)?, &offsets);
        }
    } else {
        // No section headers (e.g. sstrip'ed): the dynamic segment and the
        // loadable segments are all there is.
        let ph = r.read(phoff, phnum * 56)?;
        let loads: Vec<(u64, u64, u64)> = ph
            .chunks_exact(56)
            .filter(|p| u32_at(p, 0) == PT_LOAD)
            .map(|p| (u64_at(p, 16), u64_at(p, 8), u64_at(p, 32)))
            .collect();
        let to_off = |va: u64| {
            loads
                .iter()
                .find(|&&(pva, _, sz)| pva <= va && va < pva + sz)
                .map(|&(pva, off, _)| off + (va - pva))
        };
        if let Some(p) = ph.chunks_exact(56).find(|p| u32_at(p, 0) == PT_DYNAMIC) {
            let dynamic = r.read(u64_at(p, 8), u64_at(p, 32))?;
            let (symbolic, symtab, strtab, strsz) = dynamic_is_symbolic(&dynamic);
            info.symbolic = symbolic;
            if let (Some(sym), Some(str_)) = (to_off(symtab), to_off(strtab))
                && strtab > symtab
            {
                // GNU ld places .dynstr right after .dynsym.
                let strs = r.read(str_, strsz)?;
                let offsets = name_offsets(&strs, CGO_WAIT);
                info.exports_cgo_wait =
                    !offsets.is_empty() && defines(&r.read(sym, strtab - symtab)?, &offsets);
            }
        }
        info.go_version = interpose::elf::go_version_from_file(path);
        info.is_go |= info.go_version.is_some();
    }
    info.is_go |= info.exports_cgo_wait;
    Ok(())
}

/// (symbolic, DT_SYMTAB, DT_STRTAB, DT_STRSZ) from a `.dynamic` blob.
fn dynamic_is_symbolic(dynamic: &[u8]) -> (bool, u64, u64, u64) {
    let (mut symbolic, mut symtab, mut strtab, mut strsz) = (false, 0, 0, 0);
    for d in dynamic.chunks_exact(16) {
        let (tag, val) = (u64_at(d, 0), u64_at(d, 8));
        match tag {
            DT_NULL => break,
            DT_SYMBOLIC => symbolic = true,
            DT_FLAGS => symbolic |= val & DF_SYMBOLIC != 0,
            DT_SYMTAB => symtab = val,
            DT_STRTAB => strtab = val,
            DT_STRSZ => strsz = val,
            _ => {}
        }
    }
    (symbolic, symtab, strtab, strsz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildinfo_inline() {
        let mut blob = BUILDINFO_MAGIC.to_vec();
        blob.extend([8, 2]);
        blob.resize(32, 0);
        blob.extend(b"\x08go1.21.0rest");
        assert_eq!(inline_buildinfo_version(&blob).as_deref(), Some("go1.21.0"));
        blob[15] = 0;
        assert_eq!(inline_buildinfo_version(&blob), None);
        blob[15] = 2;
        blob[32] = 0x7f; // length beyond the blob
        assert_eq!(inline_buildinfo_version(&blob), None);
        assert_eq!(inline_buildinfo_version(b"short"), None);
    }

    #[test]
    fn tail_merged_names() {
        let strtab = b"\0x_cgo_wait_runtime_init_done\0_cgo_wait_runtime_init_done_not\0";
        assert_eq!(name_offsets(strtab, CGO_WAIT), vec![2]);
        let mut sym = [0u8; 24];
        sym[0] = 2;
        sym[4] = 0x12; // GLOBAL FUNC
        sym[6] = 9; // defined in section 9
        assert!(defines(&sym, &[2]));
        sym[6] = 0; // undefined: an import, not an export
        assert!(!defines(&sym, &[2]));
        sym[6] = 9;
        sym[4] = 0x02; // LOCAL
        assert!(!defines(&sym, &[2]));
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
    }

    #[test]
    fn non_elf_and_truncated() {
        let dir = std::env::temp_dir().join(format!("cgofix-elfscan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.so");
        std::fs::write(&p, b"/* GNU ld script */").unwrap();
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
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn own_executable_is_not_go() {
        let exe = std::env::current_exe().unwrap();
        let info = inspect(&exe).unwrap().expect("ELF");
        assert!(!info.is_go && !info.exports_cgo_wait, "{info:?}");
        assert_eq!(info.problem, None);
    }
}

//! Read-only views of the ELF objects mapped into this process.
//!
//! Everything here is LP64-only (Elf64 structures) and works on the images the
//! dynamic loader already mapped: no file I/O and no allocation ([`for_each_object`]
//! takes the loader lock inside `dl_iterate_phdr`). What the Go build
//! information means is [`crate::goinfo`]'s business; this module only finds it.

use crate::goinfo;
use core::ffi::{CStr, c_char, c_int, c_void};
use libc::{Elf64_Phdr, Elf64_Sym, PF_R, PF_W, PF_X, PT_DYNAMIC, PT_GNU_RELRO, PT_LOAD, PT_NOTE};

/// One object reported by `dl_iterate_phdr`.
///
/// `name` and `phdr` point into loader-owned memory that stays valid until the
/// object is unloaded, so the struct is freely copyable and never allocates.
#[derive(Clone, Copy, Debug)]
pub struct LoadedObject {
    /// Load bias (`dlpi_addr`): link-time virtual addresses plus `base` are run-time addresses.
    pub base: usize,
    /// `dlpi_name`, a NUL-terminated path; empty for the main program.
    pub name: *const c_char,
    pub phdr: *const Elf64_Phdr,
    pub phnum: u16,
}

// SAFETY: the pointers refer to immutable loader data (l_name, mapped program
// headers) that any thread may read for as long as the object stays loaded.
unsafe impl Send for LoadedObject {}
// SAFETY: as above; nothing behind the pointers is ever written through them.
unsafe impl Sync for LoadedObject {}

impl LoadedObject {
    /// The object's path without the NUL. No allocation, no locking.
    pub fn name_bytes(&self) -> &[u8] {
        if self.name.is_null() {
            return b"";
        }
        // SAFETY: dlpi_name is a NUL-terminated string owned by the loader for the object's lifetime.
        unsafe { CStr::from_ptr(self.name) }.to_bytes()
    }

    /// The mapped program headers. No allocation, no locking.
    pub fn phdrs(&self) -> &[Elf64_Phdr] {
        if self.phdr.is_null() {
            return &[];
        }
        // SAFETY: dlpi_phdr points at dlpi_phnum headers inside the mapped image.
        unsafe { core::slice::from_raw_parts(self.phdr, self.phnum as usize) }
    }

    /// Whether `addr` lies in the file-backed, readable part of some PT_LOAD segment
    /// (`len` bytes from it). No allocation, no locking.
    pub fn contains(&self, addr: usize, len: usize) -> bool {
        let end = match addr.checked_add(len) {
            Some(e) => e,
            None => return false,
        };
        self.phdrs().iter().any(|p| {
            let s = self.base.wrapping_add(p.p_vaddr as usize);
            p.p_type == PT_LOAD
                && p.p_flags & PF_R != 0
                && s <= addr
                && end <= s + p.p_filesz as usize
        })
    }
}

/// Calls `f` for every loaded object until it returns `false`.
///
/// Wraps `dl_iterate_phdr`, which holds the loader's lock while `f` runs: do not
/// call `dlopen`/`dlclose` from `f`. The first object is the main program. A
/// panic in `f` stops the walk and is resumed after the lock is released.
/// No allocation by this crate.
// Start-up code kept together (build.rs, 4).
#[unsafe(link_section = ".text.cgofix_startup")]
pub fn for_each_object<F: FnMut(&LoadedObject) -> bool>(f: F) {
    struct Ctx<F> {
        f: F,
        panic: Option<Box<dyn core::any::Any + Send>>,
    }
    // Start-up code kept together (build.rs, 4).
    #[unsafe(link_section = ".text.cgofix_startup")]
    unsafe extern "C" fn cb<G: FnMut(&LoadedObject) -> bool>(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut c_void,
    ) -> c_int {
        // SAFETY: glibc passes a valid dl_phdr_info, and `data` is the &mut Ctx handed in below.
        let (info, ctx) = unsafe { (&*info, &mut *(data as *mut Ctx<G>)) };
        let obj = LoadedObject {
            base: info.dlpi_addr as usize,
            name: info.dlpi_name,
            phdr: info.dlpi_phdr,
            phnum: info.dlpi_phnum,
        };
        // A panic must not unwind through dl_iterate_phdr's C frames (and would
        // leave its lock held): stop, and re-raise once it has returned.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (ctx.f)(&obj))) {
            Ok(true) => 0,
            Ok(false) => 1,
            Err(p) => {
                ctx.panic = Some(p);
                1
            }
        }
    }
    let mut ctx = Ctx { f, panic: None };
    // SAFETY: `cb::<F>` matches the callback ABI and only uses `data` as the &mut Ctx passed here.
    unsafe { libc::dl_iterate_phdr(Some(cb::<F>), &mut ctx as *mut Ctx<F> as *mut c_void) };
    if let Some(p) = ctx.panic {
        std::panic::resume_unwind(p);
    }
}

/// `Elf64_Dyn` (libc does not export it).
#[repr(C)]
struct Dyn {
    tag: i64,
    val: u64,
}

const DT_NULL: i64 = 0;
const DT_HASH: i64 = 4;
const DT_STRTAB: i64 = 5;
const DT_SYMTAB: i64 = 6;
const DT_RELA: i64 = 7;
const DT_RELASZ: i64 = 8;
const DT_RELAENT: i64 = 9;
const DT_STRSZ: i64 = 10;
const DT_SYMBOLIC: i64 = 16;
const DT_PLTRELSZ: i64 = 2;
const DT_PLTREL: i64 = 20;
const DT_JMPREL: i64 = 23;
const DT_BIND_NOW: i64 = 24;
const DT_FLAGS: i64 = 30;
const DT_GNU_HASH: i64 = 0x6fff_fef5;
const DT_VERSYM: i64 = 0x6fff_fff0;
const DT_FLAGS_1: i64 = 0x6fff_fffb;
const DT_VERDEF: i64 = 0x6fff_fffc;
const DT_VERDEFNUM: i64 = 0x6fff_fffd;
const DF_SYMBOLIC: u64 = 0x2;
const DF_BIND_NOW: u64 = 0x8;
const DF_1_NOW: u64 = 0x1;

/// The loaded object whose mapped segments hold `addr`. Not
/// async-signal-safe ([`for_each_object`] takes the loader's lock).
pub fn object_at(addr: usize) -> Option<LoadedObject> {
    let mut found = None;
    for_each_object(|o| {
        if o.contains(addr, 1) {
            found = Some(*o);
        }
        found.is_none()
    });
    found
}

/// The parts of an object's dynamic section this crate uses. Addresses are
/// run-time addresses (0 when the tag is absent); sizes are in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DynInfo {
    pub symtab: usize,
    pub strtab: usize,
    pub strsz: usize,
    pub gnu_hash: usize,
    pub hash: usize,
    pub versym: usize,
    pub jmprel: usize,
    pub pltrelsz: usize,
    /// DT_PLTREL: 7 (DT_RELA) or 17 (DT_REL).
    pub pltrel: u64,
    pub rela: usize,
    pub relasz: usize,
    pub relaent: usize,
    pub verdef: usize,
    pub verdefnum: usize,
    pub flags: u64,
    pub flags_1: u64,
    pub bind_now_tag: bool,
    pub symbolic_tag: bool,
    /// PT_GNU_RELRO as a run-time `[start, end)` range, if present.
    pub relro: Option<(usize, usize)>,
}

impl DynInfo {
    /// Whether the object was linked with `-z now` (all PLT slots resolved at load time).
    pub fn bind_now(&self) -> bool {
        self.bind_now_tag || self.flags & DF_BIND_NOW != 0 || self.flags_1 & DF_1_NOW != 0
    }

    /// Whether the object was linked with `-Bsymbolic` (DT_SYMBOLIC, or
    /// DF_SYMBOLIC in DT_FLAGS): one input of [`crate::goinfo::buildmode`].
    pub fn symbolic(&self) -> bool {
        self.symbolic_tag || self.flags & DF_SYMBOLIC != 0
    }
}

/// Decodes the object's PT_DYNAMIC. `None` when there is none (e.g. static programs).
/// No allocation, no locking.
// Start-up code kept together (build.rs, 4).
#[unsafe(link_section = ".text.cgofix_startup")]
pub fn dynamic_info(obj: &LoadedObject) -> Option<DynInfo> {
    let mut info = DynInfo::default();
    let dynamic = obj.phdrs().iter().find(|p| p.p_type == PT_DYNAMIC)?;
    if let Some(r) = obj.phdrs().iter().find(|p| p.p_type == PT_GNU_RELRO) {
        let s = obj.base + r.p_vaddr as usize;
        info.relro = Some((s, s + r.p_memsz as usize));
    }
    // glibc rewrites d_ptr of DT_SYMTAB/STRTAB/HASH/GNU_HASH/RELA/JMPREL/VERSYM in
    // place (elf/get-dynamic-info.h, ADJUST_DYN_INFO) but not DT_VERDEF, and not
    // at all for the vDSO or where the section is read-only. Rather than track
    // that list, treat any pointer below the load bias as still unrelocated.
    let addr = |v: u64| {
        let v = v as usize;
        if v < obj.base { v + obj.base } else { v }
    };
    let mut d = (obj.base + dynamic.p_vaddr as usize) as *const Dyn;
    loop {
        // SAFETY: PT_DYNAMIC is mapped and, per the gABI, terminated by DT_NULL.
        let Dyn { tag, val } = unsafe { core::ptr::read(d) };
        match tag {
            DT_NULL => break,
            DT_SYMTAB => info.symtab = addr(val),
            DT_STRTAB => info.strtab = addr(val),
            DT_STRSZ => info.strsz = val as usize,
            DT_GNU_HASH => info.gnu_hash = addr(val),
            DT_HASH => info.hash = addr(val),
            DT_VERSYM => info.versym = addr(val),
            DT_JMPREL => info.jmprel = addr(val),
            DT_PLTRELSZ => info.pltrelsz = val as usize,
            DT_PLTREL => info.pltrel = val,
            DT_RELA => info.rela = addr(val),
            DT_RELASZ => info.relasz = val as usize,
            DT_RELAENT => info.relaent = val as usize,
            DT_VERDEF => info.verdef = addr(val),
            DT_VERDEFNUM => info.verdefnum = val as usize,
            DT_FLAGS => info.flags = val,
            DT_FLAGS_1 => info.flags_1 = val,
            DT_BIND_NOW => info.bind_now_tag = true,
            DT_SYMBOLIC => info.symbolic_tag = true,
            _ => {}
        }
        // SAFETY: not yet at DT_NULL, so the next entry is still inside PT_DYNAMIC.
        d = unsafe { d.add(1) };
    }
    (info.symtab != 0 && info.strtab != 0).then_some(info)
}

/// Whether `obj`'s mapped dynamic section says it was linked with
/// `-Bsymbolic` ([`DynInfo::symbolic`]); `false` without a dynamic section.
/// No allocation, no locking.
pub fn is_symbolic(obj: &LoadedObject) -> bool {
    dynamic_info(obj).is_some_and(|d| d.symbolic())
}

/// NUL-terminated string at `off` in the dynamic string table, without the NUL.
pub(crate) fn dynstr(info: &DynInfo, off: u32) -> &'static [u8] {
    if info.strsz != 0 && off as usize >= info.strsz {
        return b"";
    }
    // SAFETY: DT_STRTAB is mapped and its strings are NUL-terminated (gABI).
    unsafe { CStr::from_ptr((info.strtab + off as usize) as *const c_char) }.to_bytes()
}

/// A defined dynamic symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SymInfo {
    /// Run-time address. For `STT_GNU_IFUNC` this is the resolver, not the implementation.
    pub addr: usize,
    pub size: usize,
    /// `STT_*` (2 = FUNC, 10 = GNU_IFUNC, ...).
    pub st_type: u8,
    /// `STB_*` (1 = GLOBAL, 2 = WEAK, 10 = GNU_UNIQUE).
    pub st_bind: u8,
}

/// Address of the defined dynamic symbol `name` in `obj` (see [`lookup_dynsym_info`]).
/// No allocation, no locking.
pub fn lookup_dynsym(obj: &LoadedObject, name: &[u8]) -> Option<usize> {
    lookup_dynsym_info(obj, name).map(|s| s.addr)
}

/// Looks `name` up in `obj`'s own dynamic symbol table via DT_GNU_HASH, else
/// DT_HASH. Undefined, local and TLS symbols are skipped; when several versions
/// exist (e.g. libc's `realpath@GLIBC_2.2.5` and `realpath@@GLIBC_2.3`) the
/// default (non-hidden) version wins, as `dlsym` would pick it.
/// No allocation, no locking.
pub fn lookup_dynsym_info(obj: &LoadedObject, name: &[u8]) -> Option<SymInfo> {
    lookup_in(obj, &dynamic_info(obj)?, name, true)
}

/// The definition of `name` that `dlsym` would return from `obj` alone:
/// as [`lookup_dynsym_info`], except that a name defined only under hidden
/// (non-default) versions is not found, as `dlsym` never returns those
/// (glibc elf/dl-lookup.c, `check_match` with `DL_LOOKUP_RETURN_NEWEST`).
/// `info` is `obj`'s [`dynamic_info`], decoded once for several names.
/// No allocation, no locking.
pub fn lookup_dynsym_default(obj: &LoadedObject, info: &DynInfo, name: &[u8]) -> Option<SymInfo> {
    lookup_in(obj, info, name, false)
}

// Start-up code kept together (build.rs, 4).
#[unsafe(link_section = ".text.cgofix_startup")]
fn lookup_in(obj: &LoadedObject, info: &DynInfo, name: &[u8], hidden_ok: bool) -> Option<SymInfo> {
    let mut hidden_match = None;
    let mut consider = |idx: u32| -> Option<SymInfo> {
        // SAFETY: idx comes from the object's own hash table, so it indexes DT_SYMTAB.
        let sym: Elf64_Sym = unsafe { *(info.symtab as *const Elf64_Sym).add(idx as usize) };
        let (st_type, st_bind) = (sym.st_info & 0xf, sym.st_info >> 4);
        if sym.st_shndx == 0 || st_bind == 0 || st_type == 6 || dynstr(info, sym.st_name) != name {
            return None;
        }
        let addr = if sym.st_shndx == 0xfff1 {
            sym.st_value as usize
        } else {
            obj.base + sym.st_value as usize
        };
        let found = SymInfo {
            addr,
            size: sym.st_size as usize,
            st_type,
            st_bind,
        };
        // SAFETY: DT_VERSYM, when present, has one u16 per DT_SYMTAB entry (GNU symbol versioning).
        let hidden = info.versym != 0
            && unsafe { *(info.versym as *const u16).add(idx as usize) } & 0x8000 != 0;
        if hidden {
            if hidden_ok {
                hidden_match.get_or_insert(found);
            }
            return None;
        }
        Some(found)
    };
    if info.gnu_hash != 0 {
        let h = name
            .iter()
            .fold(5381u32, |h, &c| h.wrapping_mul(33).wrapping_add(c as u32));
        let hdr = info.gnu_hash as *const u32;
        // SAFETY: DT_GNU_HASH layout: nbuckets, symoffset, bloom_size, bloom_shift,
        // u64 bloom[bloom_size], u32 buckets[nbuckets], u32 chain[] (binutils/glibc).
        unsafe {
            let (nbuckets, symoffset, bloom_size, shift) =
                (*hdr, *hdr.add(1), *hdr.add(2), *hdr.add(3));
            if nbuckets == 0 || bloom_size == 0 {
                return hidden_match;
            }
            let bloom = hdr.add(4) as *const u64;
            let word = *bloom.add(((h / 64) % bloom_size) as usize);
            if (word >> (h % 64)) & (word >> ((h >> shift) % 64)) & 1 == 0 {
                return None;
            }
            let buckets = bloom.add(bloom_size as usize) as *const u32;
            let chain = buckets.add(nbuckets as usize);
            let mut idx = *buckets.add((h % nbuckets) as usize);
            if idx < symoffset {
                return None;
            }
            loop {
                let ch = *chain.add((idx - symoffset) as usize);
                if (ch | 1) == (h | 1)
                    && let Some(s) = consider(idx)
                {
                    return Some(s);
                }
                if ch & 1 != 0 {
                    break;
                }
                idx += 1;
            }
        }
    } else if info.hash != 0 {
        let h = name.iter().fold(0u32, |h, &c| {
            let h = (h << 4).wrapping_add(c as u32);
            (h ^ ((h & 0xf000_0000) >> 24)) & 0x0fff_ffff
        });
        let hdr = info.hash as *const u32;
        // SAFETY: DT_HASH layout (gABI): nbucket, nchain, bucket[nbucket], chain[nchain].
        unsafe {
            let (nbucket, nchain) = (*hdr, *hdr.add(1));
            if nbucket == 0 {
                return None;
            }
            let chain = hdr.add(2 + nbucket as usize);
            let mut idx = *hdr.add(2 + (h % nbucket) as usize);
            while idx != 0 && idx < nchain {
                if let Some(s) = consider(idx) {
                    return Some(s);
                }
                idx = *chain.add(idx as usize);
            }
        }
    }
    hidden_match
}

/// Calls `f` with each version name the object defines (DT_VERDEF), skipping
/// the `VER_FLG_BASE` entry (which only repeats the soname).
/// No allocation, no locking.
pub fn verdef_names(obj: &LoadedObject, mut f: impl FnMut(&[u8])) {
    let Some(info) = dynamic_info(obj) else {
        return;
    };
    if info.verdef == 0 {
        return;
    }
    let mut vd = info.verdef;
    for _ in 0..info.verdefnum.max(1) {
        // SAFETY: Elf64_Verdef is {u16 version, flags, ndx, cnt; u32 hash, aux, next}
        // and each entry's first Elf64_Verdaux {u32 name, next} names it (GNU versioning).
        let (flags, aux, next) = unsafe {
            let p = vd as *const u8;
            (
                *(p.add(2) as *const u16),
                *(p.add(12) as *const u32),
                *(p.add(16) as *const u32),
            )
        };
        if flags & 1 == 0 {
            // SAFETY: see above; vd + vd_aux is the first Verdaux of this entry.
            let name = unsafe { *((vd + aux as usize) as *const u32) };
            f(dynstr(&info, name));
        }
        if next == 0 {
            break;
        }
        vd += next as usize;
    }
}

/// Descriptor of the first note in `obj`'s PT_NOTE segments with this owner and
/// type. Owner comparison ignores trailing NULs: Go writes namesz = 4 for "Go"
/// (padding counted), where the gABI would say 3. No allocation, no locking.
pub fn find_note<'a>(obj: &'a LoadedObject, owner: &[u8], ntype: u32) -> Option<&'a [u8]> {
    let up = |v: usize, a: usize| (v + a - 1) & !(a - 1);
    for p in obj.phdrs().iter().filter(|p| p.p_type == PT_NOTE) {
        // 8-byte-aligned note segments (e.g. .note.gnu.property) pad to 8, others to 4.
        let align = if p.p_align == 8 { 8 } else { 4 };
        let start = obj.base + p.p_vaddr as usize;
        // SAFETY: PT_NOTE lies inside a loaded, readable segment.
        let seg = unsafe { core::slice::from_raw_parts(start as *const u8, p.p_filesz as usize) };
        let mut off = 0;
        while off + 12 <= seg.len() {
            let word = |i: usize| {
                u32::from_ne_bytes(seg[off + i..off + i + 4].try_into().unwrap()) as usize
            };
            let (namesz, descsz, t) = (word(0), word(4), word(8) as u32);
            let name_at = off + 12;
            let desc_at = up(name_at + namesz, align);
            let Some(desc) = seg.get(desc_at..desc_at + descsz) else {
                break;
            };
            let name = &seg[name_at..name_at + namesz];
            let trimmed = name
                .iter()
                .rposition(|&c| c != 0)
                .map_or(&name[..0], |i| &name[..=i]);
            if t == ntype && trimmed == owner {
                return Some(desc);
            }
            off = up(desc_at + descsz, align);
        }
    }
    None
}

/// Go's build-ID note: owner "Go", type 4 (`NT_GO_BUILDID`, cmd/link/internal/ld/elf.go).
pub const GO_NOTE_OWNER: &[u8] = b"Go";
pub const NT_GO_BUILDID: u32 = 4;

/// Whether `obj` contains a Go runtime: it exports `_cgo_wait_runtime_init_done`
/// (c-shared, or a c-archive linked with default visibility) or carries the Go
/// build-ID note (kept by the C linker even when the symbol is hidden).
/// No allocation, no locking.
pub fn is_go_object(obj: &LoadedObject) -> bool {
    lookup_dynsym(obj, b"_cgo_wait_runtime_init_done").is_some()
        || find_note(obj, GO_NOTE_OWNER, NT_GO_BUILDID).is_some()
}

/// `[start, end)` spanning all executable PT_LOAD segments; `(0, 0)` if none.
/// No allocation, no locking.
pub fn text_range(obj: &LoadedObject) -> (usize, usize) {
    let x = obj
        .phdrs()
        .iter()
        .filter(|p| p.p_type == PT_LOAD && p.p_flags & PF_X != 0);
    let (lo, hi) = x.fold((usize::MAX, 0), |(lo, hi), p| {
        let s = obj.base + p.p_vaddr as usize;
        (lo.min(s), hi.max(s + p.p_memsz as usize))
    });
    if lo < hi { (lo, hi) } else { (0, 0) }
}

/// The Go toolchain version (e.g. `b"go1.27.3"`) recorded in `obj`'s mapped
/// `.go.buildinfo`, found by scanning readable, non-executable PT_LOAD segments
/// (writable ones first; that is where Go's linker puts it) for the 16-aligned
/// magic. Costs one pass over those segments; no allocation, no locking. The
/// slice lives as long as the object stays loaded (Go objects are NODELETE).
pub fn go_version_from_memory(obj: &LoadedObject) -> Option<&'static [u8]> {
    for want_w in [true, false] {
        for p in obj.phdrs() {
            let data = p.p_type == PT_LOAD && p.p_flags & (PF_R | PF_X) == PF_R;
            if !data || (p.p_flags & PF_W != 0) != want_w {
                continue;
            }
            let start = obj.base + p.p_vaddr as usize;
            // SAFETY: the file-backed part of a readable PT_LOAD is mapped and readable.
            let seg: &'static [u8] =
                unsafe { core::slice::from_raw_parts(start as *const u8, p.p_filesz as usize) };
            let deref = |a: u64, n: usize| {
                // SAFETY: checked to lie inside this object's mapped, readable segments.
                obj.contains(a as usize, n)
                    .then(|| unsafe { core::slice::from_raw_parts(a as *const u8, n) })
            };
            let mut off = (16 - start % 16) % 16;
            while off + 32 <= seg.len() {
                if seg[off] == 0xff
                    && let Some(b) = goinfo::parse_buildinfo(&seg[off..], deref)
                {
                    return Some(b.version);
                }
                off += 16;
            }
        }
    }
    None
}

/// The module-info string that follows the version inside an inline-format
/// `.go.buildinfo` (Go >= 1.18), without its sentinels: `path`, `mod`, `dep`
/// and `build` lines, e.g. `build\t-buildmode=c-shared` (recorded from Go 1.20
/// on; see [`goinfo::recorded_buildmode`]). `version` must be a slice returned
/// by [`go_version_from_memory`] for `obj`. Bounds-checked against the
/// object's mapped segments; no allocation.
pub fn go_modinfo_from_memory(obj: &LoadedObject, version: &'static [u8]) -> Option<&'static [u8]> {
    let at = version.as_ptr() as usize + version.len();
    // The varint length prefix (at most 10 bytes), each byte checked before it is read.
    let mut n = 0;
    while n < 10 && obj.contains(at + n, 1) {
        n += 1;
        // SAFETY: `at + n - 1` was just checked to lie in a mapped, readable segment.
        if unsafe { *((at + n - 1) as *const u8) } < 0x80 {
            break;
        }
    }
    // SAFETY: each of these `n` bytes was checked above.
    let prefix = unsafe { core::slice::from_raw_parts(at as *const u8, n) };
    let (len, used) = goinfo::uvarint(prefix)?;
    let (start, len) = (at + used, usize::try_from(len).ok()?);
    // SAFETY: the whole range is checked to lie in a mapped, readable segment.
    obj.contains(start, len).then(|| {
        goinfo::strip_sentinels(unsafe { core::slice::from_raw_parts(start as *const u8, len) })
    })
}

/// The first definition of `name` (default version, not an IFUNC) in the
/// loaded objects, in load order: from the program on (`after` = `None`),
/// or after the object that contains the address `after`. For the objects
/// loaded at start-up, which are all in the global scope, in that order,
/// this is what `dlsym(RTLD_DEFAULT)` and `dlsym(RTLD_NEXT)` called from
/// that object return; objects `dlopen`ed since are searched too, with or
/// without `RTLD_GLOBAL`. For where no `dlsym` exists (the zig build on a
/// glibc < 2.34 without libdl.so.2) and where `dlsym` finds nothing.
/// Not async-signal-safe (`dl_iterate_phdr` takes the loader lock).
pub fn first_definition(name: &[u8], after: Option<usize>) -> Option<usize> {
    const STT_GNU_IFUNC: u8 = 10;
    let (mut searching, mut found) = (after.is_none(), None);
    for_each_object(|o| {
        if searching {
            found = dynamic_info(o)
                .and_then(|info| lookup_dynsym_default(o, &info, name))
                .filter(|s| s.st_type != STT_GNU_IFUNC)
                .map(|s| s.addr);
        }
        searching |= after.is_some_and(|a| o.contains(a, 1));
        found.is_none()
    });
    found
}

#[cfg(test)]
mod tests {

    #[test]
    fn first_definition_is_what_dlsym_returns() {
        // From this test program: RTLD_DEFAULT and RTLD_NEXT (the caller
        // being the program, first in load order) both find libc's.
        let here = first_definition_is_what_dlsym_returns as fn() as usize;
        for name in [c"sigaction", c"write", c"dl_iterate_phdr"] {
            // SAFETY: valid NUL-terminated names; pseudo-handles.
            let (default, next) = unsafe {
                (
                    libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) as usize,
                    libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) as usize,
                )
            };
            assert_ne!(default, 0, "{name:?}");
            assert_eq!(
                first_definition(name.to_bytes(), None),
                Some(default),
                "{name:?}"
            );
            assert_eq!(
                first_definition(name.to_bytes(), Some(here)),
                Some(next),
                "{name:?}"
            );
        }
        assert_eq!(first_definition(b"cgofix_no_such_symbol", None), None);
        // Nothing after the last object.
        let mut last = 0;
        for_each_object(|o| {
            last = o
                .phdrs()
                .iter()
                .find(|p| p.p_type == 1)
                .map_or(0, |p| o.base + p.p_vaddr as usize);
            true
        });
        assert_eq!(first_definition(b"write", Some(last)), None);
    }
    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::time::Duration;

    fn object_named(suffix: &[u8]) -> LoadedObject {
        let mut found = None;
        for_each_object(|o| {
            if o.name_bytes().ends_with(suffix) {
                found = Some(*o);
            }
            found.is_none()
        });
        found.expect("object not loaded")
    }

    fn dlsym_default(name: &CStr) -> usize {
        // SAFETY: plain lookup in the global scope.
        unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) as usize }
    }

    #[test]
    fn libc_symbols_match_dlsym() {
        let libc_so = object_named(b"libc.so.6");
        assert_eq!(
            lookup_dynsym(&libc_so, b"getpid"),
            Some(dlsym_default(c"getpid"))
        );
        // Two versions exist; the default one must win, as for dlsym.
        assert_eq!(
            lookup_dynsym(&libc_so, b"realpath"),
            Some(dlsym_default(c"realpath"))
        );
        assert_eq!(
            lookup_dynsym_info(&libc_so, b"memcpy").map(|s| s.st_type),
            Some(10)
        );
        assert_eq!(lookup_dynsym(&libc_so, b"cgofix_no_such_symbol"), None);
        assert!(text_range(&libc_so).0 != 0 && text_range(&libc_so).0 < text_range(&libc_so).1);
    }

    #[test]
    #[cfg_attr(
        target_arch = "aarch64",
        ignore = "qemu-user 7.2 maps no vDSO (AT_SYSINFO_EHDR = 0); run on a real arm64 machine"
    )]
    fn vdso_unrelocated_dynamic() {
        let vdso = object_named(b"linux-vdso.so.1");
        let addr = lookup_dynsym(&vdso, b"__vdso_clock_gettime").expect("vDSO symbol");
        assert!(vdso.contains(addr, 1));
        let f: extern "C" fn(libc::clockid_t, *mut libc::timespec) -> i32 =
            // SAFETY: __vdso_clock_gettime has clock_gettime's signature.
            unsafe { core::mem::transmute(addr) };
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        assert_eq!(f(libc::CLOCK_MONOTONIC, &mut ts), 0);
        assert!(ts.tv_sec != 0 || ts.tv_nsec != 0);
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn libc_versions_and_notes() {
        let libc_so = object_named(b"libc.so.6");
        let (mut saw, mut base) = (false, false);
        verdef_names(&libc_so, |n| {
            saw |= n == b"GLIBC_2.2.5";
            base |= n == b"libc.so.6";
        });
        assert!(saw && !base);
        // NT_GNU_BUILD_ID is a 20-byte SHA-1 on Debian's libc.
        assert_eq!(find_note(&libc_so, b"GNU", 3).map(<[u8]>::len), Some(20));
        assert!(!is_go_object(&libc_so));
        assert_eq!(go_version_from_memory(&libc_so), None);
    }

    const GO_SRC: &str = "package main\n\nimport \"C\"\n\n//export GoAdd\nfunc GoAdd(a, b C.int) C.int { return a + b }\n\nfunc main() {}\n";

    fn go_build(go: &Path, dir: &Path, mode: &str, out: &str) {
        let o = testkit::proc::output(
            Command::new(go)
                .current_dir(dir)
                .args(["build", &format!("-buildmode={mode}"), "-o", out, "main.go"])
                .env("CGO_ENABLED", "1")
                .env("GO111MODULE", "off")
                .env("GOTOOLCHAIN", "local")
                .env("GOCACHE", std::env::temp_dir().join("interpose-go-cache")),
            Duration::from_secs(600),
            &format!(
                "go_identification: {} build -buildmode={mode}",
                go.display()
            ),
        );
        assert!(
            o.status.success(),
            "{} build -buildmode={mode} failed: {}",
            go.display(),
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// Loads the library in a child copy of this test binary (running only
    /// the ignored [`go_child`]), so Go runtimes never start inside the test
    /// harness process.
    /// `recorded`: whether the toolchain records its build mode (Go >= 1.20).
    fn check_in_child(
        lib: &Path,
        version: &str,
        expect_export: bool,
        buildmode: &str,
        recorded: bool,
    ) {
        let out = testkit::proc::output(
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "elf::tests::go_child",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("CGOFIXTEST_GO_LIB", lib)
                .env("CGOFIXTEST_GO_VERSION", version)
                .env(
                    "CGOFIXTEST_GO_EXPORT",
                    if expect_export { "1" } else { "0" },
                )
                .env("CGOFIXTEST_GO_BUILDMODE", buildmode),
            Duration::from_secs(120),
            &format!("go_child {}", lib.display()),
        );
        let log = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        if let Some(at) = log.find("go_child checked") {
            println!(
                "{}: {}",
                lib.display(),
                log[at..].lines().next().unwrap_or("")
            );
        }
        let checked = format!(
            "go_child checked {version} {buildmode} (recorded: {})",
            if recorded { buildmode } else { "nothing" }
        );
        // "1 passed" as well: a child that ran no test would print no failure either.
        assert!(
            out.status.success()
                && log.contains(&checked)
                && log.contains("test result: ok. 1 passed"),
            "{lib:?}: want {checked:?} in {log}"
        );
    }

    /// The in-memory half of [`go_identification`], run by it in a child
    /// process; run directly it fails for want of its inputs.
    #[test]
    #[ignore = "run by go_identification in a child process"]
    fn go_child() {
        let var = |k: &str| {
            std::env::var_os(k)
                .unwrap_or_else(|| panic!("{k} unset: go_child is run by go_identification"))
        };
        let lib = var("CGOFIXTEST_GO_LIB");
        let want = var("CGOFIXTEST_GO_VERSION");
        let want_export = var("CGOFIXTEST_GO_EXPORT") == "1";
        let want_mode = var("CGOFIXTEST_GO_BUILDMODE");
        let c = std::ffi::CString::new(lib.as_encoded_bytes()).unwrap();
        // SAFETY: loads a Go library built by go_identification in this child only.
        assert!(!unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW) }.is_null());
        let obj = object_named(lib.as_encoded_bytes());
        assert!(is_go_object(&obj));
        let exported = lookup_dynsym(&obj, goinfo::CGO_WAIT).is_some();
        assert_eq!(exported, want_export);
        // Go's linker passes -Bsymbolic for c-shared; the C build of the wrapper does not.
        assert_eq!(is_symbolic(&obj), want_export);
        assert_eq!(
            find_note(&obj, GO_NOTE_OWNER, NT_GO_BUILDID).map(<[u8]>::len),
            Some(83)
        );
        let v = go_version_from_memory(&obj).expect("no buildinfo in memory");
        assert_eq!(v, want.as_encoded_bytes(), "{}", String::from_utf8_lossy(v));
        let modinfo = go_modinfo_from_memory(&obj, v).expect("no module info in memory");
        assert!(modinfo.starts_with(b"path\t"), "{modinfo:?}");
        let recorded = goinfo::recorded_buildmode(modinfo);
        let mode = goinfo::buildmode(recorded, exported, is_symbolic(&obj));
        assert_eq!(mode.map(str::as_bytes), Some(want_mode.as_encoded_bytes()));
        assert!(text_range(&obj).0 < text_range(&obj).1);
        println!(
            "go_child checked {} {} (recorded: {})",
            String::from_utf8_lossy(v),
            mode.unwrap(),
            recorded.map_or("nothing".into(), String::from_utf8_lossy)
        );
    }

    /// Go 1.19 (no recorded build mode: inferred) and the newest Go (recorded),
    /// each as c-shared and as a c-archive linked into a C library.
    #[test]
    #[cfg_attr(
        target_arch = "aarch64",
        ignore = "builds arm64 Go libraries and re-executes this test binary for the child: \
                  needs binfmt_misc for qemu-aarch64, which these machines lack"
    )]
    fn go_identification() {
        let (go119, gonew) = testkit::deps::go_toolchains();
        for (go, old) in [(go119, true), (gonew, false)] {
            let version = testkit::deps::go_version(&go);
            assert_eq!(version.starts_with("go1.19."), old, "{}", go.display());
            let dir: PathBuf =
                std::env::temp_dir().join(format!("interpose-go-{}-{version}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("main.go"), GO_SRC).unwrap();
            go_build(&go, &dir, "c-shared", "libgo.so");
            check_in_child(&dir.join("libgo.so"), &version, true, "c-shared", !old);
            // A c-archive linked into a C library with its symbols hidden:
            // only the build-id note and .go.buildinfo identify it.
            go_build(&go, &dir, "c-archive", "libgo.a");
            std::fs::write(
                dir.join("wrap.c"),
                "int GoAdd(int, int);\nint wrap_add(int a, int b) { return GoAdd(a, b); }\n",
            )
            .unwrap();
            let cc = testkit::proc::output(
                Command::new("cc").current_dir(&dir).args([
                    "-shared",
                    "-fPIC",
                    "-o",
                    "libwrap.so",
                    "wrap.c",
                    "libgo.a",
                    "-Wl,--exclude-libs,ALL",
                    "-lpthread",
                ]),
                Duration::from_secs(120),
                "go_identification: cc libwrap.so",
            );
            assert!(
                cc.status.success(),
                "{}",
                String::from_utf8_lossy(&cc.stderr)
            );
            check_in_child(&dir.join("libwrap.so"), &version, false, "c-archive", !old);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

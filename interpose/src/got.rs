//! Rewriting one object's GOT slots for one imported symbol.
//!
//! Only the importing object's own relocation slots change, so calls made by
//! other objects are unaffected. No allocation and no locking: safe to use from
//! a `dlopen` wrapper or a constructor, but not async-signal-safe (it calls
//! `mprotect`) and concurrent calls that touch the same page must be serialised
//! by the caller (one call may restore read-only protection while another writes).

use crate::elf::{self, DynInfo, LoadedObject};
use core::sync::atomic::{AtomicUsize, Ordering};
use libc::{Elf64_Rela, Elf64_Sym, PF_R, PF_W, PF_X, PT_LOAD};

/// Counts for one [`patch_imports`] call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PatchStats {
    /// JUMP_SLOT + GLOB_DAT relocations naming the symbol.
    pub slots_found: usize,
    /// Slots this call overwrote.
    pub slots_written: usize,
    /// Slots that already held the replacement (left untouched).
    pub already_patched: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchResult {
    /// Every matching slot now holds the replacement.
    Done(PatchStats),
    /// The object has no usable dynamic section; nothing was done.
    NoDynamic,
    /// `mprotect` failed (errno); slots counted in `stats` were handled before that.
    ProtectFailed { stats: PatchStats, errno: i32 },
    /// No relocation types are known for this architecture; nothing was done.
    Unsupported,
}

impl PatchResult {
    pub fn stats(&self) -> Option<PatchStats> {
        match *self {
            PatchResult::Done(s) | PatchResult::ProtectFailed { stats: s, .. } => Some(s),
            _ => None,
        }
    }
}

#[cfg(target_arch = "x86_64")]
const RELOC_TYPES: Option<(u32, u32)> = Some((7, 6)); // R_X86_64_JUMP_SLOT, R_X86_64_GLOB_DAT
// R_AARCH64_JUMP_SLOT, R_AARCH64_GLOB_DAT: the same RELA walk; the slot holds
// the symbol's address plus the addend (0 for both in practice, as on
// x86_64). Tested under qemu-user by this file's tests (README "Platforms").
#[cfg(target_arch = "aarch64")]
const RELOC_TYPES: Option<(u32, u32)> = Some((1026, 1025));
// Every other architecture: `Unsupported`, nothing is written.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const RELOC_TYPES: Option<(u32, u32)> = None;

const DT_RELA: u64 = 7;

/// Points every JUMP_SLOT (DT_JMPREL) and GLOB_DAT (DT_RELA) slot of `obj` that
/// names `symbol` at `replacement`. Slots already equal to `replacement` are
/// counted and skipped, so repeating a patch writes nothing.
///
/// The old values are dropped: under lazy binding a JUMP_SLOT that was never
/// called still points into this object's PLT, and calling that runs glibc's
/// `_dl_fixup`, which writes the resolved address back into the slot
/// (elf/dl-runtime.c, `elf_machine_fixup_plt`) and so silently undoes the
/// patch. Callers resolve the real target with `dlsym`/`dlvsym` instead.
///
/// Read-only slots (PT_GNU_RELRO, which is all of the GOT with `-z relro -z now`)
/// are made writable for the write only; the protection put back is derived
/// from the segment flags, as glibc's `_dl_protect_relro` set it. The object
/// must be fully relocated (e.g. `dlopen` has returned). No allocation, no locking.
pub fn patch_imports(obj: &LoadedObject, symbol: &[u8], replacement: usize) -> PatchResult {
    patch_imports_with(obj, |name| (name == symbol).then_some(replacement))
}

/// [`patch_imports`] for several symbols in one walk of the relocations:
/// `replacement(name)` says what a slot naming `name` must hold (`None`:
/// left alone). The in-process mode rewrites a dozen libc imports of every
/// loaded object this way (one pass per object instead of one per symbol).
pub fn patch_imports_with(
    obj: &LoadedObject,
    mut replacement: impl FnMut(&[u8]) -> Option<usize>,
) -> PatchResult {
    let Some((jump_slot, glob_dat)) = RELOC_TYPES else {
        return PatchResult::Unsupported;
    };
    let Some(info) = elf::dynamic_info(obj) else {
        return PatchResult::NoDynamic;
    };
    let mut stats = PatchStats::default();
    let mut failed = None;
    for_each_reloc(&info, obj.base, jump_slot, glob_dat, |name, slot| {
        let Some(value) = replacement(name) else {
            return true;
        };
        stats.slots_found += 1;
        // SAFETY: r_offset of a dynamic relocation addresses a pointer-sized,
        // aligned GOT slot inside this object's mapped image.
        let cell = unsafe { AtomicUsize::from_ptr(slot as *mut usize) };
        let old = cell.load(Ordering::Acquire);
        if old == value {
            stats.already_patched += 1;
            return true;
        }
        if let Err(errno) = write_slot(obj, &info, cell, value) {
            failed = Some(errno);
            return false;
        }
        stats.slots_written += 1;
        true
    });
    match failed {
        Some(errno) => PatchResult::ProtectFailed { stats, errno },
        None => PatchResult::Done(stats),
    }
}

/// What `obj`'s first JUMP_SLOT or GLOB_DAT slot naming `symbol` holds now
/// (where its calls go), or `None` when it has no such slot.
pub fn slot_value(obj: &LoadedObject, symbol: &[u8]) -> Option<usize> {
    let (jump_slot, glob_dat) = RELOC_TYPES?;
    let info = elf::dynamic_info(obj)?;
    let mut found = None;
    for_each_slot(&info, obj.base, jump_slot, glob_dat, symbol, |slot| {
        // SAFETY: as in `patch_imports_with`: a mapped, aligned GOT slot.
        found = Some(unsafe { AtomicUsize::from_ptr(slot as *mut usize) }.load(Ordering::Acquire));
        false
    });
    found
}

/// Whether `obj` has a JUMP_SLOT or GLOB_DAT relocation naming `symbol`,
/// i.e. whether [`patch_imports`] would find anything to rewrite.
pub fn imports(obj: &LoadedObject, symbol: &[u8]) -> bool {
    let (Some((jump_slot, glob_dat)), Some(info)) = (RELOC_TYPES, elf::dynamic_info(obj)) else {
        return false;
    };
    let mut found = false;
    for_each_slot(&info, obj.base, jump_slot, glob_dat, symbol, |_| {
        found = true;
        false
    });
    found
}

/// Calls `f(slot_address)` for every JUMP_SLOT (DT_JMPREL) and GLOB_DAT
/// (DT_RELA) relocation naming `symbol`, until `f` returns false.
fn for_each_slot(
    info: &DynInfo,
    base: usize,
    jump_slot: u32,
    glob_dat: u32,
    symbol: &[u8],
    mut f: impl FnMut(usize) -> bool,
) {
    for_each_reloc(info, base, jump_slot, glob_dat, |name, slot| {
        name != symbol || f(slot)
    });
}

/// Calls `f(symbol_name, slot_address)` for every JUMP_SLOT (DT_JMPREL) and
/// GLOB_DAT (DT_RELA) relocation that names a symbol, until `f` returns false.
fn for_each_reloc(
    info: &DynInfo,
    base: usize,
    jump_slot: u32,
    glob_dat: u32,
    mut f: impl FnMut(&[u8], usize) -> bool,
) {
    let ent = core::mem::size_of::<Elf64_Rela>();
    let relaent = if info.relaent == 0 { ent } else { info.relaent };
    let jmprel = if info.pltrel == DT_RELA {
        info.pltrelsz / ent
    } else {
        0
    };
    let tables = [
        (info.jmprel, jmprel, ent, jump_slot),
        (info.rela, info.relasz / relaent, relaent, glob_dat),
    ];
    for (table, count, stride, want) in tables {
        if table == 0 {
            continue;
        }
        for i in 0..count {
            // SAFETY: the table is mapped and holds `count` entries of `stride` bytes (DT_*SZ / DT_*ENT).
            let r: Elf64_Rela =
                unsafe { core::ptr::read_unaligned((table + i * stride) as *const Elf64_Rela) };
            // Filtering by type per table also avoids double counting where
            // DT_RELASZ covers .rela.plt too, as some linkers emit.
            let sym = (r.r_info >> 32) as usize;
            if (r.r_info & 0xffff_ffff) as u32 != want || sym == 0 {
                continue;
            }
            if !f(sym_name(info, sym), base.wrapping_add(r.r_offset as usize)) {
                return;
            }
        }
    }
}

fn sym_name(info: &DynInfo, sym: usize) -> &'static [u8] {
    // SAFETY: a relocation's symbol index refers to DT_SYMTAB of the same object.
    let s: Elf64_Sym = unsafe { *(info.symtab as *const Elf64_Sym).add(sym) };
    elf::dynstr(info, s.st_name)
}

/// Stores `value`, lifting write protection around the store if needed.
fn write_slot(
    obj: &LoadedObject,
    info: &DynInfo,
    cell: &AtomicUsize,
    value: usize,
) -> Result<(), i32> {
    let addr = cell as *const AtomicUsize as usize;
    let page_size = crate::page_size();
    let page = addr & !(page_size - 1);
    let prot = original_prot(obj, info, page, page_size);
    if prot & libc::PROT_WRITE != 0 {
        cell.store(value, Ordering::Release);
        return Ok(());
    }
    let errno = || {
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EFAULT)
    };
    // The system call rather than libc's mprotect, a thin wrapper around
    // it: one import fewer, i.e. one symbol lookup fewer in every process
    // that loads the shim (`crate::page_size`).
    let mprotect = |prot: libc::c_int| {
        // SAFETY: `page` is a mapped page of this object (see the callers).
        unsafe { libc::syscall(libc::SYS_mprotect, page, page_size, prot) }
    };
    // Adding PROT_WRITE changes no contents.
    if mprotect(prot | libc::PROT_WRITE) != 0 {
        return Err(errno());
    }
    cell.store(value, Ordering::Release);
    // Restores the protection the loader gave this page.
    if mprotect(prot) != 0 {
        return Err(errno());
    }
    Ok(())
}

/// Protection the loader left on `page`: the PT_LOAD flags, except that pages
/// lying wholly inside PT_GNU_RELRO are PROT_READ. glibc rounds the RELRO end
/// *down* to a page (elf/dl-reloc.c, `_dl_protect_relro`), so a partial last
/// page keeps the segment's RW protection.
fn original_prot(obj: &LoadedObject, info: &DynInfo, page: usize, page_size: usize) -> i32 {
    if let Some((start, end)) = info.relro {
        let (start, end) = (start & !(page_size - 1), end & !(page_size - 1));
        if start <= page && page + page_size <= end {
            return libc::PROT_READ;
        }
    }
    let seg = obj.phdrs().iter().find(|p| {
        let s = obj.base.wrapping_add(p.p_vaddr as usize) & !(page_size - 1);
        let e = obj.base.wrapping_add((p.p_vaddr + p.p_memsz) as usize);
        p.p_type == PT_LOAD && s <= page && page < e
    });
    let flags = seg.map_or(PF_R | PF_W, |p| p.p_flags);
    let bit = |f: u32, p: i32| if flags & f != 0 { p } else { 0 };
    bit(PF_R, libc::PROT_READ) | bit(PF_W, libc::PROT_WRITE) | bit(PF_X, libc::PROT_EXEC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    const TGT_C: &str = "int cgofix_tgt(int x) { return x + 1; }\n";
    const CALL_C: &str =
        "extern int cgofix_tgt(int);\nint call_tgt(int x) { return cgofix_tgt(x); }\n";

    extern "C" fn replacement(x: i32) -> i32 {
        x + 1000
    }

    fn repl() -> usize {
        replacement as *const () as usize
    }

    fn cc(dir: &Path, args: &[&str]) {
        let out = testkit::proc::output(
            Command::new(testkit::native::target_cc())
                .current_dir(dir)
                .args(args),
            std::time::Duration::from_secs(120),
            &format!("cc {args:?}"),
        );
        assert!(
            out.status.success(),
            "cc {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Builds libtgt_<case>.so (defines cgofix_tgt) and libcall_<case>.so (imports
    /// it, linked with `flags`), both with unique sonames so glibc never reuses
    /// another case's copy, and dlopens the latter RTLD_LOCAL.
    fn load_case(case: &str, flags: &[&str]) -> (*mut libc::c_void, LoadedObject) {
        let dir: PathBuf =
            std::env::temp_dir().join(format!("interpose-got-{}-{case}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("tgt.c"), TGT_C).unwrap();
        std::fs::write(dir.join("call.c"), CALL_C).unwrap();
        let (tgt, call) = (format!("libtgt_{case}.so"), format!("libcall_{case}.so"));
        cc(
            &dir,
            &[
                "-shared",
                "-fPIC",
                "-o",
                &tgt,
                "tgt.c",
                &format!("-Wl,-soname,{tgt}"),
            ],
        );
        let (lib, rpath) = (
            format!("-ltgt_{case}"),
            format!("-Wl,-rpath,{}", dir.display()),
        );
        let mut args = vec![
            "-shared", "-fPIC", "-o", &call, "call.c", "-L.", &lib, &rpath,
        ];
        args.extend_from_slice(flags);
        cc(&dir, &args);
        let path = dir.join(&call);
        let c = CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: loading a library we just built; its constructors are empty. RTLD_LAZY
        // so that objects linked without -z now really keep unresolved PLT slots.
        let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL) };
        assert!(!h.is_null(), "dlopen {path:?} failed");
        let want = path.as_os_str().as_encoded_bytes().to_vec();
        let mut obj = None;
        elf::for_each_object(|o| {
            if o.name_bytes() == want.as_slice() {
                obj = Some(*o);
            }
            obj.is_none()
        });
        let obj = obj.expect("object not listed");
        // The mappings outlive the files.
        let _ = std::fs::remove_dir_all(&dir);
        (h, obj)
    }

    fn sym(h: *mut libc::c_void, name: &str) -> usize {
        let c = CString::new(name).unwrap();
        // SAFETY: plain symbol lookup in a live handle.
        let p = unsafe { libc::dlsym(h, c.as_ptr()) } as usize;
        assert_ne!(p, 0, "{name} not found");
        p
    }

    fn call(addr: usize, x: i32) -> i32 {
        // SAFETY: every address passed here is an `int (*)(int)` or a PLT entry for one.
        let f: extern "C" fn(i32) -> i32 = unsafe { core::mem::transmute(addr) };
        f(x)
    }

    /// Permissions column of the /proc/self/maps line covering `addr`.
    fn perms(addr: usize) -> String {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        maps.lines()
            .find_map(|l| {
                let (range, rest) = l.split_once(' ')?;
                let (s, e) = range.split_once('-')?;
                let (s, e) = (
                    usize::from_str_radix(s, 16).ok()?,
                    usize::from_str_radix(e, 16).ok()?,
                );
                (s <= addr && addr < e).then(|| rest[..4].to_string())
            })
            .unwrap()
    }

    /// `(slot address, value)` of every slot naming `symbol`, read now.
    fn slots(obj: &LoadedObject, symbol: &[u8]) -> Vec<(usize, usize)> {
        let info = elf::dynamic_info(obj).unwrap();
        let (jump_slot, glob_dat) = RELOC_TYPES.unwrap();
        let mut found = Vec::new();
        for_each_slot(&info, obj.base, jump_slot, glob_dat, symbol, |slot| {
            // SAFETY: a relocation's r_offset addresses an aligned GOT slot in the mapped image.
            let cell = unsafe { AtomicUsize::from_ptr(slot as *mut usize) };
            found.push((slot, cell.load(Ordering::Acquire)));
            true
        });
        found
    }

    /// Patches cgofix_tgt in a freshly built case and checks the call path;
    /// returns the slots as they were before the patch (address, old value)
    /// and the handle.
    fn patch_case(
        case: &str,
        flags: &[&str],
    ) -> (Vec<(usize, usize)>, *mut libc::c_void, LoadedObject) {
        let (h, obj) = load_case(case, flags);
        assert!(imports(&obj, b"cgofix_tgt"), "{case}: import not seen");
        let before = slots(&obj, b"cgofix_tgt");
        let r = patch_imports(&obj, b"cgofix_tgt", repl());
        let PatchResult::Done(st) = r else {
            panic!("{case}: {r:?}")
        };
        assert_eq!(
            (st.slots_found, st.slots_written, st.already_patched),
            (1, 1, 0),
            "{case}"
        );
        assert_eq!(before.len(), 1, "{case}");
        assert_eq!(
            slots(&obj, b"cgofix_tgt"),
            [(before[0].0, repl())],
            "{case}"
        );
        assert_eq!(
            call(sym(h, "call_tgt"), 1),
            1001,
            "{case}: replacement not called"
        );
        (before, h, obj)
    }

    fn lazy_env() -> bool {
        std::env::var_os("LD_BIND_NOW").is_none_or(|v| v.is_empty())
    }

    /// How many of `before`'s old values point into `obj`'s own code: an
    /// unresolved lazy-binding PLT entry, not the real function.
    fn lazy_unresolved(obj: &LoadedObject, before: &[(usize, usize)]) -> usize {
        let (lo, hi) = elf::text_range(obj);
        before
            .iter()
            .filter(|(_, old)| (lo..hi).contains(old))
            .count()
    }

    #[test]
    fn lazy_binding_jump_slot() {
        let (before, h, obj) = patch_case("lazy", &["-Wl,-z,lazy"]);
        if !lazy_env() || elf::dynamic_info(&obj).unwrap().bind_now() {
            return;
        }
        // Never called before the patch: the slot still pointed at the PLT stub.
        let stub = before[0].1;
        assert_eq!(lazy_unresolved(&obj, &before), 1);
        assert!((elf::text_range(&obj).0..elf::text_range(&obj).1).contains(&stub));
        // As documented: calling through the stub binds the symbol and so
        // undoes the patch. On x86_64 an unresolved slot points at its own
        // PLT entry's push/jmp half, which can be called.
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(call(stub, 1), 2);
            assert_eq!(call(sym(h, "call_tgt"), 1), 2);
        }
        // On aarch64 it points at PLT0, which expects x16 = &slot from a PLT
        // entry and cannot be called directly; the call through the PLT
        // entry reads the patched slot.
        #[cfg(target_arch = "aarch64")]
        assert_eq!(call(sym(h, "call_tgt"), 1), 1001);
    }

    #[test]
    fn now_binding_returns_real_target() {
        let (before, h, obj) = patch_case("now", &["-Wl,-z,norelro,-z,now"]);
        assert!(elf::dynamic_info(&obj).unwrap().bind_now());
        assert_eq!(before[0].1, sym(h, "cgofix_tgt"));
        assert_eq!(lazy_unresolved(&obj, &before), 0);
        assert_eq!(call(before[0].1, 1), 2);
        assert!(perms(before[0].0).starts_with("rw"));
    }

    #[test]
    fn relro_now_read_only_got() {
        let (before, h, obj) = patch_case("relro_now", &["-Wl,-z,relro,-z,now"]);
        assert!(elf::dynamic_info(&obj).unwrap().relro.is_some());
        assert_eq!(before[0].1, sym(h, "cgofix_tgt"));
        assert_eq!(perms(before[0].0), "r--p", "protection not restored");
    }

    #[test]
    fn no_plt_glob_dat() {
        let (h, obj) = load_case("noplt", &["-fno-plt", "-Wl,-z,relro"]);
        let info = elf::dynamic_info(&obj).unwrap();
        // -fno-plt calls through a GLOB_DAT slot in .got, which RELRO covers.
        let before = slots(&obj, b"cgofix_tgt");
        let r = patch_imports(&obj, b"cgofix_tgt", repl());
        assert_eq!(r.stats().unwrap().slots_written, 1);
        assert_eq!(before.len(), 1);
        assert_eq!(perms(before[0].0), "r--p", "protection not restored");
        assert_eq!(before[0].1, sym(h, "cgofix_tgt"));
        assert_eq!(call(sym(h, "call_tgt"), 2), 1002);
        assert!(info.pltrelsz == 0 || info.jmprel != 0);
    }

    #[test]
    fn patching_twice_is_idempotent() {
        let (before, h, obj) = patch_case("twice", &[]);
        let again = patch_imports(&obj, b"cgofix_tgt", repl());
        let want = PatchStats {
            slots_found: 1,
            already_patched: 1,
            ..Default::default()
        };
        assert_eq!(again, PatchResult::Done(want));
        assert_eq!(call(sym(h, "call_tgt"), 1), 1001);
        assert_eq!(before.len(), 1);
    }

    #[test]
    fn several_names_in_one_walk_and_slot_value() {
        let (h, obj) = load_case("many", &["-Wl,-z,relro,-z,now"]);
        assert_eq!(slot_value(&obj, b"cgofix_tgt"), Some(sym(h, "cgofix_tgt")));
        assert_eq!(slot_value(&obj, b"cgofix_no_such_symbol"), None);
        let mut asked = Vec::new();
        let r = patch_imports_with(&obj, |name| {
            asked.push(name.to_vec());
            (name == b"cgofix_tgt").then_some(repl())
        });
        assert_eq!(r.stats().unwrap().slots_written, 1, "{r:?}");
        assert!(asked.len() > 1, "every import is offered: {asked:?}");
        assert_eq!(slot_value(&obj, b"cgofix_tgt"), Some(repl()));
        assert_eq!(call(sym(h, "call_tgt"), 3), 1003);
    }

    #[test]
    fn absent_symbol() {
        let (_, obj) = load_case("absent", &[]);
        let r = patch_imports(&obj, b"cgofix_no_such_symbol", repl());
        assert_eq!(r, PatchResult::Done(PatchStats::default()));
        assert!(!imports(&obj, b"cgofix_no_such_symbol"));
    }
}

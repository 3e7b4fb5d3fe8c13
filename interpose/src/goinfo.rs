//! What a Go object says about itself: the toolchain version and module
//! information in `.go.buildinfo`, and its build mode. The one definition
//! shared by the shim's exit report (from memory) and `cgofix doctor` (from
//! files), so the two can never disagree.
//!
//! Pure functions on byte slices: no allocation, no I/O, no locking. Safe on
//! the shim's hook-free paths (e.g. right after `dlopen` returns).
//!
//! # Build mode
//!
//! Go >= 1.20 records `-buildmode=MODE` on a `build` line of the module info
//! ([`recorded_buildmode`]); that value is used as is. Older toolchains record
//! no build mode, so [`buildmode`] infers it from how the object was linked:
//! a Go object is **c-shared** when it exports `_cgo_wait_runtime_init_done`
//! ([`CGO_WAIT`], docs/background.md §5) *and* was linked with `-Bsymbolic`
//! (`DT_SYMBOLIC`, or `DF_SYMBOLIC` in `DT_FLAGS`): Go's linker always passes
//! `-Wl,-z,nodelete -Wl,-Bsymbolic` for `-buildmode=c-shared` on ELF
//! (cmd/link/internal/ld/lib.go, `case BuildModeCShared`), while a C/C++
//! addon that links a Go `c-archive` is linked by the addon's own build
//! (node-gyp, cmake) without it. Every other Go object is **c-archive**: Go
//! code linked into a library built by something else (with its Go symbols
//! exported or hidden). An addon deliberately linked with `-Bsymbolic` around
//! a pre-1.20 c-archive would be inferred as c-shared; both kinds carry a Go
//! runtime and need the shim alike, so the distinction is informational.
//!
//! Whether an object is Go at all is the caller's question (a `.go.buildinfo`
//! blob, the Go build-ID note, or the `_cgo_wait_runtime_init_done` export):
//! [`buildmode`] assumes it is.

/// The dynamic symbol every cgo object exports (docs/background.md §5).
pub const CGO_WAIT: &[u8] = b"_cgo_wait_runtime_init_done";

/// First 14 bytes of the 32-byte `.go.buildinfo` header (Go's debug/buildinfo).
pub const BUILDINFO_MAGIC: &[u8; 14] = b"\xff Go buildinf:";

/// Header flag: pointers are big-endian (pointer format only).
const FLAG_BIG_ENDIAN: u8 = 0x1;
/// Header flag: the strings follow the header inline (Go >= 1.18).
const FLAG_INLINE: u8 = 0x2;

/// Build modes `go build -buildmode=` accepts (`go help buildmode`).
const MODES: [&str; 7] = [
    "c-shared",
    "c-archive",
    "exe",
    "pie",
    "shared",
    "plugin",
    "default",
];

/// The two strings of a `.go.buildinfo` blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuildInfo<'a> {
    /// The toolchain version, e.g. `b"go1.27.3"` (or `b"devel ..."`).
    pub version: &'a [u8],
    /// The module info (`path`, `mod`, `dep` and `build` lines) without the
    /// 16-byte sentinels around it; `None` when absent or unreadable.
    pub modinfo: Option<&'a [u8]>,
}

/// Decodes an unsigned LEB128 varint as Go's `encoding/binary.Uvarint` does:
/// `(value, bytes used)`, or `None` when truncated or longer than 64 bits.
pub fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut x = 0u64;
    for (i, &c) in b.iter().enumerate().take(10) {
        if c < 0x80 {
            if i == 9 && c > 1 {
                return None;
            }
            return Some((x | u64::from(c) << (7 * i), i + 1));
        }
        x |= u64::from(c & 0x7f) << (7 * i);
    }
    None
}

/// A varint-length-prefixed string at the start of `b`, and what follows it.
fn inline_string(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, used) = uvarint(b)?;
    let end = used.checked_add(usize::try_from(len).ok()?)?;
    Some((b.get(used..end)?, &b[end..]))
}

/// Module info as the linker stores it is wrapped in two 16-byte sentinels
/// (cmd/go/internal/modload, `infoStart`/`infoEnd`); debug/buildinfo strips
/// them when the string is long enough and a newline precedes the end one,
/// and so does this.
pub fn strip_sentinels(m: &[u8]) -> &[u8] {
    if m.len() >= 33 && m[m.len() - 17] == b'\n' {
        &m[16..m.len() - 16]
    } else {
        m
    }
}

/// Parses a `.go.buildinfo` blob starting at its 32-byte header (format per
/// Go's debug/buildinfo: magic, pointer size, flags; with flag 0x2 the two
/// strings follow the header as varint-prefixed bytes (Go >= 1.18), otherwise
/// the header holds two little- or big-endian pointers to Go string headers
/// `{ptr, len}`). `deref(vaddr, len)` reads the target's memory for the
/// pointer format. `None` unless the version looks like a Go version.
pub fn parse_buildinfo<'a>(
    blob: &'a [u8],
    deref: impl Fn(u64, usize) -> Option<&'a [u8]>,
) -> Option<BuildInfo<'a>> {
    if blob.len() < 32 || &blob[..14] != BUILDINFO_MAGIC {
        return None;
    }
    let (ptr_size, flags) = (blob[14] as usize, blob[15]);
    let (version, modinfo) = if flags & FLAG_INLINE != 0 {
        let (version, rest) = inline_string(&blob[32..])?;
        (version, inline_string(rest).map(|(m, _)| m))
    } else {
        if ptr_size != 4 && ptr_size != 8 {
            return None;
        }
        let rd = |b: &[u8]| -> u64 {
            let mut buf = [0u8; 8];
            if flags & FLAG_BIG_ENDIAN != 0 {
                buf[8 - ptr_size..].copy_from_slice(&b[..ptr_size]);
                u64::from_be_bytes(buf)
            } else {
                buf[..ptr_size].copy_from_slice(&b[..ptr_size]);
                u64::from_le_bytes(buf)
            }
        };
        let string_at = |ptr: u64| {
            let hdr = deref(ptr, 2 * ptr_size)?;
            deref(rd(hdr), usize::try_from(rd(&hdr[ptr_size..])).ok()?)
        };
        // The header is 32 bytes, so both pointers (at most 8 bytes each from 16) fit.
        (
            string_at(rd(&blob[16..]))?,
            string_at(rd(&blob[16 + ptr_size..])),
        )
    };
    (version.starts_with(b"go") || version.starts_with(b"devel")).then_some(BuildInfo {
        version,
        modinfo: modinfo.map(strip_sentinels),
    })
}

/// The `-buildmode=` value of the module info's `build` line (recorded by
/// Go >= 1.20; `None` before, or when the module info is not Go's).
pub fn recorded_buildmode(modinfo: &[u8]) -> Option<&[u8]> {
    modinfo
        .split(|&c| c == b'\n')
        .find_map(|line| line.strip_prefix(b"build\t-buildmode="))
}

/// The build mode of a Go object: the `recorded` one (from
/// [`recorded_buildmode`]) when present, else inferred from the linker flags
/// as the module docs explain (`"c-shared"` or `"c-archive"`). A recorded
/// value `go build` does not know gives `None`.
pub fn buildmode(
    recorded: Option<&[u8]>,
    exports_cgo_wait: bool,
    symbolic: bool,
) -> Option<&'static str> {
    match recorded {
        Some(m) => MODES.iter().copied().find(|k| k.as_bytes() == m),
        None if exports_cgo_wait && symbolic => Some("c-shared"),
        None => Some("c-archive"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: [u8; 16] = [
        0x30, 0x77, 0xaf, 0x0c, 0x92, 0x74, 0x08, 0x02, 0x41, 0xe1, 0xc1, 0x07, 0xe6, 0xd6, 0x18,
        0xe6,
    ];
    const END: [u8; 16] = [
        0xf9, 0x32, 0x43, 0x31, 0x86, 0x18, 0x20, 0x72, 0x00, 0x82, 0x42, 0x10, 0x41, 0x16, 0xd8,
        0xf2,
    ];

    fn varint_str(out: &mut Vec<u8>, s: &[u8]) {
        let mut n = s.len();
        while n >= 0x80 {
            out.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out.extend_from_slice(s);
    }

    /// An inline-format blob (Go >= 1.18) as the linker writes it.
    fn inline_blob(version: &[u8], modinfo: &[u8]) -> Vec<u8> {
        let mut blob = BUILDINFO_MAGIC.to_vec();
        blob.extend([8, FLAG_INLINE]);
        blob.resize(32, 0);
        varint_str(&mut blob, version);
        varint_str(&mut blob, &[&START[..], modinfo, &END[..]].concat());
        blob
    }

    const MODINFO_120: &[u8] = b"path\tcommand-line-arguments\nbuild\t-buildmode=c-archive\nbuild\t-compiler=gc\nbuild\tCGO_ENABLED=1\n";
    const MODINFO_119: &[u8] =
        b"path\tcommand-line-arguments\nbuild\t-compiler=gc\nbuild\tCGO_ENABLED=1\n";

    #[test]
    fn inline_format_records_the_mode() {
        let blob = inline_blob(b"go1.27.3", MODINFO_120);
        let info = parse_buildinfo(&blob, |_, _| None).unwrap();
        assert_eq!(info.version, b"go1.27.3");
        assert_eq!(info.modinfo, Some(MODINFO_120));
        let recorded = recorded_buildmode(info.modinfo.unwrap());
        assert_eq!(recorded, Some(&b"c-archive"[..]));
        // The recorded mode wins over the linker-flag rule, whatever the flags.
        for (exports, symbolic) in [(false, false), (true, true)] {
            assert_eq!(buildmode(recorded, exports, symbolic), Some("c-archive"));
        }
        assert_eq!(buildmode(Some(b"c-shared"), false, false), Some("c-shared"));
        for m in MODES {
            assert_eq!(buildmode(Some(m.as_bytes()), true, true), Some(m));
        }
        assert_eq!(buildmode(Some(b"archive"), true, true), None);
        assert_eq!(buildmode(Some(b""), false, false), None);
        // Without the flag the header holds pointers, here unreadable ones.
        let mut pointer = blob.clone();
        pointer[15] = 0;
        assert_eq!(parse_buildinfo(&pointer, |_, _| None), None);
        pointer[14] = 3;
        assert_eq!(
            parse_buildinfo(&pointer, |_, n| Some(&[0u8; 16][..n])),
            None
        );
        // A version length beyond the blob.
        let mut long = blob[..40].to_vec();
        long[32] = 0x7f;
        assert_eq!(parse_buildinfo(&long, |_, _| None), None);
        assert_eq!(parse_buildinfo(&blob[..31], |_, _| None), None);
        // Not a Go version string.
        assert_eq!(
            parse_buildinfo(&inline_blob(b"gcc", b""), |_, _| None),
            None
        );
        // Module info missing or too short for sentinels: version only / as is.
        let mut bare = BUILDINFO_MAGIC.to_vec();
        bare.extend([8, FLAG_INLINE]);
        bare.resize(32, 0);
        varint_str(&mut bare, b"devel go1.28-abc");
        assert_eq!(
            parse_buildinfo(&bare, |_, _| None),
            Some(BuildInfo {
                version: b"devel go1.28-abc",
                modinfo: None
            })
        );
        varint_str(&mut bare, b"short");
        assert_eq!(
            parse_buildinfo(&bare, |_, _| None).unwrap().modinfo,
            Some(&b"short"[..])
        );
    }

    #[test]
    fn go_119_records_nothing_so_the_mode_is_inferred() {
        let blob = inline_blob(b"go1.19.8", MODINFO_119);
        let info = parse_buildinfo(&blob, |_, _| None).unwrap();
        assert_eq!(info.version, b"go1.19.8");
        let recorded = recorded_buildmode(info.modinfo.unwrap());
        assert_eq!(recorded, None);
        assert_eq!(buildmode(recorded, true, true), Some("c-shared"));
        assert_eq!(buildmode(recorded, true, false), Some("c-archive"));
        assert_eq!(buildmode(recorded, false, true), Some("c-archive"));
        assert_eq!(buildmode(recorded, false, false), Some("c-archive"));
        // Only the `build` line counts, not the text elsewhere.
        assert_eq!(
            recorded_buildmode(b"path\tx\ndep\tx/-buildmode=c-shared\tv1\n"),
            None
        );
    }

    #[test]
    fn pointer_format() {
        // Before Go 1.18 the header held pointers to Go string headers {ptr, len}.
        for (ptr_size, flags) in [(8usize, 0u8), (4, FLAG_BIG_ENDIAN)] {
            let enc = |v: u64| match ptr_size {
                8 => v.to_le_bytes().to_vec(),
                _ => (v as u32).to_be_bytes().to_vec(),
            };
            let mut blob = BUILDINFO_MAGIC.to_vec();
            blob.extend([ptr_size as u8, flags]);
            blob.extend(enc(0x1000));
            blob.extend(enc(0x1100));
            blob.resize(32, 0);
            let vers_hdr = [enc(0x2000), enc(9)].concat();
            let mod_body = [&START[..], MODINFO_119, &END[..]].concat();
            let mod_hdr = [enc(0x3000), enc(mod_body.len() as u64)].concat();
            let deref = |a: u64, n: usize| match a {
                0x1000 => vers_hdr.get(..n),
                0x1100 => mod_hdr.get(..n),
                0x2000 => b"go1.16.15".get(..n),
                0x3000 => mod_body.get(..n),
                _ => None,
            };
            let info = parse_buildinfo(&blob, deref).unwrap();
            assert_eq!(info.version, b"go1.16.15");
            assert_eq!(info.modinfo, Some(MODINFO_119));
            assert_eq!(
                buildmode(recorded_buildmode(MODINFO_119), true, true),
                Some("c-shared")
            );
            // An unreadable version pointer: nothing.
            assert_eq!(parse_buildinfo(&blob, |_, _| None), None);
        }
        let mut odd = BUILDINFO_MAGIC.to_vec();
        odd.extend([2, 0]);
        odd.resize(32, 0);
        assert_eq!(parse_buildinfo(&odd, |_, n| Some(&[0u8; 16][..n])), None);
    }

    #[test]
    fn varints() {
        assert_eq!(uvarint(&[0]), Some((0, 1)));
        assert_eq!(uvarint(&[0x7f, 9]), Some((127, 1)));
        assert_eq!(uvarint(&[0x80, 0x01]), Some((128, 2)));
        assert_eq!(uvarint(&[0xac, 0x02]), Some((300, 2)));
        assert_eq!(uvarint(&[0x80]), None);
        assert_eq!(uvarint(&[]), None);
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(uvarint(&max), Some((u64::MAX, 10)));
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(uvarint(&over), None);
        assert_eq!(uvarint(&[0x80; 11]), None);
    }
}

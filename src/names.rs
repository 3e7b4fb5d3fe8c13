//! Tables of short ASCII names stored inline, NUL-padded to a fixed width.
//!
//! Why not `&[&str]`: every `&str` in a static is a pointer the loader
//! relocates in every process that loads the library, and the table sits
//! in a page the loader must then write (copy-on-write) at start-up. The
//! signal names, the `CGOFIX_*` variables and the deferred imports were
//! ~100 of the library's ~520 relative relocations (README "Performance",
//! fourth round). Here a name is found from the table's own address at
//! run time. Reading one is async-signal-safe: no allocation, no lock.

use std::ffi::CStr;

/// `N` names of at most `W - 1` bytes, each followed by NUL padding (so
/// that every entry is also a C string).
pub struct Names<const W: usize, const N: usize>([[u8; W]; N]);

impl<const W: usize, const N: usize> Names<W, N> {
    /// Builds the table at compile time; a name that is too long or not
    /// printable ASCII fails the build.
    pub const fn new(names: [&str; N]) -> Self {
        let mut rows = [[0u8; W]; N];
        let mut i = 0;
        while i < N {
            let b = names[i].as_bytes();
            assert!(b.len() < W, "name longer than the table's width");
            let mut j = 0;
            while j < b.len() {
                assert!(b[j] > b' ' && b[j] < 0x7f, "not printable ASCII");
                rows[i][j] = b[j];
                j += 1;
            }
            i += 1;
        }
        Names(rows)
    }

    /// Entry `i` as a C string.
    pub fn c_str(&'static self, i: usize) -> Option<&'static CStr> {
        CStr::from_bytes_until_nul(self.0.get(i)?).ok()
    }

    /// Entry `i`.
    pub fn get(&'static self, i: usize) -> Option<&'static str> {
        self.c_str(i).and_then(|c| c.to_str().ok())
    }

    /// Every entry, in order.
    pub fn iter(&'static self) -> impl Iterator<Item = &'static str> {
        (0..N).filter_map(move |i| self.get(i))
    }

    /// The index of `name`.
    pub fn position(&'static self, name: &str) -> Option<usize> {
        self.iter().position(|n| n == name)
    }
}

#[cfg(test)]
mod tests {
    use super::Names;

    static T: Names<7, 3> = Names::new(["a", "SIGHUP", ""]);

    #[test]
    fn entries_round_trip() {
        assert_eq!(T.iter().collect::<Vec<_>>(), ["a", "SIGHUP", ""]);
        assert_eq!(T.c_str(1), Some(c"SIGHUP"));
        assert_eq!(
            (T.get(3), T.position("SIGHUP"), T.position("SIG")),
            (None, Some(1), None)
        );
    }
}

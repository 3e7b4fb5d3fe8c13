//! A tiny signal set (bit `n` = signal `n`, 1..=64) that fits in an atomic,
//! and signal-name parsing.

use crate::names::Names;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SigSet(pub u64);

impl SigSet {
    pub const EMPTY: SigSet = SigSet(0);

    pub fn valid(sig: i32) -> bool {
        (1..=64).contains(&sig)
    }
    pub fn insert(&mut self, sig: i32) {
        if Self::valid(sig) {
            self.0 |= 1u64 << (sig - 1);
        }
    }
    pub fn contains(self, sig: i32) -> bool {
        Self::valid(sig) && self.0 & (1u64 << (sig - 1)) != 0
    }
    pub fn iter(self) -> impl Iterator<Item = i32> {
        (1..=64).filter(move |s| self.contains(*s))
    }
}

/// Signals 1-31 by number (entry i is signal i + 1; the generic Linux
/// numbering, which x86_64 and aarch64 share: asm-generic/signal.h),
/// without pointers to relocate ([`Names`]).
static SIGNALS: Names<10, 31> = Names::new([
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
]);

/// `SIGPWR`, `pwr`, `30`, `RTMIN+2` -> signal number (1..=64).
pub fn parse_signal(tok: &str) -> Option<i32> {
    let t = tok.trim();
    if let Ok(n) = t.parse::<i32>() {
        return SigSet::valid(n).then_some(n);
    }
    let up = t.to_ascii_uppercase();
    let bare = up.strip_prefix("SIG").unwrap_or(&up);
    if let Some(off) = bare.strip_prefix("RTMIN+") {
        let off = off.parse::<i32>().ok().filter(|o| *o >= 0)?;
        let (min, max) = rt_range()?;
        let n = min.checked_add(off)?;
        return (n <= max).then_some(n);
    }
    SIGNALS
        .iter()
        .position(|n| n.strip_prefix("SIG") == Some(bare))
        .map(|i| i as i32 + 1)
}

/// glibc's `SIGRTMIN` and `SIGRTMAX`. Its `__libc_current_sigrtmin/max`
/// are looked up here, where an `RTMIN+n` name is parsed, rather than
/// imported: an import is a symbol lookup by the loader in every process
/// start (README "Performance"). Not async-signal-safe (`dlsym`).
fn rt_range() -> Option<(i32, i32)> {
    type CurrentFn = unsafe extern "C" fn() -> libc::c_int;
    let get = |name: &std::ffi::CStr| {
        // SAFETY: a NUL-terminated name; RTLD_DEFAULT is a valid handle.
        let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
        // SAFETY: glibc's `int __libc_current_sigrtmin(void)` (and max).
        (!p.is_null()).then(|| unsafe { std::mem::transmute::<*mut libc::c_void, CurrentFn>(p)() })
    };
    Some((
        get(c"__libc_current_sigrtmin")?,
        get(c"__libc_current_sigrtmax")?,
    ))
}

/// `30` -> `"SIGPWR"`; async-signal-safe (returns a static string).
pub fn signal_name(sig: i32) -> Option<&'static str> {
    SIGNALS.get(usize::try_from(sig - 1).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in 1..=31 {
            let name = signal_name(s).unwrap();
            assert_eq!(parse_signal(name), Some(s));
            assert_eq!(parse_signal(&name[3..].to_lowercase()), Some(s));
        }
        assert_eq!(parse_signal("30"), Some(libc::SIGPWR));
        assert_eq!(parse_signal("RTMIN+1"), Some(libc::SIGRTMIN() + 1));
        for bad in [
            "",
            "SIG",
            "BOGUS",
            "0",
            "65",
            "-1",
            "RTMIN+99",
            "RTMIN+-5",
            "RTMIN+2147483647",
        ] {
            assert_eq!(parse_signal(bad), None, "{bad}");
        }
    }

    #[test]
    fn numbering_is_libc_s() {
        for (name, sig) in [
            ("SIGHUP", libc::SIGHUP),
            ("SIGINT", libc::SIGINT),
            ("SIGQUIT", libc::SIGQUIT),
            ("SIGILL", libc::SIGILL),
            ("SIGTRAP", libc::SIGTRAP),
            ("SIGABRT", libc::SIGABRT),
            ("SIGBUS", libc::SIGBUS),
            ("SIGFPE", libc::SIGFPE),
            ("SIGKILL", libc::SIGKILL),
            ("SIGUSR1", libc::SIGUSR1),
            ("SIGSEGV", libc::SIGSEGV),
            ("SIGUSR2", libc::SIGUSR2),
            ("SIGPIPE", libc::SIGPIPE),
            ("SIGALRM", libc::SIGALRM),
            ("SIGTERM", libc::SIGTERM),
            ("SIGSTKFLT", libc::SIGSTKFLT),
            ("SIGCHLD", libc::SIGCHLD),
            ("SIGCONT", libc::SIGCONT),
            ("SIGSTOP", libc::SIGSTOP),
            ("SIGTSTP", libc::SIGTSTP),
            ("SIGTTIN", libc::SIGTTIN),
            ("SIGTTOU", libc::SIGTTOU),
            ("SIGURG", libc::SIGURG),
            ("SIGXCPU", libc::SIGXCPU),
            ("SIGXFSZ", libc::SIGXFSZ),
            ("SIGVTALRM", libc::SIGVTALRM),
            ("SIGPROF", libc::SIGPROF),
            ("SIGWINCH", libc::SIGWINCH),
            ("SIGIO", libc::SIGIO),
            ("SIGPWR", libc::SIGPWR),
            ("SIGSYS", libc::SIGSYS),
        ] {
            assert_eq!(
                (signal_name(sig), parse_signal(name)),
                (Some(name), Some(sig))
            );
        }
        assert_eq!((signal_name(0), signal_name(32)), (None, None));
    }

    #[test]
    fn set_ops() {
        let mut s = SigSet::EMPTY;
        s.insert(libc::SIGPWR);
        s.insert(64);
        s.insert(0);
        s.insert(99);
        assert!(s.contains(30) && s.contains(64) && !s.contains(0) && !s.contains(10));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![30, 64]);
    }
}

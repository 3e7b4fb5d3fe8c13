//! A tiny signal set (bit `n` = signal `n`, 1..=64) that fits in an atomic,
//! and signal-name parsing.

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

const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

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
    NAMES.iter().find(|(n, _)| *n == bare).map(|(_, s)| *s)
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
    const FULL: &[&str] = &[
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
    ];
    usize::try_from(sig - 1)
        .ok()
        .and_then(|i| FULL.get(i).copied())
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

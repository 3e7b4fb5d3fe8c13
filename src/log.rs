//! Diagnostics: `CGOFIX_LOG=off|error|warn|info|debug` (default `warn`) to
//! stderr or `CGOFIX_LOG_FILE` (appended). Every line is
//! `cgofix[PID]: message`.
//!
//! SIGNAL-REACHABLE: `emit` is called from the sigaction hook. It formats
//! into a fixed stack buffer (`core::fmt` with integers and `&str` only,
//! which never allocates) and issues one `write(2)`: no allocation, no lock,
//! no `log`/`env_logger` machinery. A line longer than the buffer is cut.
//!
//! Nothing here goes through `std::io::stderr` or `std::io::Error`'s
//! `Display`: with them linked, every process start paid the loader's
//! lookups of `writev`, `__xpg_strerror_r` and the thread-local destructor
//! machinery behind `eprintln!`'s output capture (`pthread_key_create`,
//! `pthread_key_delete`, `pthread_setspecific`, `__cxa_thread_atexit_impl`).
//! The constructor's warnings and the exit report use `write_all` below.

use crate::config::LogLevel;
use std::fmt::{self, Write};
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};

static LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Warn as u8);
static FD: AtomicI32 = AtomicI32::new(2);

/// Called once from the constructor (not signal-reachable).
pub fn init(level: LogLevel, file: Option<&str>) {
    if let Some(path) = file
        && level != LogLevel::Off
    {
        // std's open (open64, which std itself imports) rather than
        // libc's `open`: one symbol fewer for the loader in every process.
        use std::os::unix::fs::OpenOptionsExt;
        use std::os::unix::io::IntoRawFd;
        match std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .open(path)
        {
            // std opens with O_CLOEXEC.
            Ok(f) => FD.store(f.into_raw_fd(), Ordering::Relaxed),
            Err(e) => {
                let err = os_error(e.raw_os_error().unwrap_or(0));
                let line = format!(
                    "cgofix: CGOFIX_LOG_FILE=\"{path}\" cannot be opened ({err}); using stderr\n"
                );
                write_all(2, line.as_bytes());
            }
        }
    }
    LEVEL.store(level as u8, Ordering::Release);
}

#[inline]
pub fn enabled(level: LogLevel) -> bool {
    level as u8 <= LEVEL.load(Ordering::Acquire) && level != LogLevel::Off
}

struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.buf.len() - 1 - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// This process's id, by the raw system call (async-signal-safe, cannot
/// fail): libc's `getpid` would be one more symbol for the loader to look
/// up in every process start.
pub fn pid() -> i32 {
    // SAFETY: getpid takes no arguments.
    unsafe { libc::syscall(libc::SYS_getpid) as i32 }
}

/// Writes one line. Async-signal-safe for arguments that are integers and
/// string slices.
pub fn emit(args: fmt::Arguments<'_>) {
    let mut line = Line {
        buf: [0; 512],
        len: 0,
    };
    let pid = pid();
    let _ = write!(line, "cgofix[{pid}]: ");
    let _ = line.write_fmt(args);
    line.buf[line.len] = b'\n';
    // A failed write (closed or full descriptor) sets errno; a hook that
    // logs from inside a signal handler must leave the interrupted code's
    // errno as it was.
    // SAFETY: __errno_location always returns this thread's errno slot.
    let errno = unsafe { libc::__errno_location() };
    // SAFETY: reading this thread's errno.
    let saved = unsafe { *errno };
    // SAFETY: writing our own stack buffer to a descriptor we own (or 2).
    unsafe {
        libc::write(
            FD.load(Ordering::Relaxed),
            line.buf.as_ptr() as *const libc::c_void,
            line.len + 1,
        )
    };
    // SAFETY: restoring this thread's errno.
    unsafe { *errno = saved };
}

/// Writes all of `bytes` to `fd` (retrying short writes and EINTR), giving
/// up on any other error. For the constructor and the exit handler, not for
/// hooks (`emit` is the signal-safe path).
pub fn write_all(fd: i32, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writing from a valid slice.
        let n = unsafe { libc::write(fd, bytes.as_ptr() as *const libc::c_void, bytes.len()) };
        if n > 0 {
            bytes = &bytes[n as usize..];
        } else if n == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

/// `errno`'s text as `std::io::Error` displays it ("No such file or
/// directory (os error 2)"). libc's `strerror_r` is looked up when an error
/// is reported, not linked: a linked import is a lookup in every process
/// start, for a message almost no process prints.
pub fn os_error(errno: i32) -> String {
    type XsiStrerror = unsafe extern "C" fn(libc::c_int, *mut libc::c_char, usize) -> libc::c_int;
    // SAFETY: RTLD_DEFAULT lookup of a NUL-terminated name.
    let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"__xpg_strerror_r".as_ptr()) };
    let mut buf = [0 as libc::c_char; 128];
    let text = if f.is_null() {
        None
    } else {
        // SAFETY: glibc's XSI strerror_r has this signature.
        let f: XsiStrerror = unsafe { std::mem::transmute(f) };
        // SAFETY: a writable buffer of the stated size; on success it holds
        // a NUL-terminated string.
        (unsafe { f(errno, buf.as_mut_ptr(), buf.len()) } == 0)
            // SAFETY: NUL-terminated by strerror_r (checked above).
            .then(|| unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_string_lossy())
    };
    match text {
        Some(t) => format!("{t} (os error {errno})"),
        None => format!("os error {errno}"),
    }
}

/// `log!(Debug, "format", args...)`: a level check (one atomic load), then
/// `emit`. Async-signal-safe with integer and `&str` arguments.
#[macro_export]
macro_rules! log {
    ($level:ident, $($arg:tt)*) => {
        if $crate::log::enabled($crate::config::LogLevel::$level) {
            $crate::log::emit(format_args!($($arg)*));
        }
    };
}

/// `8388608` -> a `Display` of "8 MiB" (no allocation).
pub struct Size(pub usize);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
            write!(f, "{} MiB", n >> 20)
        } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
            write!(f, "{} KiB", n >> 10)
        } else {
            write!(f, "{n} B")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(Size(8 << 20).to_string(), "8 MiB");
        assert_eq!(Size(64 << 10).to_string(), "64 KiB");
        assert_eq!(Size(1000).to_string(), "1000 B");
    }

    #[test]
    fn os_error_reads_like_std() {
        assert_eq!(
            os_error(libc::ENOENT),
            std::io::Error::from_raw_os_error(libc::ENOENT).to_string()
        );
    }

    #[test]
    fn line_truncates_without_panicking() {
        let mut l = Line {
            buf: [0; 512],
            len: 0,
        };
        for _ in 0..100 {
            let _ = l.write_str("0123456789");
        }
        assert_eq!(l.len, 511);
    }
}

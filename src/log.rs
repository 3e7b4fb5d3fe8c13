//! Diagnostics: `CGOFIX_LOG=off|error|warn|info|debug` (default `warn`) to
//! stderr or `CGOFIX_LOG_FILE` (appended). Every line is
//! `cgofix[PID]: message`.
//!
//! SIGNAL-REACHABLE: `emit` is called from the sigaction hook. It formats
//! into a fixed stack buffer (`core::fmt` with integers and `&str` only,
//! which never allocates) and issues one `write(2)`: no allocation, no lock,
//! no `log`/`env_logger` machinery. A line longer than the buffer is cut.

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
        let c = std::ffi::CString::new(path).unwrap_or_default();
        // SAFETY: a valid NUL-terminated path; flags and mode are constants.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND | libc::O_CLOEXEC,
                0o644,
            )
        };
        if fd >= 0 {
            FD.store(fd, Ordering::Relaxed);
        } else {
            eprintln!(
                "cgofix: CGOFIX_LOG_FILE=\"{path}\" cannot be opened ({}); using stderr",
                std::io::Error::last_os_error()
            );
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

/// Writes one line. Async-signal-safe for arguments that are integers and
/// string slices.
pub fn emit(args: fmt::Arguments<'_>) {
    let mut line = Line {
        buf: [0; 512],
        len: 0,
    };
    // SAFETY: getpid is async-signal-safe and cannot fail.
    let pid = unsafe { libc::getpid() };
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

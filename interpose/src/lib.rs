//! The mechanism half of cgofix, free of policy.
//!
//! * [`RealFn`]: the "next" definition of a libc function, resolved once
//!   (normally from the shim's constructor) and read with one atomic load on
//!   every hook call, in the style of compiler-rt's `REAL(x)` pointers.
//! * [`hook!`]: declares an exported wrapper that never unwinds into C.
//! * [`elf`]: walking the objects loaded in this process (no allocation).
//! * [`goinfo`]: a Go object's version and build mode from its bytes, shared
//!   by the shim and the `cgofix` command.
//! * [`got`]: rewriting an object's relocation slots for one symbol.

pub mod elf;
pub mod goinfo;
pub mod got;
mod real;

pub use real::{RealFn, next_symbol};

/// Declares an exported C function that catches any panic of its body and
/// evaluates `fallback` instead, so a bug in a hook degrades to the real call
/// rather than unwinding through foreign frames (undefined behaviour).
///
/// ```ignore
/// hook! {
///     fn getpid() -> libc::pid_t {
///         body => { ... },
///         fallback => { ... },
///     }
/// }
/// ```
#[macro_export]
macro_rules! hook {
    (
        $(#[$meta:meta])*
        fn $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) -> $ret:ty {
            body => $body:block,
            fallback => $fallback:block $(,)?
        }
    ) => {
        $(#[$meta])*
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            // catch_unwind costs nothing on the non-panicking path; the
            // closure only captures the (Copy) arguments.
            match ::std::panic::catch_unwind(move || $body) {
                Ok(v) => v,
                Err(_) => $fallback,
            }
        }
    };
}

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

pub use real::{Provider, RealFn, global_symbol, next_symbol, page_size, yield_now};

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
        // The hidden alias that `own!` reads (see there).
        ::core::arch::global_asm!(concat!(
            ".globl __interpose_own_", stringify!($name), "\n",
            ".hidden __interpose_own_", stringify!($name), "\n",
            ".set __interpose_own_", stringify!($name), ", ", stringify!($name),
        ));
    };
}

/// The address of this library's own hook `$name` (declared with [`hook!`]
/// in the same library), e.g. the `own` argument of [`RealFn::resolve`].
///
/// Not `$name as usize`: an exported function may be interposed, so the
/// compiler reaches it through a GOT entry, which the loader fills by a
/// symbol lookup in every process that loads the library (~600
/// instructions each, callgrind). The alias `hook!` defines is hidden,
/// hence bound at link time (a direct address, or a relative relocation).
/// It is the same address as the exported definition, which is what
/// `dlsym` returns when a lookup finds our own wrapper.
#[macro_export]
macro_rules! own {
    ($name:ident) => {{
        unsafe extern "C" {
            #[link_name = concat!("__interpose_own_", stringify!($name))]
            safe fn own();
        }
        own as extern "C" fn() as usize
    }};
}

#[cfg(test)]
mod tests {
    hook! {
        fn interpose_own_probe(x: i32) -> i32 {
            body => { if x < 0 { panic!("negative") } else { x + 1 } },
            fallback => { -1 },
        }
    }

    #[test]
    fn own_is_the_exported_definition() {
        let exported = interpose_own_probe as unsafe extern "C" fn(i32) -> i32 as usize;
        // The address a lookup that finds our wrapper returns, which
        // `RealFn::resolve` must recognise.
        assert_eq!(own!(interpose_own_probe), exported);
    }

    #[test]
    fn hook_falls_back_on_panic() {
        // SAFETY: a plain function of ours.
        unsafe {
            assert_eq!(interpose_own_probe(1), 2);
            assert_eq!(interpose_own_probe(-5), -1);
        }
    }
}

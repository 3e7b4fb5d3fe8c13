//! The configuration, published once by the constructor and read by every
//! hook. `OnceLock::get` is one atomic load: async-signal-safe.

use crate::config::Config;
use std::sync::OnceLock;

static CONFIG: OnceLock<Config> = OnceLock::new();

/// Publishes the configuration; hooks apply their policy from then on.
/// Every real function must be resolved before this is called.
pub fn publish(cfg: Config) {
    let _ = CONFIG.set(cfg);
}

/// The configuration, once the constructor has run.
pub fn config() -> Option<&'static Config> {
    CONFIG.get()
}

/// The configuration when the shim is active (not `CGOFIX_DISABLE=on`).
pub fn active() -> Option<&'static Config> {
    CONFIG.get().filter(|c| !c.disable)
}

/// How this copy of the library came to hook the process (the report's
/// `mode`): preloaded, attached late by rewriting GOT slots
/// (`inprocess.rs`), or inactive because another copy already hooks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Preload = 1,
    InProcess = 2,
    Inactive = 3,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Preload => "preload",
            Mode::InProcess => "in-process",
            Mode::Inactive => "inactive",
        }
    }
}

static MODE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(Mode::Preload as u8);

/// Set once by the constructor, before `publish`.
pub fn set_mode(m: Mode) {
    MODE.store(m as u8, std::sync::atomic::Ordering::Release);
}

/// One atomic load: async-signal-safe.
pub fn mode() -> Mode {
    match MODE.load(std::sync::atomic::Ordering::Acquire) {
        2 => Mode::InProcess,
        3 => Mode::Inactive,
        _ => Mode::Preload,
    }
}

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

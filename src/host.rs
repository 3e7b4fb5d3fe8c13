//! What the host process is, read once from the executable's dynamic
//! section by the constructor (see `suspend.rs` for why a `BUN_*` symbol
//! version means Bun).

use interpose::elf;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Host {
    pub is_bun: bool,
    /// The executable's code range, to recognise the host's own handlers.
    pub exe_text: (usize, usize),
}

pub fn identify() -> Host {
    let mut host = Host {
        is_bun: false,
        exe_text: (0, 0),
    };
    let mut first = true;
    elf::for_each_object(|obj| {
        if !std::mem::take(&mut first) {
            return false;
        }
        // dl_iterate_phdr reports the executable first.
        host.exe_text = elf::text_range(obj);
        elf::verdef_names(obj, |name| {
            host.is_bun |= name.starts_with(b"BUN_");
        });
        false
    });
    host
}

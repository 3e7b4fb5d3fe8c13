//! Does the host's thread-suspend handler need protecting from
//! `SA_ONSTACK`? Decided by reading the handler's machine code once, when
//! the host installs it (start-up, before any Go runtime exists).
//!
//! Why code: JSC's handler (`Thread::signalHandlerSuspendResume`, WebKit
//! Source/WTF/wtf/posix/ThreadingPOSIX.cpp) checks that the interrupted
//! thread's stack pointer lies within the thread's stack. Up to Bun 1.4.3 it
//! takes that stack pointer from its own frame (`currentStackPointer()`),
//! which is wrong on a sigaltstack: the suspender then retries forever
//! (docs/background.md §1). From Bun 1.4.4 (oven-sh/WebKit#235, upstream
//! https://github.com/WebKit/WebKit/pull/65562) it reads the interrupted
//! stack pointer out of its `ucontext_t` argument and tolerates
//! `SA_ONSTACK` (docs/background.md §7). Both versions install the handler
//! with the same flags, mask and signal, and Bun exports no version symbol,
//! so the one observable difference is that load. Disassembled (x86_64):
//!
//! * 1.4.3: `mov r14,rdx` ... `mov rax,rsp` then the bounds check;
//! * 1.4.5: `mov r14,rdx` ... `mov rax,[r14+0xa0]`, i.e.
//!   `uc->uc_mcontext.gregs[REG_RSP]` (offset 0xa0 in glibc's x86_64
//!   `ucontext_t`), falling back to `rsp` when it is 0.
//!
//! The probe follows the third argument (`rdx`) through register-to-register
//! moves in the handler's first bytes and looks for a 64-bit load at
//! displacement 0xa0 from it. Checked against every Bun from 1.0.36 to
//! 1.4.5 by tests/suspend_detection.rs (the report's `suspend_fix`).
//! A wrong "tolerates" would bring the livelock back, so anything
//! unrecognised, and every architecture but x86_64 and aarch64, answers
//! "needs protecting".
//!
//! SIGNAL-REACHABLE (called from the sigaction hook): reads a bounded slice
//! of the executable's own text, no allocation.

/// How far into the handler the load is looked for (1.4.5: at +0x8a).
pub const WINDOW: usize = 256;

/// Whether the handler whose first bytes are `code` reads the interrupted
/// stack pointer from its `ucontext_t` (so `SA_ONSTACK` does not hurt it).
#[cfg(target_arch = "x86_64")]
pub fn reads_interrupted_sp(code: &[u8]) -> bool {
    /// `uc_mcontext.gregs[REG_RSP]`: uc_mcontext at 40, REG_RSP = 15.
    const UC_RSP: u32 = 40 + 15 * 8;
    // Registers (0-15) known to hold the ucontext pointer: rdx (2) on entry.
    let mut holds: u16 = 1 << 2;
    let mut i = 0;
    while i + 3 <= code.len() {
        let (rex, op, modrm) = (code[i], code[i + 1], code[i + 2]);
        // REX.W prefix: 0x48-0x4f; R extends ModRM.reg, B extends ModRM.rm.
        if rex & 0xf8 != 0x48 {
            i += 1;
            continue;
        }
        let reg = ((modrm >> 3) & 7) | ((rex & 4) << 1);
        let rm = (modrm & 7) | ((rex & 1) << 3);
        let md = modrm >> 6;
        match (op, md) {
            // mov r/m64, r64 (register form): rm <- reg.
            (0x89, 3) if holds & (1 << reg) != 0 => holds |= 1 << rm,
            // mov r64, r/m64 (register form): reg <- rm.
            (0x8b, 3) if holds & (1 << rm) != 0 => holds |= 1 << reg,
            // mov r64, [rm + disp32]; rm 4 would be a SIB byte, not a base.
            (0x8b, 2) if modrm & 7 != 4 && holds & (1 << rm) != 0 => {
                if let Some(d) = code.get(i + 3..i + 7)
                    && u32::from_le_bytes([d[0], d[1], d[2], d[3]]) == UC_RSP
                {
                    return true;
                }
            }
            _ => {}
        }
        i += 1;
    }
    false
}

/// aarch64: the same question in A64 code. Bun 1.4.5 (aarch64):
/// `mov x20, x2` ... `ldr x8, [x20, #432]`, i.e. `uc->uc_mcontext.sp`
/// (uc_mcontext at 176 in glibc's aarch64 `ucontext_t`, then
/// `fault_address` and 31 registers: 176 + 8 + 248 = 432); 1.3.14:
/// `mov x8, sp`. Follows x2 through `mov Xd, Xm` (ORR with XZR) and looks
/// for a 64-bit `ldr Xt, [Xn, #432]` (unsigned offset) from it.
#[cfg(target_arch = "aarch64")]
pub fn reads_interrupted_sp(code: &[u8]) -> bool {
    const UC_SP: u32 = 176 + 8 + 31 * 8;
    let mut holds: u32 = 1 << 2;
    for w in code.chunks_exact(4) {
        let w = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        if w & 0xffe0_ffe0 == 0xaa00_03e0 {
            // mov Xd, Xm
            let (m, d) = ((w >> 16) & 31, w & 31);
            if holds & (1 << m) != 0 {
                holds |= 1 << d;
            }
        } else if w & 0xffc0_0000 == 0xf940_0000 {
            // ldr Xt, [Xn, #imm12 * 8]
            let (imm, n) = ((w >> 10) & 0xfff, (w >> 5) & 31);
            if imm * 8 == UC_SP && holds & (1 << n) != 0 {
                return true;
            }
        }
    }
    false
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn reads_interrupted_sp(_code: &[u8]) -> bool {
    false
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    // The bytes below are the instructions quoted in the module docs,
    // assembled by hand (Intel syntax in the comments).
    const PROLOGUE: &[u8] = &[
        0x55, // push rbp
        0x48, 0x89, 0xe5, // mov rbp,rsp
        0x41, 0x57, 0x41, 0x56, // push r15; push r14
        0x49, 0x89, 0xd6, // mov r14,rdx
    ];

    #[test]
    fn fixed_handler_reads_rsp_from_the_ucontext() {
        let mut code = PROLOGUE.to_vec();
        code.extend([0x49, 0x8b, 0x86, 0xa0, 0x00, 0x00, 0x00]); // mov rax,[r14+0xa0]
        assert!(reads_interrupted_sp(&code));
    }

    #[test]
    fn old_handler_uses_its_own_rsp() {
        let mut code = PROLOGUE.to_vec();
        code.extend([0x48, 0x89, 0xe0]); // mov rax,rsp
        code.extend([0x49, 0x8b, 0x4d, 0x20]); // mov rcx,[r13+0x20]
        code.extend([0x49, 0x83, 0xc6, 0x28]); // add r14,0x28
        assert!(!reads_interrupted_sp(&code));
    }

    #[test]
    fn the_load_must_be_from_the_ucontext_register() {
        let mut code = PROLOGUE.to_vec();
        code.extend([0x49, 0x8b, 0x85, 0xa0, 0x00, 0x00, 0x00]); // mov rax,[r13+0xa0]
        assert!(!reads_interrupted_sp(&code));
        // Directly from rdx, no copy: also the ucontext.
        assert!(reads_interrupted_sp(&[0x48, 0x8b, 0x82, 0xa0, 0, 0, 0]));
        // Another offset (RIP, 0xa8) is not the stack pointer.
        assert!(!reads_interrupted_sp(&[0x48, 0x8b, 0x82, 0xa8, 0, 0, 0]));
        assert!(!reads_interrupted_sp(&[]));
        assert!(!reads_interrupted_sp(&[0x49, 0x8b]));
    }
}

#[cfg(all(test, target_arch = "aarch64"))]
mod tests_aarch64 {
    use super::*;

    fn code(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    // Instruction words as in Bun 1.4.5 / 1.3.14 for aarch64 (module docs).
    const MOV_X20_X2: u32 = 0xaa02_03f4;
    const LDR_X8_X20_432: u32 = 0xf940_da88;
    const MOV_X8_SP: u32 = 0x9100_03e8;
    const LDR_X8_X25_432: u32 = 0xf940_db28;

    #[test]
    fn fixed_handler_reads_sp_from_the_ucontext() {
        assert!(reads_interrupted_sp(&code(&[MOV_X20_X2, LDR_X8_X20_432])));
    }

    #[test]
    fn old_handler_uses_its_own_sp() {
        assert!(!reads_interrupted_sp(&code(&[MOV_X8_SP, MOV_X20_X2])));
        // The load must come from the ucontext register.
        assert!(!reads_interrupted_sp(&code(&[MOV_X20_X2, LDR_X8_X25_432])));
    }
}

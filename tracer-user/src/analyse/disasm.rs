//! Instruction-level facts about Go functions, from a real x86-64 decoder (iced-x86): where an
//! entry probe goes, where a function returns, and where it calls another function.

use iced_x86::{Code, Decoder, DecoderOptions, FlowControl, Instruction, Mnemonic};

/// Every instruction of `code` (loaded at `address`), stopping at the first undecodable byte.
pub fn instructions(code: &[u8], address: u64) -> impl Iterator<Item = Instruction> + '_ {
    let mut decoder = Decoder::with_ip(64, code, address, DecoderOptions::NONE);
    std::iter::from_fn(move || {
        if !decoder.can_decode() {
            return None;
        }
        let instruction = decoder.decode();
        (!instruction.is_invalid()).then_some(instruction)
    })
}

/// Addresses of the `RET` instructions of a function: where exit events are taken (never with
/// uretprobes, which break when the Go runtime moves or unwinds a goroutine's stack).
pub fn return_sites(code: &[u8], address: u64) -> Vec<u64> {
    instructions(code, address)
        .filter(|instruction| instruction.mnemonic() == Mnemonic::Ret)
        .map(|instruction| instruction.ip())
        .collect()
}

/// x86 legacy prefix bytes (operand and address size, segments, LOCK, REP).
const LEGACY_PREFIXES: [u8; 11] = [
    0x66, 0x67, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65, 0xf0, 0xf2, 0xf3,
];

/// Whether the kernel emulates the instruction `code` starts with when a uprobe on it fires
/// (x86-64, `arch/x86/kernel/uprobes.c`): relative jumps and calls, conditional jumps, NOPs
/// (the multi-byte forms since recent kernels: measured on 6.18) and `PUSH reg`. Anything else
/// is copied out of line and single-stepped, a second trap: about 6 µs instead of 0.9 in a VM.
pub fn kernel_emulates(code: &[u8]) -> bool {
    let instruction = Decoder::new(64, code, DecoderOptions::NONE).decode();
    if instruction.is_invalid() {
        return false;
    }
    // The kernel refuses to emulate branches with a 0x66 prefix.
    let operand_size_prefix = code
        .iter()
        .take_while(|byte| LEGACY_PREFIXES.contains(byte) || (0x40..=0x4f).contains(*byte))
        .any(|&byte| byte == 0x66);
    match instruction.mnemonic() {
        Mnemonic::Nop => true,
        Mnemonic::Jmp => instruction.is_jmp_short_or_near() && !operand_size_prefix,
        Mnemonic::Call => instruction.is_call_near() && !operand_size_prefix,
        _ if instruction.is_jcc_short_or_near() => !operand_size_prefix,
        // `50+r`, or `41 50+r` for R8–R15.
        Mnemonic::Push => matches!(code, [0x50..=0x57, ..] | [0x41, 0x50..=0x57, ..]),
        _ => false,
    }
}

/// Whether `code` starts with the 5-byte NOP (`0F 1F 44 00 00`) whose uprobe Linux optimizes
/// (6.18 on x86-64): after the first hit the kernel replaces the breakpoint with a `CALL` into
/// a trampoline of its own, which pushes a return address below the stack pointer — where the
/// `RETURNED_HERE` guard looks for the one the traced call left.
pub fn kernel_may_optimize(code: &[u8]) -> bool {
    code.starts_with(&[0x0f, 0x1f, 0x44, 0x00, 0x00])
}

/// A direct call found in a function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallSite {
    /// The `CALL` instruction.
    pub call: u64,
    /// The instruction after it: where the callee returns to (its results are in registers).
    pub return_to: u64,
}

/// Direct calls from a function (loaded at `address`) to `target`.
pub fn calls_to(code: &[u8], address: u64, target: u64) -> Vec<CallSite> {
    instructions(code, address)
        .filter(|instruction| {
            instruction.flow_control() == FlowControl::Call
                && instruction.near_branch_target() == target
        })
        .map(|instruction| CallSite {
            call: instruction.ip(),
            return_to: instruction.next_ip(),
        })
        .collect()
}

/// Indirect calls from a function (loaded at `address`): calls of function values.
pub fn indirect_calls(code: &[u8], address: u64) -> Vec<u64> {
    instructions(code, address)
        .filter(|instruction| instruction.flow_control() == FlowControl::IndirectCall)
        .map(|instruction| instruction.ip())
        .collect()
}

/// How many instructions a stack check can take before the frame is set up
/// (`LEAQ -n(SP), R12; CMPQ R12, 16(R14); JBE morestack`).
const MAX_PROLOGUE_INSTRUCTIONS: usize = 6;

/// Returns the address of the `PUSHQ BP` that starts the frame of the function whose first bytes
/// are `code` (loaded at `address`), if the prologue reaches one by falling through.
pub fn frame_push_address(code: &[u8], address: u64) -> Option<u64> {
    let mut decoder = Decoder::with_ip(64, code, address, DecoderOptions::NONE);
    for _ in 0..MAX_PROLOGUE_INSTRUCTIONS {
        if !decoder.can_decode() {
            return None;
        }
        let instruction = decoder.decode();
        if instruction.is_invalid() {
            return None;
        }
        if instruction.code() == Code::Push_r64
            && instruction.op0_register() == iced_x86::Register::RBP
        {
            return Some(instruction.ip());
        }
        if !matches!(
            instruction.flow_control(),
            FlowControl::Next | FlowControl::ConditionalBranch
        ) {
            return None;
        }
    }
    None
}

/// `CALL target` encoded at `at` (5 bytes): test code for the analyses that look for calls.
#[cfg(test)]
pub(crate) fn encoded_call(at: u64, target: u64) -> Vec<u8> {
    let rel = (target as i64 - (at as i64 + 5)) as i32;
    let mut bytes = vec![0xe8];
    bytes.extend(rel.to_le_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn the_kernel_emulates_pushes_branches_and_nops_only() {
        let emulated: [&[u8]; 9] = [
            &[0x55],                               // PUSHQ BP
            &[0x41, 0x56],                         // PUSHQ R14
            &[0x90],                               // NOP (an inline mark)
            &[0x66, 0x90],                         // NOPW
            &[0x0f, 0x1f, 0x00],                   // NOPL (AX)
            &[0x75, 0x19],                         // JNE rel8
            &[0x0f, 0x85, 0x10, 0x00, 0x00, 0x00], // JNE rel32
            &[0xe8, 0x5b, 0x69, 0xfe, 0xff],       // CALL rel32
            &[0xeb, 0x04],                         // JMP rel8
        ];
        for code in emulated {
            assert!(kernel_emulates(code), "{code:02x?}");
        }
        let stepped: [&[u8]; 7] = [
            &[0x40, 0x0f, 0x94, 0xc6], // SETE SI
            &[0xc3],                   // RET
            &[0x5d],                   // POPQ BP
            &[0x48, 0x89, 0xe5],       // MOVQ SP, BP
            &[0x49, 0x3b, 0x66, 0x10], // CMPQ SP, 0x10(R14)
            &[0xff, 0xd0],             // CALL AX (indirect)
            &[0x66, 0xe8, 0x00, 0x00], // CALLW: refused with the 0x66 prefix
        ];
        for code in stepped {
            assert!(!kernel_emulates(code), "{code:02x?}");
        }
        assert!(!kernel_emulates(&[]));
    }

    const BASE: u64 = 0x46_0000;

    #[test]
    fn small_frame_probe_goes_after_the_stack_check() {
        // CMPQ SP, 0x10(R14); JBE +0x40; PUSHQ BP; MOVQ SP, BP
        let code = [0x49, 0x3b, 0x66, 0x10, 0x76, 0x40, 0x55, 0x48, 0x89, 0xe5];
        assert_eq!(frame_push_address(&code, BASE), Some(BASE + 6));
    }

    #[test]
    fn large_frame_probe_goes_after_the_stack_check() {
        // LEAQ -0x88(SP), R12; CMPQ R12, 0x10(R14); JBE rel32; PUSHQ BP
        let code = [
            0x4c, 0x8d, 0xa4, 0x24, 0x78, 0xff, 0xff, 0xff, 0x4d, 0x3b, 0x66, 0x10, 0x0f, 0x86,
            0x00, 0x01, 0x00, 0x00, 0x55, 0x48, 0x89, 0xe5,
        ];
        assert_eq!(frame_push_address(&code, BASE), Some(BASE + 18));
    }

    #[test]
    fn nosplit_function_pushes_first() {
        assert_eq!(
            frame_push_address(&[0x55, 0x48, 0x89, 0xe5], BASE),
            Some(BASE)
        );
    }

    #[test]
    fn finds_returns_and_calls() {
        // PUSHQ BP; CALL +0x10; NOP; POPQ BP; RET; CALL -0x20; RET
        let code = [
            0x55, 0xe8, 0x10, 0x00, 0x00, 0x00, 0x90, 0x5d, 0xc3, 0xe8, 0xe0, 0xff, 0xff, 0xff,
            0xc3,
        ];
        assert_eq!(return_sites(&code, BASE), vec![BASE + 8, BASE + 14]);
        let first_target = BASE + 6 + 0x10;
        assert_eq!(
            calls_to(&code, BASE, first_target),
            vec![CallSite {
                call: BASE + 1,
                return_to: BASE + 6
            }]
        );
        assert_eq!(calls_to(&code, BASE, BASE + 14 - 0x20).len(), 1);
        assert!(calls_to(&code, BASE, BASE).is_empty());
        assert!(indirect_calls(&code, BASE).is_empty());
        // Go 1.24's runfinq calling a cleanup: MOVQ (DX), AX; CALL AX; then CALL rel32.
        let code = [0x48, 0x8b, 0x02, 0xff, 0xd0, 0xe8, 0x00, 0x00, 0x00, 0x00];
        assert_eq!(indirect_calls(&code, BASE), vec![BASE + 3]);
    }

    #[test]
    fn frameless_or_garbage_code_has_no_probe_point() {
        // MOVQ AX, BX; RET
        assert_eq!(
            frame_push_address(&[0x48, 0x89, 0xc3, 0xc3, 0x55], BASE),
            None
        );
        // JMP +0 before any push
        assert_eq!(frame_push_address(&[0xeb, 0x00, 0x55], BASE), None);
        assert_eq!(frame_push_address(&[], BASE), None);
        assert_eq!(frame_push_address(&[0x0f, 0x0b, 0x55], BASE), None); // UD2
        assert_eq!(frame_push_address(&[0x49, 0x3b], BASE), None); // truncated
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

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

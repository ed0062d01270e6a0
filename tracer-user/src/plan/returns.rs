//! Function returns observed in their callers.
//!
//! A probe on a `RET` is single-stepped: the kernel emulates no `RET`, so it copies the
//! instruction out of line and traps a second time after running it. Profiled on the service
//! benchmark traced all the time, those second traps were 46% of all the CPU time tracing cost
//! (docs/performance.md). A function that is only ever reached by direct `CALL`s returns to the
//! instruction after one of them, so each call site is probed instead: on the first instruction
//! the kernel emulates on the straight line after the call (a jump, a call, a NOP), when nothing
//! on the way writes a register the probe reads, joins another path or is probed itself; else
//! on the instruction after the call. Functions whose address is taken (function values,
//! interface tables, a jump to them) keep their `RET` probes: they may return elsewhere.

use std::collections::{HashMap, HashSet};

use iced_x86::{
    FlowControl, Instruction, InstructionInfo, InstructionInfoFactory, Mnemonic, OpAccess, OpKind,
    Register,
};

use crate::{
    analyse::{
        disasm,
        syncsites::{info_writes_any, FunctionCode, Reg},
    },
    plan::MovedResult,
};

/// How many instructions after a call the probe may move to reach one the kernel emulates
/// (`http.Header.Clone` zeroes an iterator in its frame between `makemap` and its next call;
/// `http.(*persistConn).readLoop` copies a 32-byte result in twelve instructions after a
/// `chanrecv1`, and another function stores `makechan`'s result and zeroes a struct in sixteen
/// before its next call). The walk is analysis only: what it passes costs nothing at run time.
const WINDOW: usize = 20;

/// Where one call's return is observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct CallerProbe {
    pub address: u64,
    /// Recorded only if the call has just returned there
    /// ([`guard::RETURNED_HERE`](tracer_common::guard::RETURNED_HERE)).
    pub guarded: bool,
    /// Where the result is read from when the caller moved it on the way (a frame slot, another
    /// register) and then reused its register before the probe.
    pub result_moved: Option<MovedResult>,
    /// Not probed: the return address has nothing the kernel emulates, so a probe would be
    /// single-stepped, and the callee's completion can be applied at the goroutine's next
    /// event instead (see [`Callee::completes_at_next_event`]).
    pub unprobed: bool,
}

impl CallerProbe {
    fn at(address: u64) -> Self {
        Self {
            address,
            guarded: false,
            result_moved: None,
            unprobed: false,
        }
    }
}

/// Functions whose returns are probed, their call sites as they are found, and whether
/// something else refers to them.
pub(super) struct CallerProbes {
    callees: HashMap<u64, Callee>,
}

/// A function whose returns are probed.
pub(super) struct Callee {
    /// The registers its return probes read (the results).
    reads: Vec<Reg>,
    /// A method: reflection can call it through its type's method table.
    method: bool,
    /// Its return probes may fire where it did not return without inventing a race (see
    /// `Observed::hides_races_when_spurious`): a call site where other paths join can then be
    /// probed with [`guard::RETURNED_HERE`](tracer_common::guard::RETURNED_HERE).
    pub(super) joinable: bool,
    /// Its return probes read one register, as the object itself: where a caller stores that
    /// register in a frame slot on the way, a probe further on can read the slot instead.
    pub(super) spillable: bool,
    /// Its return probes read one register, as the base of their object: where a caller copies
    /// that register to another on the way, a probe further on can read the copy instead.
    pub(super) copyable: bool,
    /// Its return reads nothing and only completes a channel operation its entry started (a
    /// send's or a receive's acquires): where observing it would cost a single step, the
    /// completion can be applied at the goroutine's next event instead, which follows it
    /// (`events::order`): later than it happened, so it can only order more, never less.
    pub(super) completes_at_next_event: bool,
    /// Where each of its calls is probed.
    probes: Vec<CallerProbe>,
    /// Its address is used other than by direct calls, or a call site cannot be probed alone.
    kept_on_returns: bool,
}

impl Callee {
    pub(super) fn new(method: bool) -> Self {
        Self {
            reads: Vec::new(),
            method,
            joinable: true,
            spillable: true,
            copyable: true,
            completes_at_next_event: false,
            probes: Vec::new(),
            kept_on_returns: false,
        }
    }

    /// Its return probes also read `registers`.
    pub(super) fn read(&mut self, registers: &[Reg]) {
        for &register in registers {
            if !self.reads.contains(&register) {
                self.reads.push(register);
            }
        }
    }
}

impl CallerProbes {
    /// For the functions at these entries.
    pub(super) fn new(callees: HashMap<u64, Callee>) -> Self {
        Self { callees }
    }

    /// Finds the calls of the functions in `function` and where to probe each one, and what
    /// else refers to them there (jumps, addresses loaded). `probed`: the addresses other
    /// probes already use (a second probe there would record its event in no defined order).
    pub(super) fn scan(&mut self, function: &FunctionCode<'_>, probed: impl Fn(u64) -> bool) {
        if self.callees.is_empty() {
            return;
        }
        let instructions = function.instructions();
        for (index, instruction) in instructions.iter().enumerate() {
            let referenced = if instruction.is_ip_rel_memory_operand() {
                Some(instruction.ip_rel_memory_address())
            } else if matches!(
                instruction.flow_control(),
                FlowControl::Call
                    | FlowControl::UnconditionalBranch
                    | FlowControl::ConditionalBranch
            ) {
                Some(instruction.near_branch_target())
            } else {
                None
            };
            let call = instruction.flow_control() == FlowControl::Call;
            // The callee's own jump back to its entry after growing its stack changes nothing.
            let Some((target, callee)) = referenced
                .filter(|&target| call || target != function.address)
                .and_then(|target| Some((target, self.callees.get_mut(&target)?)))
            else {
                continue;
            };
            if !call || instruction.is_call_near_indirect() {
                log::debug!(
                    "{target:#x} referenced at {:#x} in {}: return probes kept",
                    instruction.ip(),
                    function.name
                );
                callee.kept_on_returns = true;
                continue;
            }
            match probe_after_call(function, index, callee, &probed) {
                Some(probe) => callee.probes.push(probe),
                None => {
                    log::debug!(
                        "call of {:#x} at {:#x} in {} cannot be probed alone: return probes kept",
                        instruction.near_branch_target(),
                        instruction.ip(),
                        function.name
                    );
                    callee.kept_on_returns = true;
                }
            }
        }
    }

    /// Keeps on their returns the functions whose address appears in `data` (8-byte words:
    /// function values, interface tables) and the methods whose offset from the start of the
    /// code at `text` does (4-byte words: the method tables reflection calls through; a
    /// coincidence only costs the method its move).
    pub(super) fn scan_data(&mut self, data: &[u8], text: u64) {
        let absolute: HashSet<u64> = self.callees.keys().copied().collect();
        let relative: HashSet<u32> = self
            .callees
            .iter()
            .filter(|(_, callee)| callee.method)
            .filter_map(|(&entry, _)| u32::try_from(entry.checked_sub(text)?).ok())
            .collect();
        let mut referenced = HashSet::new();
        for word in data.chunks_exact(8) {
            let value = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            if absolute.contains(&value) {
                referenced.insert(value);
            }
        }
        for word in data.chunks_exact(4) {
            let value = u32::from_le_bytes(word.try_into().expect("4 bytes"));
            if relative.contains(&value) {
                referenced.insert(text + u64::from(value));
            }
        }
        for entry in referenced {
            log::debug!("{entry:#x} referenced in data: return probes kept");
            if let Some(callee) = self.callees.get_mut(&entry) {
                callee.kept_on_returns = true;
            }
        }
    }

    /// The functions observed in their callers, with where (and whether under the guard):
    /// every other one keeps its `RET` probes.
    pub(super) fn finish(self) -> HashMap<u64, Vec<CallerProbe>> {
        self.callees
            .into_iter()
            .filter(|(_, callee)| !callee.kept_on_returns)
            .map(|(entry, callee)| (entry, callee.probes))
            .collect()
    }
}

/// Where to observe the return of the call at `index`: the first instruction the kernel
/// emulates within [`WINDOW`] after it on a straight line that no jump joins, where no
/// instruction writes a register the callee's probes read nor is an atomic, and no other probe
/// sits; else the instruction after the call. A result register the caller stores in a frame
/// slot on the way (`MOVQ AX, 0x48(SP)`) may be reused afterwards: the probe then reads the
/// slot, as long as nothing on the way may write it or move the stack pointer; the same for a
/// result copied to another register (`MOVQ AX, BX`), as long as nothing writes that one (the
/// caller of `runtime.newproc1` passes the new goroutine on in BX). Where jumps join
/// the instruction after the call, that instruction under the guard if the callee allows it.
/// The instruction after the call, joined or not, is left unprobed when the kernel would
/// single-step it and the callee's completion can wait for the goroutine's next event.
/// `None` when it is probed already, or joined and the callee does not allow the guard.
fn probe_after_call(
    function: &FunctionCode<'_>,
    index: usize,
    callee: &Callee,
    probed: &impl Fn(u64) -> bool,
) -> Option<CallerProbe> {
    let instructions = function.instructions();
    let return_to = instructions.get(index + 1)?;
    if probed(return_to.ip()) {
        return None;
    }
    // Probed right there, not further: a goroutine preempted on the way would find another
    // return address below its stack pointer. Where that probe would be single-stepped, a
    // completion that can wait is made up after the call's own entry event instead, which the
    // paths that jump there never record.
    // The guard cannot tell the paths apart on a 5-byte NOP, whose probe the kernel may turn
    // into a call that overwrites the word it reads.
    if function.is_branch_target(return_to.ip()) {
        let code = function.bytes_from(return_to.ip());
        let guardable = callee.joinable && !disasm::kernel_may_optimize(code);
        if callee.completes_at_next_event && !(guardable && disasm::kernel_emulates(code)) {
            return Some(CallerProbe {
                unprobed: true,
                ..CallerProbe::at(return_to.ip())
            });
        }
        return guardable.then_some(CallerProbe {
            guarded: true,
            ..CallerProbe::at(return_to.ip())
        });
    }
    let reads = &callee.reads;
    let mut moved = None;
    let mut frame = FrameAddresses::default();
    let mut factory = InstructionInfoFactory::new();
    for (offset, instruction) in instructions[index + 1..].iter().take(WINDOW).enumerate() {
        let ip = instruction.ip();
        if offset > 0 && (function.is_branch_target(ip) || probed(ip)) {
            break;
        }
        if disasm::kernel_emulates(function.bytes_from(ip)) {
            return Some(CallerProbe {
                result_moved: moved,
                ..CallerProbe::at(ip)
            });
        }
        let moves = match reads[..] {
            [result] if moved.is_none() => {
                let spill = stored_in_frame(instruction, result).filter(|_| callee.spillable);
                let copy = copied_to(instruction, result).filter(|_| callee.copyable);
                spill
                    .map(MovedResult::FrameSlot)
                    .or(copy.map(MovedResult::Register))
            }
            _ => None,
        };
        let info = factory.info(instruction);
        let clobbers = match moved {
            None if moves.is_some() => false,
            None => info_writes_any(info, reads),
            Some(MovedResult::FrameSlot(at)) => {
                info_writes_any(info, &[Reg::Rsp]) || may_write_frame_slot(info, at, &frame)
            }
            Some(MovedResult::Register(copy)) => info_writes_any(info, &[copy]),
        };
        moved = moved.or(moves);
        frame.follow(info, instruction);
        let atomic = instruction.has_lock_prefix() || instruction.mnemonic() == Mnemonic::Xchg;
        if clobbers || atomic || instruction.flow_control() != FlowControl::Next {
            break;
        }
    }
    // Nothing on the way is emulated, the instruction after the call included (the walk's
    // first step): a probe there would be single-stepped.
    Some(CallerProbe {
        unprobed: callee.completes_at_next_event,
        ..CallerProbe::at(return_to.ip())
    })
}

/// Where a function's result waits before it returns, when it is of this shape: one call of
/// `callee` (whose `CALL` the kernel emulates), before which the result is stored from a
/// register into a frame slot on every path to the call, and after which the function only
/// ever loads `result` (its result register) from that slot (directly or through a copy, see
/// [`loads_from_frame`]), which nothing writes. Returns the call and the slot.
/// `sync.(*Pool).Get` keeps what it got from the pool at `0x20(SP)` across
/// `runtime_procUnpin` on every supported Go version; the other way out of it returns what
/// `New()` made, which no `Put` ever released. `runtime.makemap_small` keeps its new map at
/// `0x10(SP)` across the call that draws its hash seed (Go 1.22 on; 1.21 inlines the draw).
pub(super) fn result_spilled_before(
    function: &FunctionCode<'_>,
    callee: u64,
    result: Reg,
) -> Option<(u64, i32)> {
    let instructions = function.instructions();
    let mut calls = instructions.iter().enumerate().filter(|(_, instruction)| {
        instruction.flow_control() == FlowControl::Call
            && instruction.near_branch_target() == callee
    });
    let (call, None) = (calls.next()?.0, calls.next()) else {
        return None;
    };
    let after = &instructions[call + 1..];
    let mut factory = InstructionInfoFactory::new();
    let FrameLoads {
        loads,
        stores_through,
    } = loads_from_frame(function, after, result, &mut factory);
    let (&slot, others) = loads.split_first()?;
    if others.iter().any(|&other| other != slot) {
        return None;
    }
    // A store through a register holding the slot's value writes into the object the function
    // returns, which Go never places in the returning function's frame.
    let into_result =
        |instruction: &Instruction| stores_through.contains(&(instruction.ip(), slot));
    let frame = FrameAddresses::default();
    if after.iter().any(|instruction| {
        !into_result(instruction) && may_write_frame_slot(factory.info(instruction), slot, &frame)
    }) {
        return None;
    }
    // Back from the call to the store, on a straight line that no other path joins.
    for instruction in instructions[..call].iter().rev() {
        if frame_move(instruction, Move::Store).is_some_and(|(_, at)| at == slot) {
            return Some((instructions[call].ip(), slot));
        }
        if function.is_branch_target(instruction.ip())
            || instruction.flow_control() != FlowControl::Next
            || may_write_frame_slot(factory.info(instruction), slot, &frame)
        {
            return None;
        }
    }
    None
}

/// How a stretch of code reads a function's result from its frame (see [`loads_from_frame`]).
struct FrameLoads {
    /// The slots the result register is loaded from.
    loads: Vec<i32>,
    /// `MOV`s into memory (their address) through a register holding the value of a slot
    /// (which one).
    stores_through: Vec<(u64, i32)>,
}

/// The frame slots `result` is loaded from in `code`: directly (`MOVQ 0x20(SP), BX`), or
/// through another register loaded from a slot and copied to it before anything else writes
/// that register (`MOVQ 0x10(SP), CX; MOVQ AX, 0x8(CX); MOVQ CX, AX` in `makemap_small`),
/// and the stores through such a register on the way (`MOVQ AX, 0x8(CX)`).
fn loads_from_frame(
    function: &FunctionCode<'_>,
    code: &[Instruction],
    result: Reg,
    factory: &mut InstructionInfoFactory,
) -> FrameLoads {
    let mut found = FrameLoads {
        loads: Vec::new(),
        stores_through: Vec::new(),
    };
    // Other registers holding a frame slot's value, on the straight line so far.
    let mut holding: Vec<(Reg, i32)> = Vec::new();
    for instruction in code {
        if function.is_branch_target(instruction.ip()) {
            holding.clear();
        }
        if let Some((loaded, at)) = frame_move(instruction, Move::Load) {
            holding.retain(|&(register, _)| register != loaded);
            match loaded == result {
                true => found.loads.push(at),
                false => holding.push((loaded, at)),
            }
            continue;
        }
        for &(register, at) in &holding {
            if copied_to(instruction, register) == Some(result) {
                found.loads.push(at);
            }
            // A plain `MOV` into memory: its one write is the one through the register.
            let through = instruction.mnemonic() == Mnemonic::Mov
                && instruction.op0_kind() == OpKind::Memory
                && Reg::of(instruction.memory_base()) == Some(register)
                && instruction.memory_index() == Register::None;
            if through {
                found.stores_through.push((instruction.ip(), at));
            }
        }
        let info = factory.info(instruction);
        holding.retain(|&(register, _)| !info_writes_any(info, &[register]));
        if instruction.flow_control() != FlowControl::Next {
            holding.clear();
        }
    }
    found
}

/// Which way a [`frame_move`] goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Move {
    /// `MOVQ reg, at(SP)`.
    Store,
    /// `MOVQ at(SP), reg`.
    Load,
}

/// The whole register and the frame slot `[RSP + at]` that `instruction` moves between, the
/// way `direction` says, if it is such a 64-bit `MOV`.
fn frame_move(instruction: &Instruction, direction: Move) -> Option<(Reg, i32)> {
    let (slot, register) = match direction {
        Move::Store => (0, 1),
        Move::Load => (1, 0),
    };
    let moves = instruction.mnemonic() == Mnemonic::Mov
        && instruction.op_count() == 2
        && instruction.op_kind(slot) == OpKind::Memory
        && instruction.memory_base() == Register::RSP
        && instruction.memory_index() == Register::None
        && instruction.op_kind(register) == OpKind::Register
        && instruction.op_register(register).size() == 8;
    if !moves {
        return None;
    }
    let at = i32::try_from(instruction.memory_displacement64() as i64).ok()?;
    Some((Reg::of(instruction.op_register(register))?, at))
}

/// The register `instruction` copies all of `register` to, if it does (`MOVQ AX, BX`).
fn copied_to(instruction: &Instruction, register: Reg) -> Option<Reg> {
    let copies = instruction.mnemonic() == Mnemonic::Mov
        && instruction.op_count() == 2
        && instruction.op0_kind() == OpKind::Register
        && instruction.op1_kind() == OpKind::Register
        && instruction.op0_register().size() == 8
        && instruction.op1_register().size() == 8
        && Reg::of(instruction.op1_register()) == Some(register);
    Reg::of(instruction.op0_register()).filter(|&copy| copies && copy != Reg::Rsp)
}

/// The frame slot `[RSP + at]` that `instruction` stores all of `register` in, if it does.
fn stored_in_frame(instruction: &Instruction, register: Reg) -> Option<i32> {
    frame_move(instruction, Move::Store)
        .filter(|&(stored, _)| stored == register)
        .map(|(_, at)| at)
}

/// Registers known to hold an address in the frame, `RSP + offset` (`LEAQ 0xa0(SP), CX` before
/// zeroing a local struct through CX).
#[derive(Default)]
struct FrameAddresses(Vec<(Reg, i64)>);

impl FrameAddresses {
    fn offset_of(&self, register: Register) -> Option<i64> {
        if register == Register::RSP {
            return Some(0);
        }
        let register = Reg::of(register)?;
        self.0
            .iter()
            .find(|(known, _)| *known == register)
            .map(|&(_, offset)| offset)
    }

    /// What the registers hold after `instruction` (described by `info`).
    fn follow(&mut self, info: &InstructionInfo, instruction: &Instruction) {
        self.0
            .retain(|&(register, _)| !info_writes_any(info, &[register]));
        let frame_address = instruction.mnemonic() == Mnemonic::Lea
            && instruction.memory_base() == Register::RSP
            && instruction.memory_index() == Register::None
            && instruction.op0_register().size() == 8;
        if let Some(register) = Reg::of(instruction.op0_register()).filter(|_| frame_address) {
            self.0
                .push((register, instruction.memory_displacement64() as i64));
        }
    }
}

/// Whether `instruction` may write any byte of the frame slot `[RSP + at]`: a write through
/// the stack pointer, or through a register known to point into the frame, that overlaps it,
/// or any write through another register (which could point into the frame too), not to a
/// global.
fn may_write_frame_slot(info: &InstructionInfo, at: i32, frame: &FrameAddresses) -> bool {
    let slot = i64::from(at)..i64::from(at) + 8;
    info.used_memory().iter().any(|memory| {
        let writes = !matches!(
            memory.access(),
            OpAccess::Read | OpAccess::CondRead | OpAccess::NoMemAccess
        );
        let size = memory.memory_size().size() as i64;
        let base = frame
            .offset_of(memory.base())
            .filter(|_| memory.index() == Register::None);
        let overlaps = base.is_none_or(|base| {
            let start = base + memory.displacement() as i64;
            start < slot.end && slot.start < start + size.max(1)
        });
        // A global (RIP-relative) is never in the frame.
        writes && overlaps && memory.base() != Register::RIP
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyse::disasm::encoded_call;

    const CALLER: u64 = 0x49_0000;
    /// Go 1.26 `sync.(*Pool).Get` (returns its value in AX, BX).
    const GET: u64 = 0x48_0000;

    /// `sync.(*Pool).Get`, a method whose return may be recorded where it did not happen.
    fn get() -> Callee {
        let mut get = Callee::new(true);
        get.read(&[Reg::Rax, Reg::Rbx]);
        get
    }

    fn probes_of(code: &[u8], probed: &HashSet<u64>) -> HashMap<u64, Vec<CallerProbe>> {
        probes_of_callee(code, probed, get())
    }

    fn probes_of_callee(
        code: &[u8],
        probed: &HashSet<u64>,
        callee: Callee,
    ) -> HashMap<u64, Vec<CallerProbe>> {
        let function = FunctionCode::decode("main.f", code, CALLER);
        let mut probes = CallerProbes::new(HashMap::from([(GET, callee)]));
        probes.scan(&function, |address| probed.contains(&address));
        probes.finish()
    }

    /// io.go in Go 1.26: the result compared with a LEAQ'd type into CX, then a JNE.
    #[test]
    fn a_return_is_observed_on_the_first_emulated_instruction_after_the_call() {
        let mut code = encoded_call(CALLER, GET);
        code.extend([
            0x48, 0x8d, 0x0d, 0x11, 0xbc, 0x26, 0x00, // LEAQ 0x26bc11(IP), CX
            0x48, 0x39, 0xc8, // CMPQ AX, CX
            0x0f, 0x85, 0xb8, 0x00, 0x00, 0x00, // JNE
        ]);
        let probes = probes_of(&code, &HashSet::new());
        assert_eq!(probes[&GET], vec![CallerProbe::at(CALLER + 5 + 7 + 3)]);
    }

    /// A result register written on the way: the probe stays right after the call.
    #[test]
    fn a_result_overwritten_on_the_way_keeps_the_probe_after_the_call() {
        let mut code = encoded_call(CALLER, GET);
        code.extend([
            0x48, 0x89, 0xc3, // MOVQ AX, BX
            0x0f, 0x85, 0xb8, 0x00, 0x00, 0x00, // JNE
        ]);
        assert_eq!(
            probes_of(&code, &HashSet::new())[&GET],
            vec![CallerProbe::at(CALLER + 5)]
        );
    }

    /// A `chanrecv1`: its completion can wait for the goroutine's next event.
    fn receive() -> Callee {
        let mut receive = Callee::new(false);
        receive.completes_at_next_event = true;
        receive
    }

    /// `net/http.(*persistConn).readLoop.func4` in Go 1.26: `<-eofc` and the epilogue. Nothing
    /// there is emulated: a `chanrecv1`, which allows it, is left unprobed; a callee that does
    /// not keeps its (single-stepped) probe after the call; an emulated instruction in reach
    /// is probed either way.
    #[test]
    fn a_return_into_an_epilogue_is_left_unprobed_when_the_callee_completes_later() {
        let mut code = encoded_call(CALLER, GET);
        code.extend([
            0x48, 0x83, 0xc4, 0x18, // ADDQ $0x18, SP
            0x5d, // POPQ BP
            0xc3, // RET
        ]);
        let unprobed = probes_of_callee(&code, &HashSet::new(), receive())[&GET].clone();
        assert_eq!(
            unprobed,
            vec![CallerProbe {
                unprobed: true,
                ..CallerProbe::at(CALLER + 5)
            }]
        );
        assert_eq!(
            probes_of(&code, &HashSet::new())[&GET],
            vec![CallerProbe::at(CALLER + 5)]
        );
        let mut emulated = encoded_call(CALLER, GET);
        emulated.extend([0x0f, 0x1f, 0x44, 0x00, 0x00]); // NOPL 0(AX)(AX*1)
        assert_eq!(
            probes_of_callee(&emulated, &HashSet::new(), receive())[&GET],
            vec![CallerProbe::at(CALLER + 5)]
        );
    }

    /// `runtime.newproc.func1` in Go 1.26: the new goroutine copied from AX to BX for
    /// `runqput`, AX reused, then a NOP: the probe reads BX there.
    #[test]
    fn a_result_copied_to_another_register_is_read_there_by_a_later_probe() {
        let mut code = encoded_call(CALLER, GET);
        code.extend([
            0x49, 0x8b, 0x56, 0x30, // MOVQ 0x30(R14), DX
            0x48, 0x8b, 0x92, 0xd0, 0x00, 0x00, 0x00, // MOVQ 0xd0(DX), DX
            0x48, 0x89, 0xc3, // MOVQ AX, BX
            0xb9, 0x01, 0x00, 0x00, 0x00, // MOVL $0x1, CX
            0x48, 0x89, 0xd0, // MOVQ DX, AX
            0x0f, 0x1f, 0x44, 0x00, 0x00, // NOPL 0(AX)(AX*1)
        ]);
        let mut newproc1 = Callee::new(false);
        newproc1.read(&[Reg::Rax]);
        assert_eq!(
            probes_of_callee(&code, &HashSet::new(), newproc1)[&GET],
            vec![CallerProbe {
                result_moved: Some(MovedResult::Register(Reg::Rbx)),
                ..CallerProbe::at(CALLER + 5 + 4 + 7 + 3 + 5 + 3)
            }]
        );
        // The copy overwritten before the NOP: the probe stays right after the call.
        let mut overwritten = code.clone();
        overwritten[5 + 4 + 7 + 3..5 + 4 + 7 + 3 + 5].copy_from_slice(&[0xbb, 1, 0, 0, 0]); // MOVL $1, BX
        let mut newproc1 = Callee::new(false);
        newproc1.read(&[Reg::Rax]);
        assert_eq!(
            probes_of_callee(&overwritten, &HashSet::new(), newproc1)[&GET],
            vec![CallerProbe::at(CALLER + 5)]
        );
    }

    /// Where jumps join the code after the call (a shared epilogue), the probe sits right there
    /// under the guard — unless a spurious event could pair with a call (a sync function): then
    /// the function keeps its RET probes.
    #[test]
    fn a_joined_return_address_is_probed_under_the_guard_or_not_at_all() {
        let mut jumped = encoded_call(CALLER, GET);
        jumped.extend([0x90, 0xeb, 0xfd]); // NOP; JMP back to the NOP
        let probes = probes_of(&jumped, &HashSet::new());
        assert_eq!(
            probes[&GET],
            vec![CallerProbe {
                guarded: true,
                ..CallerProbe::at(CALLER + 5)
            }]
        );
        let mut sync = Callee::new(false);
        sync.joinable = false;
        assert!(probes_of_callee(&jumped, &HashSet::new(), sync).is_empty());
        // A receive completes at the goroutine's next event where the joined probe would be
        // single-stepped; on the NOP, which the kernel emulates, it keeps the guarded probe.
        assert_eq!(
            probes_of_callee(&jumped, &HashSet::new(), receive())[&GET],
            vec![CallerProbe {
                guarded: true,
                ..CallerProbe::at(CALLER + 5)
            }]
        );
        // On a 5-byte NOP the kernel may replace the breakpoint with a call of its own, which
        // overwrites the word the guard reads: no guarded probe there.
        let mut long_nop = encoded_call(CALLER, GET);
        long_nop.extend([0x0f, 0x1f, 0x44, 0x00, 0x00, 0xeb, 0xf9]); // NOPL 0(AX)(AX*1); JMP back
        assert!(probes_of(&long_nop, &HashSet::new()).is_empty());
        assert_eq!(
            probes_of_callee(&long_nop, &HashSet::new(), receive())[&GET],
            vec![CallerProbe {
                unprobed: true,
                ..CallerProbe::at(CALLER + 5)
            }]
        );
        let mut stepped = encoded_call(CALLER, GET);
        stepped.extend([0x48, 0x89, 0xc3, 0xeb, 0xfb]); // MOVQ AX, BX; JMP back to the MOVQ
        assert_eq!(
            probes_of_callee(&stepped, &HashSet::new(), receive())[&GET],
            vec![CallerProbe {
                unprobed: true,
                ..CallerProbe::at(CALLER + 5)
            }]
        );
    }

    /// Another probe right after the call (an inlined Unlock's mark), or the address loaded as
    /// a value: the function keeps its RET probes.
    #[test]
    fn a_function_that_may_return_elsewhere_keeps_its_return_probes() {
        let mut code = encoded_call(CALLER, GET);
        code.push(0x90); // NOP
        let probed = HashSet::from([CALLER + 5]);
        assert!(probes_of(&code, &probed).is_empty());

        let mut taken = vec![0x48, 0x8d, 0x05]; // LEAQ GET(IP), AX
        taken.extend(((GET as i64 - (CALLER as i64 + 7)) as i32).to_le_bytes());
        taken.extend(encoded_call(CALLER + 7, GET));
        taken.push(0x90);
        assert!(probes_of(&taken, &HashSet::new()).is_empty());

        let function = FunctionCode::decode("main.f", &code, CALLER);
        let mut probes = CallerProbes::new(HashMap::from([(GET, get())]));
        probes.scan(&function, |_| false);
        let mut itab = vec![0u8; 16];
        itab[8..].copy_from_slice(&GET.to_le_bytes());
        probes.scan_data(&itab, 0x40_1000);
        assert!(probes.finish().is_empty());
    }

    /// `makemap`'s result, stored in a frame slot before AX is reused: the probe moves on to
    /// the next call and reads the slot.
    fn makemap() -> Callee {
        let mut makemap = Callee::new(false);
        makemap.read(&[Reg::Rax]);
        makemap
    }

    /// net/textproto.readMIMEHeader in Go 1.26: the new map stored at 0xe0(SP), AX reloaded.
    const SPILLED: [u8; 24] = [
        0x48, 0x89, 0x84, 0x24, 0xe0, 0x00, 0x00, 0x00, // MOVQ AX, 0xe0(SP)
        0x48, 0x8b, 0x94, 0x24, 0x10, 0x01, 0x00, 0x00, // MOVQ 0x110(SP), DX
        0x48, 0x8b, 0x02, // MOVQ (DX), AX
        0xbb, 0x01, 0x00, 0x00, 0x00, // MOVL $1, BX
    ];

    #[test]
    fn a_result_stored_in_a_frame_slot_is_read_there_by_a_later_probe() {
        let mut code = encoded_call(CALLER, GET);
        code.extend(SPILLED);
        let call = CALLER + 5 + SPILLED.len() as u64;
        code.extend(encoded_call(call, 0x40_0000));
        let probes = probes_of_callee(&code, &HashSet::new(), makemap());
        assert_eq!(
            probes[&GET],
            vec![CallerProbe {
                result_moved: Some(MovedResult::FrameSlot(0xe0)),
                ..CallerProbe::at(call)
            }]
        );
        // Not for a result read with another register (Pool.Get's AX and BX).
        assert_eq!(
            probes_of(&code, &HashSet::new())[&GET],
            vec![CallerProbe::at(CALLER + 5)]
        );
    }

    /// The shape of net/http.Header.Clone in Go 1.26: the new map stored, then a local iterator
    /// zeroed through CX = SP + 0xf0 (clear of the slot at 0xe0) before the next call.
    #[test]
    fn stores_through_a_register_into_another_part_of_the_frame_leave_the_slot_alone() {
        let mut code = encoded_call(CALLER, GET);
        code.extend(&SPILLED[..8]); // MOVQ AX, 0xe0(SP)
        let mut zeroing = vec![
            0x48, 0x8d, 0x8c, 0x24, 0xf0, 0x00, 0x00, 0x00, // LEAQ 0xf0(SP), CX
            0x44, 0x0f, 0x11, 0x39, // MOVUPS X15, (CX)
            0x44, 0x0f, 0x11, 0x79, 0x10, // MOVUPS X15, 0x10(CX)
        ];
        code.extend(&zeroing);
        let call = CALLER + 5 + 8 + zeroing.len() as u64;
        code.extend(encoded_call(call, 0x40_0000));
        assert_eq!(
            probes_of_callee(&code, &HashSet::new(), makemap())[&GET],
            vec![CallerProbe {
                result_moved: Some(MovedResult::FrameSlot(0xe0)),
                ..CallerProbe::at(call)
            }]
        );
        // The same stores 0x20 lower would overwrite the slot.
        let mut overlapping = encoded_call(CALLER, GET);
        overlapping.extend(&SPILLED[..8]);
        zeroing[4] = 0xd0; // LEAQ 0xd0(SP), CX: the second store covers 0xe0..0xf0
        overlapping.extend(&zeroing);
        overlapping.extend(encoded_call(call, 0x40_0000));
        assert_eq!(
            probes_of_callee(&overlapping, &HashSet::new(), makemap())[&GET],
            vec![CallerProbe::at(CALLER + 5)]
        );
    }

    /// A write that may reach the slot on the way (through the stack pointer, overlapping it,
    /// or through any other register): the probe stays right after the call.
    #[test]
    fn a_frame_slot_that_may_be_written_on_the_way_is_not_trusted() {
        for write in [
            &[0x48, 0x89, 0x9c, 0x24, 0xe4, 0x00, 0x00, 0x00][..], // MOVQ BX, 0xe4(SP)
            &[0x48, 0x89, 0x1a][..],                               // MOVQ BX, (DX)
            &[0x48, 0x83, 0xc4, 0x08][..],                         // ADDQ $8, SP
        ] {
            let mut code = encoded_call(CALLER, GET);
            code.extend(&SPILLED[..8]);
            code.extend(write);
            code.extend(encoded_call(CALLER + 5 + 8 + write.len() as u64, 0x40_0000));
            assert_eq!(
                probes_of_callee(&code, &HashSet::new(), makemap())[&GET],
                vec![CallerProbe::at(CALLER + 5)],
                "{write:x?}"
            );
        }
    }

    /// Go 1.26's `sync.(*Pool).Get`, as linked at 0x4846e0: its one `runtime_procUnpin` call
    /// at +0x80, after which it loads BX (the data word of its result) from `0x20(SP)`.
    const POOL_GET_AT: u64 = 0x48_46e0;
    const PROC_UNPIN: u64 = 0x47_9d60;
    #[rustfmt::skip]
    const POOL_GET: [u8; 207] = [
        0x49, 0x3b, 0x66, 0x10, 0x0f, 0x86, 0xad, 0x00, 0x00, 0x00, 0x55, 0x48, 0x89, 0xe5, 0x48, 0x83,
        0xec, 0x28, 0x48, 0x89, 0x44, 0x24, 0x38, 0xe8, 0x44, 0x02, 0x00, 0x00, 0x48, 0x8b, 0x08, 0x48,
        0x8b, 0x50, 0x08, 0x48, 0xc7, 0x00, 0x00, 0x00, 0x00, 0x00, 0x83, 0x3d, 0xaf, 0x0a, 0x12, 0x00,
        0x00, 0x74, 0x0c, 0x48, 0x8b, 0x70, 0x08, 0xe8, 0x04, 0xab, 0xff, 0xff, 0x49, 0x89, 0x33, 0x48,
        0xc7, 0x40, 0x08, 0x00, 0x00, 0x00, 0x00, 0x48, 0x85, 0xc9, 0x75, 0x28, 0x48, 0x89, 0x5c, 0x24,
        0x18, 0x48, 0x83, 0xc0, 0x10, 0xe8, 0x26, 0x0a, 0x00, 0x00, 0x48, 0x85, 0xc0, 0x75, 0x0f, 0x48,
        0x8b, 0x44, 0x24, 0x38, 0x48, 0x8b, 0x5c, 0x24, 0x18, 0xe8, 0x72, 0x00, 0x00, 0x00, 0x48, 0x89,
        0xc1, 0x48, 0x89, 0xda, 0x48, 0x89, 0x54, 0x24, 0x20, 0x48, 0x89, 0x4c, 0x24, 0x10, 0x66, 0x90,
        0xe8, 0xfb, 0x55, 0xff, 0xff, 0x48, 0x8b, 0x44, 0x24, 0x10, 0x48, 0x85, 0xc0, 0x74, 0x07, 0x48,
        0x8b, 0x5c, 0x24, 0x20, 0xeb, 0x1b, 0x48, 0x8b, 0x4c, 0x24, 0x38, 0x48, 0x8b, 0x51, 0x20, 0x90,
        0x48, 0x85, 0xd2, 0x75, 0x07, 0x48, 0x8b, 0x5c, 0x24, 0x20, 0xeb, 0x05, 0x48, 0x8b, 0x02, 0xff,
        0xd0, 0x48, 0x83, 0xc4, 0x28, 0x5d, 0xc3, 0x48, 0x89, 0x44, 0x24, 0x08, 0x0f, 0x1f, 0x40, 0x00,
        0xe8, 0x1b, 0x91, 0xff, 0xff, 0x48, 0x8b, 0x44, 0x24, 0x08, 0xe9, 0x31, 0xff, 0xff, 0xff,
    ];

    fn spilled(code: &[u8], result: Reg) -> Option<(u64, i32)> {
        let function = FunctionCode::decode("sync.(*Pool).Get", code, POOL_GET_AT);
        result_spilled_before(&function, PROC_UNPIN, result)
    }

    #[test]
    fn pool_get_keeps_what_it_got_in_a_frame_slot_across_proc_unpin() {
        assert_eq!(
            spilled(&POOL_GET, Reg::Rbx),
            Some((POOL_GET_AT + 0x80, 0x20))
        );
        // AX (the type word) is loaded from 0x10(SP), and from 0x8(SP) after the stack grows.
        assert_eq!(spilled(&POOL_GET, Reg::Rax), None);
        let elsewhere = FunctionCode::decode("sync.(*Pool).Get", &POOL_GET, POOL_GET_AT);
        assert_eq!(
            result_spilled_before(&elsewhere, PROC_UNPIN + 1, Reg::Rbx),
            None,
            "no call of that function"
        );
    }

    /// Go 1.27 `runtime.makemap_small`: the new map kept at 0x10(SP) across the call that
    /// draws its seed, stored through, then copied to AX.
    const MAKEMAP_SMALL_AT: u64 = 0x48_5640;
    const MAPS_RAND: u64 = 0x48_7fe0;
    const MAKEMAP_SMALL: [u8; 62] = [
        0x49, 0x3b, 0x66, 0x10, // CMPQ SP, 0x10(R14)
        0x76, 0x31, // JBE morestack
        0x55, // PUSHQ BP
        0x48, 0x89, 0xe5, // MOVQ SP, BP
        0x48, 0x83, 0xec, 0x18, // SUBQ $0x18, SP
        0x48, 0x8d, 0x05, 0xdb, 0x0b, 0x60, 0x00, // LEAQ type(IP), AX
        0xe8, 0x46, 0xc8, 0xf9, 0xff, // CALL runtime.newobject
        0x48, 0x89, 0x44, 0x24, 0x10, // MOVQ AX, 0x10(SP)
        0x90, // NOPL
        0xe8, 0x7b, 0x29, 0x00, 0x00, // CALL internal/runtime/maps.rand
        0x48, 0x8b, 0x4c, 0x24, 0x10, // MOVQ 0x10(SP), CX
        0x48, 0x89, 0x41, 0x08, // MOVQ AX, 0x8(CX)
        0x48, 0x89, 0xc8, // MOVQ CX, AX
        0x48, 0x83, 0xc4, 0x18, // ADDQ $0x18, SP
        0x5d, // POPQ BP
        0xc3, // RET
        0xe8, 0x64, 0x71, 0x00, 0x00, // CALL runtime.morestack_noctxt
        0xeb, 0xc2, // JMP makemap_small
    ];

    fn new_map_spilled(code: &[u8]) -> Option<(u64, i32)> {
        let function = FunctionCode::decode("runtime.makemap_small", code, MAKEMAP_SMALL_AT);
        result_spilled_before(&function, MAPS_RAND, Reg::Rax)
    }

    #[test]
    fn makemap_small_keeps_its_new_map_in_a_frame_slot_across_the_seed_draw() {
        assert_eq!(
            new_map_spilled(&MAKEMAP_SMALL),
            Some((MAKEMAP_SMALL_AT + 0x20, 0x10))
        );
        // AX copied from DX, which holds no slot's value.
        let mut other_copy = MAKEMAP_SMALL;
        other_copy[0x30] = 0xd0; // MOVQ DX, AX
        assert_eq!(new_map_spilled(&other_copy), None);
        // The seed stored through DX instead of the map: DX may point into the frame.
        let mut other_store = MAKEMAP_SMALL;
        other_store[0x2c] = 0x42; // MOVQ AX, 0x8(DX)
        assert_eq!(new_map_spilled(&other_store), None);
    }

    #[test]
    fn a_slot_loaded_twice_or_stored_on_one_path_only_is_not_trusted() {
        // The load at +0x8f reads 0x28(SP) instead of 0x20(SP): two slots.
        let mut two_slots = POOL_GET;
        two_slots[0x8f + 4] = 0x28;
        assert_eq!(spilled(&two_slots, Reg::Rbx), None);
        // The `JNE` at +0x4a lands after the store instead of on it: one path reaches the
        // call without storing the result.
        let mut one_path = POOL_GET;
        one_path[0x4b] += 5;
        assert_eq!(spilled(&one_path, Reg::Rbx), None);
    }
}

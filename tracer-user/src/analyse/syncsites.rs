//! Inlined synchronisation sites: where the compiler inlined `Mutex.Lock`, `Unlock`,
//! `RWMutex.RLock`, `RUnlock`, `Once.Do` and `WaitGroup.Done` into their callers, which is the
//! only way uncontended operations can be seen (there is no out-of-line function to probe).
//!
//! Each site is anchored on the slow-path `CALL` that follows the fast path (docs/go-internals.md §3:
//! the call is always attributed to the inlined frame, while the atomic instruction sometimes is
//! not), then confirmed by decoding the atomic instruction before it. A uprobe cannot sit on a
//! `LOCK`-prefixed instruction, so:
//! * acquires are probed after the atomic (its result is then known): on the first instruction
//!   the kernel emulates rather than single-steps, usually the conditional jump a few
//!   instructions on, when nothing on the way changes what the probe reads;
//! * releases are probed on the instruction before the atomic, so that the release is recorded
//!   before any other goroutine can observe it; the object's address is then an expression in
//!   that instruction's registers (the base register may still have to be loaded).

use std::collections::{HashMap, HashSet};

use iced_x86::{
    Code, FlowControl, Instruction, InstructionInfo, InstructionInfoFactory, Mnemonic, OpAccess,
    OpKind, Register, RflagsBits,
};
use serde::Serialize;

use super::{
    disasm,
    pclntab::InlinedCall,
    typed_atomics::{Home, Layout, PointerVariable},
};

/// The synchronisation operation a site performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Primitive {
    /// `Once.doSlow` storing `done = 1`: the release every later `Do` acquires (recorded before
    /// the store, since a goroutine that sees `done` set takes the fast path at once).
    OnceDone,
    MutexLock,
    MutexUnlock,
    /// A CAS like Lock's, without a slow path: it acquires only when ZF says it succeeded.
    MutexTryLock,
    RwMutexRLock,
    RwMutexRUnlock,
    /// In `RWMutex.Lock`, after each atomic on the reader count and on the count of readers to
    /// wait for: readers that have left are known (acquire what they released); the ones still
    /// inside wake the writer through `runtime_SemacquireRWMutex`, whose return acquires again.
    RwMutexReadersChecked,
    OnceDo,
    WaitGroupDone,
    /// An inlined typed `sync/atomic` method that writes its word (Store, Swap, CompareAndSwap,
    /// Add, And, Or): a release, before the atomic instruction.
    AtomicRelease,
    /// An inlined typed `sync/atomic` method that reads its word (Load, and the read half of
    /// Swap, CompareAndSwap, Add…): an acquire, after the instruction.
    AtomicAcquire,
}

/// When the probe fires relative to the atomic instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Timing {
    /// Before it: releases.
    Before,
    /// After it: acquires, whose success is known only then.
    After,
    /// On the call that performs it (`WaitGroup.Done` is a call to `Add`, probed there).
    AtCall,
}

/// A general-purpose register, as saved in the kernel's `pt_regs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reg {
    Rax,
    Rbx,
    Rcx,
    Rdx,
    Rsi,
    Rdi,
    Rbp,
    Rsp,
    R8,
    R9,
    R10,
    R11,
    R12,
    R13,
    R14,
    R15,
}

impl Reg {
    /// Every general-purpose register.
    pub const ALL: [Self; 16] = [
        Self::Rax,
        Self::Rbx,
        Self::Rcx,
        Self::Rdx,
        Self::Rsi,
        Self::Rdi,
        Self::Rbp,
        Self::Rsp,
        Self::R8,
        Self::R9,
        Self::R10,
        Self::R11,
        Self::R12,
        Self::R13,
        Self::R14,
        Self::R15,
    ];

    /// The 64-bit register that contains `register` (`EAX` → `RAX`), if it is a general one.
    pub(crate) fn of(register: Register) -> Option<Self> {
        Some(match register.full_register() {
            Register::RAX => Self::Rax,
            Register::RBX => Self::Rbx,
            Register::RCX => Self::Rcx,
            Register::RDX => Self::Rdx,
            Register::RSI => Self::Rsi,
            Register::RDI => Self::Rdi,
            Register::RBP => Self::Rbp,
            Register::RSP => Self::Rsp,
            Register::R8 => Self::R8,
            Register::R9 => Self::R9,
            Register::R10 => Self::R10,
            Register::R11 => Self::R11,
            Register::R12 => Self::R12,
            Register::R13 => Self::R13,
            Register::R14 => Self::R14,
            Register::R15 => Self::R15,
            _ => return None,
        })
    }

    /// The register of a DWARF register number (the x86-64 psABI numbering: RAX, RDX, RCX,
    /// RBX, RSI, RDI, RBP, RSP, then R8–R15).
    pub(crate) fn from_dwarf(number: u16) -> Option<Self> {
        const IN_ALL: [usize; 16] = [0, 3, 2, 1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
        IN_ALL
            .get(usize::from(number))
            .map(|&index| Self::ALL[index])
    }
}

/// How to compute an address from the registers at the probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "form", rename_all = "kebab-case")]
pub enum AddressExpr {
    /// `base + offset`
    Register { base: Reg, offset: i64 },
    /// `*(u64 *)(base + at) + offset`: the base register is loaded from memory (usually a stack
    /// slot) between the probe and the atomic instruction.
    Load { base: Reg, at: i64, offset: i64 },
    /// `*(u64 *)(*(u64 *)(base + at) + then) + offset`: a pointer field of a struct whose
    /// pointer is itself loaded (`s.cfg.table` with `s` reloaded from its stack slot).
    LoadTwice {
        base: Reg,
        at: i64,
        then: i64,
        offset: i64,
    },
    /// A global: its link-time address (add the load bias for PIE executables).
    Static { address: u64 },
}

impl AddressExpr {
    fn plus(self, delta: i64) -> Self {
        match self {
            Self::Register { base, offset } => Self::Register {
                base,
                offset: offset + delta,
            },
            Self::Load { base, at, offset } => Self::Load {
                base,
                at,
                offset: offset + delta,
            },
            Self::LoadTwice {
                base,
                at,
                then,
                offset,
            } => Self::LoadTwice {
                base,
                at,
                then,
                offset: offset + delta,
            },
            Self::Static { address } => Self::Static {
                address: address.wrapping_add_signed(delta),
            },
        }
    }
}

/// What the probe can read to learn the outcome of the operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "register", rename_all = "kebab-case")]
pub enum Outcome {
    /// Nothing to read: the operation always happens.
    Always,
    /// ZF after a compare-and-swap: set when it succeeded.
    ZeroFlag,
    /// A register holding the atomic's result (old value of an `XADD`, a loaded flag).
    Register(Reg),
    /// A register whose low byte a `SETE` set from ZF after a compare-and-swap: non-zero when
    /// it succeeded (the probe moved past the `SETE` to an instruction the kernel emulates).
    ZeroFlagIn(Reg),
}

/// One inlined synchronisation operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SyncSite {
    pub primitive: Primitive,
    /// The function the operation was inlined into.
    pub function: String,
    /// The probed instruction.
    pub probe: u64,
    /// Where the probed instruction is in the file (filled in by the plan, which knows the
    /// segments; 0 until then).
    pub file_offset: u64,
    pub timing: Timing,
    /// The address of the `sync` object (Mutex, RWMutex, Once, WaitGroup) at the probe.
    pub object: AddressExpr,
    pub outcome: Outcome,
    /// The atomic instruction (or call) the site was confirmed on.
    pub atomic: u64,
    /// The slow-path call the site was anchored on.
    pub anchor: u64,
    /// A release probed on the `CALL` of a map function before its atomic (nothing the kernel
    /// emulates in between): that function, whose entry records the goroutine's next event,
    /// after which the release takes effect (see [`FunctionCode::with_map_functions`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_map_call: Option<u64>,
}

/// Field offsets inside the sync objects (the same in Go 1.21–1.27).
const MUTEX_STATE: i64 = 0;
const RWMUTEX_READER_COUNT: i64 = 16;
/// `RWMutex.readerWait`: how many readers a writer still waits for.
const RWMUTEX_READER_WAIT: i64 = 20;
const ONCE_DONE: i64 = 0;

/// The slow paths and out-of-line callees that identify an inlined fast path.
#[derive(Clone, Copy, Debug)]
pub enum Anchor {
    LockSlow,
    UnlockSlow,
    RUnlockSlow,
    SemacquireRWMutexR,
    OnceDoSlow,
    WaitGroupAdd,
}

/// Function names of each anchor, across versions (1.24 moved Mutex to `internal/sync`).
pub const ANCHORS: [(&str, Anchor); 8] = [
    ("sync.(*Mutex).lockSlow", Anchor::LockSlow),
    ("internal/sync.(*Mutex).lockSlow", Anchor::LockSlow),
    ("sync.(*Mutex).unlockSlow", Anchor::UnlockSlow),
    ("internal/sync.(*Mutex).unlockSlow", Anchor::UnlockSlow),
    ("sync.(*RWMutex).rUnlockSlow", Anchor::RUnlockSlow),
    (
        "sync.runtime_SemacquireRWMutexR",
        Anchor::SemacquireRWMutexR,
    ),
    ("sync.(*Once).doSlow", Anchor::OnceDoSlow),
    ("sync.(*WaitGroup).Add", Anchor::WaitGroupAdd),
];

/// How far back from an anchor call the fast path's atomic instruction may be.
const FAST_PATH_WINDOW: usize = 16;

/// How far before a release's atomic instruction its probe may be moved to an instruction the
/// kernel emulates: the inline mark, or the `PUSHQ BP` of a `defer mu.Unlock()` wrapper's
/// prologue, five instructions before its inlined XADD.
const RELEASE_PROBE_WINDOW: usize = 8;

/// The caller's frame bytes a map function may write: the spill slots of its register
/// arguments (at most four words: type, map, key as a pointer or a string; Go's ABIInternal
/// reserves them at the bottom of the caller's frame).
const MAP_CALL_SPILL_BYTES: i64 = 4 * 8;

/// One function's machine code, decoded once for every analysis of it.
pub struct FunctionCode<'a> {
    pub name: &'a str,
    pub code: &'a [u8],
    pub address: u64,
    instructions: Vec<Instruction>,
    /// Where jumps within the function land: a probe there would miss the paths that jump.
    branch_targets: HashSet<u64>,
    /// Functions whose entry probe records a map event: a release may be probed on a call of
    /// one (see [`SiteContext::release_at`]).
    map_functions: Option<&'a HashSet<u64>>,
}

impl<'a> FunctionCode<'a> {
    pub fn decode(name: &'a str, code: &'a [u8], address: u64) -> Self {
        let instructions: Vec<Instruction> = disasm::instructions(code, address).collect();
        let branch_targets = branch_targets(&instructions);
        Self {
            name,
            code,
            address,
            instructions,
            branch_targets,
            map_functions: None,
        }
    }

    /// The function, for analyses that may probe a release on a call of one of
    /// `map_functions` (entries of map functions whose probe records the map event).
    pub fn with_map_functions(self, map_functions: &'a HashSet<u64>) -> Self {
        Self {
            map_functions: Some(map_functions),
            ..self
        }
    }

    pub fn instructions(&self) -> &[Instruction] {
        &self.instructions
    }

    /// Whether a jump within the function lands on `address`.
    pub fn is_branch_target(&self, address: u64) -> bool {
        self.branch_targets.contains(&address)
    }

    /// The function's bytes from the instruction at `address` on.
    pub fn bytes_from(&self, address: u64) -> &'a [u8] {
        let start = address.saturating_sub(self.address) as usize;
        self.code.get(start..).unwrap_or_default()
    }
}

/// Finds the inlined sync sites of one function. `anchors` maps anchor function addresses to
/// their kind. Sites that cannot be confirmed are reported through `unconfirmed` (anchor
/// addresses) so that callers can count them rather than silently miss them.
pub fn find_sites(
    function: &FunctionCode<'_>,
    anchors: &[(u64, Anchor)],
    unconfirmed: &mut Vec<u64>,
) -> Vec<SyncSite> {
    let instructions = &function.instructions;
    let mut sites = Vec::new();
    for (index, call) in instructions.iter().enumerate() {
        if call.mnemonic() != Mnemonic::Call {
            continue;
        }
        let Some(&(_, anchor)) = anchors
            .iter()
            .find(|(target, _)| *target == call.near_branch_target())
        else {
            continue;
        };
        let context = SiteContext {
            function,
            anchor_index: index,
        };
        match context.site(anchor) {
            Found::Site(site) => sites.push(context.emulated_probe(site)),
            Found::NotInlined => {}
            Found::Unconfirmed => unconfirmed.push(call.ip()),
        }
    }
    sites
}

/// What an anchor call turned out to be.
enum Found {
    Site(SyncSite),
    /// A plain call of an out-of-line function (e.g. `wg.Add(1)`), probed at its entry.
    NotInlined,
    /// A slow path whose fast path could not be decoded.
    Unconfirmed,
}

impl From<Option<SyncSite>> for Found {
    fn from(site: Option<SyncSite>) -> Self {
        site.map_or(Self::Unconfirmed, Self::Site)
    }
}

struct SiteContext<'a> {
    function: &'a FunctionCode<'a>,
    anchor_index: usize,
}

impl SiteContext<'_> {
    fn site(&self, anchor: Anchor) -> Found {
        match anchor {
            Anchor::LockSlow => self
                .acquire_after(Mnemonic::Cmpxchg, Primitive::MutexLock, MUTEX_STATE)
                .into(),
            Anchor::SemacquireRWMutexR => self
                .acquire_after(
                    Mnemonic::Xadd,
                    Primitive::RwMutexRLock,
                    RWMUTEX_READER_COUNT,
                )
                .into(),
            Anchor::UnlockSlow => self
                .release_before(Primitive::MutexUnlock, MUTEX_STATE)
                .into(),
            Anchor::RUnlockSlow => self
                .release_before(Primitive::RwMutexRUnlock, RWMUTEX_READER_COUNT)
                .into(),
            Anchor::OnceDoSlow => self.once_load().into(),
            Anchor::WaitGroupAdd => self
                .wait_group_done()
                .map_or(Found::NotInlined, Found::Site),
        }
    }

    fn anchor(&self) -> &Instruction {
        &self.function.instructions[self.anchor_index]
    }

    /// The nearest `LOCK <mnemonic>` on a 32-bit memory operand before the anchor.
    /// The `LOCK <mnemonic>` on a 32-bit memory operand that leads to the anchor: searched
    /// backwards through the anchor's straight-line block and, when the compiler moved the slow
    /// path out of line (a cold block entered by a jump from the fast path), before each jump
    /// into that block.
    fn atomic_before_anchor(&self, mnemonic: Mnemonic) -> Option<usize> {
        let is_atomic = |index: usize| is_locked_32(&self.function.instructions[index], mnemonic);
        let mut index = self.anchor_index;
        for _ in 0..FAST_PATH_WINDOW {
            let block_start = self.function.instructions[index].ip();
            if self.function.branch_targets.contains(&block_start) {
                let jumped_from =
                    self.function
                        .instructions
                        .iter()
                        .enumerate()
                        .find_map(|(source, jump)| {
                            let jumps_here = (jump.is_jcc_short_or_near()
                                || jump.is_jmp_short_or_near())
                                && jump.near_branch_target() == block_start;
                            jumps_here
                                .then(|| {
                                    (source.saturating_sub(FAST_PATH_WINDOW)..source)
                                        .rev()
                                        .find(|&i| is_atomic(i))
                                })
                                .flatten()
                        });
                if jumped_from.is_some() {
                    return jumped_from;
                }
            }
            let previous = index.checked_sub(1)?;
            let falls_through = matches!(
                self.function.instructions[previous].flow_control(),
                FlowControl::Next | FlowControl::ConditionalBranch | FlowControl::Call
            );
            if !falls_through {
                return None;
            }
            if is_atomic(previous) {
                return Some(previous);
            }
            index = previous;
        }
        None
    }

    fn build(
        &self,
        primitive: Primitive,
        probe: u64,
        timing: Timing,
        object: AddressExpr,
        outcome: Outcome,
        atomic: u64,
    ) -> SyncSite {
        SyncSite {
            primitive,
            function: self.function.name.to_owned(),
            probe,
            file_offset: 0,
            timing,
            object,
            outcome,
            atomic,
            anchor: self.anchor().ip(),
            after_map_call: None,
        }
    }

    /// Lock (CAS) and RLock (XADD): probe the next instruction, where the base register still
    /// holds the address (neither instruction writes it) and the result is known.
    fn acquire_after(
        &self,
        mnemonic: Mnemonic,
        primitive: Primitive,
        field: i64,
    ) -> Option<SyncSite> {
        let index = self.atomic_before_anchor(mnemonic)?;
        let atomic = &self.function.instructions[index];
        let next = self.function.instructions.get(index + 1)?;
        let address = memory_address(atomic)?;
        let base = match address {
            AddressExpr::Register { base, .. } => Some(base),
            _ => None,
        };
        let outcome = match mnemonic {
            // CMPXCHG writes EAX on failure: the base must be another register.
            Mnemonic::Cmpxchg if base == Some(Reg::Rax) => return None,
            Mnemonic::Cmpxchg => Outcome::ZeroFlag,
            _ => Outcome::Register(Reg::of(atomic.op1_register())?),
        };
        if base.is_some() && Reg::of(atomic.op1_register()) == base {
            return None; // XADD would overwrite the base with the old value
        }
        let object = address.plus(-field);
        Some(self.build(
            primitive,
            next.ip(),
            Timing::After,
            object,
            outcome,
            atomic.ip(),
        ))
    }

    /// Unlock and RUnlock (XADD): probe the instruction just before the atomic, which must fall
    /// through into it (no branch lands on the atomic), and express the base register as it
    /// will be after that instruction.
    fn release_before(&self, primitive: Primitive, field: i64) -> Option<SyncSite> {
        let index = self.atomic_before_anchor(Mnemonic::Xadd)?;
        self.release_at(index, primitive, field, &HashSet::new())
    }

    /// A release probed before the atomic instruction at `index`, and after every probe in
    /// `acquires` (another operation's acquire, probed after its own atomic instruction: two
    /// probes on one instruction fire in no defined order, and the release must come after).
    fn release_at(
        &self,
        index: usize,
        primitive: Primitive,
        field: i64,
        acquires: &HashSet<u64>,
    ) -> Option<SyncSite> {
        let atomic = &self.function.instructions[index];
        if self.function.branch_targets.contains(&atomic.ip()) {
            return None;
        }
        let mut object = memory_address(atomic)?.plus(-field);
        // Walk back through the straight-line instructions before the atomic, keeping the
        // object's address as an expression in the registers before each one. The first
        // instruction is the fallback probe; one the kernel emulates further back (the inline
        // mark's NOP, a prologue's PUSH) is better: most others must be single-stepped. Nothing
        // on the way writes memory through the object's expression, calls or branches, so the
        // release is recorded with nothing of the goroutine's in between — but for a call of a
        // map function, whose map event comes next and before the release takes effect.
        let mut chosen = None;
        for probe_index in (index.saturating_sub(RELEASE_PROBE_WINDOW)..index).rev() {
            let probe = &self.function.instructions[probe_index];
            if probe.has_lock_prefix() || acquires.contains(&probe.ip()) {
                break;
            }
            if probe.flow_control() == FlowControl::Call {
                if let Some(callee) = self.map_call(probe, object) {
                    chosen = Some((probe.ip(), object, Some(callee)));
                }
                break;
            }
            if probe.flow_control() != FlowControl::Next {
                break;
            }
            let Some(before) = before(probe, object) else {
                break;
            };
            object = before;
            let emulated = disasm::kernel_emulates(self.function.bytes_from(probe.ip()));
            if chosen.is_none() || emulated {
                chosen = Some((probe.ip(), object, None));
            }
            if emulated || self.function.branch_targets.contains(&probe.ip()) {
                break;
            }
        }
        let (probe, object, after_map_call) = chosen?;
        Some(SyncSite {
            after_map_call,
            ..self.build(
                primitive,
                probe,
                Timing::Before,
                object,
                Outcome::Always,
                atomic.ip(),
            )
        })
    }

    /// The map function `call` calls, if a release whose object is `object` right after the
    /// call can be probed on it: a direct call of a function whose entry records a map event,
    /// and an object the callee cannot move — a global, or an address on or loaded from the
    /// caller's frame above the callee's argument spill slots (every other register is the
    /// callee's to clobber).
    fn map_call(&self, call: &Instruction, object: AddressExpr) -> Option<u64> {
        let callee = call.near_branch_target();
        let is_map_function = call.code() == Code::Call_rel32_64
            && self
                .function
                .map_functions
                .is_some_and(|functions| functions.contains(&callee));
        let survives = match object {
            AddressExpr::Static { .. } | AddressExpr::Register { base: Reg::Rsp, .. } => true,
            AddressExpr::Load { base, at, .. } | AddressExpr::LoadTwice { base, at, .. } => {
                base == Reg::Rsp && at >= MAP_CALL_SPILL_BYTES
            }
            AddressExpr::Register { .. } => false,
        };
        (is_map_function && survives).then_some(callee)
    }

    /// Once.Do: the plain load of `done` (no LOCK prefix) whose zero result leads to the
    /// `doSlow` call; probed after the load, where the loaded value is known.
    fn once_load(&self) -> Option<SyncSite> {
        let start = self.anchor_index.saturating_sub(FAST_PATH_WINDOW);
        let index = (start..self.anchor_index).rev().find(|&i| {
            let instruction = &self.function.instructions[i];
            is_flag_load(instruction)
                && memory_address(instruction).is_some_and(|address| {
                    !matches!(address, AddressExpr::Register { base: Reg::Rsp, .. })
                })
        })?;
        let load = &self.function.instructions[index];
        let next = self.function.instructions.get(index + 1)?;
        let address = memory_address(load)?;
        let outcome = if load.mnemonic() == Mnemonic::Cmp {
            Outcome::ZeroFlag
        } else {
            let destination = Reg::of(load.op0_register())?;
            if matches!(address, AddressExpr::Register { base, .. } if base == destination) {
                return None; // the load overwrote its own base
            }
            Outcome::Register(destination)
        };
        let object = address.plus(-ONCE_DONE);
        Some(self.build(
            Primitive::OnceDo,
            next.ip(),
            Timing::After,
            object,
            outcome,
            load.ip(),
        ))
    }

    /// WaitGroup.Done is `Add(-1)`: a call to `Add` with BX set to -1 just before it. Add's own
    /// entry probe sees it; the site is listed so the plan shows every Done.
    fn wait_group_done(&self) -> Option<SyncSite> {
        let start = self.anchor_index.saturating_sub(4);
        let sets_minus_one = self.function.instructions[start..self.anchor_index]
            .iter()
            .any(|i| {
                matches!(
                    i.code(),
                    Code::Mov_rm64_imm32 | Code::Mov_r64_imm64 | Code::Mov_r32_imm32
                ) && i.op0_register().full_register() == Register::RBX
                    && i.immediate64() as i64 as i32 == -1
            });
        if !sets_minus_one {
            return None;
        }
        let call = self.anchor();
        Some(self.build(
            Primitive::WaitGroupDone,
            call.ip(),
            Timing::AtCall,
            AddressExpr::Register {
                base: Reg::Rax,
                offset: 0,
            },
            Outcome::Always,
            call.ip(),
        ))
    }

    /// The acquire of an atomic read at `index`, probed on the next instruction: the word's
    /// address must still be computable there, so if the instruction overwrote its base
    /// register (a `MOVQ (DX), DX` or an `XADD` into its base), through where that base was
    /// loaded from ([`SiteContext::address_after_overwrite`]).
    fn atomic_acquire(&self, index: usize) -> Option<SyncSite> {
        let atomic = &self.function.instructions[index];
        let mut object = memory_address(atomic)?;
        if let AddressExpr::Register { base, offset } = object {
            let written = match atomic.mnemonic() {
                Mnemonic::Cmpxchg => Some(Reg::Rax),
                Mnemonic::Mov | Mnemonic::Movzx => Reg::of(atomic.op0_register()),
                _ => Reg::of(atomic.op1_register()),
            };
            if written == Some(base) {
                object = self.address_after_overwrite(index, base, offset)?;
            }
        }
        self.acquire_after_read(index, object)
    }

    /// An acquire on `object`, probed on the instruction after the atomic read at `index`.
    fn acquire_after_read(&self, index: usize, object: AddressExpr) -> Option<SyncSite> {
        let next = self.function.instructions.get(index + 1)?;
        Some(self.build(
            Primitive::AtomicAcquire,
            next.ip(),
            Timing::After,
            object,
            Outcome::Always,
            self.function.instructions[index].ip(),
        ))
    }

    /// The address `base + offset` that the atomic at `index` reads, after that atomic has
    /// overwritten `base` (`MOVQ 0x10(DX), DX`, an `XADD` into its base), when `base` was
    /// loaded from memory a few instructions before: from a stack slot or a pointer field
    /// (`MOVQ 0x8(R9), DX`: the word is at `*(R9 + 8) + 0x10` after the atomic), or from a
    /// pointer field of a pointer itself just loaded (`MOVQ 0x30(SP), CX; MOVQ 0x8(CX), CX;
    /// MOVQ 0x10(CX), CX`: at `*(*(RSP + 0x30) + 8) + 0x10`). Only on a straight line that no
    /// path joins, where nothing writes the registers or memory the expression reads.
    fn address_after_overwrite(&self, index: usize, base: Reg, offset: i64) -> Option<AddressExpr> {
        let (first, source, at) = self.pointer_load_before(index, base)?;
        if source != base {
            return self
                .unchanged_until(first, index, source, at)
                .then_some(AddressExpr::Load {
                    base: source,
                    at,
                    offset,
                });
        }
        let (second, outer, outer_at) = self.pointer_load_before(first, source)?;
        (outer != source && self.unchanged_until(second, index, outer, outer_at)).then_some(
            AddressExpr::LoadTwice {
                base: outer,
                at: outer_at,
                then: at,
                offset,
            },
        )
    }

    /// The closest instruction before `index` that writes `register`, within a few straight-line
    /// instructions, if it loads a pointer from `source + at`: (its index, source, at).
    fn pointer_load_before(&self, index: usize, register: Reg) -> Option<(usize, Reg, i64)> {
        const LOOK_BACK: usize = 8;
        let instructions = &self.function.instructions;
        let mut factory = InstructionInfoFactory::new();
        for position in (index.saturating_sub(LOOK_BACK)..index).rev() {
            let instruction = &instructions[position];
            if !falls_through(instruction) {
                return None;
            }
            if !writes_register(&mut factory, instruction, register) {
                continue;
            }
            if instruction.code() != Code::Mov_r64_rm64 {
                return None;
            }
            return match memory_address(instruction)? {
                AddressExpr::Register { base, offset } => Some((position, base, offset)),
                _ => None,
            };
        }
        None
    }

    /// Whether `*(source + at)`, read by the instruction at `from`, still holds the same pointer
    /// after the atomic at `to`: no path joins in between, nothing writes `source`, and no
    /// store could reach the slot (any store but one to the stack could, for a stack slot one
    /// that overlaps it) — but the atomic's own, which writes the object the pointer leads to.
    fn unchanged_until(&self, from: usize, to: usize, source: Reg, at: i64) -> bool {
        let mut factory = InstructionInfoFactory::new();
        self.function.instructions[from + 1..=to]
            .iter()
            .enumerate()
            .all(|(position, instruction)| {
                let stores = from + 1 + position != to
                    && instruction.op_count() > 0
                    && instruction.op0_kind() == OpKind::Memory;
                let may_alias = stores
                    && match instruction.memory_base().full_register() {
                        Register::RSP => {
                            let store_at = instruction.memory_displacement64() as i64;
                            source == Reg::Rsp && (store_at - at).abs() < 8
                        }
                        _ => true,
                    };
                !self.function.branch_targets.contains(&instruction.ip())
                    && falls_through(instruction)
                    && !may_alias
                    && !writes_register(&mut factory, instruction, source)
            })
    }

    /// An acquire is first placed right after its atomic instruction, usually on one the kernel
    /// must single-step (`SETE`, `TESTL`: about 6 µs a hit in a VM, against under 1 µs for one
    /// it emulates). This moves the probe forward through the straight line that follows to the
    /// first instruction the kernel emulates — typically the conditional jump on the outcome —
    /// if no other path joins on the way and nothing on the way changes what the probe reads:
    /// the object's registers (or, for a loaded base, memory), the outcome register, or ZF
    /// before a `SETE` has kept it in a register. Otherwise the site stays as it is.
    fn emulated_probe(&self, site: SyncSite) -> SyncSite {
        let (code, address) = (self.function.code, self.function.address);
        if site.timing != Timing::After {
            return site;
        }
        let Some(start) = self
            .function
            .instructions
            .iter()
            .position(|instruction| instruction.ip() == site.probe)
        else {
            return site;
        };
        let object_registers: Vec<Reg> = match site.object {
            AddressExpr::Register { base, .. }
            | AddressExpr::Load { base, .. }
            | AddressExpr::LoadTwice { base, .. } => vec![base],
            AddressExpr::Static { .. } => Vec::new(),
        };
        let loaded = matches!(
            site.object,
            AddressExpr::Load { .. } | AddressExpr::LoadTwice { .. }
        );
        let mut outcome = site.outcome;
        let mut factory = InstructionInfoFactory::new();
        for instruction in self
            .function
            .instructions
            .iter()
            .skip(start)
            .take(ACQUIRE_PROBE_WINDOW)
        {
            let joined = instruction.ip() != site.probe
                && self.function.branch_targets.contains(&instruction.ip());
            if joined {
                break;
            }
            let bytes = instruction
                .ip()
                .checked_sub(address)
                .and_then(|offset| code.get(offset as usize..));
            if bytes.is_some_and(disasm::kernel_emulates) {
                return SyncSite {
                    probe: instruction.ip(),
                    outcome,
                    ..site
                };
            }
            if instruction.flow_control() != FlowControl::Next
                || instruction.has_lock_prefix()
                || instruction.mnemonic() == Mnemonic::Xchg
            {
                break;
            }
            let info = factory.info(instruction);
            let written: Vec<Reg> = info
                .used_registers()
                .iter()
                .filter(|used| writes(used.access()))
                .filter_map(|used| Reg::of(used.register()))
                .collect();
            let writes_memory = info.used_memory().iter().any(|used| writes(used.access()));
            if object_registers.iter().any(|reg| written.contains(reg)) || (loaded && writes_memory)
            {
                break;
            }
            outcome = match outcome {
                Outcome::ZeroFlag if instruction.mnemonic() == Mnemonic::Sete => {
                    let register = instruction.op0_register();
                    let high_byte = matches!(
                        register,
                        Register::AH | Register::BH | Register::CH | Register::DH
                    );
                    match (instruction.op0_kind(), Reg::of(register)) {
                        (OpKind::Register, Some(reg)) if !high_byte => Outcome::ZeroFlagIn(reg),
                        _ => break,
                    }
                }
                Outcome::ZeroFlag if instruction.rflags_modified() & RflagsBits::ZF != 0 => break,
                // RLock's `INCL CX` after `XADDL CX, readerCount` (Go tests `Add(1) < 0`): the
                // count before and after have the same sign in every state a RWMutex can be in.
                Outcome::Register(reg)
                    if site.primitive == Primitive::RwMutexRLock
                        && instruction.mnemonic() == Mnemonic::Inc
                        && instruction.op0_kind() == OpKind::Register
                        && Reg::of(instruction.op0_register()) == Some(reg) =>
                {
                    Outcome::Register(reg)
                }
                Outcome::Register(reg) | Outcome::ZeroFlagIn(reg) if written.contains(&reg) => {
                    break
                }
                unchanged => unchanged,
            };
        }
        site
    }
}

/// The stores of `done = 1` in `sync.(*Once).doSlow` and the deferred calls it makes: an
/// `XCHG` to memory (Go's atomic store), probed before it like a release.
pub fn once_done_stores(function: &FunctionCode<'_>) -> Vec<SyncSite> {
    if !function.name.starts_with("sync.(*Once).doSlow") {
        return Vec::new();
    }
    let instructions = &function.instructions;
    (0..instructions.len())
        .filter(|&index| {
            let instruction = &instructions[index];
            instruction.mnemonic() == Mnemonic::Xchg
                && instruction.op0_kind() == OpKind::Memory
                && matches!(instruction.memory_size().size(), 1 | 4)
        })
        .filter_map(|index| {
            let context = SiteContext {
                function,
                anchor_index: index,
            };
            context.release_at(index, Primitive::OnceDone, ONCE_DONE, &HashSet::new())
        })
        .collect()
}

/// The runtime functions that use one of the runtime's own maps under a runtime lock
/// (`reflectOffs.m` and `minv` under `reflectOffs.lock`: types made by `reflect.StructOf`,
/// `FuncOf`…; from Go 1.27 `moduleToTypelinks` under its lock). Those maps go through the map
/// functions tracer probes, while `lock`/`unlock` (`lock2`/`unlock2`) are probed nowhere else
/// (every channel operation takes a runtime lock); -race annotates these two locks.
pub const RUNTIME_LOCKED_MAPS: [&str; 5] = [
    "reflect.addReflectOff",
    "runtime.resolveNameOff",
    "runtime.resolveTypeOff",
    "runtime.rtype.textOff",
    "runtime.moduleTypelinks",
];

/// In one of [`RUNTIME_LOCKED_MAPS`]: each call of `lock2` (`lock`) or `unlock2` (`unlock`) on a
/// global lock, whose address the last instruction before the call but alignment NOPs loads
/// (`LEAQ lock(SB), AX`). The lock is acquired where `lock2` returns and released on the `CALL`
/// of `unlock2`, like an atomic's acquire and release on the lock's word.
pub fn runtime_lock_sites(function: &FunctionCode<'_>, lock: u64, unlock: u64) -> Vec<SyncSite> {
    if !RUNTIME_LOCKED_MAPS.contains(&function.name) {
        return Vec::new();
    }
    let instructions = &function.instructions;
    (1..instructions.len())
        .filter_map(|index| {
            let call = &instructions[index];
            if call.flow_control() != FlowControl::Call {
                return None;
            }
            let (primitive, probe, timing) = match call.near_branch_target() {
                target if target == lock => {
                    (Primitive::AtomicAcquire, call.next_ip(), Timing::After)
                }
                target if target == unlock => (Primitive::AtomicRelease, call.ip(), Timing::Before),
                _ => return None,
            };
            let load = instructions[..index]
                .iter()
                .rev()
                .find(|instruction| instruction.mnemonic() != Mnemonic::Nop)?;
            let global = (load.mnemonic() == Mnemonic::Lea
                && load.op0_register() == Register::RAX
                && load.is_ip_rel_memory_operand())
            .then(|| load.ip_rel_memory_address())?;
            Some(SyncSite {
                primitive,
                function: function.name.to_owned(),
                probe,
                file_offset: 0,
                timing,
                object: AddressExpr::Static { address: global },
                outcome: Outcome::Always,
                atomic: call.ip(),
                anchor: call.ip(),
                after_map_call: None,
            })
        })
        .collect()
}

/// Every address a jump or conditional jump of the function lands on.
fn branch_targets(instructions: &[Instruction]) -> HashSet<u64> {
    instructions
        .iter()
        .filter(|i| i.is_jcc_short_or_near() || i.is_jmp_short_or_near())
        .map(Instruction::near_branch_target)
        .collect()
}

/// The primitive an inlined sync method performs, from its name in the inline tree.
fn inlined_primitive(callee: &str) -> Option<Primitive> {
    let method = callee
        .strip_prefix("sync.")
        .or_else(|| callee.strip_prefix("internal/sync."))?;
    Some(match method {
        "(*Mutex).Lock" => Primitive::MutexLock,
        "(*Mutex).Unlock" => Primitive::MutexUnlock,
        "(*Mutex).TryLock" => Primitive::MutexTryLock,
        "(*RWMutex).RLock" => Primitive::RwMutexRLock,
        "(*RWMutex).RUnlock" => Primitive::RwMutexRUnlock,
        "(*Once).Do" => Primitive::OnceDo,
        "(*WaitGroup).Done" => Primitive::WaitGroupDone,
        _ => return None,
    })
}

/// Checks the decoded sites of one function against its inline tree, which lists every sync
/// method the compiler inlined there: `TryLock` (which has no slow path to anchor on) becomes a
/// site through its CAS, and any other inlined method without a decoded site is returned as
/// unconfirmed (the call site's PC) so that a gap is reported instead of missed.
pub fn reconcile_with_inline_tree(
    function: &FunctionCode<'_>,
    calls: &[InlinedCall],
    sites: &mut Vec<SyncSite>,
) -> Vec<u64> {
    let mut unconfirmed = Vec::new();
    for (index, call) in calls.iter().enumerate() {
        let Some(primitive) = inlined_primitive(&call.callee) else {
            continue;
        };
        // 1.24+ inline sync.(*Mutex).Lock → internal/sync.(*Mutex).Lock: the outer one counts.
        let nested = call
            .parent
            .and_then(|parent| calls.get(parent))
            .is_some_and(|parent| inlined_primitive(&parent.callee).is_some());
        if nested {
            continue;
        }
        let ranges = subtree_ranges(calls, index);
        let inside = |pc: u64| ranges.iter().any(|range| range.contains(&pc));
        let covered = sites.iter().any(|site| {
            site.primitive == primitive && (inside(site.anchor) || inside(site.atomic))
        });
        if covered {
            continue;
        }
        let try_lock = (primitive == Primitive::MutexTryLock)
            .then(|| try_lock_site(function, &ranges))
            .flatten();
        match try_lock {
            Some(site) => sites.push(site),
            None => unconfirmed.push(call.call_pc),
        }
    }
    unconfirmed
}

/// What an inlined typed `sync/atomic` method does to its word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AtomicAccess {
    Load,
    Store,
    /// Read-modify-write: Swap, CompareAndSwap, Add, And, Or.
    Update,
}

/// The access of an inlined typed atomic method, from its name in the inline tree. `Value`'s
/// methods and `Pointer`'s writes are calls (to `atomic.Value` methods and to
/// `sync/atomic.StorePointer`…), probed out of line.
fn inlined_atomic(callee: &str) -> Option<AtomicAccess> {
    let (type_name, method) = callee.strip_prefix("sync/atomic.(*")?.split_once(").")?;
    let pointer = type_name.starts_with("Pointer[");
    let integer = matches!(
        type_name,
        "Int32" | "Int64" | "Uint32" | "Uint64" | "Uintptr" | "Bool"
    );
    Some(match method {
        "Load" if integer || pointer => AtomicAccess::Load,
        "Store" if integer => AtomicAccess::Store,
        "Swap" | "CompareAndSwap" | "Add" | "And" | "Or" if integer => AtomicAccess::Update,
        _ => return None,
    })
}

/// The inlined typed atomic operations of one function (found through its inline tree, then
/// decoded): a release before each write, an acquire after each read, both for
/// read-modify-writes, on the atomic word's address. Operations that cannot be decoded are
/// returned as unconfirmed (the call site's PC).
pub fn atomic_sites(
    function: &FunctionCode<'_>,
    calls: &[InlinedCall],
) -> (Vec<SyncSite>, Vec<u64>) {
    if is_synchronisation_internal(function.name) {
        return (Vec::new(), Vec::new());
    }
    let inside_sync_method = |mut index: usize| {
        while let Some(parent) = calls[index].parent {
            if is_synchronisation_internal(&calls[parent].callee) {
                return true;
            }
            index = parent;
        }
        false
    };
    let mut atomic_calls: Vec<(usize, AtomicAccess)> = (0..calls.len())
        .filter(|&index| !inside_sync_method(index))
        .filter_map(|index| Some((index, inlined_atomic(&calls[index].callee)?)))
        .collect();
    // The compiler sometimes drops an atomic's inline mark in one instance of its caller
    // (`sync.(*Map).loadReadOnly` inlined twice into `Map.Load`, only one showing its
    // `atomic.Pointer.Load`): instances of a caller seen with an atomic child elsewhere in the
    // function perform it too.
    let wrappers: HashMap<&str, AtomicAccess> = atomic_calls
        .iter()
        .filter_map(|&(index, access)| Some((calls[calls[index].parent?].callee.as_str(), access)))
        .collect();
    let has_atomic_child = |index: usize| {
        atomic_calls
            .iter()
            .any(|&(child, _)| calls[child].parent == Some(index))
    };
    let bare: Vec<(usize, AtomicAccess)> = (0..calls.len())
        .filter(|&index| !inside_sync_method(index) && !has_atomic_child(index))
        .filter_map(|index| Some((index, *wrappers.get(calls[index].callee.as_str())?)))
        .collect();
    atomic_calls.extend(bare);
    if atomic_calls.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let instructions = &function.instructions;
    let mut sites = Vec::new();
    let mut unconfirmed = Vec::new();
    for (call, access) in atomic_calls {
        let ranges = subtree_ranges(calls, call);
        let inside = |instruction: &Instruction| {
            ranges.iter().any(|range| range.contains(&instruction.ip()))
        };
        let is_atomic = |instruction: &Instruction| match access {
            AtomicAccess::Load => is_atomic_load(instruction),
            AtomicAccess::Store => {
                instruction.mnemonic() == Mnemonic::Xchg && instruction.op0_kind() == OpKind::Memory
            }
            AtomicAccess::Update => {
                instruction.op0_kind() == OpKind::Memory
                    && (instruction.has_lock_prefix() || instruction.mnemonic() == Mnemonic::Xchg)
            }
        };
        // The intrinsic's instruction is sometimes attributed to the method's caller: then
        // look in the caller's own instructions.
        let in_parent = |instruction: &Instruction| {
            calls[call].parent.is_some_and(|parent| {
                calls[parent]
                    .ranges
                    .iter()
                    .any(|range| range.contains(&instruction.ip()))
            })
        };
        let find = |within: &dyn Fn(&Instruction) -> bool| {
            (0..instructions.len())
                .find(|&index| within(&instructions[index]) && is_atomic(&instructions[index]))
        };
        // Or to the statement that calls it, right after the call site's first instruction.
        let call_pc = calls[call].call_pc;
        let near_call = |instruction: &Instruction| {
            let position = instructions.partition_point(|i| i.ip() < call_pc);
            instructions
                .get(position..position + NEAR_CALL_WINDOW)
                .is_some_and(|window| window.iter().any(|i| i.ip() == instruction.ip()))
        };
        let Some(index) = find(&inside)
            .or_else(|| find(&in_parent))
            .or_else(|| find(&near_call))
        else {
            unconfirmed.push(call_pc);
            continue;
        };
        let context = SiteContext {
            function,
            anchor_index: index,
        };
        let release = (access != AtomicAccess::Load)
            .then(|| context.release_at(index, Primitive::AtomicRelease, 0, &HashSet::new()));
        let acquire = (access != AtomicAccess::Store).then(|| context.atomic_acquire(index));
        for site in [release, acquire].into_iter().flatten() {
            match site {
                Some(site) => sites.push(context.emulated_probe(site)),
                None => unconfirmed.push(calls[call].call_pc),
            }
        }
    }
    (sites, unconfirmed)
}

/// Acquires after the loads of typed atomic words that DWARF finds in the function and no site
/// covers yet (`known`: the atomic instructions already probed): a plain load from a word's
/// offset of a register that points at its struct — a pointer variable in that register, or
/// reloaded into it from the variable's stack slot, or loaded from a pointer field on the way
/// (`s.cfg.table.Load()`). `stack_depths` (from `pcsp`) places the slots. See `typed_atomics`
/// for why the inline tree is not enough.
pub fn typed_field_loads(
    function: &FunctionCode<'_>,
    variables: &[PointerVariable],
    layouts: &[Layout],
    stack_depths: &[(std::ops::Range<u64>, i64)],
    known: &HashSet<u64>,
) -> Vec<SyncSite> {
    // The compiler's equality functions (`type:.eq.T`) compare the words as plain data; the
    // sync package's own atomics implement what the catalogue models (sync.Map's entries).
    let generated = function.name.starts_with("type:") || function.name.starts_with("type..");
    let sync_package = function.name.starts_with("sync.");
    if variables.is_empty()
        || generated
        || sync_package
        || is_synchronisation_internal(function.name)
    {
        return Vec::new();
    }
    let mut factory = InstructionInfoFactory::new();
    // Registers that hold a pointer loaded from a typed field or reloaded from a variable's
    // slot, valid until written or until another path joins (a branch target) or a call
    // clobbers every register.
    let mut loaded: HashMap<Reg, usize> = HashMap::new();
    let mut sites = Vec::new();
    for (index, instruction) in function.instructions.iter().enumerate() {
        let ip = instruction.ip();
        if function.branch_targets.contains(&ip) {
            loaded.clear();
        }
        let live_in = |home: Home| {
            variables
                .iter()
                .find(|variable| variable.home == home && variable.pcs.contains(&ip))
                .map(|variable| variable.layout)
        };
        let destination = Reg::of(instruction.op0_register());
        let mut now_holds = None;
        if is_stack_reload(instruction) {
            // The frame address is `RSP + depth + 8` (the return address sits below it).
            let depth = stack_depths
                .iter()
                .find(|(pcs, _)| pcs.contains(&ip))
                .map(|&(_, depth)| depth);
            let slot = depth.map(|depth| instruction.memory_displacement64() as i64 - depth - 8);
            now_holds = slot
                .and_then(|slot| live_in(Home::Frame(slot)))
                .zip(destination)
                .map(|(layout, register)| (register, layout));
        } else if is_atomic_load(instruction) {
            if let Some(AddressExpr::Register { base, offset }) = memory_address(instruction) {
                let pointed = live_in(Home::Register(base)).or_else(|| loaded.get(&base).copied());
                if let Some(layout) = pointed.map(|layout| &layouts[layout]) {
                    let atomic_load = layout.words.contains(&offset)
                        && !known.contains(&ip)
                        && !feeds_write_barrier(&function.instructions[index..]);
                    if atomic_load {
                        let context = SiteContext {
                            function,
                            anchor_index: index,
                        };
                        if let Some(site) = context.atomic_acquire(index) {
                            sites.push(context.emulated_probe(site));
                        }
                    }
                    let target = layout.pointers.iter().find(|(at, _)| *at == offset);
                    now_holds = target
                        .zip(destination)
                        .map(|(&(_, to), register)| (register, to));
                }
            }
        }
        if instruction.flow_control() == FlowControl::Call {
            loaded.clear();
        }
        loaded.retain(|&register, _| !writes_register(&mut factory, instruction, register));
        if let Some((register, layout)) = now_holds {
            loaded.insert(register, layout);
        }
    }
    sites
}

/// Whether the load that starts `code` reads the old value of a pointer slot for the garbage
/// collector's write barrier (`MOVQ 0x10(AX), CX; CALL runtime.gcWriteBarrier1; MOVQ CX,
/// 0(R11)`: the value goes to the barrier's buffer), not for the program.
fn feeds_write_barrier(code: &[Instruction]) -> bool {
    let loaded = code[0].op0_register();
    let Some(call) = code
        .iter()
        .take(4)
        .position(|instruction| instruction.flow_control() == FlowControl::Call)
    else {
        return false;
    };
    code.iter().skip(call + 1).take(4).any(|instruction| {
        instruction.mnemonic() == Mnemonic::Mov
            && instruction.op0_kind() == OpKind::Memory
            && instruction.memory_base() == Register::R11
            && instruction.op1_kind() == OpKind::Register
            && instruction.op1_register() == loaded
    })
}

/// Whether the straight line goes on after `instruction` (a conditional branch's fall-through
/// path included): registers and memory stay as it leaves them.
fn falls_through(instruction: &Instruction) -> bool {
    matches!(
        instruction.flow_control(),
        FlowControl::Next | FlowControl::ConditionalBranch
    )
}

/// Whether `instruction` writes (any part of) `register`.
fn writes_register(
    factory: &mut InstructionInfoFactory,
    instruction: &Instruction,
    register: Reg,
) -> bool {
    writes_any(factory, instruction, &[register])
}

/// Whether `instruction` writes (any part of) any of `registers`.
pub(crate) fn writes_any(
    factory: &mut InstructionInfoFactory,
    instruction: &Instruction,
    registers: &[Reg],
) -> bool {
    info_writes_any(factory.info(instruction), registers)
}

/// [`writes_any`] for an instruction already described by `info`.
pub(crate) fn info_writes_any(info: &InstructionInfo, registers: &[Reg]) -> bool {
    info.used_registers().iter().any(|used| {
        Reg::of(used.register()).is_some_and(|register| registers.contains(&register))
            && !matches!(used.access(), OpAccess::Read | OpAccess::CondRead)
    })
}

/// A 64-bit load of a stack slot into a register (`MOVQ 0x30(SP), R9`).
fn is_stack_reload(instruction: &Instruction) -> bool {
    instruction.mnemonic() == Mnemonic::Mov
        && instruction.op_count() == 2
        && instruction.op0_kind() == OpKind::Register
        && instruction.op0_register().size() == 8
        && instruction.op1_kind() == OpKind::Memory
        && instruction.memory_base() == Register::RSP
        && instruction.memory_index() == Register::None
}

/// The field of its object a release's atomic instruction writes.
fn released_field(primitive: Primitive) -> i64 {
    match primitive {
        Primitive::MutexUnlock => MUTEX_STATE,
        Primitive::RwMutexRUnlock => RWMUTEX_READER_COUNT,
        Primitive::OnceDone => ONCE_DONE,
        _ => 0,
    }
}

/// Whether `instruction` is a `LOCK <mnemonic>` on a 32-bit word in memory: the state words of
/// the sync package's types.
fn is_locked_32(instruction: &Instruction, mnemonic: Mnemonic) -> bool {
    instruction.has_lock_prefix()
        && instruction.mnemonic() == mnemonic
        && instruction.op0_kind() == OpKind::Memory
        && instruction.memory_size().size() == 4
}

/// The out-of-line `RWMutex.Lock` whose reader checks [`rwmutex_reader_checks`] finds.
pub const RWMUTEX_LOCK: &str = "sync.(*RWMutex).Lock";

/// `RWMutex.Lock`'s reader checks ([`Primitive::RwMutexReadersChecked`]): after its atomic
/// on the reader count (`readerCount.Add(-rwmutexMaxReaders)`: no reader can enter after it,
/// and none is left if it found none) and after the one on the count of readers still to leave
/// (`readerWait.Add(r)`: the rest have left if it reaches 0), each on the first instruction the
/// kernel emulates after it. Together with the inlined `w.Lock()` and the return of
/// `runtime_SemacquireRWMutex` (a writer woken by the last reader to leave), they record what
/// the `RET` of Lock did, which the kernel must single-step. Both or none.
pub fn rwmutex_reader_checks(function: &FunctionCode<'_>) -> Vec<SyncSite> {
    if function.name != RWMUTEX_LOCK {
        return Vec::new();
    }
    let instructions = &function.instructions;
    let check = |field: i64| {
        let (index, base) = instructions
            .iter()
            .enumerate()
            .find_map(|(index, instruction)| match memory_address(instruction) {
                Some(AddressExpr::Register { base, offset })
                    if offset == field && is_locked_32(instruction, Mnemonic::Xadd) =>
                {
                    Some((index, base))
                }
                _ => None,
            })?;
        let atomic = &instructions[index];
        if Reg::of(atomic.op1_register()) == Some(base) {
            return None; // XADD would overwrite the RWMutex's address with the old count
        }
        let next = instructions.get(index + 1)?;
        let context = SiteContext {
            function,
            anchor_index: index,
        };
        let site = context.build(
            Primitive::RwMutexReadersChecked,
            next.ip(),
            Timing::After,
            AddressExpr::Register { base, offset: 0 },
            Outcome::Always,
            atomic.ip(),
        );
        Some(context.emulated_probe(site))
    };
    match (check(RWMUTEX_READER_COUNT), check(RWMUTEX_READER_WAIT)) {
        (Some(count), Some(wait)) => vec![count, wait],
        _ => Vec::new(),
    }
}

/// Moves every release probe that shares its instruction with an acquire probe (an atomic
/// followed at once by the next operation's inline mark) after it; a release that cannot move
/// is removed and returned as unconfirmed (its atomic's PC).
pub fn order_releases_after_acquires(
    function: &FunctionCode<'_>,
    sites: &mut Vec<SyncSite>,
) -> Vec<u64> {
    let acquires: HashSet<u64> = sites
        .iter()
        .filter(|site| site.timing == Timing::After)
        .map(|site| site.probe)
        .collect();
    let clashes = |site: &SyncSite| site.timing == Timing::Before && acquires.contains(&site.probe);
    if !sites.iter().any(clashes) {
        return Vec::new();
    }
    let instructions = &function.instructions;
    let mut unconfirmed = Vec::new();
    let mut kept = Vec::with_capacity(sites.len());
    for site in sites.drain(..) {
        if !clashes(&site) {
            kept.push(site);
            continue;
        }
        let moved = instructions
            .iter()
            .position(|instruction| instruction.ip() == site.atomic)
            .and_then(|index| {
                let context = SiteContext {
                    function,
                    anchor_index: index,
                };
                let field = released_field(site.primitive);
                let moved = context.release_at(index, site.primitive, field, &acquires)?;
                Some(SyncSite {
                    anchor: site.anchor,
                    ..moved
                })
            });
        match moved {
            Some(moved) => kept.push(moved),
            None => unconfirmed.push(site.atomic),
        }
    }
    *sites = kept;
    unconfirmed
}

/// Whether a function implements a primitive tracer models directly, or the runtime: their own
/// atomics (an RWMutex's reader count is an `atomic.Int32`) are not publication, and treating
/// them as such would order goroutines that `-race` leaves unordered. `sync.Map`, by contrast,
/// publishes its read-only map through an `atomic.Pointer`: its atomics count.
fn is_synchronisation_internal(function: &str) -> bool {
    [
        "runtime.",
        "internal/",
        "sync/atomic.",
        "sync.(*Mutex)",
        "sync.(*RWMutex)",
        "sync.(*WaitGroup)",
        "sync.(*Once)",
        "sync.(*Pool)",
        "sync.(*Cond)",
        "sync.runtime_",
        "sync.(*poolChain)",
        "sync.(*poolDequeue)",
    ]
    .iter()
    .any(|prefix| function.starts_with(prefix))
}

/// How many instructions from an inlined atomic's call site its instruction may be, when the
/// compiler attributed it to the calling statement.
const NEAR_CALL_WINDOW: usize = 8;

/// A plain load of an atomic word (not a stack slot): Go's atomic loads are ordinary `MOV`s.
fn is_atomic_load(instruction: &Instruction) -> bool {
    matches!(instruction.mnemonic(), Mnemonic::Mov | Mnemonic::Movzx)
        && instruction.op_count() == 2
        && instruction.op0_kind() == OpKind::Register
        && instruction.op1_kind() == OpKind::Memory
        && instruction.memory_base().full_register() != Register::RSP
}

/// The PCs of an inlined call and of everything inlined into it.
fn subtree_ranges(calls: &[InlinedCall], root: usize) -> Vec<std::ops::Range<u64>> {
    let descends_from_root = |mut index: usize| {
        for _ in 0..calls.len() {
            if index == root {
                return true;
            }
            match calls[index].parent {
                Some(parent) => index = parent,
                None => return false,
            }
        }
        false
    };
    (0..calls.len())
        .filter(|&index| descends_from_root(index))
        .flat_map(|index| calls[index].ranges.iter().cloned())
        .collect()
}

/// TryLock's `LOCK CMPXCHGL` inside its inlined ranges, probed after it like Lock's.
fn try_lock_site(function: &FunctionCode<'_>, ranges: &[std::ops::Range<u64>]) -> Option<SyncSite> {
    let instructions = &function.instructions;
    let index = instructions.iter().position(|instruction| {
        ranges.iter().any(|range| range.contains(&instruction.ip()))
            && is_locked_32(instruction, Mnemonic::Cmpxchg)
    })?;
    let atomic = &instructions[index];
    let next = instructions.get(index + 1)?;
    let object = memory_address(atomic)?;
    if matches!(object, AddressExpr::Register { base: Reg::Rax, .. }) {
        return None;
    }
    let site = SyncSite {
        primitive: Primitive::MutexTryLock,
        function: function.name.to_owned(),
        probe: next.ip(),
        file_offset: 0,
        timing: Timing::After,
        object: object.plus(-MUTEX_STATE),
        outcome: Outcome::ZeroFlag,
        atomic: atomic.ip(),
        anchor: atomic.ip(),
        after_map_call: None,
    };
    let context = SiteContext {
        function,
        anchor_index: index,
    };
    Some(context.emulated_probe(site))
}

/// Whether an operand access may change the operand.
fn writes(access: OpAccess) -> bool {
    matches!(
        access,
        OpAccess::Write | OpAccess::CondWrite | OpAccess::ReadWrite | OpAccess::ReadCondWrite
    )
}

/// How far past its first possible instruction an acquire's probe may move: far enough for
/// `context.(*cancelCtx).cancel`, whose `SETE` after the CAS is followed by eight instructions
/// choosing its arguments before the jump on the outcome. Nothing on the straight line can be
/// another operation: calls and jumps end it (the kernel emulates them: the probe goes there),
/// atomics stop it.
const ACQUIRE_PROBE_WINDOW: usize = 12;

/// A load of a 32- or 8-bit flag from memory into a register, or a compare of it with zero.
fn is_flag_load(instruction: &Instruction) -> bool {
    let memory = instruction.op_count() == 2 && instruction.op1_kind() == OpKind::Memory;
    match instruction.mnemonic() {
        Mnemonic::Mov | Mnemonic::Movzx => memory && instruction.memory_size().size() <= 4,
        Mnemonic::Cmp => {
            instruction.op0_kind() == OpKind::Memory
                && matches!(
                    instruction.op1_kind(),
                    OpKind::Immediate8 | OpKind::Immediate8to32
                )
                && instruction.immediate8() == 0
        }
        _ => false,
    }
}

/// The address of an instruction's memory operand: `base + displacement`, or a global through a
/// RIP-relative operand. Index registers are not supported (Go does not use them here).
fn memory_address(instruction: &Instruction) -> Option<AddressExpr> {
    if instruction.memory_index() != Register::None {
        return None;
    }
    let displacement = instruction.memory_displacement64();
    if instruction.is_ip_rel_memory_operand() {
        // iced resolves RIP-relative displacements to the absolute target.
        return Some(AddressExpr::Static {
            address: displacement,
        });
    }
    Some(AddressExpr::Register {
        base: Reg::of(instruction.memory_base())?,
        offset: displacement as i64,
    })
}

/// `expression` (an address computed from the registers after `instruction`) in terms of the
/// registers before it, if that can be expressed.
fn before(instruction: &Instruction, expression: AddressExpr) -> Option<AddressExpr> {
    let writes_memory = instruction.op_count() > 0 && instruction.op0_kind() == OpKind::Memory;
    let on_stack_pointer = matches!(
        expression,
        AddressExpr::Register { base: Reg::Rsp, .. }
            | AddressExpr::Load { base: Reg::Rsp, .. }
            | AddressExpr::LoadTwice { base: Reg::Rsp, .. }
    );
    // PUSH and POP move the stack pointer without naming it.
    if on_stack_pointer && instruction.stack_pointer_increment() != 0 {
        return None;
    }
    match expression {
        AddressExpr::Register { base, offset } => Some(base_after(instruction, base)?.plus(offset)),
        // The pointer is loaded from memory: a store in between could change it.
        AddressExpr::Load { .. } | AddressExpr::LoadTwice { .. } if writes_memory => None,
        AddressExpr::Load { base, at, offset } => match base_after(instruction, base)? {
            AddressExpr::Register {
                base,
                offset: moved,
            } => Some(AddressExpr::Load {
                base,
                at: at + moved,
                offset,
            }),
            _ => None,
        },
        AddressExpr::LoadTwice {
            base,
            at,
            then,
            offset,
        } => match base_after(instruction, base)? {
            AddressExpr::Register {
                base,
                offset: moved,
            } => Some(AddressExpr::LoadTwice {
                base,
                at: at + moved,
                then,
                offset,
            }),
            _ => None,
        },
        AddressExpr::Static { .. } => Some(expression),
    }
}

/// What `base` holds after `instruction` executes, in terms of the registers before it.
fn base_after(instruction: &Instruction, base: Reg) -> Option<AddressExpr> {
    let writes_base = instruction.op_count() > 0
        && instruction.op0_kind() == OpKind::Register
        && Reg::of(instruction.op0_register()) == Some(base);
    if !writes_base {
        return if instruction.mnemonic() == Mnemonic::Call {
            None
        } else {
            Some(AddressExpr::Register { base, offset: 0 })
        };
    }
    match instruction.code() {
        // MOVQ src, base
        Code::Mov_r64_rm64 | Code::Mov_rm64_r64 if instruction.op1_kind() == OpKind::Register => {
            Some(AddressExpr::Register {
                base: Reg::of(instruction.op1_register())?,
                offset: 0,
            })
        }
        // MOVQ disp(src), base
        Code::Mov_r64_rm64 => match memory_address(instruction)? {
            AddressExpr::Register { base, offset } => Some(AddressExpr::Load {
                base,
                at: offset,
                offset: 0,
            }),
            _ => None,
        },
        // LEAQ disp(src), base / LEAQ global(SB), base
        Code::Lea_r64_m => memory_address(instruction),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyse::disasm::encoded_call;

    const BASE: u64 = 0x47_bc00;
    const LOCK_SLOW: u64 = 0x46_0000;
    const UNLOCK_SLOW: u64 = 0x46_1000;
    const SEMACQUIRE_R: u64 = 0x46_2000;

    fn sites_of(code: &[u8]) -> (Vec<SyncSite>, Vec<u64>) {
        let anchors = [
            (LOCK_SLOW, Anchor::LockSlow),
            (UNLOCK_SLOW, Anchor::UnlockSlow),
        ];
        let mut unconfirmed = Vec::new();
        let decoded = FunctionCode::decode("main.f", code, BASE);
        let sites = find_sites(&decoded, &anchors, &mut unconfirmed);
        (sites, unconfirmed)
    }

    /// Go 1.27's `runtime.resolveNameOff`: `lock(&reflectOffs.lock)`, a read of
    /// `reflectOffs.m`, `unlock(&reflectOffs.lock)` (alignment NOPs before the first call).
    #[test]
    fn runtime_locks_around_the_runtime_s_maps_acquire_and_release_their_global() {
        const LOCK2: u64 = 0x41_0000;
        const UNLOCK2: u64 = 0x41_1000;
        let mut code = vec![
            0x90, // NOPL
            0x48, 0x8d, 0x05, 0x22, 0xdd, 0x11, 0x00, // LEAQ runtime.reflectOffs(SB), AX
            0x66, 0x90, // NOPW
        ];
        let at = BASE + code.len() as u64;
        code.extend(encoded_call(at, LOCK2));
        code.extend([0x48, 0x8b, 0x1d, 0x24, 0xdd, 0x11, 0x00]); // MOVQ reflectOffs+16(SB), BX
        code.extend([0x48, 0x8d, 0x05, 0x0d, 0xdd, 0x11, 0x00]); // LEAQ runtime.reflectOffs(SB), AX
        let unlock_at = BASE + code.len() as u64;
        code.extend(encoded_call(unlock_at, UNLOCK2));
        code.extend([0x48, 0x89, 0xc8]); // MOVQ CX, AX: a lock that is not a global
        code.extend(encoded_call(BASE + code.len() as u64, LOCK2));
        let lock = AddressExpr::Static {
            address: BASE + 0x11dd2a,
        };
        let sites = runtime_lock_sites(
            &FunctionCode::decode("runtime.resolveNameOff", &code, BASE),
            LOCK2,
            UNLOCK2,
        );
        let found: Vec<_> = sites
            .iter()
            .map(|site| (site.primitive, site.probe, site.object))
            .collect();
        assert_eq!(
            found,
            [
                (Primitive::AtomicAcquire, at + 5, lock),
                (Primitive::AtomicRelease, unlock_at, lock)
            ]
        );
        // Anywhere else, runtime locks are not synchronisation tracer models.
        assert!(runtime_lock_sites(
            &FunctionCode::decode("runtime.chansend", &code, BASE),
            LOCK2,
            UNLOCK2
        )
        .is_empty());
    }

    /// Go 1.21 `h.g.mu.Lock()` with the mutex at +0x18 behind CX (from `go tool objdump`):
    /// probed on the `JNE` (emulated by the kernel), where SI holds the CAS's success.
    #[test]
    fn embedded_lock_is_probed_after_the_cas() {
        let site = lock_between(
            &[0x48, 0x89, 0xc1],       // MOVQ AX, CX
            &[0x40, 0x0f, 0x94, 0xc6], // SETE SI
        );
        assert_eq!(site.primitive, Primitive::MutexLock);
        assert_eq!(site.atomic, BASE + 8);
        assert_eq!(site.probe, BASE + 20);
        assert_eq!(site.timing, Timing::After);
        assert_eq!(site.outcome, Outcome::ZeroFlagIn(Reg::Rsi));
        assert_eq!(
            site.object,
            AddressExpr::Register {
                base: Reg::Rcx,
                offset: 0x18
            }
        );
        assert_eq!(site.anchor, BASE + 25);
    }

    /// Go 1.26 `context.(*cancelCtx).cancel`'s `c.mu.Lock()`: the `SETE` keeps the CAS's
    /// outcome in R10B, then eight instructions choose the cancel cause before the `JNE` on it:
    /// the probe goes all the way to the `JNE`, which the kernel emulates.
    #[test]
    fn a_lock_is_probed_on_its_jump_past_the_instructions_between() {
        let mut code = vec![
            0x49, 0x89, 0xc1, // MOVQ AX, R9
            0x31, 0xc0, // XORL AX, AX
            0x41, 0xba, 0x01, 0x00, 0x00, 0x00, // MOVL $1, R10
            0xf0, 0x45, 0x0f, 0xb1, 0x51, 0x10, // LOCK CMPXCHGL R10, 0x10(R9)
            0x41, 0x0f, 0x94, 0xc2, // SETEQ R10
            0x48, 0x85, 0xf6, // TESTQ SI, SI
            0x41, 0x0f, 0x94, 0xc3, // SETEQ R11
            0x45, 0x84, 0xdb, // TESTB R11, R11
            0x4c, 0x0f, 0x45, 0xc7, // CMOVQNE DI, R8
            0x4c, 0x89, 0x44, 0x24, 0x60, // MOVQ R8, 0x60(SP)
            0x48, 0x0f, 0x45, 0xf1, // CMOVQNE CX, SI
            0x48, 0x89, 0x74, 0x24, 0x30, // MOVQ SI, 0x30(SP)
            0x45, 0x84, 0xd2, // TESTB R10, R10
            0x75, 0x37, // JNE +0x37
            0x48, 0x89, 0xd0, // MOVQ DX, AX
        ];
        let at = BASE + code.len() as u64;
        code.extend(encoded_call(at, LOCK_SLOW));
        let (sites, unconfirmed) = sites_of(&code);
        assert_eq!((sites.len(), unconfirmed.len()), (1, 0));
        let site = &sites[0];
        assert_eq!(site.primitive, Primitive::MutexLock);
        assert_eq!(site.probe, BASE + 52);
        assert_eq!(site.outcome, Outcome::ZeroFlagIn(Reg::R10));
        assert_eq!(
            site.object,
            AddressExpr::Register {
                base: Reg::R9,
                offset: 0x10
            }
        );
    }

    /// Go 1.26 `s.cacheMu.RLock()` (bench/hunt's `get`): `INCL` turns the count the XADD read
    /// into the one Go tests; the probe moves past it, and past the `TESTL`, to the `JGE`.
    #[test]
    fn an_rlock_is_probed_on_its_jump_past_the_increment() {
        let mut code = vec![
            0xb9, 0x01, 0x00, 0x00, 0x00, // MOVL $1, CX
            0x48, 0x8b, 0x94, 0x24, 0x90, 0x00, 0x00, 0x00, // MOVQ 0x90(SP), DX
            0xf0, 0x0f, 0xc1, 0x4a, 0x20, // LOCK XADDL CX, 0x20(DX)
            0xff, 0xc1, // INCL CX
            0x85, 0xc9, // TESTL CX, CX
            0x7d, 0x1f, // JGE +0x1f
            0x48, 0x8d, 0x42, 0x1c, // LEAQ 0x1c(DX), AX
            0x31, 0xdb, // XORL BX, BX
            0x31, 0xc9, // XORL CX, CX
        ];
        let at = BASE + code.len() as u64;
        code.extend(encoded_call(at, SEMACQUIRE_R));
        let anchors = [(SEMACQUIRE_R, Anchor::SemacquireRWMutexR)];
        let decoded = FunctionCode::decode("main.f", &code, BASE);
        let sites = find_sites(&decoded, &anchors, &mut Vec::new());
        assert_eq!(sites.len(), 1);
        assert_eq!(sites[0].primitive, Primitive::RwMutexRLock);
        assert_eq!(sites[0].probe, BASE + 22);
        assert_eq!(sites[0].outcome, Outcome::Register(Reg::Rcx));
    }

    /// Go 1.27 `h.g.mu.Unlock()`: the base is reloaded from the stack right before the XADD.
    #[test]
    fn unlock_is_probed_before_the_xadd_with_a_loaded_base() {
        let mut code = vec![
            0x90, // NOPL (inline mark)
            0xbb, 0xff, 0xff, 0xff, 0xff, // MOVL $-1, BX
            0x48, 0x8b, 0x54, 0x24, 0x20, // MOVQ 0x20(SP), DX
            0xf0, 0x0f, 0xc1, 0x5a, 0x18, // LOCK XADDL BX, 0x18(DX)
            0x74, 0x0a, // JE +10
            0x48, 0x8b, 0x44, 0x24, 0x18, // MOVQ 0x18(SP), AX
        ];
        let at = BASE + code.len() as u64;
        code.extend(encoded_call(at, UNLOCK_SLOW));
        let (sites, _) = sites_of(&code);
        assert_eq!(sites.len(), 1);
        let site = &sites[0];
        assert_eq!(site.primitive, Primitive::MutexUnlock);
        // On the inline mark (a NOP, emulated by the kernel), two instructions before the XADD.
        assert_eq!(site.probe, BASE);
        assert_eq!(site.timing, Timing::Before);
        assert_eq!(
            site.object,
            AddressExpr::Load {
                base: Reg::Rsp,
                at: 0x20,
                offset: 0x18
            }
        );
    }

    /// Go 1.26 `defer mux.mu.RUnlock()`: the wrapper loads the RWMutex from its closure (DX)
    /// after its prologue, with no inline mark; the release moves back to the prologue's
    /// `PUSHQ BP` (emulated by the kernel), reading the RWMutex from the closure there. Loaded
    /// from a frame slot instead, it stays on the instruction before the XADD: the walk does
    /// not follow the stack pointer back through the prologue that moves it.
    #[test]
    fn deferred_runlock_is_probed_on_its_wrapper_prologue() {
        let prologue = [
            0x55, // PUSHQ BP
            0x48, 0x89, 0xe5, // MOVQ SP, BP
            0x48, 0x83, 0xec, 0x10, // SUBQ $0x10, SP
        ];
        let rest = [
            0xbb, 0xff, 0xff, 0xff, 0xff, // MOVL $-1, BX
            0xf0, 0x0f, 0xc1, 0x58, 0x10, // LOCK XADDL BX, 0x10(AX)
            0xff, 0xcb, // DECL BX
            0x85, 0xdb, // TESTL BX, BX
            0x7d, 0x05, // JGE +5
        ];
        let site_after = |prefix: &[u8], load: &[u8]| {
            let mut code = [prefix, load, &rest[..]].concat();
            let at = BASE + code.len() as u64;
            code.extend(encoded_call(at, UNLOCK_SLOW));
            let anchors = [(UNLOCK_SLOW, Anchor::RUnlockSlow)];
            let decoded = FunctionCode::decode("main.f.deferwrap1", &code, BASE);
            let sites = find_sites(&decoded, &anchors, &mut Vec::new());
            assert_eq!(sites.len(), 1);
            assert_eq!(sites[0].primitive, Primitive::RwMutexRUnlock);
            assert_eq!(sites[0].timing, Timing::Before);
            (sites[0].probe, sites[0].object)
        };
        assert_eq!(
            site_after(&prologue, &[0x48, 0x8b, 0x42, 0x08]), // MOVQ 0x8(DX), AX
            (
                BASE,
                AddressExpr::Load {
                    base: Reg::Rdx,
                    at: 8,
                    offset: 0
                }
            )
        );
        let from_frame = [0x48, 0x8b, 0x44, 0x24, 0x08]; // MOVQ 0x8(SP), AX
        let before_the_load = |prefix: &[u8]| {
            (
                BASE + (prefix.len() + from_frame.len()) as u64,
                AddressExpr::Register {
                    base: Reg::Rax,
                    offset: 0,
                },
            )
        };
        assert_eq!(
            site_after(&prologue, &from_frame),
            before_the_load(&prologue)
        );
        // A PUSH right before (emulated, but the slot is 8 bytes further from SP before it).
        assert_eq!(
            site_after(&prologue[..1], &from_frame),
            before_the_load(&prologue[..1])
        );
    }

    /// Go 1.26 `mu.RLock(); n, ok := m[k]; mu.RUnlock()` (bench/service): the map call, the
    /// value's load, the RWMutex reloaded from the frame, the XADD — nothing the kernel
    /// emulates after the call. The release is probed on the call (emulated), reading the
    /// frame slot there, and takes effect after the map function's event; not when the call is
    /// of another function, nor when the slot is one the callee may spill its arguments into,
    /// nor when the RWMutex is in a register (the callee clobbers them).
    #[test]
    fn a_release_after_a_map_call_is_probed_on_the_call() {
        const MAP_ACCESS: u64 = 0x41_1bc0;
        let after_call = |slot: u8| {
            vec![
                0x48, 0x8b, 0x10, // MOVQ 0(AX), DX
                0xbe, 0xff, 0xff, 0xff, 0xff, // MOVL $-1, SI
                0x48, 0x8b, 0x44, 0x24, slot, // MOVQ slot(SP), AX
                0xf0, 0x0f, 0xc1, 0x70, 0x20, // LOCK XADDL SI, 0x20(AX)
                0xff, 0xce, // DECL SI
                0x85, 0xf6, // TESTL SI, SI
                0x7d, 0x05, // JGE +5
            ]
        };
        let site_after = |callee: u64, rest: Vec<u8>| {
            let mut code = encoded_call(BASE, callee);
            code.extend(rest);
            let at = BASE + code.len() as u64;
            code.extend(encoded_call(at, UNLOCK_SLOW));
            let anchors = [(UNLOCK_SLOW, Anchor::RUnlockSlow)];
            let map_functions = HashSet::from([MAP_ACCESS]);
            let decoded =
                FunctionCode::decode("main.f", &code, BASE).with_map_functions(&map_functions);
            let sites = find_sites(&decoded, &anchors, &mut Vec::new());
            assert_eq!(sites.len(), 1);
            assert_eq!(sites[0].primitive, Primitive::RwMutexRUnlock);
            assert_eq!(sites[0].timing, Timing::Before);
            sites[0].clone()
        };
        let site = site_after(MAP_ACCESS, after_call(0x78));
        assert_eq!(
            (site.probe, site.object, site.after_map_call),
            (
                BASE,
                AddressExpr::Load {
                    base: Reg::Rsp,
                    at: 0x78,
                    offset: 0x10
                },
                Some(MAP_ACCESS)
            )
        );
        // On the instruction before the XADD (single-stepped), as without the call.
        let load = BASE + 5 + 8;
        let in_place = |site: SyncSite| (site.probe, site.after_map_call);
        assert_eq!(
            in_place(site_after(0x41_2000, after_call(0x78))),
            (load, None)
        );
        assert_eq!(
            in_place(site_after(MAP_ACCESS, after_call(0x18))),
            (load, None)
        );
        let in_register = [
            &after_call(0x78)[..8],
            &[0x48, 0x89, 0xd8], // MOVQ BX, AX
            &after_call(0x78)[13..],
        ]
        .concat();
        assert_eq!(in_place(site_after(MAP_ACCESS, in_register)), (load, None));
    }

    /// Go 1.26 `sync.(*RWMutex).Lock` after its inlined `w.Lock()` (from `go tool objdump`): a
    /// reader check on the `JE` after each `XADD` (emulated), on the RWMutex in CX; none in
    /// another function, and none when one of the two atomics is not found.
    #[test]
    fn rwmutex_lock_checks_its_readers_on_the_jumps_after_its_atomics() {
        let count = [
            0xba, 0x00, 0x00, 0x00, 0xc0, // MOVL $-0x40000000, DX
            0xf0, 0x0f, 0xc1, 0x51, 0x10, // LOCK XADDL DX, 0x10(CX)
            0x8d, 0xb2, 0x00, 0x00, 0x00, 0xc0, // LEAL 0xc0000000(DX), SI
            0x81, 0xfe, 0x00, 0x00, 0x00, 0xc0, // CMPL SI, $-0x40000000
            0x74, 0x0e, // JE +14 (to the end)
        ];
        let wait = [
            0x89, 0xd6, // MOVL DX, SI
            0xf0, 0x0f, 0xc1, 0x51, 0x14, // LOCK XADDL DX, 0x14(CX)
            0x8d, 0x14, 0x16, // LEAL 0(SI)(DX*1), DX
            0x85, 0xd2, // TESTL DX, DX
            0x74, 0x00, // JE +0
        ];
        let checks = |name: &str, code: &[u8]| {
            let decoded = FunctionCode::decode(name, code, BASE);
            rwmutex_reader_checks(&decoded)
                .into_iter()
                .map(|site| (site.primitive, site.probe, site.object, site.timing))
                .collect::<Vec<_>>()
        };
        let code = [&count[..], &wait[..]].concat();
        let rw = AddressExpr::Register {
            base: Reg::Rcx,
            offset: 0,
        };
        let check = |probe| (Primitive::RwMutexReadersChecked, probe, rw, Timing::After);
        assert_eq!(
            checks(RWMUTEX_LOCK, &code),
            [check(BASE + 22), check(BASE + count.len() as u64 + 12)]
        );
        assert_eq!(checks("main.lockLike", &code), []);
        assert_eq!(checks(RWMUTEX_LOCK, &count), []);
    }

    /// Go 1.27 `globalMu.Unlock()`: the base is a global put in DX by a RIP-relative LEA.
    #[test]
    fn unlock_of_a_global_resolves_to_its_address() {
        let mut code = vec![
            0xbb, 0xff, 0xff, 0xff, 0xff, // MOVL $-1, BX
            0x48, 0x8d, 0x15, 0x00, 0x10, 0x00, 0x00, // LEAQ 0x1000(IP), DX
            0xf0, 0x0f, 0xc1, 0x1a, // LOCK XADDL BX, 0(DX)
        ];
        let at = BASE + code.len() as u64;
        code.extend(encoded_call(at, UNLOCK_SLOW));
        let (sites, _) = sites_of(&code);
        assert_eq!(sites.len(), 1);
        assert_eq!(sites[0].probe, BASE + 5);
        assert_eq!(
            sites[0].object,
            AddressExpr::Static {
                address: BASE + 12 + 0x1000
            }
        );
    }

    /// Go 1.22 `net/http.(*connReader).Read`: the unlockSlow call sits in a cold block after
    /// unrelated code, entered by a `JNE` right after the XADD.
    #[test]
    fn slow_path_moved_out_of_line_is_found_through_its_jump() {
        let mut code = vec![
            0xbb, 0xff, 0xff, 0xff, 0xff, // MOVL $-1, BX
            0xf0, 0x0f, 0xc1, 0x58, 0x08, // LOCK XADDL BX, 0x8(AX)
            0xff, 0xcb, // DECL BX
            0x85, 0xdb, // TESTL BX, BX
            0x75, 0x03, // JNE +3 → the cold block
            0xc3, // RET
            0x90, 0x90, // NOPs in between
            0x48, 0x8d, 0x48, 0x08, // cold block: LEAQ 0x8(AX), CX
        ];
        let at = BASE + code.len() as u64;
        code.extend(encoded_call(at, UNLOCK_SLOW));
        // Fix the JNE to land on the LEAQ (offset 19).
        code[15] = 19 - 16;
        let (sites, unconfirmed) = sites_of(&code);
        assert!(unconfirmed.is_empty(), "{unconfirmed:x?}");
        assert_eq!(sites.len(), 1);
        assert_eq!(sites[0].atomic, BASE + 5);
        assert_eq!(sites[0].probe, BASE);
        assert_eq!(
            sites[0].object,
            AddressExpr::Register {
                base: Reg::Rax,
                offset: 8
            }
        );
    }

    #[test]
    fn release_whose_atomic_is_a_branch_target_is_unconfirmed() {
        let mut code = vec![
            0xeb, 0x05, // JMP +5 → lands on the LOCK
            0xbb, 0xff, 0xff, 0xff, 0xff, // MOVL $-1, BX
            0xf0, 0x0f, 0xc1, 0x5a, 0x18, // LOCK XADDL BX, 0x18(DX)
        ];
        let at = BASE + code.len() as u64;
        code.extend(encoded_call(at, UNLOCK_SLOW));
        let (sites, unconfirmed) = sites_of(&code);
        assert!(sites.is_empty());
        assert_eq!(unconfirmed, vec![at]);
    }

    /// An inlined Lock of the mutex at 0x18(CX): `before`, the CAS, `after_cas`, then the test
    /// of SI, the jump over the slow path, and the slow path.
    fn lock_between(before: &[u8], after_cas: &[u8]) -> SyncSite {
        let mut code = before.to_vec();
        code.extend([
            0xbe, 0x01, 0x00, 0x00, 0x00, // MOVL $1, SI
            0xf0, 0x0f, 0xb1, 0x71, 0x18, // LOCK CMPXCHGL SI, 0x18(CX)
        ]);
        code.extend(after_cas);
        code.extend([
            0x40, 0x84, 0xf6, // TESTL SI, SI
            0x75, 0x08, // JNE +8
            0x48, 0x89, 0xc8, // MOVQ CX, AX
        ]);
        let at = BASE + code.len() as u64;
        code.extend(encoded_call(at, LOCK_SLOW));
        let (mut sites, unconfirmed) = sites_of(&code);
        assert!(unconfirmed.is_empty());
        assert_eq!(sites.len(), 1);
        sites.remove(0)
    }

    /// The Lock of `embedded_lock_is_probed_after_the_cas`, with `after_cas` after the CAS.
    fn lock_followed_by(after_cas: &[u8]) -> SyncSite {
        lock_between(&[], after_cas)
    }

    #[test]
    fn an_acquire_stays_where_moving_it_would_change_what_it_reads() {
        // The base register is overwritten before the jump.
        let clobbered = lock_followed_by(&[
            0x40, 0x0f, 0x94, 0xc6, // SETE SI
            0x48, 0x31, 0xc9, // XORQ CX, CX
        ]);
        assert_eq!(
            (clobbered.probe, clobbered.outcome),
            (BASE + 10, Outcome::ZeroFlag)
        );
        // ZF is overwritten before any SETE kept it.
        let flags_lost = lock_followed_by(&[0x48, 0x85, 0xc0]); // TESTQ AX, AX
        assert_eq!(
            (flags_lost.probe, flags_lost.outcome),
            (BASE + 10, Outcome::ZeroFlag)
        );
        // The SETE's register is overwritten.
        let result_lost = lock_followed_by(&[
            0x40, 0x0f, 0x94, 0xc6, // SETE SI
            0xbe, 0x00, 0x00, 0x00, 0x00, // MOVL $0, SI
        ]);
        assert_eq!(result_lost.probe, BASE + 10);
        // A NOP right after the SETE (Go 1.25/1.26) is emulated: the probe goes there.
        let nop = lock_followed_by(&[
            0x40, 0x0f, 0x94, 0xc6, // SETE SI
            0x90, // NOP
        ]);
        assert_eq!(
            (nop.probe, nop.outcome),
            (BASE + 14, Outcome::ZeroFlagIn(Reg::Rsi))
        );
    }

    #[test]
    fn an_acquire_does_not_move_onto_code_other_paths_reach() {
        // JMP +14: onto the TESTL after the SETE.
        let site = lock_between(&[0xeb, 0x0e], &[0x40, 0x0f, 0x94, 0xc6]);
        assert_eq!((site.probe, site.outcome), (BASE + 12, Outcome::ZeroFlag));
    }

    #[test]
    fn anchor_without_fast_path_is_unconfirmed() {
        let code = encoded_call(BASE, LOCK_SLOW);
        let (sites, unconfirmed) = sites_of(&code);
        assert!(sites.is_empty());
        assert_eq!(unconfirmed, vec![BASE]);
    }

    /// `routes{name string; table atomic.Pointer[T]}` and `server{id int; routes *routes}`.
    fn typed_layouts() -> Vec<Layout> {
        vec![
            Layout {
                words: vec![16],
                pointers: vec![],
            },
            Layout {
                words: vec![],
                pointers: vec![(8, 0)],
            },
        ]
    }

    fn typed_loads(code: &[u8], variables: &[PointerVariable]) -> Vec<SyncSite> {
        let decoded = FunctionCode::decode("main.(*server).handle", code, BASE);
        // After a 0x28-byte frame and the saved BP, as Go lays it out.
        let depths = [(BASE..BASE + code.len() as u64, 0x28)];
        typed_field_loads(
            &decoded,
            variables,
            &typed_layouts(),
            &depths,
            &HashSet::new(),
        )
    }

    /// Go 1.24 `(*r.table.Load())[k]` with `r *routes` in AX (a parameter): the plain load of
    /// the pointer word is the atomic load, acquired after it.
    #[test]
    fn a_typed_field_load_through_a_register_variable_is_an_acquire() {
        let code = [
            0x48, 0x8b, 0x50, 0x10, // MOVQ 0x10(AX), DX
            0x48, 0x8b, 0x12, // MOVQ 0(DX), DX
            0x48, 0x8b, 0x48, 0x10, // MOVQ 0x10(AX), CX (not while r is in AX: see below)
        ];
        let r_in_ax = PointerVariable {
            pcs: BASE..BASE + 7,
            home: Home::Register(Reg::Rax),
            layout: 0,
        };
        let sites = typed_loads(&code, &[r_in_ax]);
        assert_eq!(sites.len(), 1, "{sites:?}");
        assert_eq!(sites[0].primitive, Primitive::AtomicAcquire);
        assert_eq!(sites[0].atomic, BASE);
        assert_eq!(sites[0].timing, Timing::After);
        assert_eq!(
            sites[0].object,
            AddressExpr::Register {
                base: Reg::Rax,
                offset: 0x10
            }
        );
    }

    /// Go 1.24 `(*s.routes.table.Load())[p]` after a call, `s *server` spilled to its argument
    /// slot (the CFA): reloaded, then its pointer field loaded into the same register, then
    /// the word: the word's address after the load is `*(*(RSP + 0x30) + 8) + 0x10`.
    #[test]
    fn a_typed_field_load_through_a_reloaded_pointer_chain_is_an_acquire() {
        let code = [
            0x48, 0x8b, 0x4c, 0x24, 0x30, // MOVQ 0x30(SP), CX
            0x48, 0x8b, 0x49, 0x08, // MOVQ 0x8(CX), CX
            0x48, 0x8b, 0x49, 0x10, // MOVQ 0x10(CX), CX
            0x48, 0x8b, 0x09, // MOVQ 0(CX), CX
        ];
        let s_spilled = PointerVariable {
            pcs: BASE..BASE + code.len() as u64,
            home: Home::Frame(0),
            layout: 1,
        };
        let sites = typed_loads(&code, std::slice::from_ref(&s_spilled));
        assert_eq!(sites.len(), 1, "{sites:?}");
        assert_eq!(sites[0].atomic, BASE + 9);
        assert_eq!(
            sites[0].object,
            AddressExpr::LoadTwice {
                base: Reg::Rsp,
                at: 0x30,
                then: 8,
                offset: 0x10
            }
        );
        // A store to the slot between the reload and the load: the expression would not hold.
        let mut clobbered = code[..5].to_vec();
        clobbered.extend([0x48, 0x89, 0x54, 0x24, 0x30]); // MOVQ DX, 0x30(SP)
        clobbered.extend(&code[5..]);
        let s_spilled = PointerVariable {
            pcs: BASE..BASE + clobbered.len() as u64,
            ..s_spilled
        };
        assert!(typed_loads(&clobbered, &[s_spilled]).is_empty());
    }

    /// Go 1.26 `srv.shuttingDown()` inlined: the word's load overwrites its base, loaded from a
    /// field a conditional branch earlier; on the fall-through path the address after the load
    /// is still `*(DX + 8) + 0x10`.
    #[test]
    fn a_load_into_its_own_base_is_addressed_through_the_field_it_came_from() {
        let code = [
            0x48, 0x8b, 0x72, 0x08, // MOVQ 0x8(DX), SI
            0x48, 0x85, 0xf6, // TESTQ SI, SI
            0x75, 0x40, // JNE (out of this code)
            0x48, 0x8b, 0x76, 0x10, // MOVQ 0x10(SI), SI
            0x48, 0x85, 0xf6, // TESTQ SI, SI
        ];
        let s_in_dx = PointerVariable {
            pcs: BASE..BASE + code.len() as u64,
            home: Home::Register(Reg::Rdx),
            layout: 1,
        };
        let sites = typed_loads(&code, &[s_in_dx]);
        assert_eq!(sites.len(), 1, "{sites:?}");
        assert_eq!(sites[0].atomic, BASE + 9);
        assert_eq!(
            sites[0].object,
            AddressExpr::Load {
                base: Reg::Rdx,
                at: 8,
                offset: 0x10
            }
        );
    }

    /// Loads from other offsets, of registers no variable or field load vouches for, or after
    /// a call has clobbered the register, are not atomic loads.
    #[test]
    fn other_loads_are_not_typed_atomic_loads() {
        let code = [
            0x48, 0x8b, 0x50, 0x08, // MOVQ 0x8(AX), DX: a field, not the word
            0x48, 0x8b, 0x4b, 0x10, // MOVQ 0x10(BX), CX: BX is not a known pointer
            0xe8, 0x00, 0x00, 0x00, 0x00, // CALL
            0x48, 0x8b, 0x52, 0x10, // MOVQ 0x10(DX), DX: DX was clobbered by the call
        ];
        let s_in_ax = PointerVariable {
            pcs: BASE..BASE + code.len() as u64,
            home: Home::Register(Reg::Rax),
            layout: 1,
        };
        assert!(typed_loads(&code, &[s_in_ax]).is_empty());
    }

    /// Go 1.21 `&routes{…}`: the write barrier reads the word's old value for the collector.
    #[test]
    fn a_write_barrier_read_is_not_a_typed_atomic_load() {
        let code = [
            0x48, 0x8b, 0x48, 0x10, // MOVQ 0x10(AX), CX
            0xe8, 0x00, 0x00, 0x00, 0x00, // CALL runtime.gcWriteBarrier1
            0x49, 0x89, 0x0b, // MOVQ CX, 0(R11)
        ];
        let r_in_ax = PointerVariable {
            pcs: BASE..BASE + code.len() as u64,
            home: Home::Register(Reg::Rax),
            layout: 0,
        };
        assert!(typed_loads(&code, std::slice::from_ref(&r_in_ax)).is_empty());
        // The same load used by the program is one.
        let used = [
            0x48, 0x8b, 0x48, 0x10, // MOVQ 0x10(AX), CX
            0x48, 0x8b, 0x09, // MOVQ 0(CX), CX
        ];
        assert_eq!(typed_loads(&used, &[r_in_ax]).len(), 1);
    }
}

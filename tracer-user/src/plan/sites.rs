//! The plan in the kernel's terms: each probe site becomes the [`SiteParams`] its program reads
//! (what the object is, which registers to keep) and a [`ProbeClass`] (which program). Pure
//! translation, so it is tested without root; `probes.rs` loads the result.

use tracer_common::{
    effect, guard, object, register, site_flags, EventKind, KernelLayout, ProbeClass,
    RuntimeConfig, SiteParams,
};

use crate::{
    analyse::{
        disasm,
        dwarf::RuntimeOffsets,
        syncsites::{AddressExpr, Outcome, Primitive, Reg, SyncSite},
    },
    plan::{
        catalogue::{FunctionId, Meaning, OnEntry, OnReturn},
        MovedResult, Observed, Placement, ProbePlan, ProbeSite,
    },
};

/// Where `runtime.hiter.h` / `maps.Iter.m` keeps the iterated map (every supported version).
const ITERATOR_MAP: i32 = 24;

/// One site ready for the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelSite {
    pub class: ProbeClass,
    /// The probed instruction's link-time address.
    pub address: u64,
    pub file_offset: u64,
    pub params: SiteParams,
    /// The function the site observes (runtime/sync functions) or was inlined into.
    pub function: String,
    /// The catalogue's entry for the function it observes (none for inlined sync sites).
    pub observes: Option<FunctionId>,
}

impl KernelSite {
    /// Whether the site stays in place between sampling windows: the runtime's fatal errors,
    /// hit once in a process's life, when it dies of `concurrent map writes` — the crash that
    /// brings users to tracer must be reported whatever the budget, and costs nothing until then.
    pub fn always_in_place(&self) -> bool {
        self.params.kind == EventKind::Fatal as u8
    }
}

/// Every site of `plan` the kernel programs can record, in a stable order (the index of a site
/// here is its attach cookie and the `site` of its events). `code` gives the bytes at a
/// link-time address: sites on instructions the kernel single-steps are marked, for the cost
/// accounting.
pub fn kernel_sites<'a>(
    plan: &ProbePlan,
    code: impl Fn(u64) -> Option<&'a [u8]>,
) -> Vec<KernelSite> {
    let runtime = plan.sites.iter().filter_map(|site| {
        let (class, mut params) = runtime_site(site)?;
        if site.placement == Placement::AfterCallIfReturned {
            params.guard = guard::RETURNED_HERE;
        }
        match site.result_moved {
            // `register + offset` becomes `[RSP + at] + offset`.
            Some(MovedResult::FrameSlot(at)) => {
                params.object = object::LOAD;
                params.base = register::RSP;
                params.at = at;
            }
            // `register + offset` becomes `copy + offset`.
            Some(MovedResult::Register(copy)) => params.base = register_index(copy),
            None => {}
        }
        Some(KernelSite {
            class,
            address: site.address,
            file_offset: site.file_offset,
            params,
            function: site.function.to_owned(),
            observes: Some(site.id),
        })
    });
    let inline = plan.sync_sites.iter().map(|site| KernelSite {
        class: ProbeClass::SyncInline,
        address: site.probe,
        file_offset: site.file_offset,
        params: inline_site(site),
        function: site.function.clone(),
        observes: None,
    });
    runtime
        .chain(inline)
        .map(|mut site| {
            if !code(site.address).is_some_and(disasm::kernel_emulates) {
                site.params.flags |= site_flags::SINGLE_STEPPED;
            }
            site
        })
        .collect()
}

/// What the programs need besides the sites: the runtime's layout, the process, whether a map
/// access repeating its goroutine's previous recorded event is dropped (`drop_repeats`), and
/// the running kernel's layout.
pub fn runtime_config(
    offsets: &RuntimeOffsets,
    pid: u32,
    drop_repeats: bool,
    kernel: KernelLayout,
) -> RuntimeConfig {
    RuntimeConfig {
        g_goid: offsets.g_goid,
        g_parent_goid: offsets.g_parent_goid,
        g_startpc: offsets.g_startpc,
        // runtime.stack is {lo, hi uintptr}: `g.stack.lo` is where the struct starts.
        g_stack: offsets.g_stack_lo,
        g_m: offsets.g_m,
        m_curg: offsets.m_curg,
        hchan_dataqsiz: offsets.hchan_dataqsiz,
        hchan_buf: offsets.hchan_buf,
        hchan_elemsize: offsets.hchan_elemsize,
        hchan_recvx: offsets.hchan_recvx,
        target_pid: pid,
        drop_repeats: u32::from(drop_repeats),
        kernel,
    }
}

fn params(kind: EventKind, object: u8, base: u8, arg: u8, flags: u8) -> SiteParams {
    SiteParams {
        kind: kind as u8,
        object,
        base,
        arg,
        flags,
        ..SiteParams::default()
    }
}

fn runtime_site(site: &ProbeSite) -> Option<(ProbeClass, SiteParams)> {
    let at = Placed::new(site);
    let (class, mut params) = map_site(&at)
        .or_else(|| channel_site(&at))
        .or_else(|| select_site(&at))
        .or_else(|| other_site(&at))?;
    // An object behind a pointer (resetTimer(t, …)'s callback, corostart's g.coroarg) replaces
    // the register the operation names; a runtime without the field has nothing to probe.
    if let (true, Some(object_in)) = (at.entry, site.id.function().object_in) {
        params.object = object::LOAD;
        params.base = object_in.base;
        params.at = i32::from(site.field?);
    }
    Some((class, params))
}

/// A runtime site with what its parameters depend on: where it is and what its function is.
struct Placed<'a> {
    site: &'a ProbeSite,
    /// At the function's entry (or at a call of it), not where its result is read.
    entry: bool,
    meaning: Meaning,
}

impl<'a> Placed<'a> {
    fn new(site: &'a ProbeSite) -> Self {
        Self {
            site,
            // A call where the function's result waits in a frame slot observes its return.
            entry: match site.placement {
                Placement::AfterStackCheck | Placement::Entry => true,
                Placement::AtCall => site.result_moved.is_none(),
                _ => false,
            },
            meaning: site.id.function().meaning,
        }
    }

    /// A map function's entry: the map in BX, the key as the function passes it, the stack.
    fn map_entry(&self, kind: EventKind) -> (ProbeClass, SiteParams) {
        let mut params = params(
            kind,
            object::REGISTER,
            register::RBX,
            register::NONE,
            site_flags::SKIP_STACK_OBJECTS | site_flags::CALLER_AT_SP | site_flags::CAPTURE_STACK,
        );
        params.key = self.site.key as u8;
        (ProbeClass::MapOp, params)
    }

    /// A call's entry or return: the object in `base`, the second value in `arg`.
    fn call(&self, kind: EventKind, base: u8, arg: u8) -> (ProbeClass, SiteParams) {
        // At a CALL instruction the return address is not pushed yet: the site is the caller.
        let flags = if self.entry && self.site.placement != Placement::AtCall {
            site_flags::CALLER_AT_SP
        } else {
            0
        };
        let object = if base == register::NONE {
            object::NONE
        } else {
            object::REGISTER
        };
        let class = if self.entry {
            ProbeClass::CallEntry
        } else {
            ProbeClass::CallReturn
        };
        (class, params(kind, object, base, arg, flags))
    }

    /// A call with `flags` added.
    fn call_with(&self, kind: EventKind, base: u8, arg: u8, flags: u8) -> (ProbeClass, SiteParams) {
        let (class, mut params) = self.call(kind, base, arg);
        params.flags |= flags;
        (class, params)
    }

    /// A channel operation's entry, which records the channel's buffer to recognise its slots.
    fn channel_entry(&self, kind: EventKind, channel: u8) -> (ProbeClass, SiteParams) {
        self.call_with(kind, channel, register::NONE, site_flags::CHANNEL_BUFFER)
    }
}

fn map_site(at: &Placed<'_>) -> Option<(ProbeClass, SiteParams)> {
    use Observed as Op;
    Some(match (at.site.operation, at.entry) {
        (Op::MapAssign, true) => at.map_entry(EventKind::MapAssign),
        (Op::MapDelete, true) => at.map_entry(EventKind::MapDelete),
        (Op::MapClear, true) => at.map_entry(EventKind::MapClear),
        (Op::MapRead, true) => at.map_entry(EventKind::MapRead),
        (Op::MapIterStart, true) => at.map_entry(EventKind::MapIterStart),
        // mapiternext(it): the iterator in AX, the map in its header field.
        (Op::MapIterNext, true) => {
            let (class, mut params) = at.map_entry(EventKind::MapIterNext);
            params.object = object::LOAD;
            params.base = register::RAX;
            params.at = ITERATOR_MAP;
            (class, params)
        }
        (Op::MapMake, false) => {
            let made = match at.meaning {
                Meaning::MadeIn(register) => register,
                _ => register::RAX,
            };
            at.call(EventKind::MapMake, made, register::NONE)
        }
        _ => return None,
    })
}

fn channel_site(at: &Placed<'_>) -> Option<(ProbeClass, SiteParams)> {
    use Observed as Op;
    Some(match (at.site.operation, at.entry) {
        (Op::ChanMake, false) => at.call(EventKind::ChanMake, register::RAX, register::NONE),
        (Op::ChanSend, true) => at.channel_entry(EventKind::ChanSend, register::RAX),
        (Op::ChanSend, false) => at.call(EventKind::ChanSendDone, register::NONE, register::NONE),
        (Op::ChanReceive, true) => at.channel_entry(EventKind::ChanReceive, register::RAX),
        (Op::ChanReceive, false) => {
            let received = match at.meaning {
                Meaning::ReceivedIn(register) => register,
                _ => register::NONE,
            };
            at.call(EventKind::ChanReceiveDone, register::NONE, received)
        }
        (Op::ChanClose, true) => at.call(EventKind::ChanClose, register::RAX, register::NONE),
        // typedmemmove(typ, dst, src) into a slot, typedmemclr(typ, ptr) of a slot: BX.
        (Op::ChanSlot, true) => at.call(EventKind::ChanSlot, register::RBX, register::NONE),
        // send/recv(c *hchan, sg *sudog, …).
        (Op::ChanHandOff, true) => {
            let (class, mut params) = at.call(EventKind::ChanHandOff, register::RAX, register::RBX);
            params.object = object::HAND_OFF;
            (class, params)
        }
        _ => return None,
    })
}

fn select_site(at: &Placed<'_>) -> Option<(ProbeClass, SiteParams)> {
    use Observed as Op;
    Some(match (at.site.operation, at.entry) {
        (Op::SelectNonBlocking, true) => {
            let channel = match at.meaning {
                Meaning::ChannelIn(register) => register,
                _ => register::RAX,
            };
            at.channel_entry(EventKind::SelectNonBlocking, channel)
        }
        (Op::SelectNonBlocking, false) => at.call(
            EventKind::SelectNonBlockingDone,
            register::NONE,
            register::RAX,
        ),
        // selectgo returns (chosen case, received ok) in AX and BL.
        (Op::SelectChosen, false) => at.call(EventKind::SelectChosen, register::RAX, register::RBX),
        (Op::SelectChosen, true) => at.call_with(
            EventKind::SelectEnter,
            register::NONE,
            register::NONE,
            site_flags::SELECT_CASES,
        ),
        _ => return None,
    })
}

/// Goroutines, fatal errors, sync functions, atomics, pools and timers.
fn other_site(at: &Placed<'_>) -> Option<(ProbeClass, SiteParams)> {
    use Observed as Op;
    Some(match (at.site.operation, at.entry) {
        (Op::GoroutineCreate, false) => (
            ProbeClass::CallReturn,
            params(
                EventKind::GoroutineCreate,
                object::CHILD_GOROUTINE,
                register::RAX,
                register::NONE,
                0,
            ),
        ),
        (Op::GoroutineExit, true) => {
            at.call(EventKind::GoroutineExit, register::NONE, register::NONE)
        }
        (Op::GoStatement, true) => at.call_with(
            EventKind::GoStatement,
            register::RAX,
            register::NONE,
            site_flags::CAPTURE_STACK,
        ),
        (Op::Fatal, true) => at.call_with(
            EventKind::Fatal,
            register::RAX,
            register::RBX,
            site_flags::CAPTURE_STACK,
        ),
        // A read or write of a descriptor (in AX): the kernel finds its flow of data, which
        // becomes the object, and puts the descriptor in `arg`.
        (Op::Sync, true) => {
            let flow = match at.meaning {
                Meaning::Sync(OnEntry::WriteFlow, _) => Some(object::WRITTEN_FLOW),
                Meaning::Sync(_, OnReturn::ReadFlow) => Some(object::READ_FLOW),
                _ => None,
            };
            let (class, mut params) = at.call(EventKind::SyncEnter, register::RAX, register::RBX);
            if let Some(flow) = flow {
                params.object = flow;
                params.arg = register::RAX;
            }
            (class, params)
        }
        (Op::Sync, false) => at.call(EventKind::SyncExit, register::NONE, register::RAX),
        (Op::AtomicPublish, true) => {
            let data = match at.meaning {
                Meaning::PublishedIn(register) => register,
                _ => register::RCX,
            };
            at.call(EventKind::AtomicPublish, data, register::RAX)
        }
        // Put(x any): the receiver in AX, x's type and data words in BX and CX; Get returns
        // the value's type and data words in AX and BX.
        (Op::PoolPut, true) => at.call(EventKind::PoolPut, register::RCX, register::NONE),
        (Op::PoolGet, false) => at.call(EventKind::PoolGet, register::RBX, register::NONE),
        // AfterFunc(d Duration, f func()): f in BX; goFunc(arg any, …) gets f back as arg's
        // data word, also in BX.
        (Op::TimerArm, true) => at.call(EventKind::TimerArm, register::RBX, register::NONE),
        (Op::TimerFire, true) => at.call(EventKind::TimerFire, register::RBX, register::NONE),
        _ => return None,
    })
}

/// Whether the site reads one register and nothing else, as the base of its object: that value
/// may as well be read from another register it was copied to.
pub fn reads_only_its_base_register(site: &ProbeSite) -> bool {
    runtime_site(site).is_some_and(|(_, params)| {
        params.object != object::NONE
            && params.object != object::RIP_RELATIVE
            && params.arg == register::NONE
    })
}

/// Whether the site reads one register and nothing else, as its object (`register + offset`):
/// that value may as well be read from a frame slot it was stored in.
pub fn reads_only_its_object_register(site: &ProbeSite) -> bool {
    runtime_site(site).is_some_and(|(_, params)| {
        params.object == object::REGISTER && params.arg == register::NONE
    })
}

/// The registers a site's program reads at the probe (the object's base, the second value).
pub fn registers_read(site: &ProbeSite) -> Vec<Reg> {
    let Some((_, params)) = runtime_site(site) else {
        return Vec::new();
    };
    let base = (params.object != object::NONE && params.object != object::RIP_RELATIVE)
        .then_some(params.base);
    [base, Some(params.arg)]
        .into_iter()
        .flatten()
        .filter_map(register_of_index)
        .collect()
}

/// The register of a [`register`] index.
fn register_of_index(index: u8) -> Option<Reg> {
    Reg::ALL
        .into_iter()
        .find(|&reg| register_index(reg) == index)
}

fn register_index(reg: Reg) -> u8 {
    match reg {
        Reg::Rax => register::RAX,
        Reg::Rbx => register::RBX,
        Reg::Rcx => register::RCX,
        Reg::Rdx => register::RDX,
        Reg::Rsi => register::RSI,
        Reg::Rdi => register::RDI,
        Reg::Rbp => register::RBP,
        Reg::Rsp => register::RSP,
        Reg::R8 => register::R8,
        Reg::R9 => register::R8 + 1,
        Reg::R10 => register::R8 + 2,
        Reg::R11 => register::R8 + 3,
        Reg::R12 => register::R8 + 4,
        Reg::R13 => register::R8 + 5,
        Reg::R14 => register::R8 + 6,
        Reg::R15 => register::R8 + 7,
    }
}

fn inline_site(site: &SyncSite) -> SiteParams {
    let kind = match site.primitive {
        Primitive::OnceDone => EventKind::OnceDone,
        Primitive::MutexLock => EventKind::MutexLock,
        Primitive::MutexUnlock => EventKind::MutexUnlock,
        Primitive::MutexTryLock => EventKind::MutexTryLock,
        Primitive::RwMutexRLock => EventKind::RwMutexRLock,
        Primitive::RwMutexRUnlock => EventKind::RwMutexRUnlock,
        Primitive::RwMutexReadersChecked => EventKind::RwMutexReadersChecked,
        Primitive::OnceDo => EventKind::OnceDo,
        Primitive::WaitGroupDone => EventKind::WaitGroupDone,
        Primitive::AtomicRelease => EventKind::AtomicRelease,
        Primitive::AtomicAcquire => EventKind::AtomicAcquire,
    };
    let mut params = SiteParams {
        kind: kind as u8,
        arg: register::NONE,
        ..SiteParams::default()
    };
    match site.object {
        AddressExpr::Register { base, offset } => {
            params.object = object::REGISTER;
            params.base = register_index(base);
            params.offset = offset;
        }
        AddressExpr::Load { base, at, offset } => {
            params.object = object::LOAD;
            params.base = register_index(base);
            params.at = at as i32;
            params.offset = offset;
        }
        AddressExpr::LoadTwice {
            base,
            at,
            then,
            offset,
        } => {
            params.object = object::LOAD_TWICE;
            params.base = register_index(base);
            params.at = at as i32;
            params.then = then as i32;
            params.offset = offset;
        }
        // The kernel sees the probed instruction's runtime address in RIP: the global is at
        // the same distance from it as in the file, wherever a PIE was loaded.
        AddressExpr::Static { address } => {
            params.object = object::RIP_RELATIVE;
            params.offset = address.wrapping_sub(site.probe) as i64;
        }
    }
    if site.after_map_call.is_some() {
        params.effect = effect::AFTER_MAP_CALL;
    }
    match site.outcome {
        Outcome::Always => {}
        Outcome::ZeroFlag => params.flags |= site_flags::ZERO_FLAG,
        Outcome::Register(reg) => params.arg = register_index(reg),
        Outcome::ZeroFlagIn(reg) => {
            params.arg = register_index(reg);
            params.flags |= site_flags::ZERO_FLAG_IN_ARG;
        }
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::analyse::syncsites::Timing;
    use tracer_common::KeyClass;

    fn sync_site(object: AddressExpr, outcome: Outcome) -> SyncSite {
        SyncSite {
            primitive: Primitive::MutexUnlock,
            function: "main.f".into(),
            probe: 0x47_1000,
            file_offset: 0x7_1000,
            timing: Timing::Before,
            object,
            outcome,
            atomic: 0x47_1005,
            anchor: 0x47_1010,
            after_map_call: None,
        }
    }

    #[test]
    fn address_expressions_become_object_sources() {
        let loaded = inline_site(&sync_site(
            AddressExpr::Load {
                base: Reg::Rsp,
                at: 0x20,
                offset: 0x18,
            },
            Outcome::Always,
        ));
        assert_eq!(
            (loaded.object, loaded.base, loaded.at, loaded.offset),
            (object::LOAD, register::RSP, 0x20, 0x18)
        );
        assert_eq!(loaded.arg, register::NONE);
        let global = inline_site(&sync_site(
            AddressExpr::Static { address: 0x59_0010 },
            Outcome::Always,
        ));
        assert_eq!(global.object, object::RIP_RELATIVE);
        assert_eq!(global.offset, 0x59_0010 - 0x47_1000);
        let cas = inline_site(&sync_site(
            AddressExpr::Register {
                base: Reg::R12,
                offset: 8,
            },
            Outcome::ZeroFlag,
        ));
        assert_eq!((cas.base, cas.offset), (12, 8));
        assert_ne!(cas.flags & site_flags::ZERO_FLAG, 0);
        let xadd = inline_site(&sync_site(
            AddressExpr::Register {
                base: Reg::Rsi,
                offset: -16,
            },
            Outcome::Register(Reg::Rdx),
        ));
        assert_eq!(xadd.arg, register::RDX);
    }

    fn runtime(
        operation: Observed,
        function: &str,
        placement: Placement,
        key: KeyClass,
    ) -> ProbeSite {
        let id = FunctionId::of(function).expect("a catalogue function");
        ProbeSite {
            operation,
            id,
            function: id.function().name,
            placement,
            address: 0x40_1000,
            file_offset: 0x1000,
            key,
            result_moved: None,
            field: None,
        }
    }

    #[test]
    fn map_entries_read_the_map_from_rbx_and_skip_stack_maps() {
        let (class, params) = runtime_site(&runtime(
            Observed::MapAssign,
            "runtime.mapassign_fast64",
            Placement::AfterStackCheck,
            KeyClass::U64,
        ))
        .unwrap();
        assert_eq!(class, ProbeClass::MapOp);
        assert_eq!(
            (params.kind, params.object, params.base, params.key),
            (
                EventKind::MapAssign as u8,
                object::REGISTER,
                register::RBX,
                KeyClass::U64 as u8
            )
        );
        assert_ne!(params.flags & site_flags::SKIP_STACK_OBJECTS, 0);
        let (_, next) = runtime_site(&runtime(
            Observed::MapIterNext,
            "runtime.mapiternext",
            Placement::AfterStackCheck,
            KeyClass::None,
        ))
        .unwrap();
        assert_eq!(
            (next.object, next.base, next.at),
            (object::LOAD, register::RAX, 24)
        );
    }

    #[test]
    fn returns_and_calls_use_their_result_registers() {
        let (class, created) = runtime_site(&runtime(
            Observed::GoroutineCreate,
            "runtime.newproc1",
            Placement::AfterCall,
            KeyClass::None,
        ))
        .unwrap();
        assert_eq!(
            (class, created.object, created.base),
            (
                ProbeClass::CallReturn,
                object::CHILD_GOROUTINE,
                register::RAX
            )
        );
        let (_, recv) = runtime_site(&runtime(
            Observed::SelectNonBlocking,
            "runtime.selectnbrecv",
            Placement::AfterStackCheck,
            KeyClass::None,
        ))
        .unwrap();
        assert_eq!(recv.base, register::RBX);
        let (class, made) = runtime_site(&runtime(
            Observed::MapMake,
            "runtime.makemap",
            Placement::Return,
            KeyClass::None,
        ))
        .unwrap();
        assert_eq!(
            (class, made.base, made.flags),
            (ProbeClass::CallReturn, register::RAX, 0)
        );
        assert!(runtime_site(&runtime(
            Observed::MapAssign,
            "runtime.mapassign",
            Placement::Return,
            KeyClass::None
        ))
        .is_none());
    }
    #[test]
    fn objects_behind_pointers_are_loaded_at_the_binary_s_offset_or_not_probed() {
        let at_field = |operation, function, field| {
            runtime_site(&ProbeSite {
                field,
                ..runtime(
                    operation,
                    function,
                    Placement::AfterStackCheck,
                    KeyClass::None,
                )
            })
            .map(|(_, params)| (params.object, params.base, params.at))
        };
        // The timer's callback, behind the timer in AX; the coro, behind the running g.
        assert_eq!(
            at_field(Observed::TimerArm, "time.resetTimer", Some(72)),
            Some((object::LOAD, register::RAX, 72))
        );
        assert_eq!(
            at_field(Observed::Sync, "runtime.corostart", Some(384)),
            Some((object::LOAD, register::R14, 384))
        );
        // A runtime without the field: no probe rather than a wrong object.
        assert_eq!(at_field(Observed::Sync, "runtime.corostart", None), None);
        // AfterFunc's callback is its argument.
        assert_eq!(
            at_field(Observed::TimerArm, "time.AfterFunc", None),
            Some((object::REGISTER, register::RBX, 0))
        );
    }
}

//! Stage 2, plan: what to probe and what it means. In: an analysed Go executable
//! ([`GoBinary`]). Out: the probe plan, every instruction tracer probes and what each one observes
//! ([`ProbePlan`]), and the kernel's view of each site ([`sites::KernelSite`]: which program, which
//! registers). Pure data, so it can be inspected (`tracer inspect`) and tested without root; which
//! sites are attached depends on what the kernel programs support.

pub mod sites;
pub mod sync_functions;

use serde::Serialize;
use tracer_common::KeyClass;

use crate::{
    analyse::{
        disasm,
        syncsites::{self, SyncSite, ANCHORS},
        GoBinary, MapImplementation,
    },
    plan::sync_functions::SYNC_FUNCTIONS,
};

/// What a probe site observes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    MapAssign,
    MapDelete,
    MapClear,
    MapRead,
    /// Start of a `for range` over a map (a read of the whole map).
    MapIterStart,
    /// Each step of a `for range` (a read).
    MapIterNext,
    /// A map was created (`makemap*` returning it in AX).
    MapMake,
    /// A channel was created (`makechan` returning it in AX).
    ChanMake,
    ChanSend,
    ChanReceive,
    ChanClose,
    /// `select` with one case and a default.
    SelectNonBlocking,
    /// `selectgo`: its entry (a select starts), and its return with the chosen case (AX) and
    /// whether a receive got a value (BL).
    SelectChosen,
    /// `go f()`: the new g (AX) after `newproc1` returns, parent's g in R14's m.curg.
    GoroutineCreate,
    GoroutineExit,
    /// `runtime.fatal` / `runtime.throw`: the runtime is about to kill the process.
    Fatal,
    /// Entry or return of an out-of-line synchronisation function or slow path.
    Sync,
    /// A value published through `atomic.Value` (Store, Swap, CompareAndSwap).
    AtomicPublish,
    /// A `go` statement (`runtime.newproc`), where the creating stack is still visible.
    GoStatement,
    /// `sync.Pool` Put (entry) and Get (return): the pooled value.
    PoolPut,
    PoolGet,
    /// `time.AfterFunc` arms a timer with a callback (entry).
    TimerArm,
    /// `time.goFunc` starts an AfterFunc callback's goroutine (entry).
    TimerFire,
    /// A call in `chansend`/`chanrecv`/`selectgo` that copies a value into a channel slot or
    /// clears one, under the channel's lock (also the copies to and from the goroutine's own
    /// variable: the kernel records the pointer, userspace keeps those inside the buffer).
    ChanSlot,
    /// `runtime.send` / `runtime.recv`: a value passes to or from a parked goroutine.
    ChanHandOff,
}

impl Operation {
    /// A read of a map's contents: a lookup or a step of a range loop.
    pub fn is_map_read(self) -> bool {
        matches!(self, Self::MapRead | Self::MapIterStart | Self::MapIterNext)
    }
}

/// Where in the function the probe sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// On the `PUSHQ BP` after the stack check: runs once per call.
    AfterStackCheck,
    /// On the first instruction (no frame setup found): slower, and it fires again when the
    /// function grows its stack.
    Entry,
    /// On a `RET`: the results are in registers.
    Return,
    /// On the instruction after a `CALL` of the function, in its caller.
    AfterCall,
    /// On a `CALL` of the function, in its caller: the arguments are in registers.
    AtCall,
}

/// One uprobe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProbeSite {
    pub operation: Operation,
    /// The function whose behaviour the site observes (for `AfterCall`, the callee).
    pub function: String,
    pub placement: Placement,
    /// Virtual address of the probed instruction.
    pub address: u64,
    /// Where that instruction is in the executable file (what the kernel wants).
    pub file_offset: u64,
    /// How the map key is passed (map entry sites only).
    #[serde(skip_serializing_if = "is_no_key", serialize_with = "serialize_key")]
    pub key: KeyClass,
}

fn is_no_key(key: &KeyClass) -> bool {
    *key == KeyClass::None
}

fn serialize_key<S: serde::Serializer>(key: &KeyClass, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(match key {
        KeyClass::None => "none",
        KeyClass::U32 => "u32",
        KeyClass::U64 => "u64",
        KeyClass::Str => "string",
        KeyClass::ChannelBuffer => "channel-buffer",
    })
}

/// Every probe for one binary.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProbePlan {
    pub sites: Vec<ProbeSite>,
    /// Inlined synchronisation operations (uncontended Lock, Unlock, RLock, …).
    pub sync_sites: Vec<SyncSite>,
    /// Slow-path calls whose inlined fast path could not be confirmed by decoding: each is an
    /// operation tracer would miss, so it is reported, never dropped silently.
    pub unconfirmed_sync_calls: Vec<u64>,
    /// Planned functions the binary does not contain (the linker drops unused ones).
    pub absent: Vec<&'static str>,
}

/// Map entry points the compiler emits (GO_INTERNALS.md §1b): the same names in Go 1.21–1.27.
const MAP_ENTRIES: [(&str, Operation, KeyClass); 19] = [
    ("runtime.mapassign", Operation::MapAssign, KeyClass::None),
    (
        "runtime.mapassign_fast32",
        Operation::MapAssign,
        KeyClass::U32,
    ),
    (
        "runtime.mapassign_fast64",
        Operation::MapAssign,
        KeyClass::U64,
    ),
    (
        "runtime.mapassign_fast64ptr",
        Operation::MapAssign,
        KeyClass::U64,
    ),
    (
        "runtime.mapassign_faststr",
        Operation::MapAssign,
        KeyClass::Str,
    ),
    ("runtime.mapdelete", Operation::MapDelete, KeyClass::None),
    (
        "runtime.mapdelete_fast32",
        Operation::MapDelete,
        KeyClass::U32,
    ),
    (
        "runtime.mapdelete_fast64",
        Operation::MapDelete,
        KeyClass::U64,
    ),
    (
        "runtime.mapdelete_faststr",
        Operation::MapDelete,
        KeyClass::Str,
    ),
    ("runtime.mapclear", Operation::MapClear, KeyClass::None),
    ("runtime.mapaccess1", Operation::MapRead, KeyClass::None),
    (
        "runtime.mapaccess1_fast32",
        Operation::MapRead,
        KeyClass::U32,
    ),
    (
        "runtime.mapaccess1_fast64",
        Operation::MapRead,
        KeyClass::U64,
    ),
    (
        "runtime.mapaccess1_faststr",
        Operation::MapRead,
        KeyClass::Str,
    ),
    ("runtime.mapaccess1_fat", Operation::MapRead, KeyClass::None),
    ("runtime.mapaccess2", Operation::MapRead, KeyClass::None),
    (
        "runtime.mapaccess2_fast32",
        Operation::MapRead,
        KeyClass::U32,
    ),
    (
        "runtime.mapaccess2_fast64",
        Operation::MapRead,
        KeyClass::U64,
    ),
    (
        "runtime.mapaccess2_faststr",
        Operation::MapRead,
        KeyClass::Str,
    ),
];

/// `for range` over a map: the runtime's own names changed with Swiss tables (1.24), which keep
/// `mapiterinit`/`mapiternext` only as shims for linkname users.
const CLASSIC_ITERATION: [(&str, Operation); 2] = [
    ("runtime.mapiterinit", Operation::MapIterStart),
    ("runtime.mapiternext", Operation::MapIterNext),
];
const SWISS_ITERATION: [(&str, Operation); 4] = [
    ("runtime.mapIterStart", Operation::MapIterStart),
    ("runtime.mapIterNext", Operation::MapIterNext),
    ("runtime.mapiterinit", Operation::MapIterStart),
    ("runtime.mapiternext", Operation::MapIterNext),
];

/// Functions observed at their entry.
const ENTRY_PROBES: [(&str, Operation); 18] = [
    ("runtime.newproc", Operation::GoStatement),
    ("runtime.chansend1", Operation::ChanSend),
    ("runtime.chanrecv1", Operation::ChanReceive),
    ("runtime.chanrecv2", Operation::ChanReceive),
    // reflect.Value.Send/Recv/TrySend/TryRecv: the runtime's bodies, under reflect's names.
    (REFLECT_CHANSEND, Operation::ChanSend),
    (REFLECT_CHANRECV, Operation::ChanReceive),
    ("runtime.selectnbsend", Operation::SelectNonBlocking),
    ("runtime.selectnbrecv", Operation::SelectNonBlocking),
    ("runtime.closechan", Operation::ChanClose),
    ("runtime.selectgo", Operation::SelectChosen),
    ("runtime.goexit1", Operation::GoroutineExit),
    ("runtime.fatal", Operation::Fatal),
    ("runtime.throw", Operation::Fatal),
    ("sync.(*Pool).Put", Operation::PoolPut),
    ("time.AfterFunc", Operation::TimerArm),
    ("time.goFunc", Operation::TimerFire),
    ("runtime.send", Operation::ChanHandOff),
    ("runtime.recv", Operation::ChanHandOff),
];

/// `reflect.chansend0(c, elem, nb) bool`: channel in AX, like `chansend1`.
const REFLECT_CHANSEND: &str = "reflect.chansend0";
/// `reflect.chanrecv(c, nb, elem) (selected, received bool)`: channel in AX, like `chanrecv1`;
/// whether a value arrived in BX.
pub const REFLECT_CHANRECV: &str = "reflect.chanrecv";

/// Where channel values enter and leave buffer slots: the calls of the second list made by the
/// functions of the first (each under the channel's lock; GO_INTERNALS.md).
const CHANNEL_FUNCTIONS: [&str; 3] = ["runtime.chansend", "runtime.chanrecv", "runtime.selectgo"];
const SLOT_COPIES: [&str; 2] = ["runtime.typedmemmove", "runtime.typedmemclr"];

/// Functions observed where they return (their result is what matters).
const RETURN_PROBES: [(&str, Operation); 13] = [
    ("runtime.makemap", Operation::MapMake),
    ("runtime.makemap64", Operation::MapMake),
    ("runtime.makemap_small", Operation::MapMake),
    ("runtime.makechan", Operation::ChanMake),
    ("runtime.makechan64", Operation::ChanMake),
    ("runtime.selectgo", Operation::SelectChosen),
    ("runtime.chansend1", Operation::ChanSend),
    ("runtime.chanrecv1", Operation::ChanReceive),
    ("runtime.chanrecv2", Operation::ChanReceive),
    (REFLECT_CHANSEND, Operation::ChanSend),
    (REFLECT_CHANRECV, Operation::ChanReceive),
    ("runtime.selectnbrecv", Operation::SelectNonBlocking),
    ("sync.(*Pool).Get", Operation::PoolGet),
];

/// `atomic.Value` methods that publish a value (maps are often published copy-on-write this
/// way, and read without a lock).
const ATOMIC_PUBLISH: [&str; 3] = [
    "sync/atomic.(*Value).Store",
    "sync/atomic.(*Value).Swap",
    "sync/atomic.(*Value).CompareAndSwap",
];

/// The function that creates goroutines: the probe goes after its call, where AX is the new g.
const NEWPROC1: &str = "runtime.newproc1";

/// Plans every probe for `binary`.
pub fn plan(binary: &GoBinary) -> ProbePlan {
    let mut builder = PlanBuilder {
        binary,
        plan: ProbePlan::default(),
    };
    let map_reads: Vec<&str> = MAP_ENTRIES
        .iter()
        .filter(|(_, operation, _)| *operation == Operation::MapRead)
        .map(|(name, _, _)| *name)
        .collect();
    for (name, operation, key) in MAP_ENTRIES {
        // 1.27's mapaccess1* and every version's mapaccess1_fat call a mapaccess2*: probing
        // both would report each read twice, so the wrapper is left out.
        if operation == Operation::MapRead && builder.calls_any(name, &map_reads) {
            continue;
        }
        builder.entry(name, operation, key);
    }
    let iteration: &[(&str, Operation)] = match binary.maps {
        MapImplementation::Classic => &CLASSIC_ITERATION,
        MapImplementation::Swiss => &SWISS_ITERATION,
    };
    for &(name, operation) in iteration {
        builder.entry(name, operation, KeyClass::None);
    }
    for (name, operation) in ENTRY_PROBES {
        builder.entry(name, operation, KeyClass::None);
    }
    for (name, operation) in RETURN_PROBES {
        builder.returns(name, operation);
    }
    for function in SYNC_FUNCTIONS {
        if function.entry_probed() {
            builder.entry(function.name, Operation::Sync, KeyClass::None);
        }
        if function.returns_probed() {
            builder.returns(function.name, Operation::Sync);
        }
    }
    for name in ATOMIC_PUBLISH {
        builder.entry(name, Operation::AtomicPublish, KeyClass::None);
    }
    builder.after_calls_to(NEWPROC1, Operation::GoroutineCreate);
    for caller in CHANNEL_FUNCTIONS {
        for callee in SLOT_COPIES {
            builder.calls_within(caller, callee, Operation::ChanSlot);
        }
    }
    builder.inlined_sync_sites();
    builder.plan
}

struct PlanBuilder<'a> {
    binary: &'a GoBinary,
    plan: ProbePlan,
}

impl PlanBuilder<'_> {
    fn push(
        &mut self,
        operation: Operation,
        function: &str,
        placement: Placement,
        address: u64,
        key: KeyClass,
    ) {
        let Some(file_offset) = self.binary.file_offset(address) else {
            return;
        };
        self.plan.sites.push(ProbeSite {
            operation,
            function: function.to_owned(),
            placement,
            address,
            file_offset,
            key,
        });
    }

    fn code(&mut self, name: &'static str) -> Option<(u64, &'_ [u8])> {
        let binary = self.binary;
        let Some(function) = binary.function(name) else {
            if !self.plan.absent.contains(&name) {
                self.plan.absent.push(name);
            }
            return None;
        };
        Some((function.address, binary.code(function).unwrap_or_default()))
    }

    fn entry(&mut self, name: &'static str, operation: Operation, key: KeyClass) {
        let Some((address, code)) = self.code(name) else {
            return;
        };
        match disasm::frame_push_address(code, address) {
            Some(push) => self.push(operation, name, Placement::AfterStackCheck, push, key),
            None => self.push(operation, name, Placement::Entry, address, key),
        }
    }

    fn returns(&mut self, name: &'static str, operation: Operation) {
        let Some((address, code)) = self.code(name) else {
            return;
        };
        for ret in disasm::return_sites(code, address) {
            self.push(operation, name, Placement::Return, ret, KeyClass::None);
        }
    }

    /// Probes the instruction after every direct call of `name`, anywhere in the binary.
    fn after_calls_to(&mut self, name: &'static str, operation: Operation) {
        let Some(callee) = self.binary.function(name) else {
            self.plan.absent.push(name);
            return;
        };
        let binary = self.binary;
        for (caller, function) in binary.functions_by_address() {
            let Some(code) = binary.code(function) else {
                continue;
            };
            for call in disasm::calls_to(code, function.address, callee.address) {
                log::debug!("{name} called from {caller} at {:#x}", call.call);
                self.push(
                    operation,
                    name,
                    Placement::AfterCall,
                    call.return_to,
                    KeyClass::None,
                );
            }
        }
    }

    /// Probes every direct call of `callee` made by `caller`, on the call instruction (the site
    /// is named after the caller, whose operation it observes).
    fn calls_within(&mut self, caller: &'static str, callee: &'static str, operation: Operation) {
        let Some(target) = self.binary.function(callee) else {
            return;
        };
        let Some((address, code)) = self.code(caller) else {
            return;
        };
        let calls: Vec<u64> = disasm::calls_to(code, address, target.address)
            .into_iter()
            .map(|call| call.call)
            .collect();
        for call in calls {
            self.push(operation, caller, Placement::AtCall, call, KeyClass::None);
        }
    }

    /// Inlined sync fast paths in every function, the sync package's own included: Once.doSlow
    /// and RWMutex.Lock/Unlock synchronise through their inner Mutex, and a goroutine that finds
    /// that Mutex free takes it on the inlined fast path.
    fn inlined_sync_sites(&mut self) {
        let binary = self.binary;
        let anchors: Vec<(u64, syncsites::Anchor)> = ANCHORS
            .iter()
            .filter_map(|&(name, anchor)| Some((binary.function(name)?.address, anchor)))
            .collect();
        if anchors.is_empty() {
            return;
        }
        for (name, function) in binary.functions_by_address() {
            let Some(code) = binary.code(function) else {
                continue;
            };
            let mut sites = syncsites::find_sites(
                name,
                code,
                function.address,
                &anchors,
                &mut self.plan.unconfirmed_sync_calls,
            );
            sites.extend(syncsites::once_done_stores(name, code, function.address));
            let calls = binary.inlined_calls(function.address);
            let gaps = syncsites::reconcile_with_inline_tree(
                name,
                code,
                function.address,
                &calls,
                &mut sites,
            );
            self.plan.unconfirmed_sync_calls.extend(gaps);
            let (atomics, gaps) = syncsites::atomic_sites(name, code, function.address, &calls);
            sites.extend(atomics);
            self.plan.unconfirmed_sync_calls.extend(gaps);
            let gaps =
                syncsites::order_releases_after_acquires(name, code, function.address, &mut sites);
            self.plan.unconfirmed_sync_calls.extend(gaps);
            for mut site in sites {
                let Some(file_offset) = binary.file_offset(site.probe) else {
                    self.plan.unconfirmed_sync_calls.push(site.anchor);
                    continue;
                };
                site.file_offset = file_offset;
                self.plan.sync_sites.push(site);
            }
        }
    }

    /// Whether function `name` directly calls any of `callees` (other than itself).
    fn calls_any(&self, name: &str, callees: &[&str]) -> bool {
        let Some(function) = self.binary.function(name) else {
            return false;
        };
        let code = self.binary.code(function).unwrap_or_default();
        callees
            .iter()
            .filter(|&&callee| callee != name)
            .filter_map(|callee| self.binary.function(callee))
            .any(|callee| !disasm::calls_to(code, function.address, callee.address).is_empty())
    }
}

//! Stage 2, plan: what to probe and what it means. In: an analysed Go executable
//! ([`GoBinary`]). Out: the probe plan, every instruction tracer probes and what each one observes
//! ([`ProbePlan`]), and the kernel's view of each site ([`sites::KernelSite`]: which program, which
//! registers). Pure data, so it can be inspected (`tracer inspect`) and tested without root; which
//! sites are attached depends on what the kernel programs support.

pub mod catalogue;
pub mod cold;
mod returns;
pub mod sites;

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use tracer_common::KeyClass;

use self::catalogue::{At, FunctionId, CATALOGUE};
use self::returns::CallerProbes;
use crate::analyse::{
    disasm,
    syncsites::{self, FunctionCode, Primitive, Reg, SyncSite, ANCHORS},
    GoBinary, Linkage,
};

/// What a probe site observes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Observed {
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

impl Observed {
    /// A read of a map's contents: a lookup or a step of a range loop.
    pub fn is_map_read(self) -> bool {
        matches!(self, Self::MapRead | Self::MapIterStart | Self::MapIterNext)
    }

    /// An access to one key or the whole map (not an iteration, whose iterator the caller
    /// keeps in its frame).
    fn is_map_access_by_key(self) -> bool {
        matches!(
            self,
            Self::MapRead | Self::MapAssign | Self::MapDelete | Self::MapClear
        )
    }

    /// Whether the return of this operation, recorded where it did not happen, can only order
    /// more (a creation forgets an address's history; a completion without its start learns
    /// from every channel), never less: what a probe that may fire on a path that did not
    /// return from the call can afford. Sync returns pair with their calls, so no.
    fn hides_races_when_spurious(self) -> bool {
        matches!(
            self,
            Self::MapMake
                | Self::ChanMake
                | Self::ChanSend
                | Self::ChanReceive
                | Self::SelectChosen
                | Self::SelectNonBlocking
                | Self::PoolGet
        )
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
    /// Like `AfterCall`, where other paths of the caller join: recorded only when the call has
    /// just returned there (see `tracer_common::guard::RETURNED_HERE`).
    AfterCallIfReturned,
    /// On a `CALL` of the function, in its caller: the arguments are in registers. With a
    /// `result_moved`, on a call the function makes itself while its result waits in a frame
    /// slot (`catalogue::At::SpilledBefore`): what it returns is read there.
    AtCall,
    /// On a `CALL` the function makes itself, where it is as good as returned
    /// (`catalogue::At::ReturnsAtCallTo`).
    ReturnAtCall,
}

/// One uprobe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProbeSite {
    pub operation: Observed,
    /// The function whose behaviour the site observes (for `AfterCall`, the callee).
    #[serde(skip)]
    pub id: FunctionId,
    pub function: &'static str,
    pub placement: Placement,
    /// Virtual address of the probed instruction.
    pub address: u64,
    /// Where that instruction is in the executable file (what the kernel wants).
    pub file_offset: u64,
    /// How the map key is passed (map entry sites only).
    #[serde(skip_serializing_if = "is_no_key", serialize_with = "serialize_key")]
    pub key: KeyClass,
    /// For a return observed further on in the caller: where the result is read from, when
    /// the caller moved it out of its register before the probe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_moved: Option<MovedResult>,
    /// For a site whose object is a field behind a pointer (see `GoFunction::object_in`): the
    /// field's offset in this binary's layout; none when the binary's runtime has no such field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<u16>,
}

/// Where a caller moved a result before the instruction that observes the return.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MovedResult {
    /// The frame slot `[RSP + offset]` it stored the result in before reusing the register.
    FrameSlot(i32),
    /// The register it copied the result to before reusing the result's own.
    Register(Reg),
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
    /// The return addresses of channel sends and receives whose return is not probed, since a
    /// probe there would be single-stepped: each such call's send or receive completes at its
    /// goroutine's next event (see `events::order`). Link-time addresses; empty for a PIE,
    /// whose run-time addresses are not known when its events are decoded.
    pub completed_at_next_event: Vec<u64>,
}

impl ProbePlan {
    /// The plan without its map reads (`--no-reads`): a release probed on a call of a read
    /// function then takes effect where it is recorded, since no map event follows.
    pub fn without_map_reads(&mut self, binary: &GoBinary) {
        self.sites.retain(|site| !site.operation.is_map_read());
        let still_probed: HashSet<u64> = self
            .sites
            .iter()
            .filter_map(|site| binary.function(site.function))
            .map(|function| function.address)
            .collect();
        for site in &mut self.sync_sites {
            if site
                .after_map_call
                .is_some_and(|callee| !still_probed.contains(&callee))
            {
                site.after_map_call = None;
            }
        }
    }
}

/// Plans every probe for `binary`: each function of the catalogue it contains, at the places
/// the catalogue says, and the inlined sync operations of every function.
pub fn plan(binary: &GoBinary) -> ProbePlan {
    let mut builder = PlanBuilder {
        binary,
        plan: ProbePlan::default(),
    };
    let map_reads: Vec<&str> = CATALOGUE
        .iter()
        .filter(|function| {
            function
                .probes
                .iter()
                .any(|probe| probe.operation == Observed::MapRead)
        })
        .map(|function| function.name)
        .collect();
    for (id, function) in FunctionId::all() {
        if function.only_with.is_some_and(|maps| maps != binary.maps) {
            continue;
        }
        for probe in function.probes {
            // 1.27's mapaccess1* and every version's mapaccess1_fat call a mapaccess2*: probing
            // both would report each read twice, so the wrapper is left out.
            if probe.operation == Observed::MapRead && builder.calls_any(function.name, &map_reads)
            {
                continue;
            }
            match probe.at {
                At::Entry => builder.entry(id, probe.operation),
                At::Returns => builder.returns(id, probe.operation),
                At::CallsTo(callee) => {
                    builder.calls_within(id, callee, probe.operation, Placement::AtCall);
                }
                At::SpilledBefore(callee) => builder.spilled_before(id, callee, probe.operation),
                At::IndirectCalls => builder.indirect_calls(id, probe.operation),
                At::ReturnsAtCallTo(callee) => {
                    builder.calls_within(id, callee, probe.operation, Placement::ReturnAtCall);
                }
            }
        }
    }
    let mut callers = builder.return_probes_to_move();
    builder.inlined_sync_sites(&mut callers);
    builder.observe_returns_in_callers(callers);
    builder.drop_locks_observed_inside();
    builder.plan
}

/// Out-of-line `Mutex.Lock`, `Unlock` and `RWMutex.RUnlock` (called through an interface:
/// `sync.Locker`, `Cond.Wait`, `RWMutex.RLocker`), under each name they have in some supported
/// version, with the fast path that their bodies inline.
const OUT_OF_LINE_FAST_PATHS: [(&str, Primitive); 6] = [
    ("sync.(*Mutex).Lock", Primitive::MutexLock),
    ("internal/sync.(*Mutex).Lock", Primitive::MutexLock),
    ("sync.(*Mutex).Unlock", Primitive::MutexUnlock),
    ("internal/sync.(*Mutex).Unlock", Primitive::MutexUnlock),
    ("sync.(*RWMutex).RUnlock", Primitive::RwMutexRUnlock),
    (syncsites::RWMUTEX_LOCK, Primitive::RwMutexReadersChecked),
];

struct PlanBuilder<'a> {
    binary: &'a GoBinary,
    plan: ProbePlan,
}

impl PlanBuilder<'_> {
    fn push(&mut self, id: FunctionId, operation: Observed, placement: Placement, address: u64) {
        self.push_reading(id, operation, placement, address, None);
    }

    /// [`Self::push`], for a return observed in its caller whose result is read from a frame
    /// slot or another register (see [`ProbeSite::result_moved`]).
    fn push_reading(
        &mut self,
        id: FunctionId,
        operation: Observed,
        placement: Placement,
        address: u64,
        result_moved: Option<MovedResult>,
    ) {
        let Some(file_offset) = self.binary.file_offset(address) else {
            return;
        };
        let function = id.function();
        self.plan.sites.push(ProbeSite {
            operation,
            id,
            function: function.name,
            placement,
            address,
            file_offset,
            key: match placement {
                Placement::AfterStackCheck | Placement::Entry => function.key,
                _ => KeyClass::None,
            },
            result_moved,
            field: function
                .object_in
                .and_then(|object| self.binary.offsets.of(object.field)),
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

    fn entry(&mut self, id: FunctionId, operation: Observed) {
        let Some((address, code)) = self.code(id.function().name) else {
            return;
        };
        match disasm::frame_push_address(code, address) {
            Some(push) => self.push(id, operation, Placement::AfterStackCheck, push),
            None => self.push(id, operation, Placement::Entry, address),
        }
    }

    fn returns(&mut self, id: FunctionId, operation: Observed) {
        let Some((address, code)) = self.code(id.function().name) else {
            return;
        };
        for ret in disasm::return_sites(code, address) {
            self.push(id, operation, Placement::Return, ret);
        }
    }

    /// Probes every direct call of `callee` made by the function, on the call instruction (the
    /// site is named after the caller, whose operation it observes).
    fn calls_within(
        &mut self,
        id: FunctionId,
        callee: &str,
        operation: Observed,
        placement: Placement,
    ) {
        // An assembly function is called at its ABI0 body, which `.symtab` names apart from
        // its ABIInternal wrapper (pclntab gives both one name, and the body keeps it).
        let targets: Vec<u64> = [format!("{callee}.abi0").as_str(), callee]
            .into_iter()
            .filter_map(|name| self.binary.function(name))
            .map(|target| target.address)
            .collect();
        if targets.is_empty() {
            return;
        }
        let Some((address, code)) = self.code(id.function().name) else {
            return;
        };
        let calls: Vec<u64> = targets
            .into_iter()
            .flat_map(|target| disasm::calls_to(code, address, target))
            .map(|call| call.call)
            .collect();
        for call in calls {
            self.push(id, operation, placement, call);
        }
    }

    /// Probes every call of a function value the function makes, on the call instruction.
    fn indirect_calls(&mut self, id: FunctionId, operation: Observed) {
        let Some((address, code)) = self.code(id.function().name) else {
            return;
        };
        for call in disasm::indirect_calls(code, address) {
            self.push(id, operation, Placement::AtCall, call);
        }
    }

    /// The function's result, read on its call of one of `callees` from the frame slot it
    /// waits in (see [`returns::result_spilled_before`]); on its `RET`s when the code is not of
    /// that shape.
    fn spilled_before(&mut self, id: FunctionId, callees: &[&str], operation: Observed) {
        let binary = self.binary;
        let function = id.function();
        let at_return = ProbeSite {
            operation,
            id,
            function: function.name,
            placement: Placement::Return,
            address: 0,
            file_offset: 0,
            key: KeyClass::None,
            result_moved: None,
            field: None,
        };
        let read = sites::registers_read(&at_return);
        let spilled = match (&read[..], binary.function(function.name)) {
            ([result], Some(caller)) if sites::reads_only_its_object_register(&at_return) => {
                binary.code(caller).and_then(|code| {
                    let decoded = FunctionCode::decode(function.name, code, caller.address);
                    callees
                        .iter()
                        .filter_map(|callee| binary.function(callee))
                        .find_map(|target| {
                            returns::result_spilled_before(&decoded, target.address, *result)
                        })
                })
            }
            _ => None,
        };
        match spilled {
            Some((call, slot)) => {
                let slot = Some(MovedResult::FrameSlot(slot));
                self.push_reading(id, operation, Placement::AtCall, call, slot);
            }
            None => self.returns(id, operation),
        }
    }

    /// The functions whose returns are probed, with the registers those probes read, ready to
    /// find their call sites (see [`returns`]).
    fn return_probes_to_move(&self) -> CallerProbes {
        let mut callees: HashMap<u64, returns::Callee> = HashMap::new();
        let returns = self
            .plan
            .sites
            .iter()
            .filter(|site| site.placement == Placement::Return);
        for site in returns {
            let Some(function) = self.binary.function(site.function) else {
                continue;
            };
            let first = !callees.contains_key(&function.address);
            let callee = callees
                .entry(function.address)
                .or_insert_with(|| returns::Callee::new(site.function.contains(").")));
            let reads = sites::registers_read(site);
            // Only if every return probe of the function allows it.
            callee.completes_at_next_event = (first || callee.completes_at_next_event)
                && self.binary.linkage != Linkage::Pie
                && matches!(site.operation, Observed::ChanSend | Observed::ChanReceive)
                && reads.is_empty();
            callee.read(&reads);
            callee.joinable &= site.operation.hides_races_when_spurious();
            callee.spillable &= sites::reads_only_its_object_register(site);
            callee.copyable &= sites::reads_only_its_base_register(site);
        }
        CallerProbes::new(callees)
    }

    /// Replaces the `RET` probes of every function only ever called directly by probes in its
    /// callers (see [`returns`]).
    fn observe_returns_in_callers(&mut self, mut callers: CallerProbes) {
        let text = self.binary.text_start();
        for data in self.binary.data_sections() {
            callers.scan_data(data, text);
        }
        let moved = callers.finish();
        let entry = |site: &ProbeSite| self.binary.function(site.function).map(|f| f.address);
        let mut returns: Vec<(FunctionId, Observed, u64)> = Vec::new();
        for site in &self.plan.sites {
            if site.placement == Placement::Return {
                if let Some(entry) = entry(site).filter(|entry| moved.contains_key(entry)) {
                    if !returns.contains(&(site.id, site.operation, entry)) {
                        returns.push((site.id, site.operation, entry));
                    }
                }
            }
        }
        let moved_entries: HashSet<u64> = returns.iter().map(|&(_, _, entry)| entry).collect();
        let binary = self.binary;
        self.plan.sites.retain(|site| {
            site.placement != Placement::Return
                || !binary
                    .function(site.function)
                    .is_some_and(|function| moved_entries.contains(&function.address))
        });
        for (id, operation, entry) in returns {
            for probe in &moved[&entry] {
                if probe.unprobed {
                    self.plan.completed_at_next_event.push(probe.address);
                    continue;
                }
                let placement = match probe.guarded {
                    true => Placement::AfterCallIfReturned,
                    false => Placement::AfterCall,
                };
                self.push_reading(id, operation, placement, probe.address, probe.result_moved);
            }
        }
    }

    /// Drops the probes of an out-of-line `Mutex.Lock`, `Unlock` or `RWMutex.RUnlock` whose
    /// body has its fast path found (anchored on its call of the slow path). Lock returns
    /// either after its compare-and-swap succeeded, which the fast path's probe records as the
    /// acquire, or after `lockSlow` returned, whose own return probes record it; its `RET`s are
    /// single-stepped (a Lock called through an interface cannot be observed in its callers):
    /// one trap of 5-20 µs less per call. Unlock and RUnlock release on their inlined fast
    /// paths before anything else: their entry probes recorded the same release again.
    /// `RWMutex.Lock` likewise, once its reader checks are found: its inner Mutex's fast path
    /// or `lockSlow` acquire the writer side, the checks and `runtime_SemacquireRWMutex`'s
    /// return the readers' (see `syncsites::rwmutex_reader_checks`).
    fn drop_locks_observed_inside(&mut self) {
        let observed_inside: Vec<&str> = OUT_OF_LINE_FAST_PATHS
            .into_iter()
            .filter(|&(function, primitive)| {
                self.plan
                    .sync_sites
                    .iter()
                    .any(|site| site.function == function && site.primitive == primitive)
            })
            .map(|(function, _)| function)
            .collect();
        self.plan
            .sites
            .retain(|site| !observed_inside.contains(&site.function));
    }

    /// Inlined sync fast paths in every function, the sync package's own included: Once.doSlow
    /// and RWMutex.Lock/Unlock synchronise through their inner Mutex, and a goroutine that finds
    /// that Mutex free takes it on the inlined fast path. Each function's calls of functions
    /// whose returns are probed are found on the way (`callers`).
    fn inlined_sync_sites(&mut self, callers: &mut CallerProbes) {
        let binary = self.binary;
        let anchors: Vec<(u64, syncsites::Anchor)> = ANCHORS
            .iter()
            .filter_map(|&(name, anchor)| Some((binary.function(name)?.address, anchor)))
            .collect();
        let probed_functions: HashSet<u64> =
            self.plan.sites.iter().map(|site| site.address).collect();
        let map_functions = self.map_functions();
        let typed_atomics = binary.typed_atomics();
        let address_of = |name| binary.function(name).map_or(0, |function| function.address);
        let (lock, unlock) = (address_of("runtime.lock2"), address_of("runtime.unlock2"));
        for (name, function) in binary.functions_by_address() {
            let Some(code) = binary.code(function) else {
                continue;
            };
            let decoded = FunctionCode::decode(name, code, function.address)
                .with_map_functions(&map_functions);
            let unconfirmed = &mut self.plan.unconfirmed_sync_calls;
            let mut sites = syncsites::find_sites(&decoded, &anchors, unconfirmed);
            sites.extend(syncsites::once_done_stores(&decoded));
            sites.extend(syncsites::rwmutex_reader_checks(&decoded));
            let calls = binary.inlined_calls(function.address);
            unconfirmed.extend(syncsites::reconcile_with_inline_tree(
                &decoded, &calls, &mut sites,
            ));
            let (atomics, gaps) = syncsites::atomic_sites(&decoded, &calls);
            sites.extend(atomics);
            unconfirmed.extend(gaps);
            let probed: HashSet<u64> = sites.iter().map(|site| site.atomic).collect();
            sites.extend(syncsites::typed_field_loads(
                &decoded,
                typed_atomics.variables(function.address),
                typed_atomics.layouts(),
                &binary.stack_depths(function.address),
                &probed,
            ));
            unconfirmed.extend(syncsites::order_releases_after_acquires(
                &decoded, &mut sites,
            ));
            sites.extend(syncsites::runtime_lock_sites(&decoded, lock, unlock));
            let sync_probes: HashSet<u64> = sites.iter().map(|site| site.probe).collect();
            callers.scan(&decoded, |address| {
                probed_functions.contains(&address) || sync_probes.contains(&address)
            });
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

    /// The functions whose entry probe records a map access that involves nothing of the
    /// caller's frame but its arguments (iterators live in the caller's frame): a release
    /// right after a call of one may be probed on the call (see `syncsites`).
    fn map_functions(&self) -> HashSet<u64> {
        self.plan
            .sites
            .iter()
            .filter(|site| site.operation.is_map_access_by_key())
            .filter(|site| {
                matches!(
                    site.placement,
                    Placement::AfterStackCheck | Placement::Entry
                )
            })
            .filter_map(|site| self.binary.function(site.function))
            .map(|function| function.address)
            .collect()
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

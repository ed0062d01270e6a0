//! Every Go function tracer probes, described once: where it is probed, which registers hold
//! what, and what it means for the happens-before order. The plan places probes from it
//! ([`super::plan`]), the kernel parameters take their registers from it ([`super::sites`]), and
//! translation reads its meaning through the [`FunctionId`] each site carries, so nothing on
//! the event path compares function names.
//!
//! Names are those of Go 1.21–1.27 (docs/go-internals.md): a function missing from a binary
//! is listed as absent and skipped. Uncontended Lock/Unlock/RLock/RUnlock/Once.Do/
//! WaitGroup.Done are inlined into their callers and found by the inline-site analysis
//! instead; the sync functions here are what remains out of line: slow paths, deferred calls,
//! semaphores, pointer atomics.

use tracer_common::{register, KeyClass};

use super::Observed;
use crate::analyse::{MapImplementation, RuntimeField};

/// Where a function is probed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// Its entry (after the stack check when one is found).
    Entry,
    /// Each of its `RET` instructions: its results are in registers.
    Returns,
    /// Each direct call it makes to the named function, on the `CALL` (arguments in registers).
    CallsTo(&'static str),
    /// Its one call of one of the named functions (the first it calls), where its result waits
    /// in a frame slot that it then returns, unless it makes a new one (`sync.(*Pool).Get`
    /// across `runtime_procUnpin`): the kernel emulates the `CALL`, while a `RET` is
    /// single-stepped, and a caller may return where other paths join. Its `RET`s (observed in
    /// the callers where possible) when the code is not of that shape.
    SpilledBefore(&'static [&'static str]),
    /// Its return, observed on each call it makes of the named function, after which nothing
    /// it does matters to the order (`cgocall`'s `exitsyscall`, once C has returned): the
    /// kernel emulates the `CALL`, while a `RET` is single-stepped and a function called
    /// through a pointer cannot be observed in its callers.
    ReturnsAtCallTo(&'static str),
    /// Each call of a function value it makes, on the `CALL` (single-stepped: the kernel
    /// emulates direct calls only; for calls that run rarely).
    IndirectCalls,
}

/// One probe of a function: where, and what it observes there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    pub at: At,
    pub operation: Observed,
}

/// What an out-of-line sync function means at its entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnEntry {
    Nothing,
    /// Mutex.Unlock (out of line), RWMutex.Unlock: release.
    Release,
    /// Semaphore releases, pointer atomics' writes: release-merge.
    ReleaseMerge,
    /// RWMutex.RUnlock out of line: release-merge on the writer side.
    ReleaseMergeWriterSide,
    /// WaitGroup.Add: a negative delta (Done) release-merges.
    AddDelta,
    /// `sync.Map.Range`: its callback sees what was stored before, so it acquires at once.
    Acquire,
    /// A write to a file descriptor: release-merge into the flow of data it writes to (whose
    /// key the kernel program puts in place of the descriptor, `object::WRITTEN_FLOW`).
    WriteFlow,
    /// Acquire everything known (a finalizer about to run, as -race's `racefingo` has it).
    AcquireEverything,
    /// Release-merge into one object shared by every goroutine (see [`Global`]).
    ReleaseMergeGlobal(Global),
    /// Acquire one object shared by every goroutine.
    AcquireGlobal(Global),
}

/// What an out-of-line sync function means where it returns (matched with its entry, which
/// names the object).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnReturn {
    /// Nothing: its returns are not probed (a probe on `RET` is single-stepped, and deferred
    /// Unlocks are common).
    Nothing,
    /// Lock slow paths, semaphore acquires, WaitGroup.Wait, out-of-line RLock: acquire.
    Acquire,
    /// RWMutex.Lock: acquire both the reader and the writer side.
    AcquireBoth,
    /// Once.doSlow: whoever ran f publishes it, whoever waited learns it.
    AcquireAndPublish,
    /// Out-of-line TryLock / RWMutex TryRLock: acquire if it returned true.
    AcquireIfTrue,
    /// RWMutex.TryLock: acquire both sides if it returned true.
    AcquireBothIfTrue,
    /// `runtime_SemacquireRWMutexR`: a reader that waited for a writer (an inlined RLock that
    /// found the lock held) acquires the lock.
    EndReaderWait,
    /// `runtime_SemacquireRWMutex(&rw.writerSem)`: a writer woken by the last reader to leave
    /// acquires the semaphore and what every reader that left released (the RWMutex's reader
    /// side, [`RWMUTEX_WRITER_SEM`] bytes before the semaphore).
    EndWriterWait,
    /// `synctest.Wait` and `Run`: they return once every other goroutine of the bubble is
    /// durably blocked, and -race orders each such goroutine's parking before that. tracer does
    /// not see the bubble: the caller learns everything known (can hide a race, never invent).
    AcquireEverything,
    /// A read from a file descriptor: acquire the flow of data it read from (its key put in
    /// place of the descriptor at entry, `object::READ_FLOW`).
    ReadFlow,
    /// Acquire one object shared by every goroutine (see [`Global`]).
    AcquireGlobal(Global),
    /// Release-merge into one object shared by every goroutine.
    ReleaseMergeGlobal(Global),
}

/// Synchronisation tracer cannot see but that -race models as one object for the whole
/// program: everything released into it is learnt by whoever acquires it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Global {
    /// pprof's goroutine labels (`labelSync`): setting them releases, reading a profile (which
    /// reads every goroutine's labels) acquires.
    ProfileLabels,
    /// C code (`racecgosync`): a cgo call releases before C runs and acquires when it returns;
    /// a callback from C into Go acquires when it starts and releases when it ends.
    Cgo,
}

impl Global {
    pub const ALL: [Self; 2] = [Self::ProfileLabels, Self::Cgo];

    pub fn name(self) -> &'static str {
        match self {
            Self::ProfileLabels => "profile labels",
            Self::Cgo => "cgo calls",
        }
    }
}

/// Where `writerSem` is in a `sync.RWMutex` (after its `w Mutex`; Go 1.21–1.27).
pub const RWMUTEX_WRITER_SEM: u64 = 8;

/// What a function's probes need beyond their operation: the registers that differ from one
/// function of an operation to another, and the meaning of sync functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Meaning {
    /// Everything follows from the operation.
    Plain,
    /// A non-blocking select whose channel is in this register at entry
    /// (`selectnbsend(c, elem)` but `selectnbrecv(elem, c)`).
    ChannelIn(u8),
    /// A receive whose return says in this register whether a value arrived (false: the
    /// channel is closed); a receive without one cannot tell.
    ReceivedIn(u8),
    /// An `atomic.Value` publication whose value's data word is in this register at entry.
    PublishedIn(u8),
    /// A map maker whose return has the new map in this register rather than AX.
    MadeIn(u8),
    /// An out-of-line sync function.
    Sync(OnEntry, OnReturn),
}

/// An object read behind a pointer rather than passed: the `field` of the struct `base`
/// points to at the probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldOf {
    pub base: u8,
    pub field: RuntimeField,
}

/// One probed Go function.
#[derive(Clone, Copy, Debug)]
pub struct GoFunction {
    pub name: &'static str,
    pub probes: &'static [Probe],
    /// How a map operation's key is passed.
    pub key: KeyClass,
    pub meaning: Meaning,
    /// Probed only in binaries with this map implementation.
    pub only_with: Option<MapImplementation>,
    /// Where its entry finds its object, when that is a field behind a pointer rather than
    /// the register its operation names.
    pub object_in: Option<FieldOf>,
}

impl GoFunction {
    /// What the function means at its entry and returns, if it is a sync function.
    pub fn sync(&self) -> Option<(OnEntry, OnReturn)> {
        match self.meaning {
            Meaning::Sync(on_entry, on_return) => Some((on_entry, on_return)),
            _ => None,
        }
    }

    /// Whether its return says if a value arrived.
    pub fn reports_received(&self) -> bool {
        matches!(self.meaning, Meaning::ReceivedIn(_))
    }
}

/// A function of [`CATALOGUE`], by its index: what each probe site carries to translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FunctionId(u8);

impl FunctionId {
    pub fn function(self) -> &'static GoFunction {
        &CATALOGUE[usize::from(self.0)]
    }

    /// The catalogue's function called `name` (replay, which reads names from a recording).
    pub fn of(name: &str) -> Option<Self> {
        CATALOGUE
            .iter()
            .position(|function| function.name == name)
            .and_then(|index| u8::try_from(index).ok())
            .map(Self)
    }

    /// Every function, with its id.
    pub fn all() -> impl Iterator<Item = (Self, &'static GoFunction)> {
        (0..=u8::MAX).map(Self).zip(CATALOGUE.iter())
    }
}

const fn probe(at: At, operation: Observed) -> Probe {
    Probe { at, operation }
}

const fn function(name: &'static str, probes: &'static [Probe], meaning: Meaning) -> GoFunction {
    GoFunction {
        name,
        probes,
        key: KeyClass::None,
        meaning,
        only_with: None,
        object_in: None,
    }
}

/// A map operation, probed at its entry.
const fn map(name: &'static str, probes: &'static [Probe], key: KeyClass) -> GoFunction {
    GoFunction {
        key,
        ..function(name, probes, Meaning::Plain)
    }
}

/// An out-of-line sync function: its entry is probed when it means something or when its
/// returns do (the entry gives them their object).
const fn sync(name: &'static str, on_entry: OnEntry, on_return: OnReturn) -> GoFunction {
    let probes: &'static [Probe] = match (on_entry, on_return) {
        (OnEntry::Nothing, OnReturn::Nothing) => &[],
        (_, OnReturn::Nothing) => &[SYNC_ENTRY],
        _ => &[SYNC_ENTRY, SYNC_RETURNS],
    };
    function(name, probes, Meaning::Sync(on_entry, on_return))
}

use At::{CallsTo, Entry, IndirectCalls, Returns, ReturnsAtCallTo, SpilledBefore};
use KeyClass as Key;
use Observed as Op;
use OnEntry as E;
use OnReturn as R;

const ASSIGN: &[Probe] = &[probe(Entry, Op::MapAssign)];
const DELETE: &[Probe] = &[probe(Entry, Op::MapDelete)];
const READ: &[Probe] = &[probe(Entry, Op::MapRead)];
const ITER_START: &[Probe] = &[probe(Entry, Op::MapIterStart)];
const ITER_NEXT: &[Probe] = &[probe(Entry, Op::MapIterNext)];
const MAKE_MAP: &[Probe] = &[probe(Returns, Op::MapMake)];
const CLONE: &[Probe] = &[probe(Entry, Op::MapRead), probe(Returns, Op::MapMake)];
const MAKE_CHAN: &[Probe] = &[probe(Returns, Op::ChanMake)];
const SEND: &[Probe] = &[probe(Entry, Op::ChanSend), probe(Returns, Op::ChanSend)];
const RECEIVE: &[Probe] = &[
    probe(Entry, Op::ChanReceive),
    probe(Returns, Op::ChanReceive),
];
const FATAL: &[Probe] = &[probe(Entry, Op::Fatal)];
const HAND_OFF: &[Probe] = &[probe(Entry, Op::ChanHandOff)];
const PUBLISH: &[Probe] = &[probe(Entry, Op::AtomicPublish)];
const SYNC_ENTRY: Probe = probe(Entry, Op::Sync);
const SYNC_RETURNS: Probe = probe(Returns, Op::Sync);
/// Where channel values enter and leave buffer slots: the calls that copy a value into a slot
/// or clear one, made under the channel's lock (docs/go-internals.md).
const SLOT_COPIES: &[Probe] = &[
    probe(CallsTo("runtime.typedmemmove"), Op::ChanSlot),
    probe(CallsTo("runtime.typedmemclr"), Op::ChanSlot),
];

const SELECT: &[Probe] = &[
    probe(Entry, Op::SelectChosen),
    probe(Returns, Op::SelectChosen),
    SLOT_COPIES[0],
    SLOT_COPIES[1],
];

/// sync.Map's methods from Go 1.24: `internal/sync.HashTrieMap[any, any]`'s, by shape.
macro_rules! hash_trie_method {
    ($method:literal) => {
        concat!(
            "internal/sync.(*HashTrieMap[go.shape.interface {},go.shape.interface {}]).",
            $method
        )
    };
}
const HASH_TRIE_LOAD: &str = hash_trie_method!("Load");
const HASH_TRIE_SWAP: &str = hash_trie_method!("Swap");
const HASH_TRIE_LOAD_OR_STORE: &str = hash_trie_method!("LoadOrStore");
const HASH_TRIE_LOAD_AND_DELETE: &str = hash_trie_method!("LoadAndDelete");
const HASH_TRIE_COMPARE_AND_SWAP: &str = hash_trie_method!("CompareAndSwap");
const HASH_TRIE_COMPARE_AND_DELETE: &str = hash_trie_method!("CompareAndDelete");
const HASH_TRIE_CLEAR: &str = hash_trie_method!("Clear");
const HASH_TRIE_RANGE: &str = hash_trie_method!("Range");

/// Every probed function. The order is the order of the plan's sites.
pub const CATALOGUE: &[GoFunction] = &[
    // Map entry points the compiler emits: the same names in Go 1.21–1.27. 1.27's mapaccess1*
    // and every version's mapaccess1_fat call a mapaccess2*: the plan leaves such a wrapper out.
    map("runtime.mapassign", ASSIGN, Key::None),
    map("runtime.mapassign_fast32", ASSIGN, Key::U32),
    map("runtime.mapassign_fast64", ASSIGN, Key::U64),
    map("runtime.mapassign_fast64ptr", ASSIGN, Key::U64),
    map("runtime.mapassign_faststr", ASSIGN, Key::Str),
    map("runtime.mapdelete", DELETE, Key::None),
    map("runtime.mapdelete_fast32", DELETE, Key::U32),
    map("runtime.mapdelete_fast64", DELETE, Key::U64),
    map("runtime.mapdelete_faststr", DELETE, Key::Str),
    map("runtime.mapclear", &[probe(Entry, Op::MapClear)], Key::None),
    // `maps.Clone(m)` reads the whole map in the runtime (`maps.clone`, a linkname target whose
    // `any` argument and result put the map in BX): the runtime kills the process with
    // "concurrent map clone and map write" when it notices a write meanwhile. Its result is a
    // new map, which Swiss tables (1.24+) allocate without `makemap`: made where it returns,
    // so that the history of a dead map at the same address is not taken for the clone's.
    GoFunction {
        meaning: Meaning::MadeIn(register::RBX),
        ..map("maps.clone", CLONE, Key::None)
    },
    map("runtime.mapaccess1", READ, Key::None),
    map("runtime.mapaccess1_fast32", READ, Key::U32),
    map("runtime.mapaccess1_fast64", READ, Key::U64),
    map("runtime.mapaccess1_faststr", READ, Key::Str),
    map("runtime.mapaccess1_fat", READ, Key::None),
    map("runtime.mapaccess2", READ, Key::None),
    map("runtime.mapaccess2_fast32", READ, Key::U32),
    map("runtime.mapaccess2_fast64", READ, Key::U64),
    map("runtime.mapaccess2_faststr", READ, Key::Str),
    // `for range` over a map: Swiss tables (1.24+) have their own names and keep
    // mapiterinit/mapiternext only as shims for linkname users.
    map("runtime.mapiterinit", ITER_START, Key::None),
    map("runtime.mapiternext", ITER_NEXT, Key::None),
    GoFunction {
        only_with: Some(MapImplementation::Swiss),
        ..map("runtime.mapIterStart", ITER_START, Key::None)
    },
    GoFunction {
        only_with: Some(MapImplementation::Swiss),
        ..map("runtime.mapIterNext", ITER_NEXT, Key::None)
    },
    // reflect's own copies of the two (`Value.MapRange`, `MapKeys`, `encoding/json`, `fmt`,
    // templates), same arguments, on Swiss tables; before, reflect calls the runtime's.
    GoFunction {
        only_with: Some(MapImplementation::Swiss),
        ..map("reflect.mapIterStart", ITER_START, Key::None)
    },
    GoFunction {
        only_with: Some(MapImplementation::Swiss),
        ..map("reflect.mapIterNext", ITER_NEXT, Key::None)
    },
    function("runtime.makemap", MAKE_MAP, Meaning::Plain),
    function("runtime.makemap64", MAKE_MAP, Meaning::Plain),
    // The new map waits in a frame slot while its hash seed is drawn (Go 1.22 on): observed
    // there, once per map and never single-stepped, rather than in every caller (one returns
    // into an epilogue other paths join, net/http's `cloneOrMakeHeader`, on every request).
    function(
        "runtime.makemap_small",
        &[probe(
            SpilledBefore(&["runtime.rand", "internal/runtime/maps.rand"]),
            Op::MapMake,
        )],
        Meaning::Plain,
    ),
    // Goroutines: the `go` statement (its creating stack is still visible), the new g in AX
    // when `newproc1` returns (observed in its callers, see `returns`), and the end of a
    // goroutine.
    function(
        "runtime.newproc",
        &[probe(Entry, Op::GoStatement)],
        Meaning::Plain,
    ),
    function(
        "runtime.newproc1",
        &[probe(Returns, Op::GoroutineCreate)],
        Meaning::Plain,
    ),
    function(
        "runtime.goexit1",
        &[probe(Entry, Op::GoroutineExit)],
        Meaning::Plain,
    ),
    // Channels.
    function("runtime.makechan", MAKE_CHAN, Meaning::Plain),
    function("runtime.makechan64", MAKE_CHAN, Meaning::Plain),
    function("runtime.chansend1", SEND, Meaning::Plain),
    function("runtime.chanrecv1", RECEIVE, Meaning::Plain),
    function(
        "runtime.chanrecv2",
        RECEIVE,
        Meaning::ReceivedIn(register::RAX),
    ),
    // reflect.Value.Send/Recv/TrySend/TryRecv: the runtime's bodies under reflect's names.
    // `chansend0(c, elem, nb) bool` and `chanrecv(c, nb, elem) (selected, received bool)`.
    function("reflect.chansend0", SEND, Meaning::Plain),
    function(
        "reflect.chanrecv",
        RECEIVE,
        Meaning::ReceivedIn(register::RBX),
    ),
    function(
        "runtime.selectnbsend",
        &[probe(Entry, Op::SelectNonBlocking)],
        Meaning::ChannelIn(register::RAX),
    ),
    function(
        "runtime.selectnbrecv",
        &[
            probe(Entry, Op::SelectNonBlocking),
            probe(Returns, Op::SelectNonBlocking),
        ],
        Meaning::ChannelIn(register::RBX),
    ),
    function(
        "runtime.closechan",
        &[probe(Entry, Op::ChanClose)],
        Meaning::Plain,
    ),
    // selectgo: its entry (a select starts), its return with the chosen case (AX) and whether
    // a receive got a value (BL), and its copies into and out of slots.
    function("runtime.selectgo", SELECT, Meaning::Plain),
    function("runtime.chansend", SLOT_COPIES, Meaning::Plain),
    function("runtime.chanrecv", SLOT_COPIES, Meaning::Plain),
    function("runtime.send", HAND_OFF, Meaning::Plain),
    function("runtime.recv", HAND_OFF, Meaning::Plain),
    // The runtime is about to kill the process.
    function("runtime.fatal", FATAL, Meaning::Plain),
    function("runtime.throw", FATAL, Meaning::Plain),
    // sync.Pool: Put(x any) gets x's data word in CX; Get returns it in BX, and keeps what it
    // got from the pool in a frame slot across `runtime_procUnpin` (what New() makes instead
    // was never Put: nothing to acquire). Get is a method in its type's method table, so its
    // returns cannot all be observed in its callers.
    function(
        "sync.(*Pool).Put",
        &[probe(Entry, Op::PoolPut)],
        Meaning::Plain,
    ),
    function(
        "sync.(*Pool).Get",
        &[probe(
            SpilledBefore(&["sync.runtime_procUnpin"]),
            Op::PoolGet,
        )],
        Meaning::Plain,
    ),
    // time.AfterFunc(d, f) arms a timer with f (in BX); goFunc(arg, …) starts f's goroutine.
    function(
        "time.AfterFunc",
        &[probe(Entry, Op::TimerArm)],
        Meaning::Plain,
    ),
    function(
        "time.goFunc",
        &[probe(Entry, Op::TimerFire)],
        Meaning::Plain,
    ),
    // `Timer.Reset` arms the timer again (the runtime's body under the name its linkname gives
    // it, also reached by `Ticker.Reset` from 1.23): as -race does, what the goroutine did
    // before a reset is ordered before the callback, as before the first arming.
    GoFunction {
        object_in: Some(FieldOf {
            base: register::RAX,
            field: RuntimeField::TimerCallback,
        }),
        ..function(
            "time.resetTimer",
            &[probe(Entry, Op::TimerArm)],
            Meaning::Plain,
        )
    },
    // atomic.Value publications (maps are often published copy-on-write this way, and read
    // without a lock): Store(val any) and Swap(new any) get the value's data word in CX,
    // CompareAndSwap(old, new any) the new one's in SI.
    function(
        "sync/atomic.(*Value).Store",
        PUBLISH,
        Meaning::PublishedIn(register::RCX),
    ),
    function(
        "sync/atomic.(*Value).Swap",
        PUBLISH,
        Meaning::PublishedIn(register::RCX),
    ),
    function(
        "sync/atomic.(*Value).CompareAndSwap",
        PUBLISH,
        Meaning::PublishedIn(register::RSI),
    ),
    // Out-of-line sync functions, under each name they have in some supported version (Mutex
    // moved to internal/sync in 1.24; runtime_SemacquireWaitGroup is 1.24+).
    sync("sync.(*Mutex).Lock", E::Nothing, R::Acquire),
    sync("sync.(*Mutex).lockSlow", E::Nothing, R::Acquire),
    sync("sync.(*Mutex).TryLock", E::Nothing, R::AcquireIfTrue),
    sync("sync.(*Mutex).Unlock", E::Release, R::Nothing),
    sync("internal/sync.(*Mutex).Lock", E::Nothing, R::Acquire),
    sync("internal/sync.(*Mutex).lockSlow", E::Nothing, R::Acquire),
    sync(
        "internal/sync.(*Mutex).TryLock",
        E::Nothing,
        R::AcquireIfTrue,
    ),
    sync("internal/sync.(*Mutex).Unlock", E::Release, R::Nothing),
    sync("sync.(*RWMutex).Lock", E::Nothing, R::AcquireBoth),
    sync("sync.(*RWMutex).Unlock", E::Release, R::Nothing),
    sync("sync.(*RWMutex).RLock", E::Nothing, R::Acquire),
    sync(
        "sync.(*RWMutex).RUnlock",
        E::ReleaseMergeWriterSide,
        R::Nothing,
    ),
    sync("sync.(*RWMutex).TryLock", E::Nothing, R::AcquireBothIfTrue),
    sync("sync.(*RWMutex).TryRLock", E::Nothing, R::AcquireIfTrue),
    sync("sync.(*WaitGroup).Add", E::AddDelta, R::Nothing),
    sync("sync.(*WaitGroup).Wait", E::Nothing, R::Acquire),
    sync("sync.(*Once).doSlow", E::Nothing, R::AcquireAndPublish),
    sync("runtime.semacquire1", E::Nothing, R::Acquire),
    sync("runtime.semrelease1", E::ReleaseMerge, R::Nothing),
    sync("sync.runtime_Semacquire", E::Nothing, R::Acquire),
    sync("sync.runtime_SemacquireMutex", E::Nothing, R::Acquire),
    sync(
        "internal/sync.runtime_SemacquireMutex",
        E::Nothing,
        R::Acquire,
    ),
    sync(
        "sync.runtime_SemacquireRWMutexR",
        E::Nothing,
        R::EndReaderWait,
    ),
    sync(
        "sync.runtime_SemacquireRWMutex",
        E::Nothing,
        R::EndWriterWait,
    ),
    sync("sync.runtime_SemacquireWaitGroup", E::Nothing, R::Acquire),
    sync("sync.runtime_Semrelease", E::ReleaseMerge, R::Nothing),
    sync(
        "internal/sync.runtime_Semrelease",
        E::ReleaseMerge,
        R::Nothing,
    ),
    // sync.Map: a write (Store, which is Swap; Delete, which is LoadAndDelete; LoadOrStore,
    // CompareAndSwap, CompareAndDelete, Clear) synchronises before the reads that observe it,
    // so writes release and reads acquire, on the map as a whole (per key would need the key:
    // this orders more than the program does, which can hide a race, never invent one).
    // Up to Go 1.23 the methods are sync.Map's own; from 1.24 they are inlined into calls of
    // its internal/sync.HashTrieMap, whose receiver is the same address.
    sync("sync.(*Map).Load", E::Nothing, R::Acquire),
    sync("sync.(*Map).Swap", E::ReleaseMerge, R::Acquire),
    sync("sync.(*Map).LoadOrStore", E::ReleaseMerge, R::Acquire),
    sync("sync.(*Map).LoadAndDelete", E::ReleaseMerge, R::Acquire),
    sync("sync.(*Map).CompareAndSwap", E::ReleaseMerge, R::Acquire),
    sync("sync.(*Map).CompareAndDelete", E::ReleaseMerge, R::Acquire),
    sync("sync.(*Map).Clear", E::ReleaseMerge, R::Nothing),
    sync("sync.(*Map).Range", E::Acquire, R::Nothing),
    sync(HASH_TRIE_LOAD, E::Nothing, R::Acquire),
    sync(HASH_TRIE_SWAP, E::ReleaseMerge, R::Acquire),
    sync(HASH_TRIE_LOAD_OR_STORE, E::ReleaseMerge, R::Acquire),
    sync(HASH_TRIE_LOAD_AND_DELETE, E::ReleaseMerge, R::Acquire),
    sync(HASH_TRIE_COMPARE_AND_SWAP, E::ReleaseMerge, R::Acquire),
    sync(HASH_TRIE_COMPARE_AND_DELETE, E::ReleaseMerge, R::Acquire),
    sync(HASH_TRIE_CLEAR, E::ReleaseMerge, R::Nothing),
    sync(HASH_TRIE_RANGE, E::Acquire, R::Nothing),
    // atomic.Pointer's writes call these (a write barrier is needed; the typed methods around
    // them are inlined): writes release, Swap and CompareAndSwap also read.
    sync("sync/atomic.StorePointer", E::ReleaseMerge, R::Nothing),
    sync("sync/atomic.SwapPointer", E::ReleaseMerge, R::Acquire),
    sync(
        "sync/atomic.CompareAndSwapPointer",
        E::ReleaseMerge,
        R::Acquire,
    ),
    // Reads and writes of file descriptors (sockets, pipes, files): as -race, a write is
    // ordered before the reads that follow it — but per flow of data (one direction of a
    // connection, a pipe, a file) rather than through one object for all I/O, which would
    // order unrelated requests' handlers and hide their races (docs/how-it-works.md). The
    // system call wrappers, which `syscall.Read`, `Write`… (inlined into `internal/poll`)
    // call; the descriptor is their first argument.
    sync("syscall.write", E::WriteFlow, R::Nothing),
    sync("syscall.pwrite", E::WriteFlow, R::Nothing),
    sync("syscall.sendfile", E::WriteFlow, R::Nothing),
    sync("syscall.read", E::Nothing, R::ReadFlow),
    sync("syscall.pread", E::Nothing, R::ReadFlow),
    // Coroutines (`iter.Pull`, Go 1.23+): a switch hands the coroutine's goroutine and its
    // caller's over to each other, as -race orders them (`iter.go`'s acquires and releases
    // around each switch): each side releases into the coro before it switches and acquires it
    // when its own switch returns; the coroutine's end releases for the caller's last return.
    sync("runtime.coroswitch", E::ReleaseMerge, R::Acquire),
    sync("runtime.coroexit", E::ReleaseMerge, R::Nothing),
    // The coroutine's goroutine starts here at the caller's first switch, which passes
    // through no `coroswitch` return on this side: it acquires the coro the runtime left in
    // its g (R14) for it, so that what the caller did before its first `next()` is ordered.
    GoFunction {
        object_in: Some(FieldOf {
            base: register::R14,
            field: RuntimeField::CoroutineArgument,
        }),
        ..sync("runtime.corostart", E::Acquire, R::Nothing)
    },
    // Finalizers run on the runtime's finalizer goroutine, which takes them off a queue the
    // collector fills: nothing the program does orders them after its last use of the object,
    // so -race orders everything known before each batch (`racefingo`, the race runtime's
    // global acquire). tracer does so before each finalizer, on its `reflectcall` (1.21–1.24
    // `runfinq`, 1.25+ `runFinalizers`), and before each of Go 1.24's cleanups, which
    // `runfinq` calls as function values; 1.25+ cleanups (run by `runCleanups`) once their
    // batch is dequeued.
    GoFunction {
        probes: &[
            probe(CallsTo("runtime.reflectcall"), Op::Sync),
            probe(IndirectCalls, Op::Sync),
        ],
        ..sync("runtime.runfinq", E::AcquireEverything, R::Nothing)
    },
    GoFunction {
        probes: &[probe(CallsTo("runtime.reflectcall"), Op::Sync)],
        ..sync("runtime.runFinalizers", E::AcquireEverything, R::Nothing)
    },
    sync(
        "runtime.(*cleanupQueue).dequeue",
        E::Nothing,
        R::AcquireEverything,
    ),
    // pprof labels (`pprof.Do`, `SetGoroutineLabels`) are a map up to Go 1.23, which the
    // profile writer ranges over; as -race (`labelSync`), setting labels releases and reading a
    // CPU profile's records or a goroutine profile acquires.
    sync(
        "runtime/pprof.runtime_setProfLabel",
        E::ReleaseMergeGlobal(Global::ProfileLabels),
        R::Nothing,
    ),
    sync(
        "runtime/pprof.readProfile",
        E::Nothing,
        R::AcquireGlobal(Global::ProfileLabels),
    ),
    sync(
        "runtime.goroutineProfileWithLabelsConcurrent",
        E::Nothing,
        R::AcquireGlobal(Global::ProfileLabels),
    ),
    sync(
        "runtime.goroutineProfileWithLabelsSync",
        E::Nothing,
        R::AcquireGlobal(Global::ProfileLabels),
    ),
    // C code may synchronise in ways nothing shows (a C queue, a C mutex): as -race
    // (`racecgosync`), every cgo call releases before C runs and acquires when it returns, and a
    // callback from C acquires when it starts and releases when it ends.
    GoFunction {
        probes: &[
            SYNC_ENTRY,
            probe(ReturnsAtCallTo("runtime.exitsyscall"), Op::Sync),
        ],
        ..sync(
            "runtime.cgocall",
            E::ReleaseMergeGlobal(Global::Cgo),
            R::AcquireGlobal(Global::Cgo),
        )
    },
    sync(
        "runtime.cgocallbackg1",
        E::AcquireGlobal(Global::Cgo),
        R::ReleaseMergeGlobal(Global::Cgo),
    ),
    // testing/synctest's bubbles (Go 1.24 with GOEXPERIMENT=synctest, 1.25+): the runtime's
    // bodies under the names their linknames give them.
    sync("internal/synctest.Wait", E::Nothing, R::AcquireEverything),
    sync("internal/synctest.Run", E::Nothing, R::AcquireEverything),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_function_is_described_once_and_found_by_its_name() {
        for (id, function) in FunctionId::all() {
            assert_eq!(FunctionId::of(function.name), Some(id), "{}", function.name);
            assert!(
                !function.probes.is_empty(),
                "{} is never probed",
                function.name
            );
        }
        assert!(CATALOGUE.len() <= usize::from(u8::MAX), "ids are bytes");
        assert_eq!(FunctionId::of("main.main"), None);
    }

    #[test]
    fn sync_returns_are_probed_only_with_their_entry() {
        // An open call is kept until its return: a return probed without its entry would
        // leave calls open forever, and an entry whose returns are not probed must not open one.
        for (_, function) in FunctionId::all() {
            let Some((on_entry, on_return)) = function.sync() else {
                continue;
            };
            let at = |place| function.probes.iter().any(|probe| probe.at == place);
            let called = function
                .probes
                .iter()
                .any(|probe| matches!(probe.at, CallsTo(_) | IndirectCalls));
            let returns = function
                .probes
                .iter()
                .any(|probe| matches!(probe.at, Returns | ReturnsAtCallTo(_)));
            assert_eq!(returns, on_return != R::Nothing, "{}", function.name);
            assert_eq!(
                at(Entry) || called,
                on_entry != E::Nothing || on_return != R::Nothing,
                "{}",
                function.name
            );
        }
    }
}

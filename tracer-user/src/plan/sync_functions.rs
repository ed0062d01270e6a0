//! The out-of-line synchronisation functions tracer probes and what their entries and returns
//! mean for the happens-before order: one table, read by the plan (which probes to place) and by
//! the translator (which operations an event stands for).
//!
//! Uncontended Lock/Unlock/RLock/RUnlock/Once.Do/WaitGroup.Done are inlined into their callers
//! and found by the inline-site analysis instead (GO_INTERNALS.md §2c); the functions here are
//! what remains out of line: slow paths, deferred calls, semaphores, pointer atomics.

/// What a function means at its entry.
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
}

/// What a function means where it returns (matched with its entry, which names the object).
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
}

/// One probed function.
#[derive(Clone, Copy, Debug)]
pub struct SyncFunction {
    pub name: &'static str,
    pub on_entry: OnEntry,
    pub on_return: OnReturn,
}

impl SyncFunction {
    /// The entry is probed when it means something, or when the returns do (the entry gives
    /// them their object).
    pub fn entry_probed(&self) -> bool {
        self.on_entry != OnEntry::Nothing || self.returns_probed()
    }

    pub fn returns_probed(&self) -> bool {
        self.on_return != OnReturn::Nothing
    }
}

const fn function(name: &'static str, on_entry: OnEntry, on_return: OnReturn) -> SyncFunction {
    SyncFunction {
        name,
        on_entry,
        on_return,
    }
}

use OnEntry as E;
use OnReturn as R;

/// Every out-of-line function probed, under each name it has in some supported Go version
/// (Mutex moved to internal/sync in 1.24; runtime_SemacquireWaitGroup is 1.24+).
pub const SYNC_FUNCTIONS: [SyncFunction; 30] = [
    function("sync.(*Mutex).Lock", E::Nothing, R::Acquire),
    function("sync.(*Mutex).lockSlow", E::Nothing, R::Acquire),
    function("sync.(*Mutex).TryLock", E::Nothing, R::AcquireIfTrue),
    function("sync.(*Mutex).Unlock", E::Release, R::Nothing),
    function("internal/sync.(*Mutex).Lock", E::Nothing, R::Acquire),
    function("internal/sync.(*Mutex).lockSlow", E::Nothing, R::Acquire),
    function(
        "internal/sync.(*Mutex).TryLock",
        E::Nothing,
        R::AcquireIfTrue,
    ),
    function("internal/sync.(*Mutex).Unlock", E::Release, R::Nothing),
    function("sync.(*RWMutex).Lock", E::Nothing, R::AcquireBoth),
    function("sync.(*RWMutex).Unlock", E::Release, R::Nothing),
    function("sync.(*RWMutex).RLock", E::Nothing, R::Acquire),
    function(
        "sync.(*RWMutex).RUnlock",
        E::ReleaseMergeWriterSide,
        R::Nothing,
    ),
    function("sync.(*RWMutex).TryLock", E::Nothing, R::AcquireBothIfTrue),
    function("sync.(*RWMutex).TryRLock", E::Nothing, R::AcquireIfTrue),
    function("sync.(*WaitGroup).Add", E::AddDelta, R::Nothing),
    function("sync.(*WaitGroup).Wait", E::Nothing, R::Acquire),
    function("sync.(*Once).doSlow", E::Nothing, R::AcquireAndPublish),
    function("runtime.semacquire1", E::Nothing, R::Acquire),
    function("runtime.semrelease1", E::ReleaseMerge, R::Nothing),
    function("sync.runtime_Semacquire", E::Nothing, R::Acquire),
    function("sync.runtime_SemacquireMutex", E::Nothing, R::Acquire),
    function(
        "internal/sync.runtime_SemacquireMutex",
        E::Nothing,
        R::Acquire,
    ),
    function(
        "sync.runtime_SemacquireRWMutexR",
        E::Nothing,
        R::EndReaderWait,
    ),
    function("sync.runtime_SemacquireRWMutex", E::Nothing, R::Acquire),
    function("sync.runtime_SemacquireWaitGroup", E::Nothing, R::Acquire),
    function("sync.runtime_Semrelease", E::ReleaseMerge, R::Nothing),
    function(
        "internal/sync.runtime_Semrelease",
        E::ReleaseMerge,
        R::Nothing,
    ),
    // atomic.Pointer's writes call these (a write barrier is needed; the typed methods around
    // them are inlined): writes release, Swap and CompareAndSwap also read.
    function("sync/atomic.StorePointer", E::ReleaseMerge, R::Nothing),
    function("sync/atomic.SwapPointer", E::ReleaseMerge, R::Acquire),
    function(
        "sync/atomic.CompareAndSwapPointer",
        E::ReleaseMerge,
        R::Acquire,
    ),
];

/// What `function` (a name from [`SYNC_FUNCTIONS`]) means at its entry and returns.
pub fn meaning(function: &str) -> (OnEntry, OnReturn) {
    SYNC_FUNCTIONS
        .iter()
        .find(|known| known.name == function)
        .map_or((OnEntry::Nothing, OnReturn::Nothing), |known| {
            (known.on_entry, known.on_return)
        })
}

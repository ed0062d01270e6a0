//! The engine's vocabulary: the generic operations a caller translates Go's synchronisation into
//! (mirroring the annotations of Go's `-race` runtime), and the race reports that come out.

/// Go's goroutine id (`goid`).
pub type GoroutineId = u64;
/// The address of a synchronisation object or of a map header.
pub type Address = u64;
/// An opaque code-site identity chosen by the caller (e.g. a stack id): equal ids = same site.
pub type SiteId = u64;

/// One operation that matters to happens-before or to the race check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    /// `go f()`: the child starts knowing everything its parent knew; `site` is where it was created.
    Spawn {
        parent: GoroutineId,
        child: GoroutineId,
        site: SiteId,
    },
    /// The goroutine ended: its clock slot may be reused.
    Exit { goroutine: GoroutineId },
    /// The goroutine learns what was released on `object` (Mutex Lock, WaitGroup Wait return…).
    Acquire {
        goroutine: GoroutineId,
        object: Address,
    },
    /// `object` now carries exactly the goroutine's knowledge (Mutex Unlock, close…).
    Release {
        goroutine: GoroutineId,
        object: Address,
    },
    /// `object` accumulates the goroutine's knowledge (RWMutex RUnlock, WaitGroup Done…).
    ReleaseMerge {
        goroutine: GoroutineId,
        object: Address,
    },
    /// A hand-off (channel slots): `object` takes the goroutine's knowledge and the goroutine
    /// learns what `object` carried before, as `__tsan_release_acquire`.
    ReleaseAcquire {
        goroutine: GoroutineId,
        object: Address,
    },
    /// The goroutine is ordered after everything recorded so far: the completion of an
    /// operation whose start was not seen (lost in a hole of the stream, or before tracing
    /// began), so what it acquires is unknown. More ordering than the program has, never less;
    /// costs one clock-wide join.
    AcquireAll { goroutine: GoroutineId },
    /// A new map at this address: the history of the previous map there is irrelevant.
    MapCreated { map: Address },
    /// A new synchronisation object at this address (a channel `makechan` returned, and the
    /// objects derived from it): it starts knowing nothing, whatever an object there carried
    /// before, or may have carried before an eviction. The garbage collector reuses the memory of
    /// dead channels at once; without this, a channel made where one died passes on what the dead
    /// one carried, and orders goroutines that never met.
    ObjectCreated { object: Address },
    /// A read (lookup, iteration) or write (assign, delete, clear) of a map.
    MapAccess {
        goroutine: GoroutineId,
        map: Address,
        write: bool,
        site: SiteId,
    },
    /// Events were lost at this point of the stream. `None`: any event may be missing, map
    /// creations included. `Some(goroutines)`: only the synchronisation, spawn, exit and map
    /// access events of these goroutines are missing (a lost map creation needs `None`).
    /// The engine forgets every recorded access a lost event could have ordered; it cannot take
    /// back a race reported between the loss and the gap, so place the gap where events were lost.
    Gap {
        goroutines: Option<Vec<GoroutineId>>,
    },
}

/// One side of a race.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    pub goroutine: GoroutineId,
    pub write: bool,
    pub site: SiteId,
    /// Where the access is in the stream (the `seq` given to `Engine::process`).
    pub seq: u64,
    /// Where the goroutine was spawned, if its spawn was seen.
    pub created_at: Option<SiteId>,
}

impl Access {
    /// `"write"` or `"read"`.
    pub fn op(&self) -> &'static str {
        if self.write {
            "write"
        } else {
            "read"
        }
    }
}

/// Two accesses to one map, at least one a write, not ordered by happens-before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaceReport {
    pub map: Address,
    /// The later access, whose check found the race.
    pub current: Access,
    /// The earlier access it is unordered with.
    pub previous: Access,
    /// How many racing pairs with the same two code sites were seen (the report is the first).
    pub count: u64,
}

impl RaceReport {
    /// `"<current op>/<previous op>"`, e.g. `"write/read"`: the order Go's `-race` prints them.
    pub fn kind(&self) -> &'static str {
        match (self.current.write, self.previous.write) {
            (true, true) => "write/write",
            (true, false) => "write/read",
            (false, true) => "read/write",
            (false, false) => "read/read",
        }
    }
}

/// Bounds on the engine's memory. Reaching one loses precision (counted in [`Stats`]), never
/// soundness: what is dropped can hide a race but never invent one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maps whose access history is kept (least recently used evicted).
    pub max_maps: usize,
    /// Synchronisation objects whose clock is kept.
    pub max_sync_objects: usize,
    /// Goroutines whose clock is kept (live ones; a lost exit would otherwise leak).
    pub max_goroutines: usize,
    /// Width of every vector clock: goroutine slots, reused after exit.
    pub max_slots: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_maps: 1 << 16,
            max_sync_objects: 1 << 16,
            max_goroutines: 1 << 16,
            max_slots: 256,
        }
    }
}

/// What the engine holds and what it had to give up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Goroutines tracked (seen, not exited, not evicted).
    pub goroutines: usize,
    /// Goroutine slots allocated: no vector clock is wider.
    pub slots: usize,
    /// Maps with an access history.
    pub maps: usize,
    /// Synchronisation objects with a clock.
    pub sync_objects: usize,
    pub map_evictions: u64,
    pub sync_object_evictions: u64,
    pub goroutine_evictions: u64,
    /// Slots handed to a goroutine after their previous owner exited or was detached.
    pub slot_reuses: u64,
    /// Live goroutines detached from their slot to keep clocks within `max_slots`.
    pub slot_preemptions: u64,
    /// Recorded accesses dropped so their slot could be reused.
    pub forgotten_by_preemption: u64,
    pub gaps: u64,
    /// Recorded accesses dropped because a gap could have ordered them.
    pub forgotten_by_gap: u64,
    /// Distinct races (pairs of code sites).
    pub races: usize,
    /// Racing pairs of accesses, duplicates included.
    pub race_instances: u64,
}

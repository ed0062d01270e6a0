//! The happens-before engine: turns a stream of synchronisation and map events into race
//! reports. Pure logic, no I/O.
//!
//! The caller translates Go's operations into generic [`Operation`]s the way Go's `-race`
//! annotates them (Mutex Unlock = release, Lock = acquire; WaitGroup Done = release-merge, Wait
//! return = acquire; channel slots = release-acquire; `go f()` = spawn; ...). [`Engine`] keeps
//! FastTrack-style vector clocks: one epoch per recorded map access, vector clocks only for
//! goroutines and synchronisation objects, indexed by reusable slots so they stay small. Every
//! bound it enforces (maps, objects, goroutines, slots) and every [`Operation::Gap`] can make it
//! miss a race, never report one that is not there; [`Stats`] counts what was given up.

mod clock;
mod clock_table;
mod lru;
mod maps;
mod model;
mod reports;
mod shadow;
mod slots;
mod sync_objects;
#[cfg(test)]
mod tests;

pub use model::{Access, Address, GoroutineId, Limits, Operation, RaceReport, SiteId, Stats};

use self::{
    clock::{Epoch, SharedClock, Slot, Time},
    clock_table::{ClockTable, Clocked},
    maps::Maps,
    reports::Reports,
    shadow::Record,
    slots::Slots,
    sync_objects::SyncObjects,
};

const ADMITTED: &str = "the goroutine was admitted";
const ATTACHED: &str = "the goroutine holds a slot";

/// A goroutine as the engine knows it.
struct Goroutine {
    /// Its own epoch on top while it holds a slot.
    clock: SharedClock,
    /// Taken at its first map access since it had none: only records need a goroutine's own
    /// epochs, so one that only synchronises never widens the clocks.
    slot: Option<Slot>,
    created_at: Option<SiteId>,
}

impl Clocked for Goroutine {
    fn clock(&self) -> &SharedClock {
        &self.clock
    }
}

impl Goroutine {
    /// Starts the next epoch: what the goroutine does from now on is not ordered before what it
    /// just released or spawned. A goroutine without a slot has no epoch to start: no record
    /// names it, and its next access takes a slot at a time nobody knows yet.
    fn tick(&mut self, slots: &mut Slots, now: u64) {
        if let Some(slot) = self.slot {
            let time = slots.tick(slot, now);
            self.clock.set_own(Epoch { slot, time });
        }
    }
}

/// How a release hands the goroutine's knowledge to an object.
enum Release {
    Store,
    Merge,
    Exchange,
}

/// The happens-before engine. Pure: events in, race reports out, no I/O.
pub struct Engine {
    /// Counts events: the recency order for choosing slots to reclaim.
    now: u64,
    goroutines: ClockTable<Goroutine>,
    sync_objects: SyncObjects,
    maps: Maps,
    slots: Slots,
    /// The fewest slots a reclaim frees, to amortise its scan of every map's history.
    reclaim_batch: usize,
    reports: Reports,
    gaps: u64,
    forgotten_by_gap: u64,
    forgotten_by_preemption: u64,
    limits: Limits,
    /// The counters of the tables forgotten by [`Engine::forget_order`].
    carried: Stats,
}

impl Engine {
    pub fn new(limits: Limits) -> Self {
        Self {
            now: 0,
            // At least two: a spawn admits the child while the parent's entry is in use.
            goroutines: ClockTable::new(limits.max_goroutines.max(2)),
            sync_objects: SyncObjects::new(limits.max_sync_objects),
            maps: Maps::new(limits.max_maps),
            slots: Slots::new(limits.max_slots),
            reclaim_batch: (limits.max_slots / 8).max(1),
            reports: Reports::default(),
            gaps: 0,
            forgotten_by_gap: 0,
            forgotten_by_preemption: 0,
            limits,
            carried: Stats::default(),
        }
    }

    /// An engine whose slot times run out at `time_limit`, for tests of what follows.
    #[cfg(test)]
    fn with_time_limit(limits: Limits, time_limit: Time) -> Self {
        Self {
            slots: Slots::with_time_limit(limits.max_slots, time_limit),
            ..Self::new(limits)
        }
    }

    /// Forgets every goroutine, clock and access history, as if tracing started now (a sampling
    /// window opens after a time without probes, about which nothing is known); keeps the races
    /// found and the counters.
    pub fn forget_order(&mut self) {
        let carried = self.stats();
        let previous = std::mem::replace(self, Self::new(self.limits));
        self.reports = previous.reports;
        self.carried = carried;
    }

    /// A slot's time ran out: starts afresh, so that times restart, counted as a gap that forgot
    /// every recorded access (races across it are missed, none invented).
    fn restart_times(&mut self) {
        let forgotten = self.maps.forget_all();
        self.forget_order();
        self.carried.gaps += 1;
        self.carried.forgotten_by_gap += forgotten;
    }

    /// Applies one operation, number `seq` in the stream (increasing; copied into
    /// [`Access::seq`] so reports can point back); returns the races it revealed that are new (a
    /// pair of code sites not reported before). Operations must come in stream order.
    pub fn process(&mut self, seq: u64, operation: Operation) -> Vec<RaceReport> {
        let races = self.apply(seq, operation);
        if self.slots.exhausted() {
            self.restart_times();
        }
        races
    }

    fn apply(&mut self, seq: u64, operation: Operation) -> Vec<RaceReport> {
        self.now += 1;
        match operation {
            Operation::Spawn {
                parent,
                child,
                site,
            } => self.spawn(parent, child, site),
            Operation::Exit { goroutine } => self.exit(goroutine),
            Operation::Acquire { goroutine, object } => {
                let goroutine = admit(&mut self.goroutines, &mut self.slots, goroutine);
                self.sync_objects
                    .acquire(object, &mut goroutine.clock, &self.slots);
            }
            Operation::AcquireAll { goroutine } => {
                // Every slot's latest time, running epochs included.
                let mut everything = SharedClock::from(self.slots.times());
                everything.mark_running_epochs();
                let goroutine = admit(&mut self.goroutines, &mut self.slots, goroutine);
                goroutine.clock.join(&everything);
            }
            Operation::Release { goroutine, object } => {
                self.release(goroutine, object, Release::Store);
            }
            Operation::ReleaseMerge { goroutine, object } => {
                self.release(goroutine, object, Release::Merge);
            }
            Operation::ReleaseAcquire { goroutine, object } => {
                self.release(goroutine, object, Release::Exchange);
            }
            Operation::MapCreated { map } => self.maps.created(map),
            Operation::ObjectCreated { object } => self.sync_objects.created(object),
            Operation::MapAccess {
                goroutine,
                map,
                write,
                site,
            } => return self.access(goroutine, map, write, site, seq),
            Operation::Gap { goroutines } => self.gap(goroutines.as_deref()),
        }
        Vec::new()
    }

    /// Every distinct race so far, in order of detection, with its count.
    pub fn reports(&self) -> &[RaceReport] {
        self.reports.all()
    }

    pub fn stats(&self) -> Stats {
        let carried = &self.carried;
        Stats {
            goroutines: self.goroutines.len(),
            slots: self.slots.len(),
            maps: self.maps.len(),
            sync_objects: self.sync_objects.len(),
            map_evictions: carried.map_evictions + self.maps.evictions(),
            sync_object_evictions: carried.sync_object_evictions + self.sync_objects.evictions(),
            goroutine_evictions: carried.goroutine_evictions + self.goroutines.evictions(),
            slot_reuses: carried.slot_reuses + self.slots.reuses(),
            slot_preemptions: carried.slot_preemptions + self.slots.preemptions(),
            forgotten_by_preemption: carried.forgotten_by_preemption + self.forgotten_by_preemption,
            gaps: carried.gaps + self.gaps,
            forgotten_by_gap: carried.forgotten_by_gap + self.forgotten_by_gap,
            races: self.reports.all().len(),
            race_instances: self.reports.instances(),
        }
    }

    fn spawn(&mut self, parent: GoroutineId, child: GoroutineId, site: SiteId) {
        let inherited = admit(&mut self.goroutines, &mut self.slots, parent)
            .clock
            .handed_down();
        let child = admit(&mut self.goroutines, &mut self.slots, child);
        child.clock.join(&inherited);
        child.created_at = Some(site);
        present(&mut self.goroutines, parent).tick(&mut self.slots, self.now);
    }

    fn exit(&mut self, goroutine: GoroutineId) {
        if let Some(slot) = self.goroutines.remove(goroutine).and_then(|g| g.slot) {
            self.slots.retire(slot);
        }
    }

    fn release(&mut self, goroutine: GoroutineId, object: Address, how: Release) {
        let goroutine = admit(&mut self.goroutines, &mut self.slots, goroutine);
        match how {
            Release::Store => self.sync_objects.release(object, &goroutine.clock),
            Release::Merge => self.sync_objects.release_merge(object, &goroutine.clock),
            Release::Exchange => self
                .sync_objects
                .release_acquire(object, &mut goroutine.clock),
        }
        goroutine.tick(&mut self.slots, self.now);
    }

    fn access(
        &mut self,
        id: GoroutineId,
        map: Address,
        write: bool,
        site: SiteId,
        seq: u64,
    ) -> Vec<RaceReport> {
        self.attach(id);
        let goroutine = present(&mut self.goroutines, id);
        let slot = goroutine.slot.expect(ATTACHED);
        let access = Access {
            goroutine: id,
            write,
            site,
            seq,
            created_at: goroutine.created_at,
        };
        let record = Record {
            epoch: Epoch {
                slot,
                time: goroutine.clock.get(slot),
            },
            access,
        };
        let previous = self.maps.access(map, record, &goroutine.clock);
        previous
            .into_iter()
            .filter_map(|previous| self.reports.add(map, access, previous))
            .collect()
    }

    /// Forgets every recorded access that a lost event could have ordered before a later one.
    /// Without a list, any event may be lost: all of them. With one, a lost event of those
    /// goroutines could only order what they knew, or could have learned by acquiring an object.
    fn gap(&mut self, goroutines: Option<&[GoroutineId]>) {
        self.gaps += 1;
        self.forgotten_by_gap += match goroutines {
            None => self.maps.forget_all(),
            Some(goroutines) => {
                let mut reachable = SharedClock::default();
                for &goroutine in goroutines {
                    if let Some(clock) = self.goroutines.clock(goroutine) {
                        reachable.join(clock);
                    }
                }
                self.sync_objects.join_all_into(&mut reachable);
                self.maps
                    .retain(|record| !record.epoch.happens_before(&reachable))
            }
        };
    }

    /// Admits the goroutine and gives it a slot if it has none.
    fn attach(&mut self, id: GoroutineId) {
        let now = self.now;
        match admit(&mut self.goroutines, &mut self.slots, id).slot {
            Some(slot) => self.slots.touch(slot, now),
            None => {
                let (slot, time) = self.take_slot(id);
                let goroutine = present(&mut self.goroutines, id);
                goroutine.slot = Some(slot);
                goroutine.clock.set_own(Epoch { slot, time });
            }
        }
    }

    fn take_slot(&mut self, id: GoroutineId) -> (Slot, Time) {
        if let Some(taken) = self.slots.take(id, self.now) {
            return taken;
        }
        let referenced = self.maps.referenced_slots(self.slots.len());
        let reclaimed = self
            .slots
            .reclaim(&referenced, self.reclaim_batch, self.now);
        for detached in reclaimed.detached {
            if let Some(goroutine) = self.goroutines.peek_mut(detached) {
                goroutine.slot = None;
                goroutine.clock.forget_own();
            }
        }
        if reclaimed.forget.contains(&true) {
            self.forgotten_by_preemption += self
                .maps
                .retain(|record| !reclaimed.forget[record.epoch.slot as usize]);
        }
        self.slots
            .take(id, self.now)
            .expect("reclaiming frees a slot: only the current event's are exempt")
    }
}

/// Asks the CPU to start loading the cache line at `value` (a hint: no effect on results).
pub(crate) fn prefetch<T>(value: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching reads nothing and cannot fault, whatever the address.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(value.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// The goroutine's entry, created on first sight from what it inherits (see `ClockTable`).
fn admit<'a>(
    goroutines: &'a mut ClockTable<Goroutine>,
    slots: &mut Slots,
    id: GoroutineId,
) -> &'a mut Goroutine {
    let (goroutine, evicted) = goroutines.entry(id, |clock| Goroutine {
        clock,
        slot: None,
        created_at: None,
    });
    if let Some(slot) = evicted.and_then(|evicted| evicted.slot) {
        slots.retire(slot);
    }
    goroutine
}

/// The entry of a goroutine admitted earlier in the same event.
fn present(goroutines: &mut ClockTable<Goroutine>, id: GoroutineId) -> &mut Goroutine {
    goroutines.peek_mut(id).expect(ADMITTED)
}

//! The clocks that synchronisation objects carry from releases to acquires.

use super::clock::VectorClock;
use super::clock_table::ClockTable;
use super::model::Address;

pub(crate) struct SyncObjects {
    clocks: ClockTable<VectorClock>,
}

impl SyncObjects {
    pub fn new(capacity: usize) -> Self {
        Self {
            clocks: ClockTable::new(capacity),
        }
    }

    pub fn len(&self) -> usize {
        self.clocks.len()
    }

    pub fn evictions(&self) -> u64 {
        self.clocks.evictions()
    }

    /// The acquiring goroutine learns what `object` carries.
    pub fn acquire(&mut self, object: Address, goroutine: &mut VectorClock) {
        if let Some(carried) = self.clocks.clock(object) {
            goroutine.join(carried);
        }
    }

    /// `object` carries exactly the releasing goroutine's knowledge.
    pub fn release(&mut self, object: Address, goroutine: &VectorClock) {
        self.clocks
            .entry(object, |_| VectorClock::default())
            .0
            .clone_from(goroutine);
    }

    /// `object` adds the releasing goroutine's knowledge to what it carries.
    pub fn release_merge(&mut self, object: Address, goroutine: &VectorClock) {
        self.clocks
            .entry(object, |inherited| inherited)
            .0
            .join(goroutine);
    }

    /// `object` takes the goroutine's knowledge and the goroutine learns what `object` carried.
    pub fn release_acquire(&mut self, object: Address, goroutine: &mut VectorClock) {
        let (carried, _) = self.clocks.entry(object, |inherited| inherited);
        let previous = std::mem::replace(carried, goroutine.clone());
        goroutine.join(&previous);
    }

    /// Everything any object carries or carried.
    pub fn join_all_into(&self, clock: &mut VectorClock) {
        self.clocks.join_all_into(clock);
    }
}

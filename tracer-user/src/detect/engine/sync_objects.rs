//! The clocks that synchronisation objects carry from releases to acquires.

use super::clock::SharedClock;
use super::clock_table::{ClockTable, Clocked};
use super::model::Address;
use super::slots::Slots;

/// What one object carries.
struct Carried {
    clock: SharedClock,
    /// The clock is exactly what its releaser knew at its own epoch (`clock.own()`): one
    /// release, nothing merged. Whoever knows that epoch of the same owner knows all of it.
    exact: bool,
}

impl Clocked for Carried {
    fn clock(&self) -> &SharedClock {
        &self.clock
    }
}

pub(crate) struct SyncObjects {
    carried: ClockTable<Carried>,
}

impl SyncObjects {
    pub fn new(capacity: usize) -> Self {
        Self {
            carried: ClockTable::new(capacity),
        }
    }

    pub fn len(&self) -> usize {
        self.carried.len()
    }

    pub fn evictions(&self) -> u64 {
        self.carried.evictions()
    }

    /// The acquiring goroutine learns what `object` carries. FastTrack's shortcut for the
    /// common case — a lock taken again by the goroutine that released it, or by one that has
    /// heard from it since — costs no clock-wide work. It holds only for a goroutine whose
    /// knowledge of epochs all came from the releases and spawns that ended them.
    pub fn acquire(&mut self, object: Address, goroutine: &mut SharedClock, slots: &Slots) {
        match self.carried.lookup(object) {
            Some(Ok(carried)) => {
                let known = carried.exact
                    && !goroutine.knows_running_epochs()
                    && carried.clock.own().is_some_and(|release| {
                        release.happens_before(goroutine) && slots.issued_to_current_owner(release)
                    });
                if !known {
                    goroutine.join(&carried.clock);
                }
            }
            Some(Err(forgotten)) => goroutine.join(forgotten),
            None => {}
        }
    }

    /// `object` carries exactly the releasing goroutine's knowledge.
    pub fn release(&mut self, object: Address, goroutine: &SharedClock) {
        *self.entry(object) = Carried {
            clock: goroutine.clone(),
            exact: true,
        };
    }

    /// `object` adds the releasing goroutine's knowledge to what it carries.
    pub fn release_merge(&mut self, object: Address, goroutine: &SharedClock) {
        let carried = self.entry(object);
        carried.clock.join(goroutine);
        carried.exact = false;
    }

    /// `object` takes the goroutine's knowledge and the goroutine learns what `object` carried.
    pub fn release_acquire(&mut self, object: Address, goroutine: &mut SharedClock) {
        let carried = self.entry(object);
        let previous = std::mem::replace(&mut carried.clock, goroutine.clone());
        carried.exact = true;
        goroutine.join(&previous);
    }

    /// A new object at `object`: it carries nothing yet.
    pub fn created(&mut self, object: Address) {
        self.carried.forget(object, |clock| Carried {
            clock,
            exact: false,
        });
    }

    /// Everything any object carries or carried.
    pub fn join_all_into(&self, clock: &mut SharedClock) {
        self.carried.join_all_into(clock);
    }

    /// The object's entry; a new one carries what the object may have carried before an eviction.
    fn entry(&mut self, object: Address) -> &mut Carried {
        self.carried
            .entry(object, |clock| Carried {
                clock,
                exact: false,
            })
            .0
    }
}

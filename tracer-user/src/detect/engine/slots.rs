//! Goroutine slots: the indices of vector clocks, reused so that clocks stay `max_slots` wide
//! however many goroutines a program creates.
//!
//! A slot's time keeps counting across owners: a new owner starts after every time the slot ever
//! issued, so the knowledge others still hold of a previous owner's times never orders the new
//! owner's accesses (restarting at 1 would: that is how slot reuse invents ordering). The other
//! way round, the new owner's times would order a previous owner's *recorded accesses*, so a slot
//! is only handed out once no record names it. When none is free and the cap is reached,
//! reclaiming detaches the least recently used slots from their goroutines (which keep their
//! clocks and get another slot when they next need one) and has their records forgotten: that can
//! hide a race, never invent one.

use super::clock::{Epoch, Slot, Time, VectorClock};
use super::model::GoroutineId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Goroutine(GoroutineId),
    /// The owner exited or was evicted; records may still name the slot.
    Retired,
    /// In the free list: no owner, no record.
    Free,
}

struct SlotState {
    /// The last time issued.
    time: Time,
    /// The first time issued to the current owner: a later epoch of the slot is the owner's.
    owner_since: Time,
    owner: Owner,
    /// The engine's event counter when the slot was last used, for least-recently-used choice.
    last_used: u64,
}

/// What reclaiming took away.
pub(crate) struct Reclaimed {
    /// Live goroutines that lost their slot.
    pub detached: Vec<GoroutineId>,
    /// Indexed by slot: whether its records must be forgotten before the slot is reused.
    pub forget: Vec<bool>,
}

pub(crate) struct Slots {
    slots: Vec<SlotState>,
    free: Vec<Slot>,
    /// How many slots there may be now (every clock's width), doubled up to `max` as needed.
    width: usize,
    max: usize,
    reuses: u64,
    preemptions: u64,
    /// A slot whose time reaches this has run out (see [`Slots::exhausted`]).
    time_limit: Time,
    exhausted: bool,
}

/// Slots before the first widening.
const INITIAL_WIDTH: usize = 32;

/// Times stop short of `Time::MAX` by more than the ticks one event can make.
const TIME_LIMIT: Time = Time::MAX - 16;

impl Slots {
    /// `max` is raised to 1; one event needs at most one newly attached slot.
    pub fn new(max: usize) -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            width: max.clamp(1, INITIAL_WIDTH),
            max: max.max(1),
            reuses: 0,
            preemptions: 0,
            time_limit: TIME_LIMIT,
            exhausted: false,
        }
    }

    /// Slots whose times run out at `time_limit`, for tests of what follows.
    #[cfg(test)]
    pub fn with_time_limit(max: usize, time_limit: Time) -> Self {
        Self {
            time_limit,
            ..Self::new(max)
        }
    }

    /// Whether a slot's time has reached the limit: the engine must start its knowledge afresh
    /// (every time restarts at 0) before times wrap, which would order what is not ordered. At
    /// a million releases a second on one slot, that is once an hour.
    pub fn exhausted(&self) -> bool {
        self.exhausted
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn reuses(&self) -> u64 {
        self.reuses
    }

    pub fn preemptions(&self) -> u64 {
        self.preemptions
    }

    /// A slot for `owner` without forgetting anything (a free one, else a new one below the cap)
    /// and the owner's first time in it.
    pub fn take(&mut self, owner: GoroutineId, now: u64) -> Option<(Slot, Time)> {
        let slot = if let Some(slot) = self.free.pop() {
            self.reuses += 1;
            slot
        } else if self.slots.len() < self.width {
            self.slots.push(SlotState {
                time: 0,
                owner_since: 0,
                owner: Owner::Free,
                last_used: now,
            });
            Slot::try_from(self.slots.len() - 1).expect("max_slots fits a slot index")
        } else {
            return None;
        };
        self.slots[slot as usize].owner = Owner::Goroutine(owner);
        let time = self.tick(slot, now);
        self.slots[slot as usize].owner_since = time;
        Some((slot, time))
    }

    /// Starts the owner's next epoch in `slot` and returns its time.
    pub fn tick(&mut self, slot: Slot, now: u64) -> Time {
        let state = &mut self.slots[slot as usize];
        state.time += 1;
        state.last_used = now;
        self.exhausted |= state.time >= self.time_limit;
        state.time
    }

    /// Whether `epoch` was issued to its slot's current owner. Knowing such an epoch means
    /// knowing everything the owner knew then; an epoch of an earlier owner of the slot tells
    /// nothing about what the current owner knew.
    pub fn issued_to_current_owner(&self, epoch: Epoch) -> bool {
        self.slots
            .get(epoch.slot as usize)
            .is_some_and(|state| epoch.time >= state.owner_since)
    }

    /// Every slot's last issued time: whoever knows it is ordered after everything recorded.
    pub fn times(&self) -> VectorClock {
        VectorClock::from(
            self.slots
                .iter()
                .map(|state| state.time)
                .collect::<Vec<_>>(),
        )
    }

    pub fn touch(&mut self, slot: Slot, now: u64) {
        self.slots[slot as usize].last_used = now;
    }

    /// The owner is gone; its records may still name the slot.
    pub fn retire(&mut self, slot: Slot) {
        self.slots[slot as usize].owner = Owner::Retired;
    }

    /// Fills the free list: retired slots no record names (`referenced`, indexed by slot); if
    /// that frees fewer than an eighth of the slots, widens the clocks instead while below the
    /// cap (so that a program with a few goroutines at a time keeps narrow clocks however many
    /// it creates, and the caller's scan of all records is amortised either way); at the cap,
    /// up to `batch` free slots, the least recently used slots not used at `now`, those without
    /// records first.
    pub fn reclaim(&mut self, referenced: &[bool], batch: usize, now: u64) -> Reclaimed {
        for (slot, state) in self.slots.iter_mut().enumerate() {
            if state.owner == Owner::Retired && !referenced[slot] {
                state.owner = Owner::Free;
                self.free.push(slot as Slot);
            }
        }
        let mut reclaimed = Reclaimed {
            detached: Vec::new(),
            forget: vec![false; self.slots.len()],
        };
        if self.width < self.max {
            if self.free.len() < (self.slots.len() / 8).max(1) {
                self.width = (self.width * 2).min(self.max);
            }
            return reclaimed;
        }
        let wanted = batch.saturating_sub(self.free.len());
        if wanted == 0 {
            return reclaimed;
        }
        let mut victims: Vec<usize> = (0..self.slots.len())
            .filter(|&slot| {
                let state = &self.slots[slot];
                state.owner != Owner::Free && state.last_used < now
            })
            .collect();
        victims.sort_by_key(|&slot| (referenced[slot], self.slots[slot].last_used));
        for slot in victims.into_iter().take(wanted) {
            let state = &mut self.slots[slot];
            if let Owner::Goroutine(goroutine) = state.owner {
                reclaimed.detached.push(goroutine);
                self.preemptions += 1;
            }
            reclaimed.forget[slot] = referenced[slot];
            state.owner = Owner::Free;
            self.free.push(slot as Slot);
        }
        reclaimed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_slot_continues_its_time() {
        let mut slots = Slots::new(1);
        assert_eq!(slots.take(7, 1), Some((0, 1)));
        assert_eq!(slots.tick(0, 2), 2);
        slots.retire(0);
        assert_eq!(
            slots.take(8, 3),
            None,
            "the cap is reached and nothing was reclaimed"
        );
        let reclaimed = slots.reclaim(&[false], 1, 3);
        assert!(reclaimed.detached.is_empty());
        assert_eq!(reclaimed.forget, [false]);
        assert_eq!(slots.take(8, 3), Some((0, 3)));
        assert_eq!(slots.reuses(), 1);
    }

    #[test]
    fn clocks_widen_only_when_too_few_retired_slots_can_be_reused() {
        let mut slots = Slots::new(256);
        for goroutine in 0..32 {
            assert!(slots.take(goroutine, 1).is_some());
        }
        assert_eq!(slots.take(99, 2), None, "32 wide until reclaiming");
        // Four exit without records: an eighth of the slots, reused rather than widening.
        for slot in 0..4 {
            slots.retire(slot);
        }
        slots.reclaim(&[false; 32], 32, 2);
        for goroutine in 100..104 {
            assert!(slots.take(goroutine, 3).is_some());
        }
        assert_eq!(slots.len(), 32);
        // Nothing to reuse: wider, and nobody preempted below the cap.
        assert_eq!(slots.take(200, 4), None);
        let reclaimed = slots.reclaim(&[false; 32], 32, 4);
        assert!(reclaimed.detached.is_empty());
        assert!(slots.take(200, 4).is_some());
        assert_eq!(slots.len(), 33);
    }

    #[test]
    fn reclaiming_prefers_slots_without_records_then_the_least_recently_used() {
        let mut slots = Slots::new(3);
        for goroutine in 0..3 {
            slots.take(goroutine, goroutine + 1);
        }
        // Slot 0 is the oldest but has records; slot 2 has none; slot 1 was used now.
        slots.touch(1, 9);
        let reclaimed = slots.reclaim(&[true, false, false], 1, 9);
        assert_eq!(reclaimed.detached, [2]);
        assert_eq!(reclaimed.forget, [false, false, false]);
        let reclaimed = slots.reclaim(&[true, false, false], 2, 9);
        assert_eq!(reclaimed.detached, [0], "slot 1 was used at `now`");
        assert_eq!(reclaimed.forget, [true, false, false]);
        assert_eq!(slots.preemptions(), 2);
    }
}

//! The access histories of the maps, bounded: the least recently used map's history is evicted,
//! which can hide a race on it, never invent one.

use super::clock::SharedClock;
use super::lru::Lru;
use super::model::{Access, Address};
use super::shadow::{MapShadow, Record};

pub(crate) struct Maps {
    histories: Lru<Address, MapShadow>,
    /// How many records name each slot, kept up to date so that finding the slots no record
    /// names (to reuse them) needs no scan of every history.
    records_per_slot: Vec<u32>,
    evictions: u64,
}

impl Maps {
    pub fn new(capacity: usize) -> Self {
        Self {
            histories: Lru::new(capacity),
            records_per_slot: Vec::new(),
            evictions: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.histories.len()
    }

    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Checks the access `record` of a goroutine that knows `clock` against the history of
    /// `map` and records it (see [`MapShadow::access`]); returns the earlier accesses it races
    /// with.
    pub fn access(&mut self, map: Address, record: Record, clock: &SharedClock) -> Vec<Access> {
        let (history, evicted) = self.histories.get_or_insert_with(map, MapShadow::default);
        count(&mut self.records_per_slot, history, Change::Drop);
        let races = history.access(record, clock);
        count(&mut self.records_per_slot, history, Change::Add);
        if let Some((_, evicted)) = evicted {
            self.evictions += 1;
            count(&mut self.records_per_slot, &evicted, Change::Drop);
        }
        races
    }

    /// A new map lives at `map`: the old one's history does not apply to it.
    pub fn created(&mut self, map: Address) {
        if let Some(history) = self.histories.remove(&map) {
            count(&mut self.records_per_slot, &history, Change::Drop);
        }
    }

    /// Drops every history; returns how many records that forgot.
    pub fn forget_all(&mut self) -> u64 {
        self.records_per_slot.clear();
        self.histories
            .drain()
            .map(|history| history.records().count() as u64)
            .sum()
    }

    /// Drops the records `keep` rejects; returns how many.
    pub fn retain(&mut self, mut keep: impl FnMut(&Record) -> bool) -> u64 {
        let Self {
            histories,
            records_per_slot,
            ..
        } = self;
        let mut keep = |record: &Record| {
            let kept = keep(record);
            if !kept {
                records_per_slot[record.epoch.slot as usize] -= 1;
            }
            kept
        };
        histories
            .values_mut()
            .map(|history| history.retain(&mut keep))
            .sum()
    }

    /// Indexed by slot (`width` of them): whether some record names it.
    pub fn referenced_slots(&self, width: usize) -> Vec<bool> {
        (0..width)
            .map(|slot| self.records_per_slot.get(slot).is_some_and(|&n| n > 0))
            .collect()
    }
}

enum Change {
    Add,
    Drop,
}

/// Counts `history`'s records in or out of `records_per_slot`.
fn count(records_per_slot: &mut Vec<u32>, history: &MapShadow, change: Change) {
    for record in history.records() {
        let slot = record.epoch.slot as usize;
        if slot >= records_per_slot.len() {
            records_per_slot.resize(slot + 1, 0);
        }
        match change {
            Change::Add => records_per_slot[slot] += 1,
            Change::Drop => records_per_slot[slot] -= 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::engine::clock::{Epoch, Slot};
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Step {
        /// A map, the accessing goroutine's slot, and whether it writes.
        Access(u64, Slot, bool),
        Created(u64),
        ForgetSlot(Slot),
        ForgetAll,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => (0u64..6, 0u32..5, any::<bool>()).prop_map(|(m, s, w)| Step::Access(m, s, w)),
            1 => (0u64..6).prop_map(Step::Created),
            1 => (0u32..5).prop_map(Step::ForgetSlot),
            1 => Just(Step::ForgetAll),
        ]
    }

    proptest! {
        /// The counts kept per slot say what a scan of every history (evictions included: room
        /// for 4 of the 6 maps) would.
        #[test]
        fn referenced_slots_match_a_scan_of_every_history(steps in prop::collection::vec(step(), 0..80)) {
            let mut maps = Maps::new(4);
            for (seq, step) in (0..).zip(steps) {
                match step {
                    Step::Access(map, slot, write) => {
                        let epoch = Epoch { slot, time: seq as u32 + 1 };
                        let mut clock = SharedClock::default();
                        clock.set_own(epoch);
                        let access = Access { goroutine: u64::from(slot), write, site: 0, seq, created_at: None };
                        maps.access(map, Record { epoch, access }, &clock);
                    }
                    Step::Created(map) => maps.created(map),
                    Step::ForgetSlot(slot) => {
                        maps.retain(|record| record.epoch.slot != slot);
                    }
                    Step::ForgetAll => {
                        maps.forget_all();
                    }
                }
                let mut scanned = vec![false; 5];
                for record in maps.histories.values().flat_map(MapShadow::records) {
                    scanned[record.epoch.slot as usize] = true;
                }
                prop_assert_eq!(maps.referenced_slots(5), scanned);
            }
        }
    }
}

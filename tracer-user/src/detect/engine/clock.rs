//! Vector clocks indexed by goroutine slot, and FastTrack epochs.

/// An index into vector clocks. Slots, not goroutine ids, index clocks so that their width stays
/// bounded while goroutines come and go by the million (see `slots`).
pub(crate) type Slot = u32;

/// One point of one slot's timeline: `time` of `slot`. A single epoch stands for "the last
/// access", FastTrack's O(1) replacement for a full vector clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Epoch {
    pub slot: Slot,
    pub time: u64,
}

impl Epoch {
    /// Whether whoever knows `clock` is ordered after this epoch.
    pub fn happens_before(self, clock: &VectorClock) -> bool {
        self.time <= clock.get(self.slot)
    }
}

/// For each slot, the latest time known; missing trailing entries are 0 (nothing known).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct VectorClock(Vec<u64>);

impl VectorClock {
    pub fn get(&self, slot: Slot) -> u64 {
        self.0.get(slot as usize).copied().unwrap_or(0)
    }

    pub fn set(&mut self, slot: Slot, time: u64) {
        let index = slot as usize;
        if index >= self.0.len() {
            self.0.resize(index + 1, 0);
        }
        self.0[index] = time;
    }

    /// Pointwise maximum: afterwards `self` knows everything `other` knew.
    pub fn join(&mut self, other: &Self) {
        if other.0.len() > self.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (mine, theirs) in self.0.iter_mut().zip(&other.0) {
            *mine = (*mine).max(*theirs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(times: &[u64]) -> VectorClock {
        VectorClock(times.to_vec())
    }

    #[test]
    fn join_takes_the_pointwise_maximum_and_widens() {
        let mut a = clock(&[3, 1]);
        a.join(&clock(&[1, 4, 2]));
        assert_eq!(a, clock(&[3, 4, 2]));
    }

    #[test]
    fn an_epoch_happens_before_a_clock_that_knows_its_time() {
        let epoch = Epoch { slot: 1, time: 4 };
        assert!(epoch.happens_before(&clock(&[0, 4])));
        assert!(!epoch.happens_before(&clock(&[9, 3])));
        assert!(!epoch.happens_before(&clock(&[9])));
    }
}

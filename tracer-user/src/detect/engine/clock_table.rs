//! A bounded table of clock-carrying entries (goroutines, synchronisation objects) whose evictions
//! never invent a race.
//!
//! Dropping a clock loses knowledge: a goroutine that comes back, or a later acquire of the
//! object, would know less than it should and report races that are not there. So every evicted
//! clock is folded into one `forgotten` clock, and a key that may have been evicted starts from
//! it. That knows at least as much as the evicted entry did: eviction can hide races (the extra
//! knowledge orders too much), never invent one.

use super::clock::SharedClock;
use super::lru::Lru;
use crate::detect::HashSet;

/// An entry that carries a clock.
pub(crate) trait Clocked {
    fn clock(&self) -> &SharedClock;
}

pub(crate) struct ClockTable<V> {
    entries: Lru<u64, V>,
    forgotten: SharedClock,
    evicted: KeyFilter,
    /// Keys the filter takes for evicted whose entries were made anew since (`forget`): they
    /// start from nothing. Emptied when it reaches the table's capacity (they then start from
    /// `forgotten`, which can only hide races).
    fresh: HashSet<u64>,
    evictions: u64,
}

impl<V: Clocked> ClockTable<V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Lru::new(capacity),
            forgotten: SharedClock::default(),
            evicted: KeyFilter::default(),
            fresh: HashSet::default(),
            evictions: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// The entry of `key`, without counting as a use (recency is what `entry` and `clock` set).
    pub fn peek_mut(&mut self, key: u64) -> Option<&mut V> {
        self.entries.peek_mut(&key)
    }

    /// The clock `key` carries, or the clock it must start from if it may have been evicted.
    pub fn clock(&mut self, key: u64) -> Option<&SharedClock> {
        self.lookup(key)
            .map(|found| found.map_or_else(|forgotten| forgotten, Clocked::clock))
    }

    /// The entry of `key` (`Ok`), else the clock it must start from if it may have been evicted
    /// (`Err`).
    pub fn lookup(&mut self, key: u64) -> Option<Result<&V, &SharedClock>> {
        match self.entries.get_mut(&key) {
            Some(entry) => Some(Ok(entry)),
            None => (self.evicted.may_contain(key) && !self.fresh.contains(&key))
                .then_some(Err(&self.forgotten)),
        }
    }

    /// The entry of `key`, created by `make` from the clock it inherits when absent, and the
    /// entry evicted to make room (its clock already folded into `forgotten`).
    pub fn entry(&mut self, key: u64, make: impl FnOnce(SharedClock) -> V) -> (&mut V, Option<V>) {
        let Self {
            entries,
            forgotten,
            evicted,
            fresh,
            evictions,
        } = self;
        if entries.is_full() {
            // A full table evicts at nearly every new key, and what it evicts has not been
            // touched for long: without this, each eviction's join waits on cache misses for
            // the entry, its chunk pointers and its chunks, one after the other.
            let (next, after) = entries.next_victims();
            if let Some(next) = next {
                next.clock().prefetch_chunks();
            }
            if let Some(after) = after {
                after.clock().prefetch_vector();
            }
        }
        let (entry, dropped) = entries.get_or_insert_with(key, || {
            make(if evicted.may_contain(key) && !fresh.remove(&key) {
                forgotten.clone()
            } else {
                SharedClock::default()
            })
        });
        let dropped = dropped.map(|(key, value)| {
            forgotten.join(value.clock());
            evicted.insert(key);
            *evictions += 1;
            value
        });
        (entry, dropped)
    }

    pub fn remove(&mut self, key: u64) -> Option<V> {
        self.entries.remove(&key)
    }

    /// `key` names a new entry from now on: it starts from nothing (what `make` makes of an
    /// empty clock), whatever an entry of that key carried, present or evicted.
    pub fn forget(&mut self, key: u64, make: impl FnOnce(SharedClock) -> V) {
        // Reset in place: moving the entry out of the recency list costs more than keeping it.
        if let Some(entry) = self.entries.peek_mut(&key) {
            *entry = make(SharedClock::default());
        } else if self.evicted.may_contain(key) {
            if self.fresh.len() >= self.entries.capacity() {
                self.fresh.clear();
            }
            self.fresh.insert(key);
        }
    }

    /// Everything any entry, present or evicted, knows.
    pub fn join_all_into(&self, clock: &mut SharedClock) {
        clock.join(&self.forgotten);
        for entry in self.entries.values() {
            clock.join(entry.clock());
        }
    }
}

/// A fixed-size set that may answer "maybe" for keys never inserted, never "no" for one that was
/// (one bit per hash bucket). A false "maybe" only costs precision.
struct KeyFilter {
    bits: Vec<u64>,
}

const FILTER_BITS_LOG2: u32 = 16;

impl Default for KeyFilter {
    fn default() -> Self {
        Self {
            bits: vec![0; (1 << FILTER_BITS_LOG2) / 64],
        }
    }
}

impl KeyFilter {
    fn insert(&mut self, key: u64) {
        let bit = Self::bucket(key);
        self.bits[bit / 64] |= 1 << (bit % 64);
    }

    fn may_contain(&self, key: u64) -> bool {
        let bit = Self::bucket(key);
        self.bits[bit / 64] & (1 << (bit % 64)) != 0
    }

    /// Fibonacci hashing: spreads aligned addresses and consecutive ids over the buckets.
    fn bucket(key: u64) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - FILTER_BITS_LOG2)) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::engine::clock::{Epoch, Slot, Time};

    #[derive(Debug)]
    struct Entry(SharedClock);

    impl Clocked for Entry {
        fn clock(&self) -> &SharedClock {
            &self.0
        }
    }

    fn clock(slot: Slot, time: Time) -> Entry {
        let mut clock = SharedClock::default();
        clock.set_own(Epoch { slot, time });
        Entry(clock)
    }

    #[test]
    fn an_evicted_key_inherits_at_least_its_clock_and_a_new_key_nothing() {
        let mut table = ClockTable::new(1);
        table.entry(0x1000, |_| clock(0, 5));
        let (_, evicted) = table.entry(0x2000, |_| clock(1, 7));
        assert_eq!(evicted.map(|entry| entry.0.get(0)), Some(5));
        assert_eq!(table.evictions(), 1);
        assert!(table.clock(0x1000).is_some_and(|c| c.get(0) >= 5));
        assert!(table.clock(0x3000).is_none());
        let (revived, _) = table.entry(0x1000, Entry);
        assert!(revived.0.get(0) >= 5);
    }
}

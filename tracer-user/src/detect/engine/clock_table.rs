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

/// An entry that carries a clock.
pub(crate) trait Clocked {
    fn clock(&self) -> &SharedClock;
}

pub(crate) struct ClockTable<V> {
    entries: Lru<u64, V>,
    forgotten: SharedClock,
    evicted: EvictedKeys,
    evictions: u64,
}

impl<V: Clocked> ClockTable<V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Lru::new(capacity),
            forgotten: SharedClock::default(),
            evicted: EvictedKeys::default(),
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
            None => self.evicted.inherits(key).then_some(Err(&self.forgotten)),
        }
    }

    /// The entry of `key`, created by `make` from the clock it inherits when absent, and the
    /// entry evicted to make room (its clock already folded into `forgotten`).
    pub fn entry(&mut self, key: u64, make: impl FnOnce(SharedClock) -> V) -> (&mut V, Option<V>) {
        let Self {
            entries,
            forgotten,
            evicted,
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
            make(if evicted.take_inheritance(key) {
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
        } else {
            self.evicted.made_anew(key);
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

/// The keys that may have been evicted, and those of them made anew since.
///
/// One bit per hash bucket says whether a key of that bucket was evicted: it may answer "maybe"
/// for a key never evicted (a false "maybe" only costs precision), never "no" for one that was.
/// A key made anew while its bucket says "maybe" is kept in the bucket's one place for a new key,
/// so that it starts from nothing: a later key made anew in the same bucket pushes it out, and it
/// then starts from what evicted entries left (more ordering, never less). Only the key kept
/// there counts as new, so no other key is ever taken for one; it stops counting once it has an
/// entry, which may be evicted in turn. One place per bucket instead of a set of keys: making a
/// key anew, and the lookups of a table whose filter is full, touch one word.
struct EvictedKeys {
    bits: Vec<u64>,
    /// The key made anew in each bucket (0: none); allocated when the first is.
    new: Vec<u64>,
}

const FILTER_BITS_LOG2: u32 = 16;

impl Default for EvictedKeys {
    fn default() -> Self {
        Self {
            bits: vec![0; (1 << FILTER_BITS_LOG2) / 64],
            new: Vec::new(),
        }
    }
}

impl EvictedKeys {
    /// `key`'s entry was evicted.
    fn insert(&mut self, key: u64) {
        let bucket = Self::bucket(key);
        self.bits[bucket / 64] |= 1 << (bucket % 64);
    }

    /// Whether `key`, absent from the table, must start from what evicted entries left.
    fn inherits(&self, key: u64) -> bool {
        let bucket = Self::bucket(key);
        self.may_contain(bucket) && !self.is_new(bucket, key)
    }

    /// [`Self::inherits`], for a key that gets an entry now: from here on its entry carries
    /// what it is, and it is no longer new.
    fn take_inheritance(&mut self, key: u64) -> bool {
        let bucket = Self::bucket(key);
        if !self.may_contain(bucket) {
            return false;
        }
        if !self.is_new(bucket, key) {
            return true;
        }
        self.new[bucket] = 0;
        false
    }

    /// `key`, absent from the table, names a new entry from now on: it starts from nothing.
    fn made_anew(&mut self, key: u64) {
        let bucket = Self::bucket(key);
        if !self.may_contain(bucket) || key == 0 {
            return;
        }
        if self.new.is_empty() {
            self.new = vec![0; 1 << FILTER_BITS_LOG2];
        }
        self.new[bucket] = key;
    }

    fn may_contain(&self, bucket: usize) -> bool {
        self.bits[bucket / 64] & (1 << (bucket % 64)) != 0
    }

    fn is_new(&self, bucket: usize, key: u64) -> bool {
        key != 0 && self.new.get(bucket) == Some(&key)
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

    /// A table of one entry whose filter has seen `key` evicted with time 5 of slot 0.
    fn evicted(key: u64) -> ClockTable<Entry> {
        let mut table = ClockTable::new(1);
        table.entry(key, |_| clock(0, 5));
        table.entry(key ^ 0x8000_0000, |_| clock(1, 1));
        assert!(table.clock(key).is_some_and(|c| c.get(0) >= 5));
        table
    }

    #[test]
    fn a_key_made_anew_starts_empty_and_inherits_again_once_its_entry_is_evicted() {
        const KEY: u64 = 0x1000;
        let mut table = evicted(KEY);
        table.forget(KEY, Entry);
        assert!(table.clock(KEY).is_none(), "made anew: nothing to inherit");
        let (entry, _) = table.entry(KEY, Entry);
        assert_eq!(entry.0.get(0), 0);
        entry.0.set_own(Epoch { slot: 2, time: 9 });
        table.entry(0x3000, |_| clock(1, 1));
        assert!(
            table.clock(KEY).is_some_and(|c| c.get(2) >= 9),
            "evicted again, it must start from what it carried"
        );
    }

    #[test]
    fn a_key_made_anew_is_pushed_out_by_a_newer_one_of_its_bucket_and_inherits() {
        const KEY: u64 = 0x1000;
        let bucket = EvictedKeys::bucket(KEY);
        let same_bucket = (1..)
            .map(|i| KEY + 8 * i)
            .find(|&key| EvictedKeys::bucket(key) == bucket)
            .expect("another key of the bucket");
        let mut table = evicted(KEY);
        table.forget(KEY, Entry);
        table.forget(same_bucket, Entry);
        assert!(table.clock(same_bucket).is_none());
        assert!(table.clock(KEY).is_some_and(|c| c.get(0) >= 5));
    }

    #[test]
    fn key_zero_is_never_taken_for_new() {
        let mut table = evicted(0);
        table.forget(0, Entry);
        assert!(table.clock(0).is_some_and(|c| c.get(0) >= 5));
    }
}

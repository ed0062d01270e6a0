//! A fixed-capacity map that evicts an entry unused for long, all operations O(1).
//!
//! Entries live contiguously in a vector linked from newest to oldest by indices; a removal
//! moves the last entry into the hole, so there is no free list to manage.
//!
//! The order is least-recently-used with one shortcut: an entry still in the newer half of the
//! list is not moved to the front when used. Moving it writes both neighbours and the old front,
//! cache misses on a table far larger than the cache, for nothing: the entry is nowhere near
//! eviction. So what is evicted is an entry that went unused while at least half the capacity
//! of entries came to the front after it.

use std::hash::Hash;

use super::prefetch;
use crate::detect::HashMap;

const NONE: usize = usize::MAX;

struct Node<K, V> {
    key: K,
    value: V,
    newer: usize,
    older: usize,
    /// `Lru::arrivals` when the node last came to the front.
    arrived: u64,
}

pub(crate) struct Lru<K, V> {
    index: HashMap<K, usize>,
    nodes: Vec<Node<K, V>>,
    newest: usize,
    oldest: usize,
    capacity: usize,
    /// Nodes brought to the front so far. A node is at most `arrivals - arrived` places from
    /// the front: only arrivals push it back.
    arrivals: u64,
}

impl<K: Copy + Eq + Hash, V> Lru<K, V> {
    /// `capacity` is raised to 1: an empty cache would forget the entry it just created.
    pub fn new(capacity: usize) -> Self {
        Self {
            index: HashMap::default(),
            nodes: Vec::new(),
            newest: NONE,
            oldest: NONE,
            capacity: capacity.max(1),
            arrivals: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_full(&self) -> bool {
        self.nodes.len() == self.capacity
    }

    /// The value of `key`, which counts as a use (it comes to the front unless it is in the
    /// newer half already).
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let at = *self.index.get(key)?;
        self.make_newest(at);
        Some(&mut self.nodes[at].value)
    }

    /// The value of `key` without counting it as a use.
    pub fn peek_mut(&mut self, key: &K) -> Option<&mut V> {
        let at = *self.index.get(key)?;
        Some(&mut self.nodes[at].value)
    }

    /// The value of `key`, created by `make` when absent, and the entry evicted to make room.
    pub fn get_or_insert_with(
        &mut self,
        key: K,
        make: impl FnOnce() -> V,
    ) -> (&mut V, Option<(K, V)>) {
        let (at, evicted) = match self.index.get(&key) {
            Some(&at) => {
                self.make_newest(at);
                (at, None)
            }
            None => {
                let evicted = self.is_full().then(|| self.remove_at(self.oldest));
                let at = self.nodes.len();
                self.nodes.push(Node {
                    key,
                    value: make(),
                    newer: NONE,
                    older: NONE,
                    arrived: 0,
                });
                self.index.insert(key, at);
                self.link_newest(at);
                (at, evicted)
            }
        };
        (&mut self.nodes[at].value, evicted)
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        let at = *self.index.get(key)?;
        Some(self.remove_at(at).1)
    }

    /// Empties the cache, returning the values.
    pub fn drain(&mut self) -> impl Iterator<Item = V> + '_ {
        self.index.clear();
        self.newest = NONE;
        self.oldest = NONE;
        self.nodes.drain(..).map(|node| node.value)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.nodes.iter().map(|node| &node.value)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.nodes.iter_mut().map(|node| &mut node.value)
    }

    /// The next two values to be evicted, oldest first; the node after them is prefetched, so
    /// that a caller asking before each eviction finds each node in cache by the time it needs
    /// it.
    pub fn next_victims(&self) -> (Option<&V>, Option<&V>) {
        let Some(first) = self.nodes.get(self.oldest) else {
            return (None, None);
        };
        let second = self.nodes.get(first.newer);
        if let Some(third) = second.and_then(|second| self.nodes.get(second.newer)) {
            prefetch(third);
        }
        (Some(&first.value), second.map(|node| &node.value))
    }

    /// Brings the node to the front unless it is in the newer half of the list already.
    fn make_newest(&mut self, at: usize) {
        let places_back = self.arrivals - self.nodes[at].arrived;
        if places_back >= (self.capacity / 2) as u64 && self.newest != at {
            self.unlink(at);
            self.link_newest(at);
        }
    }

    fn link_newest(&mut self, at: usize) {
        self.arrivals += 1;
        self.nodes[at].arrived = self.arrivals;
        self.nodes[at].newer = NONE;
        self.nodes[at].older = self.newest;
        match self.newest {
            NONE => self.oldest = at,
            newest => self.nodes[newest].newer = at,
        }
        self.newest = at;
    }

    fn unlink(&mut self, at: usize) {
        let Node { newer, older, .. } = self.nodes[at];
        match newer {
            NONE => self.newest = older,
            newer => self.nodes[newer].older = older,
        }
        match older {
            NONE => self.oldest = newer,
            older => self.nodes[older].newer = newer,
        }
    }

    /// Removes the node at `at`, moving the last node into its place.
    fn remove_at(&mut self, at: usize) -> (K, V) {
        self.unlink(at);
        let node = self.nodes.swap_remove(at);
        self.index.remove(&node.key);
        if at < self.nodes.len() {
            self.relink_moved(at);
        }
        (node.key, node.value)
    }

    /// Points the neighbours and the index of the node just moved to `at` at its new place.
    fn relink_moved(&mut self, at: usize) {
        let Node {
            key, newer, older, ..
        } = self.nodes[at];
        match newer {
            NONE => self.newest = at,
            newer => self.nodes[newer].older = at,
        }
        match older {
            NONE => self.oldest = at,
            older => self.nodes[older].newer = at,
        }
        self.index.insert(key, at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn evicts_the_least_recently_used() {
        let mut lru = Lru::new(2);
        lru.get_or_insert_with(1, || "one");
        lru.get_or_insert_with(2, || "two");
        lru.get_mut(&1);
        assert_eq!(lru.next_victims(), (Some(&"two"), Some(&"one")));
        let (_, evicted) = lru.get_or_insert_with(3, || "three");
        assert_eq!(evicted, Some((2, "two")));
        assert_eq!(lru.len(), 2);
        assert_eq!(lru.next_victims(), (Some(&"one"), Some(&"three")));
    }

    #[derive(Clone, Debug)]
    enum Step {
        Touch(u8),
        Peek(u8),
        Insert(u8),
        Remove(u8),
    }

    fn step() -> impl Strategy<Value = Step> {
        let key = 0u8..16;
        prop_oneof![
            key.clone().prop_map(Step::Touch),
            key.clone().prop_map(Step::Peek),
            key.clone().prop_map(Step::Insert),
            key.prop_map(Step::Remove),
        ]
    }

    proptest! {
        /// Against a model: a vector of keys ordered from least to most recently used. Below
        /// four entries the newer half is the newest entry alone, so the order is exact.
        #[test]
        fn behaves_like_a_recency_ordered_list(capacity in 1usize..4, steps in prop::collection::vec(step(), 0..64)) {
            let mut lru = Lru::new(capacity);
            let mut model: Vec<u8> = Vec::new();
            for step in steps {
                match step {
                    Step::Touch(key) => {
                        let found = lru.get_mut(&key).map(|value| *value);
                        let position = model.iter().position(|&k| k == key);
                        prop_assert_eq!(found, position.map(|_| key));
                        if let Some(position) = position {
                            model.remove(position);
                            model.push(key);
                        }
                    }
                    Step::Peek(key) => {
                        prop_assert_eq!(lru.peek_mut(&key).map(|value| *value), model.contains(&key).then_some(key));
                    }
                    Step::Insert(key) => {
                        let (value, evicted) = lru.get_or_insert_with(key, || key);
                        prop_assert_eq!(*value, key);
                        let expected = match model.iter().position(|&k| k == key) {
                            Some(position) => { model.remove(position); None }
                            None if model.len() == capacity => Some(model.remove(0)),
                            None => None,
                        };
                        model.push(key);
                        prop_assert_eq!(evicted, expected.map(|k| (k, k)));
                    }
                    Step::Remove(key) => {
                        let position = model.iter().position(|&k| k == key);
                        prop_assert_eq!(lru.remove(&key), position.map(|_| key));
                        if let Some(position) = position {
                            model.remove(position);
                        }
                    }
                }
                prop_assert_eq!(lru.len(), model.len());
                let mut values: Vec<u8> = lru.values().copied().collect();
                values.sort_unstable();
                let mut expected = model.clone();
                expected.sort_unstable();
                prop_assert_eq!(values, expected);
            }
        }

        /// At any capacity: every answer is the key's own value, an eviction happens exactly
        /// when a new key meets a full table and hands back a present key, and the key evicted
        /// went unused while other keys were used or inserted at least ⌈capacity/2⌉ times (a
        /// table of one entry evicts it at the next new key).
        #[test]
        fn evicts_only_what_others_outlived(capacity in 1usize..12, steps in prop::collection::vec(step(), 0..200)) {
            let mut lru = Lru::new(capacity);
            // Each present key and how many uses of other keys came after its last use.
            let mut model: Vec<(u8, usize)> = Vec::new();
            let used = |model: &mut Vec<(u8, usize)>, key: u8| {
                for (present, since) in model.iter_mut() {
                    *since = if *present == key { 0 } else { *since + 1 };
                }
            };
            for step in steps {
                let present = |model: &Vec<(u8, usize)>, key: u8| model.iter().position(|&(k, _)| k == key);
                match step {
                    Step::Touch(key) => {
                        prop_assert_eq!(lru.get_mut(&key).map(|value| *value), present(&model, key).map(|_| key));
                        if present(&model, key).is_some() {
                            used(&mut model, key);
                        }
                    }
                    Step::Peek(key) => {
                        prop_assert_eq!(lru.peek_mut(&key).map(|value| *value), present(&model, key).map(|_| key));
                    }
                    Step::Insert(key) => {
                        let was_present = present(&model, key).is_some();
                        let (value, evicted) = lru.get_or_insert_with(key, || key);
                        prop_assert_eq!(*value, key);
                        match evicted {
                            Some((evicted, value)) => {
                                prop_assert!(!was_present && model.len() == capacity);
                                prop_assert_eq!(value, evicted);
                                let at = present(&model, evicted);
                                prop_assert!(at.is_some(), "evicted an absent key");
                                let (_, since) = model.remove(at.unwrap_or_default());
                                prop_assert!(since >= capacity.div_ceil(2).min(capacity - 1), "evicted {} after {} uses of others", evicted, since);
                            }
                            None => prop_assert!(was_present || model.len() < capacity),
                        }
                        if !was_present {
                            model.push((key, 0));
                        }
                        used(&mut model, key);
                    }
                    Step::Remove(key) => {
                        let at = present(&model, key);
                        prop_assert_eq!(lru.remove(&key), at.map(|_| key));
                        if let Some(at) = at {
                            model.remove(at);
                        }
                    }
                }
                prop_assert_eq!(lru.len(), model.len());
            }
        }
    }
}

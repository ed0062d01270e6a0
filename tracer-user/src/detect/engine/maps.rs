//! The access histories of the maps, bounded: the least recently used map's history is evicted,
//! which can hide a race on it, never invent one.

use super::lru::Lru;
use super::model::Address;
use super::shadow::{MapShadow, Record};

pub(crate) struct Maps {
    histories: Lru<Address, MapShadow>,
    evictions: u64,
}

impl Maps {
    pub fn new(capacity: usize) -> Self {
        Self {
            histories: Lru::new(capacity),
            evictions: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.histories.len()
    }

    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// The history of `map`, empty if it has none.
    pub fn history(&mut self, map: Address) -> &mut MapShadow {
        let (history, evicted) = self.histories.get_or_insert_with(map, MapShadow::default);
        if evicted.is_some() {
            self.evictions += 1;
        }
        history
    }

    /// A new map lives at `map`: the old one's history does not apply to it.
    pub fn created(&mut self, map: Address) {
        self.histories.remove(&map);
    }

    /// Drops every history; returns how many records that forgot.
    pub fn forget_all(&mut self) -> u64 {
        self.histories
            .drain()
            .map(|history| history.records().count() as u64)
            .sum()
    }

    /// Drops the records `keep` rejects; returns how many.
    pub fn retain(&mut self, mut keep: impl FnMut(&Record) -> bool) -> u64 {
        self.histories
            .values_mut()
            .map(|history| history.retain(&mut keep))
            .sum()
    }

    /// Indexed by slot (`width` of them): whether some record names it.
    pub fn referenced_slots(&self, width: usize) -> Vec<bool> {
        let mut referenced = vec![false; width];
        for record in self.histories.values().flat_map(MapShadow::records) {
            referenced[record.epoch.slot as usize] = true;
        }
        referenced
    }
}

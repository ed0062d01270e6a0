//! The access history of one map, with FastTrack's rules.
//!
//! A map is one memory location (as under `-race`). Its history is the last write and the reads
//! since it; one epoch per access, not a vector clock. Reads ordered one after another collapse
//! into the latest ("read-exclusive"); concurrent reads are all kept ("read-shared"), one per slot,
//! so that a later write is checked against each of them.

use super::clock::{Epoch, SharedClock};
use super::model::Access;

/// One recorded access: when (an epoch of its goroutine's slot) and what, for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub epoch: Epoch,
    pub access: Access,
}

#[derive(Debug, Default)]
enum Reads {
    #[default]
    None,
    Exclusive(Record),
    /// Pairwise unordered reads, at most one per slot.
    Shared(Vec<Record>),
}

impl From<Vec<Record>> for Reads {
    fn from(mut reads: Vec<Record>) -> Self {
        match reads.len() {
            0 => Self::None,
            1 => Self::Exclusive(reads.remove(0)),
            _ => Self::Shared(reads),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct MapShadow {
    write: Option<Record>,
    reads: Reads,
}

impl MapShadow {
    /// Checks an access made at `record.epoch` by a goroutine that knows `clock` against the
    /// history, records it, and returns the earlier accesses it races with.
    pub fn access(&mut self, record: Record, clock: &SharedClock) -> Vec<Access> {
        if record.access.write {
            self.write(record, clock)
        } else {
            self.read(record, clock)
        }
    }

    fn read(&mut self, record: Record, clock: &SharedClock) -> Vec<Access> {
        // Already read in this epoch: no write since (a write clears the reads), nothing new.
        if self.reads_iter().any(|read| read.epoch == record.epoch) {
            return Vec::new();
        }
        let races = unordered(self.write.iter(), clock);
        self.reads = match std::mem::take(&mut self.reads) {
            Reads::None => Reads::Exclusive(record),
            Reads::Exclusive(read) if read.epoch.happens_before(clock) => Reads::Exclusive(record),
            Reads::Exclusive(read) => Reads::Shared(vec![read, record]),
            Reads::Shared(mut reads) => {
                // Reads this one is ordered after are covered by it: a write ordered after it is
                // ordered after them too.
                reads.retain(|read| !read.epoch.happens_before(clock));
                reads.push(record);
                Reads::from(reads)
            }
        };
        races
    }

    fn write(&mut self, record: Record, clock: &SharedClock) -> Vec<Access> {
        let same_epoch = self
            .write
            .as_ref()
            .is_some_and(|write| write.epoch == record.epoch);
        if same_epoch && matches!(self.reads, Reads::None) {
            return Vec::new();
        }
        let races = unordered(self.records(), clock);
        self.write = Some(record);
        self.reads = Reads::None;
        races
    }

    /// Drops the records `keep` rejects; returns how many.
    pub fn retain(&mut self, mut keep: impl FnMut(&Record) -> bool) -> u64 {
        let before = self.records().count();
        self.write = self.write.take().filter(&mut keep);
        self.reads = match std::mem::take(&mut self.reads) {
            Reads::Exclusive(read) if keep(&read) => Reads::Exclusive(read),
            Reads::Shared(mut reads) => {
                reads.retain(&mut keep);
                Reads::from(reads)
            }
            _ => Reads::None,
        };
        (before - self.records().count()) as u64
    }

    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.write.iter().chain(self.reads_iter())
    }

    fn reads_iter(&self) -> impl Iterator<Item = &Record> {
        let reads: &[Record] = match &self.reads {
            Reads::None => &[],
            Reads::Exclusive(read) => std::slice::from_ref(read),
            Reads::Shared(reads) => reads,
        };
        reads.iter()
    }
}

/// The accesses of `records` that a goroutine knowing `clock` is not ordered after.
fn unordered<'a>(records: impl Iterator<Item = &'a Record>, clock: &SharedClock) -> Vec<Access> {
    records
        .filter(|record| !record.epoch.happens_before(clock))
        .map(|record| record.access)
        .collect()
}

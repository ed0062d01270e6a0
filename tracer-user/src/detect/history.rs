//! The recent steps of each goroutine, kept while race graphs are asked for (`--dot-dir`): the
//! engine keeps no history, so this keeps a short one per goroutine and snapshots both
//! goroutines' when a race is first found ([`RaceGraph`], drawn by `report::graph`).

use std::collections::{HashMap, VecDeque};

use super::{GoroutineId, Operation, RaceReport};

/// Operations remembered per goroutine: enough to show the synchronisation around an access.
pub const STEPS_PER_GOROUTINE: usize = 12;

/// Goroutines whose history is kept (the least recently active are forgotten first); a racing
/// goroutine may have exited long before its access is found to race.
const GOROUTINES_REMEMBERED: usize = 8192;

/// What one step did, as far as the graph is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Acquire(u64),
    /// Ordered after everything recorded (a completion whose start was not seen).
    AcquireAll,
    Release(u64),
    /// A hand-off: release and acquire on the same object (channel slots).
    Exchange(u64),
    Spawn(GoroutineId),
    Access {
        map: u64,
        write: bool,
    },
}

/// One operation of a goroutine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Position in the stream (the detector's sequence number).
    pub seq: u64,
    /// The Go operation it came from (`unlock`, `send`, `assign`…).
    pub operation: &'static str,
    pub role: Role,
    /// Where its event was recorded: the return address into the caller, or the probed
    /// instruction (0 if unknown).
    pub pc: u64,
    /// Its function and line, when the session could resolve `pc` (`function\nfile:line`).
    pub location: Option<String>,
}

/// The two goroutines' recent steps when the race was found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaceGraph {
    pub current: Vec<Step>,
    pub previous: Vec<Step>,
}

/// Recent steps of each goroutine.
#[derive(Default)]
pub struct Histories {
    steps: HashMap<GoroutineId, VecDeque<Step>>,
    /// Goroutines in order of first sight, for forgetting the oldest.
    seen: VecDeque<GoroutineId>,
}

impl Histories {
    /// Remembers `operation`, which came from Go operation `name`, at stream position `seq`.
    pub fn record(&mut self, seq: u64, name: &'static str, operation: &Operation, pc: u64) {
        use Operation as O;
        let (goroutine, role) = match *operation {
            O::Acquire { goroutine, object } => (goroutine, Role::Acquire(object)),
            O::AcquireAll { goroutine } => (goroutine, Role::AcquireAll),
            O::Release { goroutine, object } | O::ReleaseMerge { goroutine, object } => {
                (goroutine, Role::Release(object))
            }
            O::ReleaseAcquire { goroutine, object } => (goroutine, Role::Exchange(object)),
            O::Spawn { parent, child, .. } => (parent, Role::Spawn(child)),
            O::MapAccess {
                goroutine,
                map,
                write,
                ..
            } => (goroutine, Role::Access { map, write }),
            O::Exit { .. } | O::MapCreated { .. } | O::ObjectCreated { .. } | O::Gap { .. } => {
                return
            }
        };
        if !self.steps.contains_key(&goroutine) {
            if self.seen.len() == GOROUTINES_REMEMBERED {
                if let Some(oldest) = self.seen.pop_front() {
                    self.steps.remove(&oldest);
                }
            }
            self.seen.push_back(goroutine);
        }
        let steps = self.steps.entry(goroutine).or_default();
        if steps.len() == STEPS_PER_GOROUTINE {
            steps.pop_front();
        }
        steps.push_back(Step {
            seq,
            operation: name,
            role,
            pc,
            location: None,
        });
    }

    /// The graph of a race just found: both goroutines' steps, each up to its racing access at
    /// least (an access that scrolled out of the window is put back).
    pub fn graph(&self, race: &RaceReport) -> RaceGraph {
        let steps_of = |goroutine: GoroutineId, seq: u64, write: bool| {
            let mut steps: Vec<Step> = self
                .steps
                .get(&goroutine)
                .map(|steps| steps.iter().cloned().collect())
                .unwrap_or_default();
            if !steps.iter().any(|step| step.seq == seq) {
                let access = Step {
                    seq,
                    operation: if write { "write" } else { "read" },
                    role: Role::Access {
                        map: race.map,
                        write,
                    },
                    pc: 0,
                    location: None,
                };
                steps.insert(0, access);
            }
            steps
        };
        RaceGraph {
            current: steps_of(race.current.goroutine, race.current.seq, race.current.write),
            previous: steps_of(
                race.previous.goroutine,
                race.previous.seq,
                race.previous.write,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_the_oldest_goroutines_first() {
        let mut histories = Histories::default();
        for goroutine in 0..GOROUTINES_REMEMBERED as u64 + 1 {
            let lock = Operation::Acquire {
                goroutine,
                object: 1,
            };
            histories.record(goroutine, "lock", &lock, 0);
        }
        assert!(!histories.steps.contains_key(&0));
        assert!(histories.steps.contains_key(&1));
        assert_eq!(histories.steps.len(), GOROUTINES_REMEMBERED);
    }
}

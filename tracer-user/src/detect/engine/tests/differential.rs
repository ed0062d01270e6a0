//! The engine against a reference: random operation streams run through both; the reference
//! keeps one full vector clock per goroutine id (no slots, no sharing, no shortcuts, no bounds)
//! and every access ever made. Every race the engine reports must be a race of the reference;
//! without bounds, the engine must find a race on every map where the reference has one.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;

use super::{Address, GoroutineId, Limits, Operation, Trace};

type Clock = HashMap<GoroutineId, u64>;

fn join(into: &mut Clock, from: &Clock) {
    for (&goroutine, &time) in from {
        let mine = into.entry(goroutine).or_default();
        *mine = (*mine).max(time);
    }
}

struct Recorded {
    seq: u64,
    goroutine: GoroutineId,
    time: u64,
    write: bool,
}

/// Happens-before as `-race` defines it, computed the slow and obvious way.
#[derive(Default)]
struct Reference {
    clocks: HashMap<GoroutineId, Clock>,
    objects: HashMap<Address, Clock>,
    accesses: HashMap<Address, Vec<Recorded>>,
    /// (earlier seq, later seq) of every unordered pair with a write.
    races: HashSet<(u64, u64)>,
    racy_maps: HashSet<Address>,
}

impl Reference {
    fn clock(&mut self, goroutine: GoroutineId) -> &mut Clock {
        self.clocks.entry(goroutine).or_insert_with(|| {
            let mut clock = Clock::new();
            clock.insert(goroutine, 1);
            clock
        })
    }

    fn tick(&mut self, goroutine: GoroutineId) {
        *self.clock(goroutine).entry(goroutine).or_default() += 1;
    }

    fn apply(&mut self, seq: u64, operation: &Operation) {
        match *operation {
            Operation::Spawn { parent, child, .. } => {
                let inherited = self.clock(parent).clone();
                join(self.clock(child), &inherited);
                self.tick(parent);
            }
            Operation::Exit { .. } | Operation::Gap { .. } => {}
            Operation::Acquire { goroutine, object } => {
                let carried = self.objects.get(&object).cloned().unwrap_or_default();
                join(self.clock(goroutine), &carried);
            }
            Operation::AcquireAll { goroutine } => {
                let mut everything = Clock::new();
                for clock in self.clocks.values() {
                    join(&mut everything, clock);
                }
                join(self.clock(goroutine), &everything);
            }
            Operation::Release { goroutine, object } => {
                let clock = self.clock(goroutine).clone();
                self.objects.insert(object, clock);
                self.tick(goroutine);
            }
            Operation::ReleaseMerge { goroutine, object } => {
                let clock = self.clock(goroutine).clone();
                join(self.objects.entry(object).or_default(), &clock);
                self.tick(goroutine);
            }
            Operation::ReleaseAcquire { goroutine, object } => {
                let clock = self.clock(goroutine).clone();
                let previous = self.objects.insert(object, clock).unwrap_or_default();
                join(self.clock(goroutine), &previous);
                self.tick(goroutine);
            }
            Operation::MapCreated { map } => {
                self.accesses.remove(&map);
            }
            Operation::ObjectCreated { object } => {
                self.objects.remove(&object);
            }
            Operation::MapAccess {
                goroutine,
                map,
                write,
                ..
            } => {
                let clock = self.clock(goroutine).clone();
                let history = self.accesses.entry(map).or_default();
                for earlier in history.iter() {
                    let ordered =
                        earlier.time <= clock.get(&earlier.goroutine).copied().unwrap_or(0);
                    if !ordered && (earlier.write || write) {
                        self.races.insert((earlier.seq, seq));
                        self.racy_maps.insert(map);
                    }
                }
                history.push(Recorded {
                    seq,
                    goroutine,
                    time: clock[&goroutine],
                    write,
                });
            }
        }
    }
}

const MAPS: u64 = 3;
const OBJECTS: u64 = 3;
const FIRST_GOROUTINE: GoroutineId = 1;

/// One step of a random program: `kind` picks the operation, `actor` and `target` pick among
/// the live goroutines and the objects or maps.
#[derive(Clone, Debug)]
struct Step {
    kind: u8,
    actor: usize,
    target: u64,
}

/// Programs of `lengths` steps.
fn steps(lengths: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (0u8..10, any::<usize>(), any::<u64>()).prop_map(|(kind, actor, target)| Step {
            kind,
            actor,
            target,
        }),
        lengths,
    )
}

/// The operations of `steps`: goroutines are spawned by live ones and never used after exiting;
/// each access has its own site, so no report is folded into another's count.
fn program(steps: &[Step]) -> Vec<Operation> {
    let mut live = vec![FIRST_GOROUTINE];
    let mut next = FIRST_GOROUTINE + 1;
    let mut operations = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        let goroutine = live[step.actor % live.len()];
        let object = 0x1000 + 8 * (step.target % OBJECTS);
        let map = 0x2000 + 8 * (step.target % MAPS);
        operations.push(match step.kind {
            0 => {
                live.push(next);
                next += 1;
                Operation::Spawn {
                    parent: goroutine,
                    child: next - 1,
                    site: 0,
                }
            }
            1 if live.len() > 1 => {
                live.retain(|&g| g != goroutine);
                Operation::Exit { goroutine }
            }
            1 => Operation::AcquireAll { goroutine },
            2 => Operation::Acquire { goroutine, object },
            3 => Operation::Release { goroutine, object },
            4 => Operation::ReleaseMerge { goroutine, object },
            5 => Operation::ReleaseAcquire { goroutine, object },
            6 if step.target % 16 == 0 => Operation::MapCreated { map },
            6 if step.target % 16 == 1 => Operation::ObjectCreated { object },
            _ => Operation::MapAccess {
                goroutine,
                map,
                write: step.target & 4 == 0,
                site: 1000 + index as u64,
            },
        });
    }
    operations
}

/// Runs `operations` through the engine (with `limits`) and the reference.
fn run(operations: &[Operation], limits: Limits) -> (Trace, Reference) {
    let mut trace = Trace::with_limits(limits);
    let mut reference = Reference::default();
    for operation in operations {
        trace.op(operation.clone());
        reference.apply(trace.seq, operation);
    }
    (trace, reference)
}

fn tight() -> Limits {
    Limits {
        max_maps: 2,
        max_sync_objects: 2,
        max_goroutines: 3,
        max_slots: 2,
    }
}

/// Every race the engine reported is one the reference finds.
fn reports_are_races(trace: &Trace, reference: &Reference) -> Result<(), TestCaseError> {
    for race in &trace.reported {
        prop_assert!(
            reference
                .races
                .contains(&(race.previous.seq, race.current.seq)),
            "reported {race:?}, which the reference orders"
        );
    }
    Ok(())
}

/// Bounds that let clocks widen past their first 32 slots, objects be evicted all the while and
/// goroutines now and then (for long programs).
fn wide() -> Limits {
    Limits {
        max_maps: 3,
        max_sync_objects: 2,
        max_goroutines: 24,
        max_slots: 40,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_reported_race_is_a_race_and_every_racy_map_is_reported(steps in steps(1..200)) {
        let (trace, reference) = run(&program(&steps), Limits::default());
        reports_are_races(&trace, &reference)?;
        let reported: HashSet<Address> = trace.reported.iter().map(|race| race.map).collect();
        prop_assert_eq!(reported, reference.racy_maps);
    }

    #[test]
    fn under_tight_bounds_every_reported_race_is_still_a_race(steps in steps(1..200)) {
        let (trace, reference) = run(&program(&steps), tight());
        reports_are_races(&trace, &reference)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn under_wide_bounds_and_long_programs_every_reported_race_is_still_a_race(
        steps in steps(1..2000)
    ) {
        let (trace, reference) = run(&program(&steps), wide());
        reports_are_races(&trace, &reference)?;
    }
}

//! Random schedules: properly synchronised ones never report; removing one edge from a schedule
//! whose accesses it ordered does; repeated races are one report with a count.

use proptest::prelude::*;

use super::{Trace, LOCK, MAIN, MAP};

const WORKER_BASE: u64 = 100;

fn map(index: usize) -> u64 {
    MAP + 8 * index as u64
}

fn lock(index: usize) -> u64 {
    LOCK + 8 * index as u64
}

fn worker(index: usize) -> u64 {
    WORKER_BASE + index as u64
}

/// One critical section: (goroutine index, map index, write).
fn sections(goroutines: usize, maps: usize) -> impl Strategy<Value = Vec<(usize, usize, bool)>> {
    prop::collection::vec((0..goroutines, 0..maps, any::<bool>()), 1..60)
}

/// Main writes every map, spawns the workers, and they run `sections` each under its map's
/// mutex, then exit.
fn locked_schedule(maps: usize, sections: &[(usize, usize, bool)]) -> Trace {
    let mut t = Trace::new();
    for m in 0..maps {
        t.write(MAIN, map(m), 1000 + m as u64);
    }
    let workers = sections.iter().map(|&(g, _, _)| g).max().unwrap_or(0) + 1;
    for g in 0..workers {
        t.spawn(MAIN, worker(g), 1);
    }
    for (site, &(g, m, write)) in sections.iter().enumerate() {
        t.acquire(worker(g), lock(m));
        t.access(worker(g), map(m), write, site as u64);
        t.release(worker(g), lock(m));
    }
    for g in 0..workers {
        t.exit(worker(g));
    }
    t
}

/// A random action, interpreted against the schedule's state so that it stays race-free.
#[derive(Clone, Debug)]
struct Action {
    actor: usize,
    kind: u8,
    target: usize,
    write: bool,
}

fn actions() -> impl Strategy<Value = Vec<Action>> {
    prop::collection::vec(
        (any::<usize>(), 0u8..4, any::<usize>(), any::<bool>()).prop_map(
            |(actor, kind, target, write)| Action {
                actor,
                kind,
                target,
                write,
            },
        ),
        1..120,
    )
}

proptest! {
    #[test]
    fn mutex_protected_accesses_never_report(
        maps in 1usize..4,
        sections in sections(5, 3),
    ) {
        let sections: Vec<_> = sections.into_iter().map(|(g, m, w)| (g, m % maps, w)).collect();
        let t = locked_schedule(maps, &sections);
        prop_assert_eq!(&t.reported, &[]);
    }

    /// Maps are owned by one goroutine at a time and handed to a child when it is spawned:
    /// the parent accesses before the spawn, the child after.
    #[test]
    fn ownership_handed_over_by_spawn_never_reports(maps in 1usize..6, actions in actions()) {
        let mut t = Trace::new();
        // (goroutine id, owned map indices)
        let mut live: Vec<(u64, Vec<usize>)> = vec![(MAIN, (0..maps).collect())];
        let mut next_id = WORKER_BASE;
        for (site, action) in actions.iter().enumerate() {
            if live.is_empty() {
                break;
            }
            let actor = action.actor % live.len();
            let (id, owned) = &mut live[actor];
            let id = *id;
            match action.kind {
                0 | 1 if !owned.is_empty() => {
                    let m = owned[action.target % owned.len()];
                    t.access(id, map(m), action.write, site as u64);
                }
                2 => {
                    // Hand every map whose index has the target's bit set to the child.
                    let (given, kept): (Vec<usize>, Vec<usize>) =
                        owned.iter().partition(|&&m| (action.target >> (m % 64)) & 1 == 1);
                    *owned = kept;
                    t.spawn(id, next_id, site as u64);
                    live.push((next_id, given));
                    next_id += 1;
                }
                3 => {
                    t.exit(id);
                    live.swap_remove(actor);
                }
                _ => {}
            }
        }
        prop_assert_eq!(&t.reported, &[]);
    }

    /// Maps are handed between running goroutines over channels, as a send and its receive
    /// (release-acquire on the slot) or a close seen by a receive (release, acquire); at the
    /// end every goroutine calls Done and main, after Wait, writes every map.
    #[test]
    fn ownership_handed_over_channels_and_a_wait_group_never_reports(
        goroutines in 2usize..6,
        maps in 1usize..5,
        actions in actions(),
    ) {
        const CHANNEL_SLOT: u64 = 0xc000_9000;
        const CLOSED_BASE: u64 = 0xc001_0000;
        const WG: u64 = 0xc000_a000;
        let mut t = Trace::new();
        for m in 0..maps {
            t.write(MAIN, map(m), 1000);
        }
        for g in 0..goroutines {
            t.spawn(MAIN, worker(g), 1);
        }
        let mut owner: Vec<usize> = (0..maps).map(|m| m % goroutines).collect();
        for (transfer, action) in actions.iter().enumerate() {
            let m = action.target % maps;
            let from = owner[m];
            let to = action.actor % goroutines;
            match action.kind {
                0 | 1 => {
                    t.access(worker(from), map(m), action.write, transfer as u64);
                }
                2 => {
                    t.release_acquire(worker(from), CHANNEL_SLOT);
                    t.release_acquire(worker(to), CHANNEL_SLOT);
                    owner[m] = to;
                }
                _ => {
                    let closed = CLOSED_BASE + 8 * transfer as u64;
                    t.release(worker(from), closed).acquire(worker(to), closed);
                    owner[m] = to;
                }
            }
        }
        for g in 0..goroutines {
            t.release_merge(worker(g), WG).exit(worker(g));
        }
        t.acquire(MAIN, WG);
        for m in 0..maps {
            t.write(MAIN, map(m), 2000);
        }
        prop_assert_eq!(&t.reported, &[]);
    }

    /// Readers may overlap each other, never a writer; annotated as `-race` annotates RWMutex.
    #[test]
    fn rw_mutex_protected_accesses_never_report(goroutines in 2usize..6, actions in actions()) {
        const READER_SEM: u64 = 0xc000_b000;
        const WRITER_SEM: u64 = 0xc000_b008;
        let mut t = Trace::new();
        for g in 0..goroutines {
            t.spawn(MAIN, worker(g), 1);
        }
        let mut reading: Vec<usize> = Vec::new();
        for (site, action) in actions.iter().enumerate() {
            let g = action.actor % goroutines;
            let site = site as u64;
            if let Some(at) = reading.iter().position(|&r| r == g) {
                // RUnlock after the read.
                t.read(worker(g), MAP, site).release_merge(worker(g), WRITER_SEM);
                reading.swap_remove(at);
            } else if action.write && reading.is_empty() {
                t.acquire(worker(g), READER_SEM).acquire(worker(g), WRITER_SEM);
                t.write(worker(g), MAP, site).release(worker(g), READER_SEM);
            } else {
                t.acquire(worker(g), READER_SEM);
                reading.push(g);
            }
        }
        prop_assert_eq!(&t.reported, &[]);
    }

    /// One mutex orders everything; section `k` is made to conflict with section `k - 1` of
    /// another goroutine, then loses its Lock (or `k - 1` its Unlock). The first report is
    /// section `k`'s access.
    #[test]
    fn removing_one_lock_edge_reports_the_access_it_ordered(
        goroutines in 2usize..5,
        sections in sections(4, 3),
        k in any::<prop::sample::Index>(),
        drop_unlock in any::<bool>(),
    ) {
        let mut sections: Vec<_> = sections.into_iter().map(|(g, m, w)| (g % goroutines, m, w)).collect();
        sections.insert(0, (0, 0, true));
        let k = 1 + k.index(sections.len() - 1);
        let (before_g, before_m, _) = sections[k - 1];
        sections[k] = ((before_g + 1) % goroutines, before_m, true);

        let mut t = Trace::new();
        for g in 0..goroutines {
            t.spawn(MAIN, worker(g), 1);
        }
        for (site, &(g, m, write)) in sections.iter().enumerate() {
            let lock_removed = site == k && !drop_unlock;
            let unlock_removed = site == k - 1 && drop_unlock;
            if !lock_removed {
                t.acquire(worker(g), LOCK);
            }
            t.access(worker(g), map(m), write, site as u64);
            if !unlock_removed {
                t.release(worker(g), LOCK);
            }
        }
        let first = t.reported.first().expect("the removed edge ordered section k");
        prop_assert_eq!((first.current.goroutine, first.current.site), (worker(sections[k].0), k as u64));
    }

    /// The same two code sites racing N times, in either order, on fresh maps: one report,
    /// returned once, with count N.
    #[test]
    fn repeated_races_between_two_sites_are_one_report(orders in prop::collection::vec(any::<bool>(), 1..50)) {
        let mut t = Trace::new();
        for (i, &reversed) in orders.iter().enumerate() {
            let (first, second) = if reversed { (2, 1) } else { (1, 2) };
            let a = worker(2 * i);
            let b = worker(2 * i + 1);
            t.created(map(i)).write(a, map(i), first).write(b, map(i), second);
        }
        prop_assert_eq!(t.reported.len(), 1);
        let reports = t.engine.reports();
        prop_assert_eq!(reports.len(), 1);
        prop_assert_eq!(reports[0].count, orders.len() as u64);
        prop_assert_eq!(t.engine.stats().race_instances, orders.len() as u64);
    }
}

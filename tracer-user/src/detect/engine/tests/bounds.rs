//! The engine's bounds: slot reuse and preemption, evictions of goroutines, objects and maps.
//! Each may lose a race (counted), none may invent one or order what is not ordered.

use super::{Limits, Trace, LOCK, MAIN, MAP, OTHER_LOCK};

const WRITE: bool = true;
const UNRELATED: u64 = 0xc000_2010;

fn limits(max_slots: usize) -> Limits {
    Limits {
        max_slots,
        ..Limits::default()
    }
}

mod slot_reuse {
    use super::*;

    /// Goroutine 2 advances slot 0 to time 4; goroutine 9 learns time 3 of it, then 2 exits and
    /// goroutine 3 gets slot 0. If 3 restarted the slot's time, 9's old knowledge would order
    /// 3's write before 9's.
    fn reused_by_a_new_goroutine(handed_over: bool) -> Trace {
        let mut t = Trace::with_limits(limits(2));
        t.hold_slot(2); // slot 0
        t.release(2, LOCK).release(2, LOCK).release(2, LOCK);
        t.acquire(9, LOCK).hold_slot(9); // slot 1
        t.exit(2);
        t.write(3, MAP, 1); // slot 0 again
        if handed_over {
            t.release(3, OTHER_LOCK).acquire(9, OTHER_LOCK);
        }
        t.write(9, MAP, 2);
        assert_eq!(t.engine.stats().slot_reuses, 1);
        assert_eq!(t.engine.stats().slots, 2);
        t
    }

    #[test]
    fn knowledge_of_a_previous_owner_does_not_order_the_new_owner() {
        reused_by_a_new_goroutine(false).assert_one_race((3, 1, WRITE), (9, 2, WRITE));
    }

    #[test]
    fn the_new_owner_is_ordered_by_its_own_edges() {
        reused_by_a_new_goroutine(true).assert_silent();
    }

    /// Only map accesses take slots: a thousand goroutines that lock, unlock and exit between
    /// two writers' accesses take none, and still order them.
    #[test]
    fn goroutines_that_only_synchronise_take_no_slot() {
        let mut t = Trace::with_limits(limits(4));
        t.write(MAIN, MAP, 1).release(MAIN, LOCK);
        for goroutine in 2..1002 {
            t.spawn(MAIN, goroutine, 2);
            t.acquire(goroutine, LOCK)
                .release(goroutine, LOCK)
                .exit(goroutine);
        }
        t.acquire(MAIN, LOCK)
            .write(MAIN, MAP, 3)
            .release(MAIN, LOCK);
        t.acquire(1002, LOCK).write(1002, MAP, 4);
        t.assert_silent();
        let stats = t.engine.stats();
        assert_eq!((stats.slots, stats.slot_preemptions), (2, 0));
    }

    /// Goroutine 2's write names slot 0; reusing the slot forgets it (a lost race, counted)
    /// rather than let goroutine 3's times order it.
    #[test]
    fn reusing_a_slot_that_records_name_forgets_them_and_counts_it() {
        let mut t = Trace::with_limits(limits(1));
        t.write(2, MAP, 1).exit(2).write(3, MAP, 2);
        t.assert_silent();
        let stats = t.engine.stats();
        assert_eq!(
            (
                stats.slot_reuses,
                stats.forgotten_by_preemption,
                stats.slots
            ),
            (1, 1, 1)
        );
    }

    /// Goroutine 2 learns of 1's write, then loses its slot twice to goroutines without
    /// records (which costs nothing); it must still be ordered after the write.
    fn preempted_reader_of(learned: bool) -> Trace {
        let mut t = Trace::with_limits(limits(2));
        t.write(1, MAP, 1).release(1, LOCK);
        if learned {
            t.acquire(2, LOCK);
        }
        t.hold_slot(2); // slot 1
        t.hold_slot(3); // preempts 2 (no records), not 1 (records)
        t.write(2, MAP, 2); // preempts 3
        let stats = t.engine.stats();
        assert_eq!(
            (stats.slot_preemptions, stats.forgotten_by_preemption),
            (2, 0)
        );
        t
    }

    #[test]
    fn a_preempted_goroutine_keeps_what_it_knew() {
        preempted_reader_of(true).assert_silent();
    }

    /// Goroutine 2 releases LOCK knowing of 1's write, then loses its slot to goroutine 3,
    /// whose later time there goroutine 4 learns. That time is 3's: it says nothing of what 2
    /// knew, so 4's acquire of LOCK must still teach it 1's write (an acquire is skipped only
    /// for a release epoch of the slot's current owner).
    #[test]
    fn a_later_owners_epoch_does_not_stand_for_an_earlier_owners_release() {
        let mut t = Trace::with_limits(limits(2));
        t.write(1, MAP, 1).release(1, OTHER_LOCK); // 1 takes slot 0
        t.acquire(2, OTHER_LOCK).hold_slot(2).release(2, LOCK); // 2 takes slot 1
        t.hold_slot(3).release(3, UNRELATED); // preempts 2 (no records), not 1 (records)
        t.acquire(4, UNRELATED).acquire(4, LOCK);
        t.write(4, MAP, 2);
        assert_eq!(t.engine.stats().slot_preemptions, 2);
        t.assert_silent();
    }

    #[test]
    fn a_preempted_goroutine_still_races() {
        preempted_reader_of(false).assert_one_race((1, 1, WRITE), (2, 2, WRITE));
    }
}

mod eviction {
    use super::*;

    /// Goroutine 3 released LOCK after writing; goroutine 4 acquires it after LOCK's clock was
    /// evicted by OTHER_LOCK's.
    fn acquire_after_eviction(acquires: bool) -> Trace {
        let mut t = Trace::with_limits(Limits {
            max_sync_objects: 1,
            ..Limits::default()
        });
        t.write(3, MAP, 1).release(3, LOCK).release(5, OTHER_LOCK);
        if acquires {
            t.acquire(4, LOCK);
        }
        t.write(4, MAP, 2);
        assert_eq!(t.engine.stats().sync_object_evictions, 1);
        t
    }

    #[test]
    fn an_evicted_object_still_orders_its_acquirers() {
        acquire_after_eviction(true).assert_silent();
    }

    #[test]
    fn without_the_acquire_the_writes_race() {
        acquire_after_eviction(false).assert_one_race((3, 1, WRITE), (4, 2, WRITE));
    }

    /// Goroutine 3 wrote and released LOCK; then a new object is made at LOCK's address (the
    /// collector reused a dead channel's memory) while LOCK's clock is in the table or evicted.
    /// The new object carries nothing of the old, through an acquire of it or through what
    /// another goroutine released into it since.
    #[test]
    fn a_new_object_where_another_was_carries_nothing_of_it() {
        for evicted in [false, true] {
            for released_since in [false, true] {
                let mut t = Trace::with_limits(Limits {
                    max_sync_objects: 1,
                    ..Limits::default()
                });
                t.write(3, MAP, 1).release(3, LOCK);
                if evicted {
                    t.release(5, OTHER_LOCK);
                }
                t.object_created(LOCK);
                if released_since {
                    t.release_merge(6, LOCK);
                }
                t.acquire(4, LOCK).write(4, MAP, 2);
                t.assert_one_race((3, 1, WRITE), (4, 2, WRITE));
            }
        }
    }

    /// Goroutine 2 learns of 1's write, is evicted by goroutines 3 and 4, and comes back.
    fn goroutine_evicted_after(learned: bool) -> Trace {
        let mut t = Trace::with_limits(Limits {
            max_goroutines: 2,
            ..Limits::default()
        });
        t.write(1, MAP, 1).release(1, LOCK).exit(1);
        if learned {
            t.acquire(2, LOCK);
        }
        t.acquire(2, UNRELATED)
            .acquire(3, UNRELATED)
            .acquire(4, UNRELATED);
        t.write(2, MAP, 2);
        assert!(t.engine.stats().goroutine_evictions >= 1);
        t
    }

    #[test]
    fn an_evicted_goroutine_comes_back_knowing_what_it_knew() {
        goroutine_evicted_after(true).assert_silent();
    }

    #[test]
    fn an_evicted_goroutine_that_knew_nothing_still_races() {
        goroutine_evicted_after(false).assert_one_race((1, 1, WRITE), (2, 2, WRITE));
    }

    #[test]
    fn evicting_a_map_history_hides_its_races_and_is_counted() {
        const OTHER_MAP: u64 = 0xc000_1008;
        let mut t = Trace::with_limits(Limits {
            max_maps: 1,
            ..Limits::default()
        });
        t.write(2, MAP, 1).write(3, OTHER_MAP, 2).write(3, MAP, 3);
        t.assert_silent();
        let stats = t.engine.stats();
        assert_eq!((stats.maps, stats.map_evictions), (1, 2));
    }
}

mod time_limit {
    use super::*;
    use crate::detect::engine::Engine;

    /// Goroutine 1 writes, then releases LOCK until its slot's time runs out: the engine starts
    /// afresh (a gap that forgets the write, counted) and goes on finding races.
    #[test]
    fn running_out_of_time_forgets_what_was_recorded_and_carries_on() {
        let mut t = Trace::with_limits(Limits::default());
        t.engine = Engine::with_time_limit(Limits::default(), 5);
        t.write(1, MAP, 1);
        for _ in 0..4 {
            t.release(1, LOCK);
        }
        let stats = t.engine.stats();
        assert_eq!((stats.gaps, stats.forgotten_by_gap), (1, 1));
        assert_eq!(stats.goroutines, 0, "every clock was forgotten");
        t.write(2, MAP, 2); // unordered with 1's write, which was forgotten
        t.assert_silent();
        t.write(3, MAP, 3);
        t.assert_one_race((2, 2, WRITE), (3, 3, WRITE));
    }
}

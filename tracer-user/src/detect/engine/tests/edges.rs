//! Every happens-before edge: a race-free trace, and the same trace with the edge removed,
//! which must report exactly the race the edge prevented.

use super::{Trace, LOCK, MAIN, MAP, OTHER_LOCK};

const WRITE: bool = true;
const READ: bool = false;

mod spawn {
    use super::*;

    #[test]
    fn parent_before_spawn_is_ordered_before_the_child() {
        let mut t = Trace::new();
        t.write(MAIN, MAP, 1).spawn(MAIN, 2, 50).write(2, MAP, 2);
        t.assert_silent();
    }

    #[test]
    fn without_the_spawn_the_accesses_race() {
        let mut t = Trace::new();
        t.write(MAIN, MAP, 1).write(2, MAP, 2);
        t.assert_one_race((MAIN, 1, WRITE), (2, 2, WRITE));
    }

    #[test]
    fn parent_after_spawn_races_and_the_report_names_the_creation_site() {
        let mut t = Trace::new();
        t.spawn(MAIN, 2, 50).write(MAIN, MAP, 1).write(2, MAP, 2);
        t.assert_one_race((MAIN, 1, WRITE), (2, 2, WRITE));
        assert_eq!(t.reported[0].current.created_at, Some(50));
        assert_eq!(t.reported[0].previous.created_at, None);
        assert_eq!(t.reported[0].kind(), "write/write");
    }
}

mod mutex {
    use super::*;

    fn critical_sections(second_locks: bool) -> Trace {
        let mut t = Trace::new();
        t.spawn(MAIN, 2, 50).spawn(MAIN, 3, 51);
        t.acquire(2, LOCK).write(2, MAP, 1).release(2, LOCK);
        if second_locks {
            t.acquire(3, LOCK);
        }
        t.write(3, MAP, 2).release(3, LOCK);
        t
    }

    #[test]
    fn unlock_then_lock_orders_the_critical_sections() {
        critical_sections(true).assert_silent();
    }

    #[test]
    fn without_the_lock_the_writes_race() {
        critical_sections(false).assert_one_race((2, 1, WRITE), (3, 2, WRITE));
    }
}

mod wait_group {
    use super::*;

    const WG: u64 = 0xc000_3000;

    /// Two workers read, call Done, and main writes after Wait. Done must merge: a Done that
    /// replaced the WaitGroup's clock would lose the first worker.
    fn fan_in(second_done: bool) -> Trace {
        let mut t = Trace::new();
        t.spawn(MAIN, 2, 50).spawn(MAIN, 3, 50);
        t.read(2, MAP, 1).release_merge(2, WG);
        t.read(3, MAP, 2);
        if second_done {
            t.release_merge(3, WG);
        }
        t.acquire(MAIN, WG).write(MAIN, MAP, 3);
        t
    }

    #[test]
    fn wait_is_ordered_after_every_done() {
        fan_in(true).assert_silent();
    }

    #[test]
    fn a_missing_done_leaves_that_worker_racing() {
        fan_in(false).assert_one_race((3, 2, READ), (MAIN, 3, WRITE));
    }
}

mod channel {
    use super::*;

    const SLOT: u64 = 0xc000_4000;
    const OTHER_SLOT: u64 = 0xc000_4008;

    #[test]
    fn a_hand_off_orders_the_sender_before_the_receiver() {
        let mut t = Trace::new();
        t.write(2, MAP, 1).release_acquire(2, SLOT);
        t.release_acquire(3, SLOT).write(3, MAP, 2);
        t.assert_silent();
    }

    #[test]
    fn without_the_receive_the_writes_race() {
        let mut t = Trace::new();
        t.write(2, MAP, 1).release_acquire(2, SLOT);
        t.write(3, MAP, 2);
        t.assert_one_race((2, 1, WRITE), (3, 2, WRITE));
    }

    /// Buffered channels: the k-th receive from a slot is ordered before the (k+C)-th send to
    /// it, through the same release-acquire.
    fn receive_then_send(send_slot: u64) -> Trace {
        let mut t = Trace::new();
        t.read(2, MAP, 1).release_acquire(2, SLOT);
        t.release_acquire(3, send_slot).write(3, MAP, 2);
        t
    }

    #[test]
    fn a_receive_is_ordered_before_a_later_send_to_its_slot() {
        receive_then_send(SLOT).assert_silent();
    }

    #[test]
    fn a_send_to_another_slot_races_with_the_receiver() {
        receive_then_send(OTHER_SLOT).assert_one_race((2, 1, READ), (3, 2, WRITE));
    }

    #[test]
    fn close_is_ordered_before_the_receive_that_sees_it() {
        let mut t = Trace::new();
        t.write(2, MAP, 1).release(2, SLOT);
        t.acquire(3, SLOT).read(3, MAP, 2);
        t.assert_silent();
    }
}

mod once {
    use super::*;

    const ONCE: u64 = 0xc000_5000;

    fn once(do_returns: bool) -> Trace {
        let mut t = Trace::new();
        t.write(2, MAP, 1).release(2, ONCE);
        if do_returns {
            t.acquire(3, ONCE);
        }
        t.read(3, MAP, 2);
        t
    }

    #[test]
    fn f_returning_is_ordered_before_every_do_return() {
        once(true).assert_silent();
    }

    #[test]
    fn without_the_do_return_the_read_races() {
        let t = once(false);
        t.assert_one_race((2, 1, WRITE), (3, 2, READ));
        assert_eq!(t.reported[0].kind(), "read/write");
    }
}

mod rw_mutex {
    use super::*;

    const READER_SEM: u64 = 0xc000_6000;
    const WRITER_SEM: u64 = 0xc000_6008;

    /// Two overlapping readers, a writer, then a reader again, annotated as `-race` does.
    fn readers_writer_reader(second_runlock: bool) -> Trace {
        let mut t = Trace::new();
        t.acquire(2, READER_SEM).acquire(3, READER_SEM);
        t.read(2, MAP, 1).read(3, MAP, 2);
        t.release_merge(2, WRITER_SEM);
        if second_runlock {
            t.release_merge(3, WRITER_SEM);
        }
        t.acquire(4, READER_SEM).acquire(4, WRITER_SEM);
        t.write(4, MAP, 3).release(4, READER_SEM);
        t.acquire(5, READER_SEM).read(5, MAP, 4);
        t
    }

    #[test]
    fn readers_are_ordered_before_the_writer_and_the_writer_before_readers() {
        readers_writer_reader(true).assert_silent();
    }

    #[test]
    fn a_missing_runlock_leaves_that_reader_racing_with_the_writer() {
        readers_writer_reader(false).assert_one_race((3, 2, READ), (4, 3, WRITE));
    }
}

mod read_shared {
    use super::*;

    /// Goroutines 2 and 3 read concurrently; the writer 4 is ordered after `known_reader` only.
    fn concurrent_reads_then_write_after(known_reader: u64) -> Trace {
        let mut t = Trace::new();
        t.read(2, MAP, 2).read(3, MAP, 3);
        t.assert_silent();
        t.release(known_reader, LOCK)
            .acquire(4, LOCK)
            .write(4, MAP, 4);
        t
    }

    #[test]
    fn a_write_after_concurrent_reads_races_with_the_later_unordered_one() {
        concurrent_reads_then_write_after(2).assert_one_race((3, 3, READ), (4, 4, WRITE));
    }

    #[test]
    fn a_write_after_concurrent_reads_races_with_the_earlier_unordered_one() {
        concurrent_reads_then_write_after(3).assert_one_race((2, 2, READ), (4, 4, WRITE));
    }

    /// The same-epoch shortcut must not skip reads made since the goroutine's last write.
    #[test]
    fn a_write_repeated_in_one_epoch_is_checked_against_reads_since() {
        let mut t = Trace::new();
        t.write(2, MAP, 1).read(3, MAP, 2).write(2, MAP, 3);
        let sides: Vec<_> = t
            .reported
            .iter()
            .map(|r| (r.previous.site, r.current.site, r.kind()))
            .collect();
        assert_eq!(sides, [(1, 2, "read/write"), (2, 3, "write/read")]);
    }
}

mod map_identity {
    use super::*;

    fn two_maps_at_one_address(recreated: bool) -> Trace {
        let mut t = Trace::new();
        t.write(2, MAP, 1);
        if recreated {
            t.created(MAP);
        }
        t.write(3, MAP, 2);
        t
    }

    #[test]
    fn a_new_map_at_the_same_address_has_no_history() {
        two_maps_at_one_address(true).assert_silent();
    }

    #[test]
    fn without_the_creation_the_writes_race() {
        two_maps_at_one_address(false).assert_one_race((2, 1, WRITE), (3, 2, WRITE));
    }
}

mod gap {
    use super::*;

    fn writes_around(gap: Option<Option<Vec<u64>>>) -> Trace {
        let mut t = Trace::new();
        t.write(2, MAP, 1);
        if let Some(goroutines) = gap {
            t.gap(goroutines);
        }
        t.write(3, MAP, 2);
        t
    }

    #[test]
    fn a_gap_forgets_what_a_lost_event_could_have_ordered() {
        let t = writes_around(Some(None));
        t.assert_silent();
        let stats = t.engine.stats();
        assert_eq!((stats.gaps, stats.forgotten_by_gap), (1, 1));
    }

    #[test]
    fn without_a_gap_the_writes_race() {
        writes_around(None).assert_one_race((2, 1, WRITE), (3, 2, WRITE));
    }

    #[test]
    fn a_gap_of_some_goroutines_forgets_only_what_they_knew_or_could_acquire() {
        const KNOWN: u64 = 0xc000_7000;
        const PUBLISHED: u64 = 0xc000_7008;
        const PRIVATE: u64 = 0xc000_7010;
        let mut t = Trace::new();
        t.write(2, KNOWN, 1);
        t.write(5, PUBLISHED, 5).release(5, LOCK);
        t.write(6, PRIVATE, 6);
        t.gap(Some(vec![2]));
        t.write(3, KNOWN, 2)
            .write(3, PUBLISHED, 3)
            .write(3, PRIVATE, 4);
        t.assert_one_race((6, 6, WRITE), (3, 4, WRITE));
        assert_eq!(t.engine.stats().forgotten_by_gap, 2);
    }

    /// A completion whose start was lost orders goroutine 5 after every slot's latest time,
    /// goroutine 3's running epoch included. 3 then learns of 6's write (acquires do not tick)
    /// and releases LOCK at that same epoch: 5 knows the epoch but not the write, so its
    /// acquire of LOCK must not be skipped as already known.
    fn acquire_after_a_running_epoch(learned: bool) -> Trace {
        let mut t = Trace::new();
        t.hold_slot(3).acquire_all(5);
        t.write(6, MAP, 1).release(6, OTHER_LOCK);
        if learned {
            t.acquire(3, OTHER_LOCK);
        }
        t.release(3, LOCK).acquire(5, LOCK).write(5, MAP, 2);
        t
    }

    #[test]
    fn knowing_a_running_epoch_does_not_skip_an_acquire() {
        acquire_after_a_running_epoch(true).assert_silent();
    }

    #[test]
    fn without_the_releaser_learning_the_write_the_writes_race() {
        acquire_after_a_running_epoch(false).assert_one_race((6, 1, WRITE), (5, 2, WRITE));
    }
}

//! A million goroutines and a million maps: what the engine keeps stays within its limits.

use super::{Limits, Trace, LOCK, MAIN, MAP};

const MILLION: u64 = 1_000_000;

#[test]
fn a_million_short_lived_goroutines_keep_clocks_bounded() {
    const ALIVE: u64 = 1000;
    let limits = Limits::default();
    let mut t = Trace::with_limits(limits);
    for i in 0..MILLION {
        let goroutine = 10 + i;
        t.spawn(MAIN, goroutine, 1);
        t.acquire(goroutine, LOCK);
        t.write(goroutine, MAP + 8 * (i % 16), 2);
        t.release(goroutine, LOCK);
        if i >= ALIVE {
            t.exit(goroutine - ALIVE);
        }
    }
    t.assert_silent();
    let stats = t.engine.stats();
    assert!(stats.goroutines as u64 <= ALIVE + 1, "{stats:?}");
    assert_eq!(stats.slots, limits.max_slots, "{stats:?}");
    assert!(
        stats.slot_reuses >= MILLION - limits.max_slots as u64,
        "{stats:?}"
    );
    assert_eq!(stats.goroutine_evictions, 0);
}

#[test]
fn a_million_maps_keep_histories_bounded() {
    let limits = Limits {
        max_maps: 4096,
        ..Limits::default()
    };
    let mut t = Trace::with_limits(limits);
    for i in 0..MILLION {
        let map = MAP + 64 * i;
        t.created(map).write(MAIN, map, 1);
    }
    t.assert_silent();
    let stats = t.engine.stats();
    assert_eq!(stats.maps, limits.max_maps);
    assert_eq!(stats.map_evictions, MILLION - limits.max_maps as u64);
}

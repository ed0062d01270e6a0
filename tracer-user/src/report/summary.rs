//! What a trace saw, in numbers: the end-of-run summary and the periodic progress line.

use std::{fmt::Write as _, time::Duration};

use smallvec::SmallVec;

use tracer_common::{EventKind, ProbeClass};

use crate::{
    detect::HashMap,
    events::{Event, Op},
};

/// How many of the busiest maps the summary lists.
const BUSIEST_MAPS_SHOWN: usize = 5;

/// Maps whose writes the summary follows: past this, the less written half is forgotten, so
/// that a week-long session (a service makes maps per request) keeps a bounded table.
const MAPS_FOLLOWED: usize = 4096;

/// Writers the summary tells apart per map (a map shared by a million goroutines would
/// otherwise keep a million ids).
const WRITERS_FOLLOWED: usize = 64;

#[derive(Default)]
struct MapActivity {
    writes: u64,
    /// Its writers, up to [`WRITERS_FOLLOWED`]: most maps have one or two, kept inline (a
    /// service creates maps per request, and an allocation for each was 2% of tracer's time).
    writers: SmallVec<[u64; 2]>,
}

impl MapActivity {
    fn written_by(&mut self, goroutine: u64) {
        self.writes += 1;
        if self.writers.len() < WRITERS_FOLLOWED && !self.writers.contains(&goroutine) {
            self.writers.push(goroutine);
        }
    }

    /// `3 goroutines`, or `64 goroutines or more` once the list is full.
    fn writers_line(&self) -> String {
        let writers = counted(self.writers.len(), "goroutine");
        match self.writers.len() >= WRITERS_FOLLOWED {
            true => format!("{writers} or more"),
            false => writers,
        }
    }
}

/// What the kernel programs counted (per-CPU counters, summed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelCounters {
    /// Hits of the map-entry, call-entry, call-return and inline-sync programs.
    pub hits: [u64; ProbeClass::ALL.len()],
    /// Hits on instructions the kernel single-steps (a second trap each).
    pub single_stepped: u64,
    /// Time spent in the probe programs, traps excluded.
    pub program_ns: u64,
    /// Map operations on maps on the goroutine's own stack (dropped: never shared).
    pub stack_filtered: u64,
    pub goid_unreadable: u64,
    pub stack_failed: u64,
    /// Hits while a window's probes were being placed or removed (not recorded).
    pub edge_skipped: u64,
    /// Map accesses repeating their goroutine's previous recorded event (not recorded: they
    /// cannot change a verdict).
    pub repeats_dropped: u64,
}

/// Running totals over the decoded events.
#[derive(Default)]
pub struct Summary {
    by_kind: KindCounts,
    /// The map each goroutine wrote last (for the report of a fatal map error).
    last_written: HashMap<u64, u64>,
    /// The most written maps (see [`MAPS_FOLLOWED`]).
    maps: HashMap<u64, MapActivity>,
    /// Maps written: a map forgotten by `maps` and written again counts again.
    maps_written: u64,
    /// Goroutines that wrote a map (each is in `last_written` from its first write until it
    /// exits, and goroutine ids are never reused).
    writers: u64,
    /// Events lost in the kernel (ring buffer full), as counted there.
    pub dropped: u64,
    /// Records that could not be decoded (a kernel/userspace layout mismatch; never expected).
    pub undecodable: u64,
    /// The kernel's own counters: hits per probe class and what it filtered.
    pub kernel: KernelCounters,
    /// How long the probes were in place and what that cost (live sessions).
    pub cost: Option<TracingCost>,
    /// What the cold-code watch saw (live sessions under a budget).
    pub cold_watch: Option<ColdWatchState>,
}

/// Events per kind, indexed by the kind's discriminant: one increment per event, no lookup.
struct KindCounts([u64; 1 << u8::BITS]);

impl Default for KindCounts {
    fn default() -> Self {
        Self([0; 1 << u8::BITS])
    }
}

/// The cold-code watch at the end of a session (see `plan::cold`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ColdWatchState {
    /// Calls still watched, and those dropped because they ran too often.
    pub watched: usize,
    pub dropped: usize,
    /// The functions whose watched calls ran at a steady rhythm, with its period.
    pub rhythms: Vec<(String, Duration)>,
}

/// Where a session stands, for its progress line.
pub struct Progress<'a> {
    pub elapsed: Duration,
    /// Distinct races found so far.
    pub races: usize,
    /// `in place`, `paused by the budget`…
    pub probes: &'a str,
    pub cost: TracingCost,
}

/// Time with probes in place and its cost, over a whole session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TracingCost {
    /// Sampling windows opened (1 when tracing all the time).
    pub windows: u64,
    /// Of those, the ones the cold-code watch timed: opened just before rarely run code was
    /// due to run again, or as it ran.
    pub cold_windows: u64,
    /// Time with every probe in place.
    pub traced: Duration,
    /// The target's time in probes, estimated (see `calibrate`).
    pub probes: Duration,
    /// tracer's CPU time on the target: placing and removing its probes, decoding and
    /// analysing its events.
    pub tracer_cpu: Duration,
    /// The target's CPU time over the session, probes included.
    pub target_cpu: Duration,
}

impl TracingCost {
    /// Probes and tracer's work as a fraction of the target's own CPU time, if it used any.
    pub fn overhead(&self) -> Option<f64> {
        let own = self
            .target_cpu
            .checked_sub(self.probes)
            .filter(|own| !own.is_zero())?;
        Some((self.probes + self.tracer_cpu).as_secs_f64() / own.as_secs_f64())
    }
}

impl Summary {
    pub fn record(&mut self, event: &Event) {
        self.by_kind.0[event.kind() as usize] += 1;
        match event.op.map_access() {
            Some((map, access)) if access.is_write() => {
                match self.maps.get_mut(&map) {
                    Some(activity) => activity.written_by(event.goroutine),
                    None => {
                        self.follow_new_map();
                        let mut activity = MapActivity::default();
                        activity.written_by(event.goroutine);
                        self.maps.insert(map, activity);
                    }
                }
                if self.last_written.insert(event.goroutine, map).is_none() {
                    self.writers += 1;
                }
            }
            // Only live goroutines can raise a fatal error: the table follows them.
            _ if event.op == Op::GoroutineExit => {
                self.last_written.remove(&event.goroutine);
            }
            _ => {}
        }
    }

    /// Makes room for one more map in `maps`, forgetting the less written half when it is full.
    fn follow_new_map(&mut self) {
        self.maps_written += 1;
        if self.maps.len() < MAPS_FOLLOWED {
            return;
        }
        let mut writes: Vec<u64> = self.maps.values().map(|activity| activity.writes).collect();
        let (_, &mut median, _) = writes.select_nth_unstable(MAPS_FOLLOWED / 2);
        self.maps.retain(|_, activity| activity.writes > median);
    }

    /// The map `goroutine` wrote last, if that write was recorded.
    pub fn last_map_written_by(&self, goroutine: u64) -> Option<u64> {
        self.last_written.get(&goroutine).copied()
    }

    /// Events per operation name.
    pub fn by_kind(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        EventKind::ALL
            .into_iter()
            .map(|kind| (kind.name(), self.count(kind)))
            .filter(|&(_, count)| count > 0)
    }

    pub fn total(&self) -> u64 {
        self.by_kind.0.iter().sum()
    }

    pub fn count(&self, kind: EventKind) -> u64 {
        self.by_kind.0[kind as usize]
    }

    /// `1234 events (assign 1000, delete 200, lock 34)`: the kinds that occurred.
    fn events_line(&self) -> String {
        let per_kind: Vec<String> = self
            .by_kind()
            .map(|(kind, count)| format!("{kind} {count}"))
            .collect();
        format!("{} events ({})", self.total(), per_kind.join(", "))
    }

    /// One line for `--stats-interval`: races found so far, whether the probes are in place
    /// and for how much of the time they were, then the totals.
    pub fn progress_line(&self, progress: &Progress<'_>) -> String {
        let elapsed = progress.elapsed;
        let share =
            progress.cost.traced.min(elapsed).as_secs_f64() / elapsed.as_secs_f64().max(1e-9);
        format!(
            "tracer: {:>7.1}s  {} so far; probes {} (in place {:.1}% of the time, {}); {}, {}, {}, {} dropped",
            elapsed.as_secs_f64(),
            counted(progress.races, "race"),
            progress.probes,
            100.0 * share.min(1.0),
            counted(progress.cost.windows, "window"),
            self.events_line(),
            counted(self.maps_written, "map"),
            counted(self.writers, "goroutine"),
            self.dropped
        )
    }

    /// The end-of-run summary: totals, drops, duration and the busiest maps.
    pub fn render(&self, duration: Duration) -> String {
        let mut text = format!(
            "tracer: traced for {:.2}s: {}; {} written by {}; {} dropped\n",
            duration.as_secs_f64(),
            self.events_line(),
            counted(self.maps_written, "map"),
            counted(self.writers, "goroutine"),
            self.dropped
        );
        let [map_op, call_entry, call_return, sync_inline, cold_watch] = self.kernel.hits;
        let _ = writeln!(
            text,
            "tracer: probe hits: map {map_op}, call {call_entry}, return {call_return}, inline sync \
             {sync_inline}, cold-code watch {cold_watch} ({} single-stepped; {:.1} ms in the \
             programs); {} map operations on goroutine stacks skipped; {} repeated map accesses \
             and {} hits while windows opened or closed not recorded",
            self.kernel.single_stepped,
            self.kernel.program_ns as f64 / 1e6,
            self.kernel.stack_filtered,
            self.kernel.repeats_dropped,
            self.kernel.edge_skipped
        );
        if let Some(cost) = self.cost {
            // The last window ends when the probes are gone, a little after the session.
            let traced = cost.traced.min(duration);
            let share = traced.as_secs_f64() / duration.as_secs_f64().max(1e-9);
            let _ = write!(
                text,
                "tracer: probes in place {:.2}s of {:.2}s ({:.1}%, {}{})",
                traced.as_secs_f64(),
                duration.as_secs_f64(),
                100.0 * share.min(1.0),
                counted(cost.windows, "window"),
                match cost.cold_windows {
                    0 => String::new(),
                    timed => format!(", {timed} timed for rarely run code"),
                }
            );
            match cost.overhead() {
                Some(overhead) => writeln!(
                    text,
                    "; estimated cost {:.1}% of the target's own CPU time",
                    100.0 * overhead
                ),
                None => writeln!(text),
            }
            .unwrap_or_default();
        }
        if let Some(watch) = &self.cold_watch {
            let rhythms: Vec<String> = watch
                .rhythms
                .iter()
                .map(|(function, period)| format!("{function} every {:.2} s", period.as_secs_f64()))
                .collect();
            let _ = writeln!(
                text,
                "tracer: cold-code watch: {} watched, {} dropped as hot{}",
                counted(watch.watched, "map call"),
                watch.dropped,
                match rhythms.is_empty() {
                    true => String::new(),
                    false => format!("; running at a steady rhythm: {}", rhythms.join(", ")),
                }
            );
        }
        if self.kernel.goid_unreadable + self.kernel.stack_failed > 0 {
            let _ = writeln!(
                text,
                "tracer: {} events without a goroutine id, {} without a stack",
                self.kernel.goid_unreadable, self.kernel.stack_failed
            );
        }
        if self.undecodable > 0 {
            let _ = writeln!(text, "tracer: {} undecodable records", self.undecodable);
        }
        let mut busiest: Vec<(&u64, &MapActivity)> = self.maps.iter().collect();
        busiest.sort_by(|a, b| b.1.writes.cmp(&a.1.writes).then(a.0.cmp(b.0)));
        for (map, activity) in busiest.into_iter().take(BUSIEST_MAPS_SHOWN) {
            let _ = writeln!(
                text,
                "tracer:   map {map:#x}: {} from {}",
                counted(activity.writes, "write"),
                activity.writers_line()
            );
        }
        text
    }
}

/// `1 goroutine`, `2 goroutines`.
pub fn counted(count: impl TryInto<u64>, noun: &str) -> String {
    match count.try_into().unwrap_or(u64::MAX) {
        1 => format!("1 {noun}"),
        count => format!("{count} {noun}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, map: u64, goroutine: u64) -> Event {
        Event::example(kind, goroutine, map, 0)
    }

    #[test]
    fn counts_per_kind_map_and_goroutine() {
        let mut summary = Summary::default();
        summary.record(&event(EventKind::MapAssign, 0x10, 1));
        summary.record(&event(EventKind::MapAssign, 0x10, 2));
        summary.record(&event(EventKind::MapDelete, 0x20, 2));
        summary.record(&event(EventKind::MapClear, 0x20, 3));
        summary.record(&event(EventKind::MutexLock, 0x30, 4));
        summary.dropped = 4;
        assert_eq!(summary.total(), 5);
        assert_eq!(summary.count(EventKind::MapAssign), 2);
        let text = summary.render(Duration::from_millis(1500));
        assert!(
            text.contains("traced for 1.50s: 5 events (assign 2, delete 1, clear 1, lock 1)"),
            "{text}"
        );
        assert!(
            text.contains("2 maps written by 3 goroutines; 4 dropped"),
            "{text}"
        );
        assert!(
            text.contains("map 0x10: 2 writes from 2 goroutines"),
            "{text}"
        );
        summary.kernel.hits = [10, 20, 30, 40, 50];
        summary.kernel.single_stepped = 7;
        summary.kernel.program_ns = 2_500_000;
        summary.kernel.stack_filtered = 5;
        summary.kernel.repeats_dropped = 6;
        summary.cost = Some(TracingCost {
            windows: 3,
            cold_windows: 2,
            traced: Duration::from_millis(300),
            probes: Duration::from_millis(80),
            tracer_cpu: Duration::from_millis(20),
            target_cpu: Duration::from_millis(1080),
        });
        summary.cold_watch = Some(ColdWatchState {
            watched: 3,
            dropped: 4,
            rhythms: vec![("main.reload".into(), Duration::from_millis(1500))],
        });
        let text = summary.render(Duration::from_millis(1500));
        assert!(
            text.contains(
                "probe hits: map 10, call 20, return 30, inline sync 40, cold-code watch 50 (7 \
                 single-stepped; 2.5 ms in the programs); 5 map operations on goroutine stacks \
                 skipped; 6 repeated map accesses and 0 hits"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "probes in place 0.30s of 1.50s (20.0%, 3 windows, 2 timed for rarely run code); \
                 estimated cost 10.0% of the target's own CPU time"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "cold-code watch: 3 map calls watched, 4 dropped as hot; running at a steady \
                 rhythm: main.reload every 1.50 s"
            ),
            "{text}"
        );
        assert!(
            text.contains("map 0x20: 2 writes from 2 goroutines"),
            "{text}"
        );
        summary.record(&event(EventKind::MapAssign, 0x40, 5));
        summary.cost = summary.cost.map(|cost| TracingCost {
            windows: 1,
            cold_windows: 0,
            ..cost
        });
        let text = summary.render(Duration::from_millis(1500));
        assert!(
            text.contains("map 0x40: 1 write from 1 goroutine"),
            "{text}"
        );
        assert!(text.contains("20.0%, 1 window)"), "{text}");
    }

    #[test]
    fn the_progress_line_says_races_so_far_and_whether_probes_are_in_place() {
        let mut summary = Summary::default();
        summary.record(&event(EventKind::MapAssign, 0x10, 1));
        let line = summary.progress_line(&Progress {
            elapsed: Duration::from_secs(10),
            races: 1,
            probes: "paused by the budget",
            cost: TracingCost {
                windows: 4,
                traced: Duration::from_millis(800),
                ..TracingCost::default()
            },
        });
        assert!(
            line.starts_with(
                "tracer:    10.0s  1 race so far; probes paused by the budget (in place 8.0% of \
                 the time, 4 windows); 1 events (assign 1)"
            ),
            "{line}"
        );
    }

    #[test]
    fn map_and_writer_tables_stay_bounded_and_keep_the_busiest() {
        let mut summary = Summary::default();
        // A shared map written by more goroutines than are told apart, then a map per request.
        for goroutine in 0..1000 {
            summary.record(&event(EventKind::MapAssign, 0x10, goroutine));
        }
        let maps = 10 * MAPS_FOLLOWED as u64;
        for map in 0..maps {
            summary.record(&event(EventKind::MapAssign, 0x1000 + 8 * map, 1));
        }
        assert!(summary.maps.len() <= MAPS_FOLLOWED);
        let text = summary.render(Duration::from_secs(1));
        assert!(
            text.contains(&format!("{} maps written by 1000 goroutines", maps + 1)),
            "{text}"
        );
        assert!(
            text.contains("map 0x10: 1000 writes from 64 goroutines or more"),
            "{text}"
        );
    }

    #[test]
    fn the_last_map_written_is_kept_while_the_goroutine_lives() {
        let mut summary = Summary::default();
        summary.record(&event(EventKind::MapAssign, 0x10, 7));
        summary.record(&event(EventKind::MapRead, 0x20, 7));
        assert_eq!(summary.last_map_written_by(7), Some(0x10));
        summary.record(&event(EventKind::GoroutineExit, 0, 7));
        assert_eq!(summary.last_map_written_by(7), None);
        assert!(summary.last_written.is_empty());
    }
}

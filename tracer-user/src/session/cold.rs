//! The cold-code watch, in the session: which watched calls (see `plan::cold`) are rarely run,
//! which of those run at a steady rhythm, and when the next window should open to see them run
//! again. Pure logic on the calls' hit times: the session places the watch and opens windows.
//!
//! A race needs both of its accesses in one window. When one of them is in code that runs once
//! a second or once a minute — a reloader, a janitor, a flusher on a ticker — a window opened
//! at a random moment covers it only as often as windows cover time, a few percent under a
//! budget. Opened just before that code runs again, a window covers it almost surely, for the
//! same cost: the budget still decides whether a window may open, the watch only decides when.

/// Hits closer than this to the previous one are the same run of the code (a janitor's loop).
const RUN_GAP_NS: u64 = 50_000_000;

/// A call hit more often than this per second is not rarely run: it stops being watched (each
/// hit costs a trap, about a microsecond).
pub const HOT_HITS_PER_SECOND: f64 = 50.0;

/// How often hot calls are looked for (each change re-places the watch): soon enough that
/// the calls of a busy request path cost little before they go.
const CHECK_PERIOD_NS: u64 = 250_000_000;

/// A run without a rhythm, this long or more after the call's last hit, is rarely run code
/// running now (see [`ColdCode::take_unexpected`]); calls made more often than that, at an
/// uneven pace, would wake every held window.
const RARE_GAP_NS: u64 = 1_000_000_000;

/// Runs further apart than this are not a rhythm worth waiting for.
const LONGEST_PERIOD_NS: u64 = 60_000_000_000;

/// Two periods in a row agree when they differ by at most this fraction of the latest, or by
/// [`RHYTHM_SLACK_NS`].
const RHYTHM_TOLERANCE: f64 = 0.1;
const RHYTHM_SLACK_NS: u64 = 20_000_000;

/// What the watch knows of one call.
#[derive(Clone, Debug, Default)]
struct Call {
    watched: bool,
    /// Hits since the last check for hot calls.
    hits: u64,
    /// Start of its last runs, oldest first (0: none yet).
    runs: [u64; 3],
    last_hit_ns: u64,
}

impl Call {
    /// Its period when its last three runs came at a steady rhythm, and how far they strayed.
    fn rhythm(&self) -> Option<(u64, u64)> {
        let [first, second, third] = self.runs;
        if first == 0 {
            return None;
        }
        let (earlier, latest) = (second - first, third - second);
        let strayed = earlier.abs_diff(latest);
        let allowed = ((latest as f64 * RHYTHM_TOLERANCE) as u64).max(RHYTHM_SLACK_NS);
        (strayed <= allowed && latest <= LONGEST_PERIOD_NS).then_some((latest, strayed))
    }
}

/// The watch's view of every call it may watch, by index.
#[derive(Clone, Debug)]
pub struct ColdCode {
    calls: Vec<Call>,
    /// When hot calls were last looked for.
    checked_ns: Option<u64>,
    /// A call without a rhythm ran since [`Self::take_unexpected`] was last asked.
    unexpected: bool,
}

impl ColdCode {
    /// A watch on `count` calls, all watched.
    pub fn new(count: usize) -> Self {
        Self {
            calls: vec![
                Call {
                    watched: true,
                    ..Call::default()
                };
                count
            ],
            checked_ns: None,
            unexpected: false,
        }
    }

    /// Call `index` was made at `ts_ns` (CLOCK_MONOTONIC).
    pub fn hit(&mut self, index: u32, ts_ns: u64) {
        let Some(call) = self.calls.get_mut(index as usize) else {
            return;
        };
        call.hits += 1;
        let gap = match call.last_hit_ns {
            0 => u64::MAX,
            last => ts_ns.saturating_sub(last),
        };
        call.last_hit_ns = call.last_hit_ns.max(ts_ns);
        if gap > RUN_GAP_NS {
            call.runs = [call.runs[1], call.runs[2], ts_ns];
            if gap >= RARE_GAP_NS && call.rhythm().is_none() {
                self.unexpected = true;
            }
        }
    }

    /// At most once per check period: stops watching the calls hit more than
    /// [`HOT_HITS_PER_SECOND`] since the last check, and returns the calls still watched if that
    /// changed anything.
    pub fn drop_hot(&mut self, now_ns: u64) -> Option<Vec<u32>> {
        let Some(checked) = self.checked_ns else {
            self.checked_ns = Some(now_ns);
            return None;
        };
        let elapsed = now_ns.saturating_sub(checked);
        if elapsed < CHECK_PERIOD_NS {
            return None;
        }
        self.checked_ns = Some(now_ns);
        let limit = HOT_HITS_PER_SECOND * elapsed as f64 / 1e9;
        let mut changed = false;
        for call in &mut self.calls {
            if call.watched && call.hits as f64 > limit {
                call.watched = false;
                changed = true;
            }
            call.hits = 0;
        }
        changed.then(|| self.watched().collect())
    }

    /// The indices of the calls watched.
    pub fn watched(&self) -> impl Iterator<Item = u32> + '_ {
        (0u32..)
            .zip(&self.calls)
            .filter(|(_, call)| call.watched)
            .map(|(index, _)| index)
    }

    /// When the earliest next run of a watched call with a rhythm is due (CLOCK_MONOTONIC ns),
    /// not before `now_ns`, and how early a window should be in place to see it whatever the
    /// rhythm's wobble. Runs found late are projected on by whole periods.
    pub fn next_run(&self, now_ns: u64) -> Option<(u64, u64)> {
        self.calls
            .iter()
            .filter(|call| call.watched)
            .filter_map(|call| {
                let (period, strayed) = call.rhythm()?;
                let last = call.runs[2];
                let periods = now_ns.saturating_sub(last).div_ceil(period).max(1);
                Some((last + periods * period, strayed))
            })
            .min()
    }

    /// Whether a call without a rhythm ran, a second or more after it last did, since the last
    /// time this was asked: code that runs now and then, worth a window now.
    pub fn take_unexpected(&mut self) -> bool {
        std::mem::take(&mut self.unexpected)
    }

    /// The calls watched, those dropped as hot, and the watched calls with a rhythm (index,
    /// period in ns).
    pub fn state(&self) -> (usize, usize, Vec<(usize, u64)>) {
        let watched = self.calls.iter().filter(|call| call.watched).count();
        let rhythms = self
            .calls
            .iter()
            .enumerate()
            .filter(|(_, call)| call.watched)
            .filter_map(|(index, call)| Some((index, call.rhythm()?.0)))
            .collect();
        (watched, self.calls.len() - watched, rhythms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;

    #[test]
    fn a_call_that_runs_every_second_is_expected_again_a_second_after_its_last_run() {
        let mut cold = ColdCode::new(2);
        for run in 1..=3 {
            // Each run makes a few calls in a row: one run, not several.
            for step in 0..4 {
                cold.hit(1, run * SECOND + step * MS);
            }
        }
        assert_eq!(cold.next_run(3 * SECOND + 10 * MS), Some((4 * SECOND, 0)));
        // Late: projected on by whole periods, never into the past.
        assert_eq!(cold.next_run(5 * SECOND + 500 * MS), Some((6 * SECOND, 0)));
        assert_eq!(cold.state().2, vec![(1, SECOND)]);
    }

    #[test]
    fn calls_at_an_uneven_pace_under_a_second_apart_are_not_unexpected() {
        let mut cold = ColdCode::new(1);
        cold.hit(0, SECOND);
        assert!(cold.take_unexpected(), "its first run");
        let mut at = SECOND;
        for gap in [300, 700, 200, 900] {
            at += gap * MS;
            cold.hit(0, at);
        }
        assert!(!cold.take_unexpected());
        cold.hit(0, at + 1500 * MS);
        assert!(cold.take_unexpected(), "run again after a while");
    }

    #[test]
    fn two_runs_or_an_unsteady_pace_are_no_rhythm_and_count_as_unexpected() {
        let mut cold = ColdCode::new(1);
        cold.hit(0, SECOND);
        assert!(cold.take_unexpected());
        assert!(!cold.take_unexpected(), "asked once, forgotten");
        cold.hit(0, 2 * SECOND);
        assert_eq!(
            cold.next_run(2 * SECOND),
            None,
            "two runs are not a rhythm yet"
        );
        cold.hit(0, 5 * SECOND);
        assert_eq!(cold.next_run(5 * SECOND), None, "1 s then 3 s");
        assert!(cold.take_unexpected());
        // A steady pace, give or take the slack: expected, not unexpected.
        cold.hit(0, 8 * SECOND + 15 * MS);
        assert_eq!(
            cold.next_run(8 * SECOND + 20 * MS),
            Some((11 * SECOND + 30 * MS, 15 * MS))
        );
        cold.take_unexpected();
        cold.hit(0, 11 * SECOND + 30 * MS);
        assert!(!cold.take_unexpected());
    }

    #[test]
    fn hot_calls_stop_being_watched_and_their_rhythm_no_longer_counts() {
        let mut cold = ColdCode::new(3);
        assert_eq!(
            cold.drop_hot(0),
            None,
            "the first check only starts the count"
        );
        for ms in 1..=200 {
            cold.hit(0, ms * 5 * MS); // 200 hits in a second: hot
        }
        for run in 1..=3 {
            cold.hit(2, run * 400 * MS);
        }
        assert_eq!(cold.drop_hot(SECOND / 10), None, "not a check period yet");
        assert_eq!(cold.drop_hot(SECOND), Some(vec![1, 2]));
        assert_eq!(cold.drop_hot(2 * SECOND), None, "nothing changed");
        assert_eq!(cold.state(), (2, 1, vec![(2, 400 * MS)]));
        // The hot call's hits no longer matter: its rhythm would be due at 3.3 s.
        for hit in 0..3 {
            cold.hit(0, 3 * SECOND + hit * 100 * MS);
        }
        assert_eq!(
            cold.next_run(3 * SECOND + 210 * MS),
            Some((3 * SECOND + 600 * MS, 0))
        );
        assert_eq!(cold.watched().collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn the_earliest_due_run_of_all_the_rhythms_comes_first() {
        let mut cold = ColdCode::new(2);
        for run in 1..=3 {
            cold.hit(0, run * 10 * SECOND);
            cold.hit(1, run * 3 * SECOND);
        }
        assert_eq!(
            cold.next_run(31 * SECOND).map(|(at, _)| at),
            Some(33 * SECOND)
        );
        assert_eq!(
            cold.next_run(34 * SECOND).map(|(at, _)| at),
            Some(36 * SECOND)
        );
        // Due now counts as due.
        assert_eq!(
            cold.next_run(39 * SECOND).map(|(at, _)| at),
            Some(39 * SECOND)
        );
    }
}

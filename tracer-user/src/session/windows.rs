//! What sampling windows cost: the probes' time (estimated from the kernel's hit counters
//! and what a hit costs here), tracer's own CPU time and the target's, per stretch (a window
//! or a pause) and over the session. Pure arithmetic on cumulative readings ([`Meters`]), so
//! it is tested without a target; the budget's decisions are [`super::sampling`]'s.

use std::time::{Duration, Instant};

use tracer_common::{counter, ProbeClass};

use super::{
    sampling::{Controller, Stretch},
    SessionOptions,
};
use crate::{
    probes::{calibrate::HitCosts, KernelChannels},
    report::summary::{KernelCounters, TracingCost},
    target,
};

/// A target's sampling windows and what they cost.
pub(super) struct Windows {
    /// `None` when the probes stay for good.
    pub(super) controller: Option<Controller>,
    pub(super) hit_costs: HitCosts,
    /// The stretch (window or pause) in progress: when it started, the meters then, and
    /// tracer's CPU time on the target since.
    pub(super) started: Instant,
    pub(super) at_start: Meters,
    pub(super) tracer_cpu: Duration,
    /// When to decide next whether to trace or pause.
    pub(super) next_decision: Option<Instant>,
    /// The budget has room for a window, held back until rarely run code is due (see
    /// `super::cold`).
    pub(super) holding: bool,
    /// Open the held window at the next decision: rarely run code without a rhythm runs now.
    pub(super) wake: bool,
    /// How long placing the probes took last (a window opened for code due at a given time
    /// must start placing them that much earlier).
    pub(super) placing: Duration,
    /// When the last window closed, and how long the pause before the last window lasted:
    /// about how long the budget takes to afford a window.
    pub(super) closed_at: Option<Instant>,
    pub(super) last_pause: Duration,
    /// The target's CPU time when tracing started.
    pub(super) started_cpu: Option<Duration>,
    /// Over the whole session.
    pub(super) total: TracingCost,
}

/// Cumulative readings a stretch's cost is the difference of.
#[derive(Clone, Copy)]
pub(super) struct Meters {
    pub(super) hits: u64,
    pub(super) single_stepped: u64,
    pub(super) program_ns: u64,
    pub(super) target_cpu: Option<Duration>,
    /// The target's kernel-mode share of it, where traps and programs are counted.
    pub(super) target_system: Option<Duration>,
}

impl Windows {
    pub(super) fn new(options: &SessionOptions, now: Instant, meters: Meters) -> Self {
        let (controller, first_window) = Controller::start(options.sampling).unzip();
        Self {
            controller,
            hit_costs: options.hit_costs,
            started: now,
            at_start: meters,
            tracer_cpu: Duration::ZERO,
            next_decision: first_window.map(|window| now + window),
            holding: false,
            wake: false,
            placing: Duration::from_millis(30),
            closed_at: None,
            last_pause: Duration::ZERO,
            started_cpu: meters.target_cpu,
            total: TracingCost {
                windows: 1,
                ..TracingCost::default()
            },
        }
    }

    /// The stretch in progress (`traced`: a window), measured up to `now`.
    ///
    /// The probes' time is estimated from the hits and what a hit cost tracer's own process at
    /// start-up. In a busy, many-threaded target a hit costs more (a third more on the service
    /// benchmark), so in a window the target's kernel-mode time, where traps and programs are
    /// counted, is taken when larger: it also holds the target's own system calls, which errs
    /// on the side of the budget.
    pub(super) fn stretch(&self, now: Instant, meters: &Meters, traced: bool) -> Stretch {
        let estimated = self.hit_costs.of(
            meters.hits.saturating_sub(self.at_start.hits),
            meters
                .single_stepped
                .saturating_sub(self.at_start.single_stepped),
            Duration::from_nanos(meters.program_ns.saturating_sub(self.at_start.program_ns)),
        );
        let target_cpu = since(meters.target_cpu, self.at_start.target_cpu);
        let probes = match traced {
            true => estimated
                .max(since(meters.target_system, self.at_start.target_system).min(target_cpu)),
            false => estimated,
        };
        Stretch {
            length: now - self.started,
            probes,
            tracer_cpu: self.tracer_cpu,
            target_cpu,
        }
    }

    /// Ends the stretch in progress at `now`: adds it to the totals and returns it.
    pub(super) fn end_stretch(&mut self, now: Instant, meters: Meters, traced: bool) -> Stretch {
        let stretch = self.stretch(now, &meters, traced);
        add_stretch(&mut self.total, &stretch, traced);
        self.started = now;
        self.at_start = meters;
        self.tracer_cpu = Duration::ZERO;
        stretch
    }

    /// The session's totals, counting the stretch in progress up to `now`.
    pub(super) fn totals(&self, now: Instant, meters: Meters, traced: bool) -> TracingCost {
        let mut total = self.total;
        add_stretch(&mut total, &self.stretch(now, &meters, traced), traced);
        total.target_cpu = since(meters.target_cpu, self.started_cpu);
        total
    }
}

/// Counts a stretch (a window if `traced`) in the session's totals.
pub(super) fn add_stretch(total: &mut TracingCost, stretch: &Stretch, traced: bool) {
    if traced {
        total.traced += stretch.length;
    }
    total.probes += stretch.probes;
    total.tracer_cpu += stretch.tracer_cpu;
}

/// The kernel programs' counters, summed over CPUs.
pub(super) fn kernel_counters(channels: &KernelChannels) -> KernelCounters {
    KernelCounters {
        hits: ProbeClass::ALL.map(|class| channels.counter(counter::HITS + class as u32)),
        single_stepped: channels.counter(counter::STEPPED_HITS),
        program_ns: channels.counter(counter::PROGRAM_NS),
        stack_filtered: channels.counter(counter::STACK_FILTERED),
        goid_unreadable: channels.counter(counter::GOID_UNREADABLE),
        stack_failed: channels.counter(counter::STACK_FAILED),
        edge_skipped: channels.counter(counter::EDGE_SKIPPED),
        repeats_dropped: channels.counter(counter::REPEATS_DROPPED),
    }
}

/// Runs `work` and measures tracer's CPU time meanwhile, in the kernel (placing and removing
/// probes, on threads of their own) as in user space: the session does its work for one target
/// at a time, and nothing else in tracer is busy.
pub(super) fn on_cpu<T>(work: impl FnOnce() -> T) -> (T, Duration) {
    let own_cpu = || target::cpu_time(std::process::id());
    let before = own_cpu();
    let result = work();
    (result, since(own_cpu(), before))
}

/// How much of `now` (a cumulative reading) came after `then`; zero if either is unknown.
pub(super) fn since(now: Option<Duration>, then: Option<Duration>) -> Duration {
    match (now, then) {
        (Some(now), Some(then)) => now.saturating_sub(then),
        _ => Duration::ZERO,
    }
}

impl Meters {
    /// The kernel's cumulative hit counters and process `pid`'s CPU time, now.
    pub(super) fn read(channels: &KernelChannels, pid: u32) -> Self {
        let kernel = kernel_counters(channels);
        Self {
            hits: kernel.hits.iter().sum(),
            single_stepped: kernel.single_stepped,
            program_ns: kernel.program_ns,
            target_cpu: target::cpu_time(pid),
            target_system: target::system_time(pid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COSTS: HitCosts = HitCosts {
        emulated: Duration::from_micros(1),
        single_stepped: Duration::from_micros(5),
    };

    fn meters(hits: u64, stepped: u64, cpu_ms: u64, system_ms: u64) -> Meters {
        Meters {
            hits,
            single_stepped: stepped,
            program_ns: 0,
            target_cpu: Some(Duration::from_millis(cpu_ms)),
            target_system: Some(Duration::from_millis(system_ms)),
        }
    }

    fn windows(start: Instant, at_start: Meters) -> Windows {
        let options = SessionOptions {
            hit_costs: COSTS,
            ..SessionOptions::default()
        };
        Windows::new(&options, start, at_start)
    }

    #[test]
    fn a_stretch_costs_its_hits_or_in_a_window_the_kernel_time_when_larger() {
        let start = Instant::now();
        let windows = windows(start, meters(100, 10, 50, 5));
        let now = start + Duration::from_millis(200);
        // 1000 more hits, 100 of them single-stepped: 900 µs + 500 µs.
        let later = meters(1_100, 110, 150, 8);
        let paused = windows.stretch(now, &later, false);
        assert_eq!(paused.probes, Duration::from_micros(1_400));
        assert_eq!(paused.target_cpu, Duration::from_millis(100));
        assert_eq!(paused.length, Duration::from_millis(200));
        // In a window, 3 ms of kernel time beat the 1.4 ms estimate...
        let traced = windows.stretch(now, &later, true);
        assert_eq!(traced.probes, Duration::from_millis(3));
        // ...counted up to the target's whole CPU time (2 ms here).
        let odd = meters(1_100, 110, 52, 8);
        assert_eq!(
            windows.stretch(now, &odd, true).probes,
            Duration::from_millis(2)
        );
    }

    #[test]
    fn ending_a_stretch_counts_it_and_starts_the_next_from_there() {
        let start = Instant::now();
        let mut windows = windows(start, meters(0, 0, 0, 0));
        windows.tracer_cpu = Duration::from_millis(7);
        let first_end = start + Duration::from_millis(100);
        let first = windows.end_stretch(first_end, meters(1_000, 0, 40, 0), true);
        assert_eq!(first.probes, Duration::from_millis(1));
        assert_eq!(first.tracer_cpu, Duration::from_millis(7));
        assert_eq!(windows.tracer_cpu, Duration::ZERO);
        // A pause of 300 ms with 10 more hits (the permanent probes).
        let end = first_end + Duration::from_millis(300);
        let totals = windows.totals(end, meters(1_010, 0, 100, 0), false);
        assert_eq!(totals.windows, 1);
        assert_eq!(totals.traced, Duration::from_millis(100));
        assert_eq!(totals.probes, Duration::from_micros(1_010));
        assert_eq!(totals.tracer_cpu, Duration::from_millis(7));
        assert_eq!(totals.target_cpu, Duration::from_millis(100));
    }

    #[test]
    fn unknown_cpu_times_count_as_nothing() {
        assert_eq!(since(None, Some(Duration::from_secs(1))), Duration::ZERO);
        assert_eq!(
            since(Some(Duration::from_secs(3)), Some(Duration::from_secs(1))),
            Duration::from_secs(2)
        );
        // A counter that went backwards (a restarted process) is not negative.
        assert_eq!(
            since(Some(Duration::from_secs(1)), Some(Duration::from_secs(3))),
            Duration::ZERO
        );
    }
}

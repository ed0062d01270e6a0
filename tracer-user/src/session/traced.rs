//! One process while it is traced: its probes (in place, paused or removed), its windows, its
//! ring buffer drained into its [`Output`], and what it has reported so far.

use std::{
    os::fd::OwnedFd,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use tracer_common::counter;

use super::{
    output::Output,
    sampling::{Controller, Decision},
    windows::{kernel_counters, on_cpu, Meters, Windows},
    Ownership, SessionOptions, SessionResult, StopReason, TracedProcess,
};
use crate::{
    error::TracerError,
    events::{
        decode, decode_cold_call, monotonic_now_ns,
        recording::{Recorder, WindowMark},
        Op,
    },
    metrics::TargetMetrics,
    plan::cold::WatchedCall,
    probes::{AttachedProbes, KernelChannels},
    report::{
        race_log::RaceLog,
        summary::{ColdWatchState, Progress, TracingCost},
        Finding,
    },
};

/// A process while it is traced.
pub(super) struct Target {
    pub(super) pid: u32,
    pub(super) name: String,
    /// When tracing it started.
    pub(super) since: Instant,
    /// Races and fatal map errors already written to the race log.
    pub(super) reported: usize,
    pub(super) crashes_reported: usize,
    /// `None` once detached.
    pub(super) probes: Option<AttachedProbes>,
    pub(super) channels: KernelChannels,
    pub(super) output: Output,
    /// Readable once the process has exited.
    pub(super) exit: OwnedFd,
    pub(super) metrics: Option<TargetMetrics>,
    /// When and why tracing it ended.
    pub(super) ended: Option<(Duration, StopReason)>,
    pub(super) windows: Windows,
    /// The calls the cold-code watch may place, by index.
    pub(super) watched: Arc<[WatchedCall]>,
}

/// How long before rarely run code is due a window it was held for is in place (on top of the
/// wobble of its rhythm): the window then goes on for the rest of its length after it.
const COLD_LEAD: Duration = Duration::from_millis(50);

/// A window is held for rarely run code due within twice the last pause between windows (about
/// what the budget would make it wait after a window opened now), or within this.
const SHORTEST_HOLD: Duration = Duration::from_secs(1);

impl Target {
    /// Starts tracing `process`: its windows, its recording, and its analysis from the moment
    /// its last probe was in place.
    pub(super) fn start(
        process: TracedProcess,
        options: &SessionOptions,
        ownership: Ownership,
        started: Instant,
    ) -> Result<Self, TracerError> {
        let recorder = match options.events.clone() {
            Some(path) => Some(Recorder::create(path, process.pid, &process.name)?),
            None => None,
        };
        let windows = Windows::new(
            options,
            started,
            Meters::read(&process.channels, process.pid),
        );
        let mut target = Self {
            pid: process.pid,
            name: process.name,
            since: started,
            reported: 0,
            crashes_reported: 0,
            exit: process.exit,
            probes: Some(process.probes),
            channels: process.channels,
            output: Output::new(
                process.sites,
                process.binary,
                recorder,
                options.graphs,
                ownership == Ownership::Launched,
                process.watched.len(),
                &process.completed_at_next_event,
            ),
            metrics: process.metrics,
            ended: None,
            windows,
            watched: process.watched,
        };
        if let Some(ts) = process.complete_from_ns {
            target
                .output
                .move_window(WindowMark::From(ts), &target.channels)?;
        }
        Ok(target)
    }

    /// Decodes up to `budget` records into the output, on tracer's CPU account for this
    /// target; returns whether records may be left.
    pub(super) fn drain(&mut self, budget: usize) -> Result<bool, TracerError> {
        let (drained, cpu) = on_cpu(|| drain_ring(&mut self.channels, &mut self.output, budget));
        self.windows.tracer_cpu += cpu;
        self.follow_cold_code();
        drained
    }

    /// Stops watching the calls that turned out to run often, and opens a held window when
    /// rarely run code without a rhythm runs (it may go on running, or run again soon).
    fn follow_cold_code(&mut self) {
        if let (Some(kept), Some(probes)) = (
            self.output.cold.drop_hot(monotonic_now_ns()),
            self.probes.as_mut(),
        ) {
            let (placed, cpu) = on_cpu(|| probes.watch_only(kept.into_iter()));
            self.windows.tracer_cpu += cpu;
            if let Err(error) = placed {
                // The process is exiting (the drain notices) or the kernel refused: the windows
                // go on as they would without the watch.
                log::debug!(
                    "pid {}: could not re-place the cold-code watch: {error}",
                    self.pid
                );
            }
        }
        if self.output.cold.take_unexpected() && self.windows.holding {
            self.windows.wake = true;
            self.windows.next_decision = Some(Instant::now());
        }
    }

    /// How long to hold a window the budget has room for, so that it is in place just before
    /// rarely run code is next due (see `super::cold`); `None`: open it now. Holding only
    /// delays a window, so the budget stays kept. Code due later than the budget would make a
    /// window opened now wait for the next does not hold it: a window now costs that code
    /// nothing.
    fn hold_for_cold_code(&mut self) -> Option<Duration> {
        self.windows.holding = false;
        if std::mem::take(&mut self.windows.wake) {
            self.windows.total.cold_windows += 1;
            return None;
        }
        let now_ns = monotonic_now_ns();
        let (due, strayed) = self.output.cold.next_run(now_ns)?;
        let lead = Duration::from_nanos(strayed) + COLD_LEAD + self.windows.placing;
        let wait = Duration::from_nanos(due - now_ns).saturating_sub(lead);
        if wait > (2 * self.windows.last_pause).max(SHORTEST_HOLD) {
            return None;
        }
        if wait.is_zero() {
            self.windows.total.cold_windows += 1;
            return None;
        }
        self.windows.holding = true;
        Some(wait)
    }

    pub(super) fn meters(&self) -> Meters {
        Meters::read(&self.channels, self.pid)
    }

    /// Removes every probe for good (once), noting how long they were in place.
    pub(super) fn detach(&mut self) {
        if let Some(probes) = self.probes.take() {
            let traced = !probes.is_paused();
            drop(probes);
            let meters = self.meters();
            let cost = self.windows.totals(Instant::now(), meters, traced);
            log::debug!("pid {}: {cost:?}", self.pid);
            self.output.summary.cost = Some(cost);
            if !self.watched.is_empty() {
                self.output.summary.cold_watch = Some(self.cold_watch_state());
            }
        }
    }

    /// Ends a sampling window or a pause, if it is time, and decides what comes next.
    pub(super) fn switch_window(
        &mut self,
        now: Instant,
        elapsed: Duration,
    ) -> Result<(), TracerError> {
        if self.windows.next_decision.is_none_or(|at| at > now) {
            return Ok(());
        }
        let Some(paused) = self.probes.as_ref().map(AttachedProbes::is_paused) else {
            return Ok(());
        };
        let meters = self.meters();
        let stretch = self.windows.end_stretch(now, meters, !paused);
        let Some(controller) = self.windows.controller.as_mut() else {
            return Ok(());
        };
        let decision = controller.next(!paused, &stretch);
        log::debug!("pid {}: {stretch:?} → {decision:?}", self.pid);
        let next = match decision {
            Decision::Trace(next) => {
                if paused {
                    if let Some(wait) = self.hold_for_cold_code() {
                        self.windows.next_decision = Some(now + wait);
                        return Ok(());
                    }
                    self.open_window(elapsed)?;
                }
                next
            }
            Decision::Pause(next) => {
                if !paused {
                    self.close_window()?;
                }
                next
            }
        };
        self.windows.next_decision = Some(Instant::now() + next);
        Ok(())
    }

    /// Places the probes again; the analysis starts over once they are all in place.
    pub(super) fn open_window(&mut self, elapsed: Duration) -> Result<(), TracerError> {
        let placing = Instant::now();
        let (resumed, cpu) = on_cpu(|| self.probes.as_mut().map_or(Ok(()), AttachedProbes::resume));
        self.windows.tracer_cpu += cpu;
        self.windows.placing = placing.elapsed();
        if let Some(closed) = self.windows.closed_at {
            self.windows.last_pause = placing.duration_since(closed);
        }
        log::debug!(
            "pid {}: probes placed in {:?} ({cpu:?} of CPU)",
            self.pid,
            self.windows.placing
        );
        match resumed {
            Err(TracerError::NoSuchProcess(_)) => {
                return self.finish(elapsed, StopReason::TargetExited)
            }
            resumed => resumed?,
        }
        self.output
            .move_window(WindowMark::From(monotonic_now_ns()), &self.channels)?;
        self.windows.total.windows += 1;
        Ok(())
    }

    /// Removes the probes (the analysis stops where they start going) and analyses what they
    /// recorded.
    pub(super) fn close_window(&mut self) -> Result<(), TracerError> {
        self.output
            .move_window(WindowMark::Until(monotonic_now_ns()), &self.channels)?;
        let removing = Instant::now();
        let ((), cpu) = on_cpu(|| self.probes.as_mut().map_or((), AttachedProbes::pause));
        self.windows.closed_at = Some(Instant::now());
        log::debug!(
            "pid {}: probes removed in {:?} ({cpu:?} of CPU)",
            self.pid,
            removing.elapsed()
        );
        let (drained, draining) =
            on_cpu(|| drain_ring(&mut self.channels, &mut self.output, usize::MAX));
        self.windows.tracer_cpu += cpu + draining;
        drained.map(|_| ())
    }

    /// Detaches, empties the ring buffer and publishes the final totals.
    pub(super) fn finish(
        &mut self,
        elapsed: Duration,
        stop: StopReason,
    ) -> Result<(), TracerError> {
        self.detach();
        // Nothing adds events any more: empty the buffer.
        drain_ring(&mut self.channels, &mut self.output, usize::MAX)?;
        self.output.flush_held(&self.channels)?;
        if let Some(sink) = self.output.sink.as_mut() {
            sink.flush()?;
        }
        self.refresh_counters();
        self.publish_metrics();
        self.ended = Some((elapsed, stop));
        Ok(())
    }

    /// What the cold-code watch saw: its calls, and the functions that ran at a rhythm.
    fn cold_watch_state(&self) -> ColdWatchState {
        let (watched, dropped, rhythms) = self.output.cold.state();
        let mut functions: Vec<(String, Duration)> = Vec::new();
        for (call, period) in rhythms {
            let function = &self.watched[call].function;
            if !functions.iter().any(|(known, _)| known == function) {
                functions.push((function.clone(), Duration::from_nanos(period)));
            }
        }
        ColdWatchState {
            watched,
            dropped,
            rhythms: functions,
        }
    }

    /// Writes the races and fatal map errors found since the last call, the moment they are
    /// known.
    pub(super) fn report_new_races(
        &mut self,
        race_log: &mut RaceLog,
        several: bool,
    ) -> Result<(), TracerError> {
        for mut race in self.output.detection.races_since(self.reported) {
            self.reported += 1;
            self.output.locate_steps(&mut race);
            race_log.found(&race, &self.finding(self.reported), several)?;
        }
        for crash in std::mem::take(&mut self.output.crashes) {
            self.crashes_reported += 1;
            race_log.crashed(&crash, &self.finding(self.crashes_reported))?;
        }
        Ok(())
    }

    /// The heading of this target's `number`th report, written now.
    pub(super) fn finding(&self, number: usize) -> Finding<'_> {
        Finding {
            number,
            pid: self.pid,
            executable: &self.name,
            at: Some(SystemTime::now()),
            after: Some(self.since.elapsed()),
        }
    }

    /// The `--stats-interval` line: totals, races found so far, and whether the probes are in
    /// place.
    pub(super) fn progress_line(&mut self, elapsed: Duration) -> String {
        self.refresh_counters();
        let probes = match self.probes.as_ref().map(AttachedProbes::is_paused) {
            None => "removed",
            Some(false) => "in place",
            Some(true) if self.windows.holding => "paused until rarely run code is due",
            Some(true) => match self.windows.controller.as_ref().map(Controller::budgeted) {
                Some(true) => "paused by the budget",
                _ => "paused",
            },
        };
        self.output.summary.progress_line(&Progress {
            elapsed,
            races: self.output.detection.race_count(),
            probes,
            cost: self.cost_so_far(),
        })
    }

    /// Whether the window's probes are in place now (not paused, not removed).
    fn probes_in_place(&self) -> bool {
        self.probes
            .as_ref()
            .is_some_and(|probes| !probes.is_paused())
    }

    /// What tracing has cost: once detached, the session's final cost; before, up to now.
    fn cost_so_far(&self) -> TracingCost {
        match self.output.summary.cost {
            Some(cost) => cost,
            None => self
                .windows
                .totals(Instant::now(), self.meters(), self.probes_in_place()),
        }
    }

    pub(super) fn refresh_counters(&mut self) {
        let channels = &self.channels;
        let summary = &mut self.output.summary;
        summary.dropped = channels.counter(counter::DROPPED);
        summary.kernel = kernel_counters(channels);
    }

    pub(super) fn publish_metrics(&mut self) {
        if self.metrics.is_none() {
            return;
        }
        let totals = self
            .output
            .totals(self.cost_so_far(), self.probes_in_place());
        if let Some(metrics) = self.metrics.as_mut() {
            metrics.update(&totals);
        }
    }

    pub(super) fn result(self) -> SessionResult {
        let (elapsed, stop) = self.ended.expect("every target is finished before results");
        SessionResult {
            pid: self.pid,
            name: self.name,
            races: self.output.detection.races(),
            fatal_errors: self.output.fatal_errors,
            summary: self.output.summary,
            elapsed,
            stop,
        }
    }
}

/// Decodes up to `budget` records; returns whether the budget ran out (more may be waiting).
/// Stops at the process's `execve`: what follows belongs to another program, and is discarded.
pub(super) fn drain_ring(
    channels: &mut KernelChannels,
    output: &mut Output,
    budget: usize,
) -> Result<bool, TracerError> {
    let more = drain_records(channels, output, budget);
    output.lag.drained(monotonic_now_ns());
    more
}

/// Records decoded per batch before they are analysed: enough to amortise publishing the
/// consumer position, few enough that the decoded batch stays small (a drain at the end of a
/// session takes the whole ring buffer, 190 000 records at 16 MB).
const BATCH: usize = 4096;

/// [`drain_ring`]'s loop: batches of records decoded in place, then analysed.
fn drain_records(
    channels: &mut KernelChannels,
    output: &mut Output,
    budget: usize,
) -> Result<bool, TracerError> {
    let mut batch = Vec::with_capacity(BATCH.min(budget));
    let mut left = budget;
    while left > 0 {
        let wanted = BATCH.min(left);
        left -= wanted;
        let more = channels.events.drain(wanted, |record| {
            if output.replaced {
                return;
            }
            if let Some(call) = decode_cold_call(record) {
                output.cold.hit(call.call, call.ts_ns);
                return;
            }
            match decode(record) {
                Some(event) => batch.push(event),
                None => output.summary.undecodable += 1,
            }
        });
        for event in batch.drain(..) {
            // After an exec, what the old program did is all in: the rest is the new program's.
            if output.replaced {
                break;
            }
            let launch = std::mem::take(&mut output.launching);
            if event.op == Op::Exec {
                // With `run`, the first event is the program's own start from tracer's fork.
                if launch {
                    continue;
                }
                output.replaced = true;
            }
            output.write(&event, channels)?;
        }
        if !more {
            return Ok(false);
        }
    }
    Ok(true)
}

//! The live run of the pipeline. In: attached probes, their targets and the user's options.
//! Out: each target's [`SessionResult`] (races, counts, costs, why it stopped), with reports and
//! metrics published as it goes.
//!
//! A session drains the ring buffer on a short timer, decodes, writes `--events`, feeds the
//! detector, opens and closes the budget's windows ([`sampling`]), and stops on the target's exit,
//! Ctrl-C / SIGTERM or `--duration`. Detaching happens first when stopping, so the target runs
//! unprobed as soon as possible.

mod cold;
mod interrupts;
mod output;
pub mod sampling;
mod traced;
mod windows;

pub use interrupts::{catch_interrupts_during_setup, setup_interrupted};

use std::{
    collections::HashSet,
    os::fd::OwnedFd,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{
    signal::unix::{signal, SignalKind},
    time::{interval, sleep, sleep_until, MissedTickBehavior},
};

use self::{sampling::Sampling, traced::Target};
use crate::{
    analyse::GoBinary,
    detect::pipeline::ResolvedRace,
    error::TracerError,
    metrics::TargetMetrics,
    plan::{cold::WatchedCall, sites::KernelSite},
    probes::{calibrate::HitCosts, AttachedProbes, KernelChannels},
    report::{race_log::RaceLog, summary::Summary},
    target,
};

/// How often the ring buffer is drained: the kernel never wakes us per event (that would cost
/// more than the probe itself), so this bounds the latency of `--events` output.
const DRAIN_PERIOD: Duration = Duration::from_millis(10);

/// Most records decoded per drain, so a flood of events cannot starve signal handling, the
/// deadline or the target's exit; the next drain then follows at once.
const DRAIN_BUDGET: usize = 1 << 16;

/// What the user asked of a session.
#[derive(Clone, Debug, Default)]
pub struct SessionOptions {
    /// `--events FILE` (`-` = standard output): every event as a JSON line.
    pub events: Option<PathBuf>,
    /// `--duration`: stop tracing after this long.
    pub duration: Option<Duration>,
    /// `--stats-interval`: print a progress line this often.
    pub stats_interval: Option<Duration>,
    /// `--dot-dir`: keep what the race graphs need.
    pub graphs: bool,
    /// When the probes are in place (`--sample`, `--overhead-budget`).
    pub sampling: Sampling,
    /// What a probe hit costs on this machine.
    pub hit_costs: HitCosts,
}

/// Whether tracer owns the target (`run`: signals are passed on to it and tracing goes on until
/// it exits) or joined it (`attach`: a signal ends the session).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    Attached,
    Launched,
}

/// Why the session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    TargetExited,
    Signal,
    Duration,
    /// The target replaced its program (`execve`): tracing it ends there.
    Exec,
}

pub struct SessionResult {
    pub pid: u32,
    /// The executable's name, as reports and metrics give it.
    pub name: String,
    /// Every distinct race found, in the order they were found.
    pub races: Vec<ResolvedRace>,
    /// The target's fatal errors (`concurrent map writes`…): message and count.
    pub fatal_errors: Vec<(String, u64)>,
    pub summary: Summary,
    pub elapsed: Duration,
    pub stop: StopReason,
}

/// One process to trace: its probes, the kernel channels they feed, and what tracer knows of
/// its executable.
pub struct TracedProcess {
    pub pid: u32,
    /// The executable's name, as reports and metrics give it.
    pub name: String,
    /// When the last probe was in place (CLOCK_MONOTONIC ns), if the process was already
    /// running then (`attach`): earlier events are recorded but not analysed.
    pub complete_from_ns: Option<u64>,
    /// Readable once the process has exited.
    pub exit: OwnedFd,
    pub probes: AttachedProbes,
    pub channels: KernelChannels,
    pub sites: Arc<[KernelSite]>,
    /// The calls the cold-code watch may place, by index (see `plan::cold`).
    pub watched: Arc<[WatchedCall]>,
    /// Where the sends and receives return whose returns are not probed: each completes at its
    /// goroutine's next event (see `plan::ProbePlan`).
    pub completed_at_next_event: Arc<HashSet<u64>>,
    pub binary: Arc<GoBinary>,
    /// Its series, when `--metrics-addr` serves them.
    pub metrics: Option<TargetMetrics>,
}

/// How often `--metrics-addr` series are brought up to date.
const METRICS_PERIOD: Duration = Duration::from_millis(500);

/// Processes that join a running session, and what becomes of those that leave it: the node
/// agent (`attach --exe`) finds them as they start and reports each one as it ends.
pub trait Newcomers {
    /// The processes that started since the last call, attached and ready to trace.
    fn arrived(&mut self) -> Vec<TracedProcess>;
    /// A target's tracing ended (it exited or replaced its program): its result, to report at
    /// once; the session keeps nothing of it.
    fn left(&mut self, result: SessionResult, race_log: &mut RaceLog) -> Result<(), TracerError>;
}

/// Traces `processes` (and, with `newcomers`, every process that joins) until they all exit —
/// or, with `newcomers`, until a signal — a signal, or the duration ends; returns one result
/// per process still traced at the end, in the order they were traced.
pub async fn trace(
    processes: Vec<TracedProcess>,
    options: &SessionOptions,
    ownership: Ownership,
    race_log: &mut RaceLog,
    newcomers: Option<&mut dyn Newcomers>,
) -> Result<Vec<SessionResult>, TracerError> {
    let started = Instant::now();
    let targets = processes
        .into_iter()
        .map(|process| Target::start(process, options, ownership, started))
        .collect::<Result<Vec<_>, _>>()?;
    let mut session = Session {
        several: targets.len() > 1 || newcomers.is_some(),
        targets,
        ownership,
        race_log,
        newcomers,
    };
    let stop = session.run(options).await?;
    session.stop(stop)
}

/// The targets of one session and where their reports go.
struct Session<'log, 'new> {
    targets: Vec<Target>,
    ownership: Ownership,
    race_log: &'log mut RaceLog,
    /// Reports and progress lines then say which target they are about.
    several: bool,
    newcomers: Option<&'new mut dyn Newcomers>,
}

impl Session<'_, '_> {
    /// Drains, switches windows, reports and publishes until a reason to stop.
    async fn run(&mut self, options: &SessionOptions) -> Result<StopReason, TracerError> {
        let mut interrupt = signal(SignalKind::interrupt()).map_err(anyhow::Error::from)?;
        let mut terminate = signal(SignalKind::terminate()).map_err(anyhow::Error::from)?;
        // A signal noted while tracer was attaching counts as received now.
        let interrupted_during_setup = interrupts::arrived_during_setup();
        if interrupted_during_setup && self.ownership == Ownership::Launched {
            self.forward(libc::SIGINT);
        }
        let mut drain = interval(DRAIN_PERIOD);
        drain.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut stats = interval(never_beyond_a_year(options.stats_interval));
        stats.tick().await; // the first tick is immediate
        let mut metrics_refresh = interval(METRICS_PERIOD);
        let deadline = sleep(never_beyond_a_year(options.duration));
        tokio::pin!(deadline);
        let sampling = options.sampling != Sampling::Full;
        loop {
            self.report_new_races()?;
            if interrupted_during_setup && self.ownership == Ownership::Attached {
                return Ok(StopReason::Signal);
            }
            let next_switch = self.next_switch();
            tokio::select! {
                _ = drain.tick() => {
                    let more = self.drain()?;
                    if self.newcomers.is_some() {
                        self.let_in_and_out(options)?;
                    } else if self.targets.iter().all(|target| target.ended.is_some()) {
                        return Ok(StopReason::TargetExited);
                    }
                    if more {
                        drain.reset_immediately();
                    }
                }
                _ = sleep_until(next_switch.into()), if sampling => self.switch_windows()?,
                _ = &mut deadline, if options.duration.is_some() => {
                    return Ok(StopReason::Duration);
                }
                _ = interrupt.recv() => {
                    if self.ownership == Ownership::Attached {
                        return Ok(StopReason::Signal);
                    }
                    self.forward(libc::SIGINT);
                }
                _ = terminate.recv() => {
                    if self.ownership == Ownership::Attached {
                        return Ok(StopReason::Signal);
                    }
                    self.forward(libc::SIGTERM);
                }
                _ = stats.tick(), if options.stats_interval.is_some() => self.print_progress(),
                _ = metrics_refresh.tick() => self.publish_metrics(),
            }
        }
    }

    fn running(&mut self) -> impl Iterator<Item = &mut Target> + '_ {
        self.targets
            .iter_mut()
            .filter(|target| target.ended.is_none())
    }

    /// When the next window opens or closes (in an hour if none is due).
    fn next_switch(&self) -> Instant {
        self.targets
            .iter()
            .filter(|target| target.ended.is_none())
            .filter_map(|target| target.windows.next_decision)
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))
    }

    /// Drains every running target's ring buffer (up to the budget each) and finishes those
    /// that exited or replaced their program; returns whether records may be left.
    fn drain(&mut self) -> Result<bool, TracerError> {
        let mut more = false;
        for target in self.running() {
            let elapsed = target.since.elapsed();
            more |= target.drain(DRAIN_BUDGET)?;
            let exited = target::has_exited(&target.exit);
            // The kernel knows the target by its pid number: once the target has exited, the
            // exec of a newcomer with its pid looks the same.
            if target.output.replaced && !exited {
                target.finish(elapsed, StopReason::Exec)?;
            } else if target.output.replaced || exited {
                target.finish(elapsed, StopReason::TargetExited)?;
            }
        }
        Ok(more)
    }

    fn switch_windows(&mut self) -> Result<(), TracerError> {
        let now = Instant::now();
        for target in self.running() {
            target.switch_window(now, now - target.since)?;
        }
        Ok(())
    }

    fn report_new_races(&mut self) -> Result<(), TracerError> {
        for target in &mut self.targets {
            target.report_new_races(self.race_log, self.several)?;
        }
        Ok(())
    }

    /// The `--stats-interval` lines.
    fn print_progress(&mut self) {
        for target in &mut self.targets {
            let line = target.progress_line(target.since.elapsed());
            if self.several {
                eprintln!("{line} [pid {}]", target.pid);
            } else {
                eprintln!("{line}");
            }
        }
    }

    fn publish_metrics(&mut self) {
        for target in self.running().filter(|target| target.metrics.is_some()) {
            target.refresh_counters();
            target.publish_metrics();
        }
    }

    /// Hands the targets that ended to [`Newcomers::left`] (their races reported first) and
    /// starts tracing the processes that arrived.
    fn let_in_and_out(&mut self, options: &SessionOptions) -> Result<(), TracerError> {
        let Some(newcomers) = self.newcomers.as_deref_mut() else {
            return Ok(());
        };
        if self.targets.iter().any(|target| target.ended.is_some()) {
            for target in &mut self.targets {
                target.report_new_races(self.race_log, self.several)?;
            }
            let (ended, running) = std::mem::take(&mut self.targets)
                .into_iter()
                .partition(|target| target.ended.is_some());
            self.targets = running;
            for mut target in ended {
                if let Some(metrics) = target.metrics.as_mut() {
                    metrics.retire();
                }
                newcomers.left(Target::result(target), self.race_log)?;
            }
        }
        for process in newcomers.arrived() {
            let target = Target::start(process, options, self.ownership, Instant::now())?;
            self.targets.push(target);
        }
        Ok(())
    }

    /// Passes a signal on to the programs tracer started.
    fn forward(&self, signal: i32) {
        for target in self.targets.iter().filter(|target| target.ended.is_none()) {
            // SAFETY: sending a signal to our own child.
            unsafe { libc::kill(target.pid as i32, signal) };
        }
    }

    /// Detaches everything first, so every target runs unprobed as soon as possible, then
    /// finishes each target and reports what its last events showed.
    fn stop(mut self, stop: StopReason) -> Result<Vec<SessionResult>, TracerError> {
        for target in &mut self.targets {
            target.detach();
        }
        for target in self.running() {
            target.finish(target.since.elapsed(), stop)?;
        }
        self.report_new_races()?;
        Ok(self.targets.into_iter().map(Target::result).collect())
    }
}

/// A period or deadline that may be absent, as a `Duration` tokio accepts.
fn never_beyond_a_year(duration: Option<Duration>) -> Duration {
    duration
        .unwrap_or(Duration::MAX)
        .min(Duration::from_secs(86_400 * 365))
}

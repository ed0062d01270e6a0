//! The live run of the pipeline. In: attached probes, their targets and the user's options.
//! Out: each target's [`SessionResult`] (races, counts, costs, why it stopped), with reports and
//! metrics published as it goes.
//!
//! A session drains the ring buffer on a short timer, decodes, writes `--events`, feeds the
//! detector, opens and closes the budget's windows ([`sampling`]), and stops on the target's exit,
//! Ctrl-C / SIGTERM or `--duration`. Detaching happens first when stopping, so the target runs
//! unprobed as soon as possible.

pub mod sampling;

use std::{
    collections::HashMap,
    os::fd::OwnedFd,
    path::PathBuf,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant, SystemTime},
};

use tokio::{
    signal::unix::{signal, SignalKind},
    time::{interval, sleep, sleep_until, MissedTickBehavior},
};
use tracer_common::{counter, EventKind, ProbeClass};

use crate::{
    analyse::GoBinary,
    detect::pipeline::Detection,
    detect::pipeline::ResolvedRace,
    error::TracerError,
    events::recording::{Recorder, WindowMark},
    events::stacks,
    events::{decode, Event},
    metrics::{TargetMetrics, TargetTotals},
    plan::sites::KernelSite,
    probes::calibrate::HitCosts,
    probes::{AttachedProbes, KernelChannels},
    report::race_log::RaceLog,
    report::summary::{KernelCounters, Progress, Summary, TracingCost},
    report::{FatalCrash, Finding},
    session::sampling::{Controller, Decision, Sampling, Stretch},
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
pub struct TracedProcess<'a> {
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
    pub sites: &'a [KernelSite],
    pub binary: &'a GoBinary,
    /// Its series, when `--metrics-addr` serves them.
    pub metrics: Option<TargetMetrics>,
}

/// A process while it is traced.
struct Target<'a> {
    pid: u32,
    name: String,
    /// Races and fatal map errors already written to the race log.
    reported: usize,
    crashes_reported: usize,
    /// `None` once detached.
    probes: Option<AttachedProbes>,
    channels: KernelChannels,
    output: Output<'a>,
    /// Readable once the process has exited.
    exit: OwnedFd,
    metrics: Option<TargetMetrics>,
    /// When and why tracing it ended.
    ended: Option<(Duration, StopReason)>,
    windows: Windows,
}

/// A target's sampling windows and what they cost.
struct Windows {
    /// `None` when the probes stay for good.
    controller: Option<Controller>,
    hit_costs: HitCosts,
    /// The stretch (window or pause) in progress: when it started, the meters then, and
    /// tracer's CPU time on the target since.
    started: Instant,
    at_start: Meters,
    tracer_cpu: Duration,
    /// When to decide next whether to trace or pause.
    next_decision: Option<Instant>,
    /// The target's CPU time when tracing started.
    started_cpu: Option<Duration>,
    /// Over the whole session.
    total: TracingCost,
}

/// Cumulative readings a stretch's cost is the difference of.
#[derive(Clone, Copy)]
struct Meters {
    hits: u64,
    single_stepped: u64,
    program_ns: u64,
    target_cpu: Option<Duration>,
    /// The target's kernel-mode share of it, where traps and programs are counted.
    target_system: Option<Duration>,
}

impl Windows {
    fn new(options: &SessionOptions, now: Instant, meters: Meters) -> Self {
        let (controller, first_window) = Controller::start(options.sampling).unzip();
        Self {
            controller,
            hit_costs: options.hit_costs,
            started: now,
            at_start: meters,
            tracer_cpu: Duration::ZERO,
            next_decision: first_window.map(|window| now + window),
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
    fn stretch(&self, now: Instant, meters: &Meters, traced: bool) -> Stretch {
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
    fn end_stretch(&mut self, now: Instant, meters: Meters, traced: bool) -> Stretch {
        let stretch = self.stretch(now, &meters, traced);
        add_stretch(&mut self.total, &stretch, traced);
        self.started = now;
        self.at_start = meters;
        self.tracer_cpu = Duration::ZERO;
        stretch
    }

    /// The session's totals, counting the stretch in progress up to `now`.
    fn totals(&self, now: Instant, meters: Meters, traced: bool) -> TracingCost {
        let mut total = self.total;
        add_stretch(&mut total, &self.stretch(now, &meters, traced), traced);
        total.target_cpu = since(meters.target_cpu, self.started_cpu);
        total
    }
}

/// Counts a stretch (a window if `traced`) in the session's totals.
fn add_stretch(total: &mut TracingCost, stretch: &Stretch, traced: bool) {
    if traced {
        total.traced += stretch.length;
    }
    total.probes += stretch.probes;
    total.tracer_cpu += stretch.tracer_cpu;
}

/// The kernel programs' counters, summed over CPUs.
fn kernel_counters(channels: &KernelChannels) -> KernelCounters {
    KernelCounters {
        hits: ProbeClass::ALL.map(|class| channels.counter(counter::HITS + class as u32)),
        single_stepped: channels.counter(counter::STEPPED_HITS),
        program_ns: channels.counter(counter::PROGRAM_NS),
        stack_filtered: channels.counter(counter::STACK_FILTERED),
        goid_unreadable: channels.counter(counter::GOID_UNREADABLE),
        stack_failed: channels.counter(counter::STACK_FAILED),
        edge_skipped: channels.counter(counter::EDGE_SKIPPED),
    }
}

/// Runs `work` and measures tracer's CPU time meanwhile, in the kernel (placing and removing
/// probes, on threads of their own) as in user space: the session does its work for one target
/// at a time, and nothing else in tracer is busy.
fn on_cpu<T>(work: impl FnOnce() -> T) -> (T, Duration) {
    let own_cpu = || target::cpu_time(std::process::id());
    let before = own_cpu();
    let result = work();
    (result, since(own_cpu(), before))
}

/// How much of `now` (a cumulative reading) came after `then`; zero if either is unknown.
fn since(now: Option<Duration>, then: Option<Duration>) -> Duration {
    match (now, then) {
        (Some(now), Some(then)) => now.saturating_sub(then),
        _ => Duration::ZERO,
    }
}

impl Meters {
    /// The kernel's cumulative hit counters and process `pid`'s CPU time, now.
    fn read(channels: &KernelChannels, pid: u32) -> Self {
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

impl Target<'_> {
    fn meters(&self) -> Meters {
        Meters::read(&self.channels, self.pid)
    }

    /// Removes every probe for good (once), noting how long they were in place.
    fn detach(&mut self) {
        if let Some(probes) = self.probes.take() {
            let traced = !probes.is_paused();
            drop(probes);
            let meters = self.meters();
            let cost = self.windows.totals(Instant::now(), meters, traced);
            log::debug!("pid {}: {cost:?}", self.pid);
            self.output.summary.cost = Some(cost);
        }
    }

    /// Ends a sampling window or a pause, if it is time, and decides what comes next.
    fn switch_window(&mut self, now: Instant, elapsed: Duration) -> Result<(), TracerError> {
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
    fn open_window(&mut self, elapsed: Duration) -> Result<(), TracerError> {
        let placing = Instant::now();
        let (resumed, cpu) = on_cpu(|| self.probes.as_mut().map_or(Ok(()), AttachedProbes::resume));
        self.windows.tracer_cpu += cpu;
        log::debug!(
            "pid {}: probes placed in {:?} ({cpu:?} of CPU)",
            self.pid,
            placing.elapsed()
        );
        match resumed {
            Err(TracerError::NoSuchProcess(_)) => {
                return self.finish(elapsed, StopReason::TargetExited)
            }
            resumed => resumed?,
        }
        self.output
            .move_window(WindowMark::From(monotonic_now_ns()))?;
        self.windows.total.windows += 1;
        Ok(())
    }

    /// Removes the probes (the analysis stops where they start going) and analyses what they
    /// recorded.
    fn close_window(&mut self) -> Result<(), TracerError> {
        self.output
            .move_window(WindowMark::Until(monotonic_now_ns()))?;
        let removing = Instant::now();
        let ((), cpu) = on_cpu(|| self.probes.as_mut().map_or((), AttachedProbes::pause));
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
    fn finish(&mut self, elapsed: Duration, stop: StopReason) -> Result<(), TracerError> {
        self.detach();
        // Nothing adds events any more: empty the buffer.
        drain_ring(&mut self.channels, &mut self.output, usize::MAX)?;
        if let Some(sink) = self.output.sink.as_mut() {
            sink.flush()?;
        }
        self.refresh_counters();
        self.publish_metrics();
        self.ended = Some((elapsed, stop));
        Ok(())
    }

    /// Writes the races and fatal map errors found since the last call, the moment they are
    /// known.
    fn report_new_races(
        &mut self,
        race_log: &mut RaceLog,
        started: Instant,
        several: bool,
    ) -> Result<(), TracerError> {
        for race in self.output.detection.races_since(self.reported) {
            self.reported += 1;
            race_log.found(&race, &self.finding(self.reported, started), several)?;
        }
        for crash in std::mem::take(&mut self.output.crashes) {
            self.crashes_reported += 1;
            race_log.crashed(&crash, &self.finding(self.crashes_reported, started))?;
        }
        Ok(())
    }

    /// The heading of this target's `number`th report, written now.
    fn finding(&self, number: usize, started: Instant) -> Finding<'_> {
        Finding {
            number,
            pid: self.pid,
            executable: &self.name,
            at: Some(SystemTime::now()),
            after: Some(started.elapsed()),
        }
    }

    /// The `--stats-interval` line: totals, races found so far, and whether the probes are in
    /// place.
    fn progress_line(&mut self, elapsed: Duration) -> String {
        self.refresh_counters();
        let now = Instant::now();
        let meters = self.meters();
        let probes = match self.probes.as_ref().map(AttachedProbes::is_paused) {
            None => "removed",
            Some(false) => "in place",
            Some(true) => match self.windows.controller.as_ref().map(Controller::budgeted) {
                Some(true) => "paused by the budget",
                _ => "paused",
            },
        };
        let traced = self
            .probes
            .as_ref()
            .is_some_and(|probes| !probes.is_paused());
        let cost = self.windows.totals(now, meters, traced);
        self.output.summary.progress_line(&Progress {
            elapsed,
            races: self.output.detection.race_count(),
            probes,
            cost,
        })
    }

    fn refresh_counters(&mut self) {
        let channels = &self.channels;
        let summary = &mut self.output.summary;
        summary.dropped = channels.counter(counter::DROPPED);
        summary.kernel = kernel_counters(channels);
    }

    fn publish_metrics(&mut self) {
        if let Some(metrics) = self.metrics.as_mut() {
            metrics.update(&self.output.totals());
        }
    }

    fn result(self) -> SessionResult {
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

/// Set by a SIGINT or SIGTERM that arrived before the session's own signal handling started.
static INTERRUPTED_DURING_SETUP: AtomicBool = AtomicBool::new(false);

extern "C" fn note_interrupt(_signal: libc::c_int) {
    INTERRUPTED_DURING_SETUP.store(true, Ordering::SeqCst);
}

/// From here until the session starts, Ctrl-C or SIGTERM does not kill tracer halfway through
/// attaching: it is noted, and [`setup_interrupted`] stops the setup at its next step, with every
/// probe placed so far removed as its descriptors close.
pub fn catch_interrupts_during_setup() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe); a zeroed sigaction
        // with a handler and an empty mask is valid.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = note_interrupt as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// Fails if Ctrl-C or SIGTERM arrived during the setup.
pub fn setup_interrupted() -> Result<(), TracerError> {
    match INTERRUPTED_DURING_SETUP.load(Ordering::SeqCst) {
        true => Err(TracerError::Interrupted),
        false => Ok(()),
    }
}

/// How often `--metrics-addr` series are brought up to date.
const METRICS_PERIOD: Duration = Duration::from_millis(500);

/// Traces `processes` until they all exit, a signal, or the duration ends; returns one result
/// per process, in the same order.
pub async fn trace(
    processes: Vec<TracedProcess<'_>>,
    options: &SessionOptions,
    ownership: Ownership,
    race_log: &mut RaceLog,
) -> Result<Vec<SessionResult>, TracerError> {
    let started = Instant::now();
    let mut targets = Vec::with_capacity(processes.len());
    for process in processes {
        let sink = match options.events.clone() {
            Some(path) => Some(Recorder::create(path, process.pid, &process.name)?),
            None => None,
        };
        let windows = Windows::new(
            options,
            started,
            Meters::read(&process.channels, process.pid),
        );
        let mut target = Target {
            pid: process.pid,
            name: process.name,
            reported: 0,
            crashes_reported: 0,
            exit: process.exit,
            probes: Some(process.probes),
            channels: process.channels,
            output: Output {
                sites: process.sites,
                binary: process.binary,
                summary: Summary::default(),
                sink,
                site_ids: HashMap::new(),
                detection: Detection::with_graphs(options.graphs),
                load_bias: None,
                newest_event_ns: None,
                fatal_errors: Vec::new(),
                crashes: Vec::new(),
                launching: ownership == Ownership::Launched,
                replaced: false,
            },
            metrics: process.metrics,
            ended: None,
            windows,
        };
        if let Some(ts) = process.complete_from_ns {
            target.output.move_window(WindowMark::From(ts))?;
        }
        targets.push(target);
    }
    let mut interrupt = signal(SignalKind::interrupt()).map_err(anyhow::Error::from)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(anyhow::Error::from)?;
    // A signal noted while tracer was attaching counts as received now.
    let interrupted_during_setup = INTERRUPTED_DURING_SETUP.load(Ordering::SeqCst);
    if interrupted_during_setup && ownership == Ownership::Launched {
        forward_signal(&targets, libc::SIGINT);
    }

    let mut drain = interval(DRAIN_PERIOD);
    drain.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut stats = interval(never_beyond_a_year(options.stats_interval));
    stats.tick().await; // the first tick is immediate
    let mut metrics_refresh = interval(METRICS_PERIOD);
    let publishes_metrics = targets.iter().any(|target| target.metrics.is_some());
    let deadline = sleep(never_beyond_a_year(options.duration));
    tokio::pin!(deadline);

    let sampling = options.sampling != Sampling::Full;
    let several = targets.len() > 1;
    let stop = loop {
        for target in &mut targets {
            target.report_new_races(race_log, started, several)?;
        }
        if interrupted_during_setup && ownership == Ownership::Attached {
            break StopReason::Signal;
        }
        let next_switch = targets
            .iter()
            .filter(|target| target.ended.is_none())
            .filter_map(|target| target.windows.next_decision)
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = drain.tick() => {
                let mut more = false;
                for target in targets.iter_mut().filter(|target| target.ended.is_none()) {
                    let (drained, cpu) = on_cpu(|| {
                        drain_ring(&mut target.channels, &mut target.output, DRAIN_BUDGET)
                    });
                    target.windows.tracer_cpu += cpu;
                    more |= drained?;
                    let exited = target::has_exited(&target.exit);
                    // The kernel knows the target by its pid number: once the target has
                    // exited, the exec of a newcomer with its pid looks the same.
                    if target.output.replaced && !exited {
                        target.finish(started.elapsed(), StopReason::Exec)?;
                    } else if target.output.replaced || exited {
                        target.finish(started.elapsed(), StopReason::TargetExited)?;
                    }
                }
                if targets.iter().all(|target| target.ended.is_some()) {
                    break StopReason::TargetExited;
                }
                if more {
                    drain.reset_immediately();
                }
            }
            _ = sleep_until(next_switch.into()), if sampling => {
                let now = Instant::now();
                for target in targets.iter_mut().filter(|target| target.ended.is_none()) {
                    target.switch_window(now, started.elapsed())?;
                }
            }
            _ = &mut deadline, if options.duration.is_some() => break StopReason::Duration,
            _ = interrupt.recv() => {
                if ownership == Ownership::Attached { break StopReason::Signal }
                forward_signal(&targets, libc::SIGINT);
            }
            _ = terminate.recv() => {
                if ownership == Ownership::Attached { break StopReason::Signal }
                forward_signal(&targets, libc::SIGTERM);
            }
            _ = stats.tick(), if options.stats_interval.is_some() => {
                for target in &mut targets {
                    let line = target.progress_line(started.elapsed());
                    if several {
                        eprintln!("{line} [pid {}]", target.pid);
                    } else {
                        eprintln!("{line}");
                    }
                }
            }
            _ = metrics_refresh.tick(), if publishes_metrics => {
                for target in targets.iter_mut().filter(|target| target.ended.is_none()) {
                    target.refresh_counters();
                    target.publish_metrics();
                }
            }
        }
    };
    // Detach everything first, so every target runs unprobed as soon as possible.
    for target in &mut targets {
        target.detach();
    }
    for target in targets.iter_mut().filter(|target| target.ended.is_none()) {
        target.finish(started.elapsed(), stop)?;
    }
    for target in &mut targets {
        target.report_new_races(race_log, started, several)?;
    }
    Ok(targets.into_iter().map(Target::result).collect())
}

/// A period or deadline that may be absent, as a `Duration` tokio accepts.
fn never_beyond_a_year(duration: Option<Duration>) -> Duration {
    duration
        .unwrap_or(Duration::MAX)
        .min(Duration::from_secs(86_400 * 365))
}

/// Where decoded events go: the summary always, `--events` when asked, with the `stack` lines
/// each event refers to written before it.
struct Output<'a> {
    sites: &'a [KernelSite],
    binary: &'a GoBinary,
    summary: Summary,
    sink: Option<Recorder>,
    /// (kernel stack id, caller) → code-site id.
    site_ids: HashMap<(u32, u64), u64>,
    detection: Detection,
    /// Where a PIE was loaded (run-time − link-time address), learnt from the first stack.
    load_bias: Option<u64>,
    /// `ts_ns` of the newest event decoded.
    newest_event_ns: Option<u64>,
    /// Fatal errors by message.
    fatal_errors: Vec<(String, u64)>,
    /// Fatal map errors not yet reported.
    crashes: Vec<FatalCrash>,
    /// `run`: the program's own `execve` from tracer's fork is still to come.
    launching: bool,
    /// The process replaced its program: later events are another program's.
    replaced: bool,
}

impl Output<'_> {
    /// Moves the analysis window, and says so in the recording (for replay).
    fn move_window(&mut self, mark: WindowMark) -> Result<(), TracerError> {
        if let Some(sink) = self.sink.as_mut() {
            sink.window(mark)?;
        }
        self.detection.move_window(mark);
        Ok(())
    }

    fn write(&mut self, event: &Event, channels: &KernelChannels) -> Result<(), TracerError> {
        self.summary.record(event);
        self.newest_event_ns = Some(event.ts_ns);
        let site = match event.stack {
            Some(kernel_id) => self.site_of(kernel_id, event, channels)?,
            None => 0,
        };
        if event.kind == EventKind::Fatal {
            let message = self.count_fatal_error(event);
            if FatalCrash::is_map_error(&message) {
                self.crashes.push(FatalCrash {
                    message,
                    goroutine: event.goroutine,
                    stack: self.detection.frames(site).to_vec(),
                    map: self.summary.last_map_written_by(event.goroutine),
                });
            }
        }
        let probe = self.sites.get(event.site as usize);
        let function = probe.map_or("", |probe| probe.function.as_str());
        self.detection
            .observe(event, probe.and_then(|probe| probe.observes), site);
        match self.sink.as_mut() {
            Some(sink) => sink.event(event, function, (site != 0).then_some(site)),
            None => Ok(()),
        }
    }

    /// The code-site id of a stack, resolving (and writing out) its frames the first time.
    fn site_of(
        &mut self,
        kernel_id: u32,
        event: &Event,
        channels: &KernelChannels,
    ) -> Result<u64, TracerError> {
        let key = (kernel_id, event.caller);
        if let Some(&id) = self.site_ids.get(&key) {
            return Ok(id);
        }
        let pcs = stacks::with_caller(&channels.stack(kernel_id), event.caller);
        // The walk starts at the probed instruction, whose link-time address is known: the
        // difference is where a PIE was loaded.
        let load_bias = match (pcs.first(), self.sites.get(event.site as usize)) {
            (Some(&pc), Some(site)) => *self.load_bias.insert(pc.wrapping_sub(site.address)),
            _ => 0,
        };
        let frames =
            stacks::symbolize(&pcs, |pc| self.binary.symbolize(pc.wrapping_sub(load_bias)));
        if let Some(sink) = self.sink.as_mut() {
            let id = self.site_ids.len() as u64 + 1;
            sink.stack(id, &frames)?;
        }
        let id = self.detection.add_site(frames);
        self.site_ids.insert(key, id);
        Ok(id)
    }

    /// Counts a fatal error under its message, and returns the message: `runtime.fatal`/`throw`
    /// take a string, whose bytes are almost always a literal in the executable's read-only
    /// data; otherwise they are read from the process, if it still exists.
    fn count_fatal_error(&mut self, event: &Event) -> String {
        let message = fatal_message(
            self.binary,
            event.pid,
            event.object,
            event.arg,
            self.load_bias.unwrap_or(0),
        );
        match self
            .fatal_errors
            .iter_mut()
            .find(|(known, _)| *known == message)
        {
            Some((_, count)) => *count += 1,
            None => self.fatal_errors.push((message.clone(), 1)),
        }
        message
    }

    /// Totals for the metrics.
    fn totals(&self) -> TargetTotals {
        TargetTotals {
            events_by_kind: self.summary.by_kind().collect(),
            dropped: self.summary.dropped,
            kernel: self.summary.kernel,
            detector: self.detection.stats(),
            lag: self
                .newest_event_ns
                .map(|ts| Duration::from_nanos(monotonic_now_ns().saturating_sub(ts))),
            races: self.detection.race_tallies(),
            fatal_errors: self.fatal_errors.clone(),
        }
    }
}

/// The longest fatal message read; the runtime's own are under 64 bytes.
const MAX_FATAL_MESSAGE: u64 = 256;

/// The text of the string (`address`, `len`) a fatal error was raised with.
fn fatal_message(binary: &GoBinary, pid: u32, address: u64, len: u64, load_bias: u64) -> String {
    let len = len.min(MAX_FATAL_MESSAGE);
    let bytes = binary
        .bytes_at(address.wrapping_sub(load_bias), len)
        .map(<[u8]>::to_vec)
        .or_else(|| target::read_memory(pid, address, len as usize).ok());
    match bytes {
        Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        None => "(message unreadable)".to_owned(),
    }
}

/// CLOCK_MONOTONIC in nanoseconds, the clock of `bpf_ktime_get_ns`.
pub fn monotonic_now_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// Decodes up to `budget` records; returns whether the budget ran out (more may be waiting).
/// Stops at the process's `execve`: what follows belongs to another program, and is discarded.
fn drain_ring(
    channels: &mut KernelChannels,
    output: &mut Output<'_>,
    budget: usize,
) -> Result<bool, TracerError> {
    for _ in 0..budget {
        let decoded = {
            let Some(record) = channels.events.next() else {
                return Ok(false);
            };
            if output.replaced {
                continue;
            }
            decode(&record)
        };
        let Some(event) = decoded else {
            output.summary.undecodable += 1;
            continue;
        };
        let launch = std::mem::take(&mut output.launching);
        if event.kind == EventKind::Exec {
            // With `run`, the first event is the program's own start from tracer's fork.
            if launch {
                continue;
            }
            output.replaced = true;
        }
        output.write(&event, channels)?;
    }
    Ok(true)
}

/// Passes a signal on to the programs tracer started.
fn forward_signal(targets: &[Target<'_>], signal: i32) {
    for target in targets.iter().filter(|target| target.ended.is_none()) {
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(target.pid as i32, signal) };
    }
}

//! One tracing session: drain the ring buffer on a short timer, decode, write `--events`, keep
//! the summary, and stop on the target's exit, Ctrl-C / SIGTERM or `--duration`. Detaching
//! happens first when stopping, so the target runs unprobed as soon as possible.

use std::{
    collections::HashMap,
    fs::File,
    io::{self, BufWriter, Write},
    path::PathBuf,
    time::{Duration, Instant},
};

use tokio::{
    io::unix::AsyncFd,
    signal::unix::{signal, SignalKind},
    time::{interval, sleep, MissedTickBehavior},
};
use tracer_common::{counter, ProbeClass};

use crate::{
    detection::Detection,
    error::TracerError,
    events::{decode, Event},
    gobin::GoBinary,
    probes::{AttachedProbes, KernelChannels},
    report::ResolvedRace,
    sites::KernelSite,
    stacks,
    summary::{KernelCounters, Summary},
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
}

pub struct SessionResult {
    /// Every distinct race found, in the order they were found.
    pub races: Vec<ResolvedRace>,
    pub summary: Summary,
    pub elapsed: Duration,
    pub stop: StopReason,
}

/// Where `--events` go.
struct EventSink {
    path: PathBuf,
    writer: BufWriter<Box<dyn Write>>,
}

impl EventSink {
    fn open(path: PathBuf) -> Result<Self, TracerError> {
        let output: Box<dyn Write> = if path.as_os_str() == "-" {
            Box::new(io::stdout())
        } else {
            Box::new(File::create(&path).map_err(|source| TracerError::Output {
                path: path.clone(),
                source,
            })?)
        };
        Ok(Self {
            path,
            writer: BufWriter::with_capacity(1 << 16, output),
        })
    }

    fn write_line(&mut self, line: &str) -> Result<(), TracerError> {
        writeln!(self.writer, "{line}").map_err(|source| self.error(source))
    }

    fn flush(&mut self) -> Result<(), TracerError> {
        self.writer.flush().map_err(|source| self.error(source))
    }

    fn error(&self, source: io::Error) -> TracerError {
        TracerError::Output {
            path: self.path.clone(),
            source,
        }
    }
}

/// Traces process `pid` through `probes` until it exits, a signal, or the duration ends.
pub async fn trace(
    pid: u32,
    probes: AttachedProbes,
    mut channels: KernelChannels,
    sites: &[KernelSite],
    binary: &GoBinary,
    options: &SessionOptions,
    ownership: Ownership,
) -> Result<SessionResult, TracerError> {
    let started = Instant::now();
    let pidfd = target::exit_notifier(pid)?;
    // SAFETY: the AsyncFd owns the OwnedFd, so the descriptor stays open and the same for its
    // whole lifetime.
    let exit = unsafe { AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE) }
        .map_err(|error| anyhow::anyhow!("watching pid {pid}: {error}"))?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(anyhow::Error::from)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(anyhow::Error::from)?;
    let mut output = Output {
        sites,
        binary,
        summary: Summary::default(),
        sink: options.events.clone().map(EventSink::open).transpose()?,
        site_ids: HashMap::new(),
        detection: Detection::default(),
    };

    let mut drain = interval(DRAIN_PERIOD);
    drain.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let stats_period = options.stats_interval.unwrap_or(Duration::MAX);
    let mut stats = interval(stats_period.min(Duration::from_secs(86_400 * 365)));
    stats.tick().await; // the first tick is immediate
    let deadline = sleep(
        options
            .duration
            .unwrap_or(Duration::MAX)
            .min(Duration::from_secs(86_400 * 365)),
    );
    tokio::pin!(deadline);

    let stop = loop {
        tokio::select! {
            _ = drain.tick() => {
                if drain_ring(&mut channels, &mut output, DRAIN_BUDGET)? {
                    drain.reset_immediately();
                }
            }
            _ = exit.readable() => break StopReason::TargetExited,
            _ = &mut deadline, if options.duration.is_some() => break StopReason::Duration,
            _ = interrupt.recv() => {
                if ownership == Ownership::Attached { break StopReason::Signal }
                forward_signal(pid, libc::SIGINT);
            }
            _ = terminate.recv() => {
                if ownership == Ownership::Attached { break StopReason::Signal }
                forward_signal(pid, libc::SIGTERM);
            }
            _ = stats.tick(), if options.stats_interval.is_some() => {
                output.summary.dropped = channels.counter(counter::DROPPED);
                eprintln!("{}", output.summary.progress_line(started.elapsed()));
            }
        }
    };
    drop(probes);
    // Nothing adds events any more: empty the buffer.
    drain_ring(&mut channels, &mut output, usize::MAX)?;
    if let Some(sink) = output.sink.as_mut() {
        sink.flush()?;
    }
    let races = output.detection.races();
    let mut summary = output.summary;
    summary.dropped = channels.counter(counter::DROPPED);
    summary.kernel = KernelCounters {
        hits: ProbeClass::ALL.map(|class| channels.counter(counter::HITS + class as u32)),
        stack_filtered: channels.counter(counter::STACK_FILTERED),
        goid_unreadable: channels.counter(counter::GOID_UNREADABLE),
        stack_failed: channels.counter(counter::STACK_FAILED),
    };
    Ok(SessionResult {
        races,
        summary,
        elapsed: started.elapsed(),
        stop,
    })
}

/// Where decoded events go: the summary always, `--events` when asked, with the `stack` lines
/// each event refers to written before it.
struct Output<'a> {
    sites: &'a [KernelSite],
    binary: &'a GoBinary,
    summary: Summary,
    sink: Option<EventSink>,
    /// (kernel stack id, caller) → code-site id.
    site_ids: HashMap<(u32, u64), u64>,
    detection: Detection,
}

impl Output<'_> {
    fn write(&mut self, event: &Event, channels: &KernelChannels) -> Result<(), TracerError> {
        self.summary.record(event);
        let site = match event.stack {
            Some(kernel_id) => self.site_of(kernel_id, event, channels)?,
            None => 0,
        };
        let function = self
            .sites
            .get(event.site as usize)
            .map_or("", |site| site.function.as_str());
        self.detection.observe(event, function, site);
        match self.sink.as_mut() {
            Some(sink) => sink.write_line(&event.to_json(function, (site != 0).then_some(site))),
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
            (Some(&pc), Some(site)) => pc.wrapping_sub(site.address),
            _ => 0,
        };
        let frames =
            stacks::symbolize(&pcs, |pc| self.binary.symbolize(pc.wrapping_sub(load_bias)));
        if let Some(sink) = self.sink.as_mut() {
            let id = self.site_ids.len() as u64 + 1;
            let line = serde_json::json!({"type": "stack", "id": id, "frames": frames});
            sink.write_line(&line.to_string())?;
        }
        let id = self.detection.add_site(frames);
        self.site_ids.insert(key, id);
        Ok(id)
    }
}

/// Decodes up to `budget` records; returns whether the budget ran out (more may be waiting).
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
            decode(&record)
        };
        match decoded {
            Some(event) => output.write(&event, channels)?,
            None => output.summary.undecodable += 1,
        }
    }
    Ok(true)
}

fn forward_signal(pid: u32, signal: i32) {
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(pid as i32, signal) };
}

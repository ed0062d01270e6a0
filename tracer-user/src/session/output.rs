//! Where each decoded event goes, in order: the summary's counts, the code site of its stack
//! (symbolized once per site), the detector, and the `--events` recording; fatal errors are
//! counted and the map crashes kept for the race log; the cold-code watch's records go to its
//! [`ColdCode`].

use std::{collections::HashSet, sync::Arc, time::Duration};

use tracer_common::site_flags;

use super::cold::ColdCode;
use crate::{
    analyse::GoBinary,
    detect::{
        pipeline::{Detection, ResolvedRace},
        HashMap,
    },
    error::TracerError,
    events::{
        order::EffectOrder,
        recording::{Recorder, WindowMark},
        stacks, Event, Op,
    },
    metrics::TargetTotals,
    plan::sites::KernelSite,
    probes::KernelChannels,
    report::{
        summary::{Summary, TracingCost},
        FatalCrash,
    },
    target,
};

/// Where decoded events go: the summary always, `--events` when asked, with the `stack` lines
/// each event refers to written before it.
pub(super) struct Output {
    pub(super) sites: Arc<[KernelSite]>,
    pub(super) binary: Arc<GoBinary>,
    pub(super) summary: Summary,
    pub(super) sink: Option<Recorder>,
    /// (kernel stack id, caller) → code-site id.
    pub(super) site_ids: HashMap<(u32, u64), u64>,
    pub(super) detection: Detection,
    /// Where a PIE was loaded (run-time − link-time address), learnt from the first stack.
    pub(super) load_bias: Option<u64>,
    /// How far behind the events the detector is.
    pub(super) lag: Lag,
    /// Fatal errors by message.
    pub(super) fatal_errors: Vec<(String, u64)>,
    /// Fatal map errors not yet reported.
    pub(super) crashes: Vec<FatalCrash>,
    /// `run`: the program's own `execve` from tracer's fork is still to come.
    pub(super) launching: bool,
    /// The process replaced its program: later events are another program's.
    pub(super) replaced: bool,
    /// When the watched calls of rarely run code ran.
    pub(super) cold: ColdCode,
    /// Releases recorded before the map event they follow, held until it has passed; the
    /// completions of sends and receives whose returns are not probed.
    order: EffectOrder,
    /// Events [`Self::order`] let through, written out at once (kept to reuse its memory).
    ordered: Vec<Event>,
}

impl Output {
    /// The output of a target probed at `sites` of `binary`; `launching` when tracer started it
    /// (its own `execve` is still to come).
    pub(super) fn new(
        sites: Arc<[KernelSite]>,
        binary: Arc<GoBinary>,
        recorder: Option<Recorder>,
        graphs: bool,
        launching: bool,
        watched_calls: usize,
        completed_at_next_event: &HashSet<u64>,
    ) -> Self {
        Self {
            sites,
            binary,
            summary: Summary::default(),
            sink: recorder,
            site_ids: HashMap::default(),
            detection: Detection::with_graphs(graphs),
            load_bias: None,
            lag: Lag::default(),
            fatal_errors: Vec::new(),
            crashes: Vec::new(),
            launching,
            replaced: false,
            cold: ColdCode::new(watched_calls),
            order: EffectOrder::new(completed_at_next_event.clone()),
            ordered: Vec::new(),
        }
    }

    /// Moves the analysis window, and says so in the recording (for replay). A new window
    /// starts after every event of the last one: releases still held go first. (When a window
    /// closes, its last events are still in the ring buffer.)
    pub(super) fn move_window(
        &mut self,
        mark: WindowMark,
        channels: &KernelChannels,
    ) -> Result<(), TracerError> {
        if let WindowMark::From(_) = mark {
            self.flush_held(channels)?;
        }
        if let Some(sink) = self.sink.as_mut() {
            sink.window(mark)?;
        }
        self.detection.move_window(mark);
        Ok(())
    }

    /// Takes the next event of the stream and writes out what is due, in effect order.
    pub(super) fn write(
        &mut self,
        event: &Event,
        channels: &KernelChannels,
    ) -> Result<(), TracerError> {
        if self.order.passes_at_once(event) {
            return self.write_in_order(event, channels);
        }
        self.write_ordered(channels, |order, out| order.place(*event, out))
    }

    /// Writes out the releases still held: the stream has ended, or a new window starts.
    pub(super) fn flush_held(&mut self, channels: &KernelChannels) -> Result<(), TracerError> {
        self.write_ordered(channels, EffectOrder::flush)
    }

    /// Writes out, in order, the events `let_through` takes from [`Self::order`] (into a batch
    /// whose memory is kept for the next time).
    fn write_ordered(
        &mut self,
        channels: &KernelChannels,
        let_through: impl FnOnce(&mut EffectOrder, &mut Vec<Event>),
    ) -> Result<(), TracerError> {
        let mut ordered = std::mem::take(&mut self.ordered);
        let_through(&mut self.order, &mut ordered);
        let written = ordered
            .drain(..)
            .try_for_each(|event| self.write_in_order(&event, channels));
        self.ordered = ordered;
        written
    }

    /// Counts, locates, analyses and records one event.
    fn write_in_order(
        &mut self,
        event: &Event,
        channels: &KernelChannels,
    ) -> Result<(), TracerError> {
        self.summary.record(event);
        self.lag.saw(event.ts_ns);
        let captures = self
            .sites
            .get(event.probe as usize)
            .is_some_and(|site| site.params.flags & site_flags::CAPTURE_STACK != 0);
        let site = match event.stack {
            Some(kernel_id) => self.site_of(Some(kernel_id), event, channels)?,
            // The walk failed (the kernel's stack table had another stack in that bucket):
            // the probed function and its caller still say where the access happened.
            None if captures => self.site_of(None, event, channels)?,
            None => 0,
        };
        if let Op::Fatal { message, len } = event.op {
            let message = self.count_fatal_error(event.pid, message, len);
            if FatalCrash::is_map_error(&message) {
                self.crashes.push(FatalCrash {
                    message,
                    goroutine: event.goroutine,
                    stack: self.detection.frames(site).to_vec(),
                    map: self.summary.last_map_written_by(event.goroutine),
                });
            }
        }
        let probe = self.sites.get(event.probe as usize);
        let function = probe.map_or("", |probe| probe.function.as_str());
        self.detection
            .observe(event, probe.and_then(|probe| probe.observes), site);
        match self.sink.as_mut() {
            Some(sink) => sink.event(event, function, (site != 0).then_some(site)),
            None => Ok(()),
        }
    }

    /// The code-site id of a walked stack (or, without one, of the probed instruction and its
    /// caller), resolving (and writing out) its frames the first time.
    pub(super) fn site_of(
        &mut self,
        kernel_id: Option<u32>,
        event: &Event,
        channels: &KernelChannels,
    ) -> Result<u64, TracerError> {
        let key = (kernel_id.unwrap_or(u32::MAX), event.caller);
        if let Some(&id) = self.site_ids.get(&key) {
            return Ok(id);
        }
        let probed = self
            .sites
            .get(event.probe as usize)
            .map(|site| site.address);
        let walked = match kernel_id {
            Some(kernel_id) => {
                let walked = channels.stack(kernel_id);
                // The walk starts at the probed instruction, whose link-time address is known:
                // the difference is where a PIE was loaded.
                if let (Some(&pc), Some(address)) = (walked.first(), probed) {
                    self.load_bias = Some(pc.wrapping_sub(address));
                }
                walked
            }
            None => probed
                .map(|address| vec![address.wrapping_add(self.load_bias.unwrap_or(0))])
                .unwrap_or_default(),
        };
        let pcs = stacks::with_caller(&walked, event.caller);
        let load_bias = self.load_bias.unwrap_or(0);
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

    /// Names the function and line of each step of a race's graph, from the executable.
    pub(super) fn locate_steps(&self, race: &mut ResolvedRace) {
        let Some(graph) = race.graph.as_mut() else {
            return;
        };
        let bias = self.load_bias.unwrap_or(0);
        for step in graph.current.iter_mut().chain(graph.previous.iter_mut()) {
            if step.pc == 0 {
                continue;
            }
            // A return address names the line of its call one byte back; a probed
            // instruction one byte back is the end of the one before, on the same line.
            let frames = self.binary.symbolize(step.pc.wrapping_sub(bias) - 1);
            // The innermost frame outside the runtime and the sync packages: the code that
            // locked, sent or wrote, not the inlined atomic that did it.
            let library = |function: &str| {
                ["runtime.", "sync.", "sync/atomic.", "internal/"]
                    .iter()
                    .any(|prefix| function.starts_with(prefix))
            };
            let frame = frames
                .iter()
                .find(|frame| !library(&frame.function))
                .or(frames.last());
            if let Some(frame) = frame {
                let file = stacks::file_name(&frame.file);
                step.location = Some(format!("{}\n{file}:{}", frame.function, frame.line));
            }
        }
    }

    /// Counts a fatal error under its message, and returns the message: `runtime.fatal`/`throw`
    /// take a string, whose bytes are almost always a literal in the executable's read-only
    /// data; otherwise they are read from the process, if it still exists.
    pub(super) fn count_fatal_error(&mut self, pid: u32, address: u64, len: u64) -> String {
        let message = fatal_message(&self.binary, pid, address, len, self.load_bias.unwrap_or(0));
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

    /// Totals for the metrics, with what tracing has cost and whether the probes are in place.
    pub(super) fn totals(&self, cost: TracingCost, probes_in_place: bool) -> TargetTotals {
        TargetTotals {
            cost,
            probes_in_place,
            events_by_kind: self.summary.by_kind().collect(),
            dropped: self.summary.dropped,
            kernel: self.summary.kernel,
            detector: self.detection.stats(),
            lag: self.lag.measured,
            races: self.detection.race_tallies(),
            fatal_errors: self.fatal_errors.clone(),
        }
    }
}

/// The age of the newest event when the detector got to it, measured after each drain that
/// found events: between sampling windows nothing arrives, and that idle time is not lag.
#[derive(Debug, Default)]
pub(super) struct Lag {
    /// `ts_ns` of the newest event decoded, and whether one came since the last drain.
    newest_ns: Option<u64>,
    fresh: bool,
    pub(super) measured: Option<Duration>,
}

impl Lag {
    pub(super) fn saw(&mut self, ts_ns: u64) {
        self.newest_ns = Some(ts_ns);
        self.fresh = true;
    }

    /// A drain ended at `now_ns` (CLOCK_MONOTONIC).
    pub(super) fn drained(&mut self, now_ns: u64) {
        if let (true, Some(newest)) = (std::mem::take(&mut self.fresh), self.newest_ns) {
            self.measured = Some(Duration::from_nanos(now_ns.saturating_sub(newest)));
        }
    }
}

/// The longest fatal message read; the runtime's own are under 64 bytes.
const MAX_FATAL_MESSAGE: u64 = 256;

/// The text of the string (`address`, `len`) a fatal error was raised with.
pub(super) fn fatal_message(
    binary: &GoBinary,
    pid: u32,
    address: u64,
    len: u64,
    load_bias: u64,
) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_measured_when_events_arrive_not_while_none_do() {
        let mut lag = Lag::default();
        lag.drained(1_000);
        assert_eq!(lag.measured, None);
        lag.saw(900);
        lag.saw(950);
        lag.drained(1_000);
        assert_eq!(lag.measured, Some(Duration::from_nanos(50)));
        // A pause between windows: no event, the lag stays what it was.
        lag.drained(9_000_000_000);
        assert_eq!(lag.measured, Some(Duration::from_nanos(50)));
    }
}

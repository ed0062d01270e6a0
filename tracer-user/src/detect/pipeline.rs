//! The detection pipeline shared by live tracing and `tracer replay`: decoded events in stream
//! order → happens-before operations → the engine → races with their stacks.

use super::{
    engine::{self, Engine, Limits, Operation, RaceReport},
    history::{Histories, RaceGraph},
    translate::Translator,
};
use crate::{
    events::{
        recording::{Recording, WindowMark},
        stacks::{access_function, SourceFrame},
        Event,
    },
    plan::catalogue::FunctionId,
};

/// A race with its accesses' stacks resolved.
#[derive(Clone, Debug)]
pub struct ResolvedRace {
    pub race: RaceReport,
    pub current_stack: Vec<SourceFrame>,
    pub previous_stack: Vec<SourceFrame>,
    /// Where each goroutine was started (the `go` statement's stack), when that was seen.
    pub current_created_at: Vec<SourceFrame>,
    pub previous_created_at: Vec<SourceFrame>,
    /// The two goroutines' steps around the race, when `--dot-dir` asked for graphs.
    pub graph: Option<RaceGraph>,
}

/// One distinct race as the metrics see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaceTally {
    /// `write/write`, `write/read`, `read/write`.
    pub kind: &'static str,
    /// The function of the later access and of the earlier one.
    pub function: String,
    pub previous_function: String,
    /// Racing pairs of accesses at these two code sites.
    pub count: u64,
}

/// Feeds events to the engine and remembers each code site's frames for the reports.
pub struct Detection {
    translator: Translator,
    engine: Engine,
    /// Arrival number of the next detector operation.
    seq: u64,
    /// The kernel's drop count stamped on the last event.
    lost: u32,
    /// The source frames of each code site, by site id − 1 (ids are 1-based; 0 = no stack).
    site_frames: Vec<Vec<SourceFrame>>,
    /// Each goroutine's recent steps, kept only when race graphs are wanted.
    histories: Option<Histories>,
    /// The graph of each distinct race, in the engine's report order.
    graphs: Vec<RaceGraph>,
    /// Events stamped earlier (CLOCK_MONOTONIC ns) were recorded while the probes were still
    /// being placed, some active and some not: they are not analysed.
    complete_from_ns: u64,
    /// Events stamped this late or later were recorded while the probes were being removed:
    /// they are not analysed either.
    complete_until_ns: u64,
}

impl Default for Detection {
    fn default() -> Self {
        Self {
            translator: Translator::default(),
            engine: Engine::new(Limits::default()),
            seq: 0,
            lost: 0,
            site_frames: Vec::new(),
            histories: None,
            graphs: Vec::new(),
            complete_from_ns: 0,
            complete_until_ns: u64::MAX,
        }
    }
}

impl Detection {
    /// A detection that also keeps what the race graphs need (`--dot-dir`).
    pub fn with_graphs(graphs: bool) -> Self {
        Self {
            histories: graphs.then(Histories::default),
            ..Self::default()
        }
    }

    /// Registers the frames of the next code site and returns its id.
    pub fn add_site(&mut self, frames: Vec<SourceFrame>) -> u64 {
        self.site_frames.push(frames);
        self.site_frames.len() as u64
    }

    /// Runs over a `--events` recording: its code sites, then its events and window marks in
    /// order, as the live session met them.
    pub fn replay(&mut self, recording: Recording) {
        for frames in recording.sites {
            self.add_site(frames);
        }
        let mut marks = recording.marks.into_iter().peekable();
        for (index, recorded) in recording.events.iter().enumerate() {
            while let Some((_, mark)) = marks.next_if(|(at, _)| *at <= index) {
                self.move_window(mark);
            }
            self.observe(&recorded.event, recorded.observes, recorded.stack);
        }
    }

    /// Analyses only the events of a window of complete tracing (CLOCK_MONOTONIC ns).
    ///
    /// `From(ts)`: every probe is in place from `ts` on. `attach` places its probes while the
    /// target runs, and until the last one is in place the stream misses some operations but
    /// not others (say, a Lock but not the writes after it), which could only produce false
    /// reports. The same holds when a sampling window opens; and since nothing is known of
    /// the time without probes before it, every goroutine, clock and access history is
    /// forgotten, as if tracing started at `ts` (the races found so far are kept). What an
    /// operation started before `ts` ends as any operation whose start was not seen.
    ///
    /// `Until(ts)`: the probes are being removed from `ts` on (a sampling window closes), one
    /// link at a time: later events are not analysed.
    pub fn move_window(&mut self, mark: WindowMark) {
        match mark {
            WindowMark::From(ts_ns) => {
                self.translator = Translator::default();
                self.engine.forget_order();
                if let Some(histories) = self.histories.as_mut() {
                    *histories = Histories::default();
                }
                self.complete_from_ns = ts_ns;
                self.complete_until_ns = u64::MAX;
            }
            WindowMark::Until(ts_ns) => self.complete_until_ns = ts_ns,
        }
    }

    /// Processes one event; `function` is the catalogue function its probe observes, `site`
    /// its code-site id.
    pub fn observe(&mut self, event: &Event, function: Option<FunctionId>, site: u64) {
        if !(self.complete_from_ns..self.complete_until_ns).contains(&event.ts_ns) {
            return;
        }
        // The kernel's drop count changed: the stream has a hole right here, and nothing may be
        // ordered across it.
        if event.lost != self.lost {
            self.lost = event.lost;
            self.process(Operation::Gap { goroutines: None }, "gap", 0);
        }
        // Drained in place: moving the inline vector into an iterator copies all of it.
        let mut operations = self.translator.translate(event, function, site);
        for operation in operations.drain(..) {
            self.process(operation, event.kind().name(), event.caller);
        }
    }

    /// Applies one operation, which came from Go operation `name`.
    fn process(&mut self, operation: Operation, name: &'static str, pc: u64) {
        self.seq += 1;
        if let Some(histories) = self.histories.as_mut() {
            histories.record(self.seq, name, &operation, pc);
        }
        let new_races = self.engine.process(self.seq, operation);
        if let Some(histories) = self.histories.as_ref() {
            self.graphs
                .extend(new_races.iter().map(|race| histories.graph(race)));
        }
    }

    /// The frames of code site `site` (empty for 0, no stack).
    pub fn frames(&self, site: u64) -> &[SourceFrame] {
        site.checked_sub(1)
            .and_then(|index| self.site_frames.get(index as usize))
            .map_or(&[], Vec::as_slice)
    }

    pub fn stats(&self) -> engine::Stats {
        self.engine.stats()
    }

    /// Every distinct race so far, as the metrics count them.
    pub fn race_tallies(&self) -> Vec<RaceTally> {
        let function = |site: u64| access_function(self.frames(site)).to_owned();
        self.engine
            .reports()
            .iter()
            .map(|race| RaceTally {
                kind: race.kind(),
                function: function(race.current.site),
                previous_function: function(race.previous.site),
                count: race.count,
            })
            .collect()
    }

    /// Every distinct race so far, with both stacks.
    pub fn races(&self) -> Vec<ResolvedRace> {
        self.races_since(0)
    }

    /// The distinct races found after the first `known`, with both stacks.
    pub fn races_since(&self, known: usize) -> Vec<ResolvedRace> {
        let created = |access: &engine::Access| {
            access
                .created_at
                .map(|site| self.frames(site).to_vec())
                .unwrap_or_default()
        };
        self.engine
            .reports()
            .iter()
            .enumerate()
            .skip(known)
            .map(|(index, race)| ResolvedRace {
                race: race.clone(),
                current_stack: self.frames(race.current.site).to_vec(),
                previous_stack: self.frames(race.previous.site).to_vec(),
                current_created_at: created(&race.current),
                previous_created_at: created(&race.previous),
                graph: self.graphs.get(index).cloned(),
            })
            .collect()
    }

    /// How many distinct races were found so far.
    pub fn race_count(&self) -> usize {
        self.engine.reports().len()
    }
}

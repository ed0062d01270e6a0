//! The metric families, in three groups by what they describe: the kernel side (events,
//! drops, probes), the detector's state, and what was found (races, fatal errors). Each group
//! registers its families, binds one target's label values once ([`KernelFamilies::handles`]
//! and the like), and publishes that target's totals by adding what it counted since its last
//! update ([`Tally`]): a series shared with an earlier process of the same executable (the node
//! agent follows restarts under one label) goes on from where that one left it.

use std::{collections::HashMap, time::Duration};

use prometheus::{
    core::{Collector, GenericCounter, GenericGauge},
    CounterVec, Gauge, GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry,
};
use tracer_common::ProbeClass;

use super::{ProbeCounts, TargetTotals, MAP_FATAL_ERRORS, OTHER};

type Counter = GenericCounter<prometheus::core::AtomicU64>;
type IntGaugeHandle = GenericGauge<prometheus::core::AtomicI64>;

pub(super) fn register<C: Collector + Clone + 'static>(registry: &Registry, collector: C) -> C {
    registry
        .register(Box::new(collector.clone()))
        .expect("metric names are unique and valid");
    collector
}

pub(super) fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> IntCounterVec {
    register(
        registry,
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

pub(super) fn gauge_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> IntGaugeVec {
    register(
        registry,
        IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

/// A counter series and how much of one target's total it holds: updating to a new total adds
/// the difference (totals only grow; a smaller one changes nothing).
pub(super) struct Tally {
    counter: Counter,
    published: u64,
}

impl Tally {
    fn new(counter: Counter) -> Self {
        Self {
            counter,
            published: 0,
        }
    }

    fn to(&mut self, total: u64) {
        self.counter.inc_by(total.saturating_sub(self.published));
        self.published = self.published.max(total);
    }
}

/// [`Tally`] for the series of a family whose other labels are only known as values come
/// (event kinds, race sites, fatal messages): the target's executable label comes first.
pub(super) struct Tallies {
    family: IntCounterVec,
    published: HashMap<Vec<String>, u64>,
}

impl Tallies {
    fn new(family: &IntCounterVec) -> Self {
        Self {
            family: family.clone(),
            published: HashMap::new(),
        }
    }

    /// Brings the series with `labels` (the executable's first) to `total`.
    fn to(&mut self, labels: &[&str], total: u64) {
        let key: Vec<String> = labels.iter().map(|&label| label.to_owned()).collect();
        let published = self.published.entry(key).or_default();
        self.family
            .with_label_values(labels)
            .inc_by(total.saturating_sub(*published));
        *published = (*published).max(total);
    }

    /// Makes the series with `labels` exist (at 0 if new).
    fn touch(&self, labels: &[&str]) {
        self.family.with_label_values(labels);
    }
}

/// The label of each probe class.
pub(super) fn class_label(class: ProbeClass) -> &'static str {
    match class {
        ProbeClass::MapOp => "map",
        ProbeClass::CallEntry => "call",
        ProbeClass::CallReturn => "return",
        ProbeClass::SyncInline => "inline_sync",
        ProbeClass::ColdWatch => "cold_watch",
    }
}

const EXE: &[&str] = &["executable"];

/// Events, drops and probes.
pub(super) struct KernelFamilies {
    events: IntCounterVec,
    dropped: IntCounterVec,
    probe_hits: IntCounterVec,
    probes_attached: IntGaugeVec,
    pub(super) probes_failed: IntGaugeVec,
    skipped: IntCounterVec,
}

/// [`KernelFamilies`]' series of one target.
pub(super) struct KernelHandles {
    /// Sites per class: attached, and of those the ones that stay between windows.
    probes: ProbeCounts,
    probes_attached: [IntGaugeHandle; ProbeClass::ALL.len()],
    events: Tallies,
    dropped: Tally,
    probe_hits: [Tally; ProbeClass::ALL.len()],
    skipped: [Tally; 5],
}

impl KernelFamilies {
    pub(super) fn register(registry: &Registry) -> Self {
        Self {
            events: counter_vec(
                registry,
                "tracer_events_total",
                "Events decoded from the kernel, by operation.",
                &["executable", "kind"],
            ),
            dropped: counter_vec(
                registry,
                "tracer_events_dropped_total",
                "Events lost in the kernel because the ring buffer was full.",
                EXE,
            ),
            probe_hits: counter_vec(
                registry,
                "tracer_probe_hits_total",
                "Probe hits counted by the kernel programs, by probe class.",
                &["executable", "class"],
            ),
            probes_attached: gauge_vec(
                registry,
                "tracer_probes_attached",
                "Probe sites in place now, by probe class (between sampling windows, only those \
                 that stay: the fatal-error probes).",
                &["executable", "class"],
            ),
            probes_failed: gauge_vec(
                registry,
                "tracer_probes_failed",
                "Probe sites planned but not attached, by probe class.",
                &["executable", "class"],
            ),
            skipped: counter_vec(
                registry,
                "tracer_kernel_skipped_total",
                "Probe hits the kernel recorded no event or no stack for: maps on the \
                 goroutine's own stack (never shared), unreadable goroutine ids, failed stack \
                 walks, hits while a sampling window's probes were being placed or removed, map \
                 accesses repeating their goroutine's previous event.",
                &["executable", "reason"],
            ),
        }
    }

    pub(super) fn handles(&self, executable: &str, probes: ProbeCounts) -> KernelHandles {
        let with = |vec: &IntCounterVec, label: &str| {
            Tally::new(vec.with_label_values(&[executable, label]))
        };
        KernelHandles {
            probes,
            probes_attached: ProbeClass::ALL.map(|class| {
                self.probes_attached
                    .with_label_values(&[executable, class_label(class)])
            }),
            events: Tallies::new(&self.events),
            dropped: Tally::new(self.dropped.with_label_values(&[executable])),
            probe_hits: ProbeClass::ALL.map(|class| with(&self.probe_hits, class_label(class))),
            skipped: [
                "stack_local_map",
                "goid_unreadable",
                "stack_failed",
                "window_edge",
                "repeated_access",
            ]
            .map(|reason| with(&self.skipped, reason)),
        }
    }
}

impl KernelHandles {
    pub(super) fn update(&mut self, executable: &str, totals: &TargetTotals) {
        let in_place = match totals.probes_in_place {
            true => self.probes.attached,
            false => self.probes.always,
        };
        for (gauge, &count) in self.probes_attached.iter().zip(&in_place) {
            gauge.set(count as i64);
        }
        for &(kind, count) in &totals.events_by_kind {
            self.events.to(&[executable, kind], count);
        }
        self.dropped.to(totals.dropped);
        let kernel = &totals.kernel;
        for (tally, &hits) in self.probe_hits.iter_mut().zip(&kernel.hits) {
            tally.to(hits);
        }
        for (tally, total) in self.skipped.iter_mut().zip([
            kernel.stack_filtered,
            kernel.goid_unreadable,
            kernel.stack_failed,
            kernel.edge_skipped,
            kernel.repeats_dropped,
        ]) {
            tally.to(total);
        }
    }
}

/// What tracing costs and how much of the time it covers: what a clean dashboard needs to be
/// read as "nothing found" rather than "little looked at".
pub(super) struct CostFamilies {
    traced: CounterVec,
    windows: IntCounterVec,
    probe_time: CounterVec,
    tracer_cpu: CounterVec,
    target_cpu: CounterVec,
    in_place: IntGaugeVec,
}

/// [`CostFamilies`]' series of one target.
pub(super) struct CostHandles {
    traced: SecondsTally,
    windows: Tally,
    probe_time: SecondsTally,
    tracer_cpu: SecondsTally,
    target_cpu: SecondsTally,
    in_place: IntGaugeHandle,
}

type FloatCounter = GenericCounter<prometheus::core::AtomicF64>;

fn seconds_vec(registry: &Registry, name: &str, help: &str) -> CounterVec {
    register(
        registry,
        CounterVec::new(Opts::new(name, help), EXE).expect("valid metric"),
    )
}

/// [`Tally`] for a seconds counter.
pub(super) struct SecondsTally {
    counter: FloatCounter,
    published: Duration,
}

impl SecondsTally {
    fn new(counter: FloatCounter) -> Self {
        Self {
            counter,
            published: Duration::ZERO,
        }
    }

    fn to(&mut self, total: Duration) {
        self.counter
            .inc_by(total.saturating_sub(self.published).as_secs_f64());
        self.published = self.published.max(total);
    }
}

impl CostFamilies {
    pub(super) fn register(registry: &Registry) -> Self {
        Self {
            traced: seconds_vec(
                registry,
                "tracer_traced_seconds_total",
                "Time with every probe in place (sampling windows, or all the time).",
            ),
            windows: counter_vec(
                registry,
                "tracer_windows_total",
                "Sampling windows opened (1 when tracing all the time).",
                EXE,
            ),
            probe_time: seconds_vec(
                registry,
                "tracer_probe_seconds_total",
                "The target's time in probes (traps and programs), estimated.",
            ),
            tracer_cpu: seconds_vec(
                registry,
                "tracer_cpu_seconds_total",
                "tracer's CPU time on the target: placing and removing its probes, decoding and \
                 analysing its events.",
            ),
            target_cpu: seconds_vec(
                registry,
                "tracer_target_cpu_seconds_total",
                "The target's CPU time since tracing began, probes included.",
            ),
            in_place: gauge_vec(
                registry,
                "tracer_probes_in_place",
                "1 while the probes are in place, 0 while they are paused between sampling \
                 windows or removed.",
                EXE,
            ),
        }
    }

    pub(super) fn handles(&self, executable: &str) -> CostHandles {
        let labels = [executable];
        let seconds = |vec: &CounterVec| SecondsTally::new(vec.with_label_values(&labels));
        CostHandles {
            traced: seconds(&self.traced),
            windows: Tally::new(self.windows.with_label_values(&labels)),
            probe_time: seconds(&self.probe_time),
            tracer_cpu: seconds(&self.tracer_cpu),
            target_cpu: seconds(&self.target_cpu),
            in_place: self.in_place.with_label_values(&labels),
        }
    }
}

impl CostHandles {
    pub(super) fn update(&mut self, totals: &TargetTotals) {
        let cost = &totals.cost;
        self.traced.to(cost.traced);
        self.windows.to(cost.windows);
        self.probe_time.to(cost.probes);
        self.tracer_cpu.to(cost.tracer_cpu);
        self.target_cpu.to(cost.target_cpu);
        self.in_place.set(i64::from(totals.probes_in_place));
    }
}

/// What the detector holds and gives up.
pub(super) struct DetectorFamilies {
    goroutines: IntGaugeVec,
    maps: IntGaugeVec,
    sync_objects: IntGaugeVec,
    evictions: IntCounterVec,
    forgotten: IntCounterVec,
    lag: GaugeVec,
}

/// [`DetectorFamilies`]' series of one target.
pub(super) struct DetectorHandles {
    goroutines: IntGaugeHandle,
    maps: IntGaugeHandle,
    sync_objects: IntGaugeHandle,
    evictions: [Tally; 3],
    forgotten: [Tally; 2],
    lag: Gauge,
}

impl DetectorFamilies {
    pub(super) fn register(registry: &Registry) -> Self {
        Self {
            goroutines: gauge_vec(
                registry,
                "tracer_goroutines_tracked",
                "Goroutines whose vector clock the detector holds.",
                EXE,
            ),
            maps: gauge_vec(
                registry,
                "tracer_maps_tracked",
                "Maps whose access history the detector holds.",
                EXE,
            ),
            sync_objects: gauge_vec(
                registry,
                "tracer_sync_objects_tracked",
                "Synchronisation objects whose clock the detector holds.",
                EXE,
            ),
            evictions: counter_vec(
                registry,
                "tracer_detector_evictions_total",
                "Detector entries evicted to bound memory, by table (can hide races, never \
                 invents one).",
                &["executable", "table"],
            ),
            forgotten: counter_vec(
                registry,
                "tracer_detector_forgotten_accesses_total",
                "Recorded map accesses the detector forgot rather than risk a false report: \
                 after lost events (gap) or to reuse a goroutine slot.",
                &["executable", "reason"],
            ),
            lag: register(
                registry,
                GaugeVec::new(
                    Opts::new(
                        "tracer_detector_lag_seconds",
                        "Age of the newest event when the detector processed it.",
                    ),
                    EXE,
                )
                .expect("valid metric"),
            ),
        }
    }

    pub(super) fn handles(&self, executable: &str) -> DetectorHandles {
        let with = |vec: &IntCounterVec, label: &str| {
            Tally::new(vec.with_label_values(&[executable, label]))
        };
        DetectorHandles {
            goroutines: self.goroutines.with_label_values(&[executable]),
            maps: self.maps.with_label_values(&[executable]),
            sync_objects: self.sync_objects.with_label_values(&[executable]),
            evictions: ["map", "sync_object", "goroutine"]
                .map(|table| with(&self.evictions, table)),
            forgotten: ["gap", "slot_reuse"].map(|reason| with(&self.forgotten, reason)),
            lag: self.lag.with_label_values(&[executable]),
        }
    }
}

impl DetectorHandles {
    pub(super) fn update(&mut self, totals: &TargetTotals) {
        let detector = &totals.detector;
        self.goroutines.set(detector.goroutines as i64);
        self.maps.set(detector.maps as i64);
        self.sync_objects.set(detector.sync_objects as i64);
        for (tally, total) in self.evictions.iter_mut().zip([
            detector.map_evictions,
            detector.sync_object_evictions,
            detector.goroutine_evictions,
        ]) {
            tally.to(total);
        }
        for (tally, total) in self
            .forgotten
            .iter_mut()
            .zip([detector.forgotten_by_gap, detector.forgotten_by_preemption])
        {
            tally.to(total);
        }
        if let Some(lag) = totals.lag {
            self.lag.set(lag.as_secs_f64());
        }
    }
}

/// What was found: races and the target's fatal errors.
pub(super) struct FoundFamilies {
    races: IntCounterVec,
    distinct_races: IntCounterVec,
    fatal_errors: IntCounterVec,
}

/// [`FoundFamilies`]' series of one target.
pub(super) struct FoundHandles {
    races: Tallies,
    distinct_races: Tally,
    fatal_errors: Tallies,
}

impl FoundFamilies {
    pub(super) fn register(registry: &Registry) -> Self {
        Self {
            races: counter_vec(
                registry,
                "tracer_races_total",
                "Racing pairs of map accesses (repetitions included), by kind and by the two \
                 accesses' functions (at most 50 pairs per executable, then \"other\").",
                &["executable", "kind", "function", "previous_function"],
            ),
            distinct_races: counter_vec(
                registry,
                "tracer_distinct_races_total",
                "Distinct races reported: pairs of code sites.",
                EXE,
            ),
            fatal_errors: counter_vec(
                registry,
                "tracer_target_fatal_errors_total",
                "Fatal errors of the traced program (runtime.fatal/throw), by message.",
                &["executable", "reason"],
            ),
        }
    }

    pub(super) fn handles(&self, executable: &str) -> FoundHandles {
        FoundHandles {
            races: Tallies::new(&self.races),
            distinct_races: Tally::new(self.distinct_races.with_label_values(&[executable])),
            fatal_errors: Tallies::new(&self.fatal_errors),
        }
    }
}

impl FoundHandles {
    /// `per_series`: racing pairs by (kind, function, previous function) label values.
    pub(super) fn update(
        &mut self,
        executable: &str,
        totals: &TargetTotals,
        per_series: HashMap<(&str, &str, &str), u64>,
    ) {
        self.distinct_races.to(totals.races.len() as u64);
        for ((kind, function, previous), count) in per_series {
            self.races
                .to(&[executable, kind, function, previous], count);
        }
        for reason in MAP_FATAL_ERRORS {
            self.fatal_errors.touch(&[executable, reason]);
        }
        let mut fatal: HashMap<&str, u64> = HashMap::new();
        for (message, count) in &totals.fatal_errors {
            let reason = MAP_FATAL_ERRORS
                .into_iter()
                .find(|known| known == message)
                .unwrap_or(OTHER);
            *fatal.entry(reason).or_default() += count;
        }
        for (reason, count) in fatal {
            self.fatal_errors.to(&[executable, reason], count);
        }
    }
}

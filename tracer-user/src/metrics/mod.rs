//! Export. In: each target's session totals (events, kernel counters, races, costs). Out:
//! Prometheus metrics on the `--metrics-addr` endpoint ([`server`]).
//!
//! Prometheus metrics (`--metrics-addr`): what each traced target's session has counted, as
//! counters and gauges labelled by executable name (bounded; never a pid, address or key).
//!
//! Sessions keep exact totals; [`TargetMetrics::update`] adds to each counter what the target
//! counted since its last update, so a counter never goes backwards and a process that takes
//! over a label (the node agent following a restart) goes on from its predecessor's counts. The
//! catalogue is in docs/metrics.md.

mod families;
mod process;
pub mod server;

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use prometheus::{IntGauge, IntGaugeVec, Registry, TextEncoder};

use self::families::{
    class_label, gauge_vec, register, CostFamilies, CostHandles, DetectorFamilies, DetectorHandles,
    FoundFamilies, FoundHandles, KernelFamilies, KernelHandles,
};
use self::process::ProcessMetrics;
use tracer_common::ProbeClass;

use crate::{
    detect::{pipeline::RaceTally, Stats},
    report::summary::{KernelCounters, TracingCost},
};

/// Distinct (function, previous function) pairs labelled per executable; later pairs are
/// counted under `other` so a program with many racy sites cannot blow up the series count.
pub const MAX_RACE_SITES: usize = 50;

/// The bucket for pairs beyond [`MAX_RACE_SITES`] and for unknown fatal messages.
pub const OTHER: &str = "other";

/// Fatal errors the Go runtime raises on unsynchronised map use. They are exported from the
/// start (at 0) so dashboards and alerts see the series before the first crash.
pub const MAP_FATAL_ERRORS: [&str; 3] = [
    "concurrent map writes",
    "concurrent map read and map write",
    "concurrent map iteration and map write",
];

/// A target session's totals since it attached.
#[derive(Clone, Debug, Default)]
pub struct TargetTotals {
    /// Decoded events per operation name.
    pub events_by_kind: Vec<(&'static str, u64)>,
    pub dropped: u64,
    pub kernel: KernelCounters,
    pub detector: Stats,
    /// How old the newest event was when the detector processed it.
    pub lag: Option<Duration>,
    /// Every distinct race, in order of detection.
    pub races: Vec<RaceTally>,
    /// Fatal errors of the target, by runtime message.
    pub fatal_errors: Vec<(String, u64)>,
    /// What tracing has cost so far: time traced, windows, probe and CPU time.
    pub cost: TracingCost,
    /// Whether the window's probes are in place now (not paused, not removed).
    pub probes_in_place: bool,
}

/// Probe sites per class: attached, of those the ones that stay between windows, and planned
/// but not probed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProbeCounts {
    pub attached: [usize; ProbeClass::ALL.len()],
    pub always: [usize; ProbeClass::ALL.len()],
    pub failed: [usize; ProbeClass::ALL.len()],
}

/// Every metric tracer exports, registered in its own registry.
pub struct Metrics {
    registry: Registry,
    targets: IntGauge,
    target_info: IntGaugeVec,
    kernel: KernelFamilies,
    cost: CostFamilies,
    detector: DetectorFamilies,
    found: FoundFamilies,
    process: ProcessMetrics,
    /// Woken by every scrape (see [`Metrics::next_scrape`]).
    scraped: tokio::sync::Notify,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let build_info = gauge_vec(
            &registry,
            "tracer_build_info",
            "tracer's version; always 1.",
            &["version"],
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        Self {
            targets: register(
                &registry,
                IntGauge::new("tracer_targets", "Processes being traced now.")
                    .expect("valid metric"),
            ),
            target_info: gauge_vec(
                &registry,
                "tracer_target_info",
                "A traced program: its executable's name, Go version and container (empty \
                 outside one); always 1.",
                &["executable", "go_version", "container"],
            ),
            kernel: KernelFamilies::register(&registry),
            cost: CostFamilies::register(&registry),
            detector: DetectorFamilies::register(&registry),
            found: FoundFamilies::register(&registry),
            process: ProcessMetrics::register(&registry),
            registry,
            scraped: tokio::sync::Notify::new(),
        }
    }

    /// Starts the series of one traced program.
    pub fn target(&self, target: TargetLabels<'_>, probes: ProbeCounts) -> TargetMetrics {
        let TargetLabels {
            executable,
            go_version,
            container,
        } = target;
        self.targets.inc();
        let info = [executable, go_version, container.unwrap_or("")].map(str::to_owned);
        self.target_info.with_label_values(&info).set(1);
        for class in ProbeClass::ALL {
            self.kernel
                .probes_failed
                .with_label_values(&[executable, class_label(class)])
                .set(probes.failed[class as usize] as i64);
        }
        let mut target = TargetMetrics {
            targets: self.targets.clone(),
            kernel: self.kernel.handles(executable, probes),
            cost: self.cost.handles(executable),
            detector: self.detector.handles(executable),
            found: self.found.handles(executable),
            executable: executable.to_owned(),
            race_sites: HashSet::new(),
            info: (self.target_info.clone(), info),
        };
        target.update(&TargetTotals::default());
        target
    }

    /// The exposition in the Prometheus text format.
    pub fn render(&self) -> String {
        self.process.refresh();
        let mut text = String::new();
        TextEncoder::new()
            .encode_utf8(&self.registry.gather(), &mut text)
            .expect("encoding into a string cannot fail");
        text
    }

    /// A scrape's response has been sent (see [`Metrics::next_scrape`]).
    pub fn scrape_delivered(&self) {
        self.scraped.notify_waiters();
    }

    /// Completes once a scrape's response has been sent after this call.
    pub async fn next_scrape(&self) {
        self.scraped.notified().await;
    }

    /// The content type of [`Metrics::render`]'s output.
    pub fn content_type() -> &'static str {
        prometheus::TEXT_FORMAT
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// What tells a traced program's series apart.
#[derive(Clone, Copy, Debug)]
pub struct TargetLabels<'a> {
    /// The executable's base name (with `#2`… for a second process of it traced at once).
    pub executable: &'a str,
    pub go_version: &'a str,
    /// The container it runs in, if any (`tracer_target_info` only).
    pub container: Option<&'a str>,
}

/// One traced program's metrics.
pub struct TargetMetrics {
    targets: IntGauge,
    kernel: KernelHandles,
    cost: CostHandles,
    detector: DetectorHandles,
    found: FoundHandles,
    executable: String,
    /// The function pairs labelled so far (at most [`MAX_RACE_SITES`]).
    race_sites: HashSet<(String, String)>,
    /// Its `tracer_target_info` series.
    info: (IntGaugeVec, [String; 3]),
}

impl TargetMetrics {
    /// Publishes the session's totals.
    pub fn update(&mut self, totals: &TargetTotals) {
        let mut per_series: HashMap<(&str, &str, &str), u64> = HashMap::new();
        for race in &totals.races {
            let (function, previous) = self.race_labels(race);
            *per_series
                .entry((race.kind, function, previous))
                .or_default() += race.count;
        }
        self.kernel.update(&self.executable, totals);
        self.cost.update(totals);
        self.detector.update(totals);
        self.found.update(&self.executable, totals, per_series);
    }

    /// The process is gone and another may take its label: its `tracer_target_info` series
    /// goes (its counters stay, and the next process of the executable adds to them).
    pub fn retire(&mut self) {
        let (family, labels) = &self.info;
        let labels = labels.each_ref().map(String::as_str);
        // Already gone if another process retired the same labels.
        let _ = family.remove_label_values(&labels);
    }

    /// The labels of a race's function pair: its own if it is labelled already or fewer than
    /// [`MAX_RACE_SITES`] pairs are, `other` otherwise.
    fn race_labels<'r>(&mut self, race: &'r RaceTally) -> (&'r str, &'r str) {
        let key = (race.function.clone(), race.previous_function.clone());
        if self.race_sites.contains(&key)
            || (self.race_sites.len() < MAX_RACE_SITES && self.race_sites.insert(key))
        {
            (&race.function, &race.previous_function)
        } else {
            (OTHER, OTHER)
        }
    }
}

impl Drop for TargetMetrics {
    /// The target is no longer traced; its counters keep their final values.
    fn drop(&mut self) {
        self.targets.dec();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The value of the one series of `name` whose labels include all of `labels`.
    fn value(exposition: &str, name: &str, labels: &[&str]) -> Option<f64> {
        let matching: Vec<f64> = exposition
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.rsplit_once(' '))
            .filter(|(series, _)| {
                series.split('{').next() == Some(name)
                    && labels.iter().all(|label| series.contains(label))
            })
            .map(|(_, value)| value.parse().unwrap())
            .collect();
        assert!(matching.len() <= 1, "{name} {labels:?} is ambiguous");
        matching.first().copied()
    }

    fn race(function: &str, count: u64) -> RaceTally {
        RaceTally {
            kind: "write/write",
            function: function.to_owned(),
            previous_function: "main.other".to_owned(),
            count,
        }
    }

    #[test]
    fn publishes_a_targets_totals() {
        let metrics = Metrics::new();
        let probes = ProbeCounts {
            attached: [19, 7, 5, 300, 12],
            always: [0, 2, 0, 0, 12],
            failed: [0, 0, 0, 2, 0],
        };
        let mut target = metrics.target(server("go1.24.11"), probes);
        let text = metrics.render();
        assert_eq!(value(&text, "tracer_targets", &[]), Some(1.0));
        let info = [r#"executable="server""#, r#"go_version="go1.24.11""#];
        assert_eq!(value(&text, "tracer_target_info", &info), Some(1.0));
        // Before the first window, only the probes that always stay are in place.
        let attached = |text: &str, class: &str| {
            let label = format!(r#"class="{class}""#);
            value(text, "tracer_probes_attached", &[&label])
        };
        assert_eq!(attached(&text, "inline_sync"), Some(0.0));
        assert_eq!(attached(&text, "call"), Some(2.0));
        assert_eq!(attached(&text, "cold_watch"), Some(12.0));
        assert_eq!(value(&text, "tracer_probes_in_place", &[]), Some(0.0));
        let failed = value(&text, "tracer_probes_failed", &[r#"class="inline_sync""#]);
        assert_eq!(failed, Some(2.0));
        for reason in MAP_FATAL_ERRORS {
            let label = format!(r#"reason="{reason}""#);
            let fatal = value(&text, "tracer_target_fatal_errors_total", &[&label]);
            assert_eq!(fatal, Some(0.0), "{reason}");
        }
        assert!(value(&text, "process_resident_memory_bytes", &[]).unwrap() > 0.0);

        let mut totals = TargetTotals {
            events_by_kind: vec![("assign", 10), ("lock", 4)],
            dropped: 3,
            races: vec![race("main.a", 2), race("main.b", 1)],
            fatal_errors: vec![("concurrent map writes".into(), 1), ("boom".into(), 2)],
            lag: Some(Duration::from_millis(15)),
            cost: TracingCost {
                windows: 3,
                traced: Duration::from_millis(1500),
                probes: Duration::from_millis(200),
                tracer_cpu: Duration::from_millis(100),
                target_cpu: Duration::from_secs(2),
                ..TracingCost::default()
            },
            probes_in_place: true,
            ..TargetTotals::default()
        };
        totals.kernel.hits = [100, 0, 0, 7, 3];
        totals.detector.goroutines = 12;
        totals.detector.forgotten_by_gap = 5;
        target.update(&totals);
        // Totals are published as they are, and never go backwards.
        totals.events_by_kind[0].1 = 9;
        target.update(&totals);
        let text = metrics.render();
        let kind = |kind: &str| {
            let label = format!(r#"kind="{kind}""#);
            value(&text, "tracer_events_total", &[&label])
        };
        assert_eq!(kind("assign"), Some(10.0));
        assert_eq!(kind("lock"), Some(4.0));
        assert_eq!(value(&text, "tracer_events_dropped_total", &[]), Some(3.0));
        let map_hits = value(&text, "tracer_probe_hits_total", &[r#"class="map""#]);
        assert_eq!(map_hits, Some(100.0));
        assert_eq!(value(&text, "tracer_goroutines_tracked", &[]), Some(12.0));
        let gap = value(
            &text,
            "tracer_detector_forgotten_accesses_total",
            &[r#"reason="gap""#],
        );
        assert_eq!(gap, Some(5.0));
        assert_eq!(
            value(&text, "tracer_detector_lag_seconds", &[]),
            Some(0.015)
        );
        assert_eq!(attached(&text, "inline_sync"), Some(300.0));
        assert_eq!(value(&text, "tracer_probes_in_place", &[]), Some(1.0));
        assert_eq!(value(&text, "tracer_windows_total", &[]), Some(3.0));
        assert_eq!(value(&text, "tracer_traced_seconds_total", &[]), Some(1.5));
        assert_eq!(value(&text, "tracer_probe_seconds_total", &[]), Some(0.2));
        assert_eq!(value(&text, "tracer_cpu_seconds_total", &[]), Some(0.1));
        assert_eq!(
            value(&text, "tracer_target_cpu_seconds_total", &[]),
            Some(2.0)
        );
        assert_eq!(value(&text, "tracer_distinct_races_total", &[]), Some(2.0));
        let races = value(&text, "tracer_races_total", &[r#"function="main.a""#]);
        assert_eq!(races, Some(2.0));
        let writes = r#"reason="concurrent map writes""#;
        let fatal = |label: &str| value(&text, "tracer_target_fatal_errors_total", &[label]);
        assert_eq!(fatal(writes), Some(1.0));
        assert_eq!(fatal(r#"reason="other""#), Some(2.0));

        drop(target);
        assert_eq!(value(&metrics.render(), "tracer_targets", &[]), Some(0.0));
    }

    fn server(go_version: &str) -> TargetLabels<'_> {
        TargetLabels {
            executable: "server",
            go_version,
            container: None,
        }
    }

    /// The node agent follows a restart under one label: the new process's counts add to the
    /// old one's, and only the running process has a `tracer_target_info` series.
    #[test]
    fn a_label_taken_over_by_a_new_process_goes_on_counting() {
        let metrics = Metrics::new();
        let totals = TargetTotals {
            events_by_kind: vec![("assign", 10)],
            races: vec![race("main.a", 2)],
            cost: TracingCost {
                traced: Duration::from_secs(3),
                ..TracingCost::default()
            },
            ..TargetTotals::default()
        };
        let in_container = TargetLabels {
            container: Some("c0ffee"),
            ..server("go1.27.3")
        };
        let mut first = metrics.target(in_container, ProbeCounts::default());
        first.update(&totals);
        first.retire();
        drop(first);
        let text = metrics.render();
        assert_eq!(value(&text, "tracer_target_info", &[]), None);
        let mut second = metrics.target(server("go1.27.3"), ProbeCounts::default());
        second.update(&TargetTotals {
            events_by_kind: vec![("assign", 4)],
            ..totals.clone()
        });
        let text = metrics.render();
        let assign = value(&text, "tracer_events_total", &[r#"kind="assign""#]);
        assert_eq!(assign, Some(14.0));
        assert_eq!(value(&text, "tracer_distinct_races_total", &[]), Some(2.0));
        let races = value(&text, "tracer_races_total", &[r#"function="main.a""#]);
        assert_eq!(races, Some(4.0));
        assert_eq!(value(&text, "tracer_traced_seconds_total", &[]), Some(6.0));
        let info = value(&text, "tracer_target_info", &[r#"container="""#]);
        assert_eq!(info, Some(1.0));
    }

    #[test]
    fn race_sites_beyond_the_cap_share_one_series() {
        let metrics = Metrics::new();
        let mut target = metrics.target(server("go1.27.3"), ProbeCounts::default());
        let races: Vec<RaceTally> = (0..MAX_RACE_SITES + 10)
            .map(|index| race(&format!("main.f{index}"), 1))
            .collect();
        target.update(&TargetTotals {
            races,
            ..TargetTotals::default()
        });
        let text = metrics.render();
        let series = text
            .lines()
            .filter(|line| line.starts_with("tracer_races_total{"))
            .count();
        assert_eq!(series, MAX_RACE_SITES + 1);
        let other = value(&text, "tracer_races_total", &[r#"function="other""#]);
        assert_eq!(other, Some(10.0));
        let first = value(&text, "tracer_races_total", &[r#"function="main.f0""#]);
        assert_eq!(first, Some(1.0));
    }

    #[test]
    fn every_metric_has_help_and_counters_end_in_total() {
        let metrics = Metrics::new();
        let _target = metrics.target(server("go1.27.3"), ProbeCounts::default());
        for family in metrics.registry.gather() {
            assert!(!family.help().is_empty(), "{} has no help", family.name());
            assert!(family.name().starts_with("tracer_") || family.name().starts_with("process_"));
            let is_counter = family.get_field_type() == prometheus::proto::MetricType::COUNTER;
            assert_eq!(
                is_counter,
                family.name().ends_with("_total"),
                "{}",
                family.name()
            );
        }
    }

    /// docs/metrics.md, the catalogue users read.
    const CATALOGUE: &str = include_str!("../../../docs/metrics.md");

    #[test]
    fn the_documented_catalogue_is_what_is_exported() {
        let metrics = Metrics::new();
        let mut target = metrics.target(server("go1.27.3"), ProbeCounts::default());
        // Families appear with their first series: an event and a race.
        target.update(&TargetTotals {
            events_by_kind: vec![("assign", 1)],
            races: vec![race("main.f", 1)],
            ..TargetTotals::default()
        });
        let exported: BTreeSet<String> = metrics
            .registry
            .gather()
            .iter()
            .map(|family| family.name().to_owned())
            .filter(|name| name.starts_with("tracer_"))
            .collect();
        let documented: BTreeSet<String> = CATALOGUE
            .lines()
            .filter_map(|line| line.strip_prefix("| `tracer_"))
            .filter_map(|rest| rest.split('`').next())
            .map(|name| format!("tracer_{name}"))
            .collect();
        assert_eq!(documented, exported);
        // The event kinds: exactly the operations tracer names.
        let row = CATALOGUE
            .lines()
            .find(|line| line.starts_with("| `tracer_events_total`"))
            .expect("tracer_events_total is documented");
        let kinds: BTreeSet<&str> = row
            .rsplit(": ")
            .next()
            .unwrap_or_default()
            .split('`')
            .skip(1)
            .step_by(2)
            .collect();
        let named: BTreeSet<&str> = tracer_common::EventKind::ALL
            .iter()
            .map(|kind| kind.name())
            .collect();
        assert_eq!(kinds, named);
    }
}

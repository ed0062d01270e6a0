//! The shipped Grafana dashboard is checked without a Grafana server (none can run here): its
//! JSON model, variables, datasources and units, every expression parsed as PromQL, and every
//! metric it names exported by tracer. `metrics.rs` then runs every expression against a real
//! Prometheus.

mod common;

use std::collections::BTreeSet;

use common::dashboard;
use tracer::{
    detect::pipeline::RaceTally,
    metrics::{Metrics, ProbeCounts, TargetLabels, TargetTotals},
};

/// The metric families tracer exports (with one target that raced, so every per-target series
/// exists).
fn exported_metrics() -> BTreeSet<String> {
    let metrics = Metrics::new();
    let mut target = metrics.target(
        TargetLabels {
            executable: "server",
            go_version: "go1.27.3",
            container: None,
        },
        ProbeCounts::default(),
    );
    target.update(&TargetTotals {
        races: vec![RaceTally {
            kind: "write/write",
            function: "main.a".into(),
            previous_function: "main.b".into(),
            count: 1,
        }],
        events_by_kind: vec![("assign", 1)],
        ..TargetTotals::default()
    });
    metrics
        .render()
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_model_has_the_variables_grafana_needs() {
    let dashboard = dashboard::load();
    assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 39);
    assert!(dashboard["uid"].as_str().is_some_and(|uid| !uid.is_empty()));
    assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    let variable = |name: &str| {
        variables
            .iter()
            .find(|variable| variable["name"] == name)
            .unwrap_or_else(|| panic!("no {name} variable"))
    };
    let datasource = variable("datasource");
    assert_eq!(datasource["type"], "datasource");
    assert_eq!(datasource["query"], "prometheus");
    for name in ["job", "instance"] {
        let variable = variable(name);
        assert_eq!(variable["type"], "query", "{name}");
        assert_eq!(variable["datasource"]["uid"], "${datasource}", "{name}");
        let query = variable["query"]
            .as_str()
            .or_else(|| variable["query"]["query"].as_str())
            .unwrap_or_else(|| panic!("{name} has no query"));
        assert!(query.starts_with("label_values("), "{name}: {query}");
        assert_eq!(variable["includeAll"], true, "{name}");
    }
}

#[test]
fn every_panel_uses_the_datasource_variable_and_sets_a_unit() {
    let dashboard = dashboard::load();
    let panels = dashboard::panels(&dashboard);
    let mut ids = BTreeSet::new();
    for panel in panels.iter().filter(|panel| panel["type"] != "row") {
        let title = panel["title"].as_str().unwrap();
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "{title}: id reused"
        );
        assert!(
            panel["gridPos"]["w"].as_u64().is_some(),
            "{title}: no gridPos"
        );
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let unit = &panel["fieldConfig"]["defaults"]["unit"];
        assert!(
            unit.as_str().is_some_and(|unit| !unit.is_empty()),
            "{title}: no unit"
        );
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}: no query");
        for target in targets {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{title}");
        }
    }
    assert!(ids.len() >= 10, "only {} panels", ids.len());
}

#[test]
fn every_expression_parses_filters_and_names_exported_metrics() {
    let dashboard = dashboard::load();
    let exported = exported_metrics();
    let mut used = BTreeSet::new();
    for (title, expression) in dashboard::expressions(&dashboard) {
        let concrete = dashboard::substitute(&expression);
        if let Err(error) = promql_parser::parser::parse(&concrete) {
            panic!("{title}: {concrete:?} does not parse: {error}");
        }
        if expression.contains("rate(") || expression.contains("increase(") {
            assert!(
                expression.contains("[$__rate_interval]"),
                "{title}: rates use $__rate_interval: {expression}"
            );
        }
        let names = dashboard::metric_names(&expression);
        assert!(!names.is_empty(), "{title}: {expression}");
        // Every selector is filtered by the dashboard's job and instance.
        let selectors = expression.matches('{').count();
        assert_eq!(
            expression.matches(r#"job=~"$job""#).count(),
            selectors,
            "{title}: {expression}"
        );
        assert_eq!(
            expression.matches(r#"instance=~"$instance""#).count(),
            selectors,
            "{title}: {expression}"
        );
        for name in names {
            assert!(exported.contains(&name), "{title}: {name} is not exported");
            used.insert(name);
        }
    }
    // The dashboard shows every tracer_ metric, so nothing exported is invisible.
    let unused: Vec<&String> = exported
        .iter()
        .filter(|name| name.starts_with("tracer_") && !used.contains(*name))
        .collect();
    assert!(unused.is_empty(), "not on the dashboard: {unused:?}");
}

#[test]
fn the_substitution_and_name_extraction_behave() {
    assert_eq!(
        dashboard::substitute(r#"rate(x{job=~"$job"}[$__rate_interval])"#),
        r#"rate(x{job=~".*"}[4s])"#
    );
    assert_eq!(
        dashboard::metric_names(r#"sum(tracer_a{l="tracer_b"}) / process_c"#),
        ["tracer_a", "process_c"]
    );
}

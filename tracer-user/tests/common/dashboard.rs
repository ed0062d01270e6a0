//! The shipped Grafana dashboard (dashboards/tracer.json) as the tests see it: every query
//! expression, with Grafana's variables replaced the way Grafana would before sending it to
//! Prometheus.

use serde_json::Value;

use super::repository;

pub fn load() -> Value {
    let path = repository().join("dashboards/tracer.json");
    let text = std::fs::read_to_string(&path).expect("dashboards/tracer.json exists");
    serde_json::from_str(&text).expect("dashboards/tracer.json is valid JSON")
}

/// Every panel, rows' nested panels included.
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().expect("a panels array") {
        all.push(panel);
        if let Some(nested) = panel["panels"].as_array() {
            all.extend(nested);
        }
    }
    all
}

/// (panel title, expression) of every query target.
pub fn expressions(dashboard: &Value) -> Vec<(String, String)> {
    panels(dashboard)
        .into_iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap_or("").to_owned();
            panel["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(move |target| {
                    Some((title.clone(), target["expr"].as_str()?.to_owned()))
                })
        })
        .collect()
}

/// What Grafana substitutes for its variables with "All" selected and a 1 s scrape interval:
/// multi-value variables become a match-everything regex, `$__rate_interval` four scrape
/// intervals.
pub fn substitute(expression: &str) -> String {
    let mut text = expression.to_owned();
    for (variable, value) in [
        ("__rate_interval", "4s"),
        ("__interval", "1s"),
        ("__range", "1m"),
        ("job", ".*"),
        ("instance", ".*"),
        ("executable", ".*"),
    ] {
        text = text
            .replace(&format!("${{{variable}}}"), value)
            .replace(&format!("${variable}"), value);
    }
    assert!(
        !text.contains('$'),
        "an unknown Grafana variable in {expression:?}"
    );
    text
}

/// The metric names an expression uses (tracer's and the standard `process_` ones).
pub fn metric_names(expression: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expression.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        let is_name = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
        if is_name(bytes[start]) && (start == 0 || !is_name(bytes[start - 1])) {
            let end = (start..bytes.len())
                .find(|&i| !is_name(bytes[i]))
                .unwrap_or(bytes.len());
            let word = &expression[start..end];
            let inside_quotes = expression[..start].matches('"').count() % 2 == 1;
            if !inside_quotes && (word.starts_with("tracer_") || word.starts_with("process_")) {
                names.push(word.to_owned());
            }
            start = end;
        } else {
            start += 1;
        }
    }
    names
}

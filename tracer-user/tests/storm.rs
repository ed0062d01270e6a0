//! An event storm that overflows the kernel's ring buffer (made small with `--buffer-size`):
//! the drops are counted in the summary and the metrics, the detector invents no race from the
//! holes in a correctly synchronised burst, and once the storm is over tracer keeps up again
//! and finds a real race.

mod common;

use std::{
    io::{BufRead as _, BufReader, Write as _},
    net::SocketAddr,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::*;

const TIMEOUT: Duration = Duration::from_secs(120);

/// The value of an unlabelled counter in a Prometheus text exposition.
fn counter(exposition: &str, name: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let (series, value) = line.split_once(' ')?;
        let bare = series.split('{').next()?;
        (bare == name).then(|| value.trim().parse().ok()).flatten()
    })
}

/// The drop count of one `--stats-interval` progress line.
fn dropped_in_progress(line: &str) -> Option<u64> {
    line.strip_suffix(" dropped")?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

#[test]
fn a_storm_is_counted_invents_no_race_and_tracing_recovers() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let binary = build_fixture(&go("1.26.6"), "storm", dir.path(), &[]);
    let reports = dir.path().join("races.jsonl");
    let mut run = tracer()
        .args(["run", "--buffer-size", "64K", "--stats-interval", "100ms"])
        .args([
            "--metrics-addr",
            "127.0.0.1:0",
            "--format",
            "json",
            "--output",
        ])
        .arg(&reports)
        .arg("--")
        .arg(&binary)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr_lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let collector = {
        let lines = Arc::clone(&stderr_lines);
        let stderr = BufReader::new(run.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        })
    };
    let mut stdout = BufReader::new(run.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "storm done");

    // Recovered: the drop count stays the same over five progress lines (half a second).
    let progress = || -> Vec<u64> {
        stderr_lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| dropped_in_progress(line))
            .collect()
    };
    wait_for("the drops to stop", TIMEOUT, || {
        let counts = progress();
        counts.len() >= 5 && counts[counts.len() - 5..].windows(2).all(|w| w[0] == w[1])
    });
    let dropped = *progress().last().unwrap();
    assert!(dropped > 0, "the storm did not overflow the buffer");

    let metrics: SocketAddr = stderr_lines
        .lock()
        .unwrap()
        .iter()
        .find_map(|line| announced_metrics_address(line))
        .expect("the metrics address");
    wait_for("the metrics to count the drops", TIMEOUT, || {
        let (_, exposition) = http_get(metrics, "/metrics").unwrap();
        counter(&exposition, "tracer_events_dropped_total") == Some(dropped as f64)
    });

    writeln!(run.stdin.as_mut().unwrap(), "go").unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "race done");
    drop(run.stdin.take());
    let status = wait_with_timeout(run, "the traced program to end", TIMEOUT).status;
    collector.join().unwrap();
    let stderr = stderr_lines.lock().unwrap().join("\n");
    assert_eq!(status.code(), Some(66), "{stderr}");
    assert_eq!(dropped_in_summary(&stderr), dropped, "{stderr}");

    // One race, the deliberate one: nothing from the storm's holes.
    let races = race_reports(&reports);
    assert_eq!(races.len(), 1, "{races:#?}");
    let source =
        std::fs::read_to_string(repository().join("tracer-user/tests/fixtures/storm/main.go"))
            .unwrap();
    let marked: Vec<u64> = (1..)
        .zip(source.lines())
        .filter(|(_, text)| text.ends_with("// race"))
        .map(|(number, _)| number)
        .collect();
    // Each access's first frame in the fixture (the innermost are the runtime's).
    let mut lines: Vec<u64> = ["current", "previous"]
        .iter()
        .map(|access| {
            let frames = races[0][access]["stack"].as_array().unwrap();
            let frame = frames
                .iter()
                .find(|frame| frame["file"].as_str().unwrap().ends_with("storm/main.go"))
                .unwrap();
            frame["line"].as_u64().unwrap()
        })
        .collect();
    lines.sort();
    assert_eq!(lines, marked, "{:#}", races[0]);
}

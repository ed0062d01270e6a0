//! Sampling windows on a busy, correctly synchronised workload with one repeated race
//! (fixtures/sampled): the probes really are removed between windows, each window is analysed
//! on its own so no false race comes from the gaps, the repeated race is still found, and the
//! recording replays to the same reports. Under an overhead budget the probes come and go too.

mod common;

use std::{path::Path, process::Output};

use common::*;
use serde_json::Value;

/// Runs the fixture for `seconds` under `tracer run` with `controls`; returns tracer's output,
/// the race reports and the recording.
fn traced(binary: &Path, dir: &Path, controls: &[&str], seconds: u32) -> (Output, Vec<Value>) {
    let reports = dir.join("races.jsonl");
    let output = tracer()
        .arg("run")
        .args(controls)
        .args(["--format", "json", "--output"])
        .arg(&reports)
        .arg("--events")
        .arg(dir.join("events.jsonl"))
        .arg("--")
        .arg(binary)
        .arg(format!("{seconds}s"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        matches!(output.status.code(), Some(0 | 66)),
        "tracer failed: {stderr}"
    );
    (output, race_reports(&reports))
}

/// The windows tracer reports in its summary: "(N windows)".
fn windows(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|line| line.starts_with("tracer: probes in place"))
        .unwrap_or_else(|| panic!("no sampling line in {stderr}"));
    line.split(", ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no window count in {line}"))
}

#[test]
fn sampling_windows_invent_no_race_and_still_find_a_repeated_one() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let binary = build_fixture(&go("1.26.6"), "sampled", dir.path(), &[]);
    let (output, races) = traced(&binary, dir.path(), &["--sample", "100ms/600ms"], 4);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(windows(&stderr) >= 4, "{stderr}");
    // While a window's probes are placed or removed they still trap, but record nothing.
    let edge_hits: u64 = stderr
        .split(" hits while windows opened or closed not recorded")
        .next()
        .and_then(|before| before.rsplit(' ').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no count of hits at window edges in {stderr}"));
    assert!(edge_hits > 0, "{stderr}");

    // Only the racers' race: nothing from the windows' edges in the synchronised workload.
    assert_eq!(races.len(), 1, "{races:#?}");
    assert!(
        race_functions(&races[0]).iter().any(|f| f == "main.racer"),
        "{:#?}",
        races[0]
    );

    // Between windows the probes are gone: the recording has pauses without any event, as
    // long as the pause less the time the probes take to go.
    let recording = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    let lines: Vec<Value> = recording
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let mut stamps: Vec<u64> = lines
        .iter()
        .filter(|line| line["op"].is_string())
        .map(|line| line["ts"].as_u64().unwrap())
        .collect();
    stamps.sort_unstable();
    let silences = stamps
        .windows(2)
        .filter(|pair| pair[1] - pair[0] > 250_000_000)
        .count();
    assert!(silences >= 3, "{silences} silences of 250 ms or more");
    // Each window is announced, its end too.
    let marks = |kind: &str| lines.iter().filter(|line| line["type"] == kind).count();
    assert!(marks("analysed-from") >= 3, "window starts");
    assert!(marks("analysed-until") >= 3, "window ends");

    // Replay moves the window as the live run did: the same report.
    let replayed = dir.path().join("replayed.jsonl");
    let status = tracer()
        .args(["replay", "--format", "json", "--output"])
        .arg(&replayed)
        .arg(dir.path().join("events.jsonl"))
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(66));
    replay_agrees(&dir.path().join("races.jsonl"), &replayed, "1.26.6");
}

#[test]
fn an_overhead_budget_removes_the_probes_of_a_busy_target() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let binary = build_fixture(&go("1.26.6"), "sampled", dir.path(), &[]);
    let (output, races) = traced(&binary, dir.path(), &["--overhead-budget", "20%"], 4);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Fully traced, this workload spends most of its time in probes: the budget removes them
    // for most of the run (what that saves is measured by `cargo xtask bench`).
    let sampling_line = stderr
        .lines()
        .find(|line| line.starts_with("tracer: probes in place"))
        .unwrap();
    assert!(windows(&stderr) >= 1, "{sampling_line}");
    assert!(sampling_line.contains("estimated cost"), "{sampling_line}");
    let share: f64 = sampling_line
        .split(" (")
        .nth(1)
        .and_then(|rest| rest.split('%').next())
        .and_then(|share| share.parse().ok())
        .unwrap();
    assert!(share < 50.0, "{sampling_line}");
    for race in &races {
        assert!(
            race_functions(race).iter().any(|f| f == "main.racer"),
            "a false report: {race:#?}"
        );
    }
}

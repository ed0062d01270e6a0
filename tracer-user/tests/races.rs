//! Race reports end to end: the demo service (examples/demo) has exactly one unsynchronised map,
//! `lastReset`, written by its janitor goroutine and by the /admin/reset handler; every other map
//! it uses — and net/http's own — is properly synchronised. On every supported Go version tracer
//! must report that race, with both stacks, and nothing else, and exit with status 66; and
//! `tracer replay` of the run's recording must report exactly the same. The same holds when
//! tracer attaches to the demo while it serves (its probes are placed while every goroutine
//! runs, midway through its operations).

mod common;

use std::{
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use common::*;
use serde_json::Value;

/// The first non-runtime function of an access's stack.
fn first_user_function(access: &Value) -> String {
    access["stack"]
        .as_array()
        .unwrap()
        .iter()
        .map(|frame| frame["function"].as_str().unwrap())
        .find(|function| !function.starts_with("runtime."))
        .unwrap_or_default()
        .to_owned()
}

/// One traced demo at a time: two at once on a two-core machine starve tracer's consumer and
/// the kernel drops events (which the detector survives, but this test asserts none are lost).
const TIMEOUT: Duration = Duration::from_secs(60);

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn demo_race_is_reported(version: &str) {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let demo = build_demo(version, dir.path());
    let reports = dir.path().join("races.jsonl");
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let recording = dir.path().join("events.jsonl");
    let graphs = dir.path().join("graphs");
    // Traced all the time, the demo produces events faster than tracer's share of two cores
    // analyses them: a buffer that holds the whole run keeps this test about detection (drops
    // are storm.rs's subject).
    let output = tracer()
        .args([
            "run",
            "--buffer-size",
            "128M",
            "--format",
            "json",
            "--output",
        ])
        .arg(&reports)
        .arg("--events")
        .arg(&recording)
        .arg("--dot-dir")
        .arg(&graphs)
        .arg(&demo)
        .args(["-duration", "1500ms"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(66), "go{version}: {stderr}");
    assert_eq!(dropped_in_summary(&stderr), 0, "go{version}: {stderr}");
    let racy_map = stderr
        .split("lastReset ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("go{version}: the demo did not print lastReset: {stderr}"));
    let races = race_reports(&reports);
    assert_eq!(races.len(), 1, "go{version}: {races:#?}");
    let race = &races[0];
    assert_eq!(race["type"], "race");
    // What a report may say: code sites, goroutines, the map's address — never a key, a value
    // or memory contents (docs/security.md).
    let fields = |value: &Value| -> Vec<String> {
        let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(
        fields(race),
        [
            "current",
            "executable",
            "found_after",
            "found_at",
            "id",
            "kind",
            "map",
            "pid",
            "previous",
            "type"
        ]
    );
    for access in [&race["current"], &race["previous"]] {
        let mut present = fields(access);
        // The creation stack, or the note that the `go` statement was not seen.
        let creation = |field: &String| field == "created_at" || field == "creation_unseen";
        assert_eq!(
            present.iter().filter(|field| creation(field)).count(),
            1,
            "go{version}: {access}"
        );
        present.retain(|field| !creation(field));
        assert_eq!(present, ["goroutine", "op", "stack"]);
        for frame in access["stack"].as_array().unwrap() {
            assert_eq!(fields(frame), ["file", "function", "line"]);
        }
    }
    assert_eq!(race["map"], racy_map, "go{version}: {race}");
    assert_eq!(race["kind"], "write/write", "go{version}: {race}");
    assert_eq!(
        racing_functions(race),
        ["main.(*service).janitor", "main.(*service).reset"],
        "go{version}: {race}"
    );
    assert_ne!(race["current"]["goroutine"], race["previous"]["goroutine"]);
    // The janitor was started by `go s.janitor(stop)` in main.main.
    let janitor = [&race["current"], &race["previous"]]
        .into_iter()
        .find(|access| first_user_function(access) == "main.(*service).janitor")
        .unwrap();
    let creator = janitor["created_at"]
        .as_array()
        .unwrap_or_else(|| panic!("go{version}: no creation stack: {race}"))
        .iter()
        .find(|frame| frame["function"] == "main.main")
        .unwrap_or_else(|| panic!("go{version}: not created in main.main: {race}"));
    assert!(
        creator["file"]
            .as_str()
            .unwrap()
            .ends_with("examples/demo/main.go"),
        "{creator}"
    );

    // One graph, which Graphviz renders: both goroutines, both racing lines, the missing edge.
    let graph = std::fs::read_to_string(graphs.join("race-1.dot")).unwrap();
    assert_eq!(std::fs::read_dir(&graphs).unwrap().count(), 1);
    for needle in [
        "write at main.(*service).janitor\\nmain.go:95",
        "write at main.(*service).reset\\nmain.go:73",
        "style=dashed",
        &format!("goroutine {}", race["current"]["goroutine"]),
        &format!("goroutine {}", race["previous"]["goroutine"]),
    ] {
        assert!(
            graph.contains(needle),
            "go{version}: {needle} not in {graph}"
        );
    }
    let rendered = Command::new("dot")
        .args(["-Tsvg", "-o"])
        .arg(dir.path().join("race-1.svg"))
        .arg(graphs.join("race-1.dot"))
        .output()
        .unwrap();
    assert!(
        rendered.status.success() && rendered.stderr.is_empty(),
        "go{version}: dot: {}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let svg = std::fs::read_to_string(dir.path().join("race-1.svg")).unwrap();
    assert!(svg.contains("no happens&#45;before edge: race"), "{svg}");

    // Every step of the live graph names its function and line.
    let steps = graph
        .lines()
        .filter(|line| line.contains("[label=") && !line.contains("color=red"));
    for step in steps {
        assert!(
            step.matches("\\n").count() >= 2,
            "go{version}: no location in {step}"
        );
    }
    // Replaying the recording finds the same race and draws the same graph, byte for byte but
    // for the steps' lines (a recording has no executable to read them from).
    let replayed = dir.path().join("replayed.jsonl");
    let replayed_graphs = dir.path().join("replayed-graphs");
    let output = tracer()
        .args(["replay", "--format", "json", "--output"])
        .arg(&replayed)
        .arg("--dot-dir")
        .arg(&replayed_graphs)
        .arg(&recording)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(66),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    replay_agrees(&reports, &replayed, version);
    assert_eq!(
        std::fs::read_to_string(replayed_graphs.join("race-1.dot")).unwrap(),
        without_step_locations(&graph),
        "go{version}: the replayed graph differs"
    );
}

mod demo_race_is_reported {
    crate::test_each_go_version!(super::demo_race_is_reported);
}

/// The two racing functions of a report, sorted.
fn racing_functions(race: &Value) -> [String; 2] {
    let mut sides = [
        first_user_function(&race["current"]),
        first_user_function(&race["previous"]),
    ];
    sides.sort();
    sides
}

fn attached_demo_race_is_the_only_report(version: &str) {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let binary = build_demo(version, dir.path());
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut demo = Command::new(&binary)
        .args(["-duration", "10m", "-clients", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // "demo: maps: … lastReset 0x… (no lock: racy)" once it serves.
    let mut demo_log = BufReader::new(demo.stderr.take().unwrap());
    let racy_map = loop {
        let mut line = String::new();
        assert!(demo_log.read_line(&mut line).unwrap() > 0, "the demo ended");
        if let Some(rest) = line.split("lastReset ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let reports = dir.path().join("races.jsonl");
    let recording = dir.path().join("events.jsonl");
    // As in demo_race_is_reported: a buffer that holds the whole run. No duration: the race
    // must be reported while tracer is still attached, then Ctrl-C ends the session.
    let mut tracing = tracer()
        .args(["attach", "--buffer-size", "128M"])
        .args(["--format", "json", "--output"])
        .arg(&reports)
        .arg("--events")
        .arg(&recording)
        .args(["--pid", &demo.id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the live race report", TIMEOUT, || {
        line_count(&reports) > 0 || tracing.try_wait().unwrap().is_some()
    });
    assert!(
        tracing.try_wait().unwrap().is_none(),
        "go{version}: tracer stopped before reporting"
    );
    let live = race_reports(&reports);
    assert_eq!(live.len(), 1, "go{version}: {live:#?}");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(tracing.id() as i32, libc::SIGINT) };
    let output = wait_with_timeout(tracing, "tracer to stop after Ctrl-C", TIMEOUT);
    let _ = demo.kill();
    let _ = demo.wait();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(66), "go{version}: {stderr}");
    assert_eq!(dropped_in_summary(&stderr), 0, "go{version}: {stderr}");
    let races = race_reports(&reports);
    assert_eq!(races.len(), 1, "go{version}: {races:#?}");
    assert_eq!(races[0]["map"], racy_map.as_str(), "go{version}");
    assert_eq!(
        racing_functions(&races[0]),
        ["main.(*service).janitor", "main.(*service).reset"],
        "go{version}"
    );
    // The recording says from when the stream is complete, so replay agrees.
    let replayed = dir.path().join("replayed.jsonl");
    let output = tracer()
        .args(["replay", "--format", "json", "--output"])
        .arg(&replayed)
        .arg(&recording)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(66), "go{version}");
    replay_agrees(&reports, &replayed, version);
}

mod attached_demo_race_is_the_only_report {
    crate::test_each_go_version!(super::attached_demo_race_is_the_only_report);
}

/// With the settings a user gets by default (an overhead budget of 10%), the demo at its usual
/// pace — what `cargo xtask demo` runs — reports its race while it runs, every time.
#[test]
fn the_demo_reports_its_race_live_under_the_default_budget() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let binary = build_demo("1.26.6", dir.path());
    let _alone = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for run in 1..=3 {
        let reports = dir.path().join(format!("races-{run}.jsonl"));
        let output = tracer()
            .env_remove("TRACER_OVERHEAD_BUDGET")
            .args(["run", "--format", "json", "--output"])
            .arg(&reports)
            .arg("--")
            .arg(&binary)
            .args(["-duration", "20s", "-rps", "200"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(66), "run {run}: {stderr}");
        assert!(
            stderr.contains("tracer: probes in place") && !stderr.contains("(100.0%, 1 window)"),
            "run {run}: not sampled: {stderr}"
        );
        let races = race_reports(&reports);
        assert_eq!(
            racing_functions(&races[0]),
            ["main.(*service).janitor", "main.(*service).reset"],
            "run {run}"
        );
        // Reported while the demo ran, not at its end.
        let found_after = races[0]["found_after"].as_f64().unwrap();
        assert!(found_after < 20.0, "run {run}: found after {found_after} s");
    }
}

/// A race graph with its steps' "function / file:line" lines taken out of their labels (the
/// racing accesses, drawn in red, keep theirs).
fn without_step_locations(graph: &str) -> String {
    graph
        .lines()
        .map(|line| {
            if line.contains("color=red") {
                return line.to_owned();
            }
            let Some((head, label)) = line.split_once("[label=\"") else {
                return line.to_owned();
            };
            let (text, tail) = label.split_once('"').unwrap_or((label, ""));
            let (what, rest) = text.split_once("\\n").unwrap_or((text, ""));
            // The location is "function\nfile:line", then maybe " (×N)".
            let count = rest.find(" (×").map_or("", |at| &rest[at..]);
            format!("{head}[label=\"{what}{count}\"{tail}")
        })
        .map(|line| line + "\n")
        .collect()
}

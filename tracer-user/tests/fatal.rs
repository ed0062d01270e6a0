//! Fatal crash capture: when the Go runtime kills the target with `fatal error: concurrent map
//! writes` it prints the goroutine that noticed; tracer must report the race with both sides'
//! stacks, and the runtime's message, before it exits (with status 66).

mod common;

use common::*;
use serde_json::Value;

/// The line of the fixture that ends with `marker`.
fn fixture_line(marker: &str) -> u64 {
    let source = repository().join("tracer-user/tests/fixtures/fatalmap/main.go");
    let source = std::fs::read_to_string(source).unwrap();
    (1..)
        .zip(source.lines())
        .find(|(_, line)| line.ends_with(marker))
        .map(|(number, _)| number)
        .unwrap()
}

/// The line of the fixture's racing write.
fn racing_line() -> u64 {
    fixture_line("// the racing write")
}

fn writes_line(access: &Value, line: u64) -> bool {
    access["stack"].as_array().unwrap().iter().any(|frame| {
        frame["function"] == "main.writer"
            && frame["line"] == line
            && frame["file"]
                .as_str()
                .unwrap()
                .ends_with("fatalmap/main.go")
    })
}

/// Runs the fixture (with `arguments`) under `tracer run OPTIONS --format json --output FILE`;
/// returns tracer's exit status, its standard error and the JSON records written.
fn traced(
    version: &str,
    options: &[&str],
    arguments: &[&str],
) -> (Option<i32>, String, Vec<Value>) {
    require_root();
    let binary = built_fixture("fatalmap", version, Variant::Default);
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports.jsonl");
    let output = tracer()
        .arg("run")
        .args(options)
        .args(["--format", "json", "--output"])
        .arg(&reports)
        .arg("--")
        .arg(&binary)
        .args(arguments)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr, json_lines(&reports))
}

/// [`traced`], until the runtime kills the fixture; checks that the runtime noticed the race
/// and that tracer names the fatal error.
fn crash_under_tracer(
    version: &str,
    options: &[&str],
    arguments: &[&str],
) -> (Option<i32>, String, Vec<Value>) {
    let (status, stderr, records) = traced(version, options, arguments);
    // The program's own output (inherited) shows the runtime's verdict.
    assert!(
        stderr.contains("fatal error: concurrent map writes"),
        "go{version}: the runtime did not detect the race: {stderr}"
    );
    assert!(
        stderr.contains("raised fatal error: concurrent map writes"),
        "go{version}: {stderr}"
    );
    (status, stderr, records)
}

fn the_crash_is_reported_with_both_sides(version: &str) {
    let (status, stderr, records) = crash_under_tracer(version, &[], &[]);
    assert_eq!(status, Some(66), "go{version}: {stderr}");
    let line = racing_line();
    let races: Vec<&Value> = records
        .iter()
        .filter(|record| record["type"] == "race")
        .collect();
    let race = races
        .iter()
        .find(|race| race["kind"] == "write/write")
        .unwrap_or_else(|| panic!("go{version}: no write/write race: {races:#?}"));
    assert!(writes_line(&race["current"], line), "go{version}: {race}");
    assert!(writes_line(&race["previous"], line), "go{version}: {race}");
    assert_ne!(race["current"]["goroutine"], race["previous"]["goroutine"]);
}

mod the_crash_is_reported_with_both_sides {
    crate::test_each_go_version!(super::the_crash_is_reported_with_both_sides);
}

/// The crash comes while sampling has the probes paused (a 10 ms window, then a minute without
/// probes): the fatal probes stay in place, so the crash is still reported, with the stack of
/// the goroutine that noticed it.
fn the_crash_is_reported_while_the_probes_are_paused(version: &str) {
    let (_, stderr, records) = crash_under_tracer(version, &["--sample", "10ms/60s"], &["500ms"]);
    let crash = records
        .iter()
        .find(|record| record["type"] == "fatal")
        .unwrap_or_else(|| panic!("go{version}: no fatal record: {records:#?}\n{stderr}"));
    assert_eq!(crash["message"], "concurrent map writes", "go{version}");
    assert!(writes_line(crash, racing_line()), "go{version}: {crash}");
    // Written as found, before the summary that closes the file.
    let summary = records.last().unwrap();
    assert_eq!(summary["type"], "summary", "go{version}");
    assert_eq!(
        summary["fatal_errors"][0]["message"], "concurrent map writes",
        "go{version}: {summary}"
    );
    assert!(
        summary["traced"].as_f64().unwrap() < 0.5,
        "go{version}: the probes were not paused when the crash came: {summary}"
    );
}

mod the_crash_is_reported_while_the_probes_are_paused {
    crate::test_each_go_version!(super::the_crash_is_reported_while_the_probes_are_paused);
}

/// The line of the fixture's racing clone.
fn cloning_line() -> u64 {
    fixture_line("// the racing clone")
}

/// `maps.Clone` reads the whole map inside the runtime, which kills the process with "concurrent
/// map clone and map write" when it notices a write meanwhile (`go build -race` reports nothing
/// there): tracer reports the clone and the write it raced with, whether or not the runtime
/// noticed.
fn a_clone_racing_a_write_is_reported(version: &str) {
    let (status, stderr, records) = traced(version, &["--overhead-budget", "off"], &["clone"]);
    assert_eq!(status, Some(66), "go{version}: {stderr}");
    let clones = |access: &Value| {
        access["stack"]
            .as_array()
            .unwrap()
            .iter()
            .any(|frame| frame["function"] == "main.cloner" && frame["line"] == cloning_line())
    };
    let races: Vec<&Value> = records
        .iter()
        .filter(|record| record["type"] == "race")
        .collect();
    let race = races
        .iter()
        .find(|race| {
            (clones(&race["current"]) && writes_line(&race["previous"], racing_line()))
                || (clones(&race["previous"]) && writes_line(&race["current"], racing_line()))
        })
        .unwrap_or_else(|| panic!("go{version}: no race of the clone and the write: {races:#?}"));
    assert!(
        matches!(race["kind"].as_str(), Some("write/read" | "read/write")),
        "go{version}: {race}"
    );
}

mod a_clone_racing_a_write_is_reported {
    crate::test_each_go_version!(super::a_clone_racing_a_write_is_reported);
}

//! The cold-code watch under a budget (fixtures/coldcode), on its own: its busy fixture keeps
//! both CPUs of a small machine busy, which would starve the timing of the other sampling
//! tests if it ran beside them (the test binaries run one after another).

mod common;

use common::*;

/// Under a budget, the cold-code watch (see docs/how-it-works.md) learns that the reloader's map
/// call runs every 300 ms, stops watching the busy goroutines' call (a thousand hits a second),
/// and times windows to open just before a reload: the reloader's race is found, with nothing
/// else reported.
#[test]
fn windows_are_timed_for_code_that_runs_at_a_steady_rhythm() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let binary = build_fixture(&go("1.26.6"), "coldcode", dir.path(), &[]);
    let reports = dir.path().join("races.jsonl");
    let output = tracer()
        .args([
            "run",
            "--overhead-budget",
            "10%",
            "--format",
            "json",
            "--output",
        ])
        .arg(&reports)
        .arg("--")
        .arg(&binary)
        // Room for more than one window after the first: the fixture's busy loops make each
        // window cost about a second of CPU, and in 10 s the window timed for the reload
        // sometimes never opened (one CI run had a single window in 10 s).
        .arg("20s")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(66), "{stderr}");
    let watch = stderr
        .lines()
        .find(|line| line.starts_with("tracer: cold-code watch: "))
        .unwrap_or_else(|| panic!("no cold-code watch line in {stderr}"));
    assert!(
        watch.contains("1 dropped as hot") && watch.contains("main.reload every 0.3"),
        "{watch}"
    );
    let timed: u64 = stderr
        .split(" timed for rarely run code")
        .next()
        .and_then(|before| before.rsplit(' ').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no timed window in {stderr}"));
    assert!(timed >= 1, "{stderr}");
    let races = race_reports(&reports);
    assert_eq!(races.len(), 1, "{races:#?}");
    let functions = race_functions(&races[0]);
    assert!(
        functions.iter().any(|f| f == "main.reload") && functions.iter().any(|f| f == "main.busy"),
        "{functions:?}"
    );
}

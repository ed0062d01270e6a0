//! `tracer run` on a fixture whose goroutines do known numbers of map writes: for every supported
//! Go version, the events per map and per goroutine must match what the fixture reports, exactly
//! with `--every-access` (by default, only repeats are left out), with no drops and no events
//! from any other process.

mod common;

use std::{collections::HashMap, process::Stdio};

use common::*;

/// What the fixture says it did.
#[derive(Default)]
struct Truth {
    pid: u32,
    /// map address → (name, [assign, delete, clear])
    maps: HashMap<String, (String, [u64; 3])>,
    /// goroutine id → writes
    goroutines: HashMap<u64, u64>,
}

fn parse_truth(stdout: &str) -> Truth {
    let mut truth = Truth::default();
    for line in stdout.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["pid", pid] => truth.pid = pid.parse().unwrap(),
            ["goroutine", id, "writes", n] => {
                truth
                    .goroutines
                    .insert(id.parse().unwrap(), n.parse().unwrap());
            }
            ["map", name, address, "assign", a, "delete", d, "clear", c] => {
                let counts = [a.parse().unwrap(), d.parse().unwrap(), c.parse().unwrap()];
                truth
                    .maps
                    .insert(address.to_string(), (name.to_string(), counts));
            }
            _ => panic!("unexpected fixture line {line:?}"),
        }
    }
    truth
}

/// The `counts` fixture run under `tracer run` (with `options`), checked to have run and lost no
/// event: what it did and its recording.
fn traced_counts(version: &str, variant: Variant, options: &[&str]) -> (Truth, String, String) {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let fixture = built_fixture("mapwrites", version, variant);
    let events_path = dir.path().join("events.jsonl");
    let output = tracer()
        .arg("run")
        .args(options)
        .arg("--events")
        .arg(&events_path)
        .arg("--")
        .arg(&fixture)
        .arg("counts")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(0),
        "go{version} {variant:?}: {stderr}"
    );
    assert_eq!(
        dropped_in_summary(&stderr),
        0,
        "go{version} {variant:?}: {stderr}"
    );
    let truth = parse_truth(&stdout);
    assert_eq!(
        truth.goroutines.len(),
        4,
        "go{version} {variant:?}: {stdout}"
    );
    assert_eq!(
        truth.maps.len(),
        4 * 5 + 1,
        "go{version} {variant:?}: {stdout}"
    );
    let events = std::fs::read_to_string(&events_path).unwrap();
    (truth, events, stderr)
}

/// Writes seen in a recording: per map ([assign, delete, clear]) and per goroutine.
type WritesSeen = (HashMap<String, [u64; 3]>, HashMap<u64, u64>);

/// Every recorded write of the `counts` fixture, checked to come from the fixture's process
/// and, for the writes of a worker's `ints` map, to carry a stack naming their line of source;
/// also returns how many of those it checked.
fn writes_seen(version: &str, variant: Variant, truth: &Truth, events: &str) -> (WritesSeen, u64) {
    let mut per_map: HashMap<String, [u64; 3]> = HashMap::new();
    let mut per_goroutine: HashMap<u64, u64> = HashMap::new();
    // Stacks: every write to a worker's `ints` map must be attributed to its line in the source.
    let source = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mapwrites/main.go"),
    )
    .unwrap();
    let line_of = |code: &str| -> u64 {
        source
            .lines()
            .position(|line| line.trim() == code)
            .expect("line in fixture") as u64
            + 1
    };
    let expected_lines = HashMap::from([
        ("assign", line_of("ints[k] = k")),
        ("delete", line_of("delete(ints, k)")),
        ("clear", line_of("clear(ints)")),
    ]);
    let mut stacks: HashMap<u64, serde_json::Value> = HashMap::new();
    let mut ints_writes_checked = 0;
    for line in events.lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        if event["type"] == "stack" {
            stacks.insert(event["id"].as_u64().unwrap(), event["frames"].clone());
            continue;
        }
        if event.get("op").is_none() {
            continue; // the recording's header
        }
        let on_ints = event["map"]
            .as_str()
            .and_then(|map| truth.maps.get(map))
            .is_some_and(|(name, _)| name == "ints");
        if let (true, Some(expected)) = (on_ints, expected_lines.get(event["op"].as_str().unwrap()))
        {
            let frames = &stacks[&event["stack"].as_u64().expect("map events carry a stack")];
            let frame = frames
                .as_array()
                .unwrap()
                .iter()
                .find(|frame| !frame["function"].as_str().unwrap().starts_with("runtime."))
                .unwrap_or_else(|| panic!("go{version} {variant:?}: no caller in {frames}"));
            assert_eq!(
                frame["function"], "main.worker",
                "go{version} {variant:?}: {frames}"
            );
            assert!(
                frame["file"]
                    .as_str()
                    .unwrap()
                    .ends_with("mapwrites/main.go"),
                "{frame}"
            );
            assert_eq!(
                frame["line"], *expected,
                "go{version} {variant:?}: {} at {frame}",
                event["op"]
            );
            ints_writes_checked += 1;
        }
        assert_eq!(
            event["pid"], truth.pid,
            "go{version} {variant:?}: event of another process: {line}"
        );
        for field in ["tid", "ts", "goroutine"] {
            assert!(
                event[field].as_u64().is_some(),
                "go{version} {variant:?}: no {field} in {line}"
            );
        }
        let slot = match event["op"].as_str().unwrap() {
            "assign" => 0,
            "delete" => 1,
            "clear" => 2,
            _ => continue, // reads, synchronisation, goroutines: not counted here
        };
        let map = event["map"].as_str().unwrap().to_owned();
        per_map.entry(map).or_default()[slot] += 1;
        *per_goroutine
            .entry(event["goroutine"].as_u64().unwrap())
            .or_default() += 1;
    }
    ((per_map, per_goroutine), ints_writes_checked)
}

/// With `--every-access`, the events per map and per goroutine match what the fixture did.
fn counts_match(version: &str, variant: Variant) {
    let (truth, events, _) = traced_counts(version, variant, &["--every-access"]);
    let ((per_map, per_goroutine), ints_writes_checked) =
        writes_seen(version, variant, &truth, &events);
    assert!(
        ints_writes_checked > 100,
        "go{version} {variant:?}: {ints_writes_checked} checked"
    );
    for (address, (name, expected)) in &truth.maps {
        let seen = per_map.get(address).copied().unwrap_or_default();
        assert_eq!(
            &seen, expected,
            "go{version} {variant:?}: map {name} {address}: [assign, delete, clear] seen vs done"
        );
    }
    for (goroutine, expected) in &truth.goroutines {
        let seen = per_goroutine.get(goroutine).copied().unwrap_or_default();
        assert_eq!(
            seen, *expected,
            "go{version} {variant:?}: writes by goroutine {goroutine}"
        );
    }
}

/// Every supported version, each as a default, a stripped and a PIE build.
fn exact_counts_for_every_build(version: &str) {
    for variant in Variant::ALL {
        counts_match(version, variant);
    }
}

mod exact_write_counts {
    crate::test_each_go_version!(super::exact_counts_for_every_build);
}

/// Without `--every-access`, a write repeating its goroutine's previous recorded event (the steps
/// of a loop over one map with nothing else in it) is dropped in the kernel and counted; the
/// first of each run and every write with synchronisation before it are recorded.
fn repeats_dropped(version: &str) {
    let variant = Variant::Default;
    let (truth, events, stderr) = traced_counts(version, variant, &[]);
    let ((per_map, _), _) = writes_seen(version, variant, &truth, &events);
    let mut not_recorded = 0;
    for (address, (name, done)) in &truth.maps {
        let seen = per_map.get(address).copied().unwrap_or_default();
        for (seen, done) in seen.iter().zip(done) {
            assert!(
                seen <= done && (*seen > 0) == (*done > 0),
                "go{version}: map {name} {address}: [assign, delete, clear] seen {seen:?}, done {done:?}"
            );
            not_recorded += done - seen;
        }
        match name.as_str() {
            // A lock and an unlock between any two writes: nothing is a repeat.
            "shared" => assert_eq!(seen, *done, "go{version}: map {name} {address}"),
            // One loop for each operation, nothing else in it: recorded once, or once more
            // after another worker made a map at an address of its bucket (one in 4096).
            "ints" => assert!(
                seen.iter().all(|&seen| seen <= 2),
                "go{version}: map {name} {address}: {seen:?} of {done:?} recorded"
            ),
            _ => {}
        }
    }
    let dropped = number_before(&stderr, " repeated map accesses");
    assert!(
        not_recorded > 0 && dropped >= not_recorded,
        "go{version}: {not_recorded} writes not recorded, {dropped} repeats counted: {stderr}"
    );
}

mod repeated_writes {
    crate::test_each_go_version!(super::repeats_dropped);
}

/// One map written through the same two helpers from two callers in turn: each write's stack
/// names the caller it came through (even keys come through `viaFirst`, odd ones through
/// `viaSecond`), though the write's call site and the helper's caller are the same.
fn stacks_tell_call_paths_apart(version: &str) {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let fixture = built_fixture("mapwrites", version, Variant::Default);
    let events_path = dir.path().join("events.jsonl");
    let output = tracer()
        .args(["run", "--overhead-budget", "off", "--events"])
        .arg(&events_path)
        .arg("--")
        .arg(&fixture)
        .arg("paths")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "go{version}: {stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "paths 400");
    let mut stacks: HashMap<u64, Vec<String>> = HashMap::new();
    let mut through = [0; 2];
    for line in std::fs::read_to_string(&events_path).unwrap().lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        if event["type"] == "stack" {
            let functions = event["frames"].as_array().unwrap().iter();
            let functions = functions.map(|frame| frame["function"].as_str().unwrap().to_owned());
            stacks.insert(event["id"].as_u64().unwrap(), functions.collect());
            continue;
        }
        if event.get("op").is_none() {
            continue; // the recording's header
        }
        let Some(stack) = event["stack"].as_u64().map(|id| &stacks[&id]) else {
            continue;
        };
        if event["op"] != "assign" || !stack.iter().any(|function| function == "main.set") {
            continue;
        }
        let key = event["key"].as_u64().expect("an integer key");
        let expected = ["main.viaFirst", "main.viaSecond"][key as usize % 2];
        assert!(
            stack.iter().any(|function| function == expected),
            "go{version}: key {key} written through {expected}, but the stack is {stack:?}"
        );
        through[key as usize % 2] += 1;
    }
    assert_eq!(through, [200, 200], "go{version}: writes seen per caller");
}

mod call_paths {
    crate::test_each_go_version!(super::stacks_tell_call_paths_apart);
}

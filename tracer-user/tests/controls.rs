//! Overhead controls. `--no-reads` leaves map lookups and range loops unprobed: the syncseq
//! fixture (which reads maps under a mutex, an RWMutex and after a Pool hand-off) yields no read
//! event, fewer probes, and exactly the same writes as a full trace.

mod common;

use common::*;
use serde_json::Value;

const READS: [&str; 3] = ["read", "iterate", "iterate-next"];
const WRITES: [&str; 3] = ["assign", "delete", "clear"];

/// (probes attached, events) of one traced run of the syncseq fixture, every access recorded
/// (without reads, two writes a read separated would repeat each other).
fn trace(version: &str, extra: &[&str]) -> (u64, Vec<Value>) {
    let fixture = built_fixture("syncseq", version, Variant::Default);
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let output = tracer()
        .args(["run", "--every-access"])
        .args(extra)
        .arg("--events")
        .arg(&events)
        .arg(&fixture)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "go{version}: {stderr}");
    let probes = stderr
        .split("): ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("go{version}: no probe count in {stderr}"));
    let events = json_lines(&events)
        .into_iter()
        .filter(|event| event.get("op").is_some())
        .collect();
    (probes, events)
}

fn no_reads_keeps_every_write_and_drops_every_read(version: &str) {
    require_root();
    let (all_probes, all) = trace(version, &[]);
    let (fewer_probes, without_reads) = trace(version, &["--no-reads"]);
    let count = |events: &[Value], ops: &[&str]| {
        events
            .iter()
            .filter(|event| ops.contains(&event["op"].as_str().unwrap()))
            .count()
    };
    assert!(
        count(&all, &READS) > 0,
        "go{version}: the fixture reads maps"
    );
    assert_eq!(count(&without_reads, &READS), 0, "go{version}");
    assert!(
        fewer_probes < all_probes,
        "go{version}: {fewer_probes} vs {all_probes}"
    );
    assert!(
        count(&all, &WRITES) > 0,
        "go{version}: the fixture writes maps"
    );
    for op in WRITES {
        assert_eq!(
            count(&without_reads, &[op]),
            count(&all, &[op]),
            "go{version}: {op}s"
        );
    }
}

mod no_reads {
    crate::test_each_go_version!(super::no_reads_keeps_every_write_and_drops_every_read);
}
